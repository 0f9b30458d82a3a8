"""The recipient's pages over HTTP: accept and confirm forms, problems, short links, limits."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from portalflow.config import Settings
from portalflow.models import Base, Invitation, PortalUser, PortalUserStatus, utcnow
from portalflow.pipelines.delivery import credits, dispatch, dispatch_config
from portalflow.pipelines.delivery.channels import build_sms_channel
from portalflow.pipelines.delivery.channels.bundle import Channels
from portalflow.pipelines.invitations import acceptance, password_hashes, reinvite
from portalflow.web import portal_pages
from portalflow.web.app import create_app
from portalflow.web.client_ip import client_ip
from portalflow.web.link_rate_rules import LinkRateRules
from portalflow.web.throttle import Throttle

from ..delivery.test_sms_dispatch import add_agent, sms_world
from ..delivery.test_sms_dispatch import invite as sms_invite
from ..factories import make_record, start_and_expand
from ..invitations.test_acceptance import (
    PASSWORD,
    make_world,
    only,
    send,
    suspended_with_confirm_link,
)

CSRF_FIELD = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')
STRONG = "purple-otter-lamp-42"


def database_rows(session: Session) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, to show that a request changed nothing at all."""
    session.expire_all()
    rows = {}
    for table in Base.metadata.sorted_tables:
        key = list(table.primary_key.columns) or list(table.columns)
        rows[table.name] = [tuple(r) for r in session.execute(select(table).order_by(*key))]
    session.commit()
    return rows


@pytest.fixture
def world(session: Session, tmp_path: Path) -> dict[str, Any]:
    return make_world(session, tmp_path / "o")


@pytest.fixture
def client(session: Session, tmp_path: Path) -> Iterator[TestClient]:
    url = session.get_bind().url.render_as_string(hide_password=False)
    settings = Settings(database_url=url, var_dir=tmp_path / "var", portal_base_url="https://p")
    with TestClient(create_app(settings), base_url="https://p") as client:
        yield client


def invite_in(session: Session, world: dict[str, Any], crm_id: str, **options: Any) -> str:
    """The token of a real sent invitation for ``crm_id``."""
    _run, ids = start_and_expand(session, world["org"], world["inviter"], [crm_id], **options)
    return only(send(session, ids, world["outbox"]))[1]


def accept_url(token: str, slug: str = "zylker") -> str:
    return f"/{slug}/accept?token={token}"


def form_of(page: str) -> str:
    match = CSRF_FIELD.search(page)
    assert match, "no CSRF field on the page"
    return match.group(1)


def post_accept(client: TestClient, token: str, **fields: str) -> Any:
    page = client.get(accept_url(token))
    assert page.status_code == 200, page.text
    values = {"token": token, "csrf_token": form_of(page.text), "password": STRONG}
    values["password_confirm"] = values["password"]
    values |= fields
    return client.post(f"/{slug_of(page.text)}/accept", data=values)


def slug_of(page: str) -> str:
    match = re.search(r'action="/([^/"]+)/accept"', page)
    assert match
    return match.group(1)


def test_the_accept_page_shows_the_form_in_the_invitations_language(
    session: Session, world: dict[str, Any], client: TestClient
) -> None:
    token = invite_in(session, world, "c0", language="de")
    page = client.get(accept_url(token))
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert '<html lang="de">' in page.text
    assert "Zylker hat Sie zu" in page.text and "Einladung annehmen" in page.text
    # The defaults are the inviting CRM user's (fr, Europe/Paris, 12h; country: the org's).
    assert '<option value="fr" selected>Français</option>' in page.text
    assert "<option selected>Europe/Paris</option>" in page.text
    assert '<option value="12h" selected>' in page.text
    assert '<option value="US" selected>Vereinigte Staaten</option>' in page.text
    assert 'name="password_confirm"' in page.text and "csrf_token" in page.text


