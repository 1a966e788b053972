"""The evaluator: findings from a plan, the new readings and their history.

Semantics of units, edges, windows and ties:

* Rules. Only the rules a plan lists are evaluated; the plan's ``mode`` overrides the
  rule's own, and ``off`` skips the rule. A plan rule missing from the library is skipped;
  a plan parameter the rule does not know is ignored (:func:`rules.model.resolve_params`).
* Anchors. Every reading whose id is in ``new_reading_ids`` is checked against every
  evaluated rule whose ``types`` hold its type; the rule fires when its conditions hold
  (``match: any`` — one is enough; ``all`` — every one). A finding is one firing.
* Units. A threshold is compared in the unit it is given in. When the reading's original
  unit is a unit for which the parameter has a value — its own unit or, while the value is
  the published one, a published equivalent — the ORIGINAL value is compared with that
  number. Otherwise the original value is converted to the parameter's unit (through the
  canonical unit, 6 decimal places) and compared. Synonyms count as the same unit
  (``mmHg``/``mm[Hg]``, ``mg/dl``/``mg/dL``). So 70 mg/dL is not < 70 mg/dL and
  3.9 mmol/L is not < 3.9 mmol/L, though 70 mg/dL converts to 3.8855 mmol/L. A plan
  override replaces the published pair: only its own number and unit remain.
* Edges. ``lt``/``gt`` are strict, ``le``/``ge`` include the threshold. A reading that
  lacks a component a condition names does not satisfy that condition.
* Occurrence windows (``flag.min_count`` > 1). The readings of the rule's types within
  ``window_hours`` before or after the anchor (inclusive) on which the rule fires are
  chained into occurrences: a reading at most ``episode_minutes`` after the previous one
  belongs to the same occurrence. An occurrence's time is its first reading's. The flag
  is raised when some span of ``window_hours`` (inclusive at both ends) that contains the
  anchor's occurrence holds at least ``min_count`` occurrences. The result depends only on
  the set of readings given, never on their order or on which call they arrive in; so the
  app passes the history from ``lookback`` before the earliest new reading up to the
  newest one it has.
* Escalation. A raised flag takes the escalation's severity when every ``requires`` flag
  parameter is true and its conditions hold (``match``, default all).
* Supersession. When an active rule that ``supersedes`` another fires on the same reading,
  the other rule's finding keeps its record but loses its advice and flag.
* Monitor mode. Findings carry ``mode``; the app records monitor findings but sends no
  advice and raises no flag for them.
* Ties and order. Readings are unique by id. Findings come ordered by the anchor's time,
  then its id, then the rule id.
* Time. ``now`` is a parameter, never the clock; single-reading rules do not use it.
"""

from __future__ import annotations

import bisect
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from string import Template
from types import MappingProxyType
from typing import Any

from rules.catalogue import (
    convert,
    decimal_text,
    display_unit,
    is_accepted_unit,
    spec_for,
)
from rules.facts import ReadingFact
from rules.model import (
    Condition,
    Match,
    ResolvedParam,
    Rule,
    RuleLibrary,
    RuleMode,
    Severity,
    ThresholdRule,
    load_library,
    resolve_params,
)
from rules.plan import PlanSpec

LANGUAGES = ("sv", "en")
"""The languages every text is given in; the first is the default."""

_COMPONENT_NAMES: Mapping[str, Mapping[str, str]] = {
    "systolic": {"sv": "övertryck", "en": "systolic"},
    "diastolic": {"sv": "undertryck", "en": "diastolic"},
}
_SEVERITY_NAMES: Mapping[str, Mapping[str, str]] = {
    "high": {"sv": "hög", "en": "high"},
    "moderate": {"sv": "måttlig", "en": "moderate"},
    "low": {"sv": "låg", "en": "low"},
}


@dataclass(frozen=True)
class AdviceText:
    """Advice to the patient, filled in for one reading, in every language."""

    priority: str
    title: Mapping[str, str]
    body: Mapping[str, str]


