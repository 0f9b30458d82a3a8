"""Fault 5: malformed messages go to the dead-letter queue with their error; the run goes on."""

from __future__ import annotations

from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import xq_name

from . import fleet, tally, world
from .rig import Rig

RECORDS = 500
CHUNK_SIZE = 100
PROCESSES, THREADS = 1, 4
# Raw messages no client of ours would send: a chunk id that is not a number, and one
# argument too many.
POISON = {
    "not an id": (("chunk-seven",), "MalformedMessage: chunk_id must be a positive integer"),
    "too many arguments": ((1, 2), "MalformedMessage: bulk_invite: too many positional"),
}


def test_poison_messages_are_dead_lettered_with_their_error(rig: Rig, queue: RedisBroker) -> None:
    seeded = rig.seed(RECORDS)
    dead_letters = f"{queue.namespace}:{xq_name(world.QUEUE)}"
    with fleet.group(rig.smtp_env(), rig.tmp_path / "workers.log", PROCESSES, THREADS):
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
        rig.wait_finished(rig.start_run(CHUNK_SIZE))
        fleet.wait_until(
            lambda: queue.client.zcard(dead_letters) >= len(POISON), "the dead letters"
        )
        stored = queue.client.hgetall(f"{dead_letters}.msgs")

    with rig.factory() as session:
        result = rig.count(session, rig.smtp_deliveries())
    dead = {key.decode(): Message.decode(data) for key, data in stored.items()}
    rig.report(
        "poison message",
        result,
        dead_lettered=len(dead),
        errors=[message.options.get("error") for message in dead.values()],
    )
    assert set(dead) == set(poison_ids.values())
    for name, (_args, error) in POISON.items():
        message = dead[poison_ids[name]]
        assert message.options["error"].startswith(error), name
        assert "retries" not in message.options, f"{name} was retried"
    tally.assert_each_got_one(result, seeded)