def test_get_never_changes_the_database(
    session: Session, world: dict[str, Any], client: TestClient
) -> None:
    token = invite_in(session, world, "c0")
    used = invite_in(session, world, "c1")
    acceptance.accept_invitation(session, used, password=PASSWORD)
    session.commit()
    before = database_rows(session)
    for url in (
        accept_url(token),
        accept_url(token),
        accept_url(used),
        accept_url("nope"),
        f"/zylker/confirm-email?token={token}",
        f"/s/{token}",
        "/s/nope",
    ):
        client.get(url, follow_redirects=False)
    assert database_rows(session) == before
    assert (
        session.scalar(select(PortalUser.status).where(PortalUser.email.like("c0@%")))
        == PortalUserStatus.INVITED
    )


def test_accepting_through_the_form_confirms_the_user_with_the_chosen_locale(
    session: Session, world: dict[str, Any], client: TestClient
) -> None:
    token = invite_in(session, world, "c0")
    done = post_accept(
        client, token, language="ja", time_format="24h", time_zone="Asia/Tokyo", country="JP"
    )
    assert done.status_code == 200, done.text
    assert "登録が完了しました" in done.text  # the success page, in the chosen language
    session.expire_all()
    user = session.scalars(select(PortalUser)).one()
    assert user.status == PortalUserStatus.CONFIRMED
    assert (user.language, user.time_format, user.time_zone, user.country) == (
        "ja",
        "24h",
        "Asia/Tokyo",
        "JP",
    )
    assert password_hashes.verify_password(STRONG, user.password_hash)
    session.commit()
    again = client.get(accept_url(token))
    assert again.status_code == 410 and "already been used" in again.text


def test_a_weak_or_mismatched_password_shows_the_form_again(
    session: Session, world: dict[str, Any], client: TestClient
) -> None:
    token = invite_in(session, world, "c0")
    before = database_rows(session)
    weak = post_accept(client, token, password="Password1234", password_confirm="Password1234")
    assert weak.status_code == 422 and "too easy to guess" in weak.text
    short = post_accept(client, token, password="short", password_confirm="short")
    assert short.status_code == 422 and "at least 12 characters" in short.text
    differ = post_accept(client, token, password_confirm=STRONG + "x")
    assert differ.status_code == 422 and "not the same" in differ.text
    country = post_accept(client, token, country="XX")
    assert country.status_code == 422 and "from the lists" in country.text
    # What the user chose stays chosen on the page shown again.
    tz = post_accept(client, token, time_zone="Asia/Tokyo", password_confirm="other")
    assert "<option selected>Asia/Tokyo</option>" in tz.text
    assert database_rows(session) == before


def test_a_post_without_the_right_csrf_token_is_refused(
    session: Session, world: dict[str, Any], client: TestClient
) -> None:
    token = invite_in(session, world, "c0")
    other = invite_in(session, world, "c1")
    before = database_rows(session)
    fields = {"token": token, "password": STRONG, "password_confirm": STRONG}
    assert client.post("/zylker/accept", data=fields).status_code == 403
    # A form token of another link does not work for this one.
    other_form = form_of(client.get(accept_url(other)).text)
    refused = client.post("/zylker/accept", data=fields | {"csrf_token": other_form})
    assert refused.status_code == 403 and "form has expired" in refused.text
    # Nor a right form token without its cookie (what a cross-site POST sends).
    right = form_of(client.get(accept_url(token)).text)
    client.cookies.clear()
    assert client.post("/zylker/accept", data=fields | {"csrf_token": right}).status_code == 403
    assert database_rows(session) == before


