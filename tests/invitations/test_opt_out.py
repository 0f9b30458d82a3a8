"""One-click opt-out (RFC 8058), the visible stop link, branding and the expiry date in emails."""

from __future__ import annotations

import email
import json
from collections.abc import Iterator
from email.message import Message
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from portalflow.config import Settings
from portalflow.models import Channel, Org, OutcomeCode, Suppression
from portalflow.pipelines.delivery import dispatch, dispatch_config
from portalflow.pipelines.delivery.channels import build_email_channel
from portalflow.pipelines.delivery.channels.bundle import Channels
from portalflow.pipelines.invitations import bulk, opt_out
from portalflow.pipelines.invitations.link_keys import link_key
from portalflow.pipelines.invitations.suppressions import suppressed_among
from portalflow.web.app import create_app

from ..cli_runner import run
from ..delivery.test_dispatch_core import expand_claimed, invite
from ..factories import client_portal, make_inviter, make_org, make_record


@pytest.fixture
def settings(session: Session, tmp_path: Path) -> Settings:
    url = session.get_bind().url.render_as_string(hide_password=False)
    return Settings(
        database_url=url,
        var_dir=tmp_path / "var",
        outbox_dir=tmp_path / "outbox",
        portal_base_url="https://portal.example.com/portal",
        secret_key="test-secret-key-of-this-deployment",
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


def send_invites(session: Session, settings: Settings, count: int) -> list[Message]:
    """A bulk run over ``count`` contacts sent to the file outbox; the emails, by recipient."""
    config = dispatch_config.DispatchConfig(
        portal_base_url=settings.portal_base_url, link_key=link_key(settings)
    )
    _run_id, [chunk_id] = invite(session, count)
    claim = expand_claimed(session, chunk_id, config)
    channels = Channels(lambda: build_email_channel(settings))
    result = dispatch.send_claim(session, claim.claim, channels=channels, config=config)
    assert len(result.sent) == count
    emails = [email.message_from_bytes(p.read_bytes()) for p in settings.outbox_dir.glob("*.eml")]
    return sorted(emails, key=lambda message: message["To"])


def parts(message: Message) -> tuple[str, str]:
    """The text and HTML bodies, with the wire's CRLF line ends read back as newlines."""
    text, html = (
        part.get_payload(decode=True).decode().replace("\r\n", "\n")
        for part in message.get_payload()
    )
    return text, html


def opt_out_url(message: Message) -> str:
    header = message["List-Unsubscribe"].strip()  # a long header is folded onto its next line
    assert header.startswith("<") and header.endswith(">")
    return header[1:-1]


def suppressions(session: Session) -> list[tuple[str, str]]:
    session.expire_all()
    return [(s.address, s.reason) for s in session.scalars(select(Suppression))]


def test_every_invitation_email_carries_one_click_and_visible_opt_out(
    session: Session, settings: Settings
) -> None:
    first, second = send_invites(session, settings, 2)

    for message in (first, second):
        url = opt_out_url(message)
        assert url.startswith("https://portal.example.com/portal/unsubscribe/")
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        text, html = parts(message)
        assert f"Stop invitations from Zylker: {url}" in text
        assert f'href="{url}"' in html and "Stop invitations from Zylker</a>" in html
    assert opt_out_url(first) != opt_out_url(second)  # one link per invitation


def test_the_expiry_date_logo_and_footer_are_in_the_email(
    session: Session, settings: Settings
) -> None:
    org = make_org(session, name="Acme", company_domain="acme.com")
    org.logo_url = "https://cdn.acme.com/logo.png"
    org.email_footer = "Acme Ltd, 1 Main Street, Springfield\nhelp@acme.com"
    make_record(session, org, "A-1", email="ann@example.org")
    started = bulk.start_bulk_run(
        session,
        org_id=org.id,
        user_type_id=client_portal(session, org).id,
        inviter_id=make_inviter(session, org).id,
        crm_ids=["A-1"],
        language="de",
    )
    session.commit()
    config = dispatch_config.DispatchConfig(
        portal_base_url=settings.portal_base_url, link_key=link_key(settings)
    )
    claim = expand_claimed(session, started.chunk_ids[0], config)
    channels = Channels(lambda: build_email_channel(settings))
    dispatch.send_claim(session, claim.claim, channels=channels, config=config)

    [path] = settings.outbox_dir.glob("*.eml")
    text, html = parts(email.message_from_bytes(path.read_bytes()))
    assert '<img src="https://cdn.acme.com/logo.png" alt="Acme"' in html
    assert "Acme Ltd, 1 Main Street, Springfield<br>help@acme.com" in html
    assert "Acme Ltd, 1 Main Street, Springfield\nhelp@acme.com" in text
    assert "Keine Einladungen mehr von Acme" in text  # the stop link in the email's language
    # The expiry date as German writes it ("8. Dezember 2026"), not ISO.
    assert ". " in text.split("gültig (bis ")[1].split(")")[0]
    assert "-12-" not in text.split("gültig (bis ")[1].split(")")[0]


def test_a_get_of_the_link_shows_what_it_stops_and_changes_nothing(
    session: Session, settings: Settings, client: TestClient
) -> None:
    [message] = send_invites(session, settings, 1)
    path = opt_out_url(message).removeprefix("https://portal.example.com")

    page = client.get(path)

    assert page.status_code == 200
    assert "Stop invitations from Zylker" in page.text
    assert "p***@example.org" in page.text and "person0@example.org" not in page.text
    assert suppressions(session) == []


def test_one_click_post_suppresses_the_address_as_opted_out_once(
    session: Session, settings: Settings, client: TestClient
) -> None:
    [message] = send_invites(session, settings, 1)
    path = opt_out_url(message).removeprefix("https://portal.example.com")

    # What a mailbox provider sends for its unsubscribe button (RFC 8058 section 3.2).
    for _ in range(2):
        answer = client.post(path, data={"List-Unsubscribe": "One-Click"})
        assert answer.status_code == 200
        assert "no more invitations" in answer.text

    assert suppressions(session) == [("person0@example.org", OutcomeCode.OPTED_OUT)]
    # Every later invitation checks the list (case-insensitively) and refuses the address.
    org_id = session.scalar(select(Org.id))
    assert org_id is not None
    listed = suppressed_among(session, org_id, Channel.EMAIL, ["Person0@Example.org"])
    assert listed == {"person0@example.org"}


@pytest.mark.parametrize("forged", ["1.AAAA", "x.y", "999999.abc", "1", "1."])
def test_a_forged_or_unknown_link_gets_the_neutral_page(
    session: Session, settings: Settings, client: TestClient, forged: str
) -> None:
    send_invites(session, settings, 1)

    for answer in (
        client.get(f"/portal/unsubscribe/{forged}"),
        client.post(f"/portal/unsubscribe/{forged}", data={"List-Unsubscribe": "One-Click"}),
    ):
        assert answer.status_code == 404
        assert "This link does not work" in answer.text

    assert suppressions(session) == []


def test_a_token_names_its_invitation_only_under_the_deployment_key() -> None:
    token = opt_out.opt_out_token(b"k" * 32, 42)

    assert opt_out.invitation_of(b"k" * 32, token) == 42
    assert opt_out.invitation_of(b"x" * 32, token) is None
    assert opt_out.invitation_of(b"k" * 32, token.replace("42.", "43.")) is None


def test_a_missing_secret_key_is_made_once_per_var_dir(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path / "var")

    key = link_key(settings)

    assert link_key(settings) == key
    assert (tmp_path / "var" / "secret.key").stat().st_mode & 0o777 == 0o600
    assert link_key(Settings(var_dir=tmp_path / "other")) != key


def test_branding_is_set_checked_and_cleared_from_the_cli(cli_env: Path) -> None:
    assert run("db", "upgrade")[0] == 0
    code, output = run(
        "orgs", "create", "--name", "Zylker", "--domain", "zylker.com", "--country", "US"
    )
    assert code == 0, output
    code, output = run(
        "orgs",
        "branding",
        "--org",
        "1",
        "--logo-url",
        "https://zylker.com/logo.png",
        "--footer",
        "Zylker Ltd\\nsupport@zylker.com",
        "--json",
    )
    assert code == 0, output
    assert json.loads(output) == {
        "org_id": 1,
        "logo_url": "https://zylker.com/logo.png",
        "email_footer": "Zylker Ltd\nsupport@zylker.com",
    }
    code, output = run("orgs", "branding", "--org", "1", "--logo-url", "http://zylker.com/a.png")
    assert code != 0 and "must be an https:// URL" in " ".join(output.split())
    code, output = run("orgs", "branding", "--org", "1", "--logo-url", "", "--json")
    assert code == 0 and json.loads(output)["logo_url"] is None
