"""A SIGKILLed ``dramatiq`` parent takes its worker and fork processes with it; healthchecks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path

import pytest

from bench import harness

from ..servers import require_binary

GUARD_SECONDS = 60.0  # only against a hung test: nothing asserts how fast
PROCESSES = 2


def children(parent: int) -> set[int]:
    """Live (non-zombie) processes whose parent is ``parent``, from /proc."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == parent and fields[0] != "Z":
                found.add(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z"


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + GUARD_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting for {what}")
        time.sleep(0.1)


def healthcheck(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "portalflow.cli", "healthcheck", *args]
    return subprocess.run(
        argv, env={**os.environ, **env}, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[tuple[harness.Workers, dict[str, str]]]:
    require_binary("redis-server")
    if not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_PDEATHSIG is Linux only")
    with harness.private_redis() as redis_server:
        env = {
            "PORTALFLOW_BROKER_URL": redis_server.url,
            "PORTALFLOW_VAR_DIR": str(tmp_path / "var"),
            # The Prometheus exposition server is a fork of the parent too.
            "dramatiq_prom_db": str(tmp_path / "prometheus"),
            "dramatiq_prom_port": str(harness.free_port()),
        }
        group = harness.Workers(
            env, processes=PROCESSES, threads=2, log_path=tmp_path / "workers.log"
        )
        group.start()
        try:
            yield group, env
        finally:
            group.kill()  # the whole process group, whatever is left


def test_worker_processes_exit_when_their_parent_is_sigkilled(workers) -> None:
    group, env = workers
    parent = group.process.pid
    # Two worker processes and the metrics fork.
    wait_until(lambda: len(children(parent)) == PROCESSES + 1, "the worker processes")
    wait_until(lambda: healthcheck(env, "worker", "--pid", str(parent)).returncode == 0, "boot")
    forks = children(parent)

    os.kill(parent, signal.SIGKILL)  # the parent only: its children are on their own
    group.process.wait()

    wait_until(lambda: not any(alive(pid) for pid in forks), "the orphans to exit")
    gone = healthcheck(env, "worker", "--pid", str(parent))
    assert gone.returncode == 1
    assert f"no process {parent}" in gone.stderr


def test_the_worker_healthcheck_needs_each_process_beating_in_redis(workers) -> None:
    group, env = workers
    parent = str(group.process.pid)
    wait_until(lambda: healthcheck(env, "worker", "--pid", parent).returncode == 0, "boot")
    assert "worker: healthy" in healthcheck(env, "--pid", parent).stdout  # auto: a worker

    elsewhere = {**env, "PORTALFLOW_BROKER_URL": env["PORTALFLOW_BROKER_URL"][:-1] + "9"}
    silent = healthcheck(elsewhere, "worker", "--pid", parent)
    assert silent.returncode == 1
    assert "has not beaten in Redis" in silent.stderr


def test_the_scheduler_healthcheck_passes_once_the_schedule_fired(tmp_path: Path) -> None:
    require_binary("redis-server")
    with harness.private_redis() as redis_server:
        env = {"PORTALFLOW_BROKER_URL": redis_server.url, "PORTALFLOW_VAR_DIR": str(tmp_path)}
        run = {**os.environ, **env}
        cli = [sys.executable, "-m", "portalflow.cli"]
        subprocess.run([*cli, "db", "upgrade"], env=run, check=True, capture_output=True)

        never = healthcheck(env, "scheduler")
        assert never.returncode == 1
        assert "recover_stuck_work has not been enqueued" in never.stderr

        subprocess.run([*cli, "scheduler", "--once"], env=run, check=True, capture_output=True)
        fired = healthcheck(env, "scheduler")
        assert fired.returncode == 0, fired.stderr

        redis_server.process.terminate()
        redis_server.process.wait()
        no_lock = healthcheck(env, "scheduler")
        assert no_lock.returncode == 1
        assert "cannot reach the lock's Redis" in no_lock.stderr
