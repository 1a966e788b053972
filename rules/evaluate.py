"""The evaluator: findings from a plan, the new readings and their history.

Semantics of anchors, units, edges, windows, ties and late data:

* Rules. Only the rules a plan lists are evaluated; the plan's ``mode`` overrides the
  rule's own, and ``off`` skips the rule. A plan rule missing from the library is skipped;
  a plan parameter the rule does not know is ignored (:func:`rules.model.resolve_params`).
  A parameter the rule marks ``required`` has no silent default: a stored plan that lacks
  it (saved before the rule required it) does not run that rule, every other rule runs,
  and :func:`unrunnable_rules` names the rule and what it lacks so the team can be told.
* Anchors. A reading-anchored rule (threshold, window_aggregate, delta, count, bands,
  baseline, composite) is evaluated AT a reading of its ``types`` (and ``context``, e.g. the
  instrument of a symptom score): the anchor. An evaluation is a pure function of the
  anchor and the readings in its window, never of the order or the call in which they
  arrived, nor of ``now``. A finding is one firing; its key is (rule id, anchor reading
  id). Time-based rules (missing_data, cgm_metric) are anchored at the start of a local
  day instead (:func:`evaluate_due`); their key is (rule id, the anchor time in ISO 8601,
  and for missing data ``/`` and the type).
* Units. A threshold is compared in the unit it is given in. When the reading's original
  unit is a unit for which the parameter has a value — its own unit or, while the value is
  the published one, a published equivalent — the ORIGINAL value is compared with that
  number. Otherwise the original value is converted to the parameter's unit (through the
  canonical unit, 6 decimal places) and compared. Synonyms count as the same unit
  (``mmHg``/``mm[Hg]``, ``mg/dl``/``mg/dL``). So 70 mg/dL is not < 70 mg/dL and
  3.9 mmol/L is not < 3.9 mmol/L, though 70 mg/dL converts to 3.8855 mmol/L. A plan
  override replaces the published pair: only its own number and unit remain. An
  aggregate or a delta over several readings uses their original values when all of them
  are in one unit the parameter is published in, else every value converted to the
  parameter's unit. Means are compared exactly (sum against threshold × count); CGM
  percentages are compared exactly as fractions of counts.
* Edges. ``lt``/``gt`` are strict, ``le``/``ge`` include the threshold. A reading that
  lacks a component a condition names does not satisfy that condition. Weight gain
  "> 2.0 kg" is ``gt``: exactly 2.0 does not fire.
* Windows. A window parameter in ``h`` (or ``min``) is rolling: ``[t − W, t]`` for an
  anchor at ``t``, closed at both ends. A window in ``d`` counts the patient's LOCAL
  calendar days (zone ``tz``, default Europe/Stockholm; DST-safe): the anchor's local day
  and the ``W − 1`` days before it, from local midnight up to ``t`` inclusive. Readings at
  exactly ``t`` (ties) are inside; readings after ``t`` never are.
  - window_aggregate: the aggregate of the readings in the window (the anchor included),
    after discarding the readings of the first ``discard_first_days`` local days that hold
    readings in the window; with fewer than ``min_readings`` readings left it never fires.
  - delta: the anchor minus the min (or max) of the readings BEFORE it in the window,
    ``[t − W, t)``: the near edge is open, so readings at the anchor's own time (ties)
    are not "preceding"; the far edge is closed (a weight exactly 72 h earlier counts).
    Without a preceding reading it does not fire.
  - count: fires at an event (the conditions hold) when the events in ``[t − W, t]``
    number at least ``min_count``.
  - bands: each band compares the reading (or ``100 × value / reference``, exactly) with
    its parameter; when bands overlap the most severe one that holds speaks, the first
    listed among equals.
  - baseline: the anchor against the patient's own baseline, the MEDIAN of the readings
    (of the rule's types and context, with the component) in a past window that ends a
    ``gap`` before the anchor. Rolling (``h``/``min`` window and gap): ``[t − W − G, t − G)``,
    closed at the far end and open at the near end. Local days (``d`` window and gap): the
    ``W`` whole local days that end ``G`` whole days before the anchor's local day,
    ``[midnight(D − G − W), midnight(D − G))`` for an anchor on local day ``D``; the anchor's
    own day is never in the baseline, so ``G = 2`` also leaves out yesterday and the day
    before. The median of an even number of readings is the mean of the two middle ones,
    exact. With fewer than ``min_readings`` readings in the baseline window it never fires
    (a new patient has no baseline). The change is ``value − baseline`` for
    ``direction: rise`` and ``baseline − value`` for ``fall``, compared exactly with the
    parameter (in its unit, as for a delta: the original values when the anchor and the
    baseline readings share a published unit, else all converted).
  - composite: a part holds at ``t`` when it holds at some reading of its types timed in
    ``[t − within, t]`` (``within`` absent: exactly ``t``), evaluated at that reading with
    the part's own window; the rule fires when all (or any) parts hold.
  - threshold occurrences (``flag.min_count`` > 1). The readings of the rule's types
    within ``window_hours`` before or after the anchor (inclusive) on which the rule fires
    are chained into occurrences: a reading at most ``episode_minutes`` after the previous
    one belongs to the same occurrence. An occurrence's time is its first reading's. The
    flag is raised when some span of ``window_hours`` (inclusive at both ends) that
    contains the anchor's occurrence holds at least ``min_count`` occurrences. The
    finding's readings are the first reading of each occurrence of the span that holds
    the most (the earliest such span), and the anchor: one reading per occurrence, not
    every reading of a CGM low, whose list would grow with the square of the stream.
* Late data. Each rule has a reach ``(back, fwd)``: an anchor at ``t`` reads only
  readings in ``[t − back, t + fwd]`` (``fwd`` is 0 except for threshold occurrences). A
  new (or removed) reading at ``s`` therefore changes only anchors in
  ``[s − fwd, s + back]``; :func:`evaluate_run` re-evaluates them all and reports every
  (rule, anchor) it evaluated, fired or not, so the app can retract an earlier firing that
  no longer holds (a late low reading that pulls a 7-day mean under the threshold). The
  readings given must cover ``[earliest new − lookback, latest new + lookback]``
  (:func:`lookback`). :func:`evaluate` returns only the findings anchored at new readings.
* Work. Besides the readings its findings list (a window rule's finding lists its
  window), one evaluation costs time linear in the readings given (up to log factors, and
  for occurrence counts a factor of at most ``window_hours / episode_minutes``), however
  many anchors a late or removed reading touches: what an anchor reads of its window (a
  minimum, a sum, a median, a count, the episode walked back) comes from indexes built
  once per evaluation (:mod:`rules.ranges`), never from a scan of each anchor's window,
  and an anchor that does not fire lists nothing. ``EvaluationRun.visits`` counts the
  readings looked at, so that tests can hold this.
* Advice episodes (a threshold rule's ``advice_episode``, CGM lows; CLINICAL §7). At an
  anchor of the episode's types, walk back over the readings of those types in
  ``[t − 12 h, t]`` (:data:`EPISODE_LOOKBACK`): the anchor's episode holds every earlier
  reading where the episode condition holds (glucose < 3.9) until a run of readings where
  it does not spans at least ``end_after`` (15 min, first to last reading of the run), or
  two neighbouring readings lie more than ``max_gap`` apart (a silent sensor: recovery is
  unknown, so a new episode — and new advice — is the safer error). The anchor is always in
  its episode. The finding is a repeat (``advice_repeat``) when an earlier reading of the
  episode also fired this rule; a rule for a deeper level (very low) has its own first
  firing. The explanation carries the episode's start, its minutes up to the anchor and
  its nadir as measured. Other readings of the rule's types (fingersticks) have no episode.
* Freshness. A reading-anchored finding's advice may be pushed until ``anchor time +
  push_within`` (a parameter of every such rule with advice); the app records older advice
  as stale. Freshness never changes whether a rule fires or flags.
* Context. A condition with ``context`` holds only for readings with that context; a
  reading without ``activity`` is at rest (``rules.catalogue.activity_state``).
* Escalation. A raised flag takes the escalation's severity when every ``requires`` flag
  parameter is true and its conditions hold (``match``, default all).
* Supersession. When an active rule that ``supersedes`` another fires on the same reading,
  the other rule's finding keeps its record but loses its advice and flag.
* Monitor mode. Findings carry ``mode``; the app records monitor findings but sends no
  advice and raises no flag for them.
* Ties and order. Readings are unique by id. Findings come ordered by the anchor's time,
  then its id (or scope), then the rule id.
* Time. ``now`` is a parameter, never the clock; reading-anchored rules do not use it;
  time-based rules evaluate the day starts that are due at ``now`` (:func:`evaluate_due`).
* Zone. ``tz`` (an IANA name or a tzinfo, default Europe/Stockholm) is a parameter of each
  call, not part of the plan: the zone belongs to the patient (DESIGN §5), and moving
  house must not make a new plan version. It decides local days (``d`` windows, the
  discarded first measuring days, day anchors) and nothing else.
* Time-based rules. Anchored at local day starts ``d``; an anchor reads only readings
  before ``d``. missing_data: for each type in the plan's schedule, with interval ``i``
  days (daily 1, weekdays 3, weekly 7), it fires when no reading of the type lies in the
  ``intervals × i`` whole local days before ``d`` (advice), and flags when none lies in
  the ``intervals × i + flag_after_days`` days before it; days before the plan's
  ``effective_from`` are not counted as missing. One finding per missing type (its own
  key and flag), but ONE reminder per day: the advice names every missing type, in
  :func:`reminder_order` (weight first in a heart-failure plan), and rides on the finding
  of the first of them; the others carry none. cgm_metric: the CGM metrics of the
  ``window`` whole local days before ``d`` (:mod:`rules.cgm`); with less than
  ``min_wear`` % of the window's sampling slots worn it does not fire.
"""

from __future__ import annotations

import bisect
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from functools import cache
from types import MappingProxyType
from typing import Any, Protocol, TypeVar
from zoneinfo import ZoneInfo

from rules import cgm
from rules.advice import (
    PATIENT,
    PROXY,
    Addressee,
    Audience,
    CareContact,
    contact_text,
    fill,
    patient_fields,
)
from rules.catalogue import (
    CENSORED,
    activity_state,
    convert,
    decimal_text,
    display_places,
    display_unit,
    instrument_name,
    is_accepted_unit,
    rounded,
    same_unit,
    shown,
    spec_for,
    unit_text,
)
from rules.facts import ReadingFact
from rules.model import (
    PUSH_WITHIN,
    WINDOW_UNITS,
    AdviceEpisode,
    AdviceSpec,
    Band,
    BandsFields,
    BandsRule,
    BaselineFields,
    BaselineRule,
    CgmMetricRule,
    CompositeRule,
    Condition,
    CountFields,
    CountRule,
    DeltaFields,
    DeltaRule,
    Direction,
    LocalText,
    Match,
    MissingDataRule,
    Op,
    Part,
    Reference,
    ResolvedParam,
    Rule,
    RuleLibrary,
    RuleMode,
    Severity,
    ThresholdFields,
    ThresholdRule,
    WindowAggregateFields,
    WindowAggregateRule,
    load_library,
    resolve_params,
)
from rules.plan import PlanRule, PlanSpec
from rules.ranges import ExactSums, LatestTrue, RangeBest, SlidingOrder

LANGUAGES = ("sv", "en")
"""The languages every text is given in; the first is the default."""

DEFAULT_TZ = "Europe/Stockholm"
"""The patient's zone when none is given: local days are days in this zone."""

SCHEDULE_INTERVAL_DAYS: Mapping[str, int] = MappingProxyType(
    {"daily": 1, "weekdays": 3, "weekly": 7}
)
"""The longest gap between two scheduled days (Friday to Monday for weekdays)."""

_Params = Mapping[str, ResolvedParam]
_DST_MARGIN = timedelta(hours=2)  # a local day may be up to this much longer than 24 h
_SEVERITY_RANK = {Severity.high: 3, Severity.moderate: 2, Severity.low: 1}

