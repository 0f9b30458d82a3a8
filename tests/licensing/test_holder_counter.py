"""The cached licence-holder counter follows every step that changes holders.

So the nightly reconciliation reports a counter "corrected" only when it really drifted
(something wrote users around the pipelines), not after every ordinary invite.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import update
from sqlalchemy.orm import Session

from portalflow.models import PortalUser, PortalUserStatus, PortalUserType
from portalflow.pipelines.licensing.reconciliation import reconcile
from portalflow.pipelines.users import lifecycle
from portalflow.pipelines.users.lifecycle import Action

from ..factories import client_portal, make_inviter, make_org, make_record, start_and_expand

DAY = date(2026, 12, 1)


def cached(session: Session, user_type_id: int) -> int:
    session.expire_all()
    return session.get_one(PortalUserType, user_type_id).holders_cached


def test_ordinary_invites_and_deactivations_leave_nothing_to_correct(session: Session) -> None:
    org = make_org(session)
    inviter = make_inviter(session, org)
    for n in range(5):
        make_record(session, org, f"C-{n}", email=f"c{n}@example.org")
    session.commit()
    cp = client_portal(session, org).id
    assert reconcile(session, DAY).counters_corrected == 0

    start_and_expand(session, org, inviter, [f"C-{n}" for n in range(5)])
    assert cached(session, cp) == 5
    users = [u.id for u in session.query(PortalUser).order_by(PortalUser.id)]
    for user_id in users[:3]:
        lifecycle.transition(session, session.get_one(PortalUser, user_id), Action.ACCEPT)
    session.commit()
    assert cached(session, cp) == 5  # accepting keeps the seat
    lifecycle.transition_many(session, org.id, users[:2], Action.DEACTIVATE)
    session.commit()
    assert cached(session, cp) == 3
    lifecycle.transition(session, session.get_one(PortalUser, users[0]), Action.ACTIVATE)
    session.commit()
    assert cached(session, cp) == 4
    assert lifecycle.transition_from(
        session, [users[4]], PortalUserStatus.INVITED, Action.REMOVE
    ) == [users[4]]
    session.commit()
    assert cached(session, cp) == 3

    assert reconcile(session, DAY).counters_corrected == 0

    # Written around the pipelines: that is drift, and it is corrected once.
    session.execute(update(PortalUserType).where(PortalUserType.id == cp).values(holders_cached=9))
    session.commit()
    assert reconcile(session, DAY).counters_corrected == 1
    assert cached(session, cp) == 3