def test_problem_pages_say_what_to_do_and_unknown_links_all_look_the_same(
    session: Session, world: dict[str, Any], client: TestClient
) -> None:
    expired = invite_in(session, world, "c0")
    session.execute(
        Invitation.__table__.update().values(expires_at=utcnow() - timedelta(seconds=1))
    )
    session.commit()
    superseded = invite_in(session, world, "c1")
    user_id = session.scalar(select(PortalUser.id).where(PortalUser.email.like("c1@%")))
    assert user_id is not None
    new_id = reinvite.reinvite(session, world["org"].id, user_id, inviter_id=world["inviter"].id)
    session.commit()
    send(session, [new_id], world["outbox"])
    live = invite_in(session, world, "c2")

    page = client.get(accept_url(expired))
    assert page.status_code == 410 and "valid for 7 days" not in page.text
    assert "work for 7 days" in page.text and "new invitation" in page.text
    page = client.get(accept_url(superseded))
    assert page.status_code == 410 and "most recent message" in page.text

    # Unknown, the wrong kind, the wrong portal, no token, a short code of nobody: one page.
    neutral = [
        client.get(accept_url("x" * 43)),
        client.get(f"/zylker/confirm-email?token={live}"),
        client.get(accept_url(live, slug="someone-else")),
        client.get("/zylker/accept"),
        client.get("/s/AbCdEfGhIj"),
    ]
    assert {answer.status_code for answer in neutral} == {404}
    assert len({answer.text for answer in neutral}) == 1
    assert "ask the organisation that invited you" in neutral[0].text
    assert "Zylker" not in neutral[0].text  # nothing about whose link it might have been


def test_the_confirm_email_page_confirms_on_post_only(
    session: Session, world: dict[str, Any], client: TestClient
) -> None:
    user_id, _accept, confirm_token = suspended_with_confirm_link(session, world)
    before = database_rows(session)
    page = client.get(f"/zylker/confirm-email?token={confirm_token}")
    assert page.status_code == 200 and "new-address@customer.example.org" in page.text
    assert database_rows(session) == before
    done = client.post(
        "/zylker/confirm-email", data={"token": confirm_token, "csrf_token": form_of(page.text)}
    )
    # In the user's own language (fr, from the inviter when they accepted).
    assert done.status_code == 200 and "Adresse e-mail confirmée" in done.text
    session.expire_all()
    assert session.get_one(PortalUser, user_id).status == PortalUserStatus.CONFIRMED
    session.commit()
    again = client.get(f"/zylker/confirm-email?token={confirm_token}")
    assert again.status_code == 410 and "already been used" in again.text


def test_a_short_code_leads_to_its_accept_page(
    session: Session, client: TestClient, tmp_path: Path
) -> None:
    org, agents, inviter = sms_world(session)
    credits.add(session, org.id, 5)
    add_agent(session, org, "a1", "+91 98123 45678", first_name="Arjun")
    session.commit()
    _started, ids = sms_invite(session, org, agents, inviter, ["a1"])
    outbox = Channels(sms=lambda: build_sms_channel(Settings(sms_outbox_dir=tmp_path / "sms")))
    config = dispatch_config.DispatchConfig(portal_base_url="https://p")
    assert dispatch.dispatch(session, ids, channels=outbox, config=config).sent == ids
    session.commit()
    [file] = (tmp_path / "sms").glob("*.json")
    code = re.search(r"https://in\.zcrm\.to/([A-Za-z0-9]+)", file.read_text()).group(1)  # type: ignore[union-attr]

    answer = client.get(f"/s/{code}", follow_redirects=False)
    assert answer.status_code == 303
    slug = org.portal.slug  # type: ignore[union-attr]
    assert answer.headers["location"] == f"https://p/{slug}/accept?token={code}"
    page = client.get(answer.headers["location"])
    assert page.status_code == 200 and "Accept invitation" in page.text


def tight(client: TestClient, rules: LinkRateRules) -> None:
    client.app.state.link_pages.throttle = Throttle.in_memory(rules)  # type: ignore[attr-defined]


