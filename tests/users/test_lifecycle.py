"""The portal user state machine, its filters, and the bulk user actions built on it."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from portalflow.models import (
    BulkRun,
    BulkRunStatus,
    EmailKind,
    Invitation,
    InvitationStatus,
    PortalUser,
    PortalUserStatus,
    RefusalCode,
)
from portalflow.pipelines.invitations import tokens
from portalflow.pipelines.users import lifecycle, user_actions
from portalflow.pipelines.users.lifecycle import TRANSITIONS, Action, InvalidTransition, UserFilter
from portalflow.pipelines.users.user_actions import BulkAction

from ..cli_runner import run
from ..factories import client_portal, make_inviter, make_org, make_record

S = PortalUserStatus
ALL_PAIRS = list(itertools.product(PortalUserStatus, Action))


@pytest.mark.parametrize(("status", "action"), list(TRANSITIONS))
def test_every_named_transition(status: PortalUserStatus, action: Action) -> None:
    assert lifecycle.next_status(status, action) == TRANSITIONS[(status, action)]


@pytest.mark.parametrize(
    ("status", "action"), [pair for pair in ALL_PAIRS if pair not in TRANSITIONS]
)
def test_every_other_transition_is_refused(status: PortalUserStatus, action: Action) -> None:
    with pytest.raises(InvalidTransition, match=f"cannot {action.value}"):
        lifecycle.next_status(status, action, user_id=7)


def test_the_spec_cycle(session: Session) -> None:
    """invited -> confirmed -> login suspended -> confirmed -> deactivated -> confirmed ->
    removed -> invited."""
    world = make_world(session, {"u": S.INVITED})
    user = world["users"]["u"]
    for action, expected in (
        (Action.ACCEPT, S.CONFIRMED),
        (Action.SUSPEND_LOGIN, S.LOGIN_SUSPENDED),
        (Action.CONFIRM_EMAIL, S.CONFIRMED),
        (Action.DEACTIVATE, S.DEACTIVATED),
        (Action.ACTIVATE, S.CONFIRMED),
        (Action.REMOVE, S.REMOVED),
        (Action.INVITE_AGAIN, S.INVITED),
    ):
        assert lifecycle.transition(session, user, action) == expected
        assert user.status == expected and user.status_changed_at is not None
    with pytest.raises(InvalidTransition):
        lifecycle.transition(session, user, Action.ACTIVATE)
    assert user.status == S.INVITED  # a refused transition changes nothing


def make_world(session: Session, statuses: dict[str, PortalUserStatus]) -> dict[str, Any]:
    org = make_org(session)
    inviter = make_inviter(session, org)
    cp = client_portal(session, org)
    users = {}
    for name, status in statuses.items():
        record = make_record(session, org, name)
        user = PortalUser(
            org_id=org.id,
            record_id=record.id,
            user_type_id=cp.id,
            status=status,
            email=record.email,
        )
        session.add(user)
        users[name] = user
    session.commit()
    return {"org": org, "inviter": inviter, "type": cp, "users": users}


STATUSES = {
    "inv": S.INVITED,
    "conf": S.CONFIRMED,
    "susp": S.LOGIN_SUSPENDED,
    "deact": S.DEACTIVATED,
    "gone": S.REMOVED,
}


@pytest.mark.parametrize(
    ("user_filter", "expected"),
    [
        (UserFilter.ALL, {"inv", "conf", "susp", "deact"}),
        (UserFilter.ACTIVE, {"conf", "susp"}),
        (UserFilter.CONFIRMED, {"conf"}),
        (UserFilter.UNCONFIRMED, {"inv", "susp"}),
        (UserFilter.NOT_ACCEPTED, {"inv"}),
        (UserFilter.LOGIN_SUSPENDED, {"susp"}),
        (UserFilter.DEACTIVATED, {"deact"}),
    ],
)
def test_the_spec_filters(session: Session, user_filter: UserFilter, expected: set[str]) -> None:
    world = make_world(session, STATUSES)
    names = {user.id: name for name, user in world["users"].items()}
    found = session.scalars(lifecycle.users_query(world["org"].id, user_filter)).all()
    assert {names[user.id] for user in found} == expected


def test_transition_many_moves_the_allowed_and_names_the_refused(session: Session) -> None:
    world = make_world(session, STATUSES)
    ids = {name: user.id for name, user in world["users"].items()}
    result = lifecycle.transition_many(
        session, world["org"].id, [ids["conf"], ids["inv"], ids["susp"], 999], Action.DEACTIVATE
    )
    assert sorted(result.moved) == sorted([ids["conf"], ids["susp"]])
    assert set(result.refused) == {ids["inv"], 999}
    assert result.refused[ids["inv"]].code == RefusalCode.INVALID_TRANSITION
    assert result.refused[999].code == RefusalCode.UNKNOWN_USER
    assert "it is invited" in result.refused[ids["inv"]].detail


def act(session: Session, world: dict[str, Any], action: BulkAction, **kw: Any) -> dict:
    started = user_actions.start_user_action(
        session,
        org_id=world["org"].id,
        user_type_id=world["type"].id,
        actor_id=world["inviter"].id,
        action=action,
        **kw,
    )
    session.commit()
    invitations = [i for c in started.chunk_ids for i in user_actions.run_chunk(session, c)]
    session.commit()
    run = session.get_one(BulkRun, started.run_id)
    session.refresh(run)
    return {"run": run, "invitations": invitations}


def test_deactivate_by_filter_counts_done_and_refused(session: Session) -> None:
    world = make_world(session, STATUSES)
    done = act(session, world, BulkAction.DEACTIVATE, user_filter=UserFilter.ALL)
    run = done["run"]
    # inv and deact are refused; conf and susp are deactivated; gone is not in "all".
    assert (run.requested, run.sent, run.failed, run.status) == (4, 2, 2, BulkRunStatus.COMPLETED)
    statuses = {name: user.status for name, user in world["users"].items()}
    for user in world["users"].values():
        session.refresh(user)
    assert {n: u.status for n, u in world["users"].items()} == {
        **statuses,
        "conf": S.DEACTIVATED,
        "susp": S.DEACTIVATED,
    }


def test_remove_revokes_the_live_invitation_token(session: Session) -> None:
    world = make_world(session, {"inv": S.INVITED})
    user = world["users"]["inv"]
    token, digest = tokens.new_token()
    session.add(
        Invitation(
            org_id=world["org"].id,
            user_type_id=world["type"].id,
            crm_id="inv",
            record_id=user.record_id,
            portal_user_id=user.id,
            kind=EmailKind.ACCEPT_INVITATION,
            address=user.email,
            status=InvitationStatus.SENT,
            token_hash=digest,
        )
    )
    session.commit()
    assert tokens.find_valid_invitation(session, token)
    act(session, world, BulkAction.REMOVE, user_ids=[user.id])
    session.refresh(user)
    assert user.status == S.REMOVED
    with pytest.raises(tokens.InvalidToken):
        tokens.find_valid_invitation(session, token)


def test_reinvite_unconfirmed_sends_the_right_email_each(session: Session) -> None:
    world = make_world(session, STATUSES)
    done = act(session, world, BulkAction.REINVITE, user_filter=UserFilter.UNCONFIRMED)
    assert (done["run"].sent, done["run"].failed) == (2, 0)
    kinds = {
        row.portal_user_id: row.kind
        for row in session.scalars(select(Invitation).where(Invitation.id.in_(done["invitations"])))
    }
    assert kinds == {
        world["users"]["inv"].id: EmailKind.ACCEPT_INVITATION,
        world["users"]["susp"].id: EmailKind.CONFIRM_EMAIL,
    }


def test_activation_confirms_an_email_change_held_while_deactivated(session: Session) -> None:
    world = make_world(session, {"deact": S.DEACTIVATED, "plain": S.DEACTIVATED})
    held = world["users"]["deact"]
    held.email = held.pending_email = "new.address@example.org"
    session.commit()
    done = act(session, world, BulkAction.ACTIVATE, user_filter=UserFilter.DEACTIVATED)
    assert done["run"].sent == 2
    [invitation] = session.scalars(select(Invitation).where(Invitation.id.in_(done["invitations"])))
    assert (invitation.kind, invitation.address) == (
        EmailKind.CONFIRM_EMAIL,
        "new.address@example.org",
    )
    session.refresh(held)
    assert (held.status, held.pending_email) == (S.LOGIN_SUSPENDED, None)
    plain = world["users"]["plain"]
    session.refresh(plain)
    assert plain.status == S.CONFIRMED


def test_a_chunk_runs_once(session: Session) -> None:
    world = make_world(session, {"conf": S.CONFIRMED})
    started = user_actions.start_user_action(
        session,
        org_id=world["org"].id,
        user_type_id=world["type"].id,
        actor_id=world["inviter"].id,
        action=BulkAction.DEACTIVATE,
        user_ids=[world["users"]["conf"].id],
    )
    session.commit()
    user_actions.run_chunk(session, started.chunk_ids[0])
    user_actions.run_chunk(session, started.chunk_ids[0])  # redelivered
    session.commit()
    assert session.get_one(BulkRun, started.run_id).sent == 1


def test_users_cli_lists_and_acts(cli_env: Path) -> None:
    assert run("db", "upgrade")[0] == 0
    run("orgs", "create", "--name", "Acme", "--domain", "acme.com", "--country", "US")
    run("crm-users", "add", "--org", "1", "--name", "Ann", "--email", "ann@acme.com",
        "--modules", "Contacts")  # fmt: skip
    records = cli_env.parent / "r.csv"
    records.write_text("crm_id,module,email\nA1,Contacts,a1@example.org\n", encoding="utf-8")
    run("records", "import", str(records), "--org", "1")
    run("invite", "--org", "1", "--user-type", "1", "--inviter", "1", "-r", "A1")
    code, out = run("users", "list", "--org", "1", "--status", "not_accepted", "--json")
    assert code == 0 and [u["status"] for u in json.loads(out)] == ["invited"]
    code, out = run("users", "deactivate", "--org", "1", "--user-type", "1", "--actor", "1")
    assert code == 1 and "cannot deactivate" in out  # an invited user cannot be deactivated
    code, out = run("users", "reinvite", "--org", "1", "--user-type", "1", "--actor", "1",
                    "--status", "unconfirmed", "--json")  # fmt: skip
    assert code == 0, out
    assert len(list((cli_env / "outbox").glob("*.eml"))) == 2
