"""Removing (or adding late) one reading re-evaluates its neighbours in linear work.

A reading entered in error in the middle of a week of CGM makes :func:`evaluate_run`
re-evaluate every anchor whose window held it: for glucose-low (7-day occurrence counts)
that is every low of the week, each with a ±7-day window. Scanning each anchor's window
made a delete quadratic (9,000 readings: 23 million readings visited, a minute of CPU), a
cheap way to tie up the service. The evaluator counts the readings it looks at
(``EvaluationRun.visits``, bumped wherever a window is read or an index built): doubling
the readings of the week must roughly double the work, never quadruple it. Nothing is
timed.

What findings list is measured apart, by their ``reading_ids``. A CGM low lists one
reading per occurrence; a window rule uses its whole window (a home blood-pressure mean its
week, a COPD deterioration both 7-day baselines) but lists only the latest
``MAX_EXPLAINED_READINGS`` of it with the count of all, so a dense week where every anchor
fires lists a bounded number per firing (recording the firings stays linear too).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from functools import cache

import pytest

from rules.engine import EvaluationRun, evaluate_run
from rules.engine.findings import MAX_EXPLAINED_READINGS
from rules.facts import ReadingFact
from rules.language import load_library
from rules.plan import PlanSpec
from tests.rules.factories import T0, plan, reading

LIBRARY = load_library()
WEEK = timedelta(days=7)

GLUCOSE = plan("glucose-low", "glucose-very-low", "glucose-high", "glucose-sustained-high")
WEARABLE = plan(
    "copd-deterioration",
    "pulse-abnormal",
    "spo2-low",
    params={
        "copd-deterioration": {
            "baseline_days": Decimal(7),
            "gap_days": Decimal(0),
            "min_readings": Decimal(3),
            # Each firing lists both 7-day baselines (thousands of readings): kept short so
            # that listing them does not make this test slow. The work counted is the same.
            "within_hours": Decimal(2),
        }
    },
)

# The readings looked at per reading of the week, at most. Today about 15 (the indexes
# are built once each: a handful of passes per rule); a scan of each anchor's window
# would be hundreds at 9,000 readings and grow with every doubling.
PER_READING = 30


def _glucose_week(n: int) -> list[ReadingFact]:
    """A week of ``n`` CGM readings from 08:00 local: each day down to 2.5 mmol/L in the
    morning (a low of hours, very low at its bottom) and up past 14 after dinner (the
    middle of the week falls there), and four finger pricks a day."""
    step = WEEK / n
    readings = []
    for i in range(n):
        hours = (i * step).total_seconds() / 3600
        dinner = 5 * math.exp(-(((hours % 24) - 12) ** 2) / 4.5)  # at 20:00 local
        value = 7 + 4.5 * math.sin(2 * math.pi * (hours - 6) / 24) + dinner
        at = T0 + i * step
        readings.append(reading("cgm_glucose", f"{value:.1f}", at=at, reading_id=f"c{i:05d}"))
    for day in range(7):
        for hour, value in ((0, "3.4"), (4, "8.1"), (11, "16.1"), (13, "15.4")):
            at = T0 + timedelta(days=day, hours=hour, minutes=7)
            readings.append(reading("glucose", value, at=at, reading_id=f"f{day}-{hour:02d}"))
    return readings


def _wearable_fortnight(n: int) -> list[ReadingFact]:
    """Two weeks of ``n`` readings of a ring oximeter (pulse and SpO2 in turn), worse
    from the ninth day (a pulse up to 126 at its worst), and a CAT score every morning."""
    step = 2 * WEEK / n
    readings = []
    for i in range(n):
        at = T0 + i * step
        days = (i * step) / timedelta(days=1)
        worse = max(0.0, days - 8) / 3  # 0 for 8 days, then up to 2
        if i % 2:
            pulse = 72 + 12 * math.sin(2 * math.pi * days) + 21 * worse
            readings.append(reading("pulse", str(round(pulse)), at=at, reading_id=f"p{i:05d}"))
        else:
            spo2 = 96 + 1.5 * math.sin(2 * math.pi * days) - 2.5 * worse
            readings.append(reading("spo2", str(round(spo2)), at=at, reading_id=f"s{i:05d}"))
    for day in range(14):
        readings.append(
            reading(
                "symptom_score",
                str(10 + max(0, 2 * (day - 8))),
                "{score}",
                at=T0 + timedelta(days=day, hours=1),
                reading_id=f"cat{day}",
                context={"instrument": "CAT"},
            )
        )
    return readings


def _pressure_week(n: int) -> list[ReadingFact]:
    """A week of ``n`` home blood pressures, high (mean about 150/92), evenly spread."""
    step = WEEK / n
    return [
        reading(
            "blood_pressure",
            (str(140 + i % 21), str(85 + i % 15)),
            at=T0 + i * step,
            reading_id=f"b{i:05d}",
        )
        for i in range(n)
    ]


PRESSURE = plan("bp-home-mean-high")

Week = Callable[[int], list[ReadingFact]]


def _middle(readings: list[ReadingFact], n: int) -> ReadingFact:
    """The reading in the middle of the stream; on a CGM stream, the low nearest it: a
    reading in range changes no occurrence count, and the worst case is one that does."""
    middle = readings[n // 2]
    if middle.type != "cgm_glucose":
        return middle
    lows = [r for r in readings[:n] if r.type == "cgm_glucose" and r.values["value"] < 3]
    return min(lows, key=lambda r: abs(r.time - middle.time))


def _delete_middle(plan_spec: PlanSpec, week: Week, n: int) -> EvaluationRun:
    readings = week(n)
    middle = _middle(readings, n)
    rest = [r for r in readings if r is not middle]
    return evaluate_run(
        plan_spec, rest, new_reading_ids=(), now=T0, library=LIBRARY, removed=[middle]
    )


def _late_middle(plan_spec: PlanSpec, week: Week, n: int) -> EvaluationRun:
    readings = week(n)
    middle = _middle(readings, n)
    return evaluate_run(plan_spec, readings, new_reading_ids={middle.id}, now=T0, library=LIBRARY)


def _listed(run: EvaluationRun) -> int:
    return sum(len(f.reading_ids) for f in run.findings)


Change = Callable[[PlanSpec, Week, int], EvaluationRun]
CASES: dict[str, tuple[PlanSpec, Week, Change]] = {
    "cgm-delete": (GLUCOSE, _glucose_week, _delete_middle),
    "cgm-late": (GLUCOSE, _glucose_week, _late_middle),
    "wearable-delete": (WEARABLE, _wearable_fortnight, _delete_middle),
    "pressure-late": (PRESSURE, _pressure_week, _late_middle),
}


@cache
def _run(case: str, n: int) -> EvaluationRun:
    """Return the evaluation of one case at one size (each is run once per session)."""
    plan_spec, week, change = CASES[case]
    return change(plan_spec, week, n)


def test_a_reading_in_range_re_evaluates_only_the_hours_after_it() -> None:
    """A CGM reading in range changes no count of lows: only the anchors whose advice
    episode may walk back over it (12 hours after it) are evaluated again, not the
    fortnight a low's 7-day window reaches."""
    readings = _glucose_week(9000)
    middle = readings[4500]
    assert middle.values["value"] > Decimal("3.9")  # the middle of the week is after dinner
    run = evaluate_run(GLUCOSE, readings, new_reading_ids={middle.id}, now=T0, library=LIBRARY)
    anchors = {anchor for _, anchor in run.evaluated}
    times = {r.id: r.time for r in readings}
    assert middle.id in anchors
    assert all(middle.time <= times[a] <= middle.time + timedelta(hours=12) for a in anchors)
    low = _middle(readings, 9000)
    wide = evaluate_run(GLUCOSE, readings, new_reading_ids={low.id}, now=T0, library=LIBRARY)
    assert len(wide.evaluated) > 5 * len(run.evaluated)  # a low reaches the whole week


