"""A worker process's runtime: one per process, however many threads ask for it first."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from portalflow.workers import runtime


def test_threads_asking_at_once_share_one_runtime(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PORTALFLOW_DATABASE_URL", f"sqlite:///{tmp_path / 'runtime.db'}")
    monkeypatch.setattr(runtime, "_current", None)
    start = threading.Barrier(8)
    seen: list[runtime.Runtime] = []

    def first_message() -> None:
        start.wait()
        seen.append(runtime.current())

    threads = [threading.Thread(target=first_message) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(seen) == 8
    assert len({id(one) for one in seen}) == 1
    assert len({id(one.engine) for one in seen}) == 1
    seen[0].close()
