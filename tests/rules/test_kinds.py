"""The rule kinds beyond single readings, at their edges, in both units (CLINICAL.md §2)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal

import pytest

from rules.engine import Finding, evaluate, evaluate_run
from rules.facts import ReadingFact
from rules.language import load_library, validate_plan
from rules.plan import PlanBody, PlanSpec
from tests.rules.factories import bp, local, plan, qty, reading

LIBRARY = load_library()
MINUTE = timedelta(minutes=1)


def run(plan_spec: PlanSpec, readings: Sequence[ReadingFact]) -> list[Finding]:
    """Evaluate every reading as new."""
    return evaluate(
        plan_spec, readings, new_reading_ids={r.id for r in readings}, now=local(0), library=LIBRARY
    )


def fired_at(
    rule_id: str, readings: Sequence[ReadingFact], plan_spec: PlanSpec | None = None
) -> set[str]:
    """Return the ids of the readings the rule fired at."""
    return {
        f.anchor_reading_id or ""
        for f in run(plan_spec or plan(rule_id), readings)
        if f.rule_id == rule_id
    }


def last_fires(
    rule_id: str, readings: Sequence[ReadingFact], plan_spec: PlanSpec | None = None
) -> bool:
    """Tell whether the rule fires at the last reading given."""
    return readings[-1].id in fired_at(rule_id, readings, plan_spec)


# --- bp-home-mean-high: 7 local days, day 1 discarded, ≥ 12 readings, ≥ 135 / ≥ 85 ---------


def week(
    systolic: str,
    diastolic: str,
    *,
    first_day: tuple[str, str] | None = None,
    days: int = 7,
    clocks: Sequence[str] = ("07:00", "07:02", "21:00", "21:02"),
    unit: str = "mm[Hg]",
    drop: int = 0,
) -> list[ReadingFact]:
    """Home BP readings on local days 0..days-1; day 0 may differ (it is discarded)."""
    readings = []
    for day in range(days):
        value = first_day if day == 0 and first_day is not None else (systolic, diastolic)
        for clock in clocks:
            readings.append(bp(*value, unit, at=local(day, clock), reading_id=f"bp{day}-{clock}"))
    return readings[drop:] if drop else readings


@pytest.mark.parametrize(
    ("readings", "expected"),
    [
        (week("134", "84"), False),
        (week("135", "84"), True),
        (week("134", "85"), True),
        (week("135", "84", unit="mmHg"), True),
        (week("134", "84", unit="mmHg"), False),
        # The first measuring day is discarded, however high it is.
        (week("130", "80", first_day=("200", "120")), False),
        (week("140", "80", first_day=("100", "60")), True),
        # 12 readings left (days 1..6, twice a day) is enough; 11 is not.
        (week("140", "90", clocks=("07:00", "21:00")), True),
        (week("140", "90", clocks=("07:00", "21:00"), drop=3), False),
        # Only 3 days: 2 days × 4 left = 8 readings.
        (week("150", "95", days=3), False),
    ],
    ids=[
        "134/84-no",
        "135/84-yes",
        "134/85-yes",
        "135/84-mmHg-yes",
        "134/84-mmHg-no",
        "day1-high-discarded",
        "day1-low-discarded",
        "12-readings",
        "11-readings",
        "3-days",
    ],
)
def test_bp_home_mean_boundaries(readings: list[ReadingFact], expected: bool) -> None:
    assert last_fires("bp-home-mean-high", readings) is expected


def test_bp_home_mean_is_exact_at_the_edge() -> None:
    # Kept readings alternate 134 and 136: the mean is exactly 135 (fires); one 134 more
    # on the last day makes it 134.96 (does not).
    readings = week("134", "80")
    for i, r in enumerate(readings[4:], start=4):
        if i % 2:
            readings[i] = bp("136", "80", at=r.time, reading_id=r.id)
    assert last_fires("bp-home-mean-high", readings)
    extra = bp("134", "80", at=local(6, "21:30"), reading_id="extra")
    assert not last_fires("bp-home-mean-high", [*readings, extra])


def test_bp_home_mean_explains_itself() -> None:
    readings = week("140", "86", first_day=("170", "100"))
    (finding,) = [
        f
        for f in run(plan("bp-home-mean-high"), readings)
        if f.anchor_reading_id == readings[-1].id
    ]
    assert finding.computed["readings_in_window"] == "28"
    assert finding.computed["readings_discarded"] == "4"
    assert finding.computed["readings_used"] == "24"
    assert finding.computed["mean_systolic"] == "140.00"
    assert finding.computed["mean_diastolic"] == "86.00"
    assert finding.thresholds["systolic_mean"] == {"value": "135", "unit": "mm[Hg]"}
    assert finding.thresholds["window"] == {"value": "7", "unit": "d"}
    assert len(finding.reading_ids) == 24 and readings[0].id not in finding.reading_ids
    assert finding.advice is not None and "140/86 mmHg" in finding.advice.body["sv"]
    assert "medel övertryck 140 ≥ 135 mmHg" in finding.summary["sv"]


def test_explained_numbers_read_as_shown_not_as_numbers_equal_to_them() -> None:
    """A firing's words are kept by the numbers as shown (a late week shows few distinct
    means); 92 and 92.0 are equal Decimals but read "92" and "92,0"."""
    from rules.engine.kinds.aggregate import _words
    from rules.language import Op

    def words(shown: str) -> tuple[str, str]:
        part = ("value", True, Op.gt, shown, "90", "kg", "weight")
        reasons, value = _words("mean", "weight", "kg", (part,))
        assert value is not None
        return reasons["sv"][0], value["sv"]

    assert words("92.0") == ("medel 92,0 > 90 kg", "92,0 kg")
    assert words("92") == ("medel 92 > 90 kg", "92 kg")
    assert words("92.0") == ("medel 92,0 > 90 kg", "92,0 kg")


def test_bp_home_mean_window_is_local_days() -> None:
    # Across the spring DST change (28 March 2027) the 7 days are local calendar days: from
    # local midnight of day 0 (a 23-hour day 4 inside) up to the anchor.
    spring = date(2027, 3, 24)
    readings = [
        bp("140", "90", at=local(day, clock, start=spring), reading_id=f"d{day}-{clock}")
        for day in range(7)
        for clock in ("00:00", "12:00", "23:59")
    ]
    before = bp("200", "130", at=local(-1, "23:59", start=spring), reading_id="before")
    findings = run(plan("bp-home-mean-high"), [before, *readings])
    (finding,) = [f for f in findings if f.anchor_reading_id == readings[-1].id]
    assert finding.computed["readings_in_window"] == "21"
    assert finding.computed["readings_discarded"] == "3"
    assert "before" not in finding.reading_ids
    assert finding.computed["window_start"] == local(0, "00:00", start=spring).isoformat()


def test_bp_home_mean_protocol_is_a_plan_parameter() -> None:
    us = plan(
        "bp-home-mean-high",
        params={"bp-home-mean-high": {"window_days": Decimal(5), "discard_first_days": Decimal(2)}},
    )
    readings = week("130", "80", days=5, first_day=("190", "110"))
    # Days 0 and 1 discarded; day 1 high as well.
    readings[4:8] = [bp("190", "110", at=r.time, reading_id=r.id) for r in readings[4:8]]
    assert not last_fires("bp-home-mean-high", readings, us)
    assert last_fires("bp-home-mean-high", readings)  # default: only day 0 is discarded
    assert (
        validate_plan(
            PlanBody.model_validate(
                {"rules": [{"rule": "bp-home-mean-high", "params": {"window_days": 2}}]}
            ),
            LIBRARY,
        )[0].code
        == "out_of_range"
    )
    assert (
        validate_plan(
            PlanBody.model_validate(
                {"rules": [{"rule": "bp-home-mean-high", "params": {"window_days": "6.5"}}]}
            ),
            LIBRARY,
        )[0].code
        == "invalid"
    )


# --- weight-gain-hf: latest − min of the preceding 72 h > 2.0 kg ----------------------------


def w(
    value: str, day: float, clock: str = "08:00", unit: str = "kg", rid: str | None = None
) -> ReadingFact:
    at = local(int(day), clock) + timedelta(days=day - int(day))
    return reading("weight", value, unit, at=at, reading_id=rid or f"w{value}{unit}@{day}{clock}")


WEIGHT_CASES = [
    ("+1.9", [w("80.0", 0), w("81.9", 3)], False),
    ("+2.0", [w("80.0", 0), w("82.0", 3)], False),
    ("+2.1", [w("80.0", 0), w("82.1", 3)], True),
    ("daily +2.1 over 3 days", [w("80.0", 0), w("80.6", 1), w("81.3", 2), w("82.1", 3)], True),
    ("min not first", [w("81.0", 0), w("80.0", 1), w("81.0", 2), w("82.1", 3)], True),
    ("missing days, exactly 72 h", [w("80.0", 0), w("82.1", 3)], True),
    ("72 h + 1 min: outside", [w("80.0", 0, "07:59"), w("82.1", 3)], False),
    (
        "duplicate same-day anchor",
        [w("80.0", 0, "08:05"), w("82.0", 3), w("82.1", 3, "08:05")],
        True,
    ),
    (
        "duplicate same-day, both +2.0",
        [w("80.0", 0), w("82.0", 3), w("82.0", 3, "08:05", rid="dup")],
        False,
    ),
    ("duplicate baseline", [w("80.0", 0), w("80.0", 0, "08:03", rid="dup"), w("82.1", 3)], True),
    ("same day morning to evening", [w("80.0", 2, "07:00"), w("82.1", 2, "21:00")], True),
    ("tie at the same time", [w("80.0", 3), w("82.5", 3)], False),
    ("first weight ever", [w("95.0", 0)], False),
    ("weight loss", [w("80.0", 0), w("77.0", 3)], False),
    # Pounds: 4.4 lb = 1.9958 kg; 4.5 lb = 2.0412 kg.
    ("lb +4.4", [w("176.4", 0, unit="[lb_av]"), w("180.8", 3, unit="[lb_av]")], False),
    ("lb +4.5", [w("176.4", 0, unit="[lb_av]"), w("180.9", 3, unit="[lb_av]")], True),
    ("kg then lb +2.1", [w("80.0", 0), w("181.0", 3, unit="[lb_av]")], True),
    ("kg then lb +1.96", [w("80.0", 0), w("180.7", 3, unit="[lb_av]")], False),
    ("g +2.0", [w("80000", 0, unit="g"), w("82000", 3, unit="g")], False),
    ("g +2.1", [w("80000", 0, unit="g"), w("82100", 3, unit="g")], True),
]


@pytest.mark.parametrize(
    ("name", "readings", "expected"), WEIGHT_CASES, ids=[c[0] for c in WEIGHT_CASES]
)
def test_weight_gain_boundaries(name: str, readings: list[ReadingFact], expected: bool) -> None:
    assert last_fires("weight-gain-hf", readings) is expected


@pytest.mark.parametrize(
    ("gain", "value", "expected"),
    [
        (Decimal("2.5"), "82.4", False),
        (Decimal("2.5"), "82.5", False),
        (Decimal("2.5"), "82.6", True),
        (qty("5", "[lb_av]"), "82.2", False),  # 4.85 lb
        (qty("5", "[lb_av]"), "82.3", True),  # 5.07 lb
    ],
)
def test_weight_gain_plan_threshold(gain: Decimal, value: str, expected: bool) -> None:
    p = plan("weight-gain-hf", params={"weight-gain-hf": {"gain": gain}})
    assert last_fires("weight-gain-hf", [w("80.0", 0), w(value, 3)], p) is expected


def test_weight_gain_explains_which_weights() -> None:
    readings = [w("80.4", 0), w("80.0", 1), w("81.0", 2), w("82.1", 3)]
    (finding,) = run(plan("weight-gain-hf"), readings)
    assert finding.computed["reference_min"] == "80.0" and finding.computed["delta"] == "2.1"
    assert finding.thresholds["gain"] == {"value": "2.0", "unit": "kg"}
    assert finding.thresholds["window"] == {"value": "72", "unit": "h"}
    assert finding.reading_ids == tuple(r.id for r in readings)
    assert "förändring 2,1 kg (82,1 − lägsta 80,0) > 2,0 kg" in finding.summary["sv"]


# --- glucose-high: > 15 mmol/L twice within 24 h ------------------------------------------


def g(value: str, hours: float, unit: str = "mmol/L", type_name: str = "glucose") -> ReadingFact:
    return reading(type_name, value, unit, at=local(0, "06:00") + timedelta(hours=hours))


GLUCOSE_HIGH_CASES = [
    ("one high", [g("18", 0)], False),
    ("two within 24 h", [g("15.1", 0), g("15.2", 23)], True),
    ("exactly 24 h apart", [g("16", 0), g("16", 24)], True),
    ("24 h + 1 min apart", [g("16", 0), g("16", 24 + 1 / 60)], False),
    ("15.0 is not above 15", [g("15.0", 0), g("16", 2)], False),
    ("the anchor must be high", [g("16", 0), g("16", 1), g("9", 2)], False),
    ("271 mg/dL (15.04) counts", [g("271", 0, "mg/dL"), g("280", 2, "mg/dL")], True),
    ("270 mg/dL (14.99) does not", [g("270", 0, "mg/dL"), g("280", 2, "mg/dL")], False),
    ("mixed units", [g("16", 0), g("290", 2, "mg/dl")], True),
    ("CGM is not counted", [g("16", 0, type_name="cgm_glucose"), g("16", 2)], False),
]


@pytest.mark.parametrize(
    ("name", "readings", "expected"), GLUCOSE_HIGH_CASES, ids=[c[0] for c in GLUCOSE_HIGH_CASES]
)
def test_glucose_high_boundaries(name: str, readings: list[ReadingFact], expected: bool) -> None:
    assert last_fires("glucose-high", readings) is expected


def test_glucose_high_count_is_a_plan_parameter() -> None:
    three = plan("glucose-high", params={"glucose-high": {"min_count": Decimal(3)}})
    readings = [g("16", 0), g("16", 5), g("16", 10)]
    assert fired_at("glucose-high", readings, three) == {readings[2].id}
    assert fired_at("glucose-high", readings) == {readings[1].id, readings[2].id}
    (finding,) = list(run(three, readings))
    assert finding.computed["count_in_window"] == "3"
    assert finding.thresholds["min_count"] == {"value": "3"}


# --- peak-flow-zone: < 80 % of personal best yellow, < 50 % red ---------------------------

PEAK = plan("peak-flow-zone", params={"peak-flow-zone": {"personal_best": Decimal(500)}})


@pytest.mark.parametrize(
    ("value", "band", "severity", "priority"),
    [
        ("400", None, None, None),  # exactly 80 %
        ("399", "yellow", "moderate", "routine"),
        ("250", "yellow", "moderate", "routine"),  # exactly 50 %
        ("249", "red", "high", "urgent"),  # both bands hold: the most severe speaks
        ("60", "red", "high", "urgent"),
        ("650", None, None, None),
    ],
)
def test_peak_flow_zones(
    value: str, band: str | None, severity: str | None, priority: str | None
) -> None:
    findings = run(PEAK, [reading("peak_flow", value)])
    if band is None:
        assert findings == []
        return
    (finding,) = findings
    assert finding.computed["band"] == band
    assert finding.flag_severity == severity
    assert finding.advice is not None and finding.advice.priority == priority


def test_peak_flow_cut_offs_are_plan_parameters() -> None:
    p = plan(
        "peak-flow-zone",
        params={"peak-flow-zone": {"personal_best": Decimal(450), "yellow_below": Decimal(70)}},
    )
    assert run(p, [reading("peak_flow", "315")]) == []  # exactly 70 %
    (finding,) = run(p, [reading("peak_flow", "314")])
    assert finding.computed["percent_of_reference"] == "69.8"
    assert finding.thresholds["personal_best"] == {"value": "450", "unit": "L/min"}


def test_peak_flow_needs_a_personal_best_in_the_plan() -> None:
    errors = validate_plan(
        PlanBody.model_validate({"rules": [{"rule": "peak-flow-zone"}]}), LIBRARY
    )
    assert [(e.loc, e.code) for e in errors] == [("rules.0.params.personal_best", "missing_param")]


# --- hf-weight-and-breathlessness: composite -----------------------------------------------


def score(value: str, hours: float, instrument: str = "breathlessness") -> ReadingFact:
    return reading(
        "symptom_score",
        value,
        "{score}",
        at=local(3, "08:00") + timedelta(hours=hours),
        context={"instrument": instrument},
    )


GAIN = [w("80.0", 0), w("82.1", 3)]
COMPOSITE_CASES = [
    ("weight then score 2 h later", [*GAIN, score("4", 2)], {"score"}),
    ("score then weight 20 h later", [w("80.0", 0), score("5", -20), w("82.1", 3)], {"weight"}),
    ("score exactly 24 h before", [w("80.0", 0), score("5", -24), w("82.1", 3)], {"weight"}),
    ("score 24 h + 1 min before", [w("80.0", 0), score("5", -24 - 1 / 60), w("82.1", 3)], set()),
    ("score 3 is enough", [*GAIN, score("3", 1)], {"score"}),
    ("score 2 is not", [*GAIN, score("2", 1)], set()),
    ("another instrument", [*GAIN, score("30", 1, "CAT")], set()),
    ("instrument spelled otherwise", [*GAIN, score("4", 1, "Breathlessness")], {"score"}),
    ("no weight gain", [w("80.0", 0), w("81.9", 3), score("8", 1)], set()),
    (
        "gain in pounds (+4.5 lb)",
        [w("176.4", 0, unit="[lb_av]"), w("180.9", 3, unit="[lb_av]"), score("3", 1)],
        {"score"},
    ),
    (
        "no gain in pounds (+4.4 lb)",
        [w("176.4", 0, unit="[lb_av]"), w("180.8", 3, unit="[lb_av]"), score("3", 1)],
        set(),
    ),
]


@pytest.mark.parametrize(
    ("name", "readings", "expected"), COMPOSITE_CASES, ids=[c[0] for c in COMPOSITE_CASES]
)
def test_composite(name: str, readings: list[ReadingFact], expected: set[str]) -> None:
    fired = fired_at("hf-weight-and-breathlessness", readings)
    kinds = {"score" if rid.startswith("symptom") else "weight" for rid in fired}
    assert kinds == expected


def test_composite_explains_both_parts() -> None:
    readings = [*GAIN, score("4", 2)]
    (finding,) = list(run(plan("hf-weight-and-breathlessness"), readings))
    assert finding.computed["weight.held"] == finding.computed["breathlessness.held"] == "true"
    assert finding.computed["weight.delta"] == "2.1"
    assert finding.computed["weight.reading"] == readings[1].id
    assert set(finding.reading_ids) == {r.id for r in readings}
    assert finding.flag_severity == "high"


def test_composite_any() -> None:
    rule = LIBRARY.get("hf-weight-and-breathlessness")
    assert rule is not None
    data = rule.model_dump(mode="json")
    data["match"] = "any"
    from rules.language import RuleLibrary, parse_rule

    gain = LIBRARY.get("weight-gain-hf")
    assert gain is not None
    library = RuleLibrary(rules=(parse_rule(data), gain))
    only_score = [score("6", 0)]
    findings = evaluate(
        plan("hf-weight-and-breathlessness"),
        only_score,
        new_reading_ids={only_score[0].id},
        now=local(0),
        library=library,
    )
    assert [f.computed["weight.held"] for f in findings] == ["false"]


# --- the run reports what it evaluated -----------------------------------------------------


def test_evaluate_run_reports_every_evaluated_anchor() -> None:
    readings = [w("80.0", 0), w("81.0", 1), w("82.1", 3)]
    result = evaluate_run(
        plan("weight-gain-hf", "bp-very-high"),
        readings,
        new_reading_ids={readings[0].id},
        now=local(0),
        library=LIBRARY,
    )
    # The new reading, and every later weight whose 72 h window holds it.
    assert result.evaluated == {("weight-gain-hf", r.id) for r in readings}
    assert [f.key for f in result.findings] == [("weight-gain-hf", readings[2].id)]
    assert result.retracted([("weight-gain-hf", readings[1].id), ("x", "y")]) == {
        ("weight-gain-hf", readings[1].id)
    }


def test_composite_speaks_for_the_weight_gain_at_one_reading() -> None:
    readings = [w("80.0", 0), score("5", -2), w("82.1", 3)]
    findings = run(plan("weight-gain-hf", "hf-weight-and-breathlessness"), readings)
    by_rule = {f.rule_id: f for f in findings if f.anchor_reading_id == readings[2].id}
    assert by_rule["hf-weight-and-breathlessness"].flag_severity == "high"
    assert by_rule["weight-gain-hf"].superseded_by == "hf-weight-and-breathlessness"
    assert by_rule["weight-gain-hf"].advice is None
