"""Invariants of the evaluator (hypothesis)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from rules.engine import Finding, evaluate, evaluate_run
from rules.facts import ReadingFact
from rules.language import load_library
from rules.plan import PlanSpec
from tests.rules.factories import T0, plan, reading

LIBRARY = load_library()


def _tenths(low: int, high: int) -> st.SearchStrategy[str]:
    return st.integers(low, high).map(lambda n: str(Decimal(n) / 10))


def _hundredths(low: int, high: int) -> st.SearchStrategy[str]:
    return st.integers(low, high).map(lambda n: str(Decimal(n) / 100))


def _whole(low: int, high: int) -> st.SearchStrategy[str]:
    return st.integers(low, high).map(str)


# (type, unit, value strategy) with values around every threshold of the library.
_KINDS = [
    ("glucose", "mmol/L", _tenths(20, 60)),
    ("glucose", "mg/dL", _whole(40, 100)),
    ("cgm_glucose", "mmol/L", _tenths(20, 60)),
    ("cgm_glucose", "mg/dL", _whole(40, 100)),
    ("spo2", "%", _whole(80, 100)),
    ("spo2", "1", _hundredths(80, 100)),
    ("pulse", "/min", _whole(30, 130)),
    ("temperature", "Cel", _tenths(365, 405)),
    ("temperature", "[degF]", _tenths(975, 1045)),
]


@st.composite
def _reading(draw: st.DrawFn, index: int) -> ReadingFact:
    at = T0 + timedelta(minutes=draw(st.integers(0, 20 * 24 * 60)))
    if draw(st.booleans()):
        systolic = draw(st.integers(80, 200))
        diastolic = draw(st.integers(50, min(systolic - 1, 120)))
        return reading(
            "blood_pressure", (str(systolic), str(diastolic)), at=at, reading_id=f"r{index}"
        )
    type_name, unit, values = draw(st.sampled_from(_KINDS))
    return reading(type_name, draw(values), unit, at=at, reading_id=f"r{index}")


@st.composite
def _batch(draw: st.DrawFn) -> tuple[list[ReadingFact], list[int]]:
    """Readings, each with the upload (0 = history, 1.. = a sync call) it arrives in."""
    n = draw(st.integers(1, 30))
    readings = [draw(_reading(i)) for i in range(n)]
    uploads = draw(st.lists(st.integers(0, 4), min_size=n, max_size=n))
    return readings, uploads


_PLANS = st.sampled_from(
    [
        plan(),
        plan(params={"spo2-low": {"target_low": Decimal(88)}}),
        plan(
            params={"temperature-fever": {"high_risk": True}},
            modes={"glucose-very-low": "monitor", "bp-low": "off"},
        ),
    ]
)


def _key(f: Finding) -> tuple[str, str | None, str | None, str | None, str]:
    return (f.rule_id, f.anchor_reading_id, f.flag_severity, f.superseded_by, f.mode)


@settings(max_examples=150, deadline=None)
@given(batch=_batch(), plan_spec=_PLANS, data=st.data())
def test_order_and_chunking_do_not_change_findings(
    batch: tuple[list[ReadingFact], list[int]], plan_spec: PlanSpec, data: st.DataObject
) -> None:
    readings, uploads = batch
    new_ids = {r.id for r, u in zip(readings, uploads, strict=True) if u > 0}
    all_at_once = evaluate(plan_spec, readings, new_reading_ids=new_ids, now=T0, library=LIBRARY)

    # The order of the readings given changes nothing, not even the order of findings.
    shuffled = data.draw(st.permutations(readings))
    assert evaluate(plan_spec, shuffled, new_reading_ids=new_ids, now=T0, library=LIBRARY) == (
        all_at_once
    )

    # Uploads in separate calls, each seeing what arrived so far: the same firings. Unless a
    # later upload brings a reading of the very instant of an earlier one: an anchor's window
    # holds its whole instant, and ``evaluate`` looks at the new anchors only (``evaluate_run``
    # looks again at the old one too: the test after this one).
    uploads_at: dict[object, set[int]] = {}
    for r, u in zip(readings, uploads, strict=True):
        uploads_at.setdefault(r.time, set()).add(u)
    if all(len(at) == 1 for at in uploads_at.values()):
        chunked: list[Finding] = []
        for upload in range(1, 5):
            seen = [r for r, u in zip(readings, uploads, strict=True) if u <= upload]
            ids = {r.id for r, u in zip(readings, uploads, strict=True) if u == upload}
            chunked += evaluate(plan_spec, seen, new_reading_ids=ids, now=T0, library=LIBRARY)
        assert {(f.rule_id, f.anchor_reading_id) for f in chunked} == {
            (f.rule_id, f.anchor_reading_id) for f in all_at_once
        }

    # Given all readings, every call yields exactly the findings of the one big call.
    per_call: list[Finding] = []
    for upload in range(1, 5):
        ids = {r.id for r, u in zip(readings, uploads, strict=True) if u == upload}
        per_call += evaluate(plan_spec, readings, new_reading_ids=ids, now=T0, library=LIBRARY)
    assert sorted(map(_key, per_call)) == sorted(map(_key, all_at_once))


def test_a_reading_of_the_same_instant_uploaded_later_re_evaluates_the_earlier_one() -> None:
    """Two pressures of one instant in two uploads: the second makes the first's window (its
    whole instant) reach the least count, so both fire, as when they come together."""
    spec = plan(
        "bp-home-mean-high",
        params={
            "bp-home-mean-high": {
                "window_days": Decimal(3),
                "discard_first_days": Decimal(0),
                "min_readings": Decimal(2),
            }
        },
    )
    first = reading("blood_pressure", ("150", "95"), at=T0, reading_id="a")
    second = reading("blood_pressure", ("152", "96"), at=T0, reading_id="b")
    together = evaluate(spec, [first, second], new_reading_ids={"a", "b"}, now=T0, library=LIBRARY)
    assert {f.anchor_reading_id for f in together} == {"a", "b"}
    alone = evaluate_run(spec, [first], new_reading_ids={"a"}, now=T0, library=LIBRARY)
    assert alone.findings == ()
    later = evaluate_run(spec, [first, second], new_reading_ids={"b"}, now=T0, library=LIBRARY)
    assert {f.anchor_reading_id for f in later.findings} == {"a", "b"}
    # ``evaluate`` looks at the new anchor only: the earlier one is the service's to redo.
    only_new = evaluate(spec, [first, second], new_reading_ids={"b"}, now=T0, library=LIBRARY)
    assert {f.anchor_reading_id for f in only_new} == {"b"}


_GLUCOSE_LOW = plan("glucose-low")


@settings(max_examples=200, deadline=None)
@given(
    mg_dl=st.integers(20, 200),
    tenths=st.integers(10, 100),
    type_name=st.sampled_from(["glucose", "cgm_glucose"]),
)
def test_glucose_low_compares_in_the_published_unit(
    mg_dl: int, tenths: int, type_name: str
) -> None:
    """Below 70 in mg/dL and below 3.9 in mmol/L, exactly: never 18.0 nor a rounded mix."""
    in_mg = reading(type_name, str(mg_dl), "mg/dL", reading_id="mg")
    in_mmol = reading(type_name, str(Decimal(tenths) / 10), "mmol/L", reading_id="mmol")
    findings = evaluate(
        _GLUCOSE_LOW, [in_mg, in_mmol], new_reading_ids={"mg", "mmol"}, now=T0, library=LIBRARY
    )
    fired = {f.anchor_reading_id for f in findings}
    assert ("mg" in fired) is (mg_dl < 70)
    assert ("mmol" in fired) is (tenths < 39)