_COMPONENT_NAMES: Mapping[str, Mapping[str, str]] = {
    "systolic": {"sv": "övertryck", "en": "systolic"},
    "diastolic": {"sv": "undertryck", "en": "diastolic"},
}
_SEVERITY_NAMES: Mapping[str, Mapping[str, str]] = {
    "high": {"sv": "hög", "en": "high"},
    "moderate": {"sv": "måttlig", "en": "moderate"},
    "low": {"sv": "låg", "en": "low"},
}
_AGGREGATE_NAMES: Mapping[str, Mapping[str, str]] = {
    "mean": {"sv": "medel", "en": "mean"},
    "min": {"sv": "lägsta", "en": "min"},
    "max": {"sv": "högsta", "en": "max"},
    "count": {"sv": "antal", "en": "count"},
}
_TYPE_NAMES: Mapping[str, Mapping[str, str]] = {
    "blood_pressure": {"sv": "blodtryck", "en": "blood pressure"},
    "pulse": {"sv": "puls", "en": "pulse"},
    "glucose": {"sv": "blodsocker", "en": "blood glucose"},
    "cgm_glucose": {"sv": "sensorglukos", "en": "sensor glucose"},
    "weight": {"sv": "vikt", "en": "weight"},
    "spo2": {"sv": "syremättnad", "en": "oxygen saturation"},
    "temperature": {"sv": "temperatur", "en": "temperature"},
    "respiratory_rate": {"sv": "andningsfrekvens", "en": "respiratory rate"},
    "steps": {"sv": "steg", "en": "steps"},
    "peak_flow": {"sv": "PEF", "en": "peak flow"},
    "symptom_score": {"sv": "symtomskattning", "en": "symptom score"},
    "ketones": {"sv": "ketoner i blodet", "en": "blood ketones"},
}
_METRIC_NAMES: Mapping[str, Mapping[str, str]] = {
    "tir": {"sv": "tid i målområdet 3,9–10,0 mmol/L", "en": "time in range 3.9–10.0 mmol/L"},
    "tbr_3_9": {"sv": "tid under 3,9 mmol/L", "en": "time below 3.9 mmol/L"},
    "tbr_3_0": {"sv": "tid under 3,0 mmol/L", "en": "time below 3.0 mmol/L"},
    "tar_10_0": {"sv": "tid över 10,0 mmol/L", "en": "time above 10.0 mmol/L"},
    "tar_13_9": {"sv": "tid över 13,9 mmol/L", "en": "time above 13.9 mmol/L"},
    "cv": {"sv": "variationskoefficient", "en": "coefficient of variation"},
    "gri": {"sv": "GRI", "en": "GRI"},
}


@dataclass(frozen=True)
class AdviceText:
    """Advice filled in for one anchor, in every language: to the patient and to a proxy."""

    priority: str
    title: Mapping[str, str]
    body: Mapping[str, str]
    proxy_title: Mapping[str, str] = field(default_factory=dict)
    proxy_body: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Finding:
    """One firing of one rule at one anchor, with everything needed to explain it.

    A reading-anchored finding has ``anchor_reading_id`` and the reading's time as
    ``anchor_time``; a time-based one has no anchor reading, its anchor time (a local day
    start) and, for missing data, the type as ``scope``.
    """

    rule_id: str
    rule_version: int
    plan_version: int
    mode: str
    anchor_reading_id: str | None
    reading_ids: tuple[str, ...]
    computed: Mapping[str, str]
    thresholds: Mapping[str, Mapping[str, str]]
    advice: AdviceText | None
    flag_severity: str | None
    cooldown_minutes: int
    anchor_time: datetime
    readings: tuple[ReadingFact, ...] = field(default=(), compare=False, repr=False)
    summary: Mapping[str, str] = field(default_factory=dict)
    superseded_by: str | None = None
    scope: str | None = None
    # How long after the anchor its advice may still be pushed (None: a time-based rule,
    # whose advice is as fresh as the moment it is made).
    push_within: timedelta | None = None
    # An advice episode (CGM): its start, minutes so far and nadir; advice is per episode.
    episode: Mapping[str, str] | None = None
    push_muted: bool = False  # the plan records this advice without pushing it
    # The advice repeats one already given in this episode: not given again, unless the
    # earlier one could not be pushed (it was stale) and this reading is fresh.
    advice_repeat: bool = False

    @property
    def fresh_until(self) -> datetime | None:
        """Return until when this finding's advice may be pushed (None: no limit here)."""
        if self.push_within is None or self.anchor_reading_id is None:
            return None
        return self.anchor_time + self.push_within

    @property
    def key(self) -> tuple[str, str]:
        """Return (rule id, anchor): what identifies the evaluation across runs."""
        return (self.rule_id, anchor_key(self.anchor_reading_id, self.anchor_time, self.scope))

    def explanation(self) -> dict[str, Any]:
        """Return why the rule fired, as JSON-able data for the flag and the audit."""
        explanation: dict[str, Any] = {
            "rule": {"id": self.rule_id, "version": self.rule_version},
            "plan_version": self.plan_version,
            "mode": self.mode,
            "anchor_reading_id": self.anchor_reading_id,
            "anchor_time": self.anchor_time.isoformat(),
            "readings": [_reading_json(reading) for reading in self.readings],
            "computed": dict(self.computed),
            "thresholds": {name: dict(value) for name, value in self.thresholds.items()},
            "flag_severity": self.flag_severity,
            "summary": dict(self.summary),
        }
        if self.scope is not None:
            explanation["scope"] = self.scope
        if self.episode is not None:
            explanation["episode"] = dict(self.episode)
        if self.superseded_by is not None:
            explanation["superseded_by"] = self.superseded_by
        return explanation


def anchor_key(reading_id: str | None, anchor_time: datetime, scope: str | None = None) -> str:
    """Return the anchor part of a finding's key: the reading id, else time (and scope)."""
    if reading_id is not None:
        return reading_id
    text = anchor_time.astimezone(UTC).isoformat()
    return f"{text}/{scope}" if scope is not None else text


@dataclass(frozen=True)
class EvaluationRun:
    """What one evaluation did: the firings, and every (rule, anchor) it evaluated.

    ``evaluated`` holds the key of every evaluation, fired or not: an earlier firing whose
    key is evaluated here but is not among ``findings`` no longer holds (retract it).
    """

    findings: tuple[Finding, ...]
    evaluated: frozenset[tuple[str, str]]
    # The readings the evaluation looked at (not counting those its findings list): its
    # work, which tests keep linear in the readings given (a removed CGM reading must not
    # cost a scan of each anchor's window).
    visits: int = field(default=0, compare=False)

    def retracted(self, fired_before: Iterable[tuple[str, str]]) -> frozenset[tuple[str, str]]:
        """Return the earlier firings (keys) this run evaluated and found no longer firing."""
        fired = {f.key for f in self.findings}
        return frozenset(k for k in fired_before if k in self.evaluated and k not in fired)


def _reading_json(reading: ReadingFact) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": reading.id,
        "type": reading.type,
        "time": reading.time.isoformat(),
        "values": {name: decimal_text(v) for name, v in reading.values.items()},
        "unit": reading.unit,
        "original": {
            "values": {name: decimal_text(v) for name, v in reading.original_values.items()},
            "unit": reading.original_unit,
        },
    }
    if reading.end_time is not None:
        data["end_time"] = reading.end_time.isoformat()
    if reading.context.get(CENSORED) is not None:
        data[CENSORED] = reading.context[CENSORED]  # the true value lies beyond it
    return data


def number_text(value: Decimal, lang: str) -> str:
    """Return a number as people read it: ``3,8`` in Swedish, ``3.8`` in English."""
    text = decimal_text(value)
    return text.replace(".", ",") if lang == "sv" else text


def _with_unit(number: str, unit: str, type_name: str, lang: str) -> str:
    shown = unit_text(type_name, unit, lang)
    return f"{number} {shown}" if shown else number


def _round(value: Decimal | Fraction, places: int) -> Decimal:
    if isinstance(value, Fraction):
        value = Decimal(value.numerator) / Decimal(value.denominator)
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


_CENSORED_WORDS: Mapping[str, Mapping[str, str]] = {
    "below": {"sv": "under", "en": "below"},
    "above": {"sv": "över", "en": "above"},
}


def reading_text(reading: ReadingFact, lang: str) -> str:
    """Return a reading as measured, rounded as people read it: ``185/100 mmHg``, ``3,8 mmol/L``,
    ``under 40 mg/dL`` (a censored sensor value)."""
    values, unit = reading.original_values, reading.original_unit
    if not display_unit(unit) and display_unit(reading.unit):
        values, unit = reading.values, reading.unit  # a fraction shows as a percentage
    text = _values_text(reading.type, values, unit, lang)
    side = _CENSORED_WORDS.get(str(reading.context.get(CENSORED)))
    return f"{side[lang]} {text}" if side else text


def _values_text(type_name: str, values: Mapping[str, Decimal], unit: str, lang: str) -> str:
    values = {name: shown(type_name, unit, value) for name, value in values.items()}
    if "systolic" in values and "diastolic" in values:
        number = f"{number_text(values['systolic'], lang)}/{number_text(values['diastolic'], lang)}"
    else:
        number = "/".join(number_text(v, lang) for v in values.values())
    return _with_unit(number, unit, type_name, lang)


def _shown_pair(
    type_name: str, unit: str, value: Decimal, threshold: Decimal, op: Op
) -> tuple[Decimal, Decimal]:
    """Round a value and its threshold for people, keeping what the comparison said.

    At the measurement's precision a gain of 2.04 kg would read "2,0 kg > 2,0 kg"; then a
    decimal more is shown (at most three more), so an explanation never contradicts itself.
    """
    places = display_places(type_name, unit)
    truth = op.holds(value, threshold)
    for extra in range(4):
        shown_value = rounded(value, places + extra)
        shown_threshold = rounded(threshold, places + extra)
        if op.holds(shown_value, shown_threshold) == truth:
            return shown_value, shown_threshold
    return value, threshold


def _zone(tz: str | tzinfo) -> tzinfo:
    return _zone_named(tz) if isinstance(tz, str) else tz


@cache
def _zone_named(name: str) -> tzinfo:
    return ZoneInfo(name)


def local_day_start(moment: datetime, tz: str | tzinfo, days_back: int = 0) -> datetime:
    """Return the local midnight (in UTC) of the moment's local date less some days."""
    zone = _zone(tz)
    day = moment.astimezone(zone).date() - timedelta(days=days_back)
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


# --- comparing one reading with one parameter -----------------------------------------------


@dataclass(frozen=True)
class _Comparison:
    held: bool
    type_name: str
    component: str
    value: Decimal
    threshold: Decimal
    unit: str
    condition: Condition


def _compare(
    reading: ReadingFact, condition: Condition, param: ResolvedParam
) -> _Comparison | None:
    """Compare one component of a reading with a parameter (None: nothing to compare)."""
    if condition.context and not _context_matches(reading, condition.context):
        return None  # the condition is about other readings (a resting pulse)
    component = condition.component
    in_unit = _value_in(reading, component, param)
    if in_unit is None:
        return None
    value, threshold, unit = in_unit
    return _Comparison(
        held=condition.op.holds(value, threshold),
        type_name=reading.type,
        component=component,
        value=value,
        threshold=threshold,
        unit=unit,
        condition=condition,
    )


def _value_in(
    reading: ReadingFact, component: str, param: ResolvedParam
) -> tuple[Decimal, Decimal, str] | None:
    """Return (value, threshold, unit) to compare a reading's component with a parameter."""
    type_name = reading.type
    original = reading.original_values.get(component)
    published = param.published_in(type_name, reading.original_unit)
    if original is not None and published is not None:
        return original, published, reading.original_unit
    if param.unit is None or isinstance(param.value, bool):
        return None
    unit = param.unit
    if original is not None and is_accepted_unit(type_name, reading.original_unit):
        value = convert(type_name, original, reading.original_unit, unit)
    elif component in reading.values:
        value = convert(type_name, reading.values[component], reading.unit, unit)
    else:
        return None
    return value, param.number_in(type_name, unit), unit


def _conditions_hold(comparisons: Sequence[_Comparison | None], match: Match) -> bool:
    held = [c is not None and c.held for c in comparisons]
    return any(held) if match is Match.any else bool(held) and all(held)


def _reason(comparison: _Comparison, lang: str) -> str:
    name = _COMPONENT_NAMES.get(comparison.component, {}).get(lang)
    shown_value, shown_threshold = _shown_pair(
        comparison.type_name,
        comparison.unit,
        comparison.value,
        comparison.threshold,
        comparison.condition.op,
    )
    value = number_text(shown_value, lang)
    threshold = _with_unit(
        number_text(shown_threshold, lang), comparison.unit, comparison.type_name, lang
    )
    left = f"{name} {value}" if name else value
    return f"{left} {comparison.condition.op.symbol} {threshold}"


def _note(
    comparisons: Iterable[_Comparison | None],
    computed: dict[str, str],
    thresholds: dict[str, Mapping[str, str]],
) -> None:
    """Record the compared values and thresholds of a list of comparisons."""
    for c in comparisons:
        if c is None:
            continue
        computed[c.component] = decimal_text(c.value)
        thresholds[c.condition.param] = {
            "value": decimal_text(c.threshold),
            "unit": c.unit,
        }


def _param_json(param: ResolvedParam) -> dict[str, str]:
    if isinstance(param.value, bool):
        return {"value": "true" if param.value else "false"}
    data = {"value": decimal_text(param.value)}
    if param.unit is not None:
        data["unit"] = param.unit
    return data


def _number(params: Mapping[str, ResolvedParam], name: str) -> Decimal:
    value = params[name].value
    if isinstance(value, bool):
        raise TypeError(f"parameter {name!r} is a flag, not a number")
    return value


