"""Issue 9 (CLINICAL.md §7): blood ketones, sustained high glucose, and the baseline kind with
its two rules (COPD deterioration, weight gain over a week), at their edges in both units."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from rules.engine import Finding, evaluate, evaluate_run
from rules.facts import ReadingFact
from rules.language import load_library, parse_rule
from rules.plan import PlanSpec
from tests.rules.factories import local, plan, reading
from tests.rules.test_backtest import _incremental, _vectorised

LIBRARY = load_library()


def run(plan_spec: PlanSpec, readings: Sequence[ReadingFact]) -> list[Finding]:
    """Evaluate every reading as new."""
    return evaluate(
        plan_spec, readings, new_reading_ids={r.id for r in readings}, now=local(0), library=LIBRARY
    )


def at_last(
    rule_id: str, readings: Sequence[ReadingFact], plan_spec: PlanSpec | None = None
) -> Finding | None:
    """Return the rule's finding at the last reading, or None."""
    for finding in run(plan_spec or plan(rule_id), readings):
        if finding.rule_id == rule_id and finding.anchor_reading_id == readings[-1].id:
            return finding
    return None


# --- ketones-high: ≥ 0.6 raised, ≥ 1.5 risk, ≥ 3.0 emergency (ISPAD 2022) -------------------

KETONE_CASES = [
    ("0.0", None, None),
    ("0.5", None, None),
    ("0.6", "raised", "low"),
    ("1.4", "raised", "low"),
    ("1.5", "risk", "moderate"),
    ("2.9", "risk", "moderate"),
    ("3.0", "emergency", "high"),
    ("8.0", "emergency", "high"),
]


@pytest.mark.parametrize("unit", ["mmol/L", "mmol/l"])
@pytest.mark.parametrize(("value", "band", "severity"), KETONE_CASES)
def test_ketone_bands(value: str, band: str | None, severity: str | None, unit: str) -> None:
    finding = at_last("ketones-high", [reading("ketones", value, unit)])
    if band is None:
        assert finding is None
        return
    assert finding is not None
    assert finding.computed["band"] == band and finding.flag_severity == severity
    assert finding.advice is not None and finding.advice.priority == "urgent"
    shown = value.replace(".", ",")
    assert f"{shown} {unit}" in finding.advice.body["sv"]


def test_ketone_emergency_says_112_now() -> None:
    finding = at_last("ketones-high", [reading("ketones", "3.2")])
    assert finding is not None and finding.advice is not None
    assert finding.advice.title == {"sv": "Ring 112 nu", "en": "Call 112 now"}
    assert "1177" not in finding.advice.body["sv"]


def test_ketone_cut_offs_are_plan_parameters() -> None:
    p = plan("ketones-high", params={"ketones-high": {"raised_from": Decimal("0.5")}})
    finding = at_last("ketones-high", [reading("ketones", "0.5")], p)
    assert finding is not None and finding.computed["band"] == "raised"
    assert finding.thresholds["raised_from"] == {"value": "0.5", "unit": "mmol/L"}


# --- glucose-sustained-high: every reading of the last 2 h ≥ 14 mmol/L (250 mg/dL), ≥ 2 ------


def gl(value: str, minutes: float, unit: str = "mmol/L", type_name: str = "glucose") -> ReadingFact:
    return reading(type_name, value, unit, at=local(0, "10:00") + timedelta(minutes=minutes))


def cgm(values: Sequence[str], start: float = 0) -> list[ReadingFact]:
    return [gl(v, start + 5 * i, type_name="cgm_glucose") for i, v in enumerate(values)]


