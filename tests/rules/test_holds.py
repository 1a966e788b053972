"""A check's quick answer (``holds``) is its explained answer (``outcome``) without the words."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from rules.engine.comparison import Conditions, holds
from rules.engine.evaluation import unique_readings
from rules.engine.history import History
from rules.engine.kinds.base import Check
from rules.engine.kinds.composite import CompositeCheck
from rules.engine.kinds.threshold import ThresholdCheck
from rules.engine.selection import reading_runs
from rules.facts import ReadingFact
from rules.plan import PlanSpec
from tests.rules.factories import bp, reading
from tests.rules.test_late_data import LIBRARY, PLANS, START, _reading

ZONE = ZoneInfo("Europe/Stockholm")


def _checks(plan: PlanSpec) -> list[tuple[str, Check]]:
    """Every check of a plan's reading rules, a composite's parts too, with its rule's kind."""
    checks: list[tuple[str, Check]] = []
    for run in reading_runs(plan, LIBRARY):
        checks.append((run.rule.kind, run.check))
        if isinstance(run.check, CompositeCheck):
            checks.extend((f"part:{run.rule.id}", part) for _, part, _ in run.check.parts)
    return checks


def _compare(plan: PlanSpec, readings: list[ReadingFact]) -> Counter[str]:
    """Assert holds == outcome.held at every anchor; count the firings per kind."""
    ordered = unique_readings(readings)
    fired: Counter[str] = Counter()
    for kind, check in _checks(plan):
        # Separate histories: holds must not lean on outcomes an earlier call cached.
        quick, explained = History(ordered, ZONE), History(ordered, ZONE)
        for anchor in ordered:
            outcome = check.outcome(anchor, explained)
            held = outcome is not None and outcome.held
            assert check.holds(anchor, quick) == held, (check.key, anchor)
            if outcome is not None and held:
                fired[kind] += 1
                assert any(outcome.reasons.values()), (check.key, anchor)  # explained in words
    return fired


@settings(max_examples=80, deadline=None)
@given(
    readings=st.integers(1, 50).flatmap(
        lambda n: st.tuples(*[_reading(i) for i in range(n)]).map(list)
    ),
    plan_index=st.integers(0, len(PLANS) - 1),
)
def test_holds_is_the_outcome_s_held_for_every_kind_and_anchor(
    readings: list[ReadingFact], plan_index: int
) -> None:
    _compare(PLANS[plan_index], readings)


def test_ten_days_of_everything_fires_every_kind_and_holds_agrees() -> None:
    """Ten fixed dense days reach a firing of every kind, so the comparison is not vacuous."""
    readings: list[ReadingFact] = []
    for hour in range(10 * 24):
        at = START + timedelta(hours=hour)
        rid = f"r{hour:03d}"
        match hour % 6:
            case 0:
                systolic = 120 + (hour * 7) % 70
                readings.append(bp(str(systolic), str(70 + (hour * 3) % 40), at=at, reading_id=rid))
            case 1:
                # A slow gain (the week's baseline), then a jump (three days' delta).
                kg = f"{78 + hour // 6 * 0.1 + (2.5 if hour > 8 * 24 else 0):.1f}"
                readings.append(reading("weight", kg, "kg", at=at, reading_id=rid))
            case 2:
                score = str((hour // 6) % 6)
                readings.append(
                    reading(
                        "symptom_score", score, "{score}", at=at, reading_id=rid,
                        context={"instrument": "breathlessness"},
                    )
                )  # fmt: skip
            case 3:
                value = ["2.9", "3.5", "15.1", "17", "6.0"][(hour // 6) % 5]
                readings.append(reading("cgm_glucose", value, "mmol/L", at=at, reading_id=rid))
            case 4:
                value = ["3.0", "16", "7.0"][(hour // 6) % 3]
                readings.append(reading("glucose", value, "mmol/L", at=at, reading_id=rid))
            case _:
                value = ["450", "300", "200"][(hour // 6) % 3]
                readings.append(reading("peak_flow", value, "L/min", at=at, reading_id=rid))
    fired = _compare(PLANS[0], readings) + _compare(PLANS[1], readings)
    kinds = {kind for kind in fired if not kind.startswith("part:")}
    assert kinds == {rule.kind for p in PLANS for r in p.rules if (rule := LIBRARY.get(r.rule))}


def _every_condition_set() -> list[tuple[frozenset[str], Conditions]]:
    """The conditions of every threshold check and escalation of the test plans, with the
    types of the readings they are asked of."""
    sets: list[tuple[frozenset[str], Conditions]] = []
    for plan in PLANS:
        for run in reading_runs(plan, LIBRARY):
            check = run.check
            if isinstance(check, ThresholdCheck):
                sets.append((check.types, Conditions(check.fields.conditions, run.params)))
            flag = getattr(run.rule, "flag", None)
            if flag is not None and flag.escalate is not None and flag.escalate.conditions:
                sets.append((check.types, Conditions(flag.escalate.conditions, run.params)))
    return sets


CONDITION_SETS = _every_condition_set()


@settings(max_examples=150, deadline=None)
@given(readings=st.tuples(*[_reading(i) for i in range(12)]).map(list))
def test_conditions_answer_as_each_condition_alone(readings: list[ReadingFact]) -> None:
    """Conditions.each, which looks up a unit's threshold once per type and unit, answers
    what holds() answers per condition: readings in other units (mg/dL, lb, mmHg) than the
    parameter's, at the thresholds' edges, with and without a context, asked in any order.
    """
    asked = 0
    for types, conditions in CONDITION_SETS:
        for r in readings:
            if r.type not in types:
                continue  # a check is asked only of its own types
            expected = [holds(r, c, conditions.params[c.param]) for c in conditions.conditions]
            assert conditions.each(r) == expected, (conditions.conditions, r)
            asked += 1
    assert asked or not {r.type for r in readings} & {t for ts, _ in CONDITION_SETS for t in ts}


def test_a_component_not_measured_as_stored_is_compared_converted() -> None:
    """A reading whose measured values lack the component (only its canonical value holds
    it) is compared through the conversion, as holds() does, not taken as not holding."""
    glucose = [c for types, c in CONDITION_SETS if "glucose" in types]
    assert glucose, "the test plans have a glucose threshold"
    low = reading("glucose", "2.5", "mmol/L", reading_id="low")
    stripped = replace(low, original_values={})
    for conditions in glucose:
        expected = [holds(stripped, c, conditions.params[c.param]) for c in conditions.conditions]
        assert conditions.each(low) == conditions.each(stripped) == expected
    assert any(any(c.each(stripped)) for c in glucose)  # not vacuous: a low fires
