"""Portal sign-in end to end through the pipelines: sessions, codes, resets, revocation.

Messages go through the real dispatch path into a real SMTP server (aiosmtpd) or the SMS
file outbox; the databases are the fixtures' SQLite and PostgreSQL.
"""

from __future__ import annotations

import email
import json
import re
from datetime import timedelta
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from portalflow.config import Settings
from portalflow.models import (
    Channel,
    EmailKind,
    Invitation,
    InvitationStatus,
    PortalSession,
    PortalUser,
    SessionEndReason,
    SignInMethod,
    SignInRefusal,
    utcnow,
)
from portalflow.pipelines.delivery import credits, dispatch
from portalflow.pipelines.delivery.channels import build_email_channel, build_sms_channel
from portalflow.pipelines.delivery.channels.bundle import Channels
from portalflow.pipelines.errors import InvalidInput
from portalflow.pipelines.invitations import acceptance, suppressions
from portalflow.pipelines.invitations.password_policy import PasswordRejected
from portalflow.pipelines.licensing import purchases
from portalflow.pipelines.ops import failure_reports, lapsed_claims
from portalflow.pipelines.signin import credentials, reset, sessions
from portalflow.pipelines.signin.guard import SignInGuard, SignInRules
from portalflow.pipelines.tenancy import orgs
from portalflow.pipelines.users import address_changes, lifecycle, transfers
from portalflow.pipelines.users.lifecycle import Action

from ..delivery.test_sms_dispatch import MOBILE, add_agent, sms_world
from ..delivery.test_sms_dispatch import invite as sms_invite
from ..factories import start_and_expand
from ..invitations.test_acceptance import PASSWORD, invite, make_world, only
from ..smtp_server import SmtpServer
from ..users.test_address_changes import phone_event

CONFIG = dispatch.DispatchConfig(portal_base_url="https://p")
SLUG = "zylker"
IP = "203.0.113.9"
NEW_PASSWORD = "velvet-harbour-quince-9"
RESET_LINK = re.compile(r"https://p/zylker/reset-password\?token=([A-Za-z0-9_\-]+)")
E164 = "+919812345678"


def invite_ids(session: Session, world: dict[str, Any], crm_ids: list[str]) -> list[int]:
    """Queued-and-claimed invitation rows for ``crm_ids``, not sent yet."""
    _run, ids = start_and_expand(session, world["org"], world["inviter"], crm_ids)
    return ids


def guard() -> SignInGuard:
    return SignInGuard.in_memory()


def confirmed_email_user(session: Session, tmp_path: Path) -> tuple[dict[str, Any], PortalUser]:
    world = make_world(session, tmp_path / "o", records=2)
    _id, token = only(invite(session, world, ["c0"]))
    user = acceptance.accept_invitation(session, token, password=PASSWORD)
    session.commit()
    return world, user


def sign_in(session: Session, the_guard: SignInGuard, login: str, password: str, **kw: Any):
    answer = credentials.sign_in_with_password(
        session, the_guard, portal_slug=SLUG, login=login, password=password, client_ip=IP, **kw
    )
    session.commit()
    return answer


def smtp_channels(server: SmtpServer) -> Channels:
    settings = Settings(email_channel="smtp", smtp_host=server.hostname, smtp_port=server.port)
    return Channels(lambda: build_email_channel(settings))


def sms_channels(tmp_path: Path) -> Channels:
    return Channels(sms=lambda: build_sms_channel(Settings(sms_outbox_dir=tmp_path / "sms")))


def sms_bodies(tmp_path: Path, invitation_id: int) -> list[str]:
    return [
        json.loads(path.read_text())["body"]
        for path in (tmp_path / "sms").glob(f"{invitation_id}-*.json")
    ]


def reset_token_from(server: SmtpServer) -> str:
    message = email.message_from_bytes(server.messages[-1].content, policy=default_policy)
    body = message.get_body(("plain",))  # type: ignore[attr-defined]
    match = RESET_LINK.search(body.get_content())
    assert match, "no reset link in the email"
    return match.group(1)


