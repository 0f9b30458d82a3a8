"""Fault 5: malformed messages go to the dead-letter queue with their error; the run goes on."""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import xq_name

from bench import harness
from portalflow.models import make_engine, make_session_factory

from ..smtp_server import SmtpServer
from . import fleet, tally, world

RECORDS = 500
CHUNK_SIZE = 100
PROCESSES, THREADS = 1, 4
# Raw messages no client of ours would send: a chunk id that is not a number, and one
# argument too many.
POISON = {
    "not an id": (("chunk-seven",), "MalformedMessage: chunk_id must be a positive integer"),
    "too many arguments": ((1, 2), "MalformedMessage: bulk_invite: too many positional"),
}


def test_poison_messages_are_dead_lettered_with_their_error(
    database_url: str,
    redis_server: harness.PrivateRedis,
    queue: RedisBroker,
    mail_sink: SmtpServer,
    tmp_path: Path,
) -> None:
    began = time.monotonic()
    seeded = world.seed(database_url, RECORDS)
    env = fleet.worker_env(
        database_url, redis_server.url, tmp_path / "var", **fleet.smtp(mail_sink.port)
    )
    engine = make_engine(database_url)
    factory = make_session_factory(engine)
    dead_letters = f"{queue.namespace}:{xq_name(world.QUEUE)}"
    with fleet.group(env, tmp_path / "workers.log", PROCESSES, THREADS):
        # Enqueued before the run's chunks, so the workers meet them first.
        poison_ids = {
            name: queue.enqueue(
                Message(
                    queue_name=world.QUEUE,
                    actor_name="bulk_invite",
                    args=args,
                    kwargs={},
                    options={},
                )
            ).options["redis_message_id"]
            for name, (args, _error) in POISON.items()
        }
        with factory() as session:
            run = world.start_run(session, seeded, CHUNK_SIZE)
        fleet.wait_until(partial(fleet.run_finished, factory, run.run_id), "the end of the run")
        fleet.wait_until(
            lambda: queue.client.zcard(dead_letters) >= len(POISON), "the dead letters"
        )
        stored = queue.client.hgetall(f"{dead_letters}.msgs")

    delivered = tally.email_deliveries((m.rcpt_tos, m.content) for m in mail_sink.messages)
    with factory() as session:
        result = tally.count(session, seeded, delivered)
    engine.dispose()
    dead = {key.decode(): Message.decode(data) for key, data in stored.items()}
    tally.report(
        "poison message",
        records=RECORDS,
        eligible=len(seeded.eligible),
        dead_lettered=len(dead),
        errors=[message.options.get("error") for message in dead.values()],
        lost=len(result.lost),
        duplicates=result.duplicate_count,
        seconds=round(time.monotonic() - began, 1),
    )
    assert set(dead) == set(poison_ids.values())
    for name, (_args, error) in POISON.items():
        message = dead[poison_ids[name]]
        assert message.options["error"].startswith(error), name
        assert "retries" not in message.options, f"{name} was retried"
    tally.assert_each_got_one(result, seeded)
