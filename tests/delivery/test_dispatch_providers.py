"""Dispatch through the real SES and SMTP clients against local servers: outcomes and retries."""

from __future__ import annotations

import email
from datetime import timedelta
from email.policy import default as default_policy
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from portalflow.config import Settings
from portalflow.models import (
    BulkRun,
    BulkRunStatus,
    Invitation,
    InvitationStatus,
    PortalUser,
    PortalUserStatus,
    utcnow,
)
from portalflow.pipelines.content import email_templates
from portalflow.pipelines.delivery import dispatch, dispatch_config
from portalflow.pipelines.delivery.channels import build_email_channel
from portalflow.pipelines.delivery.channels.bundle import Channels
from portalflow.pipelines.invitations import suppressions

from .. import factories
from ..factories import client_portal, make_inviter, make_org, make_record
from ..moto_server import sent_raw_messages
from ..smtp_server import SmtpServer

SENDER = "portal@zylker-support.com"


def start_and_expand(session: Session, world: dict[str, Any], crm_ids: list[str], **kw: Any):
    return factories.start_and_expand(session, world["org"], world["inviter"], crm_ids, **kw)


@pytest.fixture
def world(session: Session) -> dict[str, Any]:
    org = make_org(session, from_email=SENDER)
    inviter = make_inviter(session, org)
    for n in range(3):
        make_record(session, org, f"p{n}", first_name=f"Priya{n}")
    make_record(session, org, "flaky", email="flaky@customer.example.org")
    make_record(session, org, "bounce", email="bounce@customer.example.org")
    session.commit()
    return {"org": org, "inviter": inviter}


def smtp_settings(server: SmtpServer) -> Settings:
    return Settings(email_channel="smtp", smtp_host=server.hostname, smtp_port=server.port)


def test_ses_dispatch_records_the_provider_message_id(
    session: Session, world: dict[str, Any], ses_endpoint: str
) -> None:
    channel = build_email_channel(
        Settings(email_channel="ses", ses_endpoint_url=ses_endpoint, ses_timeout=5)
    )
    channel.client.create_email_identity(EmailIdentity=SENDER)  # type: ignore[attr-defined]
    started, ids = start_and_expand(session, world, ["p0", "p1", "p2"])
    config = dispatch_config.DispatchConfig(portal_base_url="https://portal.test")
    result = dispatch.dispatch(session, ids, channels=Channels(lambda: channel), config=config)
    assert sorted(result.sent) == sorted(ids)

    raw = sent_raw_messages(ses_endpoint)
    assert len(raw) == 3
    stored = set(session.scalars(select(Invitation.provider_message_id)))
    assert stored == {message["id"] for message in raw}
    assert session.get_one(BulkRun, started.run_id).status == BulkRunStatus.COMPLETED


def test_temporary_failures_retry_then_end_as_technical_failure(
    session: Session, world: dict[str, Any], smtp_server: SmtpServer
) -> None:
    smtp_server.handler.replies["flaky@customer.example.org"] = "451 4.3.0 try again later"
    channel = build_email_channel(smtp_settings(smtp_server))
    config = dispatch_config.DispatchConfig(portal_base_url="https://portal.test", max_attempts=2)
    started, [invitation_id] = start_and_expand(session, world, ["flaky"])

    first = dispatch.dispatch(
        session, [invitation_id], channels=Channels(lambda: channel), config=config
    )
    assert first.sent == [] and [i for i, _ in first.retry] == [invitation_id]
    delay = first.retry[0][1]
    assert timedelta(seconds=5) <= delay <= timedelta(seconds=10)
    invitation = session.get_one(Invitation, invitation_id)
    session.refresh(invitation)
    assert (invitation.status, invitation.attempts) == (InvitationStatus.QUEUED, 1)
    assert invitation.failure_code == "smtp_temporary" and invitation.token_hash is None

    # A retry message that arrives early finds the row not yet due and sends nothing.
    early = dispatch.dispatch(
        session, [invitation_id], channels=Channels(lambda: channel), config=config
    )
    assert early.skipped == [invitation_id]

    later = utcnow() + timedelta(hours=1)
    last = dispatch.dispatch(
        session,
        [invitation_id],
        channels=Channels(lambda: channel),
        config=config,
        now=lambda: later,
    )
    assert last.failed == [invitation_id] and last.retry == []
    session.refresh(invitation)
    assert (invitation.status, invitation.failure_code, invitation.attempts) == (
        InvitationStatus.FAILED,
        "technical_failure",
        2,
    )
    run = session.get_one(BulkRun, started.run_id)
    session.refresh(run)
    assert (run.sent, run.failed, run.queued, run.status) == (0, 1, 0, BulkRunStatus.COMPLETED)
    assert smtp_server.messages == []