SUSTAINED_CASES = [
    ("one reading is not sustained", [gl("18", 0)], False),
    ("14.0 twice", [gl("14.0", 0), gl("14.0", 60)], True),
    ("13.9 then 14.5", [gl("13.9", 0), gl("14.5", 60)], False),
    ("14.5 then 13.9", [gl("14.5", 0), gl("13.9", 60)], False),
    ("exactly 2 h apart", [gl("15", 0), gl("15", 120)], True),
    ("2 h + 1 min apart", [gl("15", 0), gl("15", 121)], False),
    (
        "an earlier low-enough reading in the window",
        [gl("12", 0), gl("15", 30), gl("15", 90)],
        False,
    ),
    ("250 mg/dL twice (the published pair)", [gl("250", 0, "mg/dL"), gl("250", 60, "mg/dL")], True),
    ("249 mg/dL then 300", [gl("249", 0, "mg/dL"), gl("300", 60, "mg/dL")], False),
    ("mixed units: 252 mg/dL is 13.99 mmol/L", [gl("14.0", 0), gl("252", 60, "mg/dL")], False),
    ("mixed units: 253 mg/dL is 14.04 mmol/L", [gl("14.0", 0), gl("253", 60, "mg/dL")], True),
    ("CGM 2 h at ≥ 14", cgm(["14.0"] * 25), True),
    ("CGM with one 13.9 in the last 2 h", cgm(["15"] * 10 + ["13.9"] + ["15"] * 14), False),
    ("CGM and a finger prick", [*cgm(["15"] * 3), gl("14.2", 20)], True),
]


@pytest.mark.parametrize(
    ("name", "readings", "expected"), SUSTAINED_CASES, ids=[c[0] for c in SUSTAINED_CASES]
)
def test_glucose_sustained_high(name: str, readings: list[ReadingFact], expected: bool) -> None:
    assert (at_last("glucose-sustained-high", readings) is not None) is expected


def test_sustained_high_tells_to_measure_ketones_and_speaks_for_glucose_high() -> None:
    readings = [gl("16.5", 0), gl("16.0", 60)]
    findings = run(plan("glucose-high", "glucose-sustained-high"), readings)
    by_rule = {f.rule_id: f for f in findings if f.anchor_reading_id == readings[-1].id}
    sustained = by_rule["glucose-sustained-high"]
    assert sustained.advice is not None and "ketoner" in sustained.advice.body["sv"]
    assert "16,0 mmol/L" in sustained.advice.body["sv"]  # $value is the lowest of the window
    assert sustained.flag_severity == "moderate"
    assert by_rule["glucose-high"].superseded_by == "glucose-sustained-high"
    assert by_rule["glucose-high"].advice is None


# --- hf-weight-gain-week: weight − median of the weights of days D−8..D−6 > 2.0 kg -----------


def w(value: str, day: int, clock: str = "07:30", unit: str = "kg") -> ReadingFact:
    return reading(
        "weight", value, unit, at=local(day, clock), reading_id=f"w{value}{unit}@{day}{clock}"
    )


BASE_WEEK = [w("80.0", 0), w("80.0", 1), w("80.0", 2)]
WEEK_CASES = [
    ("+1.9", [*BASE_WEEK, w("81.9", 8)], False),
    ("+2.0 exactly", [*BASE_WEEK, w("82.0", 8)], False),
    ("+2.1", [*BASE_WEEK, w("82.1", 8)], True),
    (
        "median resists one odd weight",
        [w("80.0", 0), w("84.0", 1), w("80.0", 2), w("82.1", 8)],
        True,
    ),
    ("even count: mean of the middle two", [w("80.0", 0), w("80.4", 1), w("82.2", 8)], False),
    ("even count, +2.1 over 80.2", [w("80.0", 0), w("80.4", 1), w("82.3", 8)], True),
    ("one reference weight is too few", [w("80.0", 1), w("82.5", 8)], False),
    ("no reference at all", [w("82.5", 8)], False),
    ("days D−5..D−1 are the gap", [*BASE_WEEK, w("84.0", 3), w("84.0", 7), w("82.1", 8)], True),
    ("day D−9 is outside", [w("70.0", -1), w("80.0", 0), w("80.0", 1), w("82.0", 8)], False),
    (
        "local midnight of D−8 is inside",
        [w("70.0", 0, "00:00"), w("70.0", 1), w("80.0", 2), w("80.0", 2, "20:00"), w("82.1", 8)],
        True,
    ),
    ("local midnight of D−5 is outside", [*BASE_WEEK, w("60.0", 3, "00:00"), w("82.0", 8)], False),
    ("slow gain, each 3 days < 2 kg", [w(f"{80 + 0.35 * d:.2f}", d) for d in range(9)], True),
    (
        "lb +4.4 (1.996 kg)",
        [w("176.4", d, unit="[lb_av]") for d in range(3)] + [w("180.8", 8, unit="[lb_av]")],
        False,
    ),
    (
        "lb +4.5 (2.041 kg)",
        [w("176.4", d, unit="[lb_av]") for d in range(3)] + [w("180.9", 8, unit="[lb_av]")],
        True,
    ),
    ("kg reference, lb anchor", [*BASE_WEEK, w("181.0", 8, unit="[lb_av]")], True),
]