# -- password sign-in and sessions -----------------------------------------------------------


def test_a_password_sign_in_opens_a_session_stored_only_as_a_hash(
    session: Session, tmp_path: Path
) -> None:
    _world, user = confirmed_email_user(session, tmp_path)
    answer = sign_in(session, guard(), user.email.upper(), PASSWORD, user_agent="pytest")
    assert answer.refusal is None and answer.opened is not None
    token = answer.opened.token
    [row] = session.scalars(select(PortalSession)).all()
    assert row.token_hash == sessions.hash_session_token(token) and token not in row.token_hash
    assert (row.portal_user_id, row.method, row.client_ip) == (user.id, SignInMethod.PASSWORD, IP)

    checked = sessions.check_session(session, token)
    assert (checked.refusal, checked.portal_user_id, checked.org_id) == (None, user.id, user.org_id)
    assert sessions.check_session(session, token + "x").refusal == SignInRefusal.NO_SESSION
    later = utcnow() + sessions.SESSION_LIFETIME + timedelta(seconds=1)
    assert sessions.check_session(session, token, now=later).refusal == (
        SignInRefusal.SESSION_EXPIRED
    )

    assert sessions.end_session(session, token)
    session.commit()
    assert sessions.check_session(session, token).refusal == SignInRefusal.SESSION_ENDED
    assert not sessions.end_session(session, token)  # logging out twice ends nothing more


def test_a_wrong_password_and_an_unknown_account_get_the_same_answer(
    session: Session, tmp_path: Path
) -> None:
    _world, user = confirmed_email_user(session, tmp_path)
    the_guard = guard()
    wrong = sign_in(session, the_guard, user.email, "not the password at all")
    nobody = sign_in(session, the_guard, "nobody@customer.example.org", PASSWORD)
    assert wrong == nobody == credentials.SignInAnswer(SignInRefusal.INVALID_CREDENTIALS)
    assert session.scalar(select(PortalSession.id)) is None
    with pytest.raises(InvalidInput, match="neither an email address nor"):
        sign_in(session, the_guard, "not-a-login", PASSWORD)


def test_five_failures_lock_the_account_out_even_for_the_right_password(
    session: Session, tmp_path: Path
) -> None:
    _world, user = confirmed_email_user(session, tmp_path)
    the_guard = guard()
    for _ in range(5):
        assert sign_in(session, the_guard, user.email, "wrong").refusal == (
            SignInRefusal.INVALID_CREDENTIALS
        )
    locked = sign_in(session, the_guard, user.email, PASSWORD)
    assert locked.refusal == SignInRefusal.LOCKED_OUT and locked.retry_after
    # An account nobody has locks out the same way: the lockout tells nothing either.
    for _ in range(5):
        sign_in(session, the_guard, "ghost@customer.example.org", "wrong")
    assert sign_in(session, the_guard, "ghost@customer.example.org", "x").refusal == (
        SignInRefusal.LOCKED_OUT
    )
    # Another account is not locked; a success clears that account's failures.
    fresh = guard()
    sign_in(session, fresh, user.email, "wrong")
    assert sign_in(session, fresh, user.email, PASSWORD).refusal is None


def test_the_client_address_is_rate_limited(session: Session, tmp_path: Path) -> None:
    _world, user = confirmed_email_user(session, tmp_path)
    the_guard = SignInGuard.in_memory(SignInRules(per_client=("3/minute",)))
    for _ in range(3):
        sign_in(session, the_guard, f"{_}@customer.example.org", "x")
    limited = sign_in(session, the_guard, user.email, PASSWORD)
    assert limited.refusal == SignInRefusal.RATE_LIMITED and limited.retry_after


