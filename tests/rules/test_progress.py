"""Goal progress (rules/progress/): table tests of the edges, properties of the math."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from rules import progress as pr
from rules.facts import ReadingFact
from rules.progress import (
    Aggregate,
    DayAggregate,
    Direction,
    GoalSpec,
    Measure,
    MilestoneSpec,
    ProgressState,
    Status,
    Target,
    aggregate_days,
    compute_progress,
    full_progress,
    measure_series,
    meets,
    percent_complete,
    project,
    theil_sen,
)
from rules.progress import days as pdays
from rules.progress.days import one_device_a_day
from tests.rules.factories import STOCKHOLM

TODAY = date(2026, 11, 26)
BELOW, ABOVE = Direction.BELOW, Direction.ABOVE


def at(day: date, clock: str = "08:00") -> datetime:
    """A Stockholm wall-clock time on a local day, in UTC."""
    return datetime.combine(day, time.fromisoformat(clock), STOCKHOLM).astimezone(UTC)


_ids = iter(range(10**9))


def fact(type_: str, when: datetime, **values: float | str) -> ReadingFact:
    """A reading in canonical units."""
    decimals = {k: Decimal(str(v)) for k, v in values.items()}
    return ReadingFact(
        id=f"r{next(_ids):09d}",
        type=type_,
        time=when,
        values=decimals,
        unit="x",
        original_values=decimals,
        original_unit="x",
    )


def weights(*pairs: tuple[int, float]) -> list[ReadingFact]:
    """Weights on days relative to TODAY."""
    return [fact("weight", at(TODAY + timedelta(days=d)), value=v) for d, v in pairs]


def spec(
    aggregate: Aggregate = Aggregate.LAST,
    window: int = 1,
    target: float = 90.0,
    direction: Direction = BELOW,
    *,
    start: date = TODAY - timedelta(days=30),
    due: date | None = None,
    inclusive: bool = True,
    milestones: Sequence[tuple[str, float]] = (),
    type_: str = "weight",
) -> GoalSpec:
    """A single-component goal."""
    return GoalSpec(
        measure=Measure(type_, aggregate, window, ("value",)),
        target=Target({"value": target}, direction, inclusive),
        start=start,
        due=due,
        milestones=tuple(MilestoneSpec(k, {"value": v}) for k, v in milestones),
    )


# --- the small functions ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("baseline", "current", "target", "direction", "expected"),
    [
        (96.0, 96.0, 91.0, BELOW, 0.0),
        (96.0, 93.5, 91.0, BELOW, 50.0),
        (96.0, 91.0, 91.0, BELOW, 100.0),
        (96.0, 89.0, 91.0, BELOW, 100.0),  # beyond the target: clamped
        (96.0, 97.0, 91.0, BELOW, 0.0),  # moving away: clamped
        (4000, 5500, 7000, ABOVE, 50.0),
        (4000, 7000, 7000, ABOVE, 100.0),
        (7500, 7200, 7000, ABOVE, 100.0),  # the baseline already met it, so does current
        (7500, 6900, 7000, ABOVE, 0.0),  # the baseline met it, current does not
        (7000, 7000, 7000, ABOVE, 100.0),  # baseline at the target
        (148.0, 141.5, 135.0, BELOW, 50.0),
    ],
)
def test_percent_complete_table(
    baseline: float, current: float, target: float, direction: Direction, expected: float
) -> None:
    assert percent_complete(baseline, current, target, direction) == expected


@pytest.mark.parametrize(
    ("value", "target", "direction", "inclusive", "expected"),
    [
        (135.0, 135.0, BELOW, True, True),
        (135.0, 135.0, BELOW, False, False),  # home BP "under 135": 135 is not under
        (134.9, 135.0, BELOW, False, True),
        (7000, 7000, ABOVE, True, True),
        (6999, 7000, ABOVE, True, False),
        (7000, 7000, ABOVE, False, False),
    ],
)
def test_meets_edges(
    value: float, target: float, direction: Direction, inclusive: bool, expected: bool
) -> None:
    assert meets(value, target, direction, inclusive) is expected


def test_theil_sen_is_robust_to_one_stray_value() -> None:
    xs = [0, 1, 2, 3, 4, 5, 6]
    ys = [10, 9, 8, 7, 6, 5, 4.0]
    assert theil_sen(xs, ys) == -1.0
    ys_with_outlier = [10, 9, 8, 70, 6, 5, 4.0]
    assert theil_sen(xs, ys_with_outlier) == -1.0  # least squares would go positive
    assert theil_sen([1], [1]) is None
    with pytest.raises(ValueError):
        theil_sen([1, 1], [1, 2])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 60), min_size=2, max_size=30, unique=True).flatmap(
        lambda xs: st.tuples(
            st.just(sorted(xs)),
            st.lists(
                st.lists(st.floats(-500, 500, allow_nan=False), min_size=len(xs), max_size=len(xs)),
                min_size=1,
                max_size=3,
            ),
        )
    )
)
def test_theil_sen_of_several_rows_is_each_rows_median_pairwise_slope(
    case: tuple[list[int], list[list[float]]],
) -> None:
    xs, rows = case
    slopes = pr.stats.theil_sen_rows(xs, rows)
    assert slopes is not None
    for ys, slope in zip(rows, slopes, strict=True):
        pairwise = sorted(
            (ys[b] - ys[a]) / (xs[b] - xs[a]) for a in range(len(xs)) for b in range(a + 1, len(xs))
        )
        half = len(pairwise) // 2
        expected = (
            pairwise[half] if len(pairwise) % 2 else (pairwise[half - 1] + pairwise[half]) / 2
        )
        assert slope == expected
        assert theil_sen(xs, ys) == expected


def _median_pairwise_slope(xs: Sequence[int], ys: Sequence[float]) -> float:
    """Theil–Sen by its definition: the median of the slopes of all pairs of points."""
    pairwise = sorted(
        (ys[b] - ys[a]) / (xs[b] - xs[a]) for a in range(len(xs)) for b in range(a + 1, len(xs))
    )
    half = len(pairwise) // 2
    return pairwise[half] if len(pairwise) % 2 else (pairwise[half - 1] + pairwise[half]) / 2


# A day of a component: None (no reading) or (readings, their total in millionths).
_trend_day = st.none() | st.tuples(st.integers(1, 4), st.integers(50_000_000, 150_000_000))


@settings(max_examples=150, deadline=None)
@given(
    first=st.lists(_trend_day, min_size=pr.TREND_DAYS, max_size=pr.TREND_DAYS),
    second=st.none() | st.lists(_trend_day, min_size=pr.TREND_DAYS, max_size=pr.TREND_DAYS),
    data=st.data(),
)
def test_the_trend_is_the_theil_sen_slope_of_the_days_own_values_full_or_incremental(
    first: list[tuple[int, int] | None],
    second: list[tuple[int, int] | None] | None,
    data: st.DataObject,
) -> None:
    """Any daily values, missing days, one component or two (their days the same or not).

    The trend is the median pairwise slope of each component's day means × 7 (None below the
    data-sufficiency rule), and continuing the state of the day before with the last day and
    any earlier days re-sent, in any order, gives the same progress, trend included.
    """
    components = ("a",) if second is None else ("a", "b")
    columns = [first] if second is None else [first, data.draw(st.sampled_from([first, second]))]
    goal = GoalSpec(
        Measure("x", Aggregate.MEAN, 1, components),
        Target(dict.fromkeys(components, 90.0), BELOW),
        start=TODAY - timedelta(days=pr.TREND_DAYS - 1),
    )
    days: dict[date, dict[str, DayAggregate]] = {}
    expected: dict[str, float] | None = {}
    for component, column in zip(components, columns, strict=True):
        xs = [x for x, day in enumerate(column) if day is not None]
        ys = [total / (count * pr.MICRO) for count, total in filter(None, column)]
        if len(xs) < pr.MIN_TREND_POINTS or xs[-1] - xs[0] < pr.MIN_TREND_SPAN_DAYS:
            expected = None
        elif expected is not None:
            expected[component] = _median_pairwise_slope(xs, ys) * 7.0
        for x, day in enumerate(column):
            if day is not None:
                count, total = day
                on = TODAY - timedelta(days=pr.TREND_DAYS - 1 - x)
                days.setdefault(on, {})[component] = DayAggregate(count, total, 0, 0, 0)
    full = compute_progress(goal, days, TODAY)
    assert full.trend_per_week == expected

    yesterday = TODAY - timedelta(days=1)
    before = compute_progress(goal, {d: a for d, a in days.items() if d < TODAY}, yesterday)
    resent = data.draw(st.lists(st.sampled_from(sorted(days) or [TODAY]), max_size=3))
    changed = [d for d in resent if d > (before.state.baseline_date or date.min)]
    order = data.draw(st.permutations([*dict.fromkeys([*changed, TODAY])]))
    assert not pr.needs_full(goal, before.state, order)
    result = compute_progress(goal, {d: days.get(d, {}) for d in order}, TODAY, before.state)
    assert result == full


@pytest.mark.parametrize(
    ("current", "target", "slope", "direction", "expected"),
    [
        (94.5, 91.0, -0.5, BELOW, TODAY + timedelta(days=49)),
        (94.5, 91.0, -0.7, BELOW, TODAY + timedelta(days=35)),
        (94.5, 91.0, 0.5, BELOW, None),  # moving away
        (94.5, 91.0, 0.0, BELOW, None),  # flat: no trend
        (94.5, 91.0, None, BELOW, None),  # no trend at all
        (90.0, 91.0, -0.5, BELOW, None),  # already there
        (5000, 7000, 700, ABOVE, TODAY + timedelta(days=20)),
        (94.5, 91.0, -1e-9, BELOW, None),  # beyond ten years
    ],
)
def test_project_table(
    current: float, target: float, slope: float | None, direction: Direction, expected: date | None
) -> None:
    assert project(current, target, slope, TODAY, direction) == expected


# --- day aggregates and the series --------------------------------------------------------------


def test_days_are_local_days_across_both_dst_changes() -> None:
    """00:30 local after the switch is on the new day; 23:30 local is on the same day."""
    spring, autumn = date(2026, 3, 29), date(2026, 10, 25)
    readings = [
        fact("steps", at(spring, "00:30"), value=10),
        fact("steps", at(spring, "23:30"), value=20),  # a 23-hour day
        fact("steps", at(spring + timedelta(days=1), "00:30"), value=40),
        fact("steps", at(autumn, "00:30"), value=1),
        fact("steps", at(autumn, "23:30"), value=2),  # a 25-hour day
        fact("steps", datetime(2026, 10, 24, 22, 30, tzinfo=UTC), value=4),  # 00:30 CEST
        fact("steps", datetime(2026, 10, 25, 22, 59, tzinfo=UTC), value=8),  # 23:59 CET
    ]
    days = aggregate_days(readings, ("value",), STOCKHOLM)
    totals = {d: a["value"].total // pr.MICRO for d, a in days.items()}
    assert totals == {spring: 30, spring + timedelta(days=1): 40, autumn: 15}


def test_window_mean_is_the_mean_of_readings_not_of_days() -> None:
    readings = [
        fact("blood_pressure", at(TODAY - timedelta(days=1), "07:00"), systolic=140, diastolic=90),
        fact("blood_pressure", at(TODAY - timedelta(days=1), "21:00"), systolic=150, diastolic=92),
        fact("blood_pressure", at(TODAY, "07:00"), systolic=130, diastolic=80),
        fact("blood_pressure", at(TODAY - timedelta(days=7), "07:00"), systolic=200, diastolic=99),
    ]
    measure = Measure("blood_pressure", Aggregate.MEAN, 7, ("systolic", "diastolic"))
    days = aggregate_days(readings, measure.components, STOCKHOLM)
    points = measure_series(measure, days, TODAY - timedelta(days=1), TODAY)
    assert points[-1].value == {"systolic": 140.0, "diastolic": (90 + 92 + 80) / 3}
    assert points[-1].daily == {"systolic": 130.0, "diastolic": 80.0}
    assert points[0].value == {"systolic": (200 + 140 + 150) / 3, "diastolic": (99 + 90 + 92) / 3}


@pytest.mark.parametrize(
    ("aggregate", "expected"),
    [
        (Aggregate.MEAN, (5 + 7 + 9) / 3),
        (Aggregate.MIN, 5.0),
        (Aggregate.MAX, 9.0),
        (Aggregate.LAST, 7.0),
        (Aggregate.SUM, (5 + 9 + 7) / 2),  # day totals 14 and 7, two days with data
    ],
)
def test_window_aggregates(aggregate: Aggregate, expected: float) -> None:
    readings = [
        fact("steps", at(TODAY - timedelta(days=2), "08:00"), value=5),
        fact("steps", at(TODAY - timedelta(days=2), "09:00"), value=9),
        fact("steps", at(TODAY, "06:00"), value=7),
        fact("steps", at(TODAY - timedelta(days=3), "06:00"), value=100),  # outside the window
    ]
    measure = Measure("steps", aggregate, 3, ("value",))
    days = aggregate_days(readings, measure.components, STOCKHOLM)
    (point,) = measure_series(measure, days, TODAY, TODAY)
    assert point.value == {"value": expected}


def test_latest_is_by_time_then_id_and_windows_without_data_have_no_value() -> None:
    readings = weights((-10, 95.0), (-3, 94.0))
    measure = Measure("weight", Aggregate.LAST, 3, ("value",))
    days = aggregate_days(readings, measure.components, STOCKHOLM)
    points = {p.day: p for p in measure_series(measure, days, TODAY - timedelta(days=4), TODAY)}
    assert points[TODAY - timedelta(days=4)].value is None
    assert points[TODAY - timedelta(days=1)].value == {"value": 94.0}
    assert points[TODAY].value is None  # the window (3 days) no longer reaches day -3


# --- status, baseline, streaks, milestones ------------------------------------------------------


def _weekly_weights(start: float, per_week: float, weeks: int) -> list[ReadingFact]:
    return weights(*((-7 * k, round(start - per_week * (weeks - k), 1)) for k in range(weeks + 1)))


@pytest.mark.parametrize(
    ("readings", "goal", "status", "reason"),
    [
        ([], spec(), Status.INSUFFICIENT_DATA, "no_baseline"),
        (weights((-30, 96.0)), spec(window=14), Status.INSUFFICIENT_DATA, "no_current_value"),
        (weights((-30, 96), (0, 95)), spec(), Status.INSUFFICIENT_DATA, "no_trend"),
        (weights((-30, 96), (-1, 89.5)), spec(window=7), Status.ACHIEVED, ""),
        (
            _weekly_weights(96.0, 0.5, 4),
            spec(window=7, due=TODAY + timedelta(days=60)),
            Status.ON_TRACK,
            "",
        ),  # 94.0 at −0.5/week reaches 90 in 8 weeks: day 56 ≤ 60
        (
            _weekly_weights(96.0, 0.5, 4),
            spec(window=7, due=TODAY + timedelta(days=50)),
            Status.AT_RISK,
            "",
        ),
        (_weekly_weights(94.0, -0.5, 4), spec(window=7), Status.AT_RISK, ""),  # moving away
        (
            _weekly_weights(96.0, 0.5, 4),
            spec(window=7, due=TODAY - timedelta(days=1)),
            Status.NOT_ACHIEVED,
            "",
        ),
        (weights((0, 95)), spec(start=TODAY + timedelta(days=1)), Status.INSUFFICIENT_DATA,
         "not_started"),
    ],
)  # fmt: skip
def test_status_table(
    readings: list[ReadingFact], goal: GoalSpec, status: Status, reason: str
) -> None:
    result = full_progress(goal, readings, STOCKHOLM, TODAY)
    assert (result.status, result.reason) == (status, reason)


def test_on_track_numbers() -> None:
    result = full_progress(
        spec(window=7, due=TODAY + timedelta(days=60)),
        _weekly_weights(96.0, 0.5, 4),
        STOCKHOLM,
        TODAY,
    )
    assert result.baseline == {"value": 96.0}  # the first value in the grace days after start
    assert result.baseline_date == TODAY - timedelta(days=28)
    assert result.current == {"value": 94.0}
    assert result.trend_per_week == {"value": pytest.approx(-0.5)}
    assert result.percent == pytest.approx(2.0 / 6.0 * 100)
    assert result.projected_date == TODAY + timedelta(days=56)


def test_strict_target_shows_100_percent_but_is_not_achieved_at_the_limit() -> None:
    goal = spec(window=1, target=90.0, inclusive=False)
    result = full_progress(goal, weights((-30, 96.0), (-20, 93), (-10, 91.5), (0, 90.0)),
                           STOCKHOLM, TODAY)  # fmt: skip
    assert result.percent == 100.0
    assert result.status is not Status.ACHIEVED


def test_blood_pressure_goal_needs_both_components() -> None:
    measure = Measure("blood_pressure", Aggregate.MEAN, 7, ("systolic", "diastolic"))
    goal = GoalSpec(measure, Target({"systolic": 135, "diastolic": 85}, BELOW, False),
                    start=TODAY - timedelta(days=30))  # fmt: skip
    readings = [
        fact("blood_pressure", at(TODAY - timedelta(days=d)), systolic=130, diastolic=80 + d / 10)
        for d in range(31)
    ]
    result = full_progress(goal, readings, STOCKHOLM, TODAY)
    assert result.status is Status.ACHIEVED
    late = [*readings, fact("blood_pressure", at(TODAY, "09:00"), systolic=130, diastolic=130)]
    result = full_progress(goal, late, STOCKHOLM, TODAY)
    assert result.status is not Status.ACHIEVED
    assert result.current is not None and result.current["systolic"] == 130.0


def test_step_streaks_count_local_days_and_skip_today() -> None:
    goal = spec(Aggregate.SUM, 7, 7000.0, ABOVE, start=TODAY - timedelta(days=10))
    per_day = {-10: 7500, -9: 8000, -8: 6000, -7: 7000, -6: 7100, -5: 7200, -3: 9000,
               -2: 7300, -1: 7001, 0: 100}  # fmt: skip
    readings = [
        fact("steps", at(TODAY + timedelta(days=d), "00:00"), value=v) for d, v in per_day.items()
    ]
    result = full_progress(goal, readings, STOCKHOLM, TODAY)
    assert result.as_of == TODAY - timedelta(days=1)
    assert (result.streak.current, result.streak.longest) == (3, 3)  # day −4 has no data
    assert result.current == {"value": (7200 + 9000 + 7300 + 7001 + 7100 + 7000) / 6}
    assert result.status is Status.ACHIEVED


def walk(day: date, clock: str, steps: int, device: str | None) -> ReadingFact:
    """Steps counted over ten minutes from a local wall-clock time, by a named device."""
    start = at(day, clock)
    return replace(
        fact("steps", start, value=steps),
        end_time=start + timedelta(minutes=10),
        context={"source_name": device} if device else {},
    )


def test_a_day_s_steps_come_from_the_device_that_counted_most_never_from_two() -> None:
    """The phone and the watch both count a walk; summed, a day would show it twice."""
    yesterday = TODAY - timedelta(days=1)
    readings = [
        walk(yesterday, "08:00", 1200, "Astas iPhone"),
        walk(yesterday, "08:00", 1500, "Astas Apple Watch"),  # the same walk, on the wrist
        walk(yesterday, "17:00", 900, "Astas iPhone"),
        walk(yesterday, "17:00", 1000, "Astas Apple Watch"),
        walk(TODAY, "09:00", 700, "Astas iPhone"),  # the watch was charging
        walk(TODAY, "10:00", 300, None),  # the phone app's own count: a device of its own
        walk(TODAY, "11:00", 200, None),
    ]
    days = aggregate_days(readings, ("value",), STOCKHOLM)
    assert days[yesterday]["value"] == DayAggregate(
        2, 2500 * pr.MICRO, 1000 * pr.MICRO, 1500 * pr.MICRO, 1000 * pr.MICRO
    )
    assert days[TODAY]["value"].total == 700 * pr.MICRO  # the iPhone's 700 over the app's 500

    # A tie goes to the name that sorts last; without a source name, the device text names it.
    tie = [walk(TODAY, "08:00", 500, "A phone"), walk(TODAY, "08:00", 500, "B watch")]
    assert aggregate_days(tie, ("value",), STOCKHOLM)[TODAY]["value"].last == 500 * pr.MICRO
    assert one_device_a_day(tie, STOCKHOLM) == [tie[1]]
    unnamed = [
        replace(walk(TODAY, "08:00", n, None), context={"device": device})
        for n, device in ((400, "Watch6,2"), (300, "iPhone15,3"), (200, "iPhone15,3"))
    ]
    assert one_device_a_day(unnamed, STOCKHOLM) == unnamed[1:]

    goal = spec(Aggregate.SUM, 1, 2000.0, ABOVE, type_="steps", start=yesterday)
    assert full_progress(goal, readings, STOCKHOLM, TODAY).current == {"value": 2500.0}

    # A point reading from each of two cuffs is a measurement of its own: both count.
    cuffs = [
        replace(fact("blood_pressure", at(TODAY, clock), systolic=s), context={"source_name": c})
        for clock, s, c in (("07:00", 140, "Omron"), ("07:05", 130, "Withings"))
    ]
    assert aggregate_days(cuffs, ("systolic",), STOCKHOLM)[TODAY]["systolic"].count == 2


@settings(max_examples=150, deadline=None)
@given(
    walks=st.lists(
        st.tuples(
            st.integers(0, 2),  # the day
            st.integers(0, 23),  # the hour
            st.integers(0, 5000),  # steps
            st.sampled_from([None, "phone", "watch", "ring"]),
        ),
        max_size=30,
    ),
    order=st.randoms(use_true_random=False),
    # An ordinary week, and the days around both DST changes (23- and 25-hour days).
    first=st.sampled_from([TODAY - timedelta(days=2), date(2026, 3, 28), date(2026, 10, 24)]),
)
def test_one_device_a_day_never_counts_more_than_one_device_in_any_order(
    walks: list[tuple[int, int, int, str | None]], order: object, first: date
) -> None:
    """Each day's total is the largest of the devices' totals that day, whatever the order
    the readings come in, and never more than any sum of them."""
    readings = [
        walk(first + timedelta(days=d), f"{h:02d}:00", n, device) for d, h, n, device in walks
    ]
    shuffled = list(readings)
    order.shuffle(shuffled)  # type: ignore[attr-defined]
    days = aggregate_days(readings, ("value",), STOCKHOLM)
    assert days == aggregate_days(shuffled, ("value",), STOCKHOLM)
    for offset in range(3):
        day = first + timedelta(days=offset)
        per_device: dict[str | None, int] = {}
        for d, _, n, device in walks:
            if d == offset:
                per_device[device] = per_device.get(device, 0) + n
        if not per_device:
            assert day not in days
            continue
        assert days[day]["value"].total == max(per_device.values()) * pr.MICRO


def test_milestone_reached_on_the_first_day_it_is_met() -> None:
    goal = spec(window=1, target=91.0, milestones=[("m1", 94.0), ("m2", 92.0)])
    result = full_progress(
        goal, weights((-30, 96.0), (-20, 94.5), (-13, 94.0), (-6, 94.2), (0, 93.6)), STOCKHOLM,
        TODAY,
    )  # fmt: skip
    reached = {m.key: m.reached_on for m in result.milestones}
    assert reached == {"m1": TODAY - timedelta(days=13), "m2": None}
    m2 = result.milestones[1]
    assert m2.percent == pytest.approx((96.0 - 93.6) / (96.0 - 92.0) * 100)


# --- properties -----------------------------------------------------------------------------------

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
directions = st.sampled_from([BELOW, ABOVE])


@given(baseline=finite, target=finite, direction=directions)
def test_percent_is_exactly_100_at_the_target(
    baseline: float, target: float, direction: Direction
) -> None:
    assert percent_complete(baseline, target, target, direction) == 100.0


@given(baseline=finite, target=finite, a=finite, b=finite, direction=directions)
def test_percent_is_monotone_in_the_targets_direction(
    baseline: float, target: float, a: float, b: float, direction: Direction
) -> None:
    worse, better = (max(a, b), min(a, b)) if direction is BELOW else (min(a, b), max(a, b))
    p_worse = percent_complete(baseline, worse, target, direction)
    p_better = percent_complete(baseline, better, target, direction)
    assert 0.0 <= p_worse <= p_better <= 100.0


@given(
    values=st.lists(st.integers(500, 1500), min_size=0, max_size=40),
    constant=st.integers(500, 1500),
    direction=directions,
)
def test_projection_is_undefined_without_a_trend(
    values: list[int], constant: int, direction: Direction
) -> None:
    """Flat data, or too few days, project nothing."""
    goal = spec(Aggregate.LAST, 1, 2000.0 if direction is ABOVE else 100.0, direction)
    flat = weights(*((-d, constant / 10) for d in range(len(values))))
    result = full_progress(goal, flat, STOCKHOLM, TODAY)
    assert result.projected_date is None
    assert result.status is not Status.ON_TRACK
    sparse = weights(*((-d, v / 10) for d, v in zip((0, 1), values, strict=False)))
    assert full_progress(goal, sparse, STOCKHOLM, TODAY).projected_date is None


@given(
    slope=st.integers(-50, 50).filter(lambda s: s != 0),
    direction=directions,
)
def test_projection_exists_exactly_when_the_trend_moves_toward_the_target(
    slope: int, direction: Direction
) -> None:
    goal = spec(Aggregate.LAST, 1, -1000.0 if direction is BELOW else 3000.0, direction)
    readings = weights(*((-d, 1000 - slope * (28 - d)) for d in range(28)))
    result = full_progress(goal, readings, STOCKHOLM, TODAY)
    toward = (slope > 0) == (direction is BELOW)
    assert (result.projected_date is not None) == toward


_SPECS = [
    spec(Aggregate.MEAN, 7, 130.0, BELOW, start=TODAY - timedelta(days=40),
         milestones=[("m", 140.0)], type_="x"),
    spec(Aggregate.SUM, 7, 7000.0, ABOVE, start=TODAY - timedelta(days=20), type_="x"),
    spec(Aggregate.LAST, 14, 91.0, BELOW, start=TODAY - timedelta(days=50),
         milestones=[("a", 94.0), ("b", 92.0)], type_="x"),
    spec(Aggregate.MIN, 3, 4.0, ABOVE, start=TODAY - timedelta(days=5), type_="x"),
    spec(Aggregate.MAX, 1, 10.0, BELOW, start=TODAY - timedelta(days=60), type_="x"),
]  # fmt: skip


@st.composite
def histories(draw: st.DrawFn) -> tuple[GoalSpec, list[int], list[tuple[int, int, int, int]]]:
    """A goal, the days between syncs, and readings as (sync, day back, minute, value×10).

    A reading arrives at a sync and lies on that sync's day or up to 40 days before it (late
    data from an offline phone); a value of 0 deletes the latest reading that arrived so far.
    """
    goal = draw(st.sampled_from(_SPECS))
    steps = draw(st.lists(st.integers(1, 9), min_size=1, max_size=8))
    level = goal.target.values["value"] * 10
    rows = draw(
        st.lists(
            st.tuples(
                st.integers(0, len(steps) - 1),
                st.integers(0, 40) | st.just(0),
                st.integers(0, 24 * 60 - 1),
                st.just(0) | st.integers(int(level * 0.8), int(level * 1.2) + 1),
            ),
            max_size=80,
        )
    )
    return goal, steps, rows


@settings(max_examples=150, deadline=None)
@given(history=histories())
def test_incremental_recomputation_equals_a_full_one(
    history: tuple[GoalSpec, list[int], list[tuple[int, int, int, int]]],
) -> None:
    """At each sync the changed days update the state, or needs_full says why not: as full."""
    goal, steps, rows = history
    todays = [TODAY - timedelta(days=70)]
    for step in steps:
        todays.append(todays[-1] + timedelta(days=step))
    stored: list[ReadingFact] = []
    state: ProgressState | None = None
    incremental_runs = 0
    for sync, today in enumerate(todays):
        changed: set[date] = set()
        for _, back, minute, value in (r for r in rows if r[0] == sync - 1):
            if value == 0:
                if stored:
                    changed.add(stored.pop().time.astimezone(STOCKHOLM).date())
                continue
            day = today - timedelta(days=back)
            clock = time(minute // 60, minute % 60)
            stored.append(
                fact("x", datetime.combine(day, clock, STOCKHOLM).astimezone(UTC), value=value / 10)
            )
            changed.add(day)
        full = full_progress(goal, stored, STOCKHOLM, today)
        if pr.needs_full(goal, state, changed):
            result = full
        else:
            assert state is not None
            incremental_runs += 1
            touched = [r for r in stored if r.time.astimezone(STOCKHOLM).date() in changed]
            aggregated = aggregate_days(touched, ("value",), STOCKHOLM)
            result = compute_progress(
                goal, {d: aggregated.get(d, {}) for d in changed}, today, state
            )
        assert result == full
        state = ProgressState.from_dict(json.loads(json.dumps(result.state.to_dict())))
        assert state == result.state
    event(f"incremental runs: {min(incremental_runs, 3)}")


def test_a_day_of_new_readings_is_incremental() -> None:
    """The everyday case: yesterday's state, today's readings."""
    goal = spec(Aggregate.MEAN, 7, 90.0, start=TODAY - timedelta(days=30))
    history = weights(*((-d, 96 - d / 10) for d in range(1, 40)))
    state = full_progress(goal, history, STOCKHOLM, TODAY - timedelta(days=1)).state
    new = weights((0, 93.0))
    assert not pr.needs_full(goal, state, {TODAY})
    days = aggregate_days(new, ("value",), STOCKHOLM)
    result = compute_progress(goal, days, TODAY, state)
    assert result == full_progress(goal, history + new, STOCKHOLM, TODAY)
    assert pr.needs_full(goal, state, {TODAY - timedelta(days=40)})  # behind the state
    assert pr.needs_full(goal, state, {goal.start})  # on the baseline's day


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.integers(0, 40 * 24 * 60 - 1), st.integers(10, 300)), min_size=1, max_size=300
    )
)
def test_pandas_and_loop_aggregate_identically(rows: list[tuple[int, int]]) -> None:
    start = datetime(2026, 10, 10, tzinfo=UTC)  # across the October DST change
    readings = [
        fact("cgm_glucose", start + timedelta(minutes=m), value=Decimal(v) / 10) for m, v in rows
    ]
    ordered = sorted(readings, key=lambda r: (r.time, r.id))
    assert pdays._aggregate_frame(ordered, ("value",), STOCKHOLM) == pdays._aggregate_loop(
        ordered, ("value",), STOCKHOLM
    )


def test_a_cgm_month_goes_through_pandas_with_the_same_result() -> None:
    start = datetime(2026, 3, 15, tzinfo=UTC)  # across the March DST change
    readings = [
        fact("cgm_glucose", start + timedelta(minutes=5 * i), value=Decimal(40 + i % 97) / 10)
        for i in range(30 * 288)
    ]
    assert len(readings) >= pr.PANDAS_MIN_READINGS
    days = aggregate_days(readings, ("value",), STOCKHOLM)
    assert days == pdays._aggregate_loop(readings, ("value",), STOCKHOLM)
    assert days[date(2026, 3, 29)]["value"].count == 23 * 12  # the 23-hour day


def test_day_aggregates_are_exact_in_millionths() -> None:
    readings = [fact("weight", at(TODAY, f"0{h}:00"), value="0.1") for h in range(3)]
    (agg,) = aggregate_days(readings, ("value",), STOCKHOLM)[TODAY].values()
    assert agg == DayAggregate(3, 300_000, 100_000, 100_000, 100_000)
    assert agg.value(Aggregate.SUM) == 0.3  # not 0.30000000000000004


def test_spec_checks_components() -> None:
    with pytest.raises(ValueError):
        GoalSpec(Measure("blood_pressure", Aggregate.MEAN, 7, ("systolic", "diastolic")),
                 Target({"systolic": 135}, BELOW), start=TODAY)  # fmt: skip
    with pytest.raises(ValueError):
        Measure("weight", Aggregate.MEAN, 0, ("value",))


# --- first day the goal's target is met (corrections) ------------------------------------------


@pytest.mark.parametrize(
    ("readings", "goal", "expected"),
    [
        ([(-20, 95.0), (-5, 89.5), (-1, 92.0)], spec(), -5),  # met once, drifted away since
        ([(-20, 95.0), (-1, 92.0)], spec(), None),  # never met
        ([(-20, 95.0), (-3, 90.0)], spec(), -3),  # exactly the target: inclusive
        ([(-20, 95.0), (-3, 90.0)], spec(inclusive=False), None),  # strict
        ([(-40, 89.0), (-20, 95.0)], spec(), None),  # before the start does not count
        ([(-6, 93.0), (-5, 86.0), (-4, 93.0)], spec(Aggregate.MEAN, window=3), -5),
        ([(-6, 93.0), (-5, 88.0), (-4, 93.0)], spec(Aggregate.MEAN, window=3), None),
    ],
)
def test_first_met_day(
    readings: list[tuple[int, float]], goal: GoalSpec, expected: int | None
) -> None:
    found = pr.first_met_day(goal, weights(*readings), STOCKHOLM, TODAY)
    assert found == (None if expected is None else TODAY + timedelta(days=expected))


# --- the incremental state, one sync at a time ----------------------------------------------------

_BP = Measure("blood_pressure", Aggregate.MEAN, 7, ("systolic", "diastolic"))
_DAILY_SPECS = [
    GoalSpec(_BP, Target({"systolic": 135.0, "diastolic": 85.0}, BELOW, inclusive=False),
             start=TODAY - timedelta(days=75), due=TODAY,
             milestones=(MilestoneSpec("m", {"systolic": 140.0, "diastolic": 88.0}),)),
    spec(Aggregate.MEAN, 3, 90.0, BELOW, start=TODAY - timedelta(days=62),
         milestones=[("a", 93.0), ("b", 91.0)], type_="x"),
    spec(Aggregate.SUM, 7, 90.0, ABOVE, start=TODAY - timedelta(days=66), type_="x"),
    spec(Aggregate.LAST, 14, 90.0, BELOW, start=TODAY - timedelta(days=80),
         milestones=[("m", 94.0)], type_="x"),
    spec(Aggregate.MIN, 2, 90.0, ABOVE, start=TODAY - timedelta(days=58), inclusive=False,
         type_="x"),
    replace(spec(Aggregate.MAX, 1, 90.0, BELOW, start=TODAY - timedelta(days=70), type_="x"),
            trend_days=7),
]  # fmt: skip

# A sync: days the phone's clock moved on since the last one (0: the same day again), and its
# readings as (days back from that day, minute, value×10 or 0 for "delete the latest stored
# reading", whether a blood pressure lacks its diastolic).
_Sync = tuple[int, list[tuple[int, int, int, bool]]]


@st.composite
def daily_syncs(draw: st.DrawFn) -> tuple[GoalSpec, list[_Sync], st.DataObject]:
    """A goal and a run of syncs: mostly a day apart, some the same day, some after a gap."""
    goal = draw(st.sampled_from(_DAILY_SPECS))
    syncs = draw(
        st.lists(
            st.tuples(
                st.sampled_from([1, 1, 1, 1, 0, 2, 5]),
                st.lists(
                    st.tuples(
                        st.sampled_from([0, 0, 0, 0, 1, 2, 6, 13, 30]),  # late, some too late
                        st.integers(0, 24 * 60 - 1),
                        st.integers(770, 1020).map(lambda v: 0 if v < 780 else v),
                        st.booleans(),
                    ),
                    max_size=4,
                ),
            ),
            min_size=1,
            max_size=25,
        )
    )
    return goal, syncs, draw(st.data())


@settings(max_examples=120, deadline=None)
@given(case=daily_syncs())
def test_the_state_after_each_sync_gives_what_a_full_recomputation_gives(
    case: tuple[GoalSpec, list[_Sync], st.DataObject],
) -> None:
    """Sync after sync, the state continued with the changed days equals a full recomputation.

    Late readings for an earlier day, deletions, gaps of days without a sync and several syncs
    on one day; the changed days come in any order. A sync whose changes reach behind the
    state (needs_full) is recomputed in full, as the service does.
    """
    goal, syncs, data = case
    components = goal.measure.components
    history = [
        fact("x", at(TODAY - timedelta(days=d), "08:00"), **dict.fromkeys(components, 95 + d % 7))
        for d in range(60, 100)
    ]  # a baseline before the first sync
    today = TODAY - timedelta(days=60)
    state = full_progress(goal, history, STOCKHOLM, today).state
    incremental_runs = 0
    for advance, rows in syncs:
        today += timedelta(days=advance)
        changed: set[date] = set()
        for back, minute, value, partial in rows:
            if value == 0:
                if history:
                    changed.add(history.pop().time.astimezone(STOCKHOLM).date())
                continue
            day = today - timedelta(days=back)
            values = {c: value / 10 - 50 * i for i, c in enumerate(components)}
            if partial and len(components) > 1:
                del values[components[-1]]
            when = datetime.combine(day, time(minute // 60, minute % 60), STOCKHOLM)
            history.append(fact("x", when.astimezone(UTC), **values))
            changed.add(day)
        full = full_progress(goal, history, STOCKHOLM, today)
        if pr.needs_full(goal, state, changed):
            result = full
        else:
            incremental_runs += 1
            aggregated = aggregate_days(
                [r for r in history if r.time.astimezone(STOCKHOLM).date() in changed],
                components,
                STOCKHOLM,
            )
            order = data.draw(st.permutations(sorted(changed)))
            result = compute_progress(goal, {d: aggregated.get(d, {}) for d in order}, today, state)
        assert result == full
        stored = json.loads(json.dumps(result.state.to_dict()))
        state = ProgressState.from_dict(stored)
        assert state == result.state
    runs = "none" if not incremental_runs else "1-4" if incremental_runs < 5 else "5 or more"
    event(f"incremental runs: {runs}")


def test_a_state_keeps_only_what_the_measure_reads_of_a_day() -> None:
    goal = spec(Aggregate.MIN, 2, 90.0, start=TODAY - timedelta(days=3))
    readings = weights((-1, 92.0), (-1, 91.5), (0, 93.0))
    state = full_progress(goal, readings, STOCKHOLM, TODAY).state
    assert state.columns["value"].counts[-2:] == (2, 1)
    assert state.columns["value"].values[-2:] == (91_500_000, 93_000_000)  # the day's lowest
    assert state.streak == pr.Streak(current=0, longest=0)
    assert state.to_dict()["version"] == pr.STATE_VERSION


def test_a_state_of_the_first_shape_is_recomputed_in_full() -> None:
    """A version-1 state (five aggregates a day, no version) is not read: None, full instead."""
    old = {
        "today": TODAY.isoformat(),
        "first_day": (TODAY - timedelta(days=1)).isoformat(),
        "columns": {"value": {k: [0, 0] for k in ("count", "total", "low", "high", "last")}},
        "baseline": None,
        "baseline_date": None,
        "run_before": 0,
        "longest_before": 0,
        "reached": {},
    }
    assert ProgressState.from_stored(old) is None
    with pytest.raises(ValueError):
        ProgressState.from_dict(old)
    state = full_progress(spec(), weights((0, 91.0)), STOCKHOLM, TODAY).state
    assert ProgressState.from_stored(json.loads(json.dumps(state.to_dict()))) == state
    # Version 2 had this shape but counted a day's steps from every device: recomputed too.
    assert ProgressState.from_stored({**state.to_dict(), "version": 2}) is None
