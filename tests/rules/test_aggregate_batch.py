"""Many anchors' windows at once (``aggregate_batch``) answer as each anchor's own assessment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from rules.engine.evaluation import unique_readings
from rules.engine.history import History
from rules.engine.kinds.aggregate import AggregateCheck
from rules.engine.kinds.aggregate_batch import BATCH_MIN, held_at
from rules.engine.selection import reading_runs
from rules.facts import ReadingFact
from rules.language import Condition, Match, Op, ResolvedParam, WindowAggregateFields, load_library
from tests.rules.factories import bp, plan, reading

ZONE = ZoneInfo("Europe/Stockholm")
# The clocks go back on 25 October 2026 at 03:00: a local day of 25 hours lies inside.
START = datetime(2026, 10, 22, 21, 0, tzinfo=UTC)
LIBRARY = load_library()
GLUCOSE = ("cgm_glucose", "glucose")


def _library_checks() -> list[AggregateCheck]:
    """The library's window aggregates with small windows: a mean over local days (first day
    dropped, a minimum count) and the least glucose over hours."""
    spec = plan(
        "bp-home-mean-high",
        "glucose-sustained-high",
        params={
            "bp-home-mean-high": {"window_days": Decimal(3), "min_readings": Decimal(3)},
            "glucose-sustained-high": {"window_hours": Decimal(3), "min_readings": Decimal(3)},
        },
    )
    checks = [run.check for run in reading_runs(spec, LIBRARY)]
    assert all(isinstance(check, AggregateCheck) for check in checks)
    return [check for check in checks if isinstance(check, AggregateCheck)]


def _check(aggregate: str, conditions: tuple[Condition, ...], **more: object) -> AggregateCheck:
    """A glucose window aggregate of 4 hours, threshold 14 mmol/L (250 mg/dL), count 5."""
    params = {
        "window": ResolvedParam(name="window", value=Decimal(4), unit="h"),
        "threshold": ResolvedParam(
            name="threshold",
            value=Decimal(14),
            unit="mmol/L",
            equivalents={"mg/dL": Decimal(250)},
        ),
        "count": ResolvedParam(name="count", value=Decimal(5), unit=None),
    }
    fields = WindowAggregateFields.model_validate(
        {"window": "window", "aggregate": aggregate, "conditions": conditions, **more}
    )
    return AggregateCheck(f"test-{aggregate}", GLUCOSE, fields, params)


def _pressure_days() -> AggregateCheck:
    """The mean systolic of two local days, the first dropped, with no least count: a window
    can keep no reading at all (then it never holds)."""
    params = {
        "days": ResolvedParam(name="days", value=Decimal(2), unit="d"),
        "discard": ResolvedParam(name="discard", value=Decimal(1), unit="d"),
        "systolic": ResolvedParam(name="systolic", value=Decimal(135), unit="mm[Hg]"),
    }
    fields = WindowAggregateFields.model_validate(
        {
            "window": "days",
            "aggregate": "mean",
            "conditions": (Condition(component="systolic", op=Op.ge, param="systolic"),),
            "discard_first_days": "discard",
        }
    )
    return AggregateCheck("test-pressure-days", ("blood_pressure",), fields, params)


CHECKS = [
    *_library_checks(),
    _pressure_days(),
    _check("max", (Condition(component="value", op=Op.gt, param="threshold"),)),
    _check("mean", (Condition(component="value", op=Op.lt, param="threshold"),)),
    _check("count", (Condition(component="value", op=Op.ge, param="count"),)),
    _check(
        "min",
        (
            Condition(component="value", op=Op.ge, param="threshold"),
            Condition(component="value", op=Op.le, param="threshold"),
        ),
        match=Match.all,
    ),
]


@st.composite
def _readings(draw: st.DrawFn) -> tuple[list[ReadingFact], bool]:
    """Blood pressures and glucose over a span of hours to days; in one unit each, or not."""
    count = draw(st.integers(BATCH_MIN, 2 * BATCH_MIN))
    # From a few readings a window to many: counts and extremes near their thresholds.
    span_minutes = draw(st.sampled_from([6 * 60, 2 * 24 * 60, 3 * 24 * 60, 6 * 24 * 60]))
    one_unit = draw(st.booleans())
    pressures = draw(st.floats(0, 1))  # the share of blood pressures
    out = []
    for index in range(count):
        at = START + timedelta(minutes=draw(st.integers(0, span_minutes)))
        rid = f"r{index:03d}"
        if draw(st.floats(0, 1)) < pressures:
            systolic = draw(st.integers(128, 142))  # means on either side of 135
            unit = "mm[Hg]" if one_unit else draw(st.sampled_from(["mm[Hg]", "mmHg"]))
            out.append(bp(str(systolic), str(systolic - 50), unit, at=at, reading_id=rid))
            continue
        type_name = draw(st.sampled_from(GLUCOSE))
        if one_unit or draw(st.booleans()):
            tenths = draw(st.integers(120, 160))
            value = str(Decimal(tenths) / 10)  # "14" and "14.0" both occur: equal, unalike
            if draw(st.booleans()) and tenths % 10 == 0:
                value = str(tenths // 10)
            out.append(reading(type_name, value, "mmol/L", at=at, reading_id=rid))
        else:
            value = str(draw(st.integers(220, 280)))
            out.append(reading(type_name, value, "mg/dL", at=at, reading_id=rid))
    return out, one_unit


def _agreement(check: AggregateCheck, readings: list[ReadingFact]) -> dict[str, bool]:
    """Assert the batch's answers are the anchors' own, and holds after prepare too."""
    ordered = unique_readings(readings)
    batch = held_at(check, ordered, History(ordered, ZONE))
    explained = History(ordered, ZONE)  # separate: no answer leans on another's cache
    quick = History(ordered, ZONE)
    check.prepare(ordered, quick)
    for anchor in ordered:
        outcome = check.outcome(anchor, explained)
        held = outcome is not None and outcome.held
        if anchor.id in batch:
            assert batch[anchor.id] == held, (check.key, anchor)
        assert check.holds(anchor, quick) == held, (check.key, anchor)
    return batch


@settings(max_examples=150, deadline=None)
@given(drawn=_readings())
def test_the_batch_answers_as_each_anchor_s_own_assessment(
    drawn: tuple[list[ReadingFact], bool],
) -> None:
    readings, one_unit = drawn
    for check in CHECKS:
        batch = _agreement(check, readings)
        anchors = [r for r in readings if check.selects(r)]
        if one_unit and len(anchors) >= BATCH_MIN:
            # In one unit, every anchor is answered here (the clock goes back at 03:00, not
            # over midnight: the dates stay in order).
            assert set(batch) == {r.id for r in anchors}, check.key


def _dense(glucose: list[str], systolic: list[int]) -> list[ReadingFact]:
    """A reading of each every 20 minutes (glucose in mmol/L, pressure in mm[Hg])."""
    out = []
    for i in range(len(glucose)):
        at = START + timedelta(minutes=20 * i)
        out.append(reading("cgm_glucose", glucose[i], "mmol/L", at=at, reading_id=f"g{i:03d}"))
    for i in range(len(systolic)):
        at = START + timedelta(hours=2 * i)
        s = systolic[i]
        out.append(bp(str(s), str(s - 50), at=at, reading_id=f"b{i:03d}"))
    return out


def test_a_dense_series_has_anchors_that_hold_and_anchors_that_do_not_for_each_check() -> None:
    """Not vacuous: every check answers both ways in the batch, and agrees."""
    glucose = [("15.2", "14.0", "16", "14.1")[i % 4] if i % 40 < 25 else "9.8" for i in range(240)]
    systolic = [150 if i % 36 < 18 else 122 for i in range(120)]
    readings = _dense(glucose, systolic)
    for check in CHECKS:
        batch = _agreement(check, readings)
        anchors = {r.id for r in readings if check.selects(r)}
        assert set(batch) == anchors, check.key
        assert set(batch.values()) == {True, False}, check.key


def test_readings_in_two_units_are_left_to_each_anchor() -> None:
    """A window mixing mmol/L and mg/dL is converted reading by reading: not batched (a
    count reads no values, so it is)."""
    readings = _dense(["15.0"] * 100, [])
    readings[50] = reading("cgm_glucose", "270", "mg/dL", at=readings[50].time, reading_id="g050")
    for check in CHECKS:
        if check.types & set(GLUCOSE):
            batched = _agreement(check, readings) != {}
            assert batched == (check.fields.aggregate == "count"), check.key


def test_few_anchors_are_left_to_each_anchor() -> None:
    readings = _dense(["15.0"] * (BATCH_MIN - 1), [])
    assert all(_agreement(check, readings) == {} for check in CHECKS)
