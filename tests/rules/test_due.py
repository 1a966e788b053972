"""Time-based rules (missing data, CGM metrics): anchored at local day starts, idempotent."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from rules.engine import (
    Finding,
    due_anchors,
    due_lookback,
    evaluate_due,
    evaluate_due_run,
    local_day_start,
)
from rules.facts import ReadingFact
from rules.language import load_library
from rules.plan import PlanSpec
from tests.rules.factories import STOCKHOLM, local, reading

LIBRARY = load_library()


def plan_with(
    *rule_ids: str,
    schedule: Sequence[tuple[str, str]] = (),
    params: dict[str, dict[str, Any]] | None = None,
    effective_from: datetime | None = None,
) -> PlanSpec:
    return PlanSpec.model_validate(
        {
            "version": 3,
            "effective_from": effective_from,
            "rules": [{"rule": r, "params": (params or {}).get(r, {})} for r in rule_ids],
            "schedule": [{"type": t, "times": ["07:30"], "days": d} for t, d in schedule],
        }
    )


def due(
    plan_spec: PlanSpec, readings: Sequence[ReadingFact], now: datetime, **kw: Any
) -> list[Finding]:
    return evaluate_due(plan_spec, readings, now=now, tz="Europe/Stockholm", library=LIBRARY, **kw)


def weights(*days: int) -> list[ReadingFact]:
    return [reading("weight", "80", at=local(d, "07:30")) for d in days]


# --- due anchors ------------------------------------------------------------------------


def test_due_anchors_are_local_day_starts() -> None:
    now = local(10, "13:00")
    assert due_anchors(now=now, tz=STOCKHOLM) == [local(10, "00:00")]
    assert due_anchors(now=now, tz=STOCKHOLM, since=local(7, "12:00")) == [
        local(8, "00:00"),
        local(9, "00:00"),
        local(10, "00:00"),
    ]
    # Exactly at midnight the new day is due.
    assert due_anchors(now=local(10, "00:00"), tz=STOCKHOLM) == [local(10, "00:00")]


def test_local_day_start_is_dst_safe() -> None:
    spring = datetime(2027, 3, 28, 12, 0, tzinfo=UTC)  # the 23-hour day
    assert local_day_start(spring, STOCKHOLM) == datetime(2027, 3, 27, 23, 0, tzinfo=UTC)
    assert local_day_start(spring, STOCKHOLM, 1) == datetime(2027, 3, 26, 23, 0, tzinfo=UTC)
    autumn = datetime(2027, 10, 31, 12, 0, tzinfo=UTC)  # the 25-hour day
    assert local_day_start(autumn, STOCKHOLM) == datetime(2027, 10, 30, 22, 0, tzinfo=UTC)
    # Midnights are kept per date and zone: the same date in another zone is its own.
    new_york = ZoneInfo("America/New_York")
    assert local_day_start(spring, new_york) == datetime(2027, 3, 28, 4, 0, tzinfo=UTC)
    assert local_day_start(spring, STOCKHOLM) == datetime(2027, 3, 27, 23, 0, tzinfo=UTC)


# --- missing-readings -------------------------------------------------------------------

DAILY_WEIGHT = plan_with("missing-readings", schedule=[("weight", "daily")])


@pytest.mark.parametrize(
    ("last_day", "advice", "flag"),
    [
        (9, False, False),  # yesterday
        (8, False, False),  # within the last 2 whole days
        (7, True, False),  # 2 whole days without: reminder
        (6, True, True),  # 3 whole days without: the reminder went unanswered a day
        (0, True, True),
    ],
)
def test_missing_daily_weight(last_day: int, advice: bool, flag: bool) -> None:
    findings = due(DAILY_WEIGHT, weights(last_day), local(10, "09:00"))
    assert bool(findings) is advice
    if findings:
        (finding,) = findings
        assert finding.scope == "weight" and finding.anchor_reading_id is None
        assert finding.anchor_time == local(10, "00:00")
        assert finding.advice is not None and "vikt" in finding.advice.body["sv"]
        assert finding.advice.priority == "routine"
        assert (finding.flag_severity == "low") is flag
        assert finding.key == ("missing-readings", f"{local(10, '00:00').isoformat()}/weight")


@pytest.mark.parametrize(
    ("days", "last_day", "fires"),
    [
        ("weekly", 0, False),  # 14 days: [day 0, day 14) holds day 0
        ("weekly", -1, True),
        ("weekdays", 8, False),  # 6 days
        ("weekdays", 7, True),
    ],
)
def test_missing_by_schedule_interval(days: str, last_day: int, fires: bool) -> None:
    p = plan_with("missing-readings", schedule=[("weight", days)])
    assert bool(due(p, weights(last_day), local(14, "09:00"))) is fires


def test_missing_intervals_is_a_plan_parameter() -> None:
    p = plan_with(
        "missing-readings",
        schedule=[("weight", "daily")],
        params={"missing-readings": {"intervals": 3, "flag_after_days": 0}},
    )
    assert due(p, weights(7), local(10, "09:00")) == []
    (finding,) = due(p, weights(6), local(10, "09:00"))
    assert finding.flag_severity == "low"  # no grace: flagged with the reminder


def test_missing_only_for_scheduled_types_each_its_own() -> None:
    p = plan_with("missing-readings", schedule=[("weight", "daily"), ("blood_pressure", "daily")])
    readings = [*weights(9), reading("pulse", "70", at=local(1))]
    (finding,) = due(p, readings, local(10, "09:00"))
    assert finding.scope == "blood_pressure"
    assert finding.advice is not None and "blodtryck" in finding.advice.body["sv"]


def test_missing_waits_for_the_plan() -> None:
    p = plan_with(
        "missing-readings", schedule=[("weight", "daily")], effective_from=local(8, "15:00")
    )
    assert due(p, [], local(10, "09:00")) == []  # the plan is not 2 whole days old
    (finding,) = due(p, [], local(11, "09:00"))
    assert finding.flag_severity is None  # the flag waits a day more
    (finding,) = due(p, [], local(12, "09:00"))
    assert finding.flag_severity == "low"


def test_missing_is_idempotent_within_a_day_and_moves_with_it() -> None:
    readings = weights(6)
    runs = [due(DAILY_WEIGHT, readings, local(10, clock)) for clock in ("00:00", "09:00", "23:59")]
    assert runs[0] == runs[1] == runs[2]
    (tomorrow,) = due(DAILY_WEIGHT, readings, local(11, "00:30"))
    assert tomorrow.key != runs[0][0].key


def test_a_late_reading_retracts_missing_data() -> None:
    before = evaluate_due_run(DAILY_WEIGHT, weights(5), now=local(10, "09:00"), library=LIBRARY)
    (fired,) = before.findings
    # A weight measured on day 9 (offline) arrives: day 10's anchor no longer fires.
    after = evaluate_due_run(DAILY_WEIGHT, weights(5, 9), now=local(10, "20:00"), library=LIBRARY)
    assert after.findings == ()
    assert after.retracted([fired.key]) == {fired.key}
    # A reading at or after the anchor does not count for it.
    same = evaluate_due_run(
        DAILY_WEIGHT,
        [*weights(5), reading("weight", "80", at=local(10, "00:00"))],
        now=local(10, "20:00"),
        library=LIBRARY,
    )
    assert [f.key for f in same.findings] == [fired.key]


def test_since_evaluates_past_days() -> None:
    findings = due(DAILY_WEIGHT, weights(5), local(10, "09:00"), since=local(7, "12:00"))
    assert [f.anchor_time for f in findings] == [local(d, "00:00") for d in (8, 9, 10)]
    assert [f.flag_severity for f in findings] == [None, "low", "low"]


def test_due_lookback() -> None:
    assert due_lookback(DAILY_WEIGHT, LIBRARY) == timedelta(days=3, hours=2)
    weekly = plan_with("missing-readings", schedule=[("weight", "weekly")])
    assert due_lookback(weekly, LIBRARY) == timedelta(days=15, hours=2)
    assert due_lookback(plan_with("cgm-tir-low"), LIBRARY) == timedelta(days=14, hours=2)
    assert due_lookback(plan_with("bp-low"), LIBRARY) == timedelta(0)


# --- CGM rules ----------------------------------------------------------------------------

CGM_PLAN = plan_with("cgm-tir-low", "cgm-tbr-high")
WINDOW_START = local(0, "00:00")
NOW = local(14, "10:00")  # the anchor is day 14 00:00; the window is days 0..13


def cgm_series(
    n: int,
    *,
    low: int = 0,
    very_low: int = 0,
    high: int = 0,
    unit: str = "mmol/L",
    step_minutes: int = 5,
    start: datetime = WINDOW_START,
    prefix: str = "c",
) -> list[ReadingFact]:
    """n CGM samples, 5 min apart: ``very_low`` < 3.0, ``low`` in [3.0, 3.9), ``high`` > 10."""
    if unit == "mmol/L":
        values = {"very_low": "2.9", "low": "3.8", "high": "10.1", "ok": "6.0"}
    else:
        values = {"very_low": "53", "low": "69", "high": "181", "ok": "108"}
    kinds = ["very_low"] * very_low + ["low"] * low + ["high"] * high
    kinds += ["ok"] * (n - len(kinds))
    return [
        reading(
            "cgm_glucose",
            values[kind],
            unit,
            at=start + timedelta(minutes=step_minutes * i),
            reading_id=f"{prefix}{i}",
        )
        for i, kind in enumerate(kinds)
    ]


def cgm_fired(
    readings: Sequence[ReadingFact], plan_spec: PlanSpec = CGM_PLAN
) -> dict[str, Finding]:
    return {f.rule_id: f for f in due(plan_spec, readings, NOW)}


# 14 days of 5-minute slots = 4032; 4000 samples = 99.2 % wear. Exactly 70 % in range
# is 2800 samples; exactly 4 % below 3.9 is 160; exactly 1 % below 3.0 is 40.
@pytest.mark.parametrize(
    ("kw", "fired"),
    [
        ({"high": 1200}, set()),  # TIR exactly 70 %
        ({"high": 1201}, {"cgm-tir-low"}),  # 69.975 %
        ({"high": 1201, "unit": "mg/dL"}, {"cgm-tir-low"}),
        ({"high": 1200, "unit": "mg/dL"}, set()),
        ({"low": 159}, set()),  # 3.975 % below 3.9
        ({"low": 160}, {"cgm-tbr-high"}),  # exactly 4 %
        ({"low": 160, "unit": "mg/dL"}, {"cgm-tbr-high"}),
        ({"very_low": 39}, set()),  # 0.975 % below 3.0
        ({"very_low": 40}, {"cgm-tbr-high"}),  # exactly 1 %
        ({"very_low": 40, "unit": "mg/dL"}, {"cgm-tbr-high"}),
    ],
)
def test_cgm_edges(kw: dict[str, Any], fired: set[str]) -> None:
    assert set(cgm_fired(cgm_series(4000, **kw))) == fired


def test_cgm_edges_are_in_the_published_unit() -> None:
    # 70 mg/dL and 3.9 mmol/L are in range; 180 mg/dL and 10.0 mmol/L too.
    edge = [
        reading("cgm_glucose", v, u, at=WINDOW_START + timedelta(minutes=5 * i), reading_id=f"e{i}")
        for i, (v, u) in enumerate(
            [("70", "mg/dL"), ("3.9", "mmol/L"), ("180", "mg/dL"), ("10.0", "mmol/L")] * 1000
        )
    ]
    assert cgm_fired(edge) == {}


@pytest.mark.parametrize(
    ("n", "fires"),
    [
        (2823, True),  # 70.01 % wear
        (2822, False),  # 69.99 %
    ],
)
def test_cgm_wear_requirement(n: int, fires: bool) -> None:
    readings = cgm_series(n, high=n)  # everything high: TIR 0 %
    assert ("cgm-tir-low" in cgm_fired(readings)) is fires


def test_cgm_older_plan_threshold() -> None:
    older = plan_with("cgm-tir-low", params={"cgm-tir-low": {"tir_below": 50}})
    assert cgm_fired(cgm_series(4000, high=1999), older) == {}  # TIR 50.025 %
    assert set(cgm_fired(cgm_series(4000, high=2001), older)) == {"cgm-tir-low"}


def test_cgm_finding_explains_the_window() -> None:
    finding = cgm_fired(cgm_series(4000, low=200))["cgm-tbr-high"]
    assert finding.anchor_time == local(14, "00:00") and finding.anchor_reading_id is None
    assert finding.computed["window_start"] == WINDOW_START.isoformat()
    assert finding.computed["n"] == "4000"
    assert finding.computed["wear_percent"] == "99.2"
    assert finding.computed["tbr_3_9"] == "5.0"
    assert finding.thresholds["tbr_3_9_max"] == {"value": "4", "unit": "%"}
    assert finding.flag_severity == "high"
    assert finding.advice is not None and "5,0 %" in finding.advice.body["sv"]
    assert finding.reading_ids == ()


def test_cgm_is_idempotent_within_the_day() -> None:
    readings = cgm_series(4000, high=2000)
    runs = [due(CGM_PLAN, readings, local(14, c)) for c in ("00:00", "06:00", "23:00")]
    assert runs[0] == runs[1] == runs[2] and runs[0]
    # Readings of today (after the anchor) do not count until tomorrow.
    today = cgm_series(200, high=0, start=local(14, "00:00"), prefix="t")
    assert due(CGM_PLAN, [*readings, *today], local(14, "23:00")) == runs[0]


def test_cgm_ignores_data_outside_the_window() -> None:
    old = cgm_series(4032, high=4032, start=WINDOW_START - timedelta(days=14))
    assert cgm_fired(old) == {}  # nothing in the window: no wear
    assert evaluate_due_run(CGM_PLAN, old, now=NOW, library=LIBRARY).evaluated == {
        ("cgm-tir-low", local(14, "00:00").isoformat()),
        ("cgm-tbr-high", local(14, "00:00").isoformat()),
    }


def test_cgm_window_is_local_days_across_dst() -> None:
    spring = date(2027, 3, 20)
    start = local(0, "00:00", start=spring)
    end = local(14, "00:00", start=spring)
    slots = int((end - start) / timedelta(minutes=5))
    assert slots == 14 * 288 - 12  # one 23-hour day
    readings = cgm_series(slots, high=slots, start=start)
    findings = evaluate_due(CGM_PLAN, readings, now=end + timedelta(hours=1), library=LIBRARY)
    (finding,) = [f for f in findings if f.rule_id == "cgm-tir-low"]
    assert finding.computed["wear_percent"] == "100.0"
    assert Decimal(finding.computed["tir"]) == 0


def test_time_based_explanation_is_json() -> None:
    import json

    (finding,) = due(DAILY_WEIGHT, weights(6), local(10, "09:00"))
    explanation = finding.explanation()
    assert json.loads(json.dumps(explanation)) == explanation
    assert explanation["anchor_reading_id"] is None
    assert explanation["anchor_time"] == local(10, "00:00").isoformat()
    assert explanation["scope"] == "weight"
    assert explanation["thresholds"]["days_without"] == {"value": "2", "unit": "d"}
    assert explanation["summary"]["en"] == "Readings missing: weight (no reading for 2 days)."
    assert finding.plan_version == 3 and finding.rule_version == 1