@pytest.mark.parametrize(
    ("name", "readings", "expected"), WEEK_CASES, ids=[c[0] for c in WEEK_CASES]
)
def test_weight_gain_week(name: str, readings: list[ReadingFact], expected: bool) -> None:
    assert (at_last("hf-weight-gain-week", readings) is not None) is expected


def test_weight_gain_week_explains_its_baseline() -> None:
    readings = [*BASE_WEEK, w("82.1", 8)]
    finding = at_last("hf-weight-gain-week", readings)
    assert finding is not None
    assert finding.computed["baseline"] == "80.0" and finding.computed["change"] == "2.1"
    assert finding.computed["baseline_readings"] == "3"
    assert finding.computed["baseline_start"] == local(0, "00:00").isoformat()
    assert finding.computed["baseline_end"] == local(3, "00:00").isoformat()
    assert finding.thresholds["gain"] == {"value": "2.0", "unit": "kg"}
    assert finding.thresholds["window"] == {"value": "3", "unit": "d"}
    assert finding.thresholds["gap"] == {"value": "5", "unit": "d"}
    assert (
        "vikt 82,1 kg (baslinje 80,0 kg, median av 3 mätningar): ökning 2,1 kg > 2,0 kg"
        in (finding.summary["sv"])
    )


def test_weight_gain_week_speaks_for_the_fast_gain_on_one_reading() -> None:
    readings = [*BASE_WEEK, w("80.0", 6), w("82.5", 8)]
    findings = run(plan("weight-gain-hf", "hf-weight-gain-week"), readings)
    by_rule = {f.rule_id: f for f in findings if f.anchor_reading_id == readings[-1].id}
    assert by_rule["hf-weight-gain-week"].flag_severity == "moderate"
    assert by_rule["weight-gain-hf"].superseded_by == "hf-weight-gain-week"
    assert by_rule["weight-gain-hf"].flag_severity is None
    # A fast gain the week does not show (a loss before it): weight-gain-hf speaks alone.
    readings = [w("84.0", 0), w("84.0", 1), w("84.0", 2), w("80.0", 6), w("82.5", 8)]
    findings = run(plan("weight-gain-hf", "hf-weight-gain-week"), readings)
    assert [f.rule_id for f in findings if f.anchor_reading_id == readings[-1].id] == [
        "weight-gain-hf"
    ]


def test_a_late_reference_weight_re_evaluates_the_anchor_a_week_later() -> None:
    late, *rest = [w("80.0", 0), w("80.0", 1), w("82.1", 8)]
    result = evaluate_run(
        plan("hf-weight-gain-week"),
        [late, *rest],
        new_reading_ids={late.id},
        now=local(9),
        library=LIBRARY,
    )
    assert ("hf-weight-gain-week", rest[-1].id) in result.evaluated
    assert [f.anchor_reading_id for f in result.findings] == [rest[-1].id]


# --- copd-deterioration: SpO2 fall ≥ 3, pulse rise ≥ 10, CAT rise ≥ 2, against 14 days -------