@dataclass(frozen=True)
class Finding:
    """One firing of one rule on one new reading, with everything needed to explain it."""

    rule_id: str
    rule_version: int
    plan_version: int
    mode: str
    anchor_reading_id: str
    reading_ids: tuple[str, ...]
    computed: Mapping[str, str]
    thresholds: Mapping[str, Mapping[str, str]]
    advice: AdviceText | None
    flag_severity: str | None
    cooldown_minutes: int
    readings: tuple[ReadingFact, ...] = field(default=(), compare=False, repr=False)
    summary: Mapping[str, str] = field(default_factory=dict)
    superseded_by: str | None = None

    def explanation(self) -> dict[str, Any]:
        """Return why the rule fired, as JSON-able data for the flag and the audit."""
        explanation: dict[str, Any] = {
            "rule": {"id": self.rule_id, "version": self.rule_version},
            "plan_version": self.plan_version,
            "mode": self.mode,
            "anchor_reading_id": self.anchor_reading_id,
            "readings": [_reading_json(reading) for reading in self.readings],
            "computed": dict(self.computed),
            "thresholds": {name: dict(value) for name, value in self.thresholds.items()},
            "flag_severity": self.flag_severity,
            "summary": dict(self.summary),
        }
        if self.superseded_by is not None:
            explanation["superseded_by"] = self.superseded_by
        return explanation


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
    return data


def number_text(value: Decimal, lang: str) -> str:
    """Return a number as people read it: ``3,8`` in Swedish, ``3.8`` in English."""
    text = decimal_text(value)
    return text.replace(".", ",") if lang == "sv" else text


def _with_unit(number: str, unit: str) -> str:
    shown = display_unit(unit)
    return f"{number} {shown}" if shown else number


def reading_text(reading: ReadingFact, lang: str) -> str:
    """Return a reading as measured, e.g. ``185/100 mmHg`` or ``3,8 mmol/L``."""
    values, unit = reading.original_values, reading.original_unit
    if not display_unit(unit) and display_unit(reading.unit):
        values, unit = reading.values, reading.unit  # a fraction shows as a percentage
    if "systolic" in values and "diastolic" in values:
        number = f"{number_text(values['systolic'], lang)}/{number_text(values['diastolic'], lang)}"
    else:
        number = "/".join(number_text(v, lang) for v in values.values())
    return _with_unit(number, unit)


# --- comparing one reading with one rule ---------------------------------------------------


@dataclass(frozen=True)
class _Comparison:
    held: bool
    component: str
    value: Decimal
    threshold: Decimal
    unit: str
    condition: Condition


def _compare(
    reading: ReadingFact, condition: Condition, param: ResolvedParam
) -> _Comparison | None:
    """Compare one component of a reading with a parameter (None: nothing to compare)."""
    component = condition.component
    type_name = reading.type
    original = reading.original_values.get(component)
    published = param.published_in(type_name, reading.original_unit)
    if original is not None and published is not None:
        value, threshold, unit = original, published, reading.original_unit
    else:
        if param.unit is None or isinstance(param.value, bool):
            return None
        unit = param.unit
        if original is not None and is_accepted_unit(type_name, reading.original_unit):
            value = convert(type_name, original, reading.original_unit, unit)
        elif component in reading.values:
            value = convert(type_name, reading.values[component], reading.unit, unit)
        else:
            return None
        threshold = param.number_in(type_name, unit)
    return _Comparison(
        held=condition.op.holds(value, threshold),
        component=component,
        value=value,
        threshold=threshold,
        unit=unit,
        condition=condition,
    )


def _conditions_hold(comparisons: Sequence[_Comparison | None], match: Match) -> bool:
    held = [c is not None and c.held for c in comparisons]
    return any(held) if match is Match.any else bool(held) and all(held)


