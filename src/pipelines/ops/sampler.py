"""Take the per-minute samples, keep them bounded, and read them back.

Each call of ``take`` fills every whole minute since the last sample (at most
``CATCH_UP`` minutes back: the database remembers what finished when, so a sampler that
was down loses nothing of the last hour), then deletes what is older than ``RETENTION``.
Queue depth and dead letters are what the broker holds now, so they are written for the
last minute only; the caller (the ``sample_ops_metrics`` actor) reads the broker and the
provider timings and hands them in, so this module knows no broker. Two samplers at once
are harmless: a minute already written is skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portalflow.models import Channel, OpsSample, ScheduledRun, utcnow

from . import latency, ops_stats

MINUTE = timedelta(minutes=1)
RETENTION = timedelta(hours=25)
CATCH_UP = 60  # minutes

DONE, FAILED = "done", "failed"
DEPTH, DEAD = "depth", "dead"  # depth: ready + delayed + in progress
P50, P95 = "latency_p50", "latency_p95"
CHANNELS = tuple(channel.value for channel in Channel)


@dataclass(frozen=True)
class QueueSample:
    """One queue as the broker holds it now (the caller reads the broker)."""

    queue: str
    depth: int  # ready + delayed + in progress
    dead: int


# A minute -> each channel's provider call timings (ms) of that minute.
Timings = Callable[[datetime], dict[str, list[float]]]


def minute_floor(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def take(
    session: Session,
    now: datetime | None = None,
    *,
    queues: Sequence[QueueSample] | None = None,
    timings: Timings | None = None,
    prune_job: str | None = None,
) -> int:
    """Write the samples of every whole minute not yet sampled; how many rows (committed).

    ``queues`` (what the broker holds now) go on the last whole minute; ``timings`` is asked
    for each minute written. ``prune_job``: the scheduled job that runs the sampler, whose
    run log (one row a minute) is kept for ``RETENTION`` too.
    """
    now = now or utcnow()
    current = minute_floor(now)
    last = session.scalar(select(func.max(OpsSample.at)))
    first = current - CATCH_UP * MINUTE
    if last is not None:
        first = max(first, last + MINUTE)
    first = min(first, current - MINUTE)
    rows: list[OpsSample] = []
    minute = first
    while minute < current:
        if last is None or minute > last:
            rows += _flows(session, minute)
            if timings is not None:
                rows += _latency(minute, timings(minute))
        minute += MINUTE
    if queues is not None and (last is None or current - MINUTE > last):
        rows += _queues(queues, current - MINUTE)
    session.add_all(rows)
    session.execute(delete(OpsSample).where(OpsSample.at < current - RETENTION))
    if prune_job is not None:
        session.execute(
            delete(ScheduledRun).where(
                ScheduledRun.job == prune_job, ScheduledRun.started_at < current - RETENTION
            )
        )
    try:
        session.commit()
    except IntegrityError:  # another sampler wrote these minutes first
        session.rollback()
        return 0
    return len(rows)


def _flows(session: Session, minute: datetime) -> list[OpsSample]:
    rows = []
    for flow in ops_stats.flow_stats(session, window=MINUTE, until=minute + MINUTE):
        rows.append(OpsSample(at=minute, series=DONE, label=flow.flow, value=flow.done))
        rows.append(OpsSample(at=minute, series=FAILED, label=flow.flow, value=flow.failed))
    return rows


def _queues(queues: Sequence[QueueSample], minute: datetime) -> list[OpsSample]:
    rows = []
    for q in queues:
        rows.append(OpsSample(at=minute, series=DEPTH, label=q.queue, value=q.depth))
        rows.append(OpsSample(at=minute, series=DEAD, label=q.queue, value=q.dead))
    return rows


def _latency(minute: datetime, timings: dict[str, list[float]]) -> list[OpsSample]:
    rows = []
    for channel, values in sorted(timings.items()):
        if not values:
            continue
        p50, p95 = latency.percentile(values, 0.5), latency.percentile(values, 0.95)
        rows.append(OpsSample(at=minute, series=P50, label=channel, value=p50))
        rows.append(OpsSample(at=minute, series=P95, label=channel, value=p95))
    return rows


@dataclass(frozen=True)
class Series:
    """One line of a chart: a label and one value (or None: no sample) per bucket."""

    series: str
    label: str
    values: list[float | None]


def read(
    session: Session,
    series: Iterable[str],
    *,
    since: datetime,
    until: datetime,
    step: timedelta,
    how: str = "sum",
) -> tuple[list[datetime], list[Series]]:
    """The buckets ``[since, until)`` of width ``step`` and, per (series, label), a value
    per bucket: the sum of its minutes (counts) or their maximum (``how="max"``: depth,
    latency)."""
    names = list(series)
    buckets = []
    at = since
    while at < until:
        buckets.append(at)
        at += step
    found: dict[tuple[str, str], list[float | None]] = {}
    rows = session.execute(
        select(OpsSample.series, OpsSample.label, OpsSample.at, OpsSample.value)
        .where(OpsSample.series.in_(names), OpsSample.at >= since, OpsSample.at < until)
        .order_by(OpsSample.at)
    )
    step_seconds = step.total_seconds()
    for name, label, moment, value in rows:
        values = found.setdefault((name, label), [None] * len(buckets))
        index = int((moment - since).total_seconds() // step_seconds)
        old = values[index]
        if old is None:
            values[index] = value
        elif how == "max":
            values[index] = max(old, value)
        else:
            values[index] = old + value
    ordered = sorted(found.items(), key=lambda item: (names.index(item[0][0]), item[0][1]))
    return buckets, [Series(name, label, values) for (name, label), values in ordered]


def latest(session: Session, series: Iterable[str]) -> dict[tuple[str, str], float]:
    """The newest sampled minute's values of ``series``, by (series, label)."""
    names = list(series)
    newest = session.scalar(select(func.max(OpsSample.at)).where(OpsSample.series.in_(names)))
    if newest is None:
        return {}
    rows = session.execute(
        select(OpsSample.series, OpsSample.label, OpsSample.value).where(
            OpsSample.series.in_(names), OpsSample.at == newest
        )
    )
    return {(name, label): value for name, label, value in rows}
