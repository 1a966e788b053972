"""Reading-anchored evaluation, the entry points: :func:`evaluate_run` and :func:`evaluate`."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta, tzinfo

from rules.advice import Addressee
from rules.catalogue import spec_for
from rules.engine.days import DEFAULT_TZ, zone_of
from rules.engine.findings import EvaluationRun, Finding
from rules.engine.history import History
from rules.engine.runs import ReadingRun
from rules.engine.selection import reading_runs
from rules.facts import ReadingFact
from rules.language import Rule, RuleLibrary, RuleMode, load_library
from rules.plan import PlanSpec

# Given evaluation keys (rule id, anchor), return those whose firing is already recorded.
Recorded = Callable[[Collection[tuple[str, str]]], Collection[tuple[str, str]]]


def unique_readings(readings: Iterable[ReadingFact]) -> list[ReadingFact]:
    """Return the readings once each, in (time, id) order; two different ones with one id fail."""
    by_id: dict[str, ReadingFact] = {}
    for reading in readings:
        seen = by_id.setdefault(reading.id, reading)
        # Identity first: a dataclass's == compares every field, even of the same object.
        if seen is not reading and seen != reading:
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
    recorded: Recorded | None = None,
) -> EvaluationRun:
    """Evaluate the new readings and every anchor whose window they (or ``removed``) touch.

    ``removed`` are readings that no longer count (entered in error): they are not in
    ``readings``; their own evaluations are reported as evaluated and not firing, and the
    anchors around them are re-evaluated. ``addressee`` names the patient and the care
    contact advice tells them to call (default: the plan's contact, :func:`plan_addressee`).
    ``recorded`` tells which re-evaluated keys fired before: where such a key still fires it
    goes to ``still_firing`` without a finding, since a recorded firing is never recorded
    again (a late reading in a dense week would otherwise explain thousands of windows).
    """
    del now  # reading-anchored rules are a function of the readings alone
    return _evaluate_readings(
        plan,
        readings,
        frozenset(new_reading_ids),
        library,
        zone_of(tz),
        removed,
        around=True,
        addressee=addressee,
        recorded=recorded,
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
    recorded: Recorded | None = None,
) -> EvaluationRun:
    """Evaluate the new readings, and (``around``) the anchors whose windows they touch."""
    library = load_library() if library is None else library
    ordered = unique_readings(readings)
    history = History(ordered, zone)
    changed = [r for r in ordered if r.id in new_ids] + list(removed)
    runs = reading_runs(plan, library, addressee)
    evaluated: set[tuple[str, str]] = set()
    # Every anchor touched is evaluated against every rule anchored there, so that
    # supersession between rules at one reading always sees all of them.
    targets: dict[str, ReadingFact] = {}
    needed = _Span()
    for run in runs:
        reached: list[tuple[datetime, datetime]] = []
        for reading in changed:
            if reading.type not in run.rule.types or spec_for(reading.type) is None:
                continue
            if reading.id not in new_ids:  # removed: its evaluations no longer fire
                evaluated.add((run.rule.id, reading.id))
            elif run.anchors(reading):
                targets[reading.id] = reading
            if not around:
                continue
            back, fwd = run.reach_of(reading, history)
            if back or fwd:
                reached.append((reading.time - fwd, reading.time + back))
                needed.add(reading.time - fwd, reading.time + back)
        # Overlapping reaches are read once: a day of CGM uploaded late is one pass.
        for start, end in _merged(reached):
            for other in history.between(run.rule.types, start, end):
                if other.id not in targets and run.anchors(other) and run.may_fire(other, history):
                    targets[other.id] = other
    ordered_targets = sorted(targets.values(), key=lambda r: (r.time, r.id))
    anchored = _Anchored(runs)
    asked, fired_before = _recorded_around(anchored, ordered_targets, new_ids, recorded)
    by_anchor: dict[str, list[Finding]] = {}
    still: dict[str, list[tuple[str, RuleMode]]] = {}  # per anchor: rules still firing
    for run in runs:  # what can be told of all anchors at once (a dense week's windows)
        run.prepare(ordered_targets, history)
    # In time order: the moving windows of the indexes then only move forward.
    for anchor in ordered_targets:
        for run in anchored.at(anchor):
            key = (run.rule.id, anchor.id)
            evaluated.add(key)
            if key in fired_before:
                if run.holds(anchor, history):
                    still.setdefault(anchor.id, []).append((run.rule.id, run.mode))
                needed.around(anchor, run.read_reach(anchor, history, explained=False))
                continue
            finding = run.finding(anchor, history)
            needed.around(anchor, run.read_reach(anchor, history, explained=True))
            if finding is not None:
                by_anchor.setdefault(anchor.id, []).append(finding)
    findings: list[Finding] = []
    for anchor_id in sorted(by_anchor, key=lambda i: (targets[i].time, i)):
        fired = sorted(by_anchor[anchor_id], key=lambda f: f.rule_id)
        findings.extend(_apply_supersession(fired, library, still.get(anchor_id, ())))
    return EvaluationRun(
        findings=tuple(findings),
        evaluated=frozenset(evaluated),
        still_firing=frozenset(
            (rule_id, anchor_id) for anchor_id, rules in still.items() for rule_id, _ in rules
        ),
        unfired_before=asked - fired_before,
        visits=history.visits,
        needed=needed.span,
    )


class _Span:
    """The smallest span of times holding every range added."""

    def __init__(self) -> None:
        self._span: tuple[datetime, datetime] | None = None
        # Per reach, the earliest and latest anchor: a dense week re-checks ten thousand
        # anchors with two or three reaches, and widening the span per anchor was a twentieth
        # of such a sync. The span is made from these when asked for.
        self._anchors: dict[tuple[timedelta, timedelta], list[datetime]] = {}

    @property
    def span(self) -> tuple[datetime, datetime] | None:
        """Return the span, or None when nothing was added."""
        spans = [] if self._span is None else [self._span]
        spans += [
            (first - back, last + fwd) for (back, fwd), (first, last) in self._anchors.items()
        ]
        if not spans:
            return None
        return min(start for start, _ in spans), max(end for _, end in spans)

    def add(self, start: datetime, end: datetime) -> None:
        """Widen the span to hold ``[start, end]``."""
        if self._span is None:
            self._span = (start, end)
        else:
            self._span = (min(self._span[0], start), max(self._span[1], end))

    def around(self, anchor: ReadingFact, reach: tuple[timedelta, timedelta]) -> None:
        """Widen the span to hold what an anchor reads: ``reach`` before and after it."""
        at = anchor.time
        known = self._anchors.get(reach)
        if known is None:
            self._anchors[reach] = [at, at]
        elif at < known[0]:
            known[0] = at
        elif at > known[1]:
            known[1] = at


class _Anchored:
    """The runs anchored at a reading, found by its type: a dense week re-checks ten thousand
    anchors, and asking every rule of the plan of each was a twentieth of such a sync."""

    def __init__(self, runs: Sequence[ReadingRun]) -> None:
        self._by_type: dict[str, list[tuple[ReadingRun, bool]]] = {}
        for run in runs:  # in the runs' order, which each type's list keeps
            types, ask = run.check.anchor_types()
            for type_name in types:
                self._by_type.setdefault(type_name, []).append((run, ask))

    def at(self, reading: ReadingFact) -> list[ReadingRun]:
        """Return the runs anchored at the reading, in the runs' order."""
        return [
            run
            for run, ask in self._by_type.get(reading.type, ())
            if not ask or run.anchors(reading)
        ]


def _recorded_around(
    anchored: _Anchored,
    anchors: Sequence[ReadingFact],
    new_ids: frozenset[str],
    recorded: Recorded | None,
) -> tuple[frozenset[tuple[str, str]], frozenset[tuple[str, str]]]:
    """Return the keys of the re-evaluated (not new) anchors, and those whose firing is
    recorded."""
    if recorded is None:
        return frozenset(), frozenset()
    keys = frozenset(
        (run.rule.id, anchor.id)
        for anchor in anchors
        if anchor.id not in new_ids
        for run in anchored.at(anchor)
    )
    return keys, (frozenset(recorded(keys)) & keys if keys else frozenset())


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
        plan, readings, new_ids, library, zone_of(tz), (), around=False, addressee=addressee
    )
    return list(run.findings)


def _apply_supersession(
    fired: list[Finding],
    library: RuleLibrary,
    also_firing: Iterable[tuple[str, RuleMode]] = (),
) -> list[Finding]:
    """Take advice and flag from findings an active, superseding firing speaks for.

    ``also_firing`` are the rules (and modes) that fire at the same anchor without a finding
    (their firing is recorded already): they speak for others all the same.
    """
    speaker: dict[str, str] = {}
    firing = sorted([*((f.rule_id, f.mode) for f in fired), *also_firing])
    for rule_id, mode in firing:
        rule: Rule | None = library.get(rule_id)
        if rule is None or mode != RuleMode.active:
            continue
        for other in rule.supersedes:
            speaker.setdefault(other, rule_id)
    return [
        replace(f, advice=None, flag_severity=None, superseded_by=speaker[f.rule_id])
        if f.rule_id in speaker
        else f
        for f in fired
    ]


__all__ = ["evaluate", "evaluate_run", "unique_readings"]
