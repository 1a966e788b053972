"""Which rules of a plan run, how far they read, and which cannot run."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from types import MappingProxyType

from rules.advice import Addressee, CareContact
from rules.engine.cgm_metric import CgmRun
from rules.engine.days import DEFAULT_TZ, zone_of
from rules.engine.history import History
from rules.engine.missing_data import MissingRun
from rules.engine.occurrences import ThresholdRun
from rules.engine.runs import ReadingRun, Run
from rules.facts import ReadingFact
from rules.language import (
    CgmMetricRule,
    MissingDataRule,
    ResolvedParam,
    Rule,
    RuleLibrary,
    RuleMode,
    ThresholdRule,
    resolve_params,
)
from rules.plan import PlanRule, PlanSpec


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


def _entries(plan: PlanSpec, library: RuleLibrary) -> Iterator[tuple[PlanRule, Rule, RuleMode]]:
    """Each of the plan's rules the library knows, with its mode (the plan's, else the rule's)."""
    for plan_rule in plan.rules:
        rule = library.get(plan_rule.rule)
        if rule is not None:
            yield (
                plan_rule,
                rule,
                RuleMode(plan_rule.mode) if plan_rule.mode is not None else rule.mode,
            )


def unrunnable_rules(plan: PlanSpec, library: RuleLibrary) -> tuple[UnrunnableRule, ...]:
    """Return the plan's rules (not off) that lack a required parameter, by rule id."""
    found: dict[str, UnrunnableRule] = {}
    for plan_rule, rule, mode in _entries(plan, library):
        if rule.id in found:
            continue
        missing = _missing_required(plan_rule, rule)
        if mode is not RuleMode.off and missing:
            found[rule.id] = UnrunnableRule(rule.id, rule.version, missing)
    return tuple(found[rule_id] for rule_id in sorted(found))


def plan_runs(
    plan: PlanSpec, library: RuleLibrary, addressee: Addressee | None = None
) -> list[Run]:
    """Return the runs of the plan's rules that are on and have what they need, by rule id."""
    if addressee is None:
        addressee = plan_addressee(plan)
    runs: list[Run] = []
    for rule, mode, params in _RESOLVED.runnable(plan, library):
        run: Run
        if isinstance(rule, ThresholdRule):
            run = ThresholdRun(rule, mode, params, plan.version, addressee)
        elif isinstance(rule, MissingDataRule):
            run = MissingRun(rule, mode, params, plan.version, addressee)
        elif isinstance(rule, CgmMetricRule):
            run = CgmRun(rule, mode, params, plan.version, addressee)
        else:
            run = ReadingRun(rule, mode, params, plan.version, addressee)
        runs.append(run)
    return runs


Runnable = tuple[Rule, RuleMode, Mapping[str, ResolvedParam]]


def _runnable(plan: PlanSpec, library: RuleLibrary) -> tuple[Runnable, ...]:
    """The plan's rules that are on and have their required parameters, resolved, by id."""
    found: dict[str, Runnable] = {}
    for plan_rule, rule, mode in _entries(plan, library):
        if rule.id in found:
            continue
        if mode is RuleMode.off or _missing_required(plan_rule, rule):
            continue  # a rule without its required parameters never runs on a default
        found[rule.id] = (rule, mode, MappingProxyType(resolve_params(plan_rule, rule)))
    return tuple(found[rule_id] for rule_id in sorted(found))


class _ResolvedPlans:
    """The runnable rules of the latest (plan, library) pairs, kept by their identity.

    A sync asks for a plan's runs several times (which types the plan reads, how far back,
    then the evaluation itself), and resolving the parameters each time was a twentieth of
    a 10-reading sync. The service keeps each stored plan version's spec between requests
    (:mod:`app.plans.spec_cache`), so the same spec comes back batch after batch. Specs and
    libraries are not changed in place (a new plan version is a new spec); each entry holds
    its plan and library, so an identity is not reused while its entry is kept.
    """

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._kept: OrderedDict[
            tuple[int, int], tuple[PlanSpec, RuleLibrary, tuple[Runnable, ...]]
        ] = OrderedDict()
        self._lock = threading.Lock()  # the API evaluates in a pool of threads

    def runnable(self, plan: PlanSpec, library: RuleLibrary) -> tuple[Runnable, ...]:
        """Return the plan's runnable rules, resolved once per plan and library."""
        key = (id(plan), id(library))
        with self._lock:
            entry = self._kept.get(key)
            if entry is not None:
                self._kept.move_to_end(key)
                return entry[2]
        resolved = _runnable(plan, library)
        with self._lock:
            self._kept[key] = (plan, library, resolved)
            while len(self._kept) > self._size:
                self._kept.popitem(last=False)
        return resolved


_RESOLVED = _ResolvedPlans()


def plan_addressee(plan: PlanSpec, patient_name: str = "") -> Addressee:
    """Return an addressee whose care contact is the plan's ``contact`` (or none)."""
    contact = plan.contact
    if contact is None:
        return Addressee(patient_name=patient_name)
    care = CareContact(name=contact.name, role=contact.role, phone=contact.phone)
    return Addressee(patient_name=patient_name, contact=care)


def reading_runs(
    plan: PlanSpec, library: RuleLibrary, addressee: Addressee | None = None
) -> list[ReadingRun]:
    """Return the plan's runs anchored at readings."""
    return [run for run in plan_runs(plan, library, addressee) if isinstance(run, ReadingRun)]


