"""SMS invitations end to end: phone rules, approved DLT mappings, credits, both providers."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from portalflow.config import Settings
from portalflow.models import (
    BulkRun,
    Invitation,
    InvitationStatus,
    Org,
    PortalUser,
    ReasonCode,
    SmsEncoding,
    SmsTemplateKind,
    make_session_factory,
)
from portalflow.pipelines.delivery import credits, dispatch, dispatch_config, send_outcomes
from portalflow.pipelines.delivery.channels import build_sms_channel
from portalflow.pipelines.delivery.channels.bundle import Channels
from portalflow.pipelines.errors import InvalidInput
from portalflow.pipelines.invitations import bulk, tokens
from portalflow.pipelines.licensing import purchases
from portalflow.pipelines.ops import reports
from portalflow.pipelines.tenancy import orgs

from ..aws_sms_server import AwsSmsServer, running_aws_sms_server
from ..factories import approve_sms_template, make_inviter, make_record, make_sms_org
from ..twilio_server import TwilioServer, running_twilio_server

CONFIG = dispatch_config.DispatchConfig(portal_base_url="https://portal.test")
MOBILE = "+91 98123 45678"


def sms_world(session: Session, *, approve: tuple[SmsTemplateKind, ...] = tuple(SmsTemplateKind)):
    org = make_sms_org(session)
    for kind in approve:
        approve_sms_template(session, org, kind)
    agents = purchases.add_user_type_with_licences(
        session,
        org.id,
        name="Agents",
        module="Vendors",
        invitation_preference="phone",
        licences=1000,
    )
    inviter = make_inviter(session, org, modules=["Vendors"], email="ops@zylker.com")
    session.commit()
    return org, agents, inviter


def add_agent(session: Session, org: Org, crm_id: str, phone: str | None, **kw: Any) -> None:
    make_record(session, org, crm_id, module="Vendors", phone=phone, email=None, **kw)


def invite(session: Session, org: Org, agents: Any, inviter: Any, crm_ids: list[str]):
    started = bulk.start_bulk_run(
        session, org_id=org.id, user_type_id=agents.id, inviter_id=inviter.id, crm_ids=crm_ids
    )
    session.commit()
    ids = [i for chunk in started.chunk_ids for i in bulk.expand_chunk(session, chunk)]
    session.commit()
    return started, ids


def outbox_channels(tmp_path: Path) -> Channels:
    return Channels(sms=lambda: build_sms_channel(Settings(sms_outbox_dir=tmp_path / "sms")))


def test_phone_rules_decide_who_gets_an_sms(session: Session) -> None:
    org, agents, inviter = sms_world(session)
    cases = {
        "mobile": (MOBILE, None),
        "local": ("09812345679", None),
        "landline": ("+91 80 2345 6789", ReasonCode.INVALID_PHONE),
        "abroad": ("+1 415 555 2671", ReasonCode.UNSUPPORTED_COUNTRY),
        "garbled": ("98-12", ReasonCode.INVALID_PHONE),
        "none": (None, ReasonCode.INVALID_PHONE),
    }
    for crm_id, (phone, _) in cases.items():
        add_agent(session, org, crm_id, phone)
    started, ids = invite(session, org, agents, inviter, list(cases))
    report = reports.bulk_run_report(session, started.run_id)
    refused = {row["crm_id"]: row["reason"] for row in report["failed_invitees"]}
    assert refused == {k: v.value for k, (_, v) in cases.items() if v is not None}
    addresses = set(session.scalars(select(Invitation.address).where(Invitation.id.in_(ids))))
    assert addresses == {"+919812345678", "+919812345679"}
    phones = set(session.scalars(select(PortalUser.phone)))
    assert phones == {"+919812345678", "+919812345679"}


def test_one_unapproved_kind_refuses_every_invitation(session: Session) -> None:
    org, agents, inviter = sms_world(
        session, approve=(SmsTemplateKind.INVITATION, SmsTemplateKind.VERIFICATION)
    )
    add_agent(session, org, "a1", MOBILE)
    started, ids = invite(session, org, agents, inviter, ["a1"])
    assert ids == []
    assert reports.bulk_run_report(session, started.run_id)["failed_by_reason"] == {
        "sms_templates_not_approved": 1
    }


def test_sms_is_sent_checked_counted_and_paid_for(session: Session, tmp_path: Path) -> None:
    org, agents, inviter = sms_world(session)
    credits.add(session, org.id, 5)
    add_agent(session, org, "a1", MOBILE, first_name="Arjun")
    session.commit()
    started, ids = invite(session, org, agents, inviter, ["a1"])
    result = dispatch.dispatch(session, ids, channels=outbox_channels(tmp_path), config=CONFIG)
    assert result.sent == ids

    [file] = list((tmp_path / "sms").glob("*.json"))
    sms = json.loads(file.read_text())
    assert sms["to"] == "+919812345678" and sms["dlt_template_id"] == "1207170000000000101"
    assert sms["body"].startswith("Dear Arjun, you are invited to the Zylker portal.")
    link = sms["body"].split("Accept within 7 days: ")[1].removesuffix(" - Zylker")
    assert link.startswith("https://in.zcrm.to/") and len(link) <= 30

    invitation = session.get_one(Invitation, ids[0])
    session.refresh(invitation)
    assert (invitation.sms_encoding, invitation.sms_segments) == (SmsEncoding.GSM7, 1)
    assert invitation.dlt_template_id == "1207170000000000101"
    code = link.rsplit("/", 1)[1]
    assert invitation.token_hash == tokens.hash_token(code)
    assert tokens.find_valid_invitation(session, code).id == invitation.id
    session.refresh(org)
    assert org.sms_credits == 4
    assert session.get_one(BulkRun, started.run_id).sent == 1


def test_a_variable_over_30_characters_is_a_dlt_mismatch(session: Session, tmp_path: Path) -> None:
    org, agents, inviter = sms_world(session)
    credits.add(session, org.id, 5)
    add_agent(session, org, "long", MOBILE, first_name="Venkataramanan Subrahmanyam Iyer")
    session.commit()
    _, ids = invite(session, org, agents, inviter, ["long"])
    result = dispatch.dispatch(session, ids, channels=outbox_channels(tmp_path), config=CONFIG)
    assert result.failed == ids
    invitation = session.get_one(Invitation, ids[0])
    session.refresh(invitation)
    assert invitation.failure_code == "dlt_mismatch" and "30" in (invitation.failure_detail or "")
    assert not (tmp_path / "sms").exists() or not list((tmp_path / "sms").iterdir())
    session.refresh(org)
    assert org.sms_credits == 5


def test_no_credit_means_nothing_sent(session: Session, tmp_path: Path) -> None:
    org, agents, inviter = sms_world(session)
    add_agent(session, org, "a1", MOBILE)
    session.commit()
    _, ids = invite(session, org, agents, inviter, ["a1"])
    result = dispatch.dispatch(session, ids, channels=outbox_channels(tmp_path), config=CONFIG)
    assert result.failed == ids
    invitation = session.get_one(Invitation, ids[0])
    session.refresh(invitation)
    assert invitation.failure_code == "insufficient_sms_credits"
    assert not (tmp_path / "sms").exists() or not list((tmp_path / "sms").iterdir())


def test_an_edit_awaiting_approval_keeps_the_old_text_in_use(
    session: Session, tmp_path: Path
) -> None:
    org, agents, inviter = sms_world(session)
    credits.add(session, org.id, 5)
    from portalflow.pipelines.content.sms_templates import edit_template

    edited = (
        "Hi {{ record.first_name }}, join the {{ portal.name }} portal: {{ invite_url }} - Zylker"
    )
    edit_template(session, org.id, SmsTemplateKind.INVITATION, edited, config=Settings())
    add_agent(session, org, "a1", MOBILE, first_name="Meera")
    session.commit()
    _, ids = invite(session, org, agents, inviter, ["a1"])
    dispatch.dispatch(session, ids, channels=outbox_channels(tmp_path), config=CONFIG)
    [file] = list((tmp_path / "sms").glob("*.json"))
    assert json.loads(file.read_text())["body"].startswith("Dear Meera, you are invited")


def test_credits_never_go_negative_under_concurrent_sends(
    pg_engine: Engine, tmp_path: Path
) -> None:
    factory = make_session_factory(pg_engine)
    with factory() as session:
        org, agents, inviter = sms_world(session)
        credits.add(session, org.id, 10)
        for n in range(24):
            add_agent(session, org, f"a{n}", f"+91 98{n:08d}")
        session.commit()
        _, ids = invite(session, org, agents, inviter, [f"a{n}" for n in range(24)])
        org_id = org.id

    results: list[send_outcomes.DispatchResult] = []

    def worker(part: list[int]) -> None:
        with factory() as own:
            results.append(
                dispatch.dispatch(own, part, channels=outbox_channels(tmp_path), config=CONFIG)
            )

    threads = [threading.Thread(target=worker, args=(ids[n::4],)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sent = [i for result in results for i in result.sent]
    assert len(sent) == 10 and len(list((tmp_path / "sms").glob("*.json"))) == 10
    with factory() as session:
        assert session.get_one(Org, org_id).sms_credits == 0
        codes = list(
            session.scalars(
                select(Invitation.failure_code).where(Invitation.status == InvitationStatus.FAILED)
            )
        )
        assert codes == ["insufficient_sms_credits"] * 14


@pytest.fixture
def twilio() -> Iterator[TwilioServer]:
    with running_twilio_server() as server:
        yield server


@pytest.fixture
def aws_sms(aws_env: None) -> Iterator[AwsSmsServer]:
    with running_aws_sms_server() as server:
        yield server


def provider_channels(kind: str, server: Any) -> Channels:
    if kind == "twilio":
        settings = Settings(
            sms_channel="twilio",
            twilio_account_sid=server.state.account_sid,
            twilio_auth_token=server.state.auth_token,
            twilio_from="ZYLKER",
            twilio_api_base_url=server.base_url,
            twilio_timeout=5,
        )
    else:
        settings = Settings(
            sms_channel="aws",
            aws_sms_region="ap-south-1",
            aws_sms_endpoint_url=server.endpoint_url,
            aws_sms_timeout=5,
        )
    return Channels(sms=lambda: build_sms_channel(settings))


@pytest.mark.parametrize("provider", ["twilio", "aws"])
def test_providers_take_the_checked_sms_and_refusals_refund_credits(
    session: Session, provider: str, request: pytest.FixtureRequest
) -> None:
    server = request.getfixturevalue("twilio" if provider == "twilio" else "aws_sms")
    org, agents, inviter = sms_world(session)
    orgs.configure_sms(session, org.id, sender_id="ZYLKER")
    credits.add(session, org.id, 10)
    add_agent(session, org, "ok", MOBILE, first_name="Kabir")
    add_agent(session, org, "bad", "+91 98765 43210", first_name="Diya")
    session.commit()
    if provider == "twilio":
        server.state.fail("+919876543210", 21211, message="Invalid 'To' Phone Number")
    else:
        server.state.fail("+919876543210", "ValidationException")
    _, ids = invite(session, org, agents, inviter, ["ok", "bad"])
    result = dispatch.dispatch(
        session, ids, channels=provider_channels(provider, server), config=CONFIG
    )
    assert len(result.sent) == 1 and len(result.failed) == 1

    requests = server.state.requests
    if provider == "twilio":
        bodies = {r.form["To"]: r.form["Body"] for r in requests}
    else:
        bodies = {r.body["DestinationPhoneNumber"]: r.body["MessageBody"] for r in requests}
        ok = next(r for r in requests if r.body["DestinationPhoneNumber"] == "+919812345678")
        assert ok.body["DestinationCountryParameters"] == {
            "IN_ENTITY_ID": "1201170000000000001",
            "IN_TEMPLATE_ID": "1207170000000000101",
        }
    assert bodies["+919812345678"].startswith("Dear Kabir, you are invited to the Zylker portal")
    sent = session.get_one(Invitation, result.sent[0])
    failed = session.get_one(Invitation, result.failed[0])
    session.refresh(sent)
    session.refresh(failed)
    assert sent.provider_message_id and failed.failure_code
    session.refresh(org)
    assert org.sms_credits == 9  # the refused message was refunded


def test_invitation_preference_cannot_change_once_the_type_has_users(
    session: Session, tmp_path: Path
) -> None:
    org, agents, inviter = sms_world(session)
    with pytest.raises(InvalidInput, match="India"):
        other = make_sms_org(session, name="Elsewhere", country="US", company_domain="else.com")
        vendors = orgs.add_user_type(session, other.id, name="Vendors", module="Vendors")
        orgs.set_invitation_preference(session, other.id, vendors.id, preference="phone")
    add_agent(session, org, "a1", MOBILE)
    session.commit()
    invite(session, org, agents, inviter, ["a1"])
    with pytest.raises(InvalidInput, match="already has users"):
        orgs.set_invitation_preference(session, org.id, agents.id, preference="email")
