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

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from rules.catalogue import display_unit, spec_for
from rules.cgm import glucose_target_range
from rules.language import CompositeRule, RuleLibrary
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
    "14d": timedelta(days=14),  # the consensus window of CGM metrics
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
# The words a chart's limits are described with (``limit_<key>`` in the page texts).
LIMIT_WORDS = ("mean", "active", "delta", "count", "part", "of_reference", "baseline",
               "unit_h", "unit_d", "unit_min")  # fmt: skip
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
    ticks: list[tuple[float, float]] = field(default_factory=list)  # (value, y), top first
    band: tuple[float, float, Decimal, Decimal] | None = None  # target range: y top, y bottom

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


def order_types(types: Iterable[str]) -> list[str]:
    """Types in the order a nurse reads them (weight, blood pressure, …), the rest by name."""
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

    Threshold, window-mean and counting rules give a line per condition; bands a line per
    band; a rise over the lowest value of a window, or off the patient's own baseline, gives
    the line the latest reading would have to pass; a composite rule the lines of its parts
    that read this type.
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
        place = _Place(rule.id, rule.title.get(lang) or rule.title.get("sv") or rule.id,
                       type_, unit, params, rows, lang, words)  # fmt: skip
        if isinstance(rule, CompositeRule):
            for part in rule.parts:
                if type_ in part.types:
                    found += _fields_limits(part.kind, part, place, words["part"])
        else:
            found += _fields_limits(rule.kind, rule, place, "")
    return found


@dataclass(frozen=True)
class _Place:
    """What a rule's lines are drawn for: the rule, the chart's type and unit, the readings."""

    rule_id: str
    title: str
    type: str
    unit: str
    params: Mapping[str, Any]
    rows: Sequence[Mapping[str, Any]]
    lang: str
    words: Mapping[str, str]

    def number(self, name: str | None) -> Decimal | None:
        """A parameter's value in the chart's unit; None for a flag or a unit that won't do."""
        param = self.params.get(name) if name else None
        if param is None or isinstance(param.value, bool):
            return None
        try:
            value: Decimal = param.number_in(self.type, self.unit)
        except (ValueError, KeyError, TypeError):
            return None
        return value

    def shown(self, value: Decimal, places: int = 1) -> str:
        """A number as the page writes it (a decimal comma in Swedish)."""
        text = _number(value, places)
        return text.replace(".", ",") if self.lang == "sv" else text

    def span(self, name: str) -> tuple[Decimal, str] | None:
        """A window parameter: its length and unit (h when it has none)."""
        param = self.params.get(name)
        if param is None or isinstance(param.value, bool):
            return None
        return Decimal(param.value), param.unit or "h"

    def span_text(self, name: str) -> str:
        """A window parameter as words: "7 dygn", "48 tim"."""
        span = self.span(name)
        if span is None:
            return ""
        length, unit = span
        return f"{_number(length, 0)} {self.words.get('unit_' + unit, unit)}"


def _fields_limits(kind: str, fields: Any, place: _Place, part_note: str) -> list[Limit]:
    """The lines of one rule (or one part of a composite) of the given kind."""
    found: list[Limit] = []
    if kind in ("threshold", "window_aggregate", "count"):
        note = {"window_aggregate": place.words["mean"], "count": ""}.get(kind, "")
        if kind == "count":
            times = place.number(fields.min_count)
            if times is not None:
                note = place.words["count"].format(
                    n=_number(times, 0), window=place.span_text(fields.window)
                )
        for condition in fields.conditions:
            if not isinstance(condition, Condition):
                continue
            value = place.number(condition.param)
            if value is None:
                continue
            active = (condition.context or {}).get("activity") == "active"
            text = place.words["active"] if active else note
            found.append(_limit(place, condition.component, condition.op.value, value,
                                text, part_note))  # fmt: skip
    elif kind == "bands":
        found += _band_limits(fields, place, part_note)
    elif kind == "delta" and place.rows:
        limit = _delta_limit(fields, place)
        if limit is not None:
            found.append(_with_note(limit, part_note))
    elif kind == "baseline" and place.rows:
        limit = _baseline_limit(fields, place)
        if limit is not None:
            found.append(_with_note(limit, part_note))
    return found


def _limit(
    place: _Place, component: str, op: str, value: Decimal, note: str, part_note: str = ""
) -> Limit:
    return _with_note(Limit(place.rule_id, place.title, component, op, value, note), part_note)


def _with_note(limit: Limit, extra: str) -> Limit:
    if not extra:
        return limit
    note = f"{limit.note}; {extra}" if limit.note else extra
    return Limit(limit.rule_id, limit.title, limit.component, limit.op, limit.value, note)


