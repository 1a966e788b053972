"""Re-evaluation with indexes finds exactly what a scan of each window finds (hypothesis).

The evaluator answers each anchor's window from indexes built once per evaluation
(``rules.ranges`` and the series, firings and episode streams of ``rules.engine``). Here
every such index is replaced by the plain scan the module docstring describes, written
out below: chain the firings of the anchor's ±window slice, walk back from the anchor,
take ``min()`` / ``sum()`` / the median of the window's values, look back through a
composite part's readings. For random streams (CGM lows and highs with gaps, finger
pricks, blood pressure, weights, a wearable, scores) a delete or a late reading must give
the same findings, to the last digit, either way; and the same as a fresh evaluation of
every reading, restricted to the anchors re-evaluated.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st

from rules.catalogue import same_unit
from rules.engine import EvaluationRun, evaluate_run
from rules.engine.comparison import value_in
from rules.engine.episodes import EpisodeStream, canonical_value
from rules.engine.history import Column, Component, InUnit, Series
from rules.engine.occurrences import Firings
from rules.facts import ReadingFact
from rules.language import ResolvedParam, load_library
from rules.plan import PlanSpec
from rules.ranges import LatestTrue
from tests.rules.factories import bp, local, plan, reading

LIBRARY = load_library()
START = local(0, "00:00")
READING_RULES = [rule.id for rule in LIBRARY.rules if not rule.time_based]
PLANS = [
    plan(*READING_RULES),
    plan(
        *READING_RULES,
        params={
            # Lows that fire without being in the episode; short recoveries and gaps.
            "glucose-low": {
                "threshold": Decimal("4.5"),
                "episode_end": Decimal(5),
                "episode_gap": Decimal(10),
            },
            "glucose-sustained-high": {"window_hours": Decimal(1), "min_readings": Decimal(3)},
            "bp-home-mean-high": {
                "window_days": Decimal(3),
                "min_readings": Decimal(3),
                "discard_first_days": Decimal(2),
            },
            "copd-deterioration": {
                "baseline_days": Decimal(7),
                "gap_days": Decimal(0),
                "min_readings": Decimal(3),
            },
            "hf-weight-gain-week": {"min_readings": Decimal(1)},
            "glucose-high": {"window_hours": Decimal(12)},
        },
    ),
]


# --- the plain scans, as the docstring of rules.engine describes them ----------


def _values_in(
    readings: Sequence[ReadingFact], component: str, param: ResolvedParam
) -> tuple[list[Decimal], Decimal, str] | None:
    """The original values when all share the first one's published unit, else converted."""
    if not readings or param.unit is None or isinstance(param.value, bool):
        return None
    first = readings[0]
    published = param.published_in(first.type, first.original_unit)
    if published is not None and all(
        component in r.original_values and same_unit(r.type, r.original_unit, first.original_unit)
        for r in readings
    ):
        return [r.original_values[component] for r in readings], published, first.original_unit
    values: list[Decimal] = []
    for r in readings:
        single = value_in(r, component, replace(param, equivalents={}))
        if single is None:
            return None
        values.append(single[0])
    return values, param.number_in(first.type, param.unit), param.unit


def _in_unit(
    self: Component, first: ReadingFact, low: int, high: int, param: ResolvedParam
) -> InUnit | None:
    rows = self.rows[low:high]
    starts_window = low < high and first is self.rows[low]  # an aggregate's own first row
    found = _values_in(rows if starts_window else [first, *rows], self.name, param)
    if found is None:
        return None
    values, threshold, unit = found
    column: list[Decimal | None] = [None] * len(self.rows)
    column[low:high] = values if starts_window else values[1:]
    return Column(column, self.history), threshold, unit, values[0]


def _median(self: Column, low: int, high: int) -> Decimal:
    ordered = sorted(v for v in self.values[low:high] if v is not None)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def _after_days(self: Series, low: int, high: int, days: int) -> int:
    dates = [self.history.local_date(r) for r in self.readings[low:high]]
    dropped = set(sorted(set(dates))[:days])
    return next((low + i for i, d in enumerate(dates) if d not in dropped), high)