# --- windows and the readings of one evaluation ---------------------------------------------


@dataclass(frozen=True)
class _Window:
    """A window parameter: a length in min or h (rolling) or d (local calendar days)."""

    length: Decimal
    unit: str

    @classmethod
    def of(cls, params: Mapping[str, ResolvedParam], name: str) -> _Window:
        param = params[name]
        return cls(_number(params, name), param.unit or "h")

    @property
    def duration(self) -> timedelta:
        micros = self.length * WINDOW_UNITS[self.unit] * 1_000_000
        return timedelta(microseconds=int(micros))

    @property
    def reach(self) -> timedelta:
        """Return the longest time from the window's start to its anchor."""
        return self.duration + _DST_MARGIN if self.unit == "d" else self.duration

    def start(self, anchor: datetime, tz: tzinfo) -> datetime:
        if self.unit == "d":
            return local_day_start(anchor, tz, int(self.length) - 1)
        return anchor - self.duration

    def json(self) -> dict[str, str]:
        return {"value": decimal_text(self.length), "unit": self.unit}


def _context_matches(reading: ReadingFact, context: Mapping[str, str]) -> bool:
    for key, wanted in context.items():
        have = reading.context.get(key)
        if key == "activity":
            if activity_state(have) != activity_state(wanted):
                return False
        elif key == "instrument":
            if instrument_name(have) is None or instrument_name(have) != instrument_name(wanted):
                return False
        elif not isinstance(have, str) or have.casefold() != wanted.casefold():
            return False
    return True


class _Counted(Protocol):
    visits: int


_C = TypeVar("_C", bound=_Counted)
_INFINITY = Decimal("Infinity")


class _History:
    """The readings of one evaluation, sorted by time per type, with per-run caches.

    ``visits`` counts the readings the evaluation looked at (in windows and in the indexes
    it builds once): its work, which tests keep linear. The readings its findings list
    are their own measure (``reading_ids``).
    """

    def __init__(self, readings: Sequence[ReadingFact], tz: tzinfo) -> None:
        self.readings = readings
        self.tz = tz
        self._by_type: dict[str, list[ReadingFact]] = {}
        for reading in readings:
            self._by_type.setdefault(reading.type, []).append(reading)
        self._times = {t: [r.time for r in rs] for t, rs in self._by_type.items()}
        self.cache: dict[tuple[str, str, str], Any] = {}
        self._series: dict[tuple[frozenset[str], tuple[tuple[str, str], ...]], _Series] = {}
        self._visits = len(readings)
        self._counted: list[_Counted] = []

    @property
    def visits(self) -> int:
        """Return how many readings this evaluation has looked at so far."""
        return self._visits + sum(counted.visits for counted in self._counted)

    def visit(self, count: int) -> None:
        """Count readings looked at."""
        self._visits += count

    def counted(self, structure: _C) -> _C:
        """Return an index structure after adding its own visit count to the evaluation's."""
        self._counted.append(structure)
        return structure

    def between(
        self,
        types: Iterable[str],
        start: datetime,
        end: datetime,
        *,
        end_open: bool = False,
        context: Mapping[str, str] | None = None,
    ) -> list[ReadingFact]:
        """Return the readings of these types in ``[start, end]`` (or ``[start, end)``)."""
        found: list[ReadingFact] = []
        for type_name in set(types):
            times = self._times.get(type_name)
            if not times:
                continue
            low = bisect.bisect_left(times, start)
            high = (bisect.bisect_left if end_open else bisect.bisect_right)(times, end)
            found.extend(self._by_type[type_name][low:high])
        self.visit(len(found))
        if context:
            found = [r for r in found if _context_matches(r, context)]
        found.sort(key=lambda r: (r.time, r.id))
        return found

    def series(self, types: Iterable[str], context: Mapping[str, str] | None = None) -> _Series:
        """Return every reading of these types (and context), sorted; built once per run."""
        key = (frozenset(types), tuple(sorted((context or {}).items())))
        found = self._series.get(key)
        if found is None:
            readings = [r for t in sorted(key[0]) for r in self._by_type.get(t, ())]
            self.visit(len(readings))
            if context:
                readings = [r for r in readings if _context_matches(r, context)]
            readings.sort(key=lambda r: (r.time, r.id))
            found = self._series[key] = _Series(readings, self)
        return found

    def local_date(self, reading: ReadingFact) -> date:
        return reading.time.astimezone(self.tz).date()


class _Series:
    """Readings of some types (and a context) sorted by (time, id), with window indexes.

    A window is an index range found by bisection. What an anchor reads of its window (a
    minimum, a sum, a median, how many) comes from structures built once per series, so
    re-evaluating every anchor of a dense stream costs no scan of each anchor's window.
    """

    def __init__(self, readings: list[ReadingFact], history: _History) -> None:
        self.readings = readings
        self.times = [r.time for r in readings]
        self.history = history
        self._components: dict[str, _Component] = {}
        self._next_day: list[int] | None = None
        self._descents: list[int] = []

    def span(self, start: datetime, end: datetime, *, end_open: bool = False) -> tuple[int, int]:
        """Return the index range of the readings in ``[start, end]`` (or ``[start, end)``)."""
        low = bisect.bisect_left(self.times, start)
        high = (bisect.bisect_left if end_open else bisect.bisect_right)(self.times, end)
        return low, max(low, high)

    def component(self, name: str) -> _Component:
        """Return the readings that have this component, with their values."""
        found = self._components.get(name)
        if found is None:
            found = self._components[name] = _Component(self, name)
        return found

    def _days(self) -> list[int]:
        """Return, per index, where the next local date starts (indexed on first use)."""
        if self._next_day is None:
            dates = [self.history.local_date(r) for r in self.readings]
            self.history.visit(len(dates))
            nxt = [len(dates)] * len(dates)
            for i in range(len(dates) - 2, -1, -1):
                nxt[i] = i + 1 if dates[i + 1] != dates[i] else nxt[i + 1]
            self._next_day = nxt
            # Where a zone's clock goes back over midnight, local dates leave time order.
            self._descents = [0]
            for i in range(len(dates)):
                self._descents.append(self._descents[-1] + (i > 0 and dates[i] < dates[i - 1]))
        return self._next_day

    def in_date_order(self, low: int, high: int) -> bool:
        """Tell whether the local dates of a range never go back (only a clock set back over
        midnight makes them: a reading of tomorrow, then one of today)."""
        self._days()
        return high - low < 2 or self._descents[high] == self._descents[low + 1]

    def after_days(self, low: int, high: int, days: int) -> int:
        """Return where a range starts once its first ``days`` local dates are left out."""
        nxt = self._days()
        for _ in range(days):
            if low >= high:
                break
            low = min(nxt[low], high)
        return low


class _Column:
    """One value per row of a component (None where a row has none), with range queries."""

    def __init__(self, values: list[Decimal | None], history: _History) -> None:
        self.values = values
        self.history = history
        history.visit(len(values))
        self._gaps = [0]
        for value in values:
            self._gaps.append(self._gaps[-1] + (value is None))
        self._lowest: RangeBest[Decimal] | None = None
        self._highest: RangeBest[Decimal] | None = None
        self._sums: ExactSums | None = None
        self._order: SlidingOrder | None = None

    def complete(self, low: int, high: int) -> bool:
        """Tell whether every row of the range has a value."""
        return self._gaps[high] == self._gaps[low]

    def lowest(self, low: int, high: int) -> Decimal:
        """Return ``min()`` of the range's values: the first of equal ones."""
        if self._lowest is None:
            keys = [_INFINITY if v is None else v for v in self.values]
            self._lowest = self.history.counted(RangeBest(keys))
        value = self.values[self._lowest.best(low, high)]
        assert value is not None
        return value

    def highest(self, low: int, high: int) -> Decimal:
        """Return ``max()`` of the range's values: the first of equal ones."""
        if self._highest is None:
            keys = [_INFINITY if v is None else v.copy_negate() for v in self.values]
            self._highest = self.history.counted(RangeBest(keys))
        value = self.values[self._highest.best(low, high)]
        assert value is not None
        return value

    def total(self, low: int, high: int) -> Decimal:
        """Return ``sum(values, Decimal(0))`` of the range, digit for digit."""
        if self._sums is None:
            self._sums = self.history.counted(ExactSums(self.values))
        return self._sums.total(low, high)

    def median(self, low: int, high: int) -> Decimal:
        """Return the median of the range's values: of an even count, the mean of the middle two."""
        if self._order is None:
            self._order = self.history.counted(SlidingOrder(self.values))
        return self._order.median(low, high)


class _Listed:
    """The readings of a range of a sorted list (and the anchor), listed when iterated.

    Every outcome names the readings it used, but only a finding lists them: the many
    outcomes that never become one (anchors that do not fire, parts of a composite that
    does not) then cost nothing. What findings list is their size, not counted as visits.
    """

    def __init__(
        self,
        rows: Sequence[ReadingFact],
        low: int,
        high: int,
        anchor: ReadingFact | None = None,
    ) -> None:
        self.rows, self.low, self.high, self.anchor = rows, low, high, anchor

    def __iter__(self) -> Iterator[ReadingFact]:
        yield from self.rows[self.low : self.high]
        if self.anchor is not None:
            yield self.anchor


_InUnit = tuple[_Column, Decimal, str, Decimal]  # values, threshold, unit, the first's value


class _Component:
    """The readings of a series that have a component, and their values as rules compare them.

    Over several readings the original values are compared when all of them are in one
    unit the parameter is published in (that of the first reading), else every value is
    converted to the parameter's unit (module docstring, Units); which one holds for a
    window is decided from prefix counts, not by looking at each reading of it.
    """

    def __init__(self, series: _Series, name: str) -> None:
        self.name = name
        self.history = series.history
        self.rows: list[ReadingFact] = []
        self.upto = [0]  # series index -> index in rows
        for reading in series.readings:
            if name in reading.values:
                self.rows.append(reading)
            self.upto.append(len(self.rows))
        self.history.visit(len(series.readings))
        self.times = [r.time for r in self.rows]
        self.original = _Column([r.original_values.get(name) for r in self.rows], self.history)
        self._converted: dict[str | None, _Column] = {}
        self._foreign: dict[str, list[int]] = {}

    def span(self, start: datetime, end: datetime, *, end_open: bool = False) -> tuple[int, int]:
        """Return the index range of the rows in ``[start, end]`` (or ``[start, end)``)."""
        low = bisect.bisect_left(self.times, start)
        high = (bisect.bisect_left if end_open else bisect.bisect_right)(self.times, end)
        return low, max(low, high)

    def _uniform(self, unit: str, low: int, high: int) -> bool:
        """Tell whether every row of the range was measured, with the component, in ``unit``."""
        foreign = self._foreign.get(unit)
        if foreign is None:
            foreign = [0]
            for r in self.rows:
                same = self.name in r.original_values and same_unit(r.type, r.original_unit, unit)
                foreign.append(foreign[-1] + (not same))
            self.history.visit(len(self.rows))
            self._foreign[unit] = foreign
        return foreign[high] == foreign[low]

    def _in_unit_of(self, param: ResolvedParam) -> _Column:
        """Return every row's value in the parameter's unit (its original value when the
        parameter's own unit is the reading's, else converted), None when it has none."""
        column = self._converted.get(param.unit)
        if column is None:
            plain = replace(param, equivalents={})  # the value depends on the unit alone
            values: list[Decimal | None] = []
            for r in self.rows:
                single = _value_in(r, self.name, plain)
                values.append(None if single is None else single[0])
            column = self._converted[param.unit] = _Column(values, self.history)
        return column

    def in_unit(
        self, first: ReadingFact, low: int, high: int, param: ResolvedParam
    ) -> _InUnit | None:
        """Return how ``[first, *rows[low:high]]`` is compared: the column of values, the
        threshold, the unit, and ``first``'s value (None: not comparable, never fires).

        ``first`` is the anchor (a delta, a baseline) or ``rows[low]`` itself (an aggregate,
        whose list starts there): listed twice it changes no answer here.
        """
        if param.unit is None or isinstance(param.value, bool):
            return None
        published = param.published_in(first.type, first.original_unit)
        own = first.original_values.get(self.name)
        if published is not None and own is not None:
            if self._uniform(first.original_unit, low, high):
                return self.original, published, first.original_unit, own
        column = self._in_unit_of(param)
        single = _value_in(first, self.name, replace(param, equivalents={}))
        if single is None or not column.complete(low, high):
            return None
        return column, param.number_in(first.type, param.unit), param.unit, single[0]


# --- the logic of each reading-anchored kind --------------------------------------------