def test_each_status_is_refused_with_its_own_code_once_the_password_is_right(
    session: Session, tmp_path: Path
) -> None:
    _world, user = confirmed_email_user(session, tmp_path)
    the_guard = guard()
    opened = sign_in(session, the_guard, user.email, PASSWORD).opened
    assert opened is not None

    lifecycle.transition(session, user, Action.SUSPEND_LOGIN)
    session.commit()
    assert sign_in(session, the_guard, user.email, PASSWORD).refusal == (
        SignInRefusal.LOGIN_SUSPENDED
    )
    assert sign_in(session, the_guard, user.email, "wrong").refusal == (
        SignInRefusal.INVALID_CREDENTIALS
    )
    ended = session.get_one(PortalSession, opened.session_id)
    session.refresh(ended)
    assert ended.end_reason == SessionEndReason.LOGIN_SUSPENDED
    assert sessions.check_session(session, opened.token).refusal == SignInRefusal.SESSION_ENDED

    for action, refusal in (
        (Action.DEACTIVATE, SignInRefusal.DEACTIVATED),
        (Action.REMOVE, SignInRefusal.REMOVED),
        (Action.INVITE_AGAIN, SignInRefusal.UNCONFIRMED),
    ):
        lifecycle.transition(session, user, action)
        session.commit()
        assert sign_in(session, the_guard, user.email, PASSWORD).refusal == refusal


def test_bulk_deactivation_and_transfers_end_every_session_set_based(
    session: Session, tmp_path: Path
) -> None:
    world, user = confirmed_email_user(session, tmp_path)
    _id, token = only(invite(session, world, ["c1"]))
    other = acceptance.accept_invitation(session, token, password=PASSWORD)
    session.commit()
    the_guard = guard()
    mine = [sign_in(session, the_guard, user.email, PASSWORD).opened for _ in range(2)]
    theirs = sign_in(session, the_guard, other.email, PASSWORD).opened
    assert all(mine) and theirs

    partners = purchases.add_user_type_with_licences(
        session, world["org"].id, name="Partners", module="Contacts", licences=10
    )
    transfers.transfer_users(session, world["org"].id, [other.id], partners.id)
    session.commit()
    assert sessions.check_session(session, theirs.token).refusal == SignInRefusal.SESSION_ENDED

    moved = lifecycle.transition_many(session, world["org"].id, [user.id], Action.DEACTIVATE)
    session.commit()
    assert moved.moved == [user.id]
    reasons = session.execute(
        select(PortalSession.portal_user_id, PortalSession.end_reason).order_by(PortalSession.id)
    ).all()
    assert [tuple(row) for row in reasons] == [
        (user.id, SessionEndReason.DEACTIVATED),
        (user.id, SessionEndReason.DEACTIVATED),
        (other.id, SessionEndReason.TRANSFERRED),
    ]


# -- one-time codes by SMS -------------------------------------------------------------------


def confirmed_agent(session: Session, tmp_path: Path) -> tuple[Any, PortalUser]:
    org, agents, inviter = sms_world(session)
    orgs.configure_sms(session, org.id, sender_id="ZYLKER")
    credits.add(session, org.id, 20)
    add_agent(session, org, "a1", MOBILE, first_name="Kabir")
    session.commit()
    _started, ids = sms_invite(session, org, agents, inviter, ["a1"])
    dispatch.dispatch(session, ids, channels=sms_channels(tmp_path), config=CONFIG)
    session.commit()
    [body] = sms_bodies(tmp_path, ids[0])
    code = re.search(r"https://in\.zcrm\.to/([A-Za-z0-9]+)", body)
    assert code
    user = acceptance.accept_invitation(session, code.group(1), password=PASSWORD)
    session.commit()
    return org, user


def request_code(session: Session, the_guard: SignInGuard, phone: str) -> list[int]:
    answer = credentials.request_sign_in_code(
        session, the_guard, portal_slug=SLUG, phone=phone, client_ip=IP
    )
    session.commit()
    assert answer.refusal is None
    return answer.message_ids


