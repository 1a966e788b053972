"""normalise_reading: every error code, every conversion, the plausibility edges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from sync.normalise import ItemError, NormalisedReading, normalise_reading
from tests.sync.factories import BASE, DROP, NOW, raw


def ok(item: Any) -> NormalisedReading:
    result = normalise_reading(item, now=NOW)
    assert isinstance(result, NormalisedReading), result
    return result


def errors(item: Any) -> list[tuple[str, str]]:
    result = normalise_reading(item, now=NOW)
    assert isinstance(result, list), result
    assert all(isinstance(e, ItemError) and e.message for e in result)
    return [(e.loc, e.code) for e in result]


@pytest.mark.parametrize("type_name", sorted(BASE))
def test_every_type_has_a_valid_example(type_name: str) -> None:
    reading = ok(raw(type_name))
    assert reading.type == type_name


def test_a_reading_is_normalised() -> None:
    reading = ok(raw())
    assert reading.client_id == "6f1c0a5e-2b1d-4c8e-9a77-1f0e2d3c4b5a"
    assert reading.time == datetime(2026, 11, 20, 6, 31, tzinfo=UTC)
    assert reading.time.tzinfo is UTC
    assert reading.utc_offset_minutes == 60
    assert reading.end_time is None
    assert reading.values == {"systolic": 142, "diastolic": 91}
    assert reading.unit == "mm[Hg]" and reading.loinc == "85354-9"
    assert reading.context == {}
    assert len(reading.fingerprint) == 64


@pytest.mark.parametrize(
    ("type_name", "value", "unit", "canonical_unit", "canonical"),
    [
        ("glucose", 126, "mg/dL", "mmol/L", "6.993939"),
        ("glucose", 5.5, "mmol<180.15588000005408>/L", "mmol/L", "5.5"),
        ("cgm_glucose", 180, "mg/dL", "mmol/L", "9.991341"),
        ("weight", 1800, "g", "kg", "1.8"),
        ("weight", 200, "[lb_av]", "kg", "90.718474"),
        ("temperature", 100.4, "[degF]", "Cel", "38"),
        ("spo2", 0.97, "1", "%", "97"),
        ("pulse", 72, "bpm", "/min", "72"),
        ("pulse", 72, "{beats}/min", "/min", "72"),
        ("temperature", Decimal("37.25"), "Cel", "Cel", "37.25"),
        ("weight", 82.4, "kg", "kg", "82.4"),  # a float keeps its shortest text
    ],
)
def test_conversions_keep_the_original(
    type_name: str, value: Any, unit: str, canonical_unit: str, canonical: str
) -> None:
    reading = ok(raw(type_name, value=value, unit=unit))
    assert reading.unit == canonical_unit
    assert reading.values == {"value": Decimal(canonical)}
    assert reading.original_values == {"value": Decimal(str(value))}
    assert reading.original_unit == unit


def test_bp_synonym_unit() -> None:
    reading = ok(raw(unit="mmHg"))
    assert (reading.unit, reading.original_unit) == ("mm[Hg]", "mmHg")


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        # not an object at all
        ([], [("", "invalid")]),
        ("reading", [("", "invalid")]),
        (None, [("", "invalid")]),
        (raw(patient_id="someone-else"), [("patient_id", "invalid")]),
        # client_id
        (raw(client_id=DROP), [("client_id", "invalid")]),
        (raw(client_id=""), [("client_id", "invalid")]),
        (raw(client_id="x" * 129), [("client_id", "invalid")]),
        (raw(client_id=17), [("client_id", "invalid")]),
        (raw(client_id="a\nb"), [("client_id", "invalid")]),
        # type
        (raw(type=DROP), [("type", "invalid")]),
        (raw(type=3), [("type", "invalid")]),
        (raw(type="blood-pressure"), [("type", "unknown_type")]),
        (raw(type="heart_sound"), [("type", "unknown_type")]),
        # unit
        (raw(unit=DROP), [("unit", "invalid")]),
        (raw(unit=None), [("unit", "invalid")]),
        (raw(unit=1), [("unit", "invalid")]),
        (raw(unit="mmhg"), [("unit", "unknown_unit")]),
        (raw(unit="kg"), [("unit", "unknown_unit")]),
        (raw("glucose", unit="mmol"), [("unit", "unknown_unit")]),
        (raw("weight", unit="lbs"), [("unit", "unknown_unit")]),
        (raw("temperature", unit="°C"), [("unit", "unknown_unit")]),
        # numbers
        (raw("weight", value=float("nan")), [("value", "invalid")]),
        (raw("weight", value=float("inf")), [("value", "invalid")]),
        (raw("weight", value=float("-inf")), [("value", "invalid")]),
        (raw("weight", value=float("1e400")), [("value", "invalid")]),
        (raw("weight", value=Decimal("1e400")), [("value", "invalid")]),
        (raw("weight", value=Decimal("NaN")), [("value", "invalid")]),
        (raw("weight", value=Decimal("sNaN")), [("value", "invalid")]),
        (raw("weight", value=Decimal("-Infinity")), [("value", "invalid")]),
        (raw("weight", value=10**400), [("value", "invalid")]),
        (raw("weight", value=1e15), [("value", "invalid")]),
        (raw("weight", value="82.4"), [("value", "invalid")]),
        (raw("weight", value=True), [("value", "invalid")]),
        (raw("weight", value=None), [("value", "invalid")]),
        (raw("weight", value=DROP), [("value", "invalid")]),
        (raw("weight", value=[82.4]), [("value", "invalid")]),
        (raw("weight", value={"value": 82.4}), [("value", "invalid")]),
        # blood pressure components
        (raw(value=142), [("value", "invalid")]),
        (raw(value={"systolic": 142}), [("value.diastolic", "invalid")]),
        (raw(value={"systolic": "142", "diastolic": 91}), [("value.systolic", "invalid")]),
        (raw(value={"systolic": 142, "diastolic": False}), [("value.diastolic", "invalid")]),
        (
            raw(value={"systolic": 142, "diastolic": 91, "mean": 108}),
            [("value.mean", "invalid")],
        ),
        (raw(value={"systolic": 301, "diastolic": 91}), [("value.systolic", "implausible")]),
        (raw(value={"systolic": 39, "diastolic": 20}), [("value.systolic", "implausible")]),
        (raw(value={"systolic": 142, "diastolic": 19}), [("value.diastolic", "implausible")]),
        (raw(value={"systolic": 142, "diastolic": 201}), [("value.diastolic", "implausible")]),
        (raw(value={"systolic": 91, "diastolic": 91}), [("value.diastolic", "implausible")]),
        (raw(value={"systolic": 90, "diastolic": 120}), [("value.diastolic", "implausible")]),
        # time
        (raw(time=DROP), [("time", "invalid")]),
        (raw(time="2026-11-20T07:31:00"), [("time", "missing_offset")]),
        (raw(time="2026-11-20 07:31"), [("time", "missing_offset")]),
        (raw(time="2026-11-20"), [("time", "invalid")]),
        (raw(time=1763620260), [("time", "invalid")]),
        (raw(time=1763620260000), [("time", "invalid")]),
        (raw(time="yesterday"), [("time", "invalid")]),
        (raw(time="2026-13-01T00:00:00Z"), [("time", "invalid")]),
        (raw(time="2026-11-20T07:31:00+19:00"), [("time", "invalid")]),
        (raw(time="1899-12-31T23:59:00+00:00"), [("time", "invalid")]),
        (raw(time="1900-01-01T00:00:00Z"), [("time", "invalid")]),
        (raw(time="0001-01-01T00:00:00Z"), [("time", "invalid")]),
        (raw(time="2026-11-20T12:10:01Z"), [("time", "future_time")]),
        (raw(time="2027-01-01T00:00:00+01:00"), [("time", "future_time")]),
        # end_time
        (raw(end_time="2026-11-20T07:32:00+01:00"), [("end_time", "invalid")]),
        (raw("steps", end_time=DROP), [("end_time", "invalid")]),
        (raw("steps", end_time="2026-11-19T00:00:00+01:00"), [("end_time", "invalid")]),
        (raw("steps", end_time="2026-11-18T00:00:00+01:00"), [("end_time", "invalid")]),
        (raw("steps", end_time="2026-11-20T00:00:00"), [("end_time", "missing_offset")]),
        (raw("steps", end_time="2026-12-21T00:00:00+01:00"), [("end_time", "invalid")]),
        # context
        (raw(context=[1, 2]), [("context", "invalid")]),
        (raw(context="sitting"), [("context", "invalid")]),
        (raw(context={"arm": {"side": "left"}}), [("context.arm", "invalid")]),
        (raw(context={"tags": ["a"]}), [("context.tags", "invalid")]),
        (raw(context={"note": "x" * 501}), [("context.note", "invalid")]),
        (raw(context={"dose": float("nan")}), [("context.dose", "invalid")]),
        (raw(context={f"k{i}": i for i in range(33)}), [("context", "invalid")]),
        (raw(context={f"k{i}": "x" * 200 for i in range(30)}), [("context", "invalid")]),
        (raw(context={"k" * 65: 1}), [("context", "invalid")]),
        # symptom scores need a known instrument
        (raw("symptom_score", context=DROP), [("context.instrument", "invalid")]),
        (
            raw("symptom_score", context={"instrument": "PHQ-9"}),
            [("context.instrument", "invalid")],
        ),
        (raw("symptom_score", value=41), [("value", "implausible")]),
        (
            raw("symptom_score", value=11, context={"instrument": "breathlessness"}),
            [("value", "implausible")],
        ),
        (raw("symptom_score", value=5, context={"instrument": "mMRC"}), [("value", "implausible")]),
        (raw("symptom_score", value=-1), [("value", "implausible")]),
    ],
)
def test_rejections(item: Any, expected: list[tuple[str, str]]) -> None:
    assert errors(item) == expected


def test_every_problem_is_reported_together() -> None:
    item = raw(
        client_id=DROP,
        unit="mmhg",
        time="2026-11-20T07:31:00",
        value={"systolic": True, "diastolic": 91},
        context=[],
        extra=1,
    )
    assert sorted(errors(item)) == sorted(
        [
            ("extra", "invalid"),
            ("client_id", "invalid"),
            ("time", "missing_offset"),
            ("context", "invalid"),
            ("unit", "unknown_unit"),
            ("value.systolic", "invalid"),
        ]
    )


def test_client_id_of_128_characters_is_fine() -> None:
    assert ok(raw(client_id="x" * 128)).client_id == "x" * 128


@pytest.mark.parametrize(
    ("time", "accepted"),
    [
        ("2026-11-20T12:10:00Z", True),  # exactly 10 minutes ahead
        ("2026-11-20T13:09:59+01:00", True),
        ("2026-11-20T12:10:00.000001Z", False),
        ("2026-11-20T12:10:01Z", False),
        ("1901-01-01T00:00:00Z", True),
    ],
)
def test_future_tolerance(time: str, accepted: bool) -> None:
    result = normalise_reading(raw(time=time), now=NOW)
    assert isinstance(result, NormalisedReading) is accepted


@pytest.mark.parametrize(
    ("time", "utc", "offset"),
    [
        ("2026-11-20T07:31:00Z", datetime(2026, 11, 20, 7, 31, tzinfo=UTC), 0),
        ("2026-11-20T07:31:00+00:00", datetime(2026, 11, 20, 7, 31, tzinfo=UTC), 0),
        ("2026-07-20T07:31:00+02:00", datetime(2026, 7, 20, 5, 31, tzinfo=UTC), 120),
        ("2026-11-20T05:31:00-05:30", datetime(2026, 11, 20, 11, 1, tzinfo=UTC), -330),
        ("2026-11-20T07:31:00.250+01:00", datetime(2026, 11, 20, 6, 31, 0, 250000, UTC), 60),
    ],
)
def test_times_are_stored_in_utc_with_their_offset(time: str, utc: datetime, offset: int) -> None:
    reading = ok(raw(time=time))
    assert reading.time == utc and reading.time.utcoffset() == timedelta(0)
    assert reading.utc_offset_minutes == offset


PLAUSIBILITY = [
    # (type, unit, lowest accepted, highest accepted, just below, just above)
    ("pulse", "/min", 20, 300, 19, 301),
    ("glucose", "mmol/L", 0.5, 50, 0.4, 50.1),
    ("glucose", "mg/dL", 9.01, 900.78, 9, 901),
    ("cgm_glucose", "mmol/L", 1.0, 40, 0.9, 40.1),
    ("cgm_glucose", "mg/dL", 19, 720, 18, 721),
    ("weight", "kg", 0.3, 500, 0.29, 500.1),
    ("weight", "g", 300, 500000, 299, 500001),
    ("weight", "[lb_av]", 0.67, 1102, 0.66, 1103),
    ("spo2", "%", 50, 100, 49, 101),
    ("spo2", "1", 0.5, 1, 0.49, 1.01),
    ("temperature", "Cel", 25, 45, 24.9, 45.1),
    ("temperature", "[degF]", 77, 113, 76.9, 113.1),
    ("respiratory_rate", "/min", 2, 80, 1, 81),
    ("peak_flow", "L/min", 30, 1000, 29, 1001),
    ("steps", "{steps}", 0, 100000, -1, 100001),
    ("symptom_score", "{score}", 0, 40, -1, 41),
    ("ketones", "mmol/L", 0, 10, -0.1, 10.1),
]


@pytest.mark.parametrize(
    ("type_name", "unit", "low", "high", "below", "above"),
    PLAUSIBILITY,
    ids=[f"{row[0]}-{row[1]}" for row in PLAUSIBILITY],
)
def test_plausibility_edges(
    type_name: str, unit: str, low: float, high: float, below: float, above: float
) -> None:
    ok(raw(type_name, value=low, unit=unit))
    ok(raw(type_name, value=high, unit=unit))
    assert errors(raw(type_name, value=below, unit=unit)) == [("value", "implausible")]
    assert errors(raw(type_name, value=above, unit=unit)) == [("value", "implausible")]


def test_bp_edges() -> None:
    ok(raw(value={"systolic": 300, "diastolic": 200}))
    ok(raw(value={"systolic": 40, "diastolic": 20}))
    ok(raw(value={"systolic": 40, "diastolic": 39}))


@pytest.mark.parametrize(
    ("end_time", "value", "accepted"),
    [
        ("2026-11-20T00:00:00+01:00", 100000, True),
        ("2026-11-20T00:00:00+01:00", 100001, False),
        ("2026-11-19T01:00:00+01:00", 100000, True),  # one hour: still one day's worth
        ("2026-11-21T00:00:00+01:00", 200000, True),  # two days, partly in the future
        ("2026-11-21T00:00:00+01:00", 200001, False),
        ("2026-12-20T00:00:00+01:00", 3100000, True),  # 31 days: the longest interval
    ],
)
def test_steps_limit_scales_with_interval(end_time: str, value: int, accepted: bool) -> None:
    result = normalise_reading(raw("steps", end_time=end_time, value=value), now=NOW)
    assert isinstance(result, NormalisedReading) is accepted


def test_steps_interval_is_kept_in_utc() -> None:
    reading = ok(raw("steps"))
    assert reading.time == datetime(2026, 11, 18, 23, tzinfo=UTC)
    assert reading.end_time == datetime(2026, 11, 19, 23, tzinfo=UTC)


def test_context_is_kept_and_numbers_are_plain() -> None:
    context = {
        "position": "sitting",
        "arm": "left",
        "irregular": False,
        "note": None,
        "dose": Decimal("2.5"),
        "count": Decimal("3"),
    }
    reading = ok(raw(context=context))
    assert reading.context == {**context, "dose": 2.5, "count": 3}


def test_symptom_instrument_takes_the_catalogue_spelling() -> None:
    reading = ok(raw("symptom_score", value=40, context={"instrument": "cat"}))
    assert reading.context == {"instrument": "CAT"}
    assert reading.values == {"value": 40}


@pytest.mark.parametrize(
    ("side", "accepted"), [("below", True), ("above", True), ("under", False), (True, False)]
)
def test_a_censored_value_says_which_side_of_its_limit(side: Any, accepted: bool) -> None:
    item = raw("cgm_glucose", value=40, unit="mg/dL", context={"censored": side})
    result = normalise_reading(item, now=NOW)
    if accepted:
        assert isinstance(result, NormalisedReading) and result.context == {"censored": side}
    else:
        assert not isinstance(result, NormalisedReading)
        assert [(e.loc, e.code) for e in result] == [("context.censored", "invalid")]


def test_fingerprint_tells_a_retry_from_a_conflict() -> None:
    first = ok(raw())
    assert ok(raw()).fingerprint == first.fingerprint
    # numerically equal values and another client_id are the same content
    same = raw(value={"systolic": 142.0, "diastolic": Decimal("91.00")}, client_id="other")
    assert ok(same).fingerprint == first.fingerprint
    assert (
        ok(raw(context={"a": 1, "b": 2})).fingerprint
        == ok(raw(context={"b": 2, "a": 1})).fingerprint
    )
    different = [
        raw(value={"systolic": 143, "diastolic": 91}),
        raw(unit="mmHg"),
        raw(time="2026-11-20T07:32:00+01:00"),
        raw(time="2026-11-20T06:31:00Z"),  # the same instant, another offset
        raw(context={"arm": "left"}),
        raw("pulse", value=142),
    ]
    prints = {ok(item).fingerprint for item in different}
    assert first.fingerprint not in prints and len(prints) == len(different)


def test_to_fact() -> None:
    reading = ok(raw("glucose", value=126, unit="mg/dL", context={"meal": "fasting"}))
    fact = reading.to_fact("r-1")
    assert (fact.id, fact.type, fact.time, fact.unit) == ("r-1", "glucose", reading.time, "mmol/L")
    assert fact.values == {"value": Decimal("6.993939")}
    assert fact.original_values == {"value": Decimal(126)} and fact.original_unit == "mg/dL"
    assert fact.context == {"meal": "fasting"} and fact.end_time is None


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError):
        normalise_reading(raw(), now=datetime(2026, 11, 20, 12, 0))


def test_loinc_follows_the_unit_measured() -> None:
    """CLINICAL §1: glucose 14743-9 in mmol/L, 41653-7 in mg/dL; CGM 105272-9 / 99504-3."""
    cases = [
        ("glucose", "mmol/L", 6.0, "14743-9"),
        ("glucose", "mg/dL", 108, "41653-7"),
        ("cgm_glucose", "mmol/L", 6.0, "105272-9"),
        ("cgm_glucose", "mg/dL", 108, "99504-3"),
        ("weight", "[lb_av]", 170, "29463-7"),
    ]
    for type_, unit, value, loinc in cases:
        reading = normalise_reading(raw(type=type_, unit=unit, value=value), now=NOW)
        assert isinstance(reading, NormalisedReading), reading
        assert reading.loinc == loinc, (type_, unit)
