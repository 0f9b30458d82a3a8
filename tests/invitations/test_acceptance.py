"""Accepting invitations and confirming changed addresses: pipeline, CLI and HTTP."""

from __future__ import annotations

import email
import json
import re
from collections.abc import Iterator
from datetime import timedelta
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from portalflow.cli import app
from portalflow.config import Settings
from portalflow.models import (
    AcceptanceProblem,
    EmailKind,
    Invitation,
    InvitationStatus,
    PortalUser,
    PortalUserStatus,
)
from portalflow.pipelines.delivery import dispatch, dispatch_config
from portalflow.pipelines.delivery.channels import build_email_channel
from portalflow.pipelines.delivery.channels.bundle import Channels
from portalflow.pipelines.errors import InvalidInput
from portalflow.pipelines.invitations import acceptance, password_hashes, reinvite, tokens
from portalflow.pipelines.invitations.acceptance import AcceptanceError
from portalflow.pipelines.users import lifecycle
from portalflow.web.app import create_app

from ..cli_runner import flat, run
from ..factories import make_inviter, make_org, make_record, start_and_expand

CONFIG = dispatch_config.DispatchConfig(portal_base_url="https://p")
TOKEN_IN_LINK = re.compile(r"token=([A-Za-z0-9_\-]+)")
PASSWORD = "correct horse battery"


# -- helpers shared with test_expiry ---------------------------------------------------------


