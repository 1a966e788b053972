"""The backtest: every reading an anchor, every local day a day start, over the whole history."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta, tzinfo

from rules.backtest.arrays import EPOCH, MICRO, Table
from rules.backtest.burden import (
    EPISODE_DAYS,
    BacktestFiring,
    BacktestReport,
    RuleBurden,
    rule_burden,
)
from rules.backtest.vectorised import Held
from rules.catalogue import spec_for
from rules.engine.days import DEFAULT_TZ, zone_of
from rules.engine.due import evaluate_due_run
from rules.engine.evaluation import unique_readings
from rules.engine.history import History
from rules.engine.runs import ReadingRun
from rules.engine.selection import plan_runs
from rules.facts import ReadingFact
from rules.language import (
    BandsRule,
    CompositeRule,
    RuleLibrary,
    RuleMode,
    ThresholdRule,
    load_library,
)
from rules.plan import PlanSpec

_Fired = tuple[int, str | None, bool] | tuple[int, str | None, bool, bool, bool]


def _fired(run: ReadingRun, table: Table, history: History) -> list[_Fired]:
    """Return (row, flag severity, has advice[, in an episode, muted]) for every firing."""
    rule = run.rule
    held = Held(table, run.params, history, rule.id)
    out: list[_Fired] = []
    severity = rule.flag.severity if rule.flag is not None else None
    if isinstance(rule, BandsRule):
        rows, winner = held.bands(rule)
        for row, band_index in zip(rows, winner, strict=True):
            if band_index >= 0:
                band = rule.bands[band_index]
                advice = (band.advice or rule.advice) is not None
                out.append((int(row), band.severity, advice))
        return out
    if isinstance(rule, ThresholdRule):
        rows, fires = held.threshold(frozenset(rule.types), rule)
        needs_engine = rule.flag is not None and (
            rule.flag.min_count > 1 or rule.flag.escalate is not None
        )
        episode_types = rule.advice_episode.types if rule.advice_episode is not None else ()
        for row in rows[fires]:
            reading = table.readings[row]
            if reading.type in episode_types:
                finding = run.finding(reading, history)
                assert finding is not None
                given = finding.advice is not None and not finding.advice_repeat
                out.append((int(row), finding.flag_severity, given, True, finding.push_muted))
            elif needs_engine:
                finding = run.finding(reading, history)
                assert finding is not None
                out.append((int(row), finding.flag_severity, rule.advice is not None))
            else:
                out.append((int(row), severity, rule.advice is not None))
        return out
    if isinstance(rule, CompositeRule):
        rows, fires = held.composite(rule)
    else:
        match rule.kind:
            case "window_aggregate":
                rows, fires = held.aggregate(frozenset(rule.types), rule)
            case "delta":
                rows, fires = held.delta(frozenset(rule.types), rule)
            case "count":
                rows, fires = held.count(frozenset(rule.types), rule)
            case "baseline":
                rows, fires = held.baseline(rule.id, frozenset(rule.types), rule)
            case _:
                raise TypeError(rule.kind)
    return [(int(row), severity, rule.advice is not None) for row in rows[fires]]


def backtest(
    plan: PlanSpec,
    readings: Sequence[ReadingFact],
    *,
    library: RuleLibrary | None = None,
    tz: str | tzinfo = DEFAULT_TZ,
    start: datetime | None = None,
    end: datetime | None = None,
    episode_days: int = EPISODE_DAYS,
) -> BacktestReport:
    """Run a plan over a history; count firings, advice and flag episodes per rule-week.

    Every reading in ``[start, end]`` (default: the first and last reading) is an anchor;
    readings before ``start`` fill the windows. Time-based rules are evaluated at every
    local day start in ``(start, end]``.
    """
    library = load_library() if library is None else library
    zone = zone_of(tz)
    ordered = [r for r in unique_readings(readings) if spec_for(r.type) is not None]
    if start is None:
        start = ordered[0].time if ordered else EPOCH
    if end is None:
        end = ordered[-1].time if ordered else start
    weeks = max(end - start, timedelta(days=1)) / timedelta(days=7)
    table = Table(ordered, zone)
    history = History(ordered, zone)
    runs = plan_runs(plan, library)
    per_rule: dict[str, list[BacktestFiring]] = {run.rule.id: [] for run in runs}
    by_anchor: dict[str, list[BacktestFiring]] = {}
    for run in runs:
        if not isinstance(run, ReadingRun):
            continue
        for row, severity, advice, *episode in _fired(run, table, history):
            reading = table.readings[row]
            if not start <= reading.time <= end:
                continue
            firing = BacktestFiring(
                run.rule.id, reading.id, reading.time, run.mode, severity, advice, *episode
            )
            by_anchor.setdefault(reading.id, []).append(firing)
    # Supersession at one reading, as the evaluator does it.
    for firings in by_anchor.values():
        speakers = {
            other
            for f in firings
            if f.mode == RuleMode.active and (rule := library.get(f.rule_id)) is not None
            for other in rule.supersedes
        }
        for f in firings:
            if f.rule_id in speakers:
                f = replace(f, severity=None, advice=False)
            per_rule[f.rule_id].append(f)
    due = evaluate_due_run(plan, ordered, now=end, tz=zone, library=library, since=start - MICRO)
    for finding in due.findings:
        per_rule[finding.rule_id].append(
            BacktestFiring(
                finding.rule_id,
                finding.key[1],
                finding.anchor_time,
                finding.mode,
                finding.flag_severity,
                finding.advice is not None,
            )
        )
    burdens: list[BacktestFiring] = []
    rules: list[RuleBurden] = []
    for run in runs:
        firings = sorted(per_rule[run.rule.id], key=lambda f: (f.time, f.anchor))
        burdens.extend(firings)
        rules.append(
            rule_burden(
                run.rule.id,
                run.mode,
                run.rule.cooldown_minutes,
                firings,
                weeks,
                episode_days,
                zone,
                urgent=any(spec.priority == "urgent" for spec in run.rule.advice_specs()),
            )
        )
    return BacktestReport(
        start=start,
        end=end,
        weeks=weeks,
        readings=sum(1 for r in ordered if start <= r.time <= end),
        episode_days=episode_days,
        rules=tuple(rules),
        firings=tuple(sorted(burdens, key=lambda f: (f.time, f.anchor, f.rule_id))),
    )


__all__ = ["backtest"]