@dataclass
class _Outcome:
    """What a check found at an anchor: whether it held, and how to explain it."""

    held: bool
    computed: dict[str, str] = field(default_factory=dict)
    thresholds: dict[str, Mapping[str, str]] = field(default_factory=dict)
    used: Iterable[ReadingFact] = field(default_factory=list)
    reasons: dict[str, list[str]] = field(default_factory=lambda: {lang: [] for lang in LANGUAGES})
    value: dict[str, str] | None = None  # $value per language; None: the anchor as measured
    change: dict[str, str] | None = None  # $change per language (delta rules)
    band: Band | None = None
    comparisons: list[_Comparison | None] = field(default_factory=list)


class _Check:
    """The logic of one kind with resolved parameters: does it hold at an anchor?"""

    def __init__(
        self,
        key: str,
        types: Sequence[str],
        context: Mapping[str, str],
        params: Mapping[str, ResolvedParam],
    ) -> None:
        self.key = key  # for caches: the rule id (and part)
        self.types = frozenset(types)
        self.context = context
        self.params = params

    def selects(self, reading: ReadingFact) -> bool:
        return reading.type in self.types and _context_matches(reading, self.context)

    def reach(self) -> tuple[timedelta, timedelta]:
        return timedelta(0), timedelta(0)

    def outcome(self, anchor: ReadingFact, history: _History) -> _Outcome | None:
        """Return the outcome at an anchor, or None when the anchor is not one of ours."""
        if not self.selects(anchor):
            return None
        key = (self.key, "outcome", anchor.id)
        if key not in history.cache:
            history.cache[key] = self._outcome(anchor, history)
        result: _Outcome = history.cache[key]
        return result

    def _outcome(self, anchor: ReadingFact, history: _History) -> _Outcome:
        raise NotImplementedError


class _ThresholdCheck(_Check):
    def __init__(self, key: str, types: Sequence[str], fields: ThresholdFields, params: _Params):
        super().__init__(key, types, fields.context, params)
        self.fields = fields

    def comparisons(
        self, reading: ReadingFact, conditions: Iterable[Condition]
    ) -> list[_Comparison | None]:
        return [_compare(reading, c, self.params[c.param]) for c in conditions]

    def _outcome(self, anchor: ReadingFact, history: _History) -> _Outcome:
        comparisons = self.comparisons(anchor, self.fields.conditions)
        outcome = _Outcome(held=_conditions_hold(comparisons, self.fields.match))
        outcome.comparisons = comparisons
        _note(comparisons, outcome.computed, outcome.thresholds)
        outcome.used = [anchor]
        for lang in LANGUAGES:
            outcome.reasons[lang] = [_reason(c, lang) for c in comparisons if c and c.held]
        return outcome


class _AggregateCheck(_Check):
    def __init__(
        self, key: str, types: Sequence[str], fields: WindowAggregateFields, params: _Params
    ):
        super().__init__(key, types, fields.context, params)
        self.fields = fields
        self.window = _Window.of(params, fields.window)

    def reach(self) -> tuple[timedelta, timedelta]:
        return self.window.reach, timedelta(0)

    def _outcome(self, anchor: ReadingFact, history: _History) -> _Outcome:
        f = self.fields
        start = self.window.start(anchor.time, history.tz)
        series = history.series(self.types, self.context)
        low, high = series.span(start, anchor.time)
        outcome = _Outcome(held=False)
        outcome.thresholds["window"] = self.window.json()
        discard = (
            0 if f.discard_first_days is None else int(_number(self.params, f.discard_first_days))
        )
        if f.discard_first_days is not None:
            outcome.thresholds[f.discard_first_days] = _param_json(
                self.params[f.discard_first_days]
            )
        in_window = high - low
        if discard and not series.in_date_order(low, high):
            # Dropping the first local dates leaves a gap in the range: index what is kept.
            rows = series.readings[low:high]
            history.visit(high - low)
            dropped = set(sorted({history.local_date(r) for r in rows})[:discard])
            series = _Series([r for r in rows if history.local_date(r) not in dropped], history)
            kept, high = 0, len(series.readings)
        else:
            kept = series.after_days(low, high, discard)
        outcome.computed["window_start"] = start.isoformat()
        outcome.computed["readings_in_window"] = str(in_window)
        outcome.computed["readings_discarded"] = str(in_window - (high - kept))
        outcome.computed["readings_used"] = str(high - kept)
        enough = True
        if f.min_readings is not None:
            outcome.thresholds[f.min_readings] = _param_json(self.params[f.min_readings])
            enough = high - kept >= _number(self.params, f.min_readings)
        results: list[bool] = []
        shown_values: dict[str, Decimal] = {}
        shown_unit = ""
        type_name = next(iter(self.types)) if len(self.types) == 1 else ""
        for condition in f.conditions:
            param = self.params[condition.param]
            name = f"{f.aggregate}_{condition.component}"
            component = series.component(condition.component)
            first, last = component.upto[kept], component.upto[high]  # rows with the component
            if f.aggregate == "count":
                count = Decimal(last - first)
                threshold = _number(self.params, condition.param)
                held = condition.op.holds(count, threshold)
                outcome.computed[name] = str(count)
                outcome.thresholds[condition.param] = _param_json(param)
                reason_value, reason_threshold, unit = count, threshold, ""
            else:
                in_unit = None
                if last > first:
                    in_unit = component.in_unit(component.rows[first], first, last, param)
                if in_unit is None:
                    results.append(False)
                    continue
                values, threshold, unit, _ = in_unit
                if f.aggregate == "mean":
                    total = values.total(first, last)
                    held = condition.op.holds(total, threshold * (last - first))
                    aggregate = total / (last - first)
                    outcome.computed[name] = decimal_text(_round(aggregate, 2))
                else:
                    if f.aggregate == "min":
                        aggregate = values.lowest(first, last)
                    else:
                        aggregate = values.highest(first, last)
                    held = condition.op.holds(aggregate, threshold)
                    outcome.computed[name] = decimal_text(aggregate)
                outcome.thresholds[condition.param] = {
                    "value": decimal_text(threshold),
                    "unit": unit,
                }
                type_name = component.rows[first].type
                reason_value, reason_threshold = _shown_pair(
                    type_name, unit, aggregate, threshold, condition.op
                )
                shown_values[condition.component] = reason_value
                shown_unit = unit
            results.append(held)
            if held:
                for lang in LANGUAGES:
                    label = _COMPONENT_NAMES.get(condition.component, {}).get(lang)
                    what = _AGGREGATE_NAMES[f.aggregate][lang]
                    left = f"{what} {label}" if label else what
                    outcome.reasons[lang].append(
                        f"{left} {number_text(reason_value, lang)} {condition.op.symbol} "
                        f"{_with_unit(number_text(reason_threshold, lang), unit, type_name, lang)}"
                    )
        held = any(results) if f.match is Match.any else bool(results) and all(results)
        outcome.held = enough and held
        outcome.used = _Listed(series.readings, kept, high)
        if shown_values:
            outcome.value = {
                lang: _values_text(type_name, shown_values, shown_unit, lang) for lang in LANGUAGES
            }
        if not enough:
            for lang in LANGUAGES:
                outcome.reasons[lang] = []
        return outcome


class _DeltaCheck(_Check):
    def __init__(self, key: str, types: Sequence[str], fields: DeltaFields, params: _Params):
        super().__init__(key, types, fields.context, params)
        self.fields = fields
        self.window = _Window.of(params, fields.window)

    def reach(self) -> tuple[timedelta, timedelta]:
        return self.window.reach, timedelta(0)

    def _outcome(self, anchor: ReadingFact, history: _History) -> _Outcome:
        f = self.fields
        param = self.params[f.param]
        start = self.window.start(anchor.time, history.tz)
        component = history.series(self.types, self.context).component(f.component)
        first, last = component.span(start, anchor.time, end_open=True)  # the preceding
        outcome = _Outcome(held=False)
        outcome.thresholds["window"] = self.window.json()
        outcome.computed["window_start"] = start.isoformat()
        outcome.computed["preceding_readings"] = str(last - first)
        if first == last or f.component not in anchor.values:
            outcome.thresholds[f.param] = _param_json(param)
            return outcome
        in_unit = component.in_unit(anchor, first, last, param)
        if in_unit is None:
            return outcome
        values, threshold, unit, latest = in_unit
        if f.reference is Reference.min:
            reference = values.lowest(first, last)
        else:
            reference = values.highest(first, last)
        delta = latest - reference
        outcome.held = f.op.holds(delta, threshold)
        outcome.used = _Listed(component.rows, first, last, anchor)
        outcome.computed["value"] = decimal_text(latest)
        outcome.computed[f"reference_{f.reference}"] = decimal_text(reference)
        outcome.computed["delta"] = decimal_text(delta)
        outcome.thresholds[f.param] = {"value": decimal_text(threshold), "unit": unit}
        # Texts speak in the unit the change was computed in: a weight measured in pounds
        # shows in kilograms beside a gain in kilograms, never both units in one sentence.
        type_name = anchor.type
        shown_delta, shown_threshold = _shown_pair(type_name, unit, delta, threshold, f.op)
        outcome.value = {
            lang: _values_text(type_name, {f.component: latest}, unit, lang) for lang in LANGUAGES
        }
        outcome.change = {
            lang: _values_text(type_name, {f.component: delta}, unit, lang) for lang in LANGUAGES
        }
        for lang in LANGUAGES:
            change = "förändring" if lang == "sv" else "change"
            outcome.reasons[lang] = [
                f"{change} {_with_unit(number_text(shown_delta, lang), unit, type_name, lang)} "
                f"({number_text(shown(type_name, unit, latest), lang)} − "
                f"{_AGGREGATE_NAMES[f.reference][lang]} "
                f"{number_text(shown(type_name, unit, reference), lang)}) "
                f"{f.op.symbol} "
                f"{_with_unit(number_text(shown_threshold, lang), unit, type_name, lang)}"
            ]
        return outcome


class _CountCheck(_Check):
    def __init__(self, key: str, types: Sequence[str], fields: CountFields, params: _Params):
        super().__init__(key, types, fields.context, params)
        self.fields = fields
        self.window = _Window.of(params, fields.window)
        self.events = _ThresholdCheck(
            f"{key}:event",
            types,
            ThresholdFields(
                conditions=fields.conditions, match=fields.match, context=fields.context
            ),
            params,
        )

    def reach(self) -> tuple[timedelta, timedelta]:
        return self.window.reach, timedelta(0)

    def _is_event(self, reading: ReadingFact, history: _History) -> bool:
        event = self.events.outcome(reading, history)
        return event is not None and event.held

    def _outcome(self, anchor: ReadingFact, history: _History) -> _Outcome:
        f = self.fields
        own = self.events.outcome(anchor, history)
        assert own is not None
        outcome = _Outcome(held=False)
        outcome.comparisons = own.comparisons
        outcome.computed.update(own.computed)
        outcome.thresholds.update(own.thresholds)
        outcome.thresholds["window"] = self.window.json()
        outcome.thresholds[f.min_count] = _param_json(self.params[f.min_count])
        outcome.used = [anchor]
        if not own.held:
            return outcome
        start = self.window.start(anchor.time, history.tz)
        series = history.series(self.types, self.context)
        events, upto = self._events(series, history)
        low, high = series.span(start, anchor.time)
        count = upto[high] - upto[low]
        outcome.computed["count_in_window"] = str(count)
        outcome.computed["window_start"] = start.isoformat()
        outcome.held = count >= _number(self.params, f.min_count)
        outcome.used = _Listed(events, upto[low], upto[high])
        for lang in LANGUAGES:
            times = "gånger" if lang == "sv" else "times"
            outcome.reasons[lang] = [
                *own.reasons[lang],
                f"{count} {times} ≥ {decimal_text(_number(self.params, f.min_count))}",
            ]
        return outcome

    def _events(
        self, series: _Series, history: _History
    ) -> tuple[list[ReadingFact], list[int]]:
        """Return the series' events and, per series index, how many events come before it."""
        key = (self.key, "events", "")
        if key not in history.cache:
            events: list[ReadingFact] = []
            upto = [0]
            for reading in series.readings:
                if self._is_event(reading, history):
                    events.append(reading)
                upto.append(len(events))
            history.visit(len(series.readings))
            history.cache[key] = (events, upto)
        found: tuple[list[ReadingFact], list[int]] = history.cache[key]
        return found


_CHANGE_NAMES: Mapping[str, Mapping[str, str]] = {
    "rise": {"sv": "ökning", "en": "rise"},
    "fall": {"sv": "sänkning", "en": "fall"},
}