@dataclass(frozen=True)
class _RuleRun:
    """One rule of one plan, with its parameters resolved, ready to check readings."""

    rule: ThresholdRule
    mode: RuleMode
    params: Mapping[str, ResolvedParam]
    plan_version: int

    def comparisons(
        self, reading: ReadingFact, conditions: Iterable[Condition]
    ) -> list[_Comparison | None]:
        return [_compare(reading, c, self.params[c.param]) for c in conditions]

    def fires(self, reading: ReadingFact) -> bool:
        if reading.type not in self.rule.types:
            return False
        comparisons = self.comparisons(reading, self.rule.conditions)
        return _conditions_hold(comparisons, self.rule.match)

    def finding(self, anchor: ReadingFact, history: _History) -> Finding | None:
        rule = self.rule
        comparisons = self.comparisons(anchor, rule.conditions)
        if not _conditions_hold(comparisons, rule.match):
            return None
        computed: dict[str, str] = {}
        thresholds: dict[str, Mapping[str, str]] = {}
        _note(comparisons, computed, thresholds)
        used: list[ReadingFact] = [anchor]
        severity: Severity | None = None
        count: int | None = None
        if rule.flag is not None:
            severity = rule.flag.severity
            if rule.flag.min_count > 1 and rule.flag.window_hours is not None:
                window = timedelta(hours=rule.flag.window_hours)
                gap = timedelta(minutes=rule.flag.episode_minutes)
                count, used = history.occurrences(self, anchor, window, gap)
                computed["count_in_window"] = str(count)
                thresholds["min_count"] = {"value": str(rule.flag.min_count)}
                thresholds["window_hours"] = {
                    "value": str(rule.flag.window_hours),
                    "unit": "h",
                }
                if count < rule.flag.min_count:
                    severity = None
            escalation = rule.flag.escalate
            if escalation is not None:
                required = {name: self.params[name].value for name in escalation.requires}
                for name, flag_value in required.items():
                    thresholds[name] = {"value": "true" if flag_value else "false"}
                raised = self.comparisons(anchor, escalation.conditions)
                _note(raised, computed, thresholds)
                escalates = all(v is True for v in required.values()) and (
                    not escalation.conditions or _conditions_hold(raised, escalation.match)
                )
                if severity is not None and escalates:
                    severity = escalation.severity
        return Finding(
            rule_id=rule.id,
            rule_version=rule.version,
            plan_version=self.plan_version,
            mode=self.mode,
            anchor_reading_id=anchor.id,
            reading_ids=tuple(r.id for r in used),
            computed=MappingProxyType(computed),
            thresholds=MappingProxyType(thresholds),
            advice=self._advice(anchor),
            flag_severity=severity,
            cooldown_minutes=rule.cooldown_minutes,
            readings=tuple(used),
            summary=MappingProxyType(self._summary(anchor, comparisons, count)),
        )

    def _advice(self, anchor: ReadingFact) -> AdviceText | None:
        advice = self.rule.advice
        if advice is None:
            return None
        values = {lang: reading_text(anchor, lang) for lang in LANGUAGES}
        return AdviceText(
            priority=advice.priority,
            title=MappingProxyType(
                {
                    lang: Template(advice.title.get(lang)).safe_substitute(value=values[lang])
                    for lang in LANGUAGES
                }
            ),
            body=MappingProxyType(
                {
                    lang: Template(advice.body.get(lang)).safe_substitute(value=values[lang])
                    for lang in LANGUAGES
                }
            ),
        )

    def _summary(
        self,
        anchor: ReadingFact,
        comparisons: Sequence[_Comparison | None],
        count: int | None,
    ) -> dict[str, str]:
        summary: dict[str, str] = {}
        for lang in LANGUAGES:
            reasons = [_reason(c, lang) for c in comparisons if c is not None and c.held]
            text = (
                f"{self.rule.title.get(lang)}: {reading_text(anchor, lang)} ({'; '.join(reasons)})."
            )
            flag = self.rule.flag
            if count is not None and flag is not None:
                hours = flag.window_hours
                text += (
                    f" {count} tillfällen inom {hours} timmar (flagga vid minst {flag.min_count})."
                    if lang == "sv"
                    else f" {count} occurrences within {hours} hours (flag at "
                    f"{flag.min_count} or more)."
                )
            summary[lang] = text
        return summary


def _reason(comparison: _Comparison, lang: str) -> str:
    name = _COMPONENT_NAMES.get(comparison.component, {}).get(lang)
    value = number_text(comparison.value, lang)
    threshold = _with_unit(number_text(comparison.threshold, lang), comparison.unit)
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


