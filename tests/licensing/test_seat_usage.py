"""Who holds the licence seats: expired invitees keep theirs, show as such, and say why."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from portalflow.config import Settings
from portalflow.models import BulkAction, BulkActionRefusal, PortalUser, RefusalCode, utcnow
from portalflow.pipelines.delivery import dispatch, dispatch_config
from portalflow.pipelines.delivery.channels import build_email_channel
from portalflow.pipelines.delivery.channels.bundle import Channels
from portalflow.pipelines.invitations import expiry
from portalflow.pipelines.licensing import seat_usage
from portalflow.pipelines.users import lifecycle, user_actions
from portalflow.pipelines.users.lifecycle import Action, UserFilter
from portalflow.pipelines.users.user_history import list_users, user_history

from ..cli_runner import run
from ..factories import client_portal, make_inviter, make_org, make_record, start_and_expand


def test_a_full_trial_says_who_holds_its_seats(session: Session, tmp_path: Path) -> None:
    org = make_org(session, edition="trial")
    inviter = make_inviter(session, org)
    for n in range(11):
        make_record(session, org, f"C-{n}", email=f"c{n}@example.org")
    session.commit()
    cp = client_portal(session, org).id
    _run, queued = start_and_expand(session, org, inviter, [f"C-{n}" for n in range(10)])
    settings = Settings(var_dir=tmp_path, outbox_dir=tmp_path / "outbox")
    config = dispatch_config.DispatchConfig(portal_base_url="https://portal.test/p")
    channels = Channels(lambda: build_email_channel(settings))
    dispatch.dispatch(session, queued, channels=channels, config=config)
    users = list(session.scalars(select(PortalUser.id).order_by(PortalUser.id)))
    first = session.get_one(PortalUser, users[0])
    lifecycle.transition(session, first, Action.ACCEPT)
    lifecycle.transition(session, first, Action.DEACTIVATE)
    session.commit()
    # Its seat went to an eleventh invitee; then everybody's invitation expired.
    _run, more = start_and_expand(session, org, inviter, ["C-10"])
    dispatch.dispatch(session, more, channels=channels, config=config)
    expiry.expire_invitations(session, utcnow() + timedelta(days=8))

    [seats] = seat_usage.seat_usage(session, org.id)
    assert (seats.user_type_id, seats.limit, seats.held) == (cp, 10, 10)
    assert seats.by_status == {"deactivated": 1, "invited": 0, "invitation_expired": 10}
    # Still under the Unconfirmed filter, shown as what they are.
    unconfirmed = list_users(session, org.id, UserFilter.UNCONFIRMED)
    assert {row["status"] for row in unconfirmed} == {"invitation_expired"}
    assert len(unconfirmed) == 10
    shown = user_history(session, users[1])
    assert (shown["status"], shown["holds_licence_seat"]) == ("invitation_expired", True)

    # Activating the deactivated user is refused, saying who holds the seats.
    started = user_actions.start_user_action(
        session,
        org_id=org.id,
        user_type_id=cp,
        actor_id=inviter.id,
        action=BulkAction.ACTIVATE,
        user_ids=[first.id],
    )
    session.commit()
    user_actions.run_chunk(session, started.chunk_ids[0])
    session.commit()
    [(code, detail)] = session.execute(select(BulkActionRefusal.code, BulkActionRefusal.detail))
    assert code == RefusalCode.LICENCE_LIMIT
    assert detail.startswith("Client Portal has no licence left")
    assert "10 of 10 held: 10 invitation_expired" in detail
    assert "portalflow licences usage" in detail


@pytest.mark.usefixtures("cli_env")
def test_licences_usage_prints_the_seats() -> None:
    assert run("db", "upgrade")[0] == 0
    code, out = run("orgs", "create", "--name", "Acme", "--domain", "acme.com",
                    "--country", "US")  # fmt: skip
    assert code == 0, out
    code, out = run("licences", "usage", "--org", "1", "--json")
    assert code == 0, out
    assert '"user_type": "Client Portal"' in out and '"limit": 10000' in out
