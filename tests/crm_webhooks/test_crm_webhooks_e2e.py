"""CRM webhooks end to end: real flows commit their changes, a real Dramatiq worker on Redis
delivers the outbox to a real local receiver (PostgreSQL)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from dramatiq import Worker
from dramatiq.brokers.redis import RedisBroker
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from portalflow.config import Settings
from portalflow.models import (
    CrmEventKind,
    Invitation,
    InvitationStatus,
    LicenceAlert,
    Org,
    OutcomeClass,
    PortalUser,
    PortalUserStatus,
    WebhookDelivery,
    WebhookDeliveryStatus,
    WebhookEventType,
    make_session_factory,
    utcnow,
)
from portalflow.pipelines.crm import crm_events
from portalflow.pipelines.crm_webhooks import endpoints
from portalflow.pipelines.delivery import after_send
from portalflow.pipelines.delivery.outcomes import Outcome
from portalflow.pipelines.invitations import acceptance, expiry
from portalflow.pipelines.licensing import purchases, reconciliation
from portalflow.pipelines.users import lead_conversion, lifecycle, transfers
from portalflow.workers import runtime

from ..conftest import wait_for
from ..factories import make_inviter, make_org, make_record, start_and_expand
from ..invitations.test_acceptance import PASSWORD, send
from ..webhook_receiver import Receiver, running_receiver

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

T = WebhookEventType
Action = lifecycle.Action


@pytest.fixture
def hook_settings(worker_settings: Settings) -> Settings:
    """The workers' settings, with the receiver's network allowed and retries fast."""
    configured = replace(
        worker_settings,
        webhook_key=Fernet.generate_key().decode(),
        webhook_allowed_networks=("127.0.0.0/8",),
        webhook_retry_base_seconds=0.2,
        webhook_retry_max_seconds=0.5,
    )
    runtime.configure(configured)
    return configured


@pytest.fixture
def hook_worker(
    redis_broker: RedisBroker, hook_settings: Settings, pg_engine: Engine
) -> Iterator[Worker]:
    running = Worker(redis_broker, worker_threads=2, worker_timeout=100)
    running.start()
    yield running
    running.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as server:
        yield server


@pytest.fixture
def factory(pg_engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(pg_engine)


def subscribe(
    session: Session, settings: Settings, receiver: Receiver, org_id: int
) -> endpoints.CreatedSecret:
    created = endpoints.create_endpoint(session, settings, org_id, receiver.url + "/crm")
    session.commit()
    receiver.secrets.append(created.secret)
    return created


def settled(factory: sessionmaker[Session]) -> bool:
    """Every outbox row delivered (or dead)."""
    with factory() as session:
        open_rows = session.scalar(
            select(func.count()).where(
                WebhookDelivery.status.in_(
                    (WebhookDeliveryStatus.PENDING, WebhookDeliveryStatus.SENDING)
                )
            )
        )
        return open_rows == 0


def add_lead(session: Session, org_id: int, user_type_id: int, crm_id: str) -> PortalUser:
    record = make_record(session, session.get_one(Org, org_id), crm_id, module="Leads")
    user = PortalUser(
        org_id=org_id,
        record_id=record.id,
        user_type_id=user_type_id,
        status=PortalUserStatus.CONFIRMED,
        email=record.email,
        confirmed_at=utcnow(),
    )
    session.add(user)
    session.flush()
    return user


def test_every_event_type_arrives_once_per_change_in_order_per_user(
    hook_worker: Worker,
    hook_settings: Settings,
    factory: sessionmaker[Session],
    receiver: Receiver,
    outbox_dir: Path,
) -> None:
    with factory() as session:
        org = make_org(session)
        inviter = make_inviter(session, org)
        leads = purchases.add_user_type_with_licences(
            session, org.id, name="Leads", module="Leads", licences=1
        )
        partners = purchases.add_user_type_with_licences(
            session, org.id, name="Partners", module="Contacts", licences=100
        )
        for crm_id in ("C-0", "C-1", "C-2"):
            make_record(session, org, crm_id)
        make_record(session, org, "C-staff", email="staff@zylker.com")  # refused: company domain
        session.commit()
        org_id = org.id
        subscribe(session, hook_settings, receiver, org_id)

        # Invitations: 3 queued and 1 refused, 3 sent; then the provider's word on two.
        _run, ids = start_and_expand(session, org, inviter, ["C-0", "C-1", "C-2", "C-staff"])
        tokens = send(session, ids, outbox_dir)
        first, second, _third = sorted(ids)
        delivered = Outcome(OutcomeClass.DELIVERED, "delivered", "Delivery")
        bounced = Outcome(OutcomeClass.PERMANENT, "bounce_permanent", "Bounce")
        after_send.apply_outcome(session, session.get_one(Invitation, first), delivered, utcnow())
        after_send.apply_outcome(session, session.get_one(Invitation, second), bounced, utcnow())
        after_send.apply_outcome(session, session.get_one(Invitation, second), bounced, utcnow())
        session.commit()  # the repeated bounce changes nothing, so it tells nothing

        # The first invitee accepts, then lives the user's whole life; the others expire.
        user = acceptance.accept_invitation(session, tokens[first], password=PASSWORD)
        session.commit()
        user_id = user.id
        expiry.expire_invitations(session, utcnow() + timedelta(days=8))
        for action in (Action.SUSPEND_LOGIN, Action.CONFIRM_EMAIL):
            lifecycle.transition(session, session.get_one(PortalUser, user_id), action)
            session.commit()
        transfers.transfer_users(session, org_id, [user_id], partners.id)
        session.commit()
        for action in (Action.DEACTIVATE, Action.ACTIVATE, Action.REMOVE):
            lifecycle.transition_many(session, org_id, [user_id], action)
            session.commit()

        # A lead conversion that needs a choice, then one that names the type.
        add_lead(session, org_id, leads.id, "L-1")
        make_record(session, org, "C-L1")
        session.commit()
        for key, chosen in (("conv-1", {}), ("conv-2", {"user_type_id": partners.id})):
            payload = {"lead_id": "L-1", "contact_id": "C-L1", **chosen}
            event, _ = crm_events.record_event(
                session, org_id, CrmEventKind.LEAD_CONVERTED, key, payload
            )
            session.commit()
            lead_conversion.handle_lead_converted(session, event.id)
            session.commit()

        # Two leads on one licence: the nightly reconciliation raises an overage alert.
        add_lead(session, org_id, leads.id, "L-2")
        add_lead(session, org_id, leads.id, "L-3")
        session.commit()
        reconciliation.reconcile(session, utcnow().date())
        session.commit()

        expired = session.scalar(
            select(func.count()).where(Invitation.status == InvitationStatus.EXPIRED)
        )
        alerts = session.scalar(select(func.count()).select_from(LicenceAlert))
    assert expired == 2 and alerts
    expected = Counter(
        {
            T.INVITATION_QUEUED: 3,
            T.INVITATION_FAILED: 2,  # refused before the send, bounced after it
            T.INVITATION_SENT: 3,
            T.INVITATION_DELIVERED: 1,
            T.INVITATION_ACCEPTED: 1,
            T.INVITATION_EXPIRED: expired,
            T.USER_CONFIRMED: 2,  # accepted, then the new email confirmed
            T.USER_SUSPENDED: 1,
            T.USER_TRANSFERRED: 2,  # by the admin, then the converted lead's
            T.USER_DEACTIVATED: 1,
            T.USER_ACTIVATED: 1,
            T.USER_REMOVED: 1,
            T.LEAD_CONVERSION_CHOICE_REQUIRED: 1,
            T.LEAD_CONVERSION_DONE: 1,
            T.LICENCE_ALERT: alerts,
        }
    )
    assert set(expected) == set(WebhookEventType)  # the scenario covers the catalogue

    total = sum(expected.values())
    wait_for(lambda: len(receiver.delivered()) >= total and settled(factory), timeout=120)
    events = receiver.events()
    assert all(r.verified for r in receiver.received)
    assert Counter(T(event["type"]) for event in events) == expected
    assert len({event["id"] for event in events}) == len(events)  # each change told once

    # The one user's story arrived in the order it happened.
    story = [e["type"] for e in events if e["data"].get("portal_user_id") == user_id]
    assert story == [
        "invitation.queued",
        "invitation.sent",
        "invitation.delivered",
        "invitation.accepted",
        "user.confirmed",
        "user.suspended",
        "user.confirmed",
        "user.transferred",
        "user.deactivated",
        "user.activated",
        "user.removed",
    ]
    by_type: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        by_type.setdefault(event["type"], []).append(event["data"])
    bounce, refused = sorted(by_type["invitation.failed"], key=lambda d: d["stage"] != "after_send")
    assert (bounce["stage"], bounce["code"], bounce["outcome_class"]) == (
        "after_send",
        "bounce_permanent",
        "permanent",
    )
    assert (refused["record_id"], refused["stage"], refused["code"]) == (
        "C-staff",
        "before_send",
        "company_domain",
    )
    moved, converted = sorted(by_type["user.transferred"], key=lambda d: d["record_id"])
    assert (moved["user_type_id"], moved["record_id"]) == (partners.id, "C-0")
    assert (converted["user_type_id"], converted["from_user_type_id"]) == (partners.id, leads.id)
    assert (converted["record_id"], converted["module"]) == ("C-L1", "Contacts")
    [done] = by_type["lead_conversion.done"]
    assert (done["lead_id"], done["contact_id"], done["user_type_id"]) == (
        "L-1",
        "C-L1",
        partners.id,
    )


def test_a_receiver_answering_500_for_a_while_gets_every_event(
    hook_worker: Worker,
    hook_settings: Settings,
    factory: sessionmaker[Session],
    receiver: Receiver,
) -> None:
    receiver.failures_left = 4
    with factory() as session:
        org = make_org(session)
        subscribe(session, hook_settings, receiver, org.id)
        inviter = make_inviter(session, org)
        for n in range(3):
            make_record(session, org, f"C-{n}", email=f"staff{n}@zylker.com")  # all refused
        session.commit()
        start_and_expand(session, org, inviter, ["C-0", "C-1", "C-2"])
        session.commit()
    wait_for(lambda: len(receiver.delivered()) == 3 and settled(factory), timeout=60)
    assert sum(1 for r in receiver.received if r.status == 500) == 4
    assert sorted(e["data"]["record_id"] for e in receiver.events()) == ["C-0", "C-1", "C-2"]
    with factory() as session:
        attempts = sorted(session.scalars(select(WebhookDelivery.attempts)))
    assert sum(attempts) == 3 + 4  # each failure cost one attempt, each row was sent once