def lookback(plan: PlanSpec, library: RuleLibrary, types: Iterable[str] | None = None) -> timedelta:
    """Return how far on BOTH sides of the new readings the evaluation must see.

    Load the readings in ``[earliest new − lookback, latest new + lookback]``: that covers
    the window of every new reading and of every later (or, for occurrence counts,
    earlier) anchor whose window a new reading falls into, which :func:`evaluate_run`
    re-evaluates. With ``types`` (those of the new readings), only the rules that read
    them count: :func:`evaluate_run` evaluates no other, so a blood pressure does not load
    the fortnight a glucose rule of the same plan needs.
    """
    wanted = None if types is None else set(types)
    longest = timedelta(0)
    for run in reading_runs(plan, library):
        if wanted is not None and not wanted.intersection(run.rule.types):
            continue
        back, fwd = run.reach()
        longest = max(longest, back + fwd)
    return longest


def narrow_span(
    plan: PlanSpec,
    library: RuleLibrary,
    touched: Sequence[ReadingFact],
    tz: str | tzinfo = DEFAULT_TZ,
) -> tuple[datetime, datetime] | None:
    """Return the span of readings to load first for the touched (new or removed) readings,
    when the firings already recorded are only checked (``recorded`` of ``evaluate_run``).

    Narrower than ``lookback`` on both sides: each touched reading's own evaluation (what
    its rules read when it is explained) and the anchors it can affect (``reach_of``: a
    reading that fires no threshold reaches only the anchors an advice episode walks back
    from). What the old anchors found there read is left out: an old anchor whose firing is
    recorded is only checked, which for a threshold reads the reading alone, and at the tail
    of a stream (a live sync) there is no old anchor after the new readings at all. A
    glucose-low flag's week of occurrences is then read only when a low is among the touched
    readings, and a CGM batch does not load the day a finger-prick rule reads back.

    The anchors themselves are all in this span, so a run on it finds every anchor to
    evaluate; if evaluating one reads further (an old finger-prick anchor checked against a
    rule that reads a day back, an old firing not recorded after a plan change), the run's
    ``needed`` span says so, and the caller loads that and evaluates again.
    """
    history = History([], zone_of(tz))
    related = history_types(plan, library, {r.type for r in touched})
    runs = [run for run in reading_runs(plan, library) if related.intersection(run.rule.types)]
    start: datetime | None = None
    end: datetime | None = None
    for reading in touched:
        for run in runs:
            if reading.type not in run.rule.types:
                continue
            own_back, own_fwd = run.read_reach(reading, history, explained=True)
            back, fwd = run.reach_of(reading, history)
            first = reading.time - max(own_back, fwd)
            if fwd:
                # It reaches anchors before it (a low's week of occurrences), each evaluated
                # against every rule anchored there, and some read back whatever they find (a
                # two-hour window): from the earliest of them too. Else a batch with a low in
                # it read beyond this span, and the whole batch was evaluated again on a wider
                # load. (Anchors after it that read back further are rarer: a finger prick
                # checked against a rule that reads a day back. Those are loaded on demand.)
                first = min(first, reading.time - fwd - _checked_back(run, runs, reading, history))
            last = reading.time + max(own_fwd, back)
            start = first if start is None else min(start, first)
            end = last if end is None else max(end, last)
    if start is None or end is None:
        return None
    # Never wider than the lookback, which holds every window of every anchor touched.
    reach = lookback(plan, library, {r.type for r in touched})
    return (
        max(start, min(r.time for r in touched) - reach),
        min(end, max(r.time for r in touched) + reach),
    )


def _checked_back(
    run: ReadingRun, runs: Sequence[ReadingRun], reading: ReadingFact, history: History
) -> timedelta:
    """Return how far back checking an anchor of the run's types reads, whatever it finds:
    the most of any rule anchored at those types (a threshold reads only its reading)."""
    types = set(run.rule.types)
    return max(
        (
            other.read_reach(reading, history, explained=False)[0]
            for other in runs
            if types.intersection(other.rule.types)
        ),
        default=timedelta(0),
    )


def history_types(plan: PlanSpec, library: RuleLibrary, types: Iterable[str]) -> frozenset[str]:
    """Return the types whose history the evaluation of readings of these types reads.

    A rule counts readings of all its types (glucose-low: ``glucose`` and
    ``cgm_glucose``; a composite: every part's), so a new CGM reading needs the
    finger-prick history too.
    """
    wanted = set(types)
    related = set(wanted)
    for run in reading_runs(plan, library):
        if wanted.intersection(run.rule.types):
            related.update(run.rule.types)
    return frozenset(related)


def reading_types(plan: PlanSpec, library: RuleLibrary) -> frozenset[str]:
    """Return the types a new reading of which can make :func:`evaluate` find anything.

    Time-based rules (missing data, CGM metrics) are left out: they read readings only in
    :func:`evaluate_due`, so a reading of a type only they name needs no evaluation.
    """
    return frozenset(t for run in reading_runs(plan, library) for t in run.rule.types)


__all__ = [
    "UnrunnableRule",
    "history_types",
    "lookback",
    "plan_addressee",
    "plan_runs",
    "reading_runs",
    "reading_types",
    "unrunnable_rules",
]
