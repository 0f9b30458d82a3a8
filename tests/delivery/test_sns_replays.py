"""SNS replays: a signed message is taken only from a configured topic and inside the window."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from portalflow.config import Settings
from portalflow.models.delivery import ProviderEvent
from portalflow.models.enums import ProviderEventStatus
from portalflow.pipelines.delivery import sns
from portalflow.pipelines.ops import retention
from portalflow.web.app import create_app

from ..sns_signing import (
    TOPIC_ARN,
    notification,
    shared_signing_key,
    sign_sns,
    sns_timestamp,
    subscription_confirmation,
)
from ..web.test_webhooks import (  # noqa: F401 (fixtures)
    BOUNCE,
    SubscribeEndpoint,
    database_url,
    enqueued,
    events,
    sns_test_certificate,
    subscribe_endpoint,
)

OTHER_TOPIC = "arn:aws:sns:us-east-1:999999999999:someone-elses"


def make_client(session: Session, sink: list[int], topics: str) -> TestClient:
    settings = Settings(database_url=database_url(session), sns_topic_arns=topics)
    return TestClient(create_app(settings, enqueue=sink.append))


@pytest.fixture
def client(
    session: Session,
    enqueued: list[int],  # noqa: F811
    sns_test_certificate: None,  # noqa: F811
) -> Iterator[TestClient]:
    with make_client(session, enqueued, TOPIC_ARN) as test_client:
        yield test_client


def post(client: TestClient, message: dict) -> tuple[int, str]:
    response = client.post("/webhooks/ses", content=json.dumps(message))
    return response.status_code, response.json().get("detail", "") if response.content else ""


def signed(message: dict) -> dict:
    return sign_sns(message, shared_signing_key().private_key)


def test_a_validly_signed_message_from_2019_is_refused(
    client: TestClient,
    session: Session,
    enqueued: list[int],  # noqa: F811
) -> None:
    stale = signed(notification("sns-2019", BOUNCE, timestamp=datetime(2019, 6, 1, tzinfo=UTC)))
    status, detail = post(client, stale)
    assert status == 403
    assert "replay" in detail
    assert events(session) == []
    assert enqueued == []


def test_the_window_is_an_hour_back_and_minutes_ahead(
    client: TestClient,
    session: Session,
    enqueued: list[int],  # noqa: F811
) -> None:
    now = datetime.now(UTC)
    late = signed(notification("sns-late", BOUNCE, timestamp=now - timedelta(minutes=61)))
    early = signed(notification("sns-ahead", BOUNCE, timestamp=now + timedelta(minutes=6)))
    inside = signed(notification("sns-inside", BOUNCE, timestamp=now - timedelta(minutes=55)))
    assert post(client, late)[0] == 403
    assert post(client, early)[0] == 403
    assert post(client, inside)[0] == 200
    assert [event.dedupe_key for event in events(session)] == ["ses:sns-inside"]
    assert len(enqueued) == 1


def test_a_message_from_another_topic_is_refused(
    client: TestClient,
    session: Session,
    enqueued: list[int],  # noqa: F811
) -> None:
    status, detail = post(client, signed(notification("sns-x", BOUNCE, topic_arn=OTHER_TOPIC)))
    assert status == 403
    assert OTHER_TOPIC in detail and sns.TOPIC_ARNS_VARIABLE in detail
    assert events(session) == []
    assert enqueued == []


def test_a_subscription_to_another_topic_is_never_confirmed(
    client: TestClient,
    session: Session,
    subscribe_endpoint: SubscribeEndpoint,  # noqa: F811
) -> None:
    url = f"{subscribe_endpoint.url}/?Action=ConfirmSubscription&Token=abc"
    message = signed(subscription_confirmation("sns-sub-x", url, topic_arn=OTHER_TOPIC))
    assert post(client, message)[0] == 403
    assert subscribe_endpoint.paths == []
    assert events(session) == []


def test_without_configured_topics_every_sns_message_is_refused(
    session: Session,
    enqueued: list[int],  # noqa: F811
    sns_test_certificate: None,  # noqa: F811
) -> None:
    with make_client(session, enqueued, "") as test_client:
        status, detail = post(test_client, signed(notification("sns-unset", BOUNCE)))
    assert status == 403
    assert sns.TOPIC_ARNS_VARIABLE in detail
    assert events(session) == []


def test_a_malformed_topic_setting_is_named(
    session: Session,
    enqueued: list[int],  # noqa: F811
    sns_test_certificate: None,  # noqa: F811
) -> None:
    with make_client(session, enqueued, f"{TOPIC_ARN}, not-an-arn") as test_client:
        status, detail = post(test_client, signed(notification("sns-bad", BOUNCE)))
    assert status == 503
    assert "'not-an-arn'" in detail and sns.TOPIC_ARNS_VARIABLE in detail


def test_several_topics_are_taken_and_case_is_kept() -> None:
    mixed = "arn:aws:sns:eu-west-1:123456789012:SesEvents"
    assert sns.parse_topic_arns(f" {TOPIC_ARN} ,{mixed},") == {TOPIC_ARN, mixed}


def test_a_replay_stays_refused_after_retention(
    client: TestClient,
    session: Session,
    enqueued: list[int],  # noqa: F811
) -> None:
    first = signed(notification("sns-replayed", BOUNCE))
    assert post(client, first)[0] == 200
    [event_id] = [event.id for event in events(session)]
    session.execute(
        update(ProviderEvent)
        .where(ProviderEvent.id == event_id)
        .values(status=ProviderEventStatus.PROCESSED)
    )
    session.commit()

    # Retention never deletes a row whose message may still be replayed inside the window.
    assert retention.delete_old_provider_events(session, datetime.now(UTC) + timedelta(days=1)) == 0
    session.rollback()  # end the read so the app's writes never wait on it
    assert post(client, first)[0] == 200
    assert enqueued == [event_id]

    # Past the horizon the row goes, and the same message, now that old, is refused by age.
    aged = datetime.now(UTC) - sns.REPLAY_HORIZON - timedelta(minutes=1)
    session.execute(
        update(ProviderEvent).where(ProviderEvent.id == event_id).values(received_at=aged)
    )
    session.commit()
    assert retention.delete_old_provider_events(session, datetime.now(UTC)) == 1
    session.rollback()
    later = dict(first, Timestamp=sns_timestamp(aged))
    assert post(client, signed(later))[0] == 403
    assert session.scalars(select(ProviderEvent.id)).all() == []
    session.rollback()
    assert enqueued == [event_id]


def test_check_sns_message_refuses_a_missing_or_naive_timestamp() -> None:
    now = datetime.now(UTC)
    message = notification("m", BOUNCE)
    for bad in (None, "yesterday", "2024-05-01T12:00:00"):
        with pytest.raises(sns.SnsMessageRefused):
            sns.check_sns_message(
                dict(message, Timestamp=bad), topic_arns=frozenset({TOPIC_ARN}), now=now
            )
    sns.check_sns_message(message, topic_arns=frozenset({TOPIC_ARN}), now=now)
