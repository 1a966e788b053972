"""Late data and batching: the latest evaluation of each (rule, anchor) equals one shot.

The app loads only the readings within ``lookback`` on both sides of a batch, evaluates
with :func:`evaluate_run`, replaces its stored result for every evaluated (rule, anchor)
(retracting those that no longer fire) and records the new firings. Whatever the split
into batches and their order, and after readings are removed, the result must equal a
one-shot evaluation of the whole history, for every reading-anchored kind.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from rules.engine import (
    EvaluationRun,
    Finding,
    evaluate,
    evaluate_run,
    history_types,
    lookback,
    narrow_span,
)
from rules.facts import ReadingFact
from rules.language import READING_KINDS, load_library
from rules.plan import PlanSpec
from tests.rules.factories import bp, local, plan, reading

LIBRARY = load_library()
START = local(0, "00:00")

# Small windows and counts, so that random histories of ~40 readings reach every edge.
PLANS = [
    plan(
        *(rule.id for rule in LIBRARY.rules if not rule.time_based),
        params={
            "bp-home-mean-high": {
                "window_days": Decimal(3),
                "min_readings": Decimal(3),
                "systolic_mean": Decimal(140),
            },
            "peak-flow-zone": {"personal_best": Decimal(500)},
            "glucose-high": {"window_hours": Decimal(12)},
        },
    ),
    plan(
        *(rule.id for rule in LIBRARY.rules if not rule.time_based),
        params={
            "bp-home-mean-high": {"window_days": Decimal(4), "min_readings": Decimal(4)},
            "peak-flow-zone": {"personal_best": Decimal(450)},
            "weight-gain-hf": {"window_hours": Decimal(48), "gain": Decimal("1.5")},
            "hf-weight-and-breathlessness": {"within_hours": Decimal(12)},
        },
        modes={"glucose-very-low": "monitor"},
    ),
]


def test_the_plans_cover_every_reading_kind() -> None:
    kinds = {rule.kind for p in PLANS for r in p.rules if (rule := LIBRARY.get(r.rule))}
    assert kinds == set(READING_KINDS)


@st.composite
def _reading(draw: st.DrawFn, index: int) -> ReadingFact:
    # Whole hours over 9 days: ties in time happen.
    at = START + timedelta(hours=draw(st.integers(0, 9 * 24)))
    rid = f"r{index:02d}"
    kind = draw(st.sampled_from(["bp", "weight", "score", "glucose", "cgm", "peak"]))
    match kind:
        case "bp":
            systolic = draw(st.integers(85, 185))
            diastolic = draw(st.integers(60, min(systolic - 1, 112)))
            unit = draw(st.sampled_from(["mm[Hg]", "mmHg"]))
            return bp(str(systolic), str(diastolic), unit, at=at, reading_id=rid)
        case "weight":
            if draw(st.booleans()):
                value = str(Decimal(draw(st.integers(780, 830))) / 10)
                return reading("weight", value, "kg", at=at, reading_id=rid)
            value = str(Decimal(draw(st.integers(1720, 1830))) / 10)
            return reading("weight", value, "[lb_av]", at=at, reading_id=rid)
        case "score":
            instrument = draw(st.sampled_from(["breathlessness", "breathlessness", "CAT"]))
            value = str(draw(st.integers(0, 6)))
            context = {"instrument": instrument}
            return reading(
                "symptom_score", value, "{score}", at=at, reading_id=rid, context=context
            )
        case "glucose" | "cgm":
            type_name = "glucose" if kind == "glucose" else "cgm_glucose"
            if draw(st.booleans()):
                value = str(
                    Decimal(draw(st.sampled_from([25, 29, 30, 38, 39, 40, 149, 150, 151, 170])))
                    / 10
                )
                return reading(type_name, value, "mmol/L", at=at, reading_id=rid)
            value = str(draw(st.sampled_from([50, 54, 55, 69, 70, 71, 269, 270, 271, 290])))
            return reading(type_name, value, "mg/dL", at=at, reading_id=rid)
        case _:
            value = str(draw(st.sampled_from([200, 224, 225, 226, 250, 359, 360, 361, 400, 450])))
            return reading("peak_flow", value, "L/min", at=at, reading_id=rid)


@st.composite
def _history(draw: st.DrawFn) -> tuple[list[ReadingFact], list[int], list[int], set[str]]:
    """Readings, the batch of each, the order of the batches, and the ids later removed."""
    n = draw(st.integers(1, 40))
    readings = [draw(_reading(i)) for i in range(n)]
    batches = draw(st.integers(1, 5))
    assignment = draw(st.lists(st.integers(0, batches - 1), min_size=n, max_size=n))
    order = draw(st.permutations(range(batches)))
    removed = draw(st.sets(st.sampled_from([r.id for r in readings]), max_size=3))
    return readings, assignment, list(order), removed


def _apply(state: dict[tuple[str, str], Finding], run: EvaluationRun) -> None:
    for key in run.evaluated:
        state.pop(key, None)
    for finding in run.findings:
        assert finding.key in run.evaluated
        state[finding.key] = finding


def _loaded(
    plan_spec: PlanSpec, seen: Sequence[ReadingFact], around: Sequence[ReadingFact]
) -> list[ReadingFact]:
    """What the app loads: readings of the types the batch's rules read, within the
    lookback of those rules around the batch."""
    touched = {r.type for r in around}
    types = history_types(plan_spec, LIBRARY, touched)
    reach = lookback(plan_spec, LIBRARY, touched)
    start = min(r.time for r in around) - reach
    end = max(r.time for r in around) + reach
    return [r for r in seen if r.type in types and start <= r.time <= end]


def _one_shot(
    plan_spec: PlanSpec, readings: Sequence[ReadingFact]
) -> dict[tuple[str, str], Finding]:
    run = evaluate_run(
        plan_spec, readings, new_reading_ids={r.id for r in readings}, now=START, library=LIBRARY
    )
    return {f.key: f for f in run.findings}


@settings(max_examples=80, deadline=None)
@given(history=_history(), plan_index=st.integers(0, len(PLANS) - 1))
def test_batches_in_any_order_equal_one_shot(
    history: tuple[list[ReadingFact], list[int], list[int], set[str]], plan_index: int
) -> None:
    readings, assignment, order, removed = history
    plan_spec = PLANS[plan_index]
    state: dict[tuple[str, str], Finding] = {}
    seen: list[ReadingFact] = []
    for batch_index in order:
        batch = [r for r, b in zip(readings, assignment, strict=True) if b == batch_index]
        if not batch:
            continue
        seen += batch
        loaded = _loaded(plan_spec, seen, batch)
        run = evaluate_run(
            plan_spec, loaded, new_reading_ids={r.id for r in batch}, now=START, library=LIBRARY
        )
        _same_with_recorded(run, set(state), plan_spec, seen, batch, ())
        _apply(state, run)
        # evaluate() gives exactly the run's findings at the new readings.
        new = evaluate(
            plan_spec, loaded, new_reading_ids={r.id for r in batch}, now=START, library=LIBRARY
        )
        assert new == [f for f in run.findings if f.anchor_reading_id in {r.id for r in batch}]
    assert state == _one_shot(plan_spec, readings)

    # Entered in error: the removed readings are re-evaluated away, with their neighbours.
    if removed:
        gone = [r for r in readings if r.id in removed]
        kept = [r for r in readings if r.id not in removed]
        run = evaluate_run(
            plan_spec,
            _loaded(plan_spec, kept, gone),
            new_reading_ids=(),
            now=START,
            library=LIBRARY,
            removed=gone,
        )
        _same_with_recorded(run, set(state), plan_spec, kept, [], gone)
        _apply(state, run)
        assert state == _one_shot(plan_spec, kept)


def _as_app(
    plan_spec: PlanSpec,
    seen: Sequence[ReadingFact],
    batch: Sequence[ReadingFact],
    removed: Sequence[ReadingFact],
    fired_before: set[tuple[str, str]],
) -> EvaluationRun:
    """What the app evaluates: the narrow span loaded first; if the run read beyond it (an
    old anchor checked against a rule that reads further back, an old firing not recorded),
    the span it read loaded and the evaluation run again, which then reads nothing beyond."""

    def recorded(keys: Collection[tuple[str, str]]) -> set[tuple[str, str]]:
        return {k for k in keys if k in fired_before}

    touched = [*batch, *removed]
    span = narrow_span(plan_spec, LIBRARY, touched)
    assert span is not None
    types = history_types(plan_spec, LIBRARY, {r.type for r in touched})
    new_ids = {r.id for r in batch}
    for _ in range(2):
        loaded = [r for r in seen if r.type in types and span[0] <= r.time <= span[1]]
        run = evaluate_run(
            plan_spec, loaded, new_reading_ids=new_ids, now=START, library=LIBRARY,
            removed=removed, recorded=recorded,
        )  # fmt: skip
        if run.needed is None or (span[0] <= run.needed[0] and run.needed[1] <= span[1]):
            return run
        span = (min(span[0], run.needed[0]), max(span[1], run.needed[1]))
    raise AssertionError(f"the second pass read beyond what the first said: {run.needed}")


def _same_with_recorded(
    run: EvaluationRun,
    fired_before: set[tuple[str, str]],
    plan_spec: PlanSpec,
    seen: Sequence[ReadingFact],
    batch: Sequence[ReadingFact],
    removed: Sequence[ReadingFact],
) -> None:
    """Told what fired before, the run checks those keys without finding them again: the
    same keys fire, and every other finding is the one the full run made; and what the app
    runs on its narrow load (or, when that read beyond it, on the lookback) is the same."""
    lazy = evaluate_run(
        plan_spec,
        _loaded(plan_spec, seen, [*batch, *removed]),
        new_reading_ids={r.id for r in batch},
        now=START,
        library=LIBRARY,
        removed=removed,
        recorded=lambda keys: {k for k in keys if k in fired_before},
    )
    assert _as_app(plan_spec, seen, batch, removed, fired_before) == lazy
    # Nothing recorded (a new plan version): the old firings are explained again, and the
    # narrow load does not hold their windows; the app sees that and loads the lookback.
    fresh = _as_app(plan_spec, seen, batch, removed, set())
    assert (fresh.findings, fresh.evaluated) == (run.findings, run.evaluated)
    full = {f.key: f for f in run.findings}
    assert lazy.evaluated == run.evaluated
    assert lazy.still_firing <= fired_before
    assert {f.key for f in lazy.findings} | lazy.still_firing == set(full)
    assert {f.key: f for f in lazy.findings} == {
        k: f for k, f in full.items() if k not in lazy.still_firing
    }
    assert lazy.retracted(fired_before) == run.retracted(fired_before)
    # What the app still looks up to retract (all but the settled keys) finds every retraction.
    assert not lazy.unfired_before & fired_before
    settled = lazy.still_firing | lazy.unfired_before
    looked_up = {f.key for f in lazy.findings} | (lazy.evaluated - settled)
    assert run.retracted(fired_before) <= looked_up


def test_a_late_low_reading_retracts_the_mean() -> None:
    """The example of the brief: a late low reading pulls a 7-day mean under 135."""
    p = plan("bp-home-mean-high")
    week = [
        bp("136", "80", at=local(day, clock), reading_id=f"d{day}{clock}")
        for day in range(7)
        for clock in ("07:00", "07:02", "21:00")
    ]
    first = evaluate_run(p, week, new_reading_ids={r.id for r in week}, now=START, library=LIBRARY)
    last = week[-1].id
    assert ("bp-home-mean-high", last) in {f.key for f in first.findings}
    late = bp("100", "70", at=local(3, "12:00"), reading_id="late")
    again = evaluate_run(p, [*week, late], new_reading_ids={"late"}, now=START, library=LIBRARY)
    assert ("bp-home-mean-high", last) in again.evaluated
    assert ("bp-home-mean-high", last) not in {f.key for f in again.findings}
    assert ("bp-home-mean-high", last) in again.retracted(f.key for f in first.findings)


# --- time-based rules: late data re-evaluates the day anchors after it ---------------------

DUE_PLAN = PlanSpec.model_validate(
    {
        "version": 1,
        "rules": [
            {"rule": "missing-readings"},
            {"rule": "cgm-tir-low", "params": {"window_days": 7}},
            {"rule": "cgm-tbr-high", "params": {"window_days": 7}},
        ],
        "schedule": [
            {"type": "weight", "times": ["07:30"], "days": "daily"},
            {"type": "blood_pressure", "times": ["08:00"], "days": "weekdays"},
        ],
    }
)
DUE_NOW = local(20, "12:00")


@st.composite
def _due_history(draw: st.DrawFn) -> tuple[list[list[ReadingFact]], list[int]]:
    """Blocks of readings (a weight, a BP, a CGM day every 15 min) and the batch order."""
    blocks: list[list[ReadingFact]] = []
    for index in range(draw(st.integers(1, 12))):
        day = draw(st.integers(0, 19))
        kind = draw(st.sampled_from(["weight", "bp", "cgm"]))
        at = local(day, "00:00") + timedelta(minutes=draw(st.sampled_from([0, 1, 30, 450, 1439])))
        if kind == "weight":
            blocks.append([reading("weight", "80", at=at, reading_id=f"w{index}")])
        elif kind == "bp":
            blocks.append([bp("120", "80", at=at, reading_id=f"b{index}")])
        else:
            value = draw(st.sampled_from(["3.5", "6.0", "12.0"]))
            share = draw(st.integers(0, 96))  # how many of the day's samples are `value`
            start = local(day, "00:00")
            blocks.append(
                [
                    reading(
                        "cgm_glucose",
                        value if i < share else "6.0",
                        at=start + timedelta(minutes=15 * i),
                        reading_id=f"c{index}-{i}",
                    )
                    for i in range(96)
                ]
            )
    order = draw(st.permutations(range(len(blocks))))
    return blocks, list(order)


@settings(max_examples=25, deadline=None)
@given(history=_due_history())
def test_due_batches_in_any_order_equal_one_shot(
    history: tuple[list[list[ReadingFact]], list[int]],
) -> None:
    from rules.engine import evaluate_due_run

    blocks, order = history
    state: dict[tuple[str, str], Finding] = {}
    seen: list[ReadingFact] = []
    for index in order:
        batch = blocks[index]
        if {r.id for r in batch} & {r.id for r in seen}:
            continue  # the same day drawn twice: a duplicate upload
        seen += batch
        # The app re-evaluates the day anchors after the earliest new reading.
        since = min(r.time for r in batch)
        _apply(state, evaluate_due_run(DUE_PLAN, seen, now=DUE_NOW, library=LIBRARY, since=since))
    everything = evaluate_due_run(
        DUE_PLAN, seen, now=DUE_NOW, library=LIBRARY, since=START - timedelta(days=1)
    )
    expected = {f.key: f for f in everything.findings if f.anchor_time > min(r.time for r in seen)}
    assert {k: v for k, v in state.items() if v.anchor_time > min(r.time for r in seen)} == expected


def test_a_recorded_firing_still_speaks_for_the_rule_it_supersedes() -> None:
    """A late weight makes weight-gain-hf fire at an anchor where hf-weight-gain-week fired
    before: told that firing is recorded, the run checks it without a finding, and the new
    weight-gain-hf finding is still spoken for (no advice, no flag of its own)."""
    p = plan("hf-weight-gain-week", "weight-gain-hf")
    week = [reading("weight", "80.0", "kg", at=local(d), reading_id=f"w{d}") for d in range(3)]
    anchor = reading("weight", "83.0", "kg", at=local(8), reading_id="a")
    first = evaluate_run(p, [*week, anchor], new_reading_ids={"a"}, now=START, library=LIBRARY)
    assert {f.key for f in first.findings} == {("hf-weight-gain-week", "a")}
    late = reading("weight", "80.5", "kg", at=local(7), reading_id="late")
    readings = [*week, late, anchor]
    full = evaluate_run(p, readings, new_reading_ids={"late"}, now=START, library=LIBRARY)
    lazy = evaluate_run(
        p,
        readings,
        new_reading_ids={"late"},
        now=START,
        library=LIBRARY,
        recorded=lambda keys: {k for k in keys if k in {f.key for f in first.findings}},
    )
    assert lazy.still_firing == {("hf-weight-gain-week", "a")}
    (gain,) = lazy.findings
    assert gain.key == ("weight-gain-hf", "a")
    assert gain.superseded_by == "hf-weight-gain-week"
    assert gain.advice is None and gain.flag_severity is None
    assert gain == next(f for f in full.findings if f.key == gain.key)


def test_late_readings_in_range_that_end_an_episode_re_evaluate_the_low_after_them() -> None:
    """A reading in range changes no count of lows, but a quarter of an hour of them ends a
    CGM low's advice episode: the low after them, evaluated before they came, is evaluated
    again and starts an episode of its own, as if they had come in time."""
    p = plan("glucose-low")
    at = local(2, "03:00")
    lows = [
        reading("cgm_glucose", "3.5", at=at + timedelta(minutes=m), reading_id=f"low{m:02d}")
        for m in (0, 5, 30)
    ]
    in_range = [
        reading("cgm_glucose", "6.2", at=at + timedelta(minutes=m), reading_id=f"ok{m:02d}")
        for m in (10, 15, 20, 25)
    ]
    state: dict[tuple[str, str], Finding] = {}
    seen: list[ReadingFact] = []
    for batch in (lows, in_range):
        seen += batch
        run = evaluate_run(
            p,
            _loaded(p, seen, batch),
            new_reading_ids={r.id for r in batch},
            now=START,
            library=LIBRARY,
        )
        _apply(state, run)
    one_shot = _one_shot(p, [*lows, *in_range])
    assert state == one_shot
    episode = one_shot[("glucose-low", "low30")].episode
    assert episode is not None and episode["start"] == lows[2].time.isoformat()


def test_an_old_low_not_recorded_is_explained_on_a_second_load_not_the_narrow_one() -> None:
    """After a new plan version nothing is recorded under it: a reading in range two hours
    before a low makes the app evaluate that low again, and its week of occurrences lies
    beyond the narrow load. The run says it read beyond it, and the app's second pass on
    what it read counts the low three days earlier: two lows in a week, flagged."""
    p = plan("glucose-low")
    first = reading("cgm_glucose", "3.4", at=local(1, "06:00"), reading_id="low-mon")
    second = reading("cgm_glucose", "3.5", at=local(4, "06:00"), reading_id="low-thu")
    late = reading("cgm_glucose", "6.1", at=local(4, "04:00"), reading_id="ok-thu")
    seen = [first, second, late]
    span = narrow_span(p, LIBRARY, [late])
    assert span is not None and span[0] > first.time  # the narrow load leaves Monday out
    narrow = evaluate_run(
        p, [r for r in seen if span[0] <= r.time <= span[1]], new_reading_ids={late.id},
        now=START, library=LIBRARY, recorded=lambda keys: set(),
    )  # fmt: skip
    assert narrow.needed is not None and narrow.needed[0] < span[0]  # it says so
    run = _as_app(p, seen, [late], [], set())
    (finding,) = [f for f in run.findings if f.anchor_reading_id == second.id]
    assert finding.flag_severity == "low"
    assert finding.computed["count_in_window"] == "2"


def test_a_cgm_reading_in_range_loads_hours_and_an_old_finger_prick_its_day_on_demand() -> None:
    """Gunilla's glucose rules: a CGM reading in range reaches the anchors of the two hours
    after it (sustained high) and what its own evaluation reads, so the narrow load starts
    two hours before it, not the day a finger-prick rule reads back. A finger prick an hour
    after it, recorded as firing glucose-high (two over 15 within 24 hours), is checked
    again: that reads the day before it, the run says so, and the app's second pass on
    what it read finds it still firing (on the narrow load alone it would be retracted)."""
    p = plan("glucose-high", "glucose-sustained-high", "glucose-low")
    monday = reading("glucose", "16.0", at=local(1, "10:00"), reading_id="high-mon")
    tuesday = reading("glucose", "17.0", at=local(2, "05:00"), reading_id="high-tue")
    late = reading("cgm_glucose", "6.1", at=local(2, "04:00"), reading_id="cgm-tue")
    span = narrow_span(p, LIBRARY, [late])
    assert span is not None and span[0] == late.time - timedelta(hours=2)
    key = ("glucose-high", tuesday.id)
    narrow = evaluate_run(
        p, [tuesday, late], new_reading_ids={late.id}, now=START, library=LIBRARY,
        recorded=lambda keys: {k for k in keys if k == key},
    )  # fmt: skip
    assert key not in narrow.still_firing
    assert narrow.needed is not None and narrow.needed[0] < span[0]  # it says so
    run = _as_app(p, [monday, tuesday, late], [late], [], {key})
    assert key in run.still_firing and key not in run.retracted({key})


def test_a_batch_with_a_low_loads_what_the_week_s_earliest_old_low_reads_at_once() -> None:
    """A new low reaches back a week to the lows it counts with, and each old low it reaches
    is evaluated against every rule anchored there. Its own firing is recorded (only
    checked), but the sustained-high window never fired there and is evaluated afresh,
    reading two hours before it: for an old low just inside the week, before the week. The
    narrow load holds that too, so the app evaluates the batch once, not once more on a
    wider load (issue 17 §1: a CGM batch with a low in it was evaluated twice)."""
    p = plan("glucose-high", "glucose-sustained-high", "glucose-low")
    new_low = reading("cgm_glucose", "3.5", at=local(8, "06:00"), reading_id="low-new")
    old_low = reading(
        "cgm_glucose", "3.4", at=new_low.time - timedelta(days=7, minutes=-30), reading_id="low-old"
    )
    before = [
        reading("cgm_glucose", "8.0", at=old_low.time - timedelta(minutes=m), reading_id=f"b{m}")
        for m in (20, 60, 100)
    ]
    seen = [*before, old_low, new_low]
    fired = {("glucose-low", old_low.id)}
    span = narrow_span(p, LIBRARY, [new_low])
    assert span is not None and span[0] <= before[-1].time
    run = evaluate_run(
        p, [r for r in seen if span[0] <= r.time <= span[1]], new_reading_ids={new_low.id},
        now=START, library=LIBRARY, recorded=lambda keys: {k for k in keys if k in fired},
    )  # fmt: skip
    assert run.needed is not None and span[0] <= run.needed[0]  # read nothing beyond: once
    assert ("glucose-sustained-high", old_low.id) in run.evaluated  # the old low was evaluated
    assert run.findings == _as_app(p, seen, [new_low], [], fired).findings
