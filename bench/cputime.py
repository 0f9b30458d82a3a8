"""CPU time of other processes (Linux ``/proc``): what a figure cost, not only how long.

On a shared machine wall time depends on the neighbours; the CPU seconds each program
spent on the work depend much less on them, so the benchmarks print both.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from sqlalchemy import Engine, text

_PROC = Path("/proc")
_TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        line = (_PROC / str(pid) / "stat").read_text()
    except OSError:  # gone already
        return None
    # The command name may hold spaces and parentheses: the fields start after the last ")".
    return line.rpartition(")")[2].split()


def cpu_by_process(pids: Iterable[int]) -> dict[int, float]:
    """User + system CPU seconds spent so far by each live process among ``pids``."""
    spent = {}
    for pid in pids:
        fields = _stat(pid)
        if fields is not None:
            spent[pid] = (int(fields[11]) + int(fields[12])) / _TICKS
    return spent


def process_group(pgid: int) -> list[int]:
    """The live processes of a process group (e.g. Dramatiq's parent and its workers)."""
    pids = []
    for entry in _PROC.iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None and int(fields[2]) == pgid:
                pids.append(int(entry.name))
    return pids


def database_backends(engine: Engine) -> list[int]:
    """PostgreSQL server processes connected to ``engine``'s database (but this one)."""
    with engine.connect() as connection:
        return list(
            connection.scalars(
                text(
                    "SELECT pid FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
        )


class CpuMeter:
    """CPU seconds spent by named groups of processes between ``start`` and ``stop``.

    A group is a callable listing its processes. One that appears in between counts in
    full; one that exits in between counts up to the last ``sample`` that saw it, so call
    ``sample`` often when processes come and go (e.g. database connections).
    """

    def __init__(self, **groups: Callable[[], Iterable[int]]) -> None:
        self.groups = groups
        self.first: dict[str, dict[int, float]] = {}
        self.last: dict[str, dict[int, float]] = {}
        self.by_process: dict[str, dict[int, float]] = {}
        self.sampled = 0.0

    def start(self) -> None:
        self.first = {name: cpu_by_process(pids()) for name, pids in self.groups.items()}
        self.last = {name: dict(seen) for name, seen in self.first.items()}

    def sample(self, every: float = 0.1) -> None:
        """Note the figures of every process of every group, at most once per ``every`` s."""
        if time.monotonic() - self.sampled < every:
            return
        self.sampled = time.monotonic()
        for name, pids in self.groups.items():
            self.last[name].update(cpu_by_process(set(pids()) | set(self.last[name])))

    def stop(self) -> dict[str, float]:
        """CPU seconds per group since ``start``; ``by_process`` keeps them per process."""
        self.sample(every=0)
        spent = {}
        for name, last in self.last.items():
            first = self.first[name]
            self.by_process[name] = {pid: cpu - first.get(pid, 0.0) for pid, cpu in last.items()}
            spent[name] = sum(self.by_process[name].values())
        return spent
