"""Provider send-rate limits: one schedule shared by processes, settings, throttling answers."""

from __future__ import annotations

import itertools
import math
import multiprocessing
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import timedelta
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from portalflow.config import Settings, SettingsError
from portalflow.models import Invitation, InvitationStatus, make_engine, utcnow
from portalflow.pipelines.delivery import dispatch, dispatch_config
from portalflow.pipelines.delivery.channels import OutboxChannel, SendFailure, build_email_channel
from portalflow.pipelines.delivery.channels.base import OutgoingEmail
from portalflow.pipelines.delivery.channels.bundle import Channels
from portalflow.pipelines.delivery.channels.rate_limit import (
    LocalSendRate,
    Paced,
    RedisSendRate,
    send_rates,
)
from portalflow.workers.runtime import Runtime

from ..ses_server import SesServer, running_ses_server
from ..smtp_server import free_port
from .test_dispatch_core import expand_claimed, invite

RATE = 50  # slots per second in the shared-schedule test
PROCESSES, THREADS, PER_THREAD = 2, 2, 40  # 160 slots: 3.2 s at RATE


def _acquire_slots(url: str, key: str, barrier: Barrier, results: multiprocessing.Queue) -> None:
    """One process: THREADS threads each take PER_THREAD slots; (slot, woke at) per slot."""
    limiter = RedisSendRate(redis.Redis.from_url(url), key, RATE)
    taken: list[tuple[float, float]] = []
    lock = threading.Lock()

    def take() -> None:
        for _ in range(PER_THREAD):
            slot = limiter.acquire()
            woke = time.monotonic()  # one clock for every process of this machine
            with lock:
                taken.append((slot.at, woke))

    barrier.wait(30)
    threads = [threading.Thread(target=take) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results.put(taken)
    limiter.close()


def most_in_any_second(times: Sequence[float]) -> int:
    """The largest number of ``times`` inside one half-open window [t, t + 1 s)."""
    ordered = sorted(times)
    most = start = 0
    for end, at in enumerate(ordered):
        while ordered[start] <= at - 1.0:
            start += 1
        most = max(most, end - start + 1)
    return most


def in_window(times: Sequence[float], start: float) -> int:
    return sum(start <= at < start + 1.0 for at in times)


@pytest.fixture
def key(redis_url: str) -> Iterator[str]:
    name = f"portalflow-test:send-rate:{uuid.uuid4().hex}"
    yield name
    redis.Redis.from_url(redis_url).delete(name)


def test_two_processes_share_one_schedule(redis_url: str, key: str) -> None:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES)
    results = context.Queue()
    processes = [
        context.Process(target=_acquire_slots, args=(redis_url, key, barrier, results))
        for _ in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    taken = [pair for _ in processes for pair in results.get(timeout=60)]
    for process in processes:
        process.join(10)
        assert process.exitcode == 0

    assert len(taken) == PROCESSES * THREADS * PER_THREAD
    slots = sorted(slot for slot, _woke in taken)
    # The schedule itself: slots 1/RATE apart, so no second ever holds more than RATE.
    assert min(b - a for a, b in itertools.pairwise(slots)) >= 1 / RATE - 1e-6
    assert most_in_any_second(slots) <= RATE
    # What the senders saw: the slots were used, in full, as they came.
    woke = sorted(at for _slot, at in taken)
    assert in_window(woke, woke[0] + 1.0) >= 0.9 * RATE
    assert most_in_any_second(woke) <= 1.1 * RATE


def test_a_local_schedule_spaces_the_threads_of_one_process() -> None:
    waits: list[float] = []
    limiter = LocalSendRate(200, sleep=waits.append)

    slots = [limiter.acquire().at for _ in range(5)]

    assert [round(b - a, 6) for a, b in itertools.pairwise(slots)] == [0.005] * 4
    assert len(waits) == 4 and waits == sorted(waits)  # each caller waits one slot longer


def test_a_window_admits_at_most_the_rate_of_departures_per_second(
    redis_url: str, key: str
) -> None:
    client = redis.Redis.from_url(redis_url)
    for limiter in (LocalSendRate(3.5), RedisSendRate(client, key, 3.5)):
        # Three at once (senders that woke together after a pause), then the fourth waits
        # until the first leaves the sliding second.
        assert [limiter.admit() for _ in range(3)] == [0, 0, 0]
        wait_us = limiter.admit()
        assert 900_000 < wait_us <= 1_000_000, type(limiter).__name__
    client.delete(f"{key}:sent")
    client.close()


def test_a_sender_that_wakes_late_still_sends_on_its_slot() -> None:
    def oversleep(seconds: float) -> None:  # its thread then waits 30 ms for the GIL
        time.sleep(seconds + 0.03)

    limiter = LocalSendRate(50, sleep=oversleep)
    first, second = limiter.acquire(), limiter.acquire()

    # The second sender's slot is used, not traded in for a later one.
    assert round(second.at - first.at, 3) == 0.02


def test_a_rate_that_does_not_divide_a_second_is_rounded_down() -> None:
    limiter = LocalSendRate(97)

    assert limiter.interval_us == math.ceil(1_000_000 / 97)
    assert 1_000_000 / limiter.interval_us <= 97


# --- settings -------------------------------------------------------------------------------


def test_no_rate_set_means_no_limiter() -> None:
    settings = Settings.from_env({})

    assert (settings.email_max_send_rate, settings.sms_max_send_rate) == (0.0, 0.0)
    rates = send_rates(settings)
    assert (rates.email, rates.sms) == (None, None)


def test_rates_are_requests_per_second_from_the_environment() -> None:
    settings = Settings.from_env(
        {"PORTALFLOW_EMAIL_MAX_SEND_RATE": "14", "PORTALFLOW_SMS_MAX_SEND_RATE": "0.5"}
    )

    assert (settings.email_max_send_rate, settings.sms_max_send_rate) == (14.0, 0.5)


@pytest.mark.parametrize("raw", ["-1", "nan", "inf"])
def test_a_rate_must_be_a_positive_number(raw: str) -> None:
    with pytest.raises(SettingsError, match=r"PORTALFLOW_SMS_MAX_SEND_RATE.*positive number"):
        Settings.from_env({"PORTALFLOW_SMS_MAX_SEND_RATE": raw})


def test_a_rate_that_is_not_a_number_is_named() -> None:
    with pytest.raises(SettingsError, match="PORTALFLOW_EMAIL_MAX_SEND_RATE='fast'"):
        Settings.from_env({"PORTALFLOW_EMAIL_MAX_SEND_RATE": "fast"})


def test_a_rate_limit_redis_url_must_be_redis() -> None:
    with pytest.raises(SettingsError, match=r"PORTALFLOW_RATE_LIMIT_REDIS_URL.*'http'") as raised:
        Settings.from_env({"PORTALFLOW_RATE_LIMIT_REDIS_URL": "http://user:secret@host/"})
    assert "secret" not in str(raised.value)


def test_a_rate_with_a_rabbitmq_broker_needs_a_redis_for_the_limiter() -> None:
    rabbit = {"PORTALFLOW_BROKER_URL": "amqp://guest:guest@127.0.0.1:5672/"}
    with pytest.raises(SettingsError, match="PORTALFLOW_RATE_LIMIT_REDIS_URL"):
        Settings.from_env({**rabbit, "PORTALFLOW_EMAIL_MAX_SEND_RATE": "10"})

    settings = Settings.from_env(
        {
            **rabbit,
            "PORTALFLOW_EMAIL_MAX_SEND_RATE": "10",
            "PORTALFLOW_RATE_LIMIT_REDIS_URL": "redis://127.0.0.1:6379/3",
        }
    )
    assert settings.send_rate_redis_url == "redis://127.0.0.1:6379/3"


def test_the_limiter_lives_in_the_redis_broker_else_in_the_process() -> None:
    redis_broker = Settings(broker_url="redis://127.0.0.1:6379/0", sms_max_send_rate=5)
    rates = send_rates(redis_broker, key_prefix="portalflow-test:send-rate")
    assert rates.email is None
    assert isinstance(rates.sms, RedisSendRate)
    assert rates.sms.key == "portalflow-test:send-rate:sms"
    rates.close()

    embedded = send_rates(Settings(email_max_send_rate=5))
    assert isinstance(embedded.email, LocalSendRate) and embedded.sms is None


# --- the channels ---------------------------------------------------------------------------


def email(invitation_id: int = 1) -> OutgoingEmail:
    message_id = f"<{invitation_id}@example.com>"
    raw = f"Message-ID: {message_id}\r\nSubject: hi\r\n\r\nhello\r\n".encode()
    return OutgoingEmail(invitation_id, "portal@example.com", "ada@example.org", raw, message_id)


def test_a_runtime_paces_the_channels_the_settings_limit(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path, email_max_send_rate=1000)
    engine = make_engine(settings.database_url)
    runtime = Runtime(settings, engine, sessionmaker(engine, class_=Session), send_rates(settings))
    channels = runtime.channels()

    paced = channels.email
    assert isinstance(paced, Paced) and paced.name == "outbox"
    assert paced.send(email(7)) == "<7@example.com>"
    assert [path.name.split("-")[0] for path in (tmp_path / "outbox").iterdir()] == ["7"]
    channels.close()
    runtime.close()


def test_an_unreachable_limiter_fails_the_send_as_temporary(tmp_path: Path) -> None:
    client = redis.Redis(port=free_port(), retry=Retry(NoBackoff(), 0))
    channel = Paced(OutboxChannel(tmp_path), RedisSendRate(client, "unused", 10))

    with pytest.raises(SendFailure) as raised:
        channel.send(email())

    assert (raised.value.code, raised.value.temporary) == ("connection_error", True)
    assert list(tmp_path.iterdir()) == []  # nothing went out


@pytest.fixture
def ses(aws_env: None) -> Iterator[SesServer]:
    with running_ses_server() as server:
        yield server


@pytest.mark.parametrize(
    ("status", "ses_code"),
    [(429, "TooManyRequestsException"), (400, "Throttling"), (400, "ThrottlingException")],
)
def test_a_throttled_ses_send_is_a_temporary_failure(
    ses: SesServer, status: int, ses_code: str
) -> None:
    ses.state.errors = [(status, ses_code)]
    channel = build_email_channel(
        Settings(email_channel="ses", ses_endpoint_url=ses.endpoint_url, ses_timeout=5)
    )

    with pytest.raises(SendFailure) as raised:
        channel.send(email())
    channel.close()

    assert (raised.value.code, raised.value.temporary) == ("ses_throttled", True)
    assert ses.state.attempts == 1  # boto3 did not retry on its own: our backoff does


def test_a_throttled_send_is_retried_soon_without_spending_an_attempt(
    ses: SesServer, session: Session
) -> None:
    settings = Settings(email_channel="ses", ses_endpoint_url=ses.endpoint_url, ses_timeout=5)
    # One attempt allowed: were a throttle an attempt, the rows would end as technical_failure.
    config = dispatch_config.DispatchConfig(portal_base_url="https://portal.test/p", max_attempts=1)
    run_id, [chunk_id] = invite(session, 3)
    claim = expand_claimed(session, chunk_id, config)
    ses.state.errors = [(429, "TooManyRequestsException")] * 3
    before = utcnow()

    result = dispatch.send_claim(
        session,
        claim.claim,
        channels=Channels(lambda: build_email_channel(settings)),
        config=config,
    )

    assert (len(result.sent), len(result.failed), len(result.retry)) == (0, 0, 3)
    rows = session.execute(
        select(
            Invitation.status,
            Invitation.attempts,
            Invitation.failure_code,
            Invitation.next_attempt_at,
        ).where(Invitation.bulk_run_id == run_id)
    ).all()
    assert {(r.status, r.attempts, r.failure_code) for r in rows} == {
        (InvitationStatus.QUEUED, 0, "ses_throttled")
    }
    assert all(r.next_attempt_at - before < timedelta(seconds=10) for r in rows)

    later = max(r.next_attempt_at for r in rows)
    again = dispatch.dispatch(
        session,
        [invitation_id for invitation_id, _ in result.retry],
        channels=Channels(lambda: build_email_channel(settings)),
        config=config,
        now=lambda: later,
    )
    assert len(again.sent) == 3
    assert len(ses.state.accepted) == 3