def _band_limits(fields: Any, place: _Place, part_note: str) -> list[Limit]:
    """A line per band: its limit, or its percentage of the reference (a personal best)."""
    found = []
    reference = place.number(fields.reference) if fields.reference else None
    for band in fields.bands:
        title = band.title.get(place.lang) or band.title.get("sv") or band.name
        if fields.reference is None:
            value = place.number(band.param)
            note = title
        else:
            param = place.params.get(band.param)
            if reference is None or param is None or isinstance(param.value, bool):
                continue
            percent = Decimal(param.value)
            value = reference * percent / 100
            note = place.words["of_reference"].format(
                band=title, percent=place.shown(percent, 0), reference=place.shown(reference, 0)
            )
        if value is not None:
            found.append(_limit(place, fields.component, band.op.value, value, note, part_note))
    return found


def _before(place: _Place, component: str, since: datetime, until: datetime) -> list[Decimal]:
    """The values of a component read in ``[since, until)``."""
    return [
        Decimal(r["values"][component])
        for r in place.rows
        if since <= r["time"] < until and component in r["values"]
    ]


def _hours(span: tuple[Decimal, str]) -> Decimal:
    length, unit = span
    per_unit = {"d": Decimal(24), "h": Decimal(1), "min": Decimal(1) / 60}
    return length * per_unit.get(unit, Decimal(1))


def _delta_limit(fields: Any, place: _Place) -> Limit | None:
    """The value above which the latest reading would fire a rise-over-the-lowest rule."""
    if str(fields.reference) != "min" or fields.op.value not in ("gt", "ge"):
        return None
    gain, span = place.number(fields.param), place.span(fields.window)
    if gain is None or span is None:
        return None
    hours = _hours(span)
    latest = place.rows[-1]["time"]
    before = _before(place, fields.component, latest - timedelta(hours=float(hours)), latest)
    if not before:
        return None
    note = place.words["delta"].format(
        hours=_number(hours, 0), gain=f"{place.shown(gain)} {display_unit(place.unit)}"
    )
    return _limit(place, fields.component, fields.op.value, min(before) + gain, note)


def _baseline_limit(fields: Any, place: _Place) -> Limit | None:
    """The value the latest reading would have to pass to be off the patient's own baseline.

    The baseline is the median of the window before the gap (whole days taken as 24 hours,
    close enough for a line on a chart; the rule itself counts local days).
    """
    change, span, gap = (
        place.number(fields.param),
        place.span(fields.window),
        place.span(fields.gap),
    )
    needed = place.number(fields.min_readings)
    if change is None or span is None or gap is None:
        return None
    latest = place.rows[-1]["time"]
    until = latest - timedelta(hours=float(_hours(gap)))
    values = sorted(
        _before(place, fields.component, until - timedelta(hours=float(_hours(span))), until)
    )
    if not values or (needed is not None and len(values) < needed):
        return None
    middle = len(values) // 2
    median = values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2
    rise = fields.direction == "rise"
    value = median + change if rise else median - change
    note = place.words["baseline"].format(
        median=place.shown(median), sign="+" if rise else "−",
        change=f"{place.shown(change)} {display_unit(place.unit)}",
    )  # fmt: skip
    return _limit(place, fields.component, fields.op.value, value, note)


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
    for type_ in order_types([*grouped, *types]):
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


def nice_ticks(low: float, high: float, count: int = 4) -> list[float]:
    """Round values (steps of 1, 2, 2.5 or 5 × 10ⁿ) from at most ``low`` to at least ``high``."""
    span = high - low or abs(high) or 1.0
    raw = span / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first, last = math.floor(low / step), math.ceil(high / step)
    return [round(i * step, 10) for i in range(first, last + 1)]


def _draw(
    type_: str,
    unit: str,
    series: list[Series],
    limits: list[Limit],
    rows: Sequence[Mapping[str, Any]],
    start: datetime,
    end: datetime,
) -> Chart:
    band = target_range(type_, unit)
    values = [v for s in series for _, v in s.points] + [float(li.value) for li in limits]
    values += [float(edge) for edge in band or ()]
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    pad = (high - low) * 0.05 or max(abs(high) * 0.05, 1.0)
    ticks = nice_ticks(low - pad, high + pad)
    y_min, y_max = ticks[0], ticks[-1]

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
        ticks=[(value, y_of(value)) for value in reversed(ticks)],
        band=(y_of(float(band[1])), y_of(float(band[0])), band[0], band[1]) if band else None,
    )
    for s in chart.series:
        chart.low[s.component] = min(v for _, v in s.points)
        chart.high[s.component] = max(v for _, v in s.points)
    return chart


def target_range(type_: str, unit: str) -> tuple[Decimal, Decimal] | None:
    """The consensus target range drawn as a band on a CGM chart (3.9–10.0 mmol/L)."""
    if type_ != "cgm_glucose":
        return None
    return glucose_target_range(unit)


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


def format_tick(value: float, lang: str) -> str:
    """An axis label: a round number as short as it is (``5``, ``2,5``, ``0,25``)."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    text = "0" if text == "-0" else text
    return text.replace(".", ",") if lang == "sv" else text