@pytest.mark.parametrize("case", CASES)
def test_work_grows_linearly_with_the_readings(case: str) -> None:
    half, full = _run(case, 4500), _run(case, 9000)
    # The change touches (nearly) the whole stream: the anchors double with the readings.
    assert len(full.evaluated) > 1.8 * len(half.evaluated) > 1000
    assert full.findings  # the stream fires: lows, highs, a deterioration
    assert full.visits / half.visits < 2.5
    assert full.visits <= PER_READING * 9000


@pytest.mark.parametrize("case", ["cgm-delete", "cgm-late"])
def test_what_cgm_findings_list_grows_linearly(case: str) -> None:
    """A low's finding lists one reading per occurrence of its 7-day span, not every
    reading of every low: the lists of a week's findings grow with the week."""
    half, full = _run(case, 4500), _run(case, 9000)
    assert _listed(full) / _listed(half) < 2.5
    assert _listed(full) <= 5 * 9000


def test_the_week_fires_what_a_clinician_expects() -> None:
    """The streams above are not idle: the change re-evaluates firings of every rule."""
    glucose = _run("cgm-delete", 4500)  # a low of the week removed: the lows counted again
    assert {f.rule_id for f in glucose.findings} == {"glucose-low", "glucose-very-low"}
    assert any(f.flag_severity == "low" for f in glucose.findings)  # lows counted in a week
    wearable = _run("wearable-delete", 4500)
    assert {f.rule_id for f in wearable.findings} == {r.rule for r in WEARABLE.rules}


def test_a_window_rule_lists_the_latest_of_a_dense_window_and_counts_them_all() -> None:
    """Every anchor after the late reading fires the home mean over up to a week of
    readings: each finding lists the latest ``MAX_EXPLAINED_READINGS`` of its window, the
    anchor last, and says how many the mean used; what is listed grows with the anchors."""
    half, full = _run("pressure-late", 4500), _run("pressure-late", 9000)
    assert len(full.findings) > 1000
    for finding in full.findings:
        assert len(finding.reading_ids) <= MAX_EXPLAINED_READINGS
        assert finding.reading_ids[-1] == finding.anchor_reading_id
        times = [r.time for r in finding.readings]
        assert times == sorted(times)
        used = int(finding.computed["readings_used"])
        assert finding.readings_total >= used
        explanation = finding.explanation()
        if finding.readings_total > MAX_EXPLAINED_READINGS:
            assert explanation["readings_total"] == finding.readings_total
            assert len(explanation["readings"]) == MAX_EXPLAINED_READINGS
        else:
            assert "readings_total" not in explanation
    dense = max(full.findings, key=lambda f: f.readings_total)
    assert dense.readings_total > 7000  # a week of readings (less its first day) behind one mean
    assert _listed(full) / _listed(half) < 2.5
    assert _listed(full) <= MAX_EXPLAINED_READINGS * len(full.findings)
