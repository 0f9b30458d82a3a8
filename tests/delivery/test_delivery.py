"""After the send: throttling retried once, misconfiguration pauses, events and suppression."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from portalflow.config import Settings
from portalflow.models import (
    Channel,
    Invitation,
    InvitationStatus,
    OutcomeClass,
    ProviderEvent,
    ProviderEventStatus,
    utcnow,
)
from portalflow.pipelines.delivery import after_send, dispatch, dispatch_config, pauses
from portalflow.pipelines.delivery.channels import build_email_channel
from portalflow.pipelines.delivery.channels.bundle import Channels
from portalflow.pipelines.invitations import suppressions
from portalflow.pipelines.ops import reports

from ..factories import make_inviter, make_org, make_record, start_and_expand
from ..ses_server import SesServer, running_ses_server

CONFIG = dispatch_config.DispatchConfig(portal_base_url="https://portal.test", max_attempts=5)


@pytest.fixture
def ses(aws_env: None) -> Iterator[SesServer]:
    with running_ses_server() as server:
        yield server


def ses_channels(server: SesServer) -> Channels:
    settings = Settings(email_channel="ses", ses_endpoint_url=server.endpoint_url, ses_timeout=5)
    return Channels(lambda: build_email_channel(settings))


def invite(session: Session, world: dict[str, Any], crm_ids: list[str]) -> tuple[int, list[int]]:
    started, ids = start_and_expand(session, world["org"], world["inviter"], crm_ids)
    return started.run_id, ids


@pytest.fixture
def world(session: Session) -> dict[str, Any]:
    org = make_org(session)
    inviter = make_inviter(session, org)
    for n in range(3):
        make_record(session, org, f"c{n}")
    session.commit()
    return {"org": org, "inviter": inviter}


def test_throttling_is_retried_and_ends_sent_once(
    session: Session, world: dict[str, Any], ses: SesServer
) -> None:
    ses.state.errors = [(429, "TooManyRequestsException")] * 2
    _, [invitation_id] = invite(session, world, ["c0"])
    channels = ses_channels(ses)
    clock = utcnow()
    for _ in range(3):
        result = dispatch.dispatch(
            session, [invitation_id], channels=channels, config=CONFIG, now=lambda at=clock: at
        )
        clock += timedelta(hours=1)
    assert result.sent == [invitation_id]
    assert ses.state.attempts == 3 and len(ses.state.accepted) == 1
    invitation = session.get_one(Invitation, invitation_id)
    session.refresh(invitation)
    assert invitation.status == InvitationStatus.SENT
    assert invitation.provider_message_id == ses.state.accepted[0]
    assert invitation.attempts == 1  # the two throttled requests did not spend attempts


def test_a_configuration_error_pauses_the_channel_instead_of_retrying(
    session: Session, world: dict[str, Any], ses: SesServer
) -> None:
    ses.state.errors = [(400, "MailFromDomainNotVerifiedException")]
    _, ids = invite(session, world, ["c0", "c1", "c2"])
    channels = ses_channels(ses)
    result = dispatch.dispatch(session, ids, channels=channels, config=CONFIG)
    # One call reached SES; the others were held back, none spent an attempt.
    assert ses.state.attempts == 1 and sorted(result.paused) == ids and result.retry == []
    rows = session.scalars(select(Invitation).where(Invitation.id.in_(ids))).all()
    for row in rows:
        session.refresh(row)
    assert {(r.status, r.attempts) for r in rows} == {(InvitationStatus.QUEUED, 0)}
    org_id = world["org"].id
    pause = pauses.active_pause(session, org_id, Channel.EMAIL)
    assert pause is not None and pause.code == "mail_from_domain_not_verified"

    # While paused, nothing is claimed.
    assert dispatch.dispatch(session, ids, channels=channels, config=CONFIG).skipped == ids
    resumed = pauses.resume(session, org_id, Channel.EMAIL)
    session.commit()
    assert sorted(resumed) == ids
    assert sorted(dispatch.dispatch(session, ids, channels=channels, config=CONFIG).sent) == ids
    assert len(ses.state.accepted) == 3


def sent_invitation(session: Session, world: dict[str, Any], tmp_path: Path, crm_id: str):
    _, [invitation_id] = invite(session, world, [crm_id])
    settings = Settings(outbox_dir=tmp_path / "outbox")
    dispatch.dispatch(
        session,
        [invitation_id],
        channels=Channels(lambda: build_email_channel(settings)),
        config=CONFIG,
    )
    invitation = session.get_one(Invitation, invitation_id)
    session.refresh(invitation)
    assert invitation.status == InvitationStatus.SENT
    return invitation


def ses_event(invitation: Invitation, event_type: str, **body: Any) -> dict[str, Any]:
    message = {"eventType": event_type, "mail": {"messageId": invitation.provider_message_id}}
    message.update(body)
    return {"Type": "Notification", "MessageId": f"sns-{event_type}", "message": message}


def bounce(invitation: Invitation, kind: str = "Permanent", sub: str = "NoEmail") -> dict:
    recipients = [{"emailAddress": invitation.address}]
    return ses_event(
        invitation,
        "Bounce",
        bounce={"bounceType": kind, "bounceSubType": sub, "bouncedRecipients": recipients},
    )


def delivered(invitation: Invitation) -> dict:
    return ses_event(invitation, "Delivery", delivery={"recipients": [invitation.address]})


def process(session: Session, provider: str, payload: dict, key: str) -> ProviderEvent:
    event = ProviderEvent(provider=provider, dedupe_key=key, payload=payload)
    session.add(event)
    session.flush()
    processed = after_send.process_event(session, event.id)
    session.commit()
    return processed


def test_a_hard_bounce_suppresses_the_address_until_cleared(
    session: Session, world: dict[str, Any], tmp_path: Path
) -> None:
    invitation = sent_invitation(session, world, tmp_path, "c0")
    event = process(session, "ses", bounce(invitation), "e1")
    assert event.status == ProviderEventStatus.PROCESSED
    session.refresh(invitation)
    assert (invitation.outcome_class, invitation.outcome_code) == (
        OutcomeClass.PERMANENT,
        "bounce_no_email",
    )
    # Removed and invited again: the address is suppressed now.
    from portalflow.models import PortalUser, PortalUserStatus

    user = session.get_one(PortalUser, invitation.portal_user_id)
    user.status = PortalUserStatus.REMOVED
    session.commit()
    run_id, ids = invite(session, world, ["c0"])
    assert ids == []
    assert reports.bulk_run_report(session, run_id)["failed_by_reason"] == {"suppressed": 1}

    suppressions.clear(session, world["org"].id, invitation.address.upper())
    session.commit()
    _, ids = invite(session, world, ["c0"])
    assert len(ids) == 1


def test_replayed_and_out_of_order_events_leave_the_weightiest_outcome(
    session: Session, world: dict[str, Any], tmp_path: Path
) -> None:
    invitation = sent_invitation(session, world, tmp_path, "c1")
    process(session, "ses", delivered(invitation), "d1")
    session.refresh(invitation)
    assert invitation.outcome_class == OutcomeClass.DELIVERED
    process(session, "ses", bounce(invitation), "b1")
    late = process(session, "ses", delivered(invitation), "d2")  # late, duplicated delivery
    assert "no change" in (late.detail or "")
    session.refresh(invitation)
    assert invitation.outcome_code == "bounce_no_email"
    # Processing a processed event again is a no-op.
    again = after_send.process_event(session, late.id)
    assert again.status == ProviderEventStatus.PROCESSED


def test_a_complaint_is_its_own_outcome_and_suppresses(
    session: Session, world: dict[str, Any], tmp_path: Path
) -> None:
    invitation = sent_invitation(session, world, tmp_path, "c2")
    complaint = ses_event(
        invitation,
        "Complaint",
        complaint={"complainedRecipients": [{"emailAddress": invitation.address}]},
    )
    process(session, "ses", complaint, "c1")
    session.refresh(invitation)
    assert invitation.outcome_class == OutcomeClass.COMPLAINED
    assert suppressions.suppressed_among(
        session, world["org"].id, Channel.EMAIL, [invitation.address]
    )


def test_events_about_nothing_we_sent_or_not_understood(session: Session) -> None:
    unknown = {"Type": "Notification", "message": {"eventType": "Delivery",
               "mail": {"messageId": "nope"}, "delivery": {"recipients": ["x@y.org"]}}}  # fmt: skip
    assert process(session, "ses", unknown, "u1").status == ProviderEventStatus.IGNORED
    garbage = {"Type": "Notification", "message": {"eventType": "Open"}}
    failed = process(session, "ses", garbage, "g1")
    assert failed.status == ProviderEventStatus.FAILED and "not understood" in (failed.detail or "")
    not_final = {"MessageSid": "SM1", "MessageStatus": "sent"}
    assert process(session, "twilio", not_final, "t1").status == ProviderEventStatus.IGNORED


def test_twilio_callbacks_suppress_opt_outs_and_pause_on_filtering(
    session: Session, world: dict[str, Any], tmp_path: Path
) -> None:
    invitation = sent_invitation(session, world, tmp_path, "c0")
    # Pretend it went by SMS: the callbacks name the provider's message sid.
    invitation.channel, invitation.provider_message_id = Channel.SMS, "SM42"
    invitation.address = "+919812345678"
    session.commit()
    filtered = {"MessageSid": "SM42", "MessageStatus": "undelivered", "ErrorCode": "30007"}
    process(session, "twilio", filtered, "t-30007")
    assert pauses.active_pause(session, world["org"].id, Channel.SMS) is not None
    opted_out = {"MessageSid": "SM42", "MessageStatus": "failed", "ErrorCode": "21610"}
    process(session, "twilio", opted_out, "t-21610")
    session.refresh(invitation)
    assert invitation.outcome_code == "opted_out"
    assert suppressions.suppressed_among(
        session, world["org"].id, Channel.SMS, ["+919812345678"]
    ) == {"+919812345678"}


@pytest.mark.parametrize("message", [None, "plain text", ["a", "list"]])
def test_an_sns_message_that_is_not_an_ses_event_fails_cleanly(
    session: Session, message: object
) -> None:
    event = process(session, "ses", {"Type": "Notification", "message": message}, "odd")

    assert event.status == ProviderEventStatus.FAILED
    assert event.detail.startswith("not understood: the SNS Message is not an SES event")