def morning(
    day: int,
    spo2: str,
    pulse: str,
    cat: str | None,
    *,
    spo2_unit: str = "%",
    cat_clock: str = "08:10",
    instrument: str = "CAT",
) -> list[ReadingFact]:
    """One morning's SpO2 and pulse (08:00) and CAT score."""
    readings = [
        reading("spo2", spo2, spo2_unit, at=local(day, "08:00"), reading_id=f"spo2@{day}"),
        reading("pulse", pulse, at=local(day, "08:00"), reading_id=f"pulse@{day}"),
    ]
    if cat is not None:
        readings.append(
            reading(
                "symptom_score",
                cat,
                "{score}",
                at=local(day, cat_clock),
                reading_id=f"cat@{day}",
                context={"instrument": instrument},
            )
        )
    return readings


def stable(days: range, spo2: str = "92", pulse: str = "72", cat: str = "17") -> list[ReadingFact]:
    return [r for day in days for r in morning(day, spo2, pulse, cat)]


BASELINE = stable(range(14))  # days 0..13; the anchor day 16 leaves out days 14 and 15


def copd(*today: ReadingFact, history: Sequence[ReadingFact] = BASELINE) -> Finding | None:
    readings = [*history, *today]
    return at_last("copd-deterioration", readings)


COPD_CASES: list[tuple[str, list[ReadingFact], bool]] = [
    ("the story: 88, 87, 22", morning(16, "88", "87", "22"), True),
    ("SpO2 fall 3 (89)", morning(16, "89", "85", "22"), True),
    ("SpO2 fall 2 (90)", morning(16, "90", "85", "22"), False),
    ("SpO2 as a fraction 0.89", morning(16, "0.89", "85", "22", spo2_unit="1"), True),
    ("SpO2 as a fraction 0.90", morning(16, "0.90", "85", "22", spo2_unit="1"), False),
    ("pulse rise 10 (82)", morning(16, "88", "82", "22"), True),
    ("pulse rise 9 (81)", morning(16, "88", "81", "22"), False),
    (
        "pulse in bpm",
        [
            *morning(16, "88", "82", None),
            reading("pulse", "82", "bpm", at=local(16, "08:01")),
            *morning(16, "88", "82", "22")[2:],
        ],
        True,
    ),
    ("CAT rise 2 (19)", morning(16, "88", "87", "19"), True),
    ("CAT rise 1 (18)", morning(16, "88", "87", "18"), False),
    ("breathlessness is not CAT", morning(16, "88", "87", "9", instrument="breathlessness"), False),
    ("CAT 12 h after SpO2 and pulse", morning(16, "88", "87", "22", cat_clock="20:00"), True),
    ("CAT 12 h + 1 min after", morning(16, "88", "87", "22", cat_clock="20:01"), False),
]


@pytest.mark.parametrize(("name", "today", "expected"), COPD_CASES, ids=[c[0] for c in COPD_CASES])
def test_copd_deterioration(name: str, today: list[ReadingFact], expected: bool) -> None:
    assert (copd(*today) is not None) is expected


def test_copd_needs_a_baseline_of_7_readings() -> None:
    today = morning(16, "85", "95", "25")
    assert copd(*today, history=stable(range(7, 14))) is not None  # 7 readings each
    assert copd(*today, history=stable(range(8, 14))) is None  # 6: a new patient


def test_copd_baseline_leaves_out_the_gap_days() -> None:
    # The two days before the anchor's day are already bad: they do not pull the baseline.
    worse = [*BASELINE, *stable(range(14, 16), spo2="88", pulse="90", cat="24")]
    assert copd(*morning(16, "89", "84", "20"), history=worse) is not None
    # ... whereas days inside the window do (the median of 14 days with 8 bad ones).
    bad = stable(range(6), "92", "72", "17") + stable(range(6, 14), "88", "90", "24")
    assert copd(*morning(16, "88", "87", "22"), history=bad) is None


