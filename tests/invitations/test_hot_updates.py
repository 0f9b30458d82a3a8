"""Leaving ``sent`` touches no index: no index of invitations names ``status``."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from portalflow.models import Invitation, InvitationStatus, make_session_factory
from portalflow.pipelines.invitations.invitation_states import Transition, has_status, move_ids

from ..factories import make_org
from .test_expiry import SENT_AT, SEVEN_DAYS, add_invitations, invitations_of_a_new_org

WRITES = "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables WHERE relname = :name"


def test_expiring_or_superseding_a_sent_invitation_is_a_hot_update(pg_engine: Engine) -> None:
    factory = make_session_factory(pg_engine)
    now = SENT_AT + SEVEN_DAYS
    expiring, superseded, newer = invitations_of_a_new_org(factory, [now] * 3)
    moves = [
        (Transition.EXPIRE, expiring, {"updated_at": now}),
        (Transition.SUPERSEDE, superseded, {"updated_at": now, "superseded_by_id": newer}),
    ]
    for transition, row, values in moves:
        with factory() as session:
            # This backend's counts not yet reported (they may include earlier transactions').
            before = session.execute(text(WRITES), {"name": "invitations"}).one()
            session.execute(move_ids(transition, [row], values=values))
            after = session.execute(text(WRITES), {"name": "invitations"}).one()
            # One row updated, in its page, with no index entry written.
            assert (after[0] - before[0], after[1] - before[1]) == (1, 1), transition
            session.commit()
    with factory() as session:
        found = dict(session.execute(select(Invitation.id, Invitation.status)).all())
    assert found[expiring] == InvitationStatus.EXPIRED
    assert found[superseded] == InvitationStatus.SUPERSEDED


def test_the_table_keeps_room_in_each_page_for_those_updates(pg_engine: Engine) -> None:
    with pg_engine.connect() as connection:
        options = connection.scalar(
            text("SELECT reloptions FROM pg_class WHERE relname = 'invitations'")
        )
    assert "fillfactor=50" in options


def test_dispatch_status_is_the_status_while_a_worker_acts_on_the_row(session: Session) -> None:
    org = make_org(session)
    at = SENT_AT + SEVEN_DAYS
    rows = {
        status: add_invitations(session, org, [at + timedelta(seconds=n)], status=status)[0]
        for n, status in enumerate(InvitationStatus)
    }
    found = dict(session.execute(select(Invitation.id, Invitation.dispatch_status)).all())
    for status, row in rows.items():
        expected = (
            status.value if status in (InvitationStatus.QUEUED, InvitationStatus.SENDING) else None
        )
        assert found[row] == expected, status
    # The condition for those statuses names the indexed column too, and finds the same rows.
    for status in (InvitationStatus.QUEUED, InvitationStatus.SENDING):
        assert "dispatch_status" in str(has_status(status).compile())
        assert session.scalars(select(Invitation.id).where(has_status(status))).all() == [
            rows[status]
        ]
