"""The evaluator at the edges of CLINICAL.md §2, in both units."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import orjson
import pytest

from rules.engine import (
    Finding,
    evaluate,
    history_types,
    lookback,
    number_text,
    reading_text,
    reading_types,
)
from rules.facts import ReadingFact
from rules.language import load_library
from rules.plan import PlanSpec
from tests.rules.factories import T0, bp, days, plan, qty, reading

LIBRARY = load_library()


def run(plan_spec: PlanSpec, *readings: ReadingFact, new: set[str] | None = None) -> list[Finding]:
    """Evaluate readings that are all new unless ``new`` says which are."""
    ids = new if new is not None else {r.id for r in readings}
    return evaluate(plan_spec, readings, new_reading_ids=ids, now=T0, library=LIBRARY)


def fired(rule_id: str, r: ReadingFact, plan_spec: PlanSpec | None = None) -> bool:
    findings = run(plan_spec or plan(rule_id), r)
    return any(f.rule_id == rule_id and f.anchor_reading_id == r.id for f in findings)


BOUNDARIES = [
    # bp-very-high: systolic ≥ 180 or diastolic ≥ 110
    ("bp-very-high", bp("179", "109"), False),
    ("bp-very-high", bp("180", "109"), True),
    ("bp-very-high", bp("179", "110"), True),
    ("bp-very-high", bp("185", "100"), True),
    ("bp-very-high", bp("180", "109", "mmHg"), True),
    ("bp-very-high", bp("179", "109", "mmHg"), False),
    # bp-low: systolic < 90
    ("bp-low", bp("90", "60"), False),
    ("bp-low", bp("89", "60"), True),
    ("bp-low", bp("90", "60", "mmHg"), False),
    ("bp-low", bp("89", "60", "mmHg"), True),
    # glucose-low: < 3.9 mmol/L, published as < 70 mg/dL
    ("glucose-low", reading("glucose", "3.9"), False),
    ("glucose-low", reading("glucose", "3.8"), True),
    ("glucose-low", reading("glucose", "3.89"), True),
    ("glucose-low", reading("glucose", "70", "mg/dL"), False),
    ("glucose-low", reading("glucose", "70", "mg/dl"), False),
    ("glucose-low", reading("glucose", "69", "mg/dL"), True),
    ("glucose-low", reading("glucose", "69.9", "mg/dL"), True),
    ("glucose-low", reading("glucose", "3.9", "mmol<180.15588000005408>/L"), False),
    ("glucose-low", reading("cgm_glucose", "3.9"), False),
    ("glucose-low", reading("cgm_glucose", "3.8"), True),
    ("glucose-low", reading("cgm_glucose", "70", "mg/dL"), False),
    ("glucose-low", reading("cgm_glucose", "69", "mg/dL"), True),
    # glucose-very-low: < 3.0 mmol/L, published as < 54 mg/dL
    ("glucose-very-low", reading("glucose", "3.0"), False),
    ("glucose-very-low", reading("glucose", "2.9"), True),
    ("glucose-very-low", reading("glucose", "54", "mg/dL"), False),
    ("glucose-very-low", reading("glucose", "53", "mg/dL"), True),
    ("glucose-very-low", reading("cgm_glucose", "53", "mg/dL"), True),
    # spo2-low: < 92 % by default
    ("spo2-low", reading("spo2", "92"), False),
    ("spo2-low", reading("spo2", "91"), True),
    ("spo2-low", reading("spo2", "0.92", "1"), False),
    ("spo2-low", reading("spo2", "0.91", "1"), True),
    # pulse-abnormal: < 40 or > 120
    ("pulse-abnormal", reading("pulse", "40"), False),
    ("pulse-abnormal", reading("pulse", "39"), True),
    ("pulse-abnormal", reading("pulse", "120"), False),
    ("pulse-abnormal", reading("pulse", "121"), True),
    ("pulse-abnormal", reading("pulse", "121", "bpm"), True),
    ("pulse-abnormal", reading("pulse", "39", "{beats}/min"), True),
    # temperature-fever: ≥ 38.0 °C
    ("temperature-fever", reading("temperature", "37.9"), False),
    ("temperature-fever", reading("temperature", "38.0"), True),
    ("temperature-fever", reading("temperature", "100.4", "[degF]"), True),
    ("temperature-fever", reading("temperature", "100.3", "[degF]"), False),
]


@pytest.mark.parametrize(
    ("rule_id", "r", "expected"),
    BOUNDARIES,
    ids=[f"{rule_id}|{r.id.split('@')[0]}|{expected}" for rule_id, r, expected in BOUNDARIES],
)
def test_boundaries(rule_id: str, r: ReadingFact, expected: bool) -> None:
    assert fired(rule_id, r) is expected


COPD = plan("spo2-low", params={"spo2-low": {"target_low": Decimal(88)}})


@pytest.mark.parametrize(
    ("r", "expected"),
    [
        (reading("spo2", "88"), False),
        (reading("spo2", "87"), True),
        (reading("spo2", "0.88", "1"), False),
        (reading("spo2", "0.87", "1"), True),
        (reading("spo2", "91"), False),
    ],
)
def test_spo2_plan_target(r: ReadingFact, expected: bool) -> None:
    assert fired("spo2-low", r, COPD) is expected


GLUCOSE_72_MG = plan("glucose-low", params={"glucose-low": {"threshold": qty("72", "mg/dL")}})
GLUCOSE_42_MMOL = plan("glucose-low", params={"glucose-low": {"threshold": Decimal("4.2")}})
GLUCOSE_PUBLISHED = plan("glucose-low", params={"glucose-low": {"threshold": Decimal("3.9")}})
GLUCOSE_PUBLISHED_MG = plan(
    "glucose-low", params={"glucose-low": {"threshold": qty("70", "mg/dL")}}
)


@pytest.mark.parametrize(
    ("plan_spec", "r", "expected"),
    [
        # 72 mg/dL replaces the published pair: mg/dL readings compare with 72 ...
        (GLUCOSE_72_MG, reading("glucose", "72", "mg/dL"), False),
        (GLUCOSE_72_MG, reading("glucose", "71", "mg/dL"), True),
        (GLUCOSE_72_MG, reading("glucose", "70", "mg/dL"), True),
        # ... and mmol/L readings are converted to mg/dL (4.0 mmol/L = 72.06 mg/dL).
        (GLUCOSE_72_MG, reading("glucose", "4.0"), False),
        (GLUCOSE_72_MG, reading("glucose", "3.99"), True),
        (GLUCOSE_72_MG, reading("glucose", "3.9"), True),
        # A bare number is in the parameter's own unit; the published 70 mg/dL is gone.
        (GLUCOSE_42_MMOL, reading("glucose", "4.1"), True),
        (GLUCOSE_42_MMOL, reading("glucose", "4.2"), False),
        (GLUCOSE_42_MMOL, reading("glucose", "75", "mg/dL"), True),  # 4.163 mmol/L
        (GLUCOSE_42_MMOL, reading("glucose", "76", "mg/dL"), False),  # 4.219 mmol/L
        # Restating the published value keeps the published pair.
        (GLUCOSE_PUBLISHED, reading("glucose", "70", "mg/dL"), False),
        (GLUCOSE_PUBLISHED, reading("glucose", "3.9"), False),
        (GLUCOSE_PUBLISHED_MG, reading("glucose", "70", "mg/dL"), False),
        (GLUCOSE_PUBLISHED_MG, reading("glucose", "3.9"), False),
        (GLUCOSE_PUBLISHED_MG, reading("glucose", "3.8"), True),
    ],
)
def test_plan_overrides(plan_spec: PlanSpec, r: ReadingFact, expected: bool) -> None:
    assert fired("glucose-low", r, plan_spec) is expected


def test_override_in_a_synonym_unit() -> None:
    p = plan("bp-very-high", params={"bp-very-high": {"systolic_high": qty("170", "mmHg")}})
    assert fired("bp-very-high", bp("170", "90"), p)
    assert not fired("bp-very-high", bp("169", "90"), p)


def test_bp_finding_records_values_and_thresholds() -> None:
    r = bp("185", "100")
    (finding,) = run(plan("bp-very-high", version=7), r)
    assert finding.rule_id == "bp-very-high" and finding.rule_version == 1
    assert finding.plan_version == 7 and finding.mode == "active"
    assert finding.anchor_reading_id == r.id and finding.reading_ids == (r.id,)
    assert dict(finding.computed) == {"systolic": "185", "diastolic": "100"}
    assert finding.thresholds == {
        "systolic_high": {"value": "180", "unit": "mm[Hg]"},
        "diastolic_high": {"value": "110", "unit": "mm[Hg]"},
    }
    assert finding.flag_severity == "high"
    assert finding.cooldown_minutes == 60
    assert finding.advice is not None and finding.advice.priority == "urgent"
    assert "185/100 mmHg" in finding.advice.body["sv"]
    assert "1177" in finding.advice.body["sv"] and "1177" in finding.advice.body["en"]


def test_published_unit_is_compared_and_recorded() -> None:
    r = reading("glucose", "69", "mg/dL")
    (finding,) = run(plan("glucose-low"), r)
    assert finding.computed["value"] == "69"
    assert finding.thresholds["threshold"] == {"value": "70", "unit": "mg/dL"}


def test_explanation_is_json_and_complete() -> None:
    r = reading("temperature", "100.4", "[degF]")
    (finding,) = run(plan("temperature-fever", version=4), r)
    explanation = finding.explanation()
    assert json.loads(json.dumps(explanation)) == explanation
    assert explanation["rule"] == {"id": "temperature-fever", "version": 1}
    assert explanation["plan_version"] == 4
    (used,) = explanation["readings"]
    assert used["id"] == r.id and used["time"] == T0.isoformat()
    assert used["values"] == {"value": "38"} and used["unit"] == "Cel"
    assert used["original"] == {"values": {"value": "100.4"}, "unit": "[degF]"}
    assert explanation["computed"]["value"] == "38"
    assert explanation["thresholds"]["threshold"] == {"value": "38.0", "unit": "Cel"}
    assert explanation["thresholds"]["high_risk"] == {"value": "false"}
    assert explanation["summary"]["sv"].startswith("Feber: 100,4 °F (38 ≥ 38,0 °C)")
    assert explanation["summary"]["en"].startswith("Fever: 100.4 °F (38 ≥ 38.0 °C)")


def test_a_reading_is_written_once_for_every_stored_explanation_that_uses_it() -> None:
    """A fact's explanation JSON is written once and kept with the fact: the stored forms of
    explanations that list the same reading hold that one text, and a changed copy of the
    fact gets its own."""
    r = reading("temperature", "100.4", "[degF]")
    (first,) = run(plan("temperature-fever", version=4), r)
    (again,) = run(plan("temperature-fever", version=5), r)
    written = first.explanation(written=True)["readings"][0]
    assert written is r.listed_json is again.explanation(written=True)["readings"][0]
    assert orjson.loads(orjson.dumps([written])) == [r.listed] == first.explanation()["readings"]
    later = replace(r, time=T0 + timedelta(hours=1))
    assert later.listed_json is not written
    assert orjson.loads(orjson.dumps(later.listed_json))["time"] == later.time.isoformat()
    assert later.listed["original"] == r.listed["original"]
    assert later == replace(later)  # the kept JSON is no field: equality is the fields'
    # Nothing but the written text is kept: no dicts of a listing (nor an instance dict) for
    # the garbage collector to walk in every full collection.
    assert not hasattr(r, "__dict__")


def test_an_explanation_written_for_storing_is_the_same_json() -> None:
    """The form stored with an evaluation holds each reading's JSON written once with the
    fact, and encodes to the same text as the explanation itself."""
    r = reading("temperature", "100.4", "[degF]")
    (finding,) = run(plan("temperature-fever", version=4), r)
    written = finding.explanation(written=True)
    assert written["readings"] == [r.listed_json] and written["readings"][0] is r.listed_json
    assert orjson.dumps(written) == orjson.dumps(finding.explanation())
    assert orjson.loads(orjson.dumps(written))["readings"] == [r.listed]


def test_a_reading_s_local_date_is_the_zone_s_whatever_was_asked_before() -> None:
    """The date kept with a fact answers only for the zone it was asked in."""
    late_evening = replace(
        reading("temperature", "37.0", "Cel"), time=datetime(2026, 12, 3, 23, 30, tzinfo=UTC)
    )
    stockholm, new_york = ZoneInfo("Europe/Stockholm"), ZoneInfo("America/New_York")
    for _ in range(2):  # asked again: the kept answer, the same
        assert late_evening.local_date(stockholm) == date(2026, 12, 4)
    assert late_evening.local_date(new_york) == date(2026, 12, 3)
    assert late_evening.local_date(stockholm) == date(2026, 12, 4)
    assert late_evening == replace(late_evening)  # what is kept is no field


HIGH_RISK = plan("temperature-fever", params={"temperature-fever": {"high_risk": True}})


@pytest.mark.parametrize(
    ("plan_spec", "value", "unit", "severity"),
    [
        (HIGH_RISK, "39.1", "Cel", "high"),
        (HIGH_RISK, "39.0", "Cel", "low"),
        (HIGH_RISK, "38.0", "Cel", "low"),
        (HIGH_RISK, "102.4", "[degF]", "high"),  # 39.11 °C
        (plan("temperature-fever"), "39.1", "Cel", "low"),
        (plan("temperature-fever"), "40.5", "Cel", "low"),
    ],
)
def test_fever_escalates_only_for_high_risk_plans(
    plan_spec: PlanSpec, value: str, unit: str, severity: str
) -> None:
    (finding,) = run(plan_spec, reading("temperature", value, unit))
    assert finding.flag_severity == severity
    # The escalated case speaks with the escalation's advice: contact your care today.
    escalated = severity == "high"
    assert finding.advice is not None
    assert finding.advice.priority == ("urgent" if escalated else "routine")
    assert ("sepsis" in finding.advice.body["sv"]) is escalated
    assert ("i dag" in finding.advice.title["sv"]) is escalated


# --- glucose-low: a flag only for the second low within 7 days --------------------------


def low(
    at_days: float, value: str = "3.5", unit: str = "mmol/L", type_name: str = "glucose"
) -> ReadingFact:
    return reading(type_name, value, unit, at=T0 + days(at_days))


def glucose_low_flag(*readings: ReadingFact, anchor: ReadingFact) -> str | None:
    findings = list(run(plan("glucose-low"), *readings, new={anchor.id}))
    (finding,) = findings
    assert finding.advice is not None and finding.advice.priority == "urgent"
    return finding.flag_severity


def test_first_low_has_advice_but_no_flag() -> None:
    first = low(0)
    assert glucose_low_flag(first, anchor=first) is None


@pytest.mark.parametrize(
    ("earlier", "severity"),
    [
        (low(-2), "low"),
        (low(-7), "low"),  # exactly 168 h: within the window
        (low(-8), None),
        (low(-7.01), None),
        (low(-2, "69", "mg/dL"), "low"),
        (low(-2, "3.9"), None),  # not a low
        (low(-2, type_name="cgm_glucose"), "low"),
        (low(-2, "2.5"), "low"),  # a very low is also a low
        (low(-15 / 1440), None),  # measuring again 15 min later is the same low
        (low(-61 / 1440), "low"),
    ],
)
def test_second_low_within_7_days_raises_the_flag(
    earlier: ReadingFact, severity: str | None
) -> None:
    second = low(0)
    assert glucose_low_flag(earlier, second, anchor=second) == severity


def test_late_upload_of_an_earlier_low_still_counts() -> None:
    later, earlier = low(0), low(-3)
    assert glucose_low_flag(later, earlier, anchor=earlier) == "low"


def test_cgm_episode_counts_once() -> None:
    episode = [low(i * 5 / 1440, type_name="cgm_glucose") for i in range(12)]
    assert glucose_low_flag(*episode, anchor=episode[-1]) is None
    assert glucose_low_flag(low(-3), *episode, anchor=episode[-1]) == "low"


def test_count_is_recorded() -> None:
    readings = (low(-6), low(-1), low(0))
    (finding,) = run(plan("glucose-low"), *readings, new={readings[-1].id})
    assert finding.computed["count_in_window"] == "3"
    assert finding.thresholds["min_count"] == {"value": "2"}
    assert finding.thresholds["window_hours"] == {"value": "168", "unit": "h"}
    assert set(finding.reading_ids) == {r.id for r in readings}


def test_each_occurrence_is_listed_by_its_first_reading() -> None:
    """A CGM low of an hour is one occurrence and one reading in the finding: listing
    every reading of every low in 7 days would grow with the square of the stream."""
    earlier = [low(-3 + i * 5 / 1440, type_name="cgm_glucose") for i in range(12)]
    now = [low(i * 5 / 1440, type_name="cgm_glucose") for i in range(12)]
    (finding,) = run(plan("glucose-low"), *earlier, *now, new={now[5].id})
    assert finding.computed["count_in_window"] == "2"
    assert finding.flag_severity == "low"
    assert finding.reading_ids == (earlier[0].id, now[0].id, now[5].id)


def test_window_must_hold_the_anchor() -> None:
    # Lows at -5, 0 and +5 days: every 7-day span holding the anchor holds only two.
    readings = (low(-5), low(0), low(5))
    (finding,) = run(plan("glucose-low"), *readings, new={readings[1].id})
    assert finding.computed["count_in_window"] == "2"


# --- modes, supersession, order ---------------------------------------------------------


def test_plan_mode_off_skips_the_rule() -> None:
    assert run(plan("bp-very-high", modes={"bp-very-high": "off"}), bp("200", "120")) == []


def test_plan_mode_monitor_records_the_finding() -> None:
    (finding,) = run(plan("bp-very-high", modes={"bp-very-high": "monitor"}), bp("200", "120"))
    assert finding.mode == "monitor"


def test_very_low_speaks_for_the_reading() -> None:
    r = reading("glucose", "2.9")
    by_rule = {f.rule_id: f for f in run(plan(), r)}
    assert set(by_rule) == {"glucose-low", "glucose-very-low"}
    assert by_rule["glucose-very-low"].advice is not None
    assert by_rule["glucose-very-low"].flag_severity == "high"
    superseded = by_rule["glucose-low"]
    assert superseded.advice is None and superseded.flag_severity is None
    assert superseded.superseded_by == "glucose-very-low"
    assert superseded.explanation()["superseded_by"] == "glucose-very-low"


def test_a_monitored_rule_supersedes_nothing() -> None:
    r = reading("glucose", "2.9")
    p = plan("glucose-low", "glucose-very-low", modes={"glucose-very-low": "monitor"})
    by_rule = {f.rule_id: f for f in run(p, r)}
    assert by_rule["glucose-low"].advice is not None
    assert by_rule["glucose-low"].superseded_by is None


def test_findings_are_ordered_by_time_then_rule() -> None:
    readings = [
        reading("glucose", "2.5", at=T0 + days(1)),
        bp("200", "80", at=T0),
        reading("spo2", "85", at=T0 + days(0.5)),
    ]
    findings = run(plan(), *readings)
    order = [(f.anchor_reading_id, f.rule_id) for f in findings]
    assert order == [
        (readings[1].id, "bp-very-high"),
        (readings[2].id, "spo2-low"),
        (readings[0].id, "glucose-low"),
        (readings[0].id, "glucose-very-low"),
    ]


def test_only_new_readings_are_anchors() -> None:
    old, new = bp("200", "120", at=T0 - days(1)), bp("120", "80")
    assert run(plan(), old, new, new={new.id}) == []


def test_rules_outside_the_plan_and_unknown_types_are_skipped() -> None:
    assert run(plan("bp-low"), bp("200", "120"), reading("glucose", "2.0")) == []
    odd = ReadingFact(
        id="x",
        type="heart_sound",
        time=T0,
        values={"value": Decimal(1)},
        unit="1",
        original_values={"value": Decimal(1)},
        original_unit="1",
    )
    assert run(plan(), odd) == []


def test_unknown_plan_rule_is_skipped() -> None:
    p = PlanSpec.model_validate({"version": 1, "rules": [{"rule": "no-such-rule"}]})
    assert run(p, bp("200", "120")) == []


def test_the_same_reading_twice_counts_once_and_conflicts_are_refused() -> None:
    r = bp("200", "120")
    assert len(run(plan("bp-very-high"), r, r)) == 1
    twin = bp("120", "80", reading_id=r.id)
    with pytest.raises(ValueError, match="share the id"):
        run(plan("bp-very-high"), r, twin)


def test_default_library_is_used_when_none_given() -> None:
    r = bp("200", "120")
    findings = evaluate(plan("bp-very-high"), [r], new_reading_ids={r.id}, now=T0)
    assert [f.rule_id for f in findings] == ["bp-very-high"]


def test_lookback_covers_the_longest_window_both_ways() -> None:
    # copd-deterioration reads the furthest: a 14-local-day baseline ending 2 whole days
    # before the anchor's day (17 days and a DST margin back from the end of that day),
    # and a part may hold up to 12 h before the anchor.
    assert lookback(plan(), LIBRARY) == days(17) + timedelta(hours=2 + 12)
    assert lookback(plan("hf-weight-gain-week"), LIBRARY) == days(3 + 5 + 1) + timedelta(hours=2)
    # glucose-low reads ±7 days around an anchor, and a new low changes the flag of the
    # lows up to 7 days on either side: 14 days on each side of the new readings.
    assert lookback(plan("glucose-low"), LIBRARY) == days(14)
    assert lookback(plan("bp-very-high", "spo2-low"), LIBRARY) == days(0)
    assert lookback(plan("bp-very-high", "glucose-low", modes={"glucose-low": "off"}), LIBRARY) == (
        days(0)
    )
    # A 7-local-day window: 7 days and a DST margin back; a late reading changes later anchors.
    assert lookback(plan("bp-home-mean-high"), LIBRARY) == days(7) + timedelta(hours=2)
    assert lookback(plan("weight-gain-hf"), LIBRARY) == timedelta(hours=72)
    assert lookback(plan("hf-weight-and-breathlessness"), LIBRARY) == timedelta(hours=96)
    assert lookback(plan("missing-readings", "cgm-tir-low"), LIBRARY) == days(0)


def test_lookback_for_some_types_counts_only_the_rules_that_read_them() -> None:
    both = plan("bp-home-mean-high", "glucose-low")
    assert lookback(both, LIBRARY, {"blood_pressure"}) == days(7) + timedelta(hours=2)
    assert lookback(both, LIBRARY, {"cgm_glucose"}) == days(14)
    assert lookback(both, LIBRARY, {"blood_pressure", "glucose"}) == days(14)
    assert lookback(both, LIBRARY, {"weight"}) == days(0)
    # A composite reads its parts' types: a weight reaches as far as the whole rule.
    assert lookback(plan("hf-weight-and-breathlessness"), LIBRARY, {"weight"}) == timedelta(
        hours=96
    )


def test_history_types_follow_the_rules() -> None:
    reading_rules = [r.id for r in LIBRARY.rules if not r.time_based]
    assert history_types(plan(*reading_rules), LIBRARY, ["cgm_glucose"]) == {
        "glucose",
        "cgm_glucose",
    }
    assert history_types(plan("bp-low"), LIBRARY, ["cgm_glucose"]) == {"cgm_glucose"}
    # copd-deterioration reads SpO2, pulse and the CAT score together.
    assert history_types(plan(*reading_rules), LIBRARY, ["pulse"]) == {
        "pulse",
        "spo2",
        "symptom_score",
    }
    assert history_types(plan("pulse-abnormal"), LIBRARY, ["pulse"]) == {"pulse"}
    # A composite reads every part's type.
    assert history_types(plan(*reading_rules), LIBRARY, ["weight"]) == {"weight", "symptom_score"}
    # Time-based rules read nothing at ingest: missing-readings names every type.
    assert history_types(plan(), LIBRARY, ["steps"]) == {"steps"}
    assert history_types(plan(), LIBRARY, ["temperature"]) == {"temperature"}


def test_reading_types_leave_out_time_based_rules() -> None:
    assert reading_types(plan("missing-readings", "cgm-tir-low"), LIBRARY) == set()
    assert reading_types(plan("missing-readings", "weight-gain-hf"), LIBRARY) == {"weight"}
    assert "steps" not in reading_types(plan(), LIBRARY)


def test_cgm_and_finger_prick_lows_count_together() -> None:
    earlier, now = low(-2), low(0, type_name="cgm_glucose")
    assert glucose_low_flag(earlier, now, anchor=now) == "low"


@pytest.mark.parametrize(
    ("r", "sv", "en"),
    [
        (bp("142", "91"), "142/91 mmHg", "142/91 mmHg"),
        (reading("glucose", "3.8"), "3,8 mmol/L", "3.8 mmol/L"),
        (reading("spo2", "0.87", "1"), "87 %", "87 %"),
        (reading("temperature", "38.2"), "38,2 °C", "38.2 °C"),
        (reading("weight", "180", "[lb_av]"), "180 lb", "180 lb"),
        # Rounded to the measurement's precision, never more decimals than measured.
        (reading("weight", "72.345"), "72,3 kg", "72.3 kg"),
        (reading("weight", "181.26", "[lb_av]"), "181,3 lb", "181.3 lb"),
        (reading("glucose", "3.86"), "3,9 mmol/L", "3.9 mmol/L"),
        (reading("glucose", "69.6", "mg/dL"), "70 mg/dL", "70 mg/dL"),
        (reading("temperature", "38"), "38 °C", "38 °C"),
        (reading("temperature", "101.37", "[degF]"), "101,4 °F", "101.4 °F"),
        (reading("pulse", "121.4", "bpm"), "121 slag per minut", "121 beats per minute"),
        (reading("pulse", "38", "/min"), "38 slag per minut", "38 beats per minute"),
        (reading("spo2", "0.874", "1"), "87 %", "87 %"),
    ],
)
def test_reading_text(r: ReadingFact, sv: str, en: str) -> None:
    assert reading_text(r, "sv") == sv
    assert reading_text(r, "en") == en


def test_number_text_has_no_exponent() -> None:
    assert number_text(Decimal("1E+2"), "sv") == "100"
    assert number_text(Decimal("38.50"), "sv") == "38,50"


def test_pounds_are_explained_in_kilograms_rounded() -> None:
    lb = "[lb_av]"
    first = reading("weight", "176.0", lb, at=T0, reading_id="w1")
    latest = reading("weight", "180.6", lb, at=T0 + days(2), reading_id="w2")
    (finding,) = run(plan("weight-gain-hf"), first, latest, new={"w2"})
    assert finding.computed["delta"] == "2.086525"  # exact where computation needs it
    assert finding.advice is not None
    for lang in ("sv", "en"):
        texts = [finding.summary[lang], finding.advice.title[lang], finding.advice.body[lang]]
        for text in texts:
            assert "lb" not in text and "2.086525" not in text and "2,086525" not in text
    assert "förändring 2,1 kg (81,9 − lägsta 79,8) > 2,0 kg" in finding.summary["sv"]


def test_rounding_never_contradicts_the_comparison() -> None:
    first = reading("weight", "80.00", at=T0, reading_id="w1")
    latest = reading("weight", "82.04", at=T0 + days(2), reading_id="w2")
    (finding,) = run(plan("weight-gain-hf"), first, latest, new={"w2"})
    assert "förändring 2,04 kg (82,0 − lägsta 80,0) > 2,0 kg" in finding.summary["sv"]
