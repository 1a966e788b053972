"""The vectorised backtest fires exactly where the incremental evaluator does; burden counts."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules.backtest import EPISODE_DAYS, backtest
from rules.engine import evaluate_run
from rules.facts import ReadingFact
from rules.language import load_library
from rules.plan import PlanSpec
from tests.rules.factories import bp, local, plan, reading
from tests.rules.test_late_data import PLANS, START, _reading

LIBRARY = load_library()


def _incremental(
    plan_spec: PlanSpec, readings: list[ReadingFact]
) -> dict[tuple[str, str], tuple[str | None, bool]]:
    run = evaluate_run(
        plan_spec, readings, new_reading_ids={r.id for r in readings}, now=START, library=LIBRARY
    )
    # Advice is given unless it repeats one of its episode (CGM lows): the backtest's meaning.
    return {
        f.key: (f.flag_severity, f.advice is not None and not f.advice_repeat) for f in run.findings
    }


def _vectorised(
    plan_spec: PlanSpec, readings: list[ReadingFact]
) -> dict[tuple[str, str], tuple[str | None, bool]]:
    report = backtest(plan_spec, readings, library=LIBRARY, tz="Europe/Stockholm")
    reading_ids = {r.id for r in readings}
    return {
        (f.rule_id, f.anchor): (f.severity, f.advice)
        for f in report.firings
        if f.anchor in reading_ids
    }


@settings(max_examples=60, deadline=None)
@given(
    readings=st.integers(1, 60).flatmap(
        lambda n: st.tuples(*[_reading(i) for i in range(n)]).map(list)
    ),
    plan_index=st.integers(0, len(PLANS) - 1),
)
def test_backtest_fires_where_evaluate_fires(readings: list[ReadingFact], plan_index: int) -> None:
    plan_spec = PLANS[plan_index]
    assert _vectorised(plan_spec, readings) == _incremental(plan_spec, readings)


def test_backtest_matches_on_a_dense_default_plan() -> None:
    """Full-size windows with the default parameters: a fortnight of everything."""
    readings: list[ReadingFact] = []
    for day in range(14):
        for clock, (s, d) in (
            ("07:00", ("138", "84")),
            ("07:02", ("136", "86")),
            ("21:00", ("131", "83")),
        ):
            readings.append(bp(s, d, at=local(day, clock), reading_id=f"bp{day}{clock}"))
        readings.append(
            reading(
                "weight",
                str(Decimal("80.0") + Decimal(day % 4) * Decimal("0.8")),
                at=local(day, "07:30"),
                reading_id=f"w{day}",
            )
        )
        readings.append(
            reading(
                "glucose", "15.5" if day % 3 else "9", at=local(day, "08:00"), reading_id=f"g{day}"
            )
        )
        readings.append(
            reading(
                "glucose", "16" if day % 2 else "3.5", at=local(day, "20:00"), reading_id=f"h{day}"
            )
        )
        readings.append(
            reading("peak_flow", str(180 + 20 * day), at=local(day, "09:00"), reading_id=f"p{day}")
        )
        readings.append(
            reading(
                "symptom_score",
                str(day % 5),
                "{score}",
                at=local(day, "10:00"),
                reading_id=f"s{day}",
                context={"instrument": "breathlessness"},
            )
        )
    p = plan(
        *(r.id for r in LIBRARY.rules if not r.time_based),
        params={"peak-flow-zone": {"personal_best": Decimal(450)}},
    )
    incremental = _incremental(p, readings)
    assert {rule for rule, _ in incremental} >= {
        "bp-home-mean-high",
        "weight-gain-hf",
        "glucose-high",
        "glucose-low",
        "peak-flow-zone",
        "hf-weight-and-breathlessness",
    }
    assert _vectorised(p, readings) == incremental


# --- the alert burden ------------------------------------------------------------------


def weights(values: list[str]) -> list[ReadingFact]:
    return [
        reading("weight", v, at=local(day, "07:30"), reading_id=f"w{day}")
        for day, v in enumerate(values)
    ]


def test_burden_counts_firings_advice_and_episodes() -> None:
    # A gain on days 3-5 (one episode), none, and again on day 20 (a new episode).
    values = ["80.0", "80.0", "80.0", "82.5", "82.6", "82.7"] + ["82.7"] * 14 + ["85.0"]
    report = backtest(plan("weight-gain-hf"), weights(values), library=LIBRARY)
    burden = report.rule("weight-gain-hf")
    assert burden is not None
    assert burden.firings == 4  # days 3, 4, 5 and 20
    assert burden.flags == 2  # day 20 is more than 7 days after day 5
    assert burden.advice == 4  # 24 h apart: the 12-hour cooldown never holds one back
    assert report.weeks == pytest.approx(20 / 7)
    assert burden.flags_per_week == pytest.approx(2 / (20 / 7))
    assert report.episode_days == EPISODE_DAYS


def test_cooldown_holds_back_advice() -> None:
    readings = [
        reading("glucose", "2.5", at=local(0, "08:00") + timedelta(minutes=m))
        for m in (0, 10, 20, 40)
    ]
    burden = backtest(plan("glucose-very-low"), readings, library=LIBRARY).rule("glucose-very-low")
    assert burden is not None
    assert (burden.firings, burden.advice, burden.flags) == (4, 3, 1)  # 0, 20, 40: cooldown 15 min


def test_a_higher_threshold_lowers_the_burden() -> None:
    """Karin raises Asta's weight-gain threshold to 2.5 kg and backtests it first."""
    values = ["80.0", "81.0", "82.2", "80.5", "82.7", "83.1", "81.0", "83.2"]
    default = backtest(plan("weight-gain-hf"), weights(values), library=LIBRARY)
    raised = backtest(
        plan("weight-gain-hf", params={"weight-gain-hf": {"gain": Decimal("2.5")}}),
        weights(values),
        library=LIBRARY,
    )
    assert (default.rule("weight-gain-hf") or pytest.fail()).firings == 4
    assert (raised.rule("weight-gain-hf") or pytest.fail()).firings == 1