def test_a_permanent_rejection_frees_the_record_for_a_later_invite(
    session: Session, world: dict[str, Any], smtp_server: SmtpServer
) -> None:
    # A refusal about our message, not the address: nothing is suppressed.
    smtp_server.handler.replies["bounce@customer.example.org"] = "554 5.7.1 message refused"
    channel = build_email_channel(smtp_settings(smtp_server))
    config = dispatch_config.DispatchConfig(portal_base_url="https://portal.test")
    _, ids = start_and_expand(session, world, ["bounce", "p0"])
    result = dispatch.dispatch(session, ids, channels=Channels(lambda: channel), config=config)
    assert len(result.sent) == 1 and len(result.failed) == 1
    failed = session.get_one(Invitation, result.failed[0])
    session.refresh(failed)
    assert failed.failure_code == "smtp_policy_rejected" and "message refused" in (
        failed.failure_detail or ""
    )
    user = session.get_one(PortalUser, failed.portal_user_id)
    session.refresh(user)
    assert user.status == PortalUserStatus.REMOVED

    del smtp_server.handler.replies["bounce@customer.example.org"]
    _, again = start_and_expand(session, world, ["bounce"])
    assert (
        dispatch.dispatch(session, again, channels=Channels(lambda: channel), config=config).sent
        == again
    )
    session.refresh(user)
    assert user.status == PortalUserStatus.INVITED
    assert [m.rcpt_tos for m in smtp_server.messages] == [
        ["p0@customer.example.org"],
        ["bounce@customer.example.org"],
    ]


@pytest.mark.parametrize(
    ("reply", "code"),
    [
        ("550 5.1.1 <bounce@customer.example.org>: no such user", "smtp_no_such_user"),
        ("550 5.1.10 recipient address has null MX", "smtp_null_mx"),
        ("550 5.2.1 mailbox disabled", "smtp_mailbox_disabled"),
    ],
)
def test_an_smtp_rejection_of_the_recipient_suppresses_the_address(
    session: Session, world: dict[str, Any], smtp_server: SmtpServer, reply: str, code: str
) -> None:
    smtp_server.handler.replies["bounce@customer.example.org"] = reply
    channel = build_email_channel(smtp_settings(smtp_server))
    config = dispatch_config.DispatchConfig(portal_base_url="https://portal.test")
    _, ids = start_and_expand(session, world, ["bounce", "p0"])
    result = dispatch.dispatch(session, ids, channels=Channels(lambda: channel), config=config)
    session.commit()
    [failed_id] = result.failed
    failed = session.get_one(Invitation, failed_id)
    session.refresh(failed)
    assert failed.failure_code == code

    [listed] = suppressions.active(session, world["org"].id)
    assert (listed.address, listed.reason, listed.invitation_id) == (
        "bounce@customer.example.org",
        code,
        failed_id,
    )
    # Like a permanent bounce: the next invite to the address is refused before any send.
    del smtp_server.handler.replies["bounce@customer.example.org"]
    _, again = start_and_expand(session, world, ["bounce"])
    retry = dispatch.dispatch(session, again, channels=Channels(lambda: channel), config=config)
    assert retry.sent == []
    refused = session.scalars(
        select(Invitation).where(Invitation.crm_id == "bounce").order_by(Invitation.id.desc())
    ).first()
    assert refused is not None and refused.failure_code == "suppressed"
    assert [m.rcpt_tos for m in smtp_server.messages] == [["p0@customer.example.org"]]


def test_an_smtp_policy_rejection_does_not_suppress_the_address(
    session: Session, world: dict[str, Any], smtp_server: SmtpServer
) -> None:
    smtp_server.handler.replies["bounce@customer.example.org"] = (
        "550 5.7.1 client host rejected by policy"
    )
    channel = build_email_channel(smtp_settings(smtp_server))
    config = dispatch_config.DispatchConfig(portal_base_url="https://portal.test")
    _, ids = start_and_expand(session, world, ["bounce"])
    result = dispatch.dispatch(session, ids, channels=Channels(lambda: channel), config=config)
    session.commit()
    assert result.failed == ids
    assert suppressions.active(session, world["org"].id) == []


def test_the_orgs_custom_template_and_the_chosen_language_are_used(
    session: Session, world: dict[str, Any], smtp_server: SmtpServer
) -> None:
    org = world["org"]
    email_templates.save_custom_template(
        session,
        org.id,
        client_portal(session, org).id,
        "accept_invitation",
        "en",
        subject="{{ record.first_name }}, your {{ portal.name }} account awaits",
        html_body='<p>Dear {{ record.first_name }}</p><a href="{{ invite_url }}">Join</a>',
    )
    session.commit()
    channel = build_email_channel(smtp_settings(smtp_server))
    config = dispatch_config.DispatchConfig(portal_base_url="https://portal.test")
    _, english = start_and_expand(session, world, ["p0"])
    _, japanese = start_and_expand(session, world, ["p1"], language="ja")
    dispatch.dispatch(
        session, english + japanese, channels=Channels(lambda: channel), config=config
    )

    subjects = {
        message.rcpt_tos[0]: email.message_from_bytes(message.content, policy=default_policy)[
            "Subject"
        ]
        for message in smtp_server.messages
    }
    assert subjects["p0@customer.example.org"] == "Priya0, your Zylker account awaits"
    # No custom Japanese template: the shipped Japanese default.
    assert "Zylker" in subjects["p1@customer.example.org"]
    assert any("\u3040" <= ch <= "\u30ff" for ch in subjects["p1@customer.example.org"])