def code_sign_in(session: Session, the_guard: SignInGuard, phone: str, code: str):
    answer = credentials.sign_in_with_code(
        session, the_guard, portal_slug=SLUG, phone=phone, code=code, client_ip=IP
    )
    session.commit()
    return answer


def test_a_verification_sms_carries_a_one_time_code_that_signs_in_once(
    session: Session, tmp_path: Path
) -> None:
    org, user = confirmed_agent(session, tmp_path)
    the_guard = guard()
    session.refresh(org)
    credits_before = org.sms_credits
    [first] = request_code(session, the_guard, "98123 45678")
    [second] = request_code(session, the_guard, MOBILE)
    result = dispatch.dispatch(session, [first, second], channels=sms_channels(tmp_path),
                               config=CONFIG)  # fmt: skip
    session.commit()
    assert result.sent == [second] and result.skipped == [first]  # the newer one replaced it
    [body] = sms_bodies(tmp_path, second)
    assert body.endswith(
        "is your verification code for the Zylker portal. Do not share it. - Zylker"
    )
    code = body.split()[0]
    assert re.fullmatch(r"\d{6}", code)
    row = session.get_one(Invitation, second)
    session.refresh(row)
    assert (row.kind, row.channel, row.dlt_template_id) == (
        EmailKind.SIGN_IN_CODE,
        Channel.SMS,
        "1207170000000000102",
    )
    assert code not in (row.token_hash or "")
    session.refresh(org)
    assert org.sms_credits == credits_before - 1  # paid for like every SMS

    wrong = "000000" if code != "000000" else "111111"
    assert code_sign_in(session, the_guard, E164, wrong).refusal == (
        SignInRefusal.INVALID_CREDENTIALS
    )
    answer = code_sign_in(session, the_guard, E164, code)
    assert answer.refusal is None and answer.opened is not None
    assert sessions.check_session(session, answer.opened.token).portal_user_id == user.id
    used = code_sign_in(session, the_guard, E164, code)
    assert used.refusal == SignInRefusal.INVALID_CREDENTIALS  # single use


def test_codes_go_only_to_confirmed_users_and_expire(session: Session, tmp_path: Path) -> None:
    _org, user = confirmed_agent(session, tmp_path)
    the_guard = guard()
    assert request_code(session, the_guard, "+91 98765 43210") == []  # nobody has it
    [sent] = request_code(session, the_guard, MOBILE)
    dispatch.dispatch(session, [sent], channels=sms_channels(tmp_path), config=CONFIG)
    session.commit()
    code = sms_bodies(tmp_path, sent)[0].split()[0]
    later = utcnow() + timedelta(minutes=11)
    expired = credentials.sign_in_with_code(
        session, the_guard, portal_slug=SLUG, phone=MOBILE, code=code, client_ip=IP, now=later
    )
    assert expired.refusal == SignInRefusal.INVALID_CREDENTIALS
    lifecycle.transition(session, user, Action.DEACTIVATE)
    session.commit()
    assert request_code(session, the_guard, MOBILE) == []  # no credits spent on them
    with pytest.raises(InvalidInput):
        request_code(session, the_guard, "12345")


def test_a_new_number_ends_the_sessions_and_only_it_signs_in(
    session: Session, tmp_path: Path
) -> None:
    org, _user = confirmed_agent(session, tmp_path)
    the_guard = guard()
    assert sign_in(session, the_guard, MOBILE, PASSWORD).refusal is None  # phone + password
    opened = sign_in(session, the_guard, MOBILE, PASSWORD).opened
    assert opened is not None
    event_id = phone_event(session, org, "a1", "+91 98765 43210")
    address_changes.handle_phone_changed(session, event_id)
    session.commit()
    ended = session.get_one(PortalSession, opened.session_id)
    session.refresh(ended)
    assert ended.end_reason == SessionEndReason.ADDRESS_CHANGED
    assert sign_in(session, the_guard, MOBILE, PASSWORD).refusal == (
        SignInRefusal.INVALID_CREDENTIALS
    )
    assert sign_in(session, the_guard, "+919876543210", PASSWORD).refusal is None


