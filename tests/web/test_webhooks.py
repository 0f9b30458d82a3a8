"""The webhook intake: verify, store once, commit, then enqueue; forgeries store nothing."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from twilio.request_validator import RequestValidator

from portalflow.config import Settings
from portalflow.models.delivery import ProviderEvent
from portalflow.models.enums import ProviderEventStatus
from portalflow.web.app import PUBLIC_BASE_URL_ENV, SNS_TEST_CERTIFICATE_ENV, create_app
from portalflow.workers import actors

from ..conftest import wait_for
from ..sns_signing import (
    TOPIC_ARN,
    new_signing_key,
    notification,
    shared_signing_key,
    sign_sns,
    subscription_confirmation,
)

TWILIO_TOKEN = "twilio-test-token"
BOUNCE = {
    "eventType": "Bounce",
    "bounce": {"bounceType": "Permanent", "bounceSubType": "General"},
    "mail": {"messageId": "ses-0001"},
}


@pytest.fixture
def sns_test_certificate(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The documented test hook: a local certificate for every SigningCertURL."""
    path = tmp_path / "sns-test.pem"
    path.write_bytes(shared_signing_key().certificate_pem)
    monkeypatch.setenv(SNS_TEST_CERTIFICATE_ENV, str(path))
    monkeypatch.delenv(PUBLIC_BASE_URL_ENV, raising=False)


def database_url(session: Session) -> str:
    return session.get_bind().url.render_as_string(hide_password=False)


@pytest.fixture
def enqueued() -> list[int]:
    return []


@pytest.fixture
def client(
    session: Session, enqueued: list[int], sns_test_certificate: None
) -> Iterator[TestClient]:
    settings = Settings(
        database_url=database_url(session),
        twilio_auth_token=TWILIO_TOKEN,
        sns_topic_arns=TOPIC_ARN,
    )
    with TestClient(create_app(settings, enqueue=enqueued.append)) as test_client:
        yield test_client


def events(session: Session) -> list[ProviderEvent]:
    rows = list(session.scalars(select(ProviderEvent).order_by(ProviderEvent.id)))
    session.rollback()  # end the read transaction so the app's writes never wait on it
    return rows


def post_sns(client: TestClient, message: dict) -> int:
    response = client.post(
        "/webhooks/ses", content=json.dumps(message), headers={"content-type": "text/plain"}
    )
    return response.status_code


def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.parametrize("version", ["1", "2"])
def test_a_signed_notification_is_recorded_and_enqueued_once(
    client: TestClient, session: Session, enqueued: list[int], version: str
) -> None:
    message = sign_sns(notification("sns-1", BOUNCE), shared_signing_key().private_key, version)
    assert post_sns(client, message) == 200
    assert post_sns(client, message) == 200  # SNS delivers at least once

    [event] = events(session)
    assert event.provider == "ses"
    assert event.dedupe_key == "ses:sns-1"
    assert event.status == ProviderEventStatus.RECEIVED
    assert event.payload["MessageId"] == "sns-1"
    assert event.payload["message"] == BOUNCE
    assert enqueued == [event.id]


def test_a_forged_notification_is_refused_and_nothing_recorded(
    client: TestClient, session: Session, enqueued: list[int]
) -> None:
    message = sign_sns(notification("sns-2", BOUNCE), new_signing_key().private_key)
    response = client.post("/webhooks/ses", content=json.dumps(message))
    assert response.status_code == 403
    assert "signature" in response.json()["detail"]

    tampered = sign_sns(notification("sns-3", BOUNCE), shared_signing_key().private_key)
    tampered["Message"] = json.dumps({"eventType": "Delivery"})
    assert post_sns(client, tampered) == 403

    assert events(session) == []
    assert enqueued == []


def test_a_disallowed_certificate_url_is_refused_even_with_the_test_certificate(
    client: TestClient, session: Session, enqueued: list[int]
) -> None:
    message = sign_sns(
        notification("sns-4", BOUNCE),
        shared_signing_key().private_key,
        cert_url="https://sns.us-east-1.amazonaws.com@evil.com/x.pem",
    )
    assert post_sns(client, message) == 403
    assert events(session) == []
    assert enqueued == []


@pytest.mark.parametrize("body", ["not json", "[1, 2]", '{"Type": "Notification"}'])
def test_garbage_is_refused(client: TestClient, session: Session, body: str) -> None:
    assert client.post("/webhooks/ses", content=body).status_code in (400, 403)
    assert events(session) == []


