"""Chart geometry for the ops page: series scaled into an SVG viewBox (the markup is a
Jinja template, ``templates/ops/_chart.html``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from . import sampler

WIDTH, HEIGHT = 600, 180
LEFT, RIGHT, TOP, BOTTOM = 44, 8, 8, 22  # room for the axis labels
# Colour-blind-safe (Okabe-Ito), one per line in order.
PALETTE = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000")
RANGES = {
    "1h": (timedelta(hours=1), timedelta(minutes=1)),
    "24h": (timedelta(hours=24), timedelta(minutes=15)),
}


@dataclass(frozen=True)
class Line:
    label: str
    colour: str
    points: str  # "x,y x,y ..." for <polyline>; runs without a sample break the line
    segments: list[str]
    total: float
    last: float | None
    peak: float


@dataclass(frozen=True)
class Tick:
    position: float
    text: str


@dataclass(frozen=True)
class Chart:
    key: str
    title: str
    unit: str
    lines: list[Line]
    y_ticks: list[Tick] = field(default_factory=list)
    x_ticks: list[Tick] = field(default_factory=list)
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    bottom: float = HEIGHT - BOTTOM
    right: float = WIDTH - RIGHT

    @property
    def empty(self) -> bool:
        return not any(line.segments for line in self.lines)


def _nice_max(peak: float) -> float:
    if peak <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(peak))
    for step in (1, 2, 2.5, 5, 10):
        if peak <= step * power:
            return step * power
    return 10 * power


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"


def build(
    key: str,
    title: str,
    unit: str,
    buckets: list[datetime],
    series: list[sampler.Series],
    *,
    label_with_series: bool = False,
) -> Chart:
    """Scale ``series`` over ``buckets`` to the viewBox: one line each, axes with ticks."""
    peak = max((v for s in series for v in s.values if v is not None), default=0.0)
    top = _nice_max(peak)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    n = max(len(buckets) - 1, 1)

    def x(i: int) -> float:
        return round(LEFT + plot_w * i / n, 1)

    def y(v: float) -> float:
        return round(TOP + plot_h * (1 - v / top), 1)

    lines = []
    for index, s in enumerate(series):
        segments, current = [], []
        for i, v in enumerate(s.values):
            if v is None:
                if current:
                    segments.append(" ".join(current))
                current = []
                continue
            current.append(f"{x(i)},{y(v)}")
        if current:
            segments.append(" ".join(current))
        present = [v for v in s.values if v is not None]
        label = f"{s.label} {s.series.removeprefix('latency_')}" if label_with_series else s.label
        lines.append(
            Line(
                label=label,
                colour=PALETTE[index % len(PALETTE)],
                points=" ".join(segments),
                segments=segments,
                total=sum(present),
                last=present[-1] if present else None,
                peak=max(present, default=0.0),
            )
        )
    y_ticks = [Tick(y(top * f), _number(top * f)) for f in (0, 0.5, 1)]
    x_ticks = []
    if buckets:
        count = len(buckets)
        for i in (0, count // 2, count - 1):
            x_ticks.append(Tick(x(i), buckets[i].strftime("%H:%M")))
    return Chart(key, title, unit, lines, y_ticks, x_ticks)


def ops_charts(session: Session, span: str, now: datetime) -> list[Chart]:
    """The ops page's four charts over ``span`` (``1h`` or ``24h``), ending at ``now``."""
    window, step = RANGES[span]
    # Up to the minute under way: the last sampled minute (the one before) is then the
    # last point but one, and the current minute shows as a gap until it is sampled.
    until = sampler.minute_floor(now) + sampler.MINUTE
    since = until - window
    # Align the 24 h buckets on the step, so a page reload does not shift them.
    since -= timedelta(seconds=since.timestamp() % step.total_seconds())

    def read(
        names: tuple[str, ...], how: str = "sum"
    ) -> tuple[list[datetime], list[sampler.Series]]:
        return sampler.read(session, names, since=since, until=until, step=step, how=how)

    per = "minute" if step == sampler.MINUTE else "15 minutes"
    buckets, done = read((sampler.DONE,))
    _, failed = read((sampler.FAILED,))
    _, depth = read((sampler.DEPTH,), "max")
    _, dead = read((sampler.DEAD,), "max")
    _, latencies = read((sampler.P50, sampler.P95), "max")
    busy = [s for s in done if any(s.values)]
    return [
        build("throughput", f"Finished per {per}, by flow", "count", buckets, busy or done[:1]),
        build(
            "failures",
            f"Failed per {per}, by flow",
            "count",
            buckets,
            [s for s in failed if any(s.values)] or failed[:1],
        ),
        build("depth", "Queue depth (ready + delayed + in progress)", "messages", buckets, depth),
        build("dead", "Dead letters", "messages", buckets, dead),
        build("latency", "Provider call latency", "ms", buckets, latencies, label_with_series=True),
    ]
