"""CRM webhooks, pipeline by pipeline, against a real local receiver (SQLite and PostgreSQL):
endpoints and their secrets, the URL policy, the outbox writer, signing, retries, order."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import Session

from portalflow.config import Settings, SettingsError
from portalflow.models import (
    Invitation,
    WebhookDelivery,
    WebhookDeliveryStatus,
    WebhookEndpoint,
    WebhookEventType,
    WebhookFailureCode,
    WebhookUrlRefusal,
    make_session_factory,
    utcnow,
)
from portalflow.models.enums import WEBHOOK_EVENT_DESCRIPTIONS
from portalflow.pipelines.crm_webhooks import (
    delivery,
    endpoints,
    keys,
    outbox,
    replays,
    signing,
    urls,
)
from portalflow.pipelines.errors import InvalidInput, NotFound

from ..factories import make_inviter, make_org, make_record, start_and_expand
from ..webhook_receiver import README, Receiver, readme_verify, running_receiver, self_signed

D = WebhookDeliveryStatus
T = WebhookEventType
LOOPBACK = ("127.0.0.0/8",)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(var_dir=tmp_path / "var", webhook_allowed_networks=LOOPBACK)


@pytest.fixture
def config(settings: Settings) -> delivery.DeliveryConfig:
    return replace(delivery.DeliveryConfig.from_settings(settings), max_attempts=4)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as server:
        yield server


def endpoint_for(
    session: Session, settings: Settings, receiver: Receiver, org_id: int, *types: str
) -> endpoints.CreatedSecret:
    created = endpoints.create_endpoint(
        session, settings, org_id, receiver.url + "/hooks", types or None, "the CRM"
    )
    session.commit()
    receiver.secrets.append(created.secret)
    return created


def deliveries(session: Session) -> list[WebhookDelivery]:
    session.expire_all()
    return list(session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))


def invite_one_refused_one(session: Session) -> tuple[int, list[int]]:
    """A bulk invite of two records, one refused (company domain); (org id, queued ids)."""
    org = make_org(session)
    inviter = make_inviter(session, org)
    make_record(session, org, "C-1")
    make_record(session, org, "C-2", email="staff@zylker.com")
    session.commit()
    _run, ids = start_and_expand(session, org, inviter, ["C-1", "C-2"])
    session.commit()
    return org.id, ids


# -- endpoints and secrets -------------------------------------------------------------------


def test_the_secret_is_shown_once_and_stored_encrypted(
    session: Session, settings: Settings, receiver: Receiver
) -> None:
    org = make_org(session)
    created = endpoint_for(session, settings, receiver, org.id, "invitation.failed")
    assert created.secret.startswith("whsec_") and len(created.secret) > 40
    stored = session.get_one(WebhookEndpoint, created.endpoint.id)
    assert created.secret not in stored.secret_encrypted
    assert keys.decrypt(settings, stored.secret_encrypted) == created.secret
    shown = endpoints.describe(session, endpoints.list_endpoints(session, org.id)[0])
    assert created.secret not in repr(shown) and stored.secret_encrypted not in repr(shown)
    assert shown["event_types"] == ["invitation.failed"]
    assert shown["deliveries"] == {"pending": 0, "sending": 0, "delivered": 0, "dead": 0}


def test_another_orgs_endpoint_is_not_found(
    session: Session, settings: Settings, receiver: Receiver
) -> None:
    org, other = make_org(session), make_org(session, name="Acme", company_domain="acme.test")
    created = endpoint_for(session, settings, receiver, org.id)
    with pytest.raises(NotFound, match=f"webhook endpoint {created.endpoint.id} does not exist"):
        endpoints.delete_endpoint(session, other.id, created.endpoint.id)


def test_unknown_event_types_are_named_with_the_known_ones(
    session: Session, settings: Settings
) -> None:
    org = make_org(session)
    with pytest.raises(InvalidInput, match=r"unknown event type\(s\) invitation\.opened; known: "):
        endpoints.create_endpoint(
            session, settings, org.id, "http://127.0.0.1:9/", ["invitation.opened"]
        )


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("ftp://crm.example.com/hook", WebhookUrlRefusal.NOT_HTTP),
        ("crm.example.com/hook", WebhookUrlRefusal.NOT_HTTP),
        ("https://user:pw@crm.example.com/hook", WebhookUrlRefusal.CREDENTIALS),
        ("http:///hook", WebhookUrlRefusal.NO_HOST),
        ("http://crm.example.com:99999/", WebhookUrlRefusal.BAD_PORT),
        ("http://localhost:8000/hook", WebhookUrlRefusal.PRIVATE_ADDRESS),
        ("http://169.254.169.254/latest/meta-data", WebhookUrlRefusal.PRIVATE_ADDRESS),
        ("http://10.1.2.3/hook", WebhookUrlRefusal.PRIVATE_ADDRESS),
        ("http://[::1]/hook", WebhookUrlRefusal.PRIVATE_ADDRESS),
        ("http://[::ffff:192.168.0.1]/hook", WebhookUrlRefusal.PRIVATE_ADDRESS),
        ("http://crm.invalid/hook", WebhookUrlRefusal.UNRESOLVABLE),
    ],
)
def test_the_url_policy_refuses(url: str, code: WebhookUrlRefusal) -> None:
    refused = urls.check(url, ())
    assert isinstance(refused, urls.Refused)
    assert refused.code == code and refused.detail


def test_a_private_address_is_allowed_only_inside_an_allowed_network(
    session: Session, tmp_path: Path
) -> None:
    org = make_org(session)
    strict = Settings(var_dir=tmp_path)
    with pytest.raises(InvalidInput, match=r"url_private_address.*PORTALFLOW_WEBHOOK_ALLOWED"):
        endpoints.create_endpoint(session, strict, org.id, "http://127.0.0.1:9/hook")
    allowed = Settings(var_dir=tmp_path, webhook_allowed_networks=LOOPBACK)
    created = endpoints.create_endpoint(session, allowed, org.id, "http://127.0.0.1:9/hook")
    assert created.endpoint.url == "http://127.0.0.1:9/hook"


def test_a_public_host_goes_to_the_address_that_was_checked() -> None:
    target = urls.check("https://crm.example.com/a?b=1", (), lambda host, port: ["93.184.216.34"])
    assert isinstance(target, urls.Target)
    assert (target.host, target.port, target.path, target.address) == (
        "crm.example.com",
        443,
        "/a?b=1",
        "93.184.216.34",
    )
    # One private answer among public ones refuses the host.
    mixed = urls.check("https://crm.example.com/", (), lambda h, p: ["93.184.216.34", "10.0.0.1"])
    assert isinstance(mixed, urls.Refused) and mixed.code == WebhookUrlRefusal.PRIVATE_ADDRESS


def test_a_real_broker_without_the_key_names_the_variable(tmp_path: Path) -> None:
    production = Settings(var_dir=tmp_path, broker_url="redis://127.0.0.1:6379/0")
    with pytest.raises(SettingsError, match="PORTALFLOW_WEBHOOK_KEY is not set"):
        keys.encrypt(production, "whsec_x")
    with pytest.raises(SettingsError, match="comma-separated Fernet keys"):
        keys.cipher(replace(production, webhook_key="not-a-key"))


def test_a_secret_encrypted_under_an_old_key_still_decrypts_after_the_key_rotates(
    tmp_path: Path,
) -> None:
    old = Settings(var_dir=tmp_path, webhook_key=keys.Fernet.generate_key().decode())
    stored = keys.encrypt(old, "whsec_abc")
    rotated = replace(old, webhook_key=f"{keys.Fernet.generate_key().decode()},{old.webhook_key}")
    assert keys.decrypt(rotated, stored) == "whsec_abc"
    with pytest.raises(keys.SecretUnreadable, match="PORTALFLOW_WEBHOOK_KEY"):
        keys.decrypt(replace(old, webhook_key=keys.Fernet.generate_key().decode()), stored)


# -- the outbox writer -----------------------------------------------------------------------


def test_an_org_without_endpoints_writes_nothing(session: Session) -> None:
    invite_one_refused_one(session)
    assert deliveries(session) == []


def test_only_the_wanted_types_of_enabled_endpoints_are_written(
    session: Session, settings: Settings, receiver: Receiver
) -> None:
    org = make_org(session)
    inviter = make_inviter(session, org)
    make_record(session, org, "C-1")
    make_record(session, org, "C-2", email="staff@zylker.com")
    failed_only = endpoint_for(session, settings, receiver, org.id, "invitation.failed")
    off = endpoint_for(session, settings, receiver, org.id)
    endpoints.update_endpoint(session, settings, org.id, off.endpoint.id, enabled=False)
    session.commit()
    start_and_expand(session, org, inviter, ["C-1", "C-2"])
    session.commit()
    [row] = deliveries(session)
    assert (row.endpoint_id, row.event_type, row.status) == (
        failed_only.endpoint.id,
        T.INVITATION_FAILED,
        D.PENDING,
    )
    data = json.loads(row.body)["data"]
    assert data["record_id"] == "C-2"
    assert (data["stage"], data["code"], data["outcome_class"]) == (
        "before_send",
        "company_domain",
        "permanent",
    )


def test_a_rolled_back_change_leaves_no_outbox_row(
    session: Session, settings: Settings, receiver: Receiver
) -> None:
    org = make_org(session)
    inviter = make_inviter(session, org)
    make_record(session, org, "C-1")
    endpoint_for(session, settings, receiver, org.id)
    session.commit()
    started = outbox.emit(session, [outbox.Event(T.LICENCE_ALERT, org.id, {"kind": "x"})])
    assert started == 1 and outbox.PENDING_KEY in session.info
    session.rollback()
    assert deliveries(session) == []
    assert inviter.id  # the session is usable after the rollback


# -- sending ---------------------------------------------------------------------------------


def one_pending(
    session: Session, settings: Settings, receiver: Receiver, types: tuple[str, ...] = ()
) -> tuple[endpoints.CreatedSecret, WebhookDelivery]:
    org = make_org(session)
    created = endpoint_for(session, settings, receiver, org.id, *types)
    outbox.emit(session, [outbox.Event(T.LICENCE_ALERT, org.id, {"kind": "overage"})])
    session.commit()
    [row] = deliveries(session)
    return created, row


def test_a_delivery_is_signed_and_the_readme_code_verifies_it(
    session: Session, settings: Settings, config: delivery.DeliveryConfig, receiver: Receiver
) -> None:
    _created, row = one_pending(session, settings, receiver)
    outcome = delivery.deliver(session, row.id, config)
    assert outcome.result == delivery.Result.DELIVERED and outcome.status_code == 200
    [got] = receiver.received
    assert got.verified and got.status == 200
    assert got.headers["Portalflow-Event-Id"] == row.event_id == got.event["id"]
    assert got.headers["Portalflow-Event-Type"] == "licence.alert" == got.event["type"]
    assert got.body == row.body.encode()
    assert deliveries(session)[0].status == D.DELIVERED
    # Delivered once: a second message for the row does nothing.
    assert delivery.deliver(session, row.id, config).result == delivery.Result.ALREADY_HANDLED
    assert len(receiver.received) == 1


def test_https_is_verified_against_the_urls_host(
    session: Session, settings: Settings, config: delivery.DeliveryConfig, tmp_path: Path
) -> None:
    tls = self_signed(tmp_path)
    with running_receiver(tls) as receiver:
        _created, row = one_pending(session, settings, receiver)
        assert receiver.url.startswith("https://")
        untrusted = delivery.deliver(session, row.id, config)  # the system's CAs: refused
        assert untrusted.failure == WebhookFailureCode.CONNECTION_FAILED
        assert "CERTIFICATE_VERIFY_FAILED" in untrusted.detail
        trusted = replace(config, tls_context=tls.client)
        later = utcnow() + config.retry_max
        assert delivery.deliver(session, row.id, trusted, later).result == (
            delivery.Result.DELIVERED
        )
        assert [r.verified for r in receiver.received] == [True]


def test_forged_and_stale_signatures_are_refused_by_the_readme_code() -> None:
    verify = readme_verify()
    secret, body = "whsec_right", b'{"id":"evt_1"}'
    now = int(time.time())
    good = signing.signature_header([secret], now, body)
    assert verify(secret, body, str(now), good)
    assert not verify("whsec_wrong", body, str(now), good)  # another secret
    assert not verify(secret, body + b" ", str(now), good)  # the body was changed
    assert not verify(secret, body, str(now + 1), good)  # the timestamp was changed
    stale = now - 3600
    assert not verify(secret, body, str(stale), signing.signature_header([secret], stale, body))
    assert not verify(secret, body, "soon", good)
    assert not verify(secret, body, str(now), "v0=" + good.removeprefix("v1="))
    expected = hmac.new(secret.encode(), f"{now}.".encode() + body, hashlib.sha256).hexdigest()
    assert good == f"v1={expected}"  # exactly the scheme the README describes


def test_during_a_rotation_both_secrets_sign(
    session: Session, settings: Settings, config: delivery.DeliveryConfig, receiver: Receiver
) -> None:
    created, row = one_pending(session, settings, receiver)
    org_id, endpoint_id = created.endpoint.org_id, created.endpoint.id
    rotated = endpoints.rotate_secret(session, settings, org_id, endpoint_id)
    session.commit()
    receiver.secrets[:] = [created.secret]  # the CRM still knows only the old one
    assert delivery.deliver(session, row.id, config).result == delivery.Result.DELIVERED
    signature = receiver.received[-1].headers["Portalflow-Signature"]
    assert signature.count("v1=") == 2
    verify, body = readme_verify(), receiver.received[-1].body
    stamp = receiver.received[-1].headers["Portalflow-Timestamp"]
    assert verify(rotated.secret, body, stamp, signature)
    assert verify(created.secret, body, stamp, signature)
    # Once the overlap ends only the new secret signs.
    later = utcnow() + endpoints.DEFAULT_OVERLAP + timedelta(minutes=1)
    endpoint = session.get_one(WebhookEndpoint, endpoint_id)
    assert endpoints.signing_secrets(settings, endpoint, later) == [rotated.secret]
    assert endpoints.signing_secrets(settings, endpoint) == [rotated.secret, created.secret]


def test_a_receiver_answering_500_for_a_while_gets_the_event_later(
    session: Session, settings: Settings, config: delivery.DeliveryConfig, receiver: Receiver
) -> None:
    _created, row = one_pending(session, settings, receiver)
    receiver.failures_left = 3
    waits = []
    now = utcnow()
    while True:
        outcome = delivery.deliver(session, row.id, config, now=now)
        if outcome.result != delivery.Result.RETRY:
            break
        assert outcome.failure == WebhookFailureCode.HTTP_ERROR and outcome.status_code == 500
        assert outcome.retry_after is not None
        waits.append(outcome.retry_after)
        # Not due yet: an early message leaves it alone.
        assert delivery.deliver(session, row.id, config, now=now).result == delivery.Result.NOT_DUE
        now = deliveries(session)[0].next_attempt_at or now
    assert outcome.result == delivery.Result.DELIVERED
    assert waits == [config.retry_base, config.retry_base * 2, config.retry_base * 4]
    assert [r.status for r in receiver.received] == [500, 500, 500, 200]
    assert len({r.headers["Portalflow-Event-Id"] for r in receiver.received}) == 1
    assert deliveries(session)[0].attempts == 4


def test_the_default_backoff_lasts_hours() -> None:
    config = delivery.DeliveryConfig.from_settings(Settings())
    total = sum((config.backoff(n) for n in range(1, config.max_attempts)), timedelta())
    assert timedelta(hours=6) < total < timedelta(hours=12)
    assert config.backoff(30) == timedelta(hours=1)


def test_after_the_last_attempt_it_is_dead_listed_and_redeliverable(
    session: Session, settings: Settings, config: delivery.DeliveryConfig, receiver: Receiver
) -> None:
    created, row = one_pending(session, settings, receiver)
    org_id = created.endpoint.org_id
    receiver.failures_left = config.max_attempts
    now = utcnow()
    for _ in range(config.max_attempts):
        outcome = delivery.deliver(session, row.id, config, now=now)
        now += config.retry_max
    assert outcome.result == delivery.Result.DEAD
    [dead] = delivery.list_deliveries(session, org_id, status=D.DEAD)
    assert (dead.id, dead.last_failure_code, dead.last_status_code) == (row.id, "http_error", 500)
    assert delivery.dead_counts(session) == {org_id: 1}
    with pytest.raises(NotFound, match=f"webhook deliveries {row.id + 1000} do not exist"):
        delivery.redeliver(session, org_id, [row.id + 1000])
    assert delivery.redeliver(session, org_id, [row.id]) == [row.id]
    session.commit()
    assert delivery.deliver(session, row.id, config).result == delivery.Result.DELIVERED
    assert deliveries(session)[0].attempts == 1
    with pytest.raises(InvalidInput, match=f"only dead deliveries .*not dead: {row.id}"):
        delivery.redeliver(session, org_id, [row.id])


def test_redirects_are_not_followed(
    session: Session, settings: Settings, config: delivery.DeliveryConfig, receiver: Receiver
) -> None:
    _created, row = one_pending(session, settings, receiver)
    receiver.redirect_to = receiver.url + "/elsewhere"
    outcome = delivery.deliver(session, row.id, config)
    assert (outcome.result, outcome.failure) == (
        delivery.Result.RETRY,
        WebhookFailureCode.REDIRECT_REFUSED,
    )
    assert [r.status for r in receiver.received] == [302]  # nothing went to /elsewhere


def test_the_address_is_checked_again_at_send_time(
    session: Session, settings: Settings, config: delivery.DeliveryConfig, receiver: Receiver
) -> None:
    _created, row = one_pending(session, settings, receiver)
    strict = replace(config, allowed_networks=())  # the allowance was withdrawn since
    outcome = delivery.deliver(session, row.id, strict)
    assert outcome.failure == WebhookFailureCode.ADDRESS_REFUSED
    assert "127.0.0.1" in outcome.detail
    assert receiver.received == []


def test_a_disabled_endpoint_keeps_its_deliveries_until_enabled(
    session: Session, settings: Settings, config: delivery.DeliveryConfig, receiver: Receiver
) -> None:
    created, row = one_pending(session, settings, receiver)
    endpoint = created.endpoint
    endpoints.update_endpoint(session, settings, endpoint.org_id, endpoint.id, enabled=False)
    session.commit()
    assert delivery.deliver(session, row.id, config).result == delivery.Result.PAUSED
    assert replays.replay(session, utcnow() + timedelta(hours=1), timedelta(0), config).ids == []
    endpoints.update_endpoint(session, settings, endpoint.org_id, endpoint.id, enabled=True)
    session.commit()
    later = utcnow() + timedelta(hours=1)
    assert replays.replay(session, later, timedelta(0), config).ids == [row.id]
    assert delivery.deliver(session, row.id, config, later).result == delivery.Result.DELIVERED


def test_deleting_an_endpoint_deletes_its_deliveries_and_a_late_one_is_dropped_when_met(
    session: Session, settings: Settings, config: delivery.DeliveryConfig, receiver: Receiver
) -> None:
    created, _row = one_pending(session, settings, receiver)
    org_id, endpoint_id = created.endpoint.org_id, created.endpoint.id
    endpoints.delete_endpoint(session, org_id, endpoint_id)
    session.commit()
    assert deliveries(session) == []
    # A change that read the endpoint before the delete committed writes after it.
    late = WebhookDelivery(
        org_id=org_id,
        endpoint_id=endpoint_id,
        event_id="evt_late",
        event_type=T.LICENCE_ALERT,
        body="{}",
        status=D.PENDING,
        next_attempt_at=utcnow(),
    )
    session.add(late)
    session.commit()
    assert delivery.deliver(session, late.id, config).result == delivery.Result.ALREADY_HANDLED
    assert deliveries(session) == [] and receiver.received == []


def test_events_of_one_user_go_out_in_order(
    session: Session, settings: Settings, config: delivery.DeliveryConfig, receiver: Receiver
) -> None:
    org = make_org(session)
    endpoint_for(session, settings, receiver, org.id)
    events = [
        outbox.Event(T.USER_DEACTIVATED, org.id, {"n": 1}, "user:7"),
        outbox.Event(T.USER_ACTIVATED, org.id, {"n": 2}, "user:7"),
        outbox.Event(T.USER_DEACTIVATED, org.id, {"n": 3}, "user:8"),
    ]
    outbox.emit(session, events)
    session.commit()
    first, second, other = (row.id for row in deliveries(session))
    assert delivery.deliver(session, second, config).result == delivery.Result.BLOCKED
    assert delivery.deliver(session, other, config).result == delivery.Result.DELIVERED
    done = delivery.deliver(session, first, config)
    assert (done.result, done.next_ids) == (delivery.Result.DELIVERED, [second])
    assert delivery.deliver(session, second, config).result == delivery.Result.DELIVERED
    assert [event["data"]["n"] for event in receiver.events()] == [3, 1, 2]
    # The replay enqueues only the first open row of a line.
    outbox.emit(session, [replace(events[0], data={"n": 4}), replace(events[1], data={"n": 5})])
    session.commit()
    fourth, _fifth = (row.id for row in deliveries(session)[3:])
    later = utcnow() + timedelta(hours=1)
    assert replays.replay(session, later, timedelta(0), config).ids == [fourth]


def test_the_replay_deletes_old_delivered_rows_and_keeps_dead_ones(
    session: Session, settings: Settings, config: delivery.DeliveryConfig, receiver: Receiver
) -> None:
    created, row = one_pending(session, settings, receiver)
    assert delivery.deliver(session, row.id, config).result == delivery.Result.DELIVERED
    outbox.emit(session, [outbox.Event(T.LICENCE_ALERT, created.endpoint.org_id, {"n": 2})])
    session.commit()
    dead = deliveries(session)[1]
    dead.status = D.DEAD
    session.commit()
    retention = timedelta(days=30)
    soon = replays.replay(session, utcnow() + timedelta(days=29), timedelta(0), config, retention)
    assert soon.purged == 0
    later = replays.replay(session, utcnow() + timedelta(days=31), timedelta(0), config, retention)
    assert later.purged == 1
    assert [(r.id, r.status) for r in deliveries(session)] == [(dead.id, D.DEAD)]


def test_the_readme_lists_every_event_type() -> None:
    text = README.read_text(encoding="utf-8")
    rows = [f"| `{kind.value}` | {text_} |" for kind, text_ in WEBHOOK_EVENT_DESCRIPTIONS.items()]
    assert "\n".join(rows) in text
    assert set(WEBHOOK_EVENT_DESCRIPTIONS) == set(WebhookEventType)


@pytest.mark.postgres
def test_a_claim_that_lapses_mid_delivery_is_sent_again_and_the_stale_answer_ignored(
    pg_engine: Engine, settings: Settings, config: delivery.DeliveryConfig, receiver: Receiver
) -> None:
    factory = make_session_factory(pg_engine)
    with factory() as session:
        _created, row = one_pending(session, settings, receiver)
    receiver.hold = threading.Event()
    hung: list[delivery.DeliveryOutcome] = []

    def first_worker() -> None:
        with factory() as session:
            hung.append(delivery.deliver(session, row.id, config))

    thread = threading.Thread(target=first_worker)
    thread.start()
    assert receiver.holding.wait(10)
    with factory() as session:
        lapsed_at = utcnow() + config.lease
        found = replays.replay(session, lapsed_at, timedelta(0), config)
        assert (found.lapsed, found.ids) == (1, [row.id])
        again = delivery.deliver(session, row.id, config, now=lapsed_at)
        assert again.result == delivery.Result.DELIVERED
    receiver.held[0].set()
    thread.join(10)
    assert hung[0].result == delivery.Result.ALREADY_HANDLED  # its claim was taken
    with factory() as session:
        [stored] = deliveries(session)
        assert (stored.status, stored.attempts) == (D.DELIVERED, 2)
        assert session.scalar(select(func.count()).select_from(WebhookDelivery)) == 1
    ids = {r.headers["Portalflow-Event-Id"] for r in receiver.received}
    assert len(receiver.received) == 2 and ids == {row.event_id}  # at least once, one id


@pytest.mark.postgres
def test_postgresqls_bodies_say_what_the_python_ones_say(
    pg_engine: Engine, settings: Settings, receiver: Receiver
) -> None:
    """The invitation events' one-statement path against ``invitation_event_list``."""
    with make_session_factory(pg_engine)() as session:
        org = make_org(session)
        inviter = make_inviter(session, org)
        for n, email in enumerate(["a@example.com", "b@example.com", "staff@zylker.com", "c@x.io"]):
            make_record(session, org, f'C-"{n}"', email=email)
        created = endpoint_for(session, settings, receiver, org.id)
        endpoint_for(session, settings, receiver, org.id, "invitation.failed")
        _run, ids = start_and_expand(session, org, inviter, [f'C-"{n}"' for n in range(4)])
        invitations = {i.id: i for i in session.scalars(select(Invitation).order_by(Invitation.id))}
        sent, technical, bounced = ids[0], ids[1], ids[2]
        invitations[sent].expires_at = utcnow() + timedelta(days=7)
        invitations[technical].attempts, invitations[technical].failure_code = (
            2,
            "technical_failure",
        )
        invitations[bounced].outcome_class, invitations[bounced].outcome_code = (
            "permanent",
            "bounce",
        )
        session.commit()
        session.execute(delete(WebhookDelivery))
        changes = {
            T.INVITATION_SENT: [sent],
            T.INVITATION_FAILED: sorted(invitations),
            T.INVITATION_DELIVERED: [sent],
            T.INVITATION_EXPIRED: [technical],
        }
        at = utcnow()
        written = outbox.invitations_changed(session, changes, now=at)
        stored = deliveries(session)
        wanted = outbox.subscribers(session, [org.id])
        events = outbox.invitation_event_list(session, changes, wanted)
        expires_at = invitations[sent].expires_at
        first_endpoint = created.endpoint.id

    expected = [
        (endpoint_id, event.event_type, event.order_key, event.data)
        for event in events
        for endpoint_id in wanted.wanting(event.event_type, event.org_id)
    ]
    assert written == len(stored) == len(expected) == 3 + 2 * len(invitations)
    got = []
    for row in stored:
        body = json.loads(row.body)
        assert body["id"] == row.event_id and body["type"] == row.event_type.value
        assert body["created_at"] == at.isoformat().replace("+00:00", "Z")
        assert body["org_id"] == org.id
        if body["data"].get("expires_at"):
            parsed = datetime.fromisoformat(body["data"]["expires_at"])
            assert parsed == expires_at
            body["data"]["expires_at"] = expires_at.isoformat()
        got.append((row.endpoint_id, row.event_type, row.order_key, body["data"]))
    assert got == expected
    assert first_endpoint == stored[0].endpoint_id
    one_event = {row.event_id for row in stored if row.event_type == T.INVITATION_FAILED}
    assert len(one_event) == len(invitations)  # both endpoints share each event's id