def test_copd_names_all_three_with_baseline_and_current_values() -> None:
    finding = copd(*morning(16, "88", "87", "22"))
    assert finding is not None and finding.flag_severity == "high"
    c = finding.computed
    assert (c["spo2.value"], c["spo2.baseline"], c["spo2.change"]) == ("88", "92", "4")
    assert (c["pulse.value"], c["pulse.baseline"], c["pulse.change"]) == ("87", "72", "15")
    assert (c["cat.value"], c["cat.baseline"], c["cat.change"]) == ("22", "17", "5")
    assert c["spo2.baseline_readings"] == c["pulse.baseline_readings"] == "14"
    sv, en = finding.summary["sv"], finding.summary["en"]
    assert "syremättnad 88 % (baslinje 92 %, median av 14 mätningar): sänkning 4 % ≥ 3 %" in sv
    assert (
        "puls 87 slag per minut (baslinje 72 slag per minut, median av 14 mätningar): "
        "ökning 15 slag per minut ≥ 10 slag per minut"
    ) in sv
    assert "CAT 22 (baslinje 17, median av 14 mätningar): ökning 5 ≥ 2" in sv
    assert "oxygen saturation 88 % (baseline 92 %, median of 14 readings): fall 4 % ≥ 3 %" in en
    assert finding.advice is not None and "112" in finding.advice.body["sv"]


def test_backtest_agrees_on_the_baseline_rules() -> None:
    readings = [*BASELINE, *morning(16, "88", "87", "22"), *morning(17, "89", "84", "21")]
    readings += [w("80.0", d) for d in range(3)] + [w("81.0", 6), w("82.1", 8), w("82.4", 9)]
    p = plan("copd-deterioration", "hf-weight-gain-week", "weight-gain-hf")
    fired = _incremental(p, readings)
    assert _vectorised(p, readings) == fired
    assert {rule for rule, _ in fired} == {
        "copd-deterioration",
        "hf-weight-gain-week",
    }


def test_backtest_of_an_empty_history() -> None:
    # A composite part with a context (the CAT) over no readings at all: a new patient.
    p = plan("copd-deterioration", "hf-weight-gain-week")
    assert _vectorised(p, []) == {} == _incremental(p, [])


# --- the baseline kind's schema ---------------------------------------------------------------


def _baseline_rule(**changes: Any) -> dict[str, Any]:
    rule = LIBRARY.get("hf-weight-gain-week")
    assert rule is not None
    data = rule.model_dump(mode="json")
    for key, value in changes.items():
        if key == "params":
            for name, spec in value.items():
                data["params"][name] = {**data["params"][name], **spec}
        else:
            data[key] = value
    return data


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"params": {"gap_days": {"unit": "h"}}}, "both be local days"),
        ({"params": {"gap_days": {"integer": False}}}, "must be an integer"),
        ({"params": {"gap_days": {"min": -1}}}, "min of 0"),
        ({"params": {"min_readings": {"min": 0}}}, "min of 1"),
        ({"gap": "no_such_param"}, "not defined"),
        ({"types": ["temperature"], "params": {"gain": {"unit": "Cel"}}}, "offset unit"),
    ],
)
def test_baseline_schema_refuses(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        parse_rule(_baseline_rule(**changes))


def test_rolling_baseline_in_hours() -> None:
    data = _baseline_rule(
        params={
            "baseline_days": {"unit": "h", "default": 24, "min": 1, "max": 48, "integer": False},
            "gap_days": {"unit": "h", "default": 12, "min": 0, "max": 48, "integer": False},
            "min_readings": {"default": 1},
        }
    )
    rule = parse_rule(data)
    from rules.language import RuleLibrary

    fast = LIBRARY.get("weight-gain-hf")
    assert fast is not None
    library = RuleLibrary(rules=(rule, fast))
    # [t − 36 h, t − 12 h): a weight exactly 36 h before counts, one exactly 12 h before does not.
    anchor = w("82.1", 8, "20:00")
    far = reading("weight", "80.0", at=anchor.time - timedelta(hours=36), reading_id="far")
    near = reading("weight", "70.0", at=anchor.time - timedelta(hours=12), reading_id="near")
    findings = evaluate(
        plan("hf-weight-gain-week"),
        [far, near, anchor],
        new_reading_ids={anchor.id},
        now=local(9),
        library=library,
    )
    (finding,) = findings
    assert finding.computed["baseline"] == "80.0" and finding.computed["baseline_readings"] == "1"