class _BaselineCheck(_Check):
    def __init__(self, key: str, types: Sequence[str], fields: BaselineFields, params: _Params):
        super().__init__(key, types, fields.context, params)
        self.fields = fields
        self.window = _Window.of(params, fields.window)
        self.gap = _Window.of(params, fields.gap)

    def reach(self) -> tuple[timedelta, timedelta]:
        if self.window.unit == "d":
            # From the baseline's first local midnight to an anchor at the end of its day.
            days = self.window.length + self.gap.length + 1
            return _Window(days, "d").reach, timedelta(0)
        return self.window.duration + self.gap.duration, timedelta(0)

    def bounds(self, anchor: datetime, tz: tzinfo) -> tuple[datetime, datetime]:
        """Return the baseline window ``[start, end)`` of an anchor."""
        if self.window.unit == "d":
            gap = int(self.gap.length)
            end = local_day_start(anchor, tz, gap)
            return local_day_start(anchor, tz, gap + int(self.window.length)), end
        end = anchor - self.gap.duration
        return end - self.window.duration, end

    def _name(self, lang: str) -> str:
        instrument = instrument_name(self.context.get("instrument"))
        if instrument is not None:
            return instrument
        type_name = sorted(self.types)[0]
        return _TYPE_NAMES.get(type_name, {}).get(lang, type_name)

    def _outcome(self, anchor: ReadingFact, history: _History) -> _Outcome:
        f = self.fields
        param = self.params[f.param]
        start, end = self.bounds(anchor.time, history.tz)
        component = history.series(self.types, self.context).component(f.component)
        first, last = component.span(start, end, end_open=True)  # the baseline readings
        count = last - first
        outcome = _Outcome(held=False)
        outcome.thresholds["window"] = self.window.json()
        outcome.thresholds["gap"] = self.gap.json()
        outcome.thresholds[f.min_readings] = _param_json(self.params[f.min_readings])
        outcome.thresholds[f.param] = _param_json(param)
        outcome.computed["baseline_start"] = start.isoformat()
        outcome.computed["baseline_end"] = end.isoformat()
        outcome.computed["baseline_readings"] = str(count)
        enough = count >= _number(self.params, f.min_readings)
        if not count or f.component not in anchor.values:
            return outcome
        in_unit = component.in_unit(anchor, first, last, param)
        if in_unit is None:
            return outcome
        values, threshold, unit, latest = in_unit
        median = values.median(first, last)
        change = latest - median if f.direction is Direction.rise else median - latest
        outcome.held = enough and f.op.holds(change, threshold)
        outcome.computed["value"] = decimal_text(latest)
        outcome.computed["baseline"] = decimal_text(median)
        outcome.computed["change"] = decimal_text(change)
        outcome.thresholds[f.param] = {"value": decimal_text(threshold), "unit": unit}
        outcome.used = _Listed(component.rows, first, last, anchor)
        if not outcome.held:
            return outcome
        type_name = anchor.type
        for lang in LANGUAGES:
            of = {"sv": "median av", "en": "median of"}[lang]
            readings = {"sv": "mätningar", "en": "readings"}[lang]
            base = {"sv": "baslinje", "en": "baseline"}[lang]

            def text(value: Decimal, lang: str = lang, *, exact: bool = False) -> str:
                # Rounded as measured (a median of weights is 71,2 kg, never 71,15 kg).
                number = number_text(value if exact else shown(type_name, unit, value), lang)
                return _with_unit(number, unit, type_name, lang)

            shown_change, shown_threshold = _shown_pair(type_name, unit, change, threshold, f.op)
            outcome.reasons[lang] = [
                f"{self._name(lang)} {text(latest)} ({base} {text(median)}, {of} "
                f"{count} {readings}): {_CHANGE_NAMES[f.direction][lang]} "
                f"{text(shown_change, exact=True)} {f.op.symbol} "
                f"{text(shown_threshold, exact=True)}"
            ]
        return outcome


class _BandsCheck(_Check):
    def __init__(self, key: str, types: Sequence[str], fields: BandsFields, params: _Params):
        super().__init__(key, types, {}, params)
        self.fields = fields

    def _outcome(self, anchor: ReadingFact, history: _History) -> _Outcome:
        f = self.fields
        outcome = _Outcome(held=False, used=[anchor])
        held: list[tuple[Band, dict[str, str]]] = []  # each band that holds, with its reason
        if f.reference is None:
            for band in f.bands:
                condition = Condition(component=f.component, op=band.op, param=band.param)
                c = _compare(anchor, condition, self.params[band.param])
                _note([c], outcome.computed, outcome.thresholds)
                if c is not None and c.held:
                    held.append((band, {lang: _reason(c, lang) for lang in LANGUAGES}))
        else:
            reference = self.params[f.reference]
            in_unit = _value_in(anchor, f.component, reference)
            outcome.thresholds[f.reference] = _param_json(reference)
            if in_unit is None:
                return outcome
            value, best, unit = in_unit
            percent = _round(value * 100 / best, 1)
            outcome.computed[f.component] = decimal_text(value)
            outcome.computed["percent_of_reference"] = decimal_text(percent)
            for band in f.bands:
                limit = _number(self.params, band.param)
                outcome.thresholds[band.param] = _param_json(self.params[band.param])
                if band.op.holds(value * 100, limit * best):  # exact: no division
                    of = {"sv": "av", "en": "of"}
                    reasons = {
                        lang: f"{number_text(percent, lang)} % {band.op.symbol} "
                        f"{number_text(limit, lang)} % ({of[lang]} "
                        f"{_with_unit(number_text(best, lang), unit, anchor.type, lang)})"
                        for lang in LANGUAGES
                    }
                    held.append((band, reasons))
        if not held:
            return outcome
        # The most severe band that holds speaks; the first listed among equals.
        winner, reasons = max(held, key=lambda item: _SEVERITY_RANK[item[0].severity])
        outcome.held = True
        outcome.band = winner
        outcome.computed["band"] = winner.name
        outcome.reasons = {lang: [winner.title.get(lang), reasons[lang]] for lang in LANGUAGES}
        return outcome


class _CompositeCheck(_Check):
    def __init__(self, key: str, rule: CompositeRule, params: Mapping[str, ResolvedParam]):
        super().__init__(key, rule.types, {}, params)
        self.rule = rule
        self.parts: list[tuple[str, _Check, timedelta]] = []
        for index, part in enumerate(rule.parts, start=1):
            name = part.name or f"part{index}"
            within = (
                timedelta(0) if part.within is None else _Window.of(params, part.within).duration
            )
            self.parts.append((name, _part_check(f"{key}:{name}", part, params), within))

    def selects(self, reading: ReadingFact) -> bool:
        return any(check.selects(reading) for _, check, _ in self.parts)

    def reach(self) -> tuple[timedelta, timedelta]:
        back = max(check.reach()[0] + within for _, check, within in self.parts)
        return back, timedelta(0)

    def _outcome(self, anchor: ReadingFact, history: _History) -> _Outcome:
        outcome = _Outcome(held=False)
        results: list[bool] = []
        held_parts: list[_Outcome] = []
        for name, check, within in self.parts:
            found: _Outcome | None = None
            at: ReadingFact | None = None
            series = history.series(check.types, check.context)
            low, high = series.span(anchor.time - within, anchor.time)
            latest = self._holding(name, check, series, history).latest(low, high)
            if latest is not None:
                at = series.readings[latest]
                found = check.outcome(at, history)
            results.append(found is not None)
            if found is None or at is None:
                outcome.computed[f"{name}.held"] = "false"
                continue
            outcome.computed[f"{name}.held"] = "true"
            outcome.computed[f"{name}.reading"] = at.id
            for key, value in found.computed.items():
                outcome.computed[f"{name}.{key}"] = value
            outcome.thresholds.update(found.thresholds)
            held_parts.append(found)
            for lang in LANGUAGES:
                outcome.reasons[lang].extend(found.reasons[lang])
        match = self.rule.match
        outcome.held = any(results) if match is Match.any else all(results)
        if outcome.held:  # only a firing lists its readings (see _Listed)
            used = {r.id: r for found in held_parts for r in found.used}
            outcome.used = sorted(used.values(), key=lambda r: (r.time, r.id))
        return outcome

    def _holding(
        self, name: str, check: _Check, series: _Series, history: _History
    ) -> LatestTrue:
        """Return where a part holds in its series: each reading is evaluated at most once."""
        key = (self.key, "holding", name)
        if key not in history.cache:

            def holds(index: int) -> bool:
                result = check.outcome(series.readings[index], history)
                return result is not None and result.held

            history.cache[key] = history.counted(LatestTrue(holds))
        found: LatestTrue = history.cache[key]
        return found


def _part_check(key: str, part: Part, params: Mapping[str, ResolvedParam]) -> _Check:
    match part.kind:
        case "threshold":
            return _ThresholdCheck(key, part.types, part, params)
        case "window_aggregate":
            return _AggregateCheck(key, part.types, part, params)
        case "delta":
            return _DeltaCheck(key, part.types, part, params)
        case "count":
            return _CountCheck(key, part.types, part, params)
        case "baseline":
            return _BaselineCheck(key, part.types, part, params)
    raise TypeError(f"unknown part kind {part.kind!r}")


# --- runs: one rule of one plan, ready to evaluate -------------------------------------------


@dataclass
class _Run:
    """One rule of one plan with its parameters resolved."""

    rule: Rule
    mode: RuleMode
    params: Mapping[str, ResolvedParam]
    plan_version: int
    addressee: Addressee = field(default_factory=Addressee)

    def _advice(
        self,
        spec: AdviceSpec | None,
        values: Mapping[str, str],
        change: Mapping[str, str] | None = None,
    ) -> AdviceText | None:
        if spec is None:
            return None

        def texts(
            audience: Audience, patient: LocalText, proxy: LocalText | None
        ) -> Mapping[str, str]:
            filled = {}
            for lang in LANGUAGES:
                fields = {
                    "value": values[lang],
                    "change": change[lang] if change else values[lang],
                    "contact": contact_text(self.addressee, lang, audience),
                }
                if audience == PROXY:
                    fields.update(patient_fields(self.addressee, lang))
                filled[lang] = fill((proxy or patient).get(lang), fields)
            return MappingProxyType(filled)

        return AdviceText(
            priority=spec.priority,
            title=texts(PATIENT, spec.title, None),
            body=texts(PATIENT, spec.body, None),
            proxy_title=texts(PROXY, spec.title, spec.proxy_title),
            proxy_body=texts(PROXY, spec.body, spec.proxy_body),
        )


@dataclass
class _ReadingRun(_Run):
    """A reading-anchored rule."""

    check: _Check = field(init=False)

    def __post_init__(self) -> None:
        self.check = _check_for(self.rule, self.params)

    def reach(self) -> tuple[timedelta, timedelta]:
        return self.check.reach()

    def anchors(self, reading: ReadingFact) -> bool:
        return self.check.selects(reading)

    def may_fire(self, reading: ReadingFact, history: _History) -> bool:
        """Tell whether re-evaluating an old anchor could find a firing there."""
        return True

    def finding(self, anchor: ReadingFact, history: _History) -> Finding | None:
        outcome = self.check.outcome(anchor, history)
        if outcome is None or not outcome.held:
            return None
        rule = self.rule
        severity: Severity | None = rule.flag.severity if rule.flag is not None else None
        advice_spec = rule.advice
        if outcome.band is not None:
            severity = outcome.band.severity
            advice_spec = outcome.band.advice or rule.advice
        values = outcome.value or {lang: reading_text(anchor, lang) for lang in LANGUAGES}
        advice = self._advice(advice_spec, values, outcome.change)
        return self._finding(anchor, outcome, severity, advice, values)

    def _finding(
        self,
        anchor: ReadingFact,
        outcome: _Outcome,
        severity: str | None,
        advice: AdviceText | None,
        values: Mapping[str, str],
        extra: Mapping[str, str] | None = None,
        episode: _Episode | None = None,
    ) -> Finding:
        used = tuple(outcome.used)
        summary = {}
        for lang in LANGUAGES:
            text = (
                f"{self.rule.title.get(lang)}: {values[lang]} ({'; '.join(outcome.reasons[lang])})."
            )
            if extra:
                text += extra[lang]
            if episode is not None:
                text += episode.text[lang]
            summary[lang] = text
        push_within = None
        if PUSH_WITHIN in self.params:
            push_within = _Window.of(self.params, PUSH_WITHIN).duration
        return Finding(
            push_within=push_within,
            episode=MappingProxyType(episode.json) if episode is not None else None,
            advice_repeat=episode is not None and not episode.first_at_level,
            push_muted=episode is not None and episode.muted,
            rule_id=self.rule.id,
            rule_version=self.rule.version,
            plan_version=self.plan_version,
            mode=self.mode,
            anchor_reading_id=anchor.id,
            anchor_time=anchor.time,
            reading_ids=tuple(r.id for r in used),
            computed=MappingProxyType(dict(outcome.computed)),
            thresholds=MappingProxyType(dict(outcome.thresholds)),
            advice=advice,
            flag_severity=severity,
            cooldown_minutes=self.rule.cooldown_minutes,
            readings=used,
            summary=MappingProxyType(summary),
        )


EPISODE_LOOKBACK = timedelta(hours=12)
"""How far back an advice episode is followed: a low that lasts longer is advised again."""


@dataclass(frozen=True)
class _Episode:
    json: dict[str, str]
    text: dict[str, str]
    first_at_level: bool
    muted: bool