class SubscribeEndpoint:
    """A tiny local HTTP server standing in for the SNS SubscribeURL."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                endpoint.paths.append(self.path)
                self.send_response(200)
                self.send_header("content-type", "text/xml")
                self.end_headers()
                self.wfile.write(b"<ConfirmSubscriptionResponse/>")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def subscribe_endpoint() -> Iterator[SubscribeEndpoint]:
    endpoint = SubscribeEndpoint()
    yield endpoint
    endpoint.close()


def test_a_subscription_confirmation_gets_its_subscribe_url_once(
    client: TestClient,
    session: Session,
    enqueued: list[int],
    subscribe_endpoint: SubscribeEndpoint,
) -> None:
    subscribe_url = f"{subscribe_endpoint.url}/?Action=ConfirmSubscription&Token=abc"
    message = sign_sns(
        subscription_confirmation("sns-sub-1", subscribe_url), shared_signing_key().private_key
    )
    assert post_sns(client, message) == 200

    assert subscribe_endpoint.paths == ["/?Action=ConfirmSubscription&Token=abc"]
    [event] = events(session)
    assert event.dedupe_key == "ses:sns-sub-1"
    assert event.status == ProviderEventStatus.IGNORED
    assert enqueued == []


def test_a_subscribe_url_off_the_allow_list_is_not_fetched(
    session: Session, enqueued: list[int], subscribe_endpoint: SubscribeEndpoint, tmp_path: Path
) -> None:
    """Without the local test allowance, a 127.0.0.1 SubscribeURL is never called."""
    settings = Settings(database_url=database_url(session), sns_topic_arns=TOPIC_ARN)
    pem = shared_signing_key().certificate_pem
    app = create_app(
        settings,
        enqueue=enqueued.append,
        certificate_loader=lambda url: pem,
        allow_local_subscribe_url=False,
    )
    message = sign_sns(
        subscription_confirmation("sns-sub-2", f"{subscribe_endpoint.url}/confirm"),
        shared_signing_key().private_key,
    )
    with TestClient(app) as test_client:
        assert post_sns(test_client, message) == 403
    assert subscribe_endpoint.paths == []
    assert events(session) == []


def test_an_unsubscribe_confirmation_is_recorded(
    client: TestClient, session: Session, enqueued: list[int]
) -> None:
    message = subscription_confirmation(
        "sns-unsub-1", "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription"
    )
    message["Type"] = "UnsubscribeConfirmation"
    assert post_sns(client, sign_sns(message, shared_signing_key().private_key)) == 200
    [event] = events(session)
    assert event.payload["Type"] == "UnsubscribeConfirmation"
    assert enqueued == []


# Twilio --------------------------------------------------------------------------------

TWILIO_URL = "http://testserver/webhooks/twilio"


def twilio_form(sid: str = "SM0001", status: str = "delivered") -> dict[str, str]:
    return {
        "MessageSid": sid,
        "MessageStatus": status,
        "AccountSid": "AC0001",
        "To": "+919800000001",
        "From": "+15005550006",
        "ErrorCode": "",
    }


def post_twilio(
    client: TestClient, form: dict[str, str], signature: str | None, path: str = "/webhooks/twilio"
) -> int:
    headers = {"content-type": "application/x-www-form-urlencoded"}
    if signature is not None:
        headers["x-twilio-signature"] = signature
    return client.post(path, content=urlencode(form), headers=headers).status_code


def twilio_signature(form: dict[str, str], url: str = TWILIO_URL) -> str:
    return RequestValidator(TWILIO_TOKEN).compute_signature(url, form)


def test_a_signed_twilio_callback_is_recorded_and_enqueued(
    client: TestClient, session: Session, enqueued: list[int]
) -> None:
    form = twilio_form()
    assert post_twilio(client, form, twilio_signature(form)) == 200
    [event] = events(session)
    assert event.provider == "twilio"
    assert event.dedupe_key == "twilio:SM0001:delivered"
    assert event.payload == form
    assert event.status == ProviderEventStatus.RECEIVED
    assert enqueued == [event.id]


def test_the_same_sid_and_status_twice_is_one_row(
    client: TestClient, session: Session, enqueued: list[int]
) -> None:
    sent, delivered = twilio_form(status="sent"), twilio_form(status="delivered")
    for form in (sent, delivered, delivered, sent):
        assert post_twilio(client, form, twilio_signature(form)) == 200
    keys = [event.dedupe_key for event in events(session)]
    assert keys == ["twilio:SM0001:sent", "twilio:SM0001:delivered"]
    assert len(enqueued) == 2


@pytest.mark.parametrize("signature", [None, "", "bm90IGEgc2lnbmF0dXJl"])
def test_a_bad_twilio_signature_is_refused(
    client: TestClient, session: Session, enqueued: list[int], signature: str | None
) -> None:
    assert post_twilio(client, twilio_form(), signature) == 403
    assert events(session) == []
    assert enqueued == []


def test_a_twilio_signature_for_other_parameters_is_refused(
    client: TestClient, session: Session
) -> None:
    signature = twilio_signature(twilio_form(status="failed"))
    assert post_twilio(client, twilio_form(status="delivered"), signature) == 403
    assert events(session) == []


def test_the_public_base_url_is_what_twilio_signed(
    session: Session, enqueued: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PUBLIC_BASE_URL_ENV, "https://hooks.example.com/")
    settings = Settings(database_url=database_url(session), twilio_auth_token=TWILIO_TOKEN)
    form = twilio_form()
    with TestClient(create_app(settings, enqueue=enqueued.append)) as test_client:
        assert post_twilio(test_client, form, twilio_signature(form)) == 403
        public = "https://hooks.example.com/webhooks/twilio"
        assert post_twilio(test_client, form, twilio_signature(form, public)) == 200
    assert len(events(session)) == 1


def test_without_an_auth_token_every_twilio_callback_is_refused(
    session: Session, enqueued: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(PUBLIC_BASE_URL_ENV, raising=False)
    settings = Settings(database_url=database_url(session), twilio_auth_token="")
    form = twilio_form()
    signature = RequestValidator("").compute_signature(TWILIO_URL, form)
    with TestClient(create_app(settings, enqueue=enqueued.append)) as test_client:
        assert post_twilio(test_client, form, signature) == 403
    assert events(session) == []


def test_a_failed_enqueue_still_answers_and_keeps_the_row(
    session: Session, sns_test_certificate: None
) -> None:
    def broken_enqueue(event_id: int) -> None:
        raise ConnectionError("broker down")

    settings = Settings(database_url=database_url(session), twilio_auth_token=TWILIO_TOKEN)
    form = twilio_form()
    with TestClient(create_app(settings, enqueue=broken_enqueue)) as test_client:
        assert post_twilio(test_client, form, twilio_signature(form)) == 200
    [event] = events(session)
    assert event.status == ProviderEventStatus.RECEIVED  # the replay sweep's job now


@pytest.mark.skipif(
    not hasattr(actors, "process_provider_event"),
    reason="the process_provider_event actor is not written yet",
)
def test_the_default_enqueue_reaches_the_real_actor(
    worker: object, worker_settings: Settings, pg_engine: Engine, sns_test_certificate: None
) -> None:
    settings = Settings(
        database_url=worker_settings.database_url,
        twilio_auth_token=TWILIO_TOKEN,
        sns_topic_arns=TOPIC_ARN,
    )
    message = sign_sns(notification("sns-real-1", BOUNCE), shared_signing_key().private_key)
    with TestClient(create_app(settings)) as test_client:
        assert post_sns(test_client, message) == 200

    def handled() -> bool:
        with Session(pg_engine) as check:
            status = check.scalar(
                select(ProviderEvent.status).where(ProviderEvent.dedupe_key == "ses:sns-real-1")
            )
        return status is not None and status != ProviderEventStatus.RECEIVED

    wait_for(handled)


def test_a_concurrent_duplicate_is_caught_in_a_savepoint(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The unique key, not the pre-check, is what makes a duplicate harmless."""
    from portalflow.pipelines.delivery import provider_events

    first_id, created = provider_events.record_provider_event(
        session, provider="ses", dedupe_key="ses:race", payload={"n": 1}
    )
    assert created
    session.commit()

    real_lookup = provider_events._event_id
    lookups: list[str] = []

    def lookup_missing_the_first_time(session: Session, dedupe_key: str) -> int | None:
        lookups.append(dedupe_key)
        return None if len(lookups) == 1 else real_lookup(session, dedupe_key)

    monkeypatch.setattr(provider_events, "_event_id", lookup_missing_the_first_time)
    again = provider_events.record_provider_event(
        session, provider="ses", dedupe_key="ses:race", payload={"n": 2}
    )
    assert again == (first_id, False)
    # The outer transaction survived the failed insert.
    _, created = provider_events.record_provider_event(
        session, provider="ses", dedupe_key="ses:after", payload={}
    )
    assert created
    session.commit()
    assert [event.dedupe_key for event in events(session)] == ["ses:race", "ses:after"]