def test_monitor_mode_and_supersession() -> None:
    readings = [reading("glucose", "2.5", at=local(d, "08:00")) for d in range(3)]
    report = backtest(plan("glucose-low", "glucose-very-low"), readings, library=LIBRARY)
    low, very_low = report.rule("glucose-low"), report.rule("glucose-very-low")
    assert low is not None and very_low is not None
    assert (low.firings, low.advice, low.flags) == (3, 0, 0)  # superseded
    assert (very_low.firings, very_low.advice, very_low.flags) == (3, 3, 1)
    monitored = backtest(
        plan("glucose-low", "glucose-very-low", modes={"glucose-very-low": "monitor"}),
        readings,
        library=LIBRARY,
    )
    low, very_low = monitored.rule("glucose-low"), monitored.rule("glucose-very-low")
    assert low is not None and very_low is not None
    assert (very_low.firings, very_low.advice, very_low.flags) == (3, 0, 0)
    assert (low.firings, low.advice, low.flags) == (3, 3, 1)


def test_time_based_rules_are_counted_per_day() -> None:
    p = PlanSpec.model_validate(
        {
            "version": 1,
            "rules": [{"rule": "missing-readings"}],
            "schedule": [{"type": "weight", "times": ["07:30"], "days": "daily"}],
        }
    )
    readings = weights(["80"] * 3) + [
        reading("weight", "80", at=local(10, "07:30"), reading_id="late")
    ]
    report = backtest(p, readings, library=LIBRARY)
    burden = report.rule("missing-readings")
    assert burden is not None
    # Day starts 5..10 have no weight in the 2 days before: 6 reminders, flags from day 6.
    assert burden.firings == 6 and burden.advice == 6 and burden.flags == 1


def test_start_and_end_choose_the_anchors_not_the_windows() -> None:
    values = ["80.0", "80.0", "80.0", "82.5"]
    readings = weights(values)
    inside = backtest(plan("weight-gain-hf"), readings, library=LIBRARY, start=local(3, "00:00"))
    assert (inside.rule("weight-gain-hf") or pytest.fail()).firings == 1
    assert inside.readings == 1
    before = backtest(plan("weight-gain-hf"), readings, library=LIBRARY, end=local(2, "23:00"))
    assert (before.rule("weight-gain-hf") or pytest.fail()).firings == 0


def test_empty_history() -> None:
    report = backtest(plan("bp-low"), [], library=LIBRARY)
    assert report.readings == 0 and report.firings == ()
    assert [(r.rule_id, r.firings) for r in report.rules] == [("bp-low", 0)]


def _boundary_histories() -> list[tuple[str, list[ReadingFact]]]:
    from tests.rules import test_kinds as kinds

    cases: list[tuple[str, list[ReadingFact]]] = []
    for group in (kinds.WEIGHT_CASES, kinds.GLUCOSE_HIGH_CASES, kinds.COMPOSITE_CASES):
        cases += [(name, list(history)) for name, history, _ in group]
    cases += [
        ("bp 135/84", kinds.week("135", "84")),
        ("bp 11 readings", kinds.week("140", "90", clocks=("07:00", "21:00"), drop=3)),
        ("bp day 1 high", kinds.week("130", "80", first_day=("200", "120"))),
        (
            "bp mixed units",
            kinds.week("135", "85", unit="mmHg")[:10] + kinds.week("135", "85")[10:],
        ),
    ]
    return cases


ALL_READING_RULES = plan(
    *(r.id for r in LIBRARY.rules if not r.time_based),
    params={"peak-flow-zone": {"personal_best": Decimal(500)}},
)


@pytest.mark.parametrize(
    ("name", "history"), _boundary_histories(), ids=lambda x: x if isinstance(x, str) else ""
)
def test_backtest_matches_at_every_boundary(name: str, history: list[ReadingFact]) -> None:
    assert _vectorised(ALL_READING_RULES, history) == _incremental(ALL_READING_RULES, history)
