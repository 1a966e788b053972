"""The patient's timeline: one SVG chart per measurement type on one time axis, with events.

Pure (no database, no templates): the overview page hands in the window's readings, the plan
and the events; this module returns what the template draws, with the SVG coordinates
already computed. The charts are plain polylines in a ``viewBox`` of ``WIDTH`` × ``HEIGHT``
drawn with ``preserveAspectRatio="none"`` and non-scaling strokes, so every chart shares the
same horizontal axis at any width; labels are HTML beside the SVG.

A series of more than ``MAX_POINTS`` points (90 days of CGM) is reduced to the lowest and
highest value of each of ``MAX_POINTS // 2`` equal slices of the window, so peaks and dips
stay; a series of up to ``MAX_POINTS`` points is drawn as it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from rules.catalogue import display_unit, spec_for
from rules.language import RuleLibrary
from rules.language.plans import PlanParamError, resolve_params
from rules.language.specs import Condition
from rules.plan import PlanSpec

WIDTH = 1000
HEIGHT = 200
EVENT_HEIGHT = 24
MAX_POINTS = 2000
DOTS_UP_TO = 400  # fewer points than this get a dot each, besides the line
ZOOMS: dict[str, timedelta] = {
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "90d": timedelta(days=90),
}
DEFAULT_ZOOM = "7d"
# Types shown first, in the order a heart-failure or COPD nurse reads them.
ORDER = (
    "weight",
    "blood_pressure",
    "pulse",
    "spo2",
    "symptom_score",
    "temperature",
    "glucose",
    "cgm_glucose",
    "ketones",
    "peak_flow",
    "respiratory_rate",
    "steps",
)
EVENT_KINDS = ("flag", "advice", "plan", "milestone", "note", "message")


@dataclass(frozen=True)
class Limit:
    """A threshold of the plan drawn across a chart."""

    rule_id: str
    title: str
    component: str
    op: str
    value: Decimal
    note: str = ""  # e.g. "at rest", "mean", "lowest weight of 72 h + 2 kg"
    y: float = 0.0


@dataclass
class Series:
    """One component of a type (the systolic pressure, or the value), in time order."""

    component: str
    points: list[tuple[datetime, float]]
    polyline: str = ""
    dots: str = ""
    drawn: int = 0


@dataclass
class Chart:
    """One measurement type's chart, its limits, summary and table."""

    type: str
    unit: str
    series: list[Series]
    limits: list[Limit]
    y_min: float
    y_max: float
    readings: list[Mapping[str, Any]]
    latest: Mapping[str, Any] | None
    low: dict[str, float] = field(default_factory=dict)
    high: dict[str, float] = field(default_factory=dict)

    @property
    def count(self) -> int:
        """How many readings the chart has in the window."""
        return len(self.readings)

    @property
    def downsampled(self) -> bool:
        """Whether a line shows fewer points than it has."""
        return any(s.drawn < len(s.points) for s in self.series)


@dataclass(frozen=True)
class Event:
    """Something that happened on the timeline: a flag, advice, a plan version, a note …"""

    kind: str
    time: datetime
    text: str
    href: str | None = None


def window(zoom: str | None, now: datetime) -> tuple[str, datetime, datetime]:
    """The zoom asked for (else the default) and its window ``[start, now]``."""
    chosen = zoom if zoom in ZOOMS else DEFAULT_ZOOM
    return chosen, now - ZOOMS[chosen], now


def x_of(when: datetime, start: datetime, end: datetime) -> float:
    """A time's horizontal position in the shared axis (0 … ``WIDTH``)."""
    span = (end - start).total_seconds() or 1.0
    return round(WIDTH * (when - start).total_seconds() / span, 1)