def _best_span(
    self: Firings, anchor: ReadingFact, window: timedelta
) -> tuple[int, list[ReadingFact]]:
    firing = [r for r in self.readings if abs(r.time - anchor.time) <= window]
    occurrences: list[list[ReadingFact]] = []
    for r in firing:
        if occurrences and r.time - occurrences[-1][-1].time <= self.gap:
            occurrences[-1].append(r)
        else:
            occurrences.append([r])
    starts = [o[0].time for o in occurrences]
    own = next(i for i, o in enumerate(occurrences) if anchor in o)
    best = [own]
    for first in range(own + 1):
        if starts[first] < starts[own] - window:
            continue
        members = [i for i in range(first, len(starts)) if starts[i] <= starts[first] + window]
        if len(members) > len(best):
            best = members
    return len(best), [occurrences[i][0] for i in best]


def _walk_stop(self: EpisodeStream, position: int, lowest: int) -> int:
    later, recovery = self.times[position], None
    for j in range(position - 1, lowest - 1, -1):
        if later - self.times[j] > self.max_gap:
            return j
        later = self.times[j]
        if self.holds[j]:
            recovery = None
        else:
            recovery = recovery or self.times[j]
            if recovery - self.times[j] >= self.end_after:
                return j
    return lowest - 1


def _members(stream: EpisodeStream, start: int, position: int) -> list[int]:
    return [position, *(j for j in range(position - 1, start - 1, -1) if stream.holds[j])]


def _latest(self: LatestTrue, start: int, end: int) -> int | None:
    return next((i for i in range(end - 1, start - 1, -1) if self._holds(i)), None)


@contextlib.contextmanager
def plain_scans() -> Iterator[None]:
    """Evaluate with every index replaced by a scan of the window it answers for."""
    patches = {
        (Component, "in_unit"): _in_unit,
        (Column, "lowest"): lambda self, lo, hi: min(self.values[lo:hi]),
        (Column, "highest"): lambda self, lo, hi: max(self.values[lo:hi]),
        (Column, "total"): lambda self, lo, hi: sum(self.values[lo:hi], Decimal(0)),
        (Column, "median"): _median,
        (Series, "after_days"): _after_days,
        (Firings, "best_span"): _best_span,
        (EpisodeStream, "walk_stop"): _walk_stop,
        (EpisodeStream, "first_member"): lambda self, start, position: min(
            _members(self, start, position)
        ),
        (EpisodeStream, "member_fires"): lambda self, start, position: any(
            self.fires[j] for j in _members(self, start, position)[1:]
        ),
        (EpisodeStream, "nadir"): lambda self, start, position: min(
            (self.readings[j] for j in _members(self, start, position)),
            key=lambda r: (canonical_value(r), r.time),
        ),
        (LatestTrue, "latest"): _latest,
    }
    with contextlib.ExitStack() as stack:
        for (owner, name), scan in patches.items():
            stack.enter_context(mock.patch.object(owner, name, scan))
        yield


# --- random streams ----------------------------------------------------------------------


@st.composite
def _cgm(draw: st.DrawFn, index: int) -> list[ReadingFact]:
    """A run of CGM readings 0–90 minutes apart: a random walk through lows and highs."""
    at = START + timedelta(minutes=draw(st.integers(0, 8 * 24 * 60)))
    level = draw(st.integers(20, 160))  # tenths of mmol/L
    run = []
    for i in range(draw(st.integers(1, 40))):
        at += timedelta(minutes=draw(st.sampled_from([0, 1, 5, 5, 5, 15, 16, 45, 90])))
        level = max(15, min(250, level + draw(st.integers(-12, 12)) * draw(st.integers(0, 1))))
        rid = f"c{index}-{i:02d}"
        if draw(st.booleans()):
            run.append(reading("cgm_glucose", str(Decimal(level) / 10), at=at, reading_id=rid))
        else:
            mg = str(round(level * Decimal("1.80156")))
            run.append(reading("cgm_glucose", mg, "mg/dL", at=at, reading_id=rid))
    return run