# -- forgot password -------------------------------------------------------------------------


def request_reset(session: Session, the_guard: SignInGuard, login: str) -> list[int]:
    answer = reset.request_reset(session, the_guard, portal_slug=SLUG, login=login, client_ip=IP)
    session.commit()
    assert answer.refusal is None
    return answer.message_ids


def do_reset(session: Session, the_guard: SignInGuard, token: str, password: str, **kw: Any):
    answer = reset.reset_password(
        session, the_guard, token=token, password=password, client_ip=IP, **kw
    )
    session.commit()
    return answer


def test_forgot_password_by_email_resets_once_and_ends_every_session(
    session: Session, tmp_path: Path, smtp_server: SmtpServer
) -> None:
    _world, user = confirmed_email_user(session, tmp_path)
    the_guard = guard()
    opened = sign_in(session, the_guard, user.email, PASSWORD).opened
    assert request_reset(session, the_guard, "nobody@customer.example.org") == []
    [message_id] = request_reset(session, the_guard, user.email)
    result = dispatch.dispatch(session, [message_id], channels=smtp_channels(smtp_server),
                               config=CONFIG)  # fmt: skip
    session.commit()
    assert result.sent == [message_id]
    received = smtp_server.messages[-1]
    assert received.rcpt_tos == [user.email]
    message = email.message_from_bytes(received.content, policy=default_policy)
    # In the language the user chose on acceptance (the inviter's, French, by default).
    assert message["Subject"] == "Réinitialisez votre mot de passe Zylker"
    token = reset_token_from(smtp_server)
    row = session.get_one(Invitation, message_id)
    session.refresh(row)
    assert row.expires_at is not None and row.sent_at is not None
    assert row.expires_at - row.sent_at == timedelta(hours=1)

    with pytest.raises(PasswordRejected):
        do_reset(session, the_guard, token, "short")
    done = do_reset(session, the_guard, token, NEW_PASSWORD)
    assert done.refusal is None and done.sessions_ended == 1
    assert opened is not None
    assert sessions.check_session(session, opened.token).refusal == SignInRefusal.SESSION_ENDED
    assert sign_in(session, the_guard, user.email, PASSWORD).refusal == (
        SignInRefusal.INVALID_CREDENTIALS
    )
    assert sign_in(session, the_guard, user.email, NEW_PASSWORD).refusal is None
    again = do_reset(session, the_guard, token, "another-long-passphrase-77")
    assert (again.refusal, again.problem) == (SignInRefusal.INVALID_RESET_TOKEN, "used")


def test_a_reset_link_expires_after_one_hour(
    session: Session, tmp_path: Path, smtp_server: SmtpServer
) -> None:
    _world, user = confirmed_email_user(session, tmp_path)
    the_guard = guard()
    ids = request_reset(session, the_guard, user.email)
    dispatch.dispatch(session, ids, channels=smtp_channels(smtp_server), config=CONFIG)
    session.commit()
    token = reset_token_from(smtp_server)
    later = utcnow() + timedelta(minutes=61)
    answer = do_reset(session, the_guard, token, NEW_PASSWORD, now=later)
    assert (answer.refusal, answer.problem) == (SignInRefusal.INVALID_RESET_TOKEN, "expired")