class _History:
    """The readings of one evaluation, sorted by time, for occurrence windows."""

    def __init__(self, readings: Sequence[ReadingFact]) -> None:
        self.readings = readings
        self.times = [r.time for r in readings]
        # (rule id, reading id) -> fires; a CGM week is checked once, not once per low.
        self._fires: dict[tuple[str, str], bool] = {}

    def fires(self, run: _RuleRun, reading: ReadingFact) -> bool:
        key = (run.rule.id, reading.id)
        if key not in self._fires:
            self._fires[key] = run.fires(reading)
        return self._fires[key]

    def between(self, start: datetime, end: datetime) -> Sequence[ReadingFact]:
        low = bisect.bisect_left(self.times, start)
        high = bisect.bisect_right(self.times, end)
        return self.readings[low:high]

    def occurrences(
        self,
        run: _RuleRun,
        anchor: ReadingFact,
        window: timedelta,
        gap: timedelta,
    ) -> tuple[int, list[ReadingFact]]:
        """Return the most occurrences in a window span holding the anchor's, and theirs."""
        firing = [
            r
            for r in self.between(anchor.time - window, anchor.time + window)
            if r.id == anchor.id or self.fires(run, r)
        ]
        episodes: list[list[ReadingFact]] = []
        for reading in firing:
            if episodes and reading.time - episodes[-1][-1].time <= gap:
                episodes[-1].append(reading)
            else:
                episodes.append([reading])
        starts = [episode[0].time for episode in episodes]
        own = next(i for i, e in enumerate(episodes) if any(r.id == anchor.id for r in e))
        best: list[int] = [own]
        for first in range(own + 1):
            if starts[first] < starts[own] - window:
                continue
            last = bisect.bisect_right(starts, starts[first] + window)
            members = list(range(first, last))
            if len(members) > len(best):
                best = members
        used = [reading for i in best for reading in episodes[i]]
        return len(best), used


def _runs(plan: PlanSpec, library: RuleLibrary) -> list[_RuleRun]:
    runs: dict[str, _RuleRun] = {}
    for plan_rule in plan.rules:
        rule = library.get(plan_rule.rule)
        if rule is None or rule.id in runs:
            continue
        mode = RuleMode(plan_rule.mode) if plan_rule.mode is not None else rule.mode
        if mode is RuleMode.off:
            continue
        runs[rule.id] = _RuleRun(
            rule=rule,
            mode=mode,
            params=resolve_params(plan_rule, rule),
            plan_version=plan.version,
        )
    return [runs[rule_id] for rule_id in sorted(runs)]


def lookback(plan: PlanSpec, library: RuleLibrary) -> timedelta:
    """Return how much history before the earliest new reading the evaluation needs."""
    longest = timedelta(0)
    for run in _runs(plan, library):
        flag = run.rule.flag
        if flag is not None and flag.window_hours is not None:
            longest = max(longest, timedelta(hours=flag.window_hours))
    return longest


def history_types(plan: PlanSpec, library: RuleLibrary, types: Iterable[str]) -> frozenset[str]:
    """Return the types whose history the evaluation of readings of these types reads.

    A rule counts readings of all its types (glucose-low: ``glucose`` and
    ``cgm_glucose``), so a new CGM reading needs the finger-prick history too.
    """
    wanted = set(types)
    related = set(wanted)
    for run in _runs(plan, library):
        if wanted.intersection(run.rule.types):
            related.update(run.rule.types)
    return frozenset(related)


def _unique(readings: Iterable[ReadingFact]) -> list[ReadingFact]:
    by_id: dict[str, ReadingFact] = {}
    for reading in readings:
        seen = by_id.setdefault(reading.id, reading)
        if seen != reading:
            raise ValueError(f"two different readings share the id {reading.id!r}")
    return sorted(by_id.values(), key=lambda r: (r.time, r.id))


def evaluate(
    plan: PlanSpec,
    readings: Sequence[ReadingFact],
    *,
    new_reading_ids: Collection[str],
    now: datetime,
    library: RuleLibrary | None = None,
) -> list[Finding]:
    """Check the new readings against the plan's rules; return a finding per firing."""
    del now  # reserved for rules about staleness; single-reading rules do not need it
    library = load_library() if library is None else library
    ordered = _unique(readings)
    history = _History(ordered)
    new_ids = frozenset(new_reading_ids)
    anchors = [r for r in ordered if r.id in new_ids and spec_for(r.type) is not None]
    runs = _runs(plan, library)
    findings: list[Finding] = []
    for anchor in anchors:
        fired = [
            finding
            for run in runs
            if anchor.type in run.rule.types
            and (finding := run.finding(anchor, history)) is not None
        ]
        findings.extend(_apply_supersession(fired, library))
    return findings


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


__all__ = [
    "LANGUAGES",
    "AdviceText",
    "Finding",
    "evaluate",
    "history_types",
    "lookback",
    "number_text",
    "reading_text",
]
