"""A parameter the rule marks required has no silent default: the rule does not run, the
others do, and the evaluator names what is missing."""

from __future__ import annotations

from datetime import UTC
from decimal import Decimal

from rules.engine import UnrunnableRule, evaluate, lookback, reading_types, unrunnable_rules
from rules.engine.history import History
from rules.engine.occurrences import ThresholdRun
from rules.engine.selection import plan_runs
from rules.language import load_library
from rules.plan import Quantity
from tests.rules.factories import T0, bp, plan, reading

BEST = {"peak-flow-zone": {"personal_best": Quantity(value=Decimal(400), unit="L/min")}}


def test_a_rule_without_its_required_parameter_does_not_run_and_the_others_do() -> None:
    lacking = plan("peak-flow-zone", "bp-very-high")
    readings = [
        reading("peak_flow", "150", at=T0, reading_id="pef"),
        bp("185", "100", at=T0, reading_id="bp"),
    ]
    fired = evaluate(lacking, readings, new_reading_ids={"pef", "bp"}, now=T0)
    assert [(f.rule_id, f.anchor_reading_id) for f in fired] == [("bp-very-high", "bp")]
    assert unrunnable_rules(lacking, load_library()) == (
        UnrunnableRule("peak-flow-zone", 1, ("personal_best",)),
    )
    assert "peak_flow" not in reading_types(lacking, load_library())


def test_with_the_parameter_it_runs() -> None:
    complete = plan("peak-flow-zone", "bp-very-high", params=BEST)
    readings = [reading("peak_flow", "150", at=T0, reading_id="pef")]
    fired = evaluate(complete, readings, new_reading_ids={"pef"}, now=T0)
    assert [f.rule_id for f in fired] == ["peak-flow-zone"]
    assert unrunnable_rules(complete, load_library()) == ()
    assert lookback(complete, load_library()) == lookback(plan("bp-very-high"), load_library())


def test_a_rule_switched_off_is_no_problem() -> None:
    off = plan("peak-flow-zone", modes={"peak-flow-zone": "off"})
    assert unrunnable_rules(off, load_library()) == ()


def test_a_plans_resolved_rules_are_kept_and_its_runs_made_afresh_each_time() -> None:
    """The resolution of a plan's parameters is kept per (plan, library); the runs are new
    objects every time, so what a run learns in one evaluation (a threshold's firings) is
    never carried into the next one."""
    library = load_library()
    complete = plan("peak-flow-zone", "bp-very-high", params=BEST)
    first, again = plan_runs(complete, library), plan_runs(complete, library)
    assert [r.rule.id for r in first] == [r.rule.id for r in again]
    assert all(a is not b for a, b in zip(first, again, strict=True))
    assert first[0].params is again[0].params  # resolved once
    threshold = next(r for r in first if isinstance(r, ThresholdRun))
    twin = next(r for r in again if isinstance(r, ThresholdRun))
    threshold.fires(bp("185", "100", at=T0, reading_id="bp"), History([], UTC))
    assert twin._fires == {}
    # Another plan (a new version is a new spec) is resolved on its own.
    lacking = plan("peak-flow-zone", "bp-very-high")
    assert [r.rule.id for r in plan_runs(lacking, library)] == ["bp-very-high"]
    assert [r.rule.id for r in plan_runs(complete, library)] == ["bp-very-high", "peak-flow-zone"]