def _canonical_value(reading: ReadingFact) -> Decimal:
    return reading.values.get("value", Decimal(0))


def _check_for(rule: Rule, params: Mapping[str, ResolvedParam]) -> _Check:
    match rule:
        case ThresholdRule():
            return _ThresholdCheck(rule.id, rule.types, rule, params)
        case WindowAggregateRule():
            return _AggregateCheck(rule.id, rule.types, rule, params)
        case DeltaRule():
            return _DeltaCheck(rule.id, rule.types, rule, params)
        case CountRule():
            return _CountCheck(rule.id, rule.types, rule, params)
        case BandsRule():
            return _BandsCheck(rule.id, rule.types, rule, params)
        case BaselineRule():
            return _BaselineCheck(rule.id, rule.types, rule, params)
        case CompositeRule():
            return _CompositeCheck(rule.id, rule, params)
    raise TypeError(f"{rule.id} is not anchored at readings")


@dataclass
class _ThresholdRun(_ReadingRun):
    """A threshold rule, with occurrence counting and escalation of its flag."""

    _fires: dict[str, bool] = field(default_factory=dict, init=False, repr=False)

    def reach(self) -> tuple[timedelta, timedelta]:
        back = fwd = timedelta(0)
        flag = self.rule.flag
        if flag is not None and flag.min_count > 1 and flag.window_hours is not None:
            back = fwd = timedelta(hours=flag.window_hours)
        if isinstance(self.rule, ThresholdRule) and self.rule.advice_episode is not None:
            back = max(back, EPISODE_LOOKBACK)
        return back, fwd

    def may_fire(self, reading: ReadingFact, history: _History) -> bool:
        # Whether a threshold fires depends on its reading alone; only its flag can change.
        return self.fires(reading, history)

    def fires(self, reading: ReadingFact, history: _History) -> bool:
        # A threshold depends on its reading alone, so each reading is checked once per run:
        # counting occurrences around every anchor of a CGM stream would otherwise check the
        # same thousands of readings again for each anchor.
        known = self._fires.get(reading.id)
        if known is None:
            outcome = self.check.outcome(reading, history)
            known = self._fires[reading.id] = outcome is not None and outcome.held
        return known

    def finding(self, anchor: ReadingFact, history: _History) -> Finding | None:
        rule = self.rule
        assert isinstance(rule, ThresholdRule) and isinstance(self.check, _ThresholdCheck)
        outcome = self.check.outcome(anchor, history)
        if outcome is None or not outcome.held:
            return None
        outcome = replace(
            outcome, computed=dict(outcome.computed), thresholds=dict(outcome.thresholds)
        )
        computed, thresholds = outcome.computed, outcome.thresholds
        severity: Severity | None = None
        count: int | None = None
        extra: dict[str, str] | None = None
        advice_spec = rule.advice
        if rule.flag is not None:
            severity = rule.flag.severity
            if rule.flag.min_count > 1 and rule.flag.window_hours is not None:
                window = timedelta(hours=rule.flag.window_hours)
                gap = timedelta(minutes=rule.flag.episode_minutes)
                count, outcome.used = self._occurrences(anchor, history, window, gap)
                computed["count_in_window"] = str(count)
                thresholds["min_count"] = {"value": str(rule.flag.min_count)}
                thresholds["window_hours"] = {
                    "value": str(rule.flag.window_hours),
                    "unit": "h",
                }
                if count < rule.flag.min_count:
                    severity = None
                extra = {
                    "sv": f" {count} tillfällen inom {rule.flag.window_hours} timmar "
                    f"(flagga vid minst {rule.flag.min_count}).",
                    "en": f" {count} occurrences within {rule.flag.window_hours} hours (flag at "
                    f"{rule.flag.min_count} or more).",
                }
            escalation = rule.flag.escalate
            if escalation is not None:
                required = {name: self.params[name].value for name in escalation.requires}
                for name, flag_value in required.items():
                    thresholds[name] = {"value": "true" if flag_value else "false"}
                raised = self.check.comparisons(anchor, escalation.conditions)
                _note(raised, computed, thresholds)
                escalates = all(v is True for v in required.values()) and (
                    not escalation.conditions or _conditions_hold(raised, escalation.match)
                )
                if severity is not None and escalates:
                    severity = escalation.severity
                if escalates and escalation.advice is not None:
                    advice_spec = escalation.advice
        values = {lang: reading_text(anchor, lang) for lang in LANGUAGES}
        episode = None
        if rule.advice_episode is not None and anchor.type in rule.advice_episode.types:
            episode = self._episode(rule.advice_episode, anchor, history)
        return self._finding(
            anchor, outcome, severity, self._advice(advice_spec, values), values, extra, episode
        )

    def _episode(self, spec: AdviceEpisode, anchor: ReadingFact, history: _History) -> _Episode:
        """Return the advice episode the anchor belongs to, as a walk back from it finds it.

        The episode starts at the earliest reading reached before a recovery (``end_after``
        of consecutive readings outside the episode condition), a gap longer than
        ``max_gap``, or :data:`EPISODE_LOOKBACK`. The anchor is always in its episode.
        Where the walk stops comes from an index of the stream (:class:`_EpisodeStream`):
        inside a long low, walking from every anchor would cross the whole low each time.
        """
        stream = self._episode_stream(spec, history)
        position = stream.position[anchor.id]
        lowest = bisect.bisect_left(stream.times, anchor.time - EPISODE_LOOKBACK)
        stop = stream.walk_stop(position, lowest)
        start = stream.readings[stream.first_member(stop + 1, position)].time
        nadir = stream.nadir(stop + 1, position)
        first_at_level = not stream.member_fires(stop + 1, position)
        minutes = int((anchor.time - start).total_seconds() // 60)
        muted = spec.muted_by is not None and self.params[spec.muted_by].value is True
        zone = history.tz
        text = {
            "sv": f" Episod sedan kl. {start.astimezone(zone):%H:%M} ({minutes} min), "
            f"lägsta {reading_text(nadir, 'sv')}.",
            "en": f" Episode since {start.astimezone(zone):%H:%M} ({minutes} min), "
            f"lowest {reading_text(nadir, 'en')}.",
        }
        return _Episode(
            json={
                "start": start.isoformat(),
                "minutes": str(minutes),
                # As measured: 49 mg/dL stays 49 mg/dL.
                "nadir": decimal_text(nadir.original_values.get("value", _canonical_value(nadir))),
                "unit": nadir.original_unit,
                "nadir_reading_id": nadir.id,
                "first_at_level": "true" if first_at_level else "false",
            },
            text=text,
            first_at_level=first_at_level,
            muted=muted,
        )

    def _episode_stream(self, spec: AdviceEpisode, history: _History) -> _EpisodeStream:
        """Return the stream of the episode's types, indexed once per evaluation."""
        key = (self.rule.id, "episodes", "")
        if key not in history.cache:
            condition = spec.condition
            param = self.params[condition.param]
            readings = history.series(spec.types).readings
            holds: list[bool] = []
            fires: list[bool] = []
            for reading in readings:
                comparison = _compare(reading, condition, param)
                holds.append(comparison is not None and comparison.held)
                fires.append(holds[-1] and self.fires(reading, history))
            history.visit(len(readings))
            history.cache[key] = _EpisodeStream(
                readings,
                holds,
                fires,
                end_after=_Window.of(self.params, spec.end_after).duration,
                max_gap=_Window.of(self.params, spec.max_gap).duration,
            )
        found: _EpisodeStream = history.cache[key]
        return found

    def _occurrences(
        self,
        anchor: ReadingFact,
        history: _History,
        window: timedelta,
        gap: timedelta,
    ) -> tuple[int, list[ReadingFact]]:
        """Return the most occurrences in a window span holding the anchor's, and theirs.

        Each occurrence of the span is given by its first reading; the anchor is added.
        """
        key = (self.rule.id, "firings", "")
        if key not in history.cache:
            readings = history.series(self.rule.types).readings
            firing = [r for r in readings if self.fires(r, history)]
            history.visit(len(readings))
            history.cache[key] = history.counted(_Firings(firing, gap))
        firings: _Firings = history.cache[key]
        count, firsts = firings.best_span(anchor, window)
        used = {r.id: r for r in (*firsts, anchor)}
        return count, sorted(used.values(), key=lambda r: (r.time, r.id))


class _Firings:
    """The readings a threshold rule fires on, sorted, chained into occurrences once.

    A reading at most ``gap`` after the previous firing one continues its occurrence. An
    anchor chains only the firings within ``window`` of it, so an occurrence that began
    before that slice starts, for this anchor, at its first reading inside the slice; the
    other occurrences of the slice are the whole-history ones, found here by bisection.
    """

    def __init__(self, readings: list[ReadingFact], gap: timedelta) -> None:
        self.readings, self.gap = readings, gap
        self.times = [r.time for r in readings]
        self.position = {r.id: i for i, r in enumerate(readings)}
        times = self.times
        self.starts = [i for i in range(len(times)) if i == 0 or times[i] - times[i - 1] > gap]
        self.start_times = [times[i] for i in self.starts]
        self.visits = len(readings)

    def best_span(
        self, anchor: ReadingFact, window: timedelta
    ) -> tuple[int, list[ReadingFact]]:
        """Return the most occurrences a ``window`` span holding the anchor's can hold,
        and the first reading of each (the earliest such span among equals)."""
        times, starts, start_times = self.times, self.starts, self.start_times
        position = self.position[anchor.id]
        low = bisect.bisect_left(times, anchor.time - window)
        high = bisect.bisect_right(times, anchor.time + window)
        # The slice's occurrences: number 0 starts at `low`, number j > 0 at starts[k0 + j - 1].
        k0 = bisect.bisect_right(starts, low)
        k1 = bisect.bisect_left(starts, high)

        def first_of(number: int) -> int:
            return low if number == 0 else starts[k0 + number - 1]

        own = bisect.bisect_right(starts, position, k0, k1) - k0
        earliest = times[first_of(own)] - window  # a span holding own starts no earlier
        if times[low] >= earliest:
            first_candidate = 0
        else:
            first_candidate = 1 + bisect.bisect_left(start_times, earliest, k0, k1) - k0
        best_first, best_count = own, 1
        # At most window / gap + 1 occurrences start within a window before the anchor's.
        for first in range(first_candidate, own + 1):
            reach = times[first_of(first)] + window
            last = 1 + bisect.bisect_right(start_times, reach, k0, k1) - k0
            if last - first > best_count:
                best_first, best_count = first, last - first
        self.visits += own + 1 - first_candidate + best_count
        firsts = [self.readings[first_of(n)] for n in range(best_first, best_first + best_count)]
        return best_count, firsts


class _EpisodeStream:
    """The readings of an advice episode's types, with what a walk back from each one meets.

    A walk back from the reading at ``p`` (:meth:`_ThresholdRun._episode`) stops at the
    first earlier reading ``j`` where the stream was silent for longer than ``max_gap``
    after ``j``, or where ``j`` ends a run of readings outside the condition that spans
    ``end_after`` from the run's latest reading before ``p``. Neither depends on where the
    walk started, except for the run just before ``p``, cut at ``p``. So one pass finds the
    latest stop at or before each index, and a walk is a few lookups.
    """

    def __init__(
        self,
        readings: list[ReadingFact],
        holds: list[bool],
        fires: list[bool],
        *,
        end_after: timedelta,
        max_gap: timedelta,
    ) -> None:
        n = len(readings)
        times = [r.time for r in readings]
        self.readings, self.times, self.holds, self.fires = readings, times, holds, fires
        self.end_after, self.max_gap = end_after, max_gap
        self.position = {r.id: i for i, r in enumerate(readings)}
        # For a reading outside the condition, the first and the last index of its run.
        self.run_start = list(range(n))
        for i in range(1, n):
            if not holds[i] and not holds[i - 1]:
                self.run_start[i] = self.run_start[i - 1]
        run_end = list(range(n))
        for i in range(n - 2, -1, -1):
            if not holds[i] and not holds[i + 1]:
                run_end[i] = run_end[i + 1]
        # The latest stop at or before each index: any stop, and a silence only.
        self.last_stop = [-1] * n
        self.last_silence = [-1] * n
        for i in range(n):
            silent = i + 1 < n and times[i + 1] - times[i] > max_gap
            recovered = not holds[i] and times[run_end[i]] - times[i] >= end_after
            before = i - 1 if i else -1
            self.last_silence[i] = i if silent else (self.last_silence[before] if i else -1)
            self.last_stop[i] = i if silent or recovered else (self.last_stop[before] if i else -1)
        # The first reading in the condition at or after each index (n: none).
        self.next_member = [n] * (n + 1)
        for i in range(n - 1, -1, -1):
            self.next_member[i] = i if holds[i] else self.next_member[i + 1]
        self.fires_before = [0]  # readings in the condition that fire the rule, before i
        for i in range(n):
            self.fires_before.append(self.fires_before[-1] + (holds[i] and fires[i]))
        # The lowest member: by value, then time, then the later reading (the walk meets it
        # first); readings outside the condition are never members.
        never = (_INFINITY,)
        keys: list[tuple[Any, ...]] = [
            (_canonical_value(r), r.time, -i) if holds[i] else never
            for i, r in enumerate(readings)
        ]
        self._nadir = RangeBest(keys)

    def walk_stop(self, position: int, lowest: int) -> int:
        """Return the index where a walk back from ``position`` stops (not a member).

        ``lowest`` is the earliest index the walk may reach (:data:`EPISODE_LOOKBACK`).
        """
        previous = position - 1
        # The run outside the condition just before the anchor is cut at the anchor.
        cut = self.run_start[previous] if previous >= 0 and not self.holds[previous] else position
        stop = self.last_stop[cut - 1] if cut > 0 else -1
        if cut < position:
            if self.last_silence[previous] >= cut:
                stop = max(stop, self.last_silence[previous])
            recovered = bisect.bisect_right(
                self.times, self.times[previous] - self.end_after, 0, position
            ) - 1
            if recovered >= cut:
                stop = max(stop, recovered)
        return max(stop, lowest - 1)

    def first_member(self, start: int, position: int) -> int:
        """Return the earliest member in ``[start, position]``: the episode's first reading."""
        return min(self.next_member[start], position)

    def member_fires(self, start: int, position: int) -> bool:
        """Tell whether an earlier member (in ``[start, position)``) fired the rule."""
        return self.fires_before[position] > self.fires_before[start]

    def nadir(self, start: int, position: int) -> ReadingFact:
        """Return the lowest member of the episode ``[start, position]`` (the anchor first)."""
        anchor = self.readings[position]
        if start >= position:
            return anchor
        best = self._nadir.best(start, position)
        if self._nadir.keys[best] < (_canonical_value(anchor), anchor.time, -position):
            return self.readings[best]
        return anchor


@dataclass(frozen=True)
class UnrunnableRule:
    """A rule of the plan that cannot run: the required parameters the plan does not set."""

    rule_id: str
    rule_version: int
    missing: tuple[str, ...]


def _missing_required(plan_rule: PlanRule, rule: Rule) -> tuple[str, ...]:
    return tuple(
        name for name, spec in rule.params.items() if spec.required and name not in plan_rule.params
    )


def unrunnable_rules(plan: PlanSpec, library: RuleLibrary) -> tuple[UnrunnableRule, ...]:
    """Return the plan's rules (not off) that lack a required parameter, by rule id."""
    found: dict[str, UnrunnableRule] = {}
    for plan_rule in plan.rules:
        rule = library.get(plan_rule.rule)
        if rule is None or rule.id in found:
            continue
        mode = RuleMode(plan_rule.mode) if plan_rule.mode is not None else rule.mode
        missing = _missing_required(plan_rule, rule)
        if mode is not RuleMode.off and missing:
            found[rule.id] = UnrunnableRule(rule.id, rule.version, missing)
    return tuple(found[rule_id] for rule_id in sorted(found))


def _runs(
    plan: PlanSpec, library: RuleLibrary, addressee: Addressee | None = None
) -> list[_Run]:
    if addressee is None:
        addressee = plan_addressee(plan)
    runs: dict[str, _Run] = {}
    for plan_rule in plan.rules:
        rule = library.get(plan_rule.rule)
        if rule is None or rule.id in runs:
            continue
        mode = RuleMode(plan_rule.mode) if plan_rule.mode is not None else rule.mode
        if mode is RuleMode.off or _missing_required(plan_rule, rule):
            continue  # a rule without its required parameters never runs on a default
        params = resolve_params(plan_rule, rule)
        run: _Run
        if isinstance(rule, ThresholdRule):
            run = _ThresholdRun(rule, mode, params, plan.version, addressee)
        elif isinstance(rule, MissingDataRule):
            run = _MissingRun(rule, mode, params, plan.version, addressee)
        elif isinstance(rule, CgmMetricRule):
            run = _CgmRun(rule, mode, params, plan.version, addressee)
        else:
            run = _ReadingRun(rule, mode, params, plan.version, addressee)
        runs[rule.id] = run
    return [runs[rule_id] for rule_id in sorted(runs)]


def plan_addressee(plan: PlanSpec, patient_name: str = "") -> Addressee:
    """Return an addressee whose care contact is the plan's ``contact`` (or none)."""
    contact = plan.contact
    if contact is None:
        return Addressee(patient_name=patient_name)
    care = CareContact(name=contact.name, role=contact.role, phone=contact.phone)
    return Addressee(patient_name=patient_name, contact=care)


def _reading_runs(
    plan: PlanSpec, library: RuleLibrary, addressee: Addressee | None = None
) -> list[_ReadingRun]:
    return [run for run in _runs(plan, library, addressee) if isinstance(run, _ReadingRun)]


def lookback(plan: PlanSpec, library: RuleLibrary) -> timedelta:
    """Return how far on BOTH sides of the new readings the evaluation must see.

    Load the readings in ``[earliest new − lookback, latest new + lookback]``: that covers
    the window of every new reading and of every later (or, for occurrence counts,
    earlier) anchor whose window a new reading falls into, which :func:`evaluate_run`
    re-evaluates.
    """
    longest = timedelta(0)
    for run in _reading_runs(plan, library):
        back, fwd = run.reach()
        longest = max(longest, back + fwd)
    return longest


def history_types(plan: PlanSpec, library: RuleLibrary, types: Iterable[str]) -> frozenset[str]:
    """Return the types whose history the evaluation of readings of these types reads.

    A rule counts readings of all its types (glucose-low: ``glucose`` and
    ``cgm_glucose``; a composite: every part's), so a new CGM reading needs the
    finger-prick history too.
    """
    wanted = set(types)
    related = set(wanted)
    for run in _reading_runs(plan, library):
        if wanted.intersection(run.rule.types):
            related.update(run.rule.types)
    return frozenset(related)


def reading_types(plan: PlanSpec, library: RuleLibrary) -> frozenset[str]:
    """Return the types a new reading of which can make :func:`evaluate` find anything.

    Time-based rules (missing data, CGM metrics) are left out: they read readings only in
    :func:`evaluate_due`, so a reading of a type only they name needs no evaluation.
    """
    return frozenset(t for run in _reading_runs(plan, library) for t in run.rule.types)


def _unique(readings: Iterable[ReadingFact]) -> list[ReadingFact]:
    by_id: dict[str, ReadingFact] = {}
    for reading in readings:
        seen = by_id.setdefault(reading.id, reading)
        if seen != reading:
            raise ValueError(f"two different readings share the id {reading.id!r}")
    return sorted(by_id.values(), key=lambda r: (r.time, r.id))


def evaluate_run(
    plan: PlanSpec,
    readings: Sequence[ReadingFact],
    *,
    new_reading_ids: Collection[str],
    now: datetime,
    library: RuleLibrary | None = None,
    tz: str | tzinfo = DEFAULT_TZ,
    removed: Sequence[ReadingFact] = (),
    addressee: Addressee | None = None,
) -> EvaluationRun:
    """Evaluate the new readings and every anchor whose window they (or ``removed``) touch.

    ``removed`` are readings that no longer count (entered in error): they are not in
    ``readings``; their own evaluations are reported as evaluated and not firing, and the
    anchors around them are re-evaluated. ``addressee`` names the patient and the care
    contact advice tells them to call (default: the plan's contact, :func:`plan_addressee`).
    """
    del now  # reading-anchored rules are a function of the readings alone
    return _evaluate_readings(
        plan,
        readings,
        frozenset(new_reading_ids),
        library,
        _zone(tz),
        removed,
        around=True,
        addressee=addressee,
    )


def _evaluate_readings(
    plan: PlanSpec,
    readings: Sequence[ReadingFact],
    new_ids: frozenset[str],
    library: RuleLibrary | None,
    zone: tzinfo,
    removed: Sequence[ReadingFact],
    *,
    around: bool,
    addressee: Addressee | None = None,
) -> EvaluationRun:
    """Evaluate the new readings, and (``around``) the anchors whose windows they touch."""
    library = load_library() if library is None else library
    ordered = _unique(readings)
    history = _History(ordered, zone)
    changed = [r for r in ordered if r.id in new_ids] + list(removed)
    runs = _reading_runs(plan, library, addressee)
    evaluated: set[tuple[str, str]] = set()
    # Every anchor touched is evaluated against every rule anchored there, so that
    # supersession between rules at one reading always sees all of them.
    targets: dict[str, ReadingFact] = {}
    for run in runs:
        back, fwd = run.reach()
        reached: list[tuple[datetime, datetime]] = []
        for reading in changed:
            if reading.type not in run.rule.types or spec_for(reading.type) is None:
                continue
            if reading.id not in new_ids:  # removed: its evaluations no longer fire
                evaluated.add((run.rule.id, reading.id))
            elif run.anchors(reading):
                targets[reading.id] = reading
            if around and (back or fwd):
                reached.append((reading.time - fwd, reading.time + back))
        # Overlapping reaches are read once: a day of CGM uploaded late is one pass.
        for start, end in _merged(reached):
            for other in history.between(run.rule.types, start, end):
                if other.id not in targets and run.anchors(other) and run.may_fire(other, history):
                    targets[other.id] = other
    by_anchor: dict[str, list[Finding]] = {}
    # In time order: the moving windows of the indexes then only move forward.
    for anchor in sorted(targets.values(), key=lambda r: (r.time, r.id)):
        for run in runs:
            if not run.anchors(anchor):
                continue
            evaluated.add((run.rule.id, anchor.id))
            finding = run.finding(anchor, history)
            if finding is not None:
                by_anchor.setdefault(anchor.id, []).append(finding)
    findings: list[Finding] = []
    for anchor_id in sorted(by_anchor, key=lambda i: (targets[i].time, i)):
        fired = sorted(by_anchor[anchor_id], key=lambda f: f.rule_id)
        findings.extend(_apply_supersession(fired, library))
    return EvaluationRun(
        findings=tuple(findings), evaluated=frozenset(evaluated), visits=history.visits
    )


def _merged(spans: Iterable[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """Return the union of closed time spans as disjoint spans, in order."""
    merged: list[tuple[datetime, datetime]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def evaluate(
    plan: PlanSpec,
    readings: Sequence[ReadingFact],
    *,
    new_reading_ids: Collection[str],
    now: datetime,
    library: RuleLibrary | None = None,
    tz: str | tzinfo = DEFAULT_TZ,
    addressee: Addressee | None = None,
) -> list[Finding]:
    """Check the new readings against the plan's rules; return a finding per firing.

    The findings anchored at the new readings only (:func:`evaluate_run` also re-evaluates
    the anchors around them). Give it the readings in ``[earliest new − lookback, latest
    new + lookback]``.
    """
    del now  # reading-anchored rules are a function of the readings alone
    new_ids = frozenset(new_reading_ids)
    run = _evaluate_readings(
        plan, readings, new_ids, library, _zone(tz), (), around=False, addressee=addressee
    )
    return list(run.findings)


def _apply_supersession(fired: list[Finding], library: RuleLibrary) -> list[Finding]:
    """Take advice and flag from findings an active, superseding finding speaks for."""
    speaker: dict[str, str] = {}
    for finding in fired:
        rule: Rule | None = library.get(finding.rule_id)
        if rule is None or finding.mode != RuleMode.active:
            continue
        for other in rule.supersedes:
            speaker.setdefault(other, finding.rule_id)
    return [
        replace(f, advice=None, flag_severity=None, superseded_by=speaker[f.rule_id])
        if f.rule_id in speaker
        else f
        for f in fired
    ]


# --- time-based rules ------------------------------------------------------------------------


@dataclass
class _TimeRun(_Run):
    """A rule anchored at local day starts."""

    def reach(self, plan: PlanSpec) -> timedelta:
        raise NotImplementedError

    def evaluate_at(
        self, day: datetime, plan: PlanSpec, history: _History
    ) -> tuple[list[tuple[str, str]], list[Finding]]:
        raise NotImplementedError

    def _time_finding(
        self,
        day: datetime,
        *,
        scope: str | None,
        used: Sequence[ReadingFact],
        computed: Mapping[str, str],
        thresholds: Mapping[str, Mapping[str, str]],
        severity: str | None,
        values: Mapping[str, str],
        reasons: Mapping[str, str],
    ) -> Finding:
        return Finding(
            rule_id=self.rule.id,
            rule_version=self.rule.version,
            plan_version=self.plan_version,
            mode=self.mode,
            anchor_reading_id=None,
            anchor_time=day,
            scope=scope,
            reading_ids=tuple(r.id for r in used),
            computed=MappingProxyType(dict(computed)),
            thresholds=MappingProxyType(dict(thresholds)),
            advice=self._advice(self.rule.advice, values),
            flag_severity=severity,
            cooldown_minutes=self.rule.cooldown_minutes,
            readings=tuple(used),
            summary=MappingProxyType(
                {
                    lang: f"{self.rule.title.get(lang)}: {values[lang]} ({reasons[lang]})."
                    for lang in LANGUAGES
                }
            ),
        )


def _schedule_days(plan: PlanSpec) -> dict[str, int]:
    """Return each scheduled type's interval in days (the shortest of its entries)."""
    days: dict[str, int] = {}
    for entry in plan.schedule:
        interval = SCHEDULE_INTERVAL_DAYS[entry.days]
        days[entry.type] = min(days.get(entry.type, interval), interval)
    return days


def _spoken_list(words: Sequence[str], lang: str) -> str:
    """Words as a sentence lists them: "vikt, blodtryck och puls"."""
    if len(words) <= 1:
        return "".join(words)
    return f"{', '.join(words[:-1])} {'och' if lang == 'sv' else 'and'} {words[-1]}"


def reminder_order(plan: PlanSpec, rule: Rule, types: Iterable[str]) -> list[str]:
    """Return missing types in the order a reminder names them.

    First the types of each ``first_when`` entry of the rule whose rules the plan lists
    (and does not switch off), entries in their order: weight first in a heart-failure
    plan. Then the rest in the order of the plan's schedule.
    """
    wanted = list(dict.fromkeys(types))
    listed = {
        r.rule for r in plan.rules if r.mode is None or RuleMode(r.mode) is not RuleMode.off
    }
    ordered: list[str] = []
    if isinstance(rule, MissingDataRule):
        for entry in rule.first_when:
            if listed.intersection(entry.rules):
                ordered += [t for t in entry.types if t in wanted and t not in ordered]
    scheduled = list(dict.fromkeys(str(entry.type) for entry in plan.schedule))
    rest = [t for t in wanted if t not in ordered]
    rest.sort(key=lambda t: (scheduled.index(t) if t in scheduled else len(scheduled), t))
    return ordered + rest


@dataclass
class _MissingRun(_TimeRun):
    """missing_data: at a local day start, the scheduled types without recent readings."""

    def _days(self, interval: int) -> tuple[int, int]:
        """Return (days before the advice, days before the flag) for a schedule interval."""
        rule = self.rule
        assert isinstance(rule, MissingDataRule)
        advice_days = int(_number(self.params, rule.intervals)) * interval
        flag_days = advice_days
        if rule.flag_after_days is not None:
            flag_days += int(_number(self.params, rule.flag_after_days))
        return advice_days, flag_days

    def reach(self, plan: PlanSpec) -> timedelta:
        longest = 0
        for type_name, interval in _schedule_days(plan).items():
            if type_name in self.rule.types:
                longest = max(longest, max(self._days(interval)))
        return timedelta(days=longest) + _DST_MARGIN

    def evaluate_at(
        self, day: datetime, plan: PlanSpec, history: _History
    ) -> tuple[list[tuple[str, str]], list[Finding]]:
        keys: list[tuple[str, str]] = []
        findings: list[Finding] = []
        for type_name, interval in sorted(_schedule_days(plan).items()):
            if type_name not in self.rule.types:
                continue
            advice_days, flag_days = self._days(interval)
            since = local_day_start(day, history.tz, advice_days)
            if plan.effective_from is not None and since < plan.effective_from:
                continue  # the plan was not in force for the whole gap
            keys.append((self.rule.id, anchor_key(None, day, type_name)))
            if history.between([type_name], since, day, end_open=True):
                continue
            flag_since = local_day_start(day, history.tz, flag_days)
            flagged = (
                self.rule.flag is not None
                and (plan.effective_from is None or flag_since >= plan.effective_from)
                and not history.between([type_name], flag_since, day, end_open=True)
            )
            names = _TYPE_NAMES.get(type_name, {"sv": type_name, "en": type_name})
            thresholds: dict[str, Mapping[str, str]] = {
                "days_without": {"value": str(advice_days), "unit": "d"},
                "interval": {"value": str(interval), "unit": "d"},
            }
            if flag_days != advice_days:
                thresholds["days_before_flag"] = {"value": str(flag_days), "unit": "d"}
            findings.append(
                self._time_finding(
                    day,
                    scope=type_name,
                    used=(),
                    computed={
                        "type": type_name,
                        "window_start": since.isoformat(),
                        "window_end": day.isoformat(),
                        "readings_in_window": "0",
                    },
                    thresholds=thresholds,
                    severity=self.rule.flag.severity if flagged and self.rule.flag else None,
                    values=names,
                    reasons={
                        "sv": f"ingen mätning på {advice_days} dygn",
                        "en": f"no reading for {advice_days} days",
                    },
                )
            )
        if findings and self.rule.advice is not None:
            findings = self._one_reminder(findings, plan)
        return keys, findings

    def _one_reminder(self, findings: list[Finding], plan: PlanSpec) -> list[Finding]:
        """One reminder naming every missing type, carried by the first type's finding."""
        order = reminder_order(plan, self.rule, [f.scope or "" for f in findings])
        first = min(findings, key=lambda f: order.index(f.scope or ""))
        names = {
            lang: _spoken_list(
                [_TYPE_NAMES.get(t, {"sv": t, "en": t})[lang] for t in order], lang
            )
            for lang in LANGUAGES
        }
        advice = self._advice(self.rule.advice, names)
        return [replace(f, advice=advice if f is first else None) for f in findings]


@dataclass
class _CgmRun(_TimeRun):
    """cgm_metric: at a local day start, the metrics of the whole local days before it."""

    def _window_days(self) -> int:
        rule = self.rule
        assert isinstance(rule, CgmMetricRule)
        return int(_number(self.params, rule.window))

    def reach(self, plan: PlanSpec) -> timedelta:
        return timedelta(days=self._window_days()) + _DST_MARGIN

    def evaluate_at(
        self, day: datetime, plan: PlanSpec, history: _History
    ) -> tuple[list[tuple[str, str]], list[Finding]]:
        rule = self.rule
        assert isinstance(rule, CgmMetricRule)
        key = (rule.id, anchor_key(None, day))
        start = local_day_start(day, history.tz, self._window_days())
        window_key = ("cgm", start.isoformat(), day.isoformat())  # a shared window: once
        if window_key not in history.cache:
            readings = history.between(rule.types, start, day, end_open=True)
            samples = cgm.samples_from_readings(readings)
            history.cache[window_key] = cgm.cgm_metrics(samples, start=start, end=day)
        metrics: cgm.CgmMetrics = history.cache[window_key]
        wear = metrics.exact("wear") or Fraction(0)
        min_wear = _number(self.params, rule.min_wear)
        computed: dict[str, str] = {
            "window_start": start.isoformat(),
            "window_end": day.isoformat(),
            "n": str(metrics.n),
            "interval_minutes": str(metrics.interval_minutes),
            "wear_percent": decimal_text(_round(wear, 1)),
        }
        thresholds: dict[str, Mapping[str, str]] = {
            rule.window: _param_json(self.params[rule.window]),
            rule.min_wear: _param_json(self.params[rule.min_wear]),
        }
        if metrics.n == 0 or wear < Fraction(min_wear):
            return [key], []
        for metric in ("tir", "tbr_3_9", "tbr_3_0", "tar_10_0", "tar_13_9", "gri"):
            value = metrics.exact(metric)
            if value is not None:
                computed[metric] = decimal_text(_round(value, 1))
        if metrics.mean is not None:
            computed["mean_mmol_l"] = decimal_text(_round(Decimal(repr(metrics.mean)), 1))
        if metrics.cv is not None:
            computed["cv"] = decimal_text(_round(Decimal(repr(metrics.cv)), 1))
        if metrics.gmi_mmol_mol is not None:
            computed["gmi_mmol_mol"] = decimal_text(cgm.round_half_up(metrics.gmi_mmol_mol, 0))
        held: list[tuple[str, Fraction, Decimal, str]] = []
        results: list[bool] = []
        for condition in rule.conditions:
            value = metrics.exact(condition.metric)
            threshold = _number(self.params, condition.param)
            thresholds[condition.param] = _param_json(self.params[condition.param])
            holds = value is not None and condition.op.holds(value, Fraction(threshold))
            results.append(holds)
            if holds and value is not None:
                held.append((condition.metric, value, threshold, condition.op.symbol))
        fires = any(results) if rule.match is Match.any else all(results)
        if not fires:
            return [key], []
        metric, value, threshold, symbol = held[0]
        values = {lang: f"{number_text(_round(value, 1), lang)} %" for lang in LANGUAGES}
        reasons = {
            lang: "; ".join(
                f"{_METRIC_NAMES[m][lang]} {number_text(_round(v, 1), lang)} % {s} "
                f"{number_text(t, lang)} %"
                for m, v, t, s in held
            )
            for lang in LANGUAGES
        }
        finding = self._time_finding(
            day,
            scope=None,
            used=(),
            computed=computed,
            thresholds=thresholds,
            severity=rule.flag.severity if rule.flag is not None else None,
            values=values,
            reasons=reasons,
        )
        return [key], [finding]


def _time_runs(
    plan: PlanSpec, library: RuleLibrary, addressee: Addressee | None = None
) -> list[_TimeRun]:
    return [run for run in _runs(plan, library, addressee) if isinstance(run, _TimeRun)]


def due_lookback(plan: PlanSpec, library: RuleLibrary) -> timedelta:
    """Return how much history before the earliest due anchor time-based rules read."""
    return max((run.reach(plan) for run in _time_runs(plan, library)), default=timedelta(0))


def due_anchors(
    *, now: datetime, tz: str | tzinfo = DEFAULT_TZ, since: datetime | None = None
) -> list[datetime]:
    """Return the local day starts due at ``now``: those in ``(since, now]``, oldest first.

    Without ``since``, only the latest day start at or before ``now``.
    """
    zone = _zone(tz)
    latest = local_day_start(now, zone)
    if since is None or since >= latest:
        return [latest]
    days: list[datetime] = []
    back = 0
    while (day := local_day_start(now, zone, back)) > since:
        days.append(day)
        back += 1
    return sorted(days)


def evaluate_due_run(
    plan: PlanSpec,
    readings: Sequence[ReadingFact],
    *,
    now: datetime,
    tz: str | tzinfo = DEFAULT_TZ,
    library: RuleLibrary | None = None,
    since: datetime | None = None,
    addressee: Addressee | None = None,
) -> EvaluationRun:
    """Evaluate the time-based rules at every due anchor; report each key evaluated."""
    library = load_library() if library is None else library
    zone = _zone(tz)
    history = _History(_unique(readings), zone)
    evaluated: set[tuple[str, str]] = set()
    findings: list[Finding] = []
    runs = _time_runs(plan, library, addressee)
    for day in due_anchors(now=now, tz=zone, since=since):
        for run in runs:
            keys, fired = run.evaluate_at(day, plan, history)
            evaluated.update(keys)
            findings.extend(fired)
    findings.sort(key=lambda f: (f.anchor_time, f.scope or "", f.rule_id))
    return EvaluationRun(findings=tuple(findings), evaluated=frozenset(evaluated))


def evaluate_due(
    plan: PlanSpec,
    readings: Sequence[ReadingFact],
    *,
    now: datetime,
    tz: str | tzinfo = DEFAULT_TZ,
    library: RuleLibrary | None = None,
    since: datetime | None = None,
    addressee: Addressee | None = None,
) -> list[Finding]:
    """Evaluate the time-based rules (missing data, CGM metrics) that are due at ``now``.

    Due means: anchored at a start of the patient's local day (zone ``tz``) that has
    passed. Without ``since`` that is the latest day start at or before ``now``; with it,
    every day start in ``(since, now]``. An anchor ``d`` reads only readings before ``d``
    (the ``W`` whole local days before it), so its result never changes with ``now``:
    running this hourly returns the same findings with the same keys until the next
    local midnight, and a late reading timed before ``d`` changes (or retracts) the result
    for ``d`` when ``d`` is evaluated again (pass ``since`` to re-evaluate past days).
    Pass the readings in ``[earliest anchor − due_lookback, now]``.
    """
    run = evaluate_due_run(
        plan, readings, now=now, tz=tz, library=library, since=since, addressee=addressee
    )
    return list(run.findings)


__all__ = [
    "DEFAULT_TZ",
    "LANGUAGES",
    "SCHEDULE_INTERVAL_DAYS",
    "AdviceText",
    "EvaluationRun",
    "Finding",
    "UnrunnableRule",
    "anchor_key",
    "due_anchors",
    "due_lookback",
    "evaluate",
    "evaluate_due",
    "evaluate_due_run",
    "evaluate_run",
    "history_types",
    "local_day_start",
    "lookback",
    "plan_addressee",
    "reading_types",
    "reminder_order",
    "number_text",
    "reading_text",
    "unrunnable_rules",
]