def tokens_in(outbox: Path) -> set[str]:
    found = set()
    for path in outbox.glob("*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=default_policy)
        body = message.get_body(("plain",))  # type: ignore[attr-defined]
        assert body is not None
        match = TOKEN_IN_LINK.search(body.get_content())
        assert match, "no link in the plain-text part"
        found.add(match.group(1))
    return found


def send(session: Session, ids: list[int], outbox: Path) -> dict[int, str]:
    """Dispatch ``ids`` to the file outbox; invitation id -> the token its email carries."""
    before = tokens_in(outbox)
    channels = Channels(lambda: build_email_channel(Settings(outbox_dir=outbox)))
    result = dispatch.dispatch(session, ids, channels=channels, config=CONFIG)
    assert sorted(result.sent) == sorted(ids)
    by_id = {}
    for token in tokens_in(outbox) - before:
        invitation = tokens.find_valid_invitation(session, token)
        by_id[invitation.id] = token
    session.commit()  # end the read: SQLite's BEGIN IMMEDIATE would block other connections
    return by_id


def invite(session: Session, world: dict[str, Any], crm_ids: list[str]) -> dict[int, str]:
    """Real sent invitations for ``crm_ids``: invitation id -> token."""
    _run, ids = start_and_expand(session, world["org"], world["inviter"], crm_ids)
    return send(session, ids, world["outbox"])


def make_world(session: Session, outbox: Path, records: int = 3) -> dict[str, Any]:
    org = make_org(session)
    inviter = make_inviter(session, org)
    inviter.language, inviter.time_zone = "fr", "Europe/Paris"
    for n in range(records):
        make_record(session, org, f"c{n}")
    session.commit()
    outbox.mkdir(exist_ok=True)
    return {"org": org, "inviter": inviter, "outbox": outbox}


def snapshot(session: Session) -> list[tuple[Any, ...]]:
    """Everything acceptance could change, to show a refusal changed nothing."""
    session.expire_all()
    users = session.execute(
        select(
            PortalUser.id,
            PortalUser.status,
            PortalUser.password_hash,
            PortalUser.confirmed_at,
            PortalUser.language,
        ).order_by(PortalUser.id)
    ).all()
    invitations = session.execute(
        select(Invitation.id, Invitation.status).order_by(Invitation.id)
    ).all()
    return [tuple(row) for row in users] + [tuple(row) for row in invitations]


def refused(session: Session, problem: AcceptanceProblem, call: Any) -> AcceptanceError:
    before = snapshot(session)
    with pytest.raises(AcceptanceError) as caught:
        call()
    session.rollback()
    assert caught.value.problem == problem
    assert str(caught.value)  # a readable message
    assert snapshot(session) == before
    return caught.value


@pytest.fixture
def world(session: Session, tmp_path: Path) -> dict[str, Any]:
    return make_world(session, tmp_path / "o")


def only(mapping: dict[int, str]) -> tuple[int, str]:
    [(invitation_id, token)] = mapping.items()
    return invitation_id, token


# -- acceptance -------------------------------------------------------------------------------


def test_accepting_confirms_the_user_once(session: Session, world: dict[str, Any]) -> None:
    invitation_id, token = only(invite(session, world, ["c0"]))
    user = acceptance.accept_invitation(session, token, password=PASSWORD)
    session.commit()

    assert user.status == PortalUserStatus.CONFIRMED
    assert user.confirmed_at is not None and user.status_changed_at is not None
    assert session.get_one(Invitation, invitation_id).status == InvitationStatus.ACCEPTED
    # Locale defaults come from the inviting CRM user.
    assert (user.language, user.time_zone) == ("fr", "Europe/Paris")
    assert password_hashes.verify_password(PASSWORD, user.password_hash)
    assert not password_hashes.verify_password(PASSWORD + "x", user.password_hash)

    error = refused(
        session,
        AcceptanceProblem.USED,
        lambda: acceptance.accept_invitation(session, token, password="another password"),
    )
    assert "already used" in str(error)
    assert password_hashes.verify_password(
        PASSWORD, session.get_one(PortalUser, user.id).password_hash
    )


def test_the_password_is_stored_only_as_a_salted_hash(
    session: Session, world: dict[str, Any]
) -> None:
    tokens_by_id = invite(session, world, ["c0", "c1"])
    users = [
        acceptance.accept_invitation(
            session, token, password=PASSWORD, language="de", time_zone="Asia/Kolkata"
        )
        for token in tokens_by_id.values()
    ]
    session.commit()
    for user in users:
        row = {c.key: getattr(user, c.key) for c in PortalUser.__table__.columns}
        assert not any(PASSWORD in str(value) for value in row.values())
        assert user.password_hash is not None
        _, scheme, version, params, _salt, _digest = user.password_hash.split("$")
        assert (scheme, version, params) == ("argon2id", "v=19", "m=19456,t=2,p=1")
        assert (user.language, user.time_zone) == ("de", "Asia/Kolkata")
    # Same password, different salts: different hashes.
    assert users[0].password_hash != users[1].password_hash


def test_expiry_is_checked_when_the_token_is_used(session: Session, world: dict[str, Any]) -> None:
    by_id = invite(session, world, ["c0", "c1"])
    (first, first_token), (second, second_token) = sorted(by_id.items())
    expires_at = session.get_one(Invitation, first).expires_at
    assert expires_at is not None

    refused(
        session,
        AcceptanceProblem.EXPIRED,
        lambda: acceptance.accept_invitation(
            session, first_token, password=PASSWORD, now=expires_at
        ),
    )
    later = session.get_one(Invitation, second).expires_at
    assert later is not None
    user = acceptance.accept_invitation(
        session, second_token, password=PASSWORD, now=later - timedelta(seconds=1)
    )
    session.commit()
    assert user.status == PortalUserStatus.CONFIRMED


def test_a_superseded_token_is_refused(session: Session, world: dict[str, Any]) -> None:
    first_id, first_token = only(invite(session, world, ["c0"]))
    user_id = session.get_one(Invitation, first_id).portal_user_id
    assert user_id is not None
    new_id = reinvite.reinvite(session, world["org"].id, user_id, inviter_id=world["inviter"].id)
    session.commit()
    _new, new_token = only(send(session, [new_id], world["outbox"]))

    error = refused(
        session,
        AcceptanceProblem.SUPERSEDED,
        lambda: acceptance.accept_invitation(session, first_token, password=PASSWORD),
    )
    assert "newer invitation" in str(error)
    assert acceptance.accept_invitation(session, new_token, password=PASSWORD).id == user_id


def test_unknown_and_unsent_tokens_are_refused(session: Session, world: dict[str, Any]) -> None:
    invitation_id, token = only(invite(session, world, ["c0"]))
    wrong = token[:-1] + ("A" if token[-1] != "A" else "B")
    for bad in (wrong, "", "x" * 300):
        refused(
            session,
            AcceptanceProblem.UNKNOWN,
            lambda bad=bad: acceptance.accept_invitation(session, bad, password=PASSWORD),
        )
    # A token whose send was never recorded (the invitation is still sending).
    invitation = session.get_one(Invitation, invitation_id)
    invitation.status = InvitationStatus.SENDING
    session.commit()
    refused(
        session,
        AcceptanceProblem.NOT_SENT,
        lambda: acceptance.accept_invitation(session, token, password=PASSWORD),
    )


def test_a_bad_password_is_refused_and_changes_nothing(
    session: Session, world: dict[str, Any]
) -> None:
    _id, token = only(invite(session, world, ["c0"]))
    before = snapshot(session)
    bad_locales: list[dict[str, str]] = [
        {"language": "not a language"},
        {"time_zone": "Mars/Olympus"},
        {"time_format": "25h"},
        {"country": "XX"},
        {"country": "in"},  # alpha-2 codes are upper case
    ]
    cases: list[tuple[str, dict[str, str], str | None]] = [
        ("short", {}, "too_short"),
        ("12345678901", {}, "too_short"),  # 11 characters: one short of the minimum
        ("x" * 129, {}, "too_long"),
        (" " * 12, {}, "blank"),
        ("123456789012", {}, "too_weak"),
        ("Password1234", {}, "too_weak"),
        ("zylker123456", {}, "too_weak"),  # the org's name: strong elsewhere, not here
        ("c0@customer.example.org", {}, "too_weak"),  # the address itself
        *((PASSWORD, locale, None) for locale in bad_locales),
    ]
    for password, locale, problem in cases:
        with pytest.raises(InvalidInput) as caught:
            acceptance.accept_invitation(session, token, password=password, **locale)
        session.rollback()
        assert getattr(caught.value, "problem", None) == problem, (password, locale)
        assert snapshot(session) == before
    user = acceptance.accept_invitation(
        session, token, password="purple-otter-lamp-42", time_format="24h", country="IN"
    )
    assert user.status == PortalUserStatus.CONFIRMED
    assert (user.time_format, user.country) == ("24h", "IN")


def test_the_locale_defaults_come_from_the_inviter_then_the_org(
    session: Session, world: dict[str, Any]
) -> None:
    by_id = invite(session, world, ["c0", "c1"])
    (_first, first_token), (_second, second_token) = sorted(by_id.items())
    world["inviter"].time_format, world["inviter"].country = "24h", "FR"
    session.commit()
    user = acceptance.accept_invitation(session, first_token, password=PASSWORD)
    assert (user.language, user.time_zone, user.time_format, user.country) == (
        "fr",
        "Europe/Paris",
        "24h",
        "FR",
    )
    world["inviter"].country = None  # the inviter has none: the org's country
    session.commit()
    other = acceptance.accept_invitation(session, second_token, password=PASSWORD)
    assert other.country == world["org"].country and other.country is not None


def test_a_removed_user_cannot_accept(session: Session, world: dict[str, Any]) -> None:
    invitation_id, token = only(invite(session, world, ["c0"]))
    user = session.get_one(PortalUser, session.get_one(Invitation, invitation_id).portal_user_id)
    lifecycle.transition(session, user, lifecycle.Action.REMOVE)
    session.commit()
    before = snapshot(session)
    with pytest.raises(lifecycle.InvalidTransition):
        acceptance.accept_invitation(session, token, password=PASSWORD)
    session.rollback()
    assert snapshot(session) == before


def suspended_with_confirm_link(session: Session, world: dict[str, Any]) -> tuple[int, str, str]:
    """A confirmed user whose address changed: (user id, accept token, confirm token)."""
    _id, accept_token = only(invite(session, world, ["c0"]))
    user = acceptance.accept_invitation(session, accept_token, password=PASSWORD)
    user.email = "new-address@customer.example.org"
    lifecycle.transition(session, user, lifecycle.Action.SUSPEND_LOGIN)
    session.commit()
    new_id = reinvite.reinvite(session, world["org"].id, user.id, inviter_id=world["inviter"].id)
    session.commit()
    assert session.get_one(Invitation, new_id).kind == EmailKind.CONFIRM_EMAIL
    _new, confirm_token = only(send(session, [new_id], world["outbox"]))
    return user.id, accept_token, confirm_token


def test_confirming_a_changed_email_restores_access_without_a_new_password(
    session: Session, world: dict[str, Any]
) -> None:
    user_id, _accept, confirm_token = suspended_with_confirm_link(session, world)
    password_hash = session.get_one(PortalUser, user_id).password_hash

    # The confirm link cannot accept an invitation (and set a password).
    error = refused(
        session,
        AcceptanceProblem.WRONG_KIND,
        lambda: acceptance.accept_invitation(session, confirm_token, password="new password"),
    )
    assert "confirms an email address" in str(error)

    user = acceptance.confirm_email(session, confirm_token)
    session.commit()
    assert user.id == user_id and user.status == PortalUserStatus.CONFIRMED
    assert user.password_hash == password_hash
    assert password_hashes.verify_password(PASSWORD, user.password_hash)
    refused(
        session, AcceptanceProblem.USED, lambda: acceptance.confirm_email(session, confirm_token)
    )


def test_an_accept_link_cannot_confirm_an_email(session: Session, world: dict[str, Any]) -> None:
    _id, token = only(invite(session, world, ["c0"]))
    refused(session, AcceptanceProblem.WRONG_KIND, lambda: acceptance.confirm_email(session, token))


def test_a_directly_written_token_works(session: Session, world: dict[str, Any]) -> None:
    """Unit level: an invitation row given a fresh token by hand."""
    invitation_id, _token = only(invite(session, world, ["c0"]))
    token, digest = tokens.new_token()
    invitation = session.get_one(Invitation, invitation_id)
    invitation.token_hash = digest
    session.commit()
    user = acceptance.accept_invitation(session, token, password=PASSWORD, language="en")
    assert user.language == "en" and user.time_zone == "Europe/Paris"


def test_verify_password_rejects_malformed_hashes() -> None:
    stored = password_hashes.hash_password(PASSWORD)
    assert password_hashes.verify_password(PASSWORD, stored)
    garbled = stored.replace("m=19456", "m=x")
    for bad in (None, "", "plain", "bcrypt$1$2$3$4$5", "scrypt$x$8$1$a$b", garbled, stored[:-4]):
        assert not password_hashes.verify_password(PASSWORD, bad)


# -- HTTP --------------------------------------------------------------------------------------


@pytest.fixture
def client(session: Session) -> Iterator[TestClient]:
    url = session.get_bind().url.render_as_string(hide_password=False)
    with TestClient(create_app(Settings(database_url=url))) as client:
        yield client


def test_http_accept_and_confirm(
    session: Session, world: dict[str, Any], client: TestClient
) -> None:
    by_id = invite(session, world, ["c0", "c1"])
    (_first, token), (_second, other_token) = sorted(by_id.items())

    answer = client.post("/portal/accept", json={"token": token, "password": "short"})
    assert answer.status_code == 422
    answer = client.post("/portal/accept", json={"token": "nope", "password": PASSWORD})
    assert answer.status_code == 400 and answer.json()["problem"] == "unknown"
    assert answer.json()["detail"]

    answer = client.post(
        "/portal/accept", json={"token": token, "password": PASSWORD, "language": "es"}
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "confirmed"
    session.expire_all()
    user = session.get_one(PortalUser, body["portal_user_id"])
    assert user.status == PortalUserStatus.CONFIRMED and user.language == "es"
    session.commit()

    again = client.post("/portal/accept", json={"token": token, "password": PASSWORD})
    assert again.status_code == 400 and again.json()["problem"] == "used"
    wrong_kind = client.post("/portal/confirm-email", json={"token": other_token})
    assert wrong_kind.status_code == 400 and wrong_kind.json()["problem"] == "wrong_kind"


def test_http_confirm_email(session: Session, world: dict[str, Any], client: TestClient) -> None:
    user_id, _accept, confirm_token = suspended_with_confirm_link(session, world)
    answer = client.post("/portal/confirm-email", json={"token": confirm_token})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"portal_user_id": user_id, "status": "confirmed"}
    again = client.post("/portal/confirm-email", json={"token": confirm_token})
    assert again.status_code == 400 and again.json()["problem"] == "used"


# -- CLI ---------------------------------------------------------------------------------------


def test_cli_accept_reads_the_password_from_a_file(cli_env: Path, tmp_path: Path) -> None:
    assert run("db", "upgrade")[0] == 0
    assert (
        run("orgs", "create", "--name", "Acme", "--domain", "acme.com", "--country", "US")[0] == 0
    )
    assert run("crm-users", "add", "--org", "1", "--name", "Ann", "--email", "ann@acme.com",
               "--modules", "Contacts")[0] == 0  # fmt: skip
    records = tmp_path / "records.jsonl"
    records.write_text(
        '{"crm_id": "A1", "module": "Contacts", "first_name": "Ana", "email": "ana@example.org"}\n',
        encoding="utf-8",
    )
    assert run("records", "import", str(records), "--org", "1")[0] == 0
    code, out = run("invite", "--org", "1", "--user-type", "1", "--inviter", "1", "-r", "A1")
    assert code == 0, out
    [token] = tokens_in(cli_env / "outbox")

    short = tmp_path / "short.txt"
    short.write_text("short\n", encoding="utf-8")
    code, out = run("accept", "--token", token, "--password-file", str(short))
    assert code == 2 and "at least 12 characters" in flat(out)

    # From stdin: `--password-file -`.
    result = CliRunner().invoke(
        app,
        ["accept", "--token", token, "--password-file", "-", "--time-zone", "UTC", "--json"],
        input=PASSWORD + "\n",
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"portal_user_id": 1, "status": "confirmed"}

    password_file = tmp_path / "pw.txt"
    password_file.write_text(PASSWORD + "\n", encoding="utf-8")

    code, out = run("accept", "--token", token, "--password-file", str(password_file))
    assert code == 2 and "already used" in out and "(used)" in out and "Traceback" not in out
    code, out = run("confirm-email", "--token", token)
    assert code == 2 and "(used)" in out

    code, out = run("sweep", "expired", "--json")
    assert code == 0 and json.loads(out) == {"expired": 0, "batches": 0}


def test_cli_takes_a_token_that_starts_with_a_dash(cli_env: Path, tmp_path: Path) -> None:
    assert run("db", "upgrade")[0] == 0
    password_file = tmp_path / "pw.txt"
    password_file.write_text(PASSWORD + "\n", encoding="utf-8")

    # Tokens are URL-safe base64: about one in 64 starts with "-". Either way reaches the
    # token check (this one is unknown), never "No such option".
    for args in (
        ["accept", "--token", "-Xk3unknown", "--password-file", str(password_file)],
        ["accept", "--password-file", str(password_file), "--", "-Xk3unknown"],
        ["confirm-email", "--token", "-Xk3unknown"],
    ):
        code, out = run(*args)
        assert code == 2 and "(unknown)" in out, (args, out)
    code, out = run("accept", "--password-file", str(password_file))
    assert code != 0 and "give the token once" in flat(out)