@st.composite
def _single(draw: st.DrawFn, index: int) -> ReadingFact:
    at = START + timedelta(minutes=draw(st.integers(0, 9 * 24 * 60)) // 30 * 30)
    rid = f"r{index:02d}"
    kind = draw(st.sampled_from(["glucose", "bp", "weight", "spo2", "pulse", "score"]))
    if kind == "glucose":
        value = draw(st.sampled_from(["2.9", "3.5", "3.9", "14.0", "15.1", "16", "7.0"]))
        return reading("glucose", value, at=at, reading_id=rid)
    if kind == "bp":
        systolic = draw(st.integers(110, 170))
        diastolic = draw(st.integers(65, 100))
        unit = draw(st.sampled_from(["mm[Hg]", "mmHg"]))
        return bp(str(systolic), str(diastolic), unit, at=at, reading_id=rid)
    if kind == "weight":
        if draw(st.booleans()):
            value = str(Decimal(draw(st.integers(780, 830))) / 10)
            return reading("weight", value, "kg", at=at, reading_id=rid)
        value = str(Decimal(draw(st.integers(1720, 1830))) / 10)
        return reading("weight", value, "[lb_av]", at=at, reading_id=rid)
    if kind == "spo2":
        return reading("spo2", str(draw(st.integers(86, 98))), at=at, reading_id=rid)
    if kind == "pulse":
        return reading("pulse", str(draw(st.integers(60, 125))), at=at, reading_id=rid)
    instrument = draw(st.sampled_from(["CAT", "breathlessness"]))
    return reading(
        "symptom_score",
        str(draw(st.integers(0, 20 if instrument == "CAT" else 8))),
        "{score}",
        at=at,
        reading_id=rid,
        context={"instrument": instrument},
    )


@st.composite
def _stream(draw: st.DrawFn) -> list[ReadingFact]:
    readings = [r for i in range(draw(st.integers(0, 4))) for r in draw(_cgm(i))]
    readings += [draw(_single(i)) for i in range(draw(st.integers(0, 40)))]
    return readings if readings else [draw(_single(0))]


def _same(a: EvaluationRun, b: EvaluationRun) -> None:
    assert a.evaluated == b.evaluated
    assert a.findings == b.findings
    assert [f.readings for f in a.findings] == [f.readings for f in b.findings]


@settings(max_examples=40, deadline=None)
@given(readings=_stream(), plan_index=st.integers(0, len(PLANS) - 1), data=st.data())
def test_a_delete_finds_what_plain_scans_and_a_fresh_evaluation_find(
    readings: list[ReadingFact], plan_index: int, data: st.DataObject
) -> None:
    plan_spec: PlanSpec = PLANS[plan_index]
    removed = data.draw(
        st.lists(st.sampled_from(readings), min_size=1, max_size=3, unique_by=lambda r: r.id)
    )
    kept = [r for r in readings if r not in removed]
    run = evaluate_run(
        plan_spec, kept, new_reading_ids=(), now=START, library=LIBRARY, removed=removed
    )
    with plain_scans():
        plain = evaluate_run(
            plan_spec, kept, new_reading_ids=(), now=START, library=LIBRARY, removed=removed
        )
    _same(run, plain)
    fresh = evaluate_run(
        plan_spec, kept, new_reading_ids={r.id for r in kept}, now=START, library=LIBRARY
    )
    assert run.findings == tuple(f for f in fresh.findings if f.key in run.evaluated)


@settings(max_examples=25, deadline=None)
@given(readings=_stream(), plan_index=st.integers(0, len(PLANS) - 1), data=st.data())
def test_late_readings_find_what_plain_scans_find(
    readings: list[ReadingFact], plan_index: int, data: st.DataObject
) -> None:
    plan_spec: PlanSpec = PLANS[plan_index]
    late = data.draw(
        st.lists(st.sampled_from(readings), min_size=1, max_size=5, unique_by=lambda r: r.id)
    )
    ids = {r.id for r in late}
    run = evaluate_run(plan_spec, readings, new_reading_ids=ids, now=START, library=LIBRARY)
    with plain_scans():
        plain = evaluate_run(plan_spec, readings, new_reading_ids=ids, now=START, library=LIBRARY)
    _same(run, plain)