def downsample(
    points: Sequence[tuple[datetime, float]], start: datetime, end: datetime, limit: int
) -> list[tuple[datetime, float]]:
    """At most ``limit`` points: all of them when few enough, else each slice's min and max."""
    if len(points) <= limit:
        return list(points)
    slices = max(1, limit // 2)
    span = (end - start).total_seconds() or 1.0
    buckets: dict[int, list[tuple[datetime, float]]] = {}
    for point in points:
        index = min(slices - 1, int(slices * (point[0] - start).total_seconds() / span))
        buckets.setdefault(index, []).append(point)
    kept: list[tuple[datetime, float]] = []
    for index in sorted(buckets):
        bucket = buckets[index]
        low = min(bucket, key=lambda p: p[1])
        high = max(bucket, key=lambda p: p[1])
        kept.extend(sorted({low, high}, key=lambda p: p[0]))
    return kept


def _by_type(rows: Iterable[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(str(row["type"]), []).append(row)
    return grouped


def _order(types: Iterable[str]) -> list[str]:
    rank = {t: i for i, t in enumerate(ORDER)}
    return sorted(set(types), key=lambda t: (rank.get(t, len(ORDER)), t))


def _number(value: Decimal, places: int) -> str:
    return f"{value:.{places}f}" if places > 0 else f"{value.quantize(Decimal(1))}"


def limits_for(
    type_: str,
    unit: str,
    plan: PlanSpec | None,
    library: RuleLibrary,
    rows: Sequence[Mapping[str, Any]],
    lang: str,
    words: Mapping[str, str],
) -> list[Limit]:
    """The plan's thresholds for one type in the chart's unit (a parameter in another: none).

    Threshold and window-mean rules give a line per condition; a weight-gain rule (a rise over
    the lowest value of a window) gives the line the latest reading would have to pass.
    """
    if plan is None:
        return []
    found: list[Limit] = []
    for plan_rule in plan.rules:
        rule = library.get(plan_rule.rule)
        if rule is None or plan_rule.mode == "off" or type_ not in rule.types:
            continue
        try:
            params = resolve_params(plan_rule, rule)
        except PlanParamError:
            continue
        title = rule.title.get(lang) or rule.title.get("sv") or rule.id
        kind = rule.kind
        if kind in ("threshold", "window_aggregate"):
            note = words["mean"] if kind == "window_aggregate" else ""
            for condition in rule.conditions:  # type: ignore[union-attr]
                if not isinstance(condition, Condition):
                    continue
                param = params.get(condition.param)
                if param is None or isinstance(param.value, bool):
                    continue
                try:
                    value = param.number_in(type_, unit)
                except (ValueError, KeyError, TypeError):
                    continue
                active = (condition.context or {}).get("activity") == "active"
                found.append(
                    Limit(
                        rule.id,
                        title,
                        condition.component,
                        condition.op.value,
                        value,
                        words["active"] if active else note,
                    )
                )
        elif kind == "delta" and rows:
            limit = _delta_limit(rule, params, type_, unit, rows, title, lang, words)
            if limit is not None:
                found.append(limit)
    return found


def _delta_limit(
    rule: Any,
    params: Mapping[str, Any],
    type_: str,
    unit: str,
    rows: Sequence[Mapping[str, Any]],
    title: str,
    lang: str,
    words: Mapping[str, str],
) -> Limit | None:
    """The value above which the latest reading would fire a rise-over-the-lowest rule."""
    if str(rule.reference) != "min" or rule.op.value not in ("gt", "ge"):
        return None
    change, span = params.get(rule.param), params.get(rule.window)
    if change is None or span is None or isinstance(change.value, bool):
        return None
    try:
        gain = change.number_in(type_, unit)
    except (ValueError, KeyError, TypeError):
        return None
    hours = Decimal(span.value) * (24 if span.unit == "d" else 1)
    latest = rows[-1]["time"]
    since = latest - timedelta(hours=float(hours))
    before = [
        Decimal(r["values"][rule.component])
        for r in rows
        if since <= r["time"] < latest and rule.component in r["values"]
    ]
    if not before:
        return None
    shown = _number(gain, 1).replace(".", ",") if lang == "sv" else _number(gain, 1)
    note = words["delta"].format(hours=_number(hours, 0), gain=f"{shown} {display_unit(unit)}")
    return Limit(rule.id, title, rule.component, rule.op.value, min(before) + gain, note)


def build_charts(
    rows: Sequence[Mapping[str, Any]],
    types: Iterable[str],
    plan: PlanSpec | None,
    library: RuleLibrary,
    start: datetime,
    end: datetime,
    lang: str,
    words: Mapping[str, str],
) -> list[Chart]:
    """One chart per type (those with readings in the window, and the scheduled ones)."""
    grouped = _by_type(rows)
    charts = []
    for type_ in _order([*grouped, *types]):
        mine = grouped.get(type_, [])
        spec = spec_for(type_)
        unit = str(mine[-1]["unit"]) if mine else (spec.canonical_unit if spec else "")
        components = list(spec.components) if spec else ["value"]
        series = [
            Series(c, [(r["time"], float(r["values"][c])) for r in mine if c in r["values"]])
            for c in components
        ]
        limits = limits_for(type_, unit, plan, library, mine, lang, words)
        charts.append(_draw(type_, unit, series, limits, mine, start, end))
    return charts


def _draw(
    type_: str,
    unit: str,
    series: list[Series],
    limits: list[Limit],
    rows: Sequence[Mapping[str, Any]],
    start: datetime,
    end: datetime,
) -> Chart:
    values = [v for s in series for _, v in s.points] + [float(li.value) for li in limits]
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    pad = (high - low) * 0.08 or max(abs(high) * 0.05, 1.0)
    y_min, y_max = low - pad, high + pad

    def y_of(value: float) -> float:
        return round(HEIGHT - HEIGHT * (value - y_min) / (y_max - y_min), 1)

    for s in series:
        kept = downsample(s.points, start, end, MAX_POINTS)
        coords = [(x_of(t, start, end), y_of(v)) for t, v in kept]
        s.drawn = len(kept)
        s.polyline = " ".join(f"{x},{y}" for x, y in coords)
        if len(kept) <= DOTS_UP_TO:
            s.dots = " ".join(f"M{x},{y}h0" for x, y in coords)
    placed = [
        Limit(li.rule_id, li.title, li.component, li.op, li.value, li.note, y_of(float(li.value)))
        for li in limits
    ]
    chart = Chart(
        type=type_,
        unit=display_unit(unit),
        series=[s for s in series if s.points],
        limits=placed,
        y_min=y_min,
        y_max=y_max,
        readings=list(rows),
        latest=rows[-1] if rows else None,
    )
    for s in chart.series:
        chart.low[s.component] = min(v for _, v in s.points)
        chart.high[s.component] = max(v for _, v in s.points)
    return chart


def place_events(
    events: Iterable[Event], start: datetime, end: datetime
) -> list[tuple[Event, float, int]]:
    """The window's events, oldest first, each with its x position and row (by kind)."""
    rows = {kind: index for index, kind in enumerate(EVENT_KINDS)}
    inside = sorted((e for e in events if start <= e.time <= end), key=lambda e: e.time)
    return [(e, x_of(e.time, start, end), rows.get(e.kind, 0)) for e in inside]


def format_value(value: object, type_: str, lang: str) -> str:
    """A measured value as the team reads it: the type's decimals, a decimal comma in Swedish."""
    spec = spec_for(type_)
    places = spec.precision if spec is not None else 1
    try:
        number = Decimal(str(value))
    except ArithmeticError:
        return str(value)
    shown = _number(number, places)
    return shown.replace(".", ",") if lang == "sv" else shown
