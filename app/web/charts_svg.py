"""SVG geometry of the goals and CGM pages: the AGP, the time-in-ranges bar, a progress bar.

Pure (no database, no templates), like ``timeline``: the pages hand in numbers the services
computed and get back coordinates; the templates draw them. Every figure is drawn in a
``viewBox`` with ``preserveAspectRatio="none"`` and non-scaling strokes, so it fills the
width of the page at any size (375 px included); the labels are HTML beside the SVG, placed
in percent of the plot, so they never shrink with it.

The AGP (ambulatory glucose profile): the x-axis is the local day, 00–24. Each hourly row
(hour ``h``: the samples from h:00 to h:59) is drawn at the hour's middle, ``h + 0.5``; the
ends, 00 and 24, are the same moment of the day, so both get the mean of hours 23 and 0 and
the profile closes on itself. An hour without samples has no row values and is left out: the
bands join its neighbours. The y-axis runs from 0 to an even number of mmol/L, at least
``AGP_MIN_TOP`` (16), with a label every 2 mmol/L; the target band 3.9–10.0 is shaded.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

AGP_WIDTH = 1000
AGP_HEIGHT = 400
AGP_MIN_TOP = 16
AGP_STEP = 2
TARGET_LOW = 3.9
TARGET_HIGH = 10.0
HOUR_TICKS = tuple(range(0, 25, 3))

AgpRow = tuple[int, float | None, float | None, float | None, float | None, float | None]


@dataclass(frozen=True)
class Tick:
    """A label of an axis: its text value and where it sits, in percent of the plot."""

    value: float
    percent: float
    y: float = 0.0  # the SVG coordinate of a horizontal grid line


@dataclass(frozen=True)
class Agp:
    """The AGP drawn: the two bands as polygons, the median as a polyline, the axes."""

    outer: str  # 5–95 %
    inner: str  # 25–75 %
    median: str
    target_top: float
    target_height: float
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    top: float
    hours: int  # hours with values


def agp_top(rows: Sequence[AgpRow]) -> int:
    """The top of the y-axis: the highest 95th percentile, up to an even number, ≥ 16."""
    highest = max((r[5] for r in rows if r[5] is not None), default=0.0)
    return max(AGP_MIN_TOP, AGP_STEP * math.ceil(highest / AGP_STEP))


def _complete(rows: Sequence[AgpRow]) -> list[tuple[float, list[float]]]:
    """The rows with all five percentiles, at the hour's middle, closed at 00 and 24."""
    kept = [
        (r[0] + 0.5, [float(v) for v in r[1:] if v is not None])
        for r in sorted(rows, key=lambda r: r[0])
        if all(v is not None for v in r[1:])
    ]
    if not kept:
        return []
    first, last = kept[0], kept[-1]
    if first[0] == 0.5 and last[0] == 23.5:
        edge = [(a + b) / 2 for a, b in zip(first[1], last[1], strict=True)]
        return [(0.0, edge), *kept, (24.0, edge)]
    return kept


def agp(rows: Sequence[AgpRow]) -> Agp:
    """The AGP of hourly rows (hour, p5, p25, p50, p75, p95) in mmol/L."""
    top = float(agp_top(rows))

    def x(hour: float) -> float:
        return round(AGP_WIDTH * hour / 24, 1)

    def y(value: float) -> float:
        return round(AGP_HEIGHT - AGP_HEIGHT * min(max(value, 0.0), top) / top, 1)

    points = _complete(rows)

    def band(low: int, high: int) -> str:
        upper = [f"{x(h)},{y(v[high])}" for h, v in points]
        lower = [f"{x(h)},{y(v[low])}" for h, v in reversed(points)]
        return " ".join(upper + lower)

    y_ticks = [
        Tick(float(v), round(100 * (1 - v / top), 2), y(v))
        for v in range(0, int(top) + 1, AGP_STEP)
    ]
    return Agp(
        outer=band(0, 4) if points else "",
        inner=band(1, 3) if points else "",
        median=" ".join(f"{x(h)},{y(v[2])}" for h, v in points),
        target_top=y(TARGET_HIGH),
        target_height=round(y(TARGET_LOW) - y(TARGET_HIGH), 1),
        y_ticks=y_ticks,
        x_ticks=[Tick(h, round(100 * h / 24, 2), 0.0) for h in HOUR_TICKS],
        top=top,
        hours=sum(1 for r in rows if all(v is not None for v in r[1:])),
    )


@dataclass(frozen=True)
class Part:
    """One range of the time-in-ranges bar: where it starts and how wide it is (percent)."""

    key: str
    percent: float
    start: float
    minutes: int  # minutes a day: the share of 24 h


def range_parts(
    very_low: float | None,
    below: float | None,
    in_range: float | None,
    above: float | None,
    very_high: float | None,
) -> list[Part]:
    """The five ranges of CLINICAL §3 from the summary's cumulative shares (percent).

    ``below`` (< 3.9) holds ``very_low`` (< 3.0), ``above`` (> 10.0) holds ``very_high``
    (> 13.9): the bar shows each range once, lowest first.
    """
    vl, b, r, a, vh = (float(v or 0.0) for v in (very_low, below, in_range, above, very_high))
    shares = [
        ("very_low", vl),
        ("low", max(b - vl, 0.0)),
        ("in_range", r),
        ("high", max(a - vh, 0.0)),
        ("very_high", vh),
    ]
    parts, start = [], 0.0
    for key, share in shares:
        parts.append(Part(key, share, round(start, 3), round(share * 1440 / 100)))
        start += share
    return parts


def bar_width(percent: float | None) -> float:
    """A progress bar's filled width out of 100: the percent, within 0 and 100."""
    if percent is None:
        return 0.0
    return round(min(max(percent, 0.0), 100.0), 1)
