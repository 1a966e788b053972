"""Which rules of a plan run, how far they read, and which cannot run."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from rules.advice import Addressee, CareContact
from rules.engine.cgm_metric import CgmRun
from rules.engine.missing_data import MissingRun
from rules.engine.occurrences import ThresholdRun
from rules.engine.runs import ReadingRun, Run
from rules.language import (
    CgmMetricRule,
    MissingDataRule,
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


def plan_runs(
    plan: PlanSpec, library: RuleLibrary, addressee: Addressee | None = None
) -> list[Run]:
    """Return the runs of the plan's rules that are on and have what they need, by rule id."""
    if addressee is None:
        addressee = plan_addressee(plan)
    runs: dict[str, Run] = {}
    for plan_rule in plan.rules:
        rule = library.get(plan_rule.rule)
        if rule is None or rule.id in runs:
            continue
        mode = RuleMode(plan_rule.mode) if plan_rule.mode is not None else rule.mode
        if mode is RuleMode.off or _missing_required(plan_rule, rule):
            continue  # a rule without its required parameters never runs on a default
        params = resolve_params(plan_rule, rule)
        run: Run
        if isinstance(rule, ThresholdRule):
            run = ThresholdRun(rule, mode, params, plan.version, addressee)
        elif isinstance(rule, MissingDataRule):
            run = MissingRun(rule, mode, params, plan.version, addressee)
        elif isinstance(rule, CgmMetricRule):
            run = CgmRun(rule, mode, params, plan.version, addressee)
        else:
            run = ReadingRun(rule, mode, params, plan.version, addressee)
        runs[rule.id] = run
    return [runs[rule_id] for rule_id in sorted(runs)]


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
