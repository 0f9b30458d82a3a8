"""Worker processes under test, and the test standing in for the scheduler."""

from __future__ import annotations

import itertools
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import redis
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from bench import harness
from portalflow.config import Settings
from portalflow.models import BulkRun, BulkRunStatus, make_engine, make_session_factory, utcnow
from portalflow.pipelines.delivery.channels.bundle import Channels
from portalflow.pipelines.ops import recovery
from portalflow.workers import enqueue

READY_LINE = b"is ready for action"
# Only guards against a hung test: the tests assert what happened, never how fast.
HANG_GUARD_SECONDS = 240.0
RUN_GUARD_SECONDS = 600.0


class Group:
    """One ``dramatiq`` process group that knows since when its processes are ready."""

    def __init__(self, workers: harness.Workers) -> None:
        assert workers.log_path is not None
        self.workers = workers
        self.log_path = workers.log_path
        self.offset = 0
        self.ready_since: float | None = None

    def start(self) -> None:
        self.offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self.ready_since = None
        self.workers.start()

    def ready(self) -> bool:
        """True once every process of this start logged that it is ready for action."""
        if self.ready_since is None:
            process = self.workers.process
            if process is not None and process.poll() is not None:
                raise AssertionError(f"workers exited: see {self.log_path}")
            with self.log_path.open("rb") as log:
                log.seek(self.offset)
                if log.read().count(READY_LINE) >= self.workers.processes:
                    self.ready_since = time.monotonic()
        return self.ready_since is not None

    def wait_ready(self) -> None:
        wait_until(self.ready, f"readiness of the workers logging to {self.log_path}")

    def uptime(self) -> float:
        return 0.0 if self.ready_since is None else time.monotonic() - self.ready_since

    def pause(self) -> None:
        """SIGSTOP every process of the group at once; returns once all of them are stopped."""
        group_id = self._group_id()
        os.killpg(group_id, signal.SIGSTOP)
        wait_until(
            lambda: all(state in "TtZ" for state in _process_states(group_id).values()),
            f"the stop of the workers logging to {self.log_path}",
        )

    def resume(self) -> None:
        """SIGCONT every process of the group."""
        os.killpg(self._group_id(), signal.SIGCONT)

    def _group_id(self) -> int:
        process = self.workers.process
        assert process is not None, "the group is not running"
        return process.pid  # started in a session of its own: the leader of its group


@contextmanager
def group(env: dict[str, str], log_path: Path, processes: int, threads: int) -> Iterator[Group]:
    """A started group, ready for action; stopped (SIGTERM, then SIGKILL) on exit."""
    workers = harness.Workers(env, processes=processes, threads=threads, log_path=log_path)
    running = Group(workers)
    running.start()
    try:
        running.wait_ready()
        yield running
    finally:
        running.workers.stop()


@dataclass
class Replays:
    """What the recovery passes found, summed over the run."""

    passes: int = 0
    failed_passes: int = 0  # the database or Redis was down: the next pass tries again
    error: BaseException | None = None  # anything else stops the passes and fails the test
    requeued: int = 0  # dead claims without a provider receipt: sent again
    completed: int = 0  # dead claims with a provider receipt: completed, not sent again
    found_at_provider: int = 0  # of completed: SMS without a receipt the provider had taken
    exhausted: int = 0
    chunks: int = 0
    invitations: int = 0
    # Set by a test: passes are skipped meanwhile, as between the real scheduler's passes
    # minutes apart.
    held: bool = False


@contextmanager
def playing_scheduler(
    database_url: str,
    period: float,
    *,
    lease: float,
    grace: float,
    max_attempts: int,
    env: Mapping[str, str] | None = None,
) -> Iterator[Replays]:
    """Run a recovery pass every ``period`` seconds, as the scheduler's maintenance job does.

    ``portalflow scheduler`` enqueues ``recover_stuck_work`` every five minutes; here the
    test plays both the scheduler and that actor (the same pipeline call, then the same
    enqueue helpers) with a short lease and grace, so that it can count what each pass found.
    With ``env`` (the workers' ``PORTALFLOW_*``), each pass asks the SMS channel those settings
    name about lost receipts, as the actor does; without, it never asks.
    """
    replays = Replays()
    stop = threading.Event()
    engine = make_engine(database_url)
    factory = make_session_factory(engine)
    # Built on the first lookup, as in the actor; one thread uses it.
    channels = Channels.from_settings(Settings.from_env(env)) if env is not None else None
    lookup = (
        (lambda to, since, matches: channels.sms.find_sent(to, since, matches))
        if channels is not None
        else None
    )

    def one_pass() -> None:
        with factory() as session:
            found = recovery.recover(
                session,
                utcnow(),
                max_attempts=max_attempts,
                lease=timedelta(seconds=lease),
                grace=timedelta(seconds=grace),
                sms_lookup=lookup,
            )
            session.commit()
        enqueue.enqueue_chunks(found.chunk_ids)
        enqueue.enqueue_dispatch(found.invitation_ids)
        replays.requeued += found.released_claims
        replays.completed += len(found.completed)
        replays.found_at_provider += len(found.found_at_provider)
        replays.exhausted += len(found.exhausted)
        replays.chunks += len(found.chunk_ids)
        replays.invitations += len(found.invitation_ids)

    def loop() -> None:
        while not stop.wait(period):
            if replays.held:
                continue
            replays.passes += 1
            try:
                one_pass()
            except (DBAPIError, redis.ConnectionError):
                replays.failed_passes += 1
            except Exception as exc:
                replays.error = exc
                return

    thread = threading.Thread(target=loop, name="fault-test-scheduler", daemon=True)
    thread.start()
    try:
        yield replays
    finally:
        stop.set()
        thread.join()
        engine.dispose()
        if channels is not None:
            channels.close()
    if replays.error is not None:
        raise AssertionError("a recovery pass failed") from replays.error


def _process_states(group_id: int) -> dict[int, str]:
    """pid -> state letter (``/proc/PID/stat``) of every live process in a process group."""
    states = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # exited meanwhile
            continue
        # The command name may hold spaces and parentheses: the fields follow the last ")".
        state, _parent, group = stat.rpartition(")")[2].split()[:3]
        if int(group) == group_id:
            states[int(entry.name)] = state
    return states


def run_finished(factory: sessionmaker[Session], run_id: int) -> bool:
    with factory() as session:
        return session.get_one(BulkRun, run_id).status == BulkRunStatus.COMPLETED


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + HANG_GUARD_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {HANG_GUARD_SECONDS:.0f} s")
        time.sleep(0.2)


def sent_so_far(factory: sessionmaker[Session], run_id: int) -> int:
    with factory() as session:
        return session.get_one(BulkRun, run_id).sent


def kill_in_turns(groups: Sequence[Group], finished: Callable[[], bool], every: float) -> int:
    """SIGKILL the groups in turn, each once it has worked ``every`` seconds since it was
    ready, and start it again, until ``finished()``; how many kills."""
    deadline = time.monotonic() + RUN_GUARD_SECONDS
    for kills, victim in enumerate(itertools.cycle(groups)):
        assert time.monotonic() < deadline, "the run did not finish"
        wait_until(
            lambda v=victim: finished() or (v.ready() and v.uptime() >= every), "the next kill"
        )
        if finished():
            return kills
        victim.workers.kill()
        victim.start()
    raise AssertionError("unreachable")  # pragma: no cover