def test_over_the_limit_the_answer_is_429_with_retry_after(
    session: Session, world: dict[str, Any], client: TestClient
) -> None:
    token = invite_in(session, world, "c0")
    tight(client, LinkRateRules(per_client=("100/minute",), per_token=("3/minute",)))
    assert [client.get(accept_url(token)).status_code for _ in range(3)] == [200] * 3
    limited = client.get(accept_url(token))
    assert limited.status_code == 429 and 1 <= int(limited.headers["retry-after"]) <= 60
    assert "Too many attempts" in limited.text
    # Per token: another link from the same address still opens.
    assert client.get(accept_url("other-token")).status_code == 404
    # The JSON API counts against the same limits.
    answer = client.post("/portal/accept", json={"token": token, "password": STRONG})
    assert answer.status_code == 429 and answer.json()["problem"] == "rate_limited"
    assert answer.headers["retry-after"]

    tight(client, LinkRateRules(per_client=("2/minute",), per_token=("100/minute",)))
    assert [client.get(f"/s/code{n}").status_code for n in range(3)] == [404, 404, 429]


@pytest.mark.redis
def test_the_limits_are_shared_by_every_web_process_through_redis(
    session: Session, world: dict[str, Any], tmp_path: Path, redis_url: str
) -> None:
    token = invite_in(session, world, "c0")
    url = session.get_bind().url.render_as_string(hide_password=False)
    settings = Settings(database_url=url, var_dir=tmp_path / "var", broker_url=redis_url)
    rules = LinkRateRules(per_client=("100/minute",), per_token=("4/minute",))
    namespace = f"portalflow-test-links-{uuid.uuid4().hex[:8]}"
    apps = [create_app(settings), create_app(settings)]  # two web processes
    for app in apps:
        app.state.link_pages.throttle = Throttle.from_settings(settings, rules, namespace)
    with TestClient(apps[0]) as first, TestClient(apps[1]) as second:
        codes = [
            client.get(f"/portal/zylker/accept?token={token}").status_code
            for client in (first, second, first, second, first, second)
        ]
    assert codes == [200, 200, 200, 200, 429, 429]


def test_x_forwarded_for_counts_only_behind_a_trusted_proxy() -> None:
    proxies = Settings(trusted_proxies=("10.0.0.0/8", "::1")).trusted_networks()
    forged = "203.0.113.66"
    assert client_ip("198.51.100.7", forged, ()) == "198.51.100.7"
    assert client_ip("198.51.100.7", forged, proxies) == "198.51.100.7"  # peer not trusted
    assert client_ip("10.0.0.2", f"{forged}, 198.51.100.7", proxies) == "198.51.100.7"
    assert client_ip("10.0.0.2", f"{forged}, 198.51.100.7, 10.0.0.3", proxies) == "198.51.100.7"
    assert client_ip("::1", "garbage", proxies) == "garbage"
    assert client_ip("10.0.0.2", None, proxies) == "10.0.0.2"


def test_every_page_language_has_every_text() -> None:
    english = set(portal_pages.texts("en"))
    assert set(portal_pages.languages()) >= {"en", "de", "es", "fr", "hi", "ja"}
    for language in portal_pages.languages():
        assert set(portal_pages.texts(language)) == english, language


def test_the_page_language_falls_back_to_the_browser_then_english() -> None:
    assert portal_pages.page_language("es", "de") == "es"
    assert portal_pages.page_language("pt-BR", "fr-CH, de;q=0.5") == "fr"
    assert portal_pages.page_language(None, "xx, de;q=0.1, hi;q=0.9") == "hi"
    assert portal_pages.page_language(None, None) == "en"


def test_unknown_records_are_not_needed_for_the_page(
    session: Session, world: dict[str, Any], client: TestClient
) -> None:
    """A record deleted after the send still gets its page (no lookup needs it)."""
    make_record(session, world["org"], "c9")
    session.commit()
    token = invite_in(session, world, "c9")
    assert client.get(accept_url(token)).status_code == 200
