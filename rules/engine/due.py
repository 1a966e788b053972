"""Time-based evaluation, the entry points: the day starts due at ``now``,
:func:`evaluate_due_run` and :func:`evaluate_due`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, tzinfo

from rules.advice import Addressee
from rules.engine.days import DEFAULT_TZ, local_day_start, zone_of
from rules.engine.evaluation import unique_readings
from rules.engine.findings import EvaluationRun, Finding
from rules.engine.history import History
from rules.engine.runs import TimeRun
from rules.engine.selection import plan_runs
from rules.facts import ReadingFact
from rules.language import RuleLibrary, load_library
from rules.plan import PlanSpec


def _time_runs(
    plan: PlanSpec, library: RuleLibrary, addressee: Addressee | None = None
) -> list[TimeRun]:
    return [run for run in plan_runs(plan, library, addressee) if isinstance(run, TimeRun)]


def due_lookback(plan: PlanSpec, library: RuleLibrary) -> timedelta:
    """Return how much history before the earliest due anchor time-based rules read."""
    return max((run.reach(plan) for run in _time_runs(plan, library)), default=timedelta(0))


def due_anchors(
    *, now: datetime, tz: str | tzinfo = DEFAULT_TZ, since: datetime | None = None
) -> list[datetime]:
    """Return the local day starts due at ``now``: those in ``(since, now]``, oldest first.

    Without ``since``, only the latest day start at or before ``now``.
    """
    zone = zone_of(tz)
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
    zone = zone_of(tz)
    history = History(unique_readings(readings), zone)
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


__all__ = ["due_anchors", "due_lookback", "evaluate_due", "evaluate_due_run"]