def test_forgot_password_by_sms_uses_the_forgot_password_template(
    session: Session, tmp_path: Path
) -> None:
    _org, user = confirmed_agent(session, tmp_path)
    the_guard = guard()
    [message_id] = request_reset(session, the_guard, MOBILE)
    dispatch.dispatch(session, [message_id], channels=sms_channels(tmp_path), config=CONFIG)
    session.commit()
    [body] = sms_bodies(tmp_path, message_id)
    link = re.search(r"https://in\.zcrm\.to/([A-Za-z0-9]+) The link expires in 1 hours\.", body)
    assert body.startswith("Reset your Zylker portal password here: ") and link
    assert do_reset(session, the_guard, link.group(1), NEW_PASSWORD).refusal is None
    assert sign_in(session, the_guard, MOBILE, NEW_PASSWORD).refusal is None
    assert user.id == session.scalar(select(Invitation.portal_user_id).where(
        Invitation.id == message_id))  # fmt: skip


def test_a_failed_reset_email_is_in_the_failure_report_and_suppresses_the_address(
    session: Session, tmp_path: Path, smtp_server: SmtpServer
) -> None:
    world, user = confirmed_email_user(session, tmp_path)
    smtp_server.handler.replies[user.email] = "550 5.1.1 no such user"
    the_guard = guard()
    [message_id] = request_reset(session, the_guard, user.email)
    result = dispatch.dispatch(session, [message_id], channels=smtp_channels(smtp_server),
                               config=CONFIG)  # fmt: skip
    session.commit()
    assert result.failed == [message_id]
    report = failure_reports.failure_report(
        session, failure_reports.FailureFilter(org_id=world["org"].id)
    )
    [listed] = [i for i in report["invitees"] if i["invitation_id"] == message_id]
    assert listed["reason"] == "smtp_no_such_user"
    session.refresh(user)
    assert user.status.value == "confirmed"  # a failed reset message removes nobody

    # The next request is refused before any send, as suppressed, and is reported too.
    assert request_reset(session, the_guard, user.email) == []
    refused = session.scalars(
        select(Invitation).where(Invitation.failure_code == "suppressed")
    ).one()
    assert (refused.kind, refused.status) == (EmailKind.RESET_PASSWORD, InvitationStatus.FAILED)
    assert suppressions.active(session, world["org"].id)


def test_a_reset_email_carries_no_opt_out_link(
    session: Session, tmp_path: Path, smtp_server: SmtpServer
) -> None:
    world, user = confirmed_email_user(session, tmp_path)
    signed = dispatch.DispatchConfig(portal_base_url="https://p", link_key=b"k" * 32)
    [message_id] = request_reset(session, guard(), user.email)
    dispatch.dispatch(session, [message_id], channels=smtp_channels(smtp_server), config=signed)
    session.commit()
    message = email.message_from_bytes(smtp_server.messages[-1].content, policy=default_policy)
    assert message["List-Unsubscribe"] is None  # one click on it would block the next reset
    # An invitation sent the same way still carries one.
    [invitation_id] = invite_ids(session, world, ["c1"])
    dispatch.dispatch(session, [invitation_id], channels=smtp_channels(smtp_server), config=signed)
    session.commit()
    invited = email.message_from_bytes(smtp_server.messages[-1].content, policy=default_policy)
    assert invited["List-Unsubscribe"] is not None


def test_recovery_recognises_a_verification_sms_it_finds_at_the_provider(
    session: Session, tmp_path: Path
) -> None:
    _org, _user = confirmed_agent(session, tmp_path)
    [message_id] = request_code(session, guard(), MOBILE)
    dispatch.dispatch(session, [message_id], channels=sms_channels(tmp_path), config=CONFIG)
    session.commit()
    [body] = sms_bodies(tmp_path, message_id)
    row = session.get_one(Invitation, message_id)
    session.refresh(row)
    assert row.token_hash is not None
    # A lapsed claim's SMS found at the provider completes the row instead of a second send.
    assert lapsed_claims.carries_token(row.token_hash, row.id)(body)
    assert not lapsed_claims.carries_token(row.token_hash, row.id + 1)(body)
    other = "000000" if body[:6] != "000000" else "111111"
    assert not lapsed_claims.carries_token(row.token_hash, row.id)(other + body[6:])
