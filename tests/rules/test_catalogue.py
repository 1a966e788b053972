"""The measurement catalogue of CLINICAL.md §1: units, conversions, plausible ranges."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules.catalogue import (
    CATALOGUE,
    GLUCOSE_MG_DL_PER_MMOL_L,
    MeasurementType,
    UnknownType,
    UnknownUnit,
    convert,
    decimal_text,
    display_unit,
    json_number,
    json_value,
    plausible_range,
    same_unit,
    spec_for,
    to_canonical,
)


def test_every_type_has_a_spec() -> None:
    assert set(CATALOGUE) == set(MeasurementType)
    for type_, spec in CATALOGUE.items():
        assert spec.type is type_
        assert spec.canonical_unit in spec.units
        assert set(spec.plausible) == set(spec.components)
        for low, high in spec.plausible.values():
            assert low < high


@pytest.mark.parametrize(
    ("type_name", "unit", "loinc", "components"),
    [
        ("blood_pressure", "mm[Hg]", "85354-9", ("systolic", "diastolic")),
        ("pulse", "/min", "8867-4", ("value",)),
        ("glucose", "mmol/L", "14743-9", ("value",)),
        ("cgm_glucose", "mmol/L", "105272-9", ("value",)),
        ("weight", "kg", "29463-7", ("value",)),
        ("spo2", "%", "2708-6", ("value",)),
        ("temperature", "Cel", "8310-5", ("value",)),
        ("respiratory_rate", "/min", "9279-1", ("value",)),
        ("steps", "{steps}", "55423-8", ("value",)),
        ("peak_flow", "L/min", "19935-6", ("value",)),
        ("symptom_score", "{score}", "", ("value",)),
        ("ketones", "mmol/L", "53060-9", ("value",)),
    ],
)
def test_catalogue_rows(type_name: str, unit: str, loinc: str, components: tuple[str, ...]) -> None:
    spec = spec_for(type_name)
    assert spec is not None
    assert (spec.canonical_unit, spec.loinc, spec.components) == (unit, loinc, components)
    assert spec.interval is (type_name == "steps")


def test_bp_components_have_their_codes() -> None:
    spec = CATALOGUE[MeasurementType.blood_pressure]
    assert spec.component_loinc == {"systolic": "8480-6", "diastolic": "8462-4"}
    assert CATALOGUE[MeasurementType.glucose].unit_loinc["mg/dL"] == "41653-7"
    assert CATALOGUE[MeasurementType.cgm_glucose].unit_loinc["mg/dL"] == "99504-3"


def test_unknown_type() -> None:
    assert spec_for("blood-pressure") is None
    with pytest.raises(UnknownType):
        to_canonical("blood-pressure", Decimal(1), "mm[Hg]")


@pytest.mark.parametrize(
    ("type_name", "value", "unit", "canonical"),
    [
        ("glucose", "126", "mg/dL", "6.993939"),  # ÷ 18.0156, not 18.0 (7.0)
        ("glucose", "18.0156", "mg/dL", "1"),
        ("glucose", "70", "mg/dl", "3.885521"),
        ("glucose", "5.55", "mmol<180.15588000005408>/L", "5.55"),
        ("cgm_glucose", "180", "mg/dL", "9.991341"),
        ("weight", "1800", "g", "1.8"),
        ("weight", "200", "[lb_av]", "90.718474"),
        ("weight", "1", "[lb_av]", "0.453592"),
        ("temperature", "100.4", "[degF]", "38"),
        ("temperature", "98.6", "[degF]", "37"),
        ("temperature", "32", "[degF]", "0"),
        ("spo2", "0.97", "1", "97"),
        ("spo2", "0.955", "1", "95.5"),
        ("pulse", "72", "bpm", "72"),
        ("pulse", "72", "{beats}/min", "72"),
        ("blood_pressure", "142", "mmHg", "142"),
        ("steps", "8042", "{steps}", "8042"),
    ],
)
def test_to_canonical(type_name: str, value: str, unit: str, canonical: str) -> None:
    assert decimal_text(to_canonical(type_name, Decimal(value), unit)) == canonical


def test_canonical_values_are_returned_untouched() -> None:
    exact = Decimal("5.5500000000001")
    assert to_canonical("glucose", exact, "mmol/L") is exact
    assert to_canonical("blood_pressure", Decimal("142.0"), "mmHg") == Decimal("142.0")


def test_glucose_factor_is_never_18() -> None:
    assert Decimal("18.0156") == GLUCOSE_MG_DL_PER_MMOL_L
    assert to_canonical("glucose", Decimal(180), "mg/dL") != Decimal(10)


@pytest.mark.parametrize(
    ("type_name", "value", "from_unit", "to_unit", "expected"),
    [
        ("glucose", "3.9", "mmol/L", "mg/dL", "70.26084"),
        ("glucose", "70", "mg/dL", "mg/dL", "70"),
        ("glucose", "70", "mg/dL", "mg/dl", "70"),
        ("temperature", "38.0", "Cel", "[degF]", "100.4"),
        ("weight", "90.718474", "kg", "[lb_av]", "200"),
        ("weight", "2", "[lb_av]", "g", "907.18474"),
        ("spo2", "88", "%", "1", "0.88"),
        ("blood_pressure", "120", "mmHg", "mm[Hg]", "120"),
    ],
)
def test_convert(type_name: str, value: str, from_unit: str, to_unit: str, expected: str) -> None:
    assert decimal_text(convert(type_name, Decimal(value), from_unit, to_unit)) == expected


@pytest.mark.parametrize(
    ("type_name", "unit"),
    [
        ("glucose", "mmol"),
        ("glucose", "kg"),
        ("weight", "lb"),
        ("weight", "lbs"),
        ("temperature", "C"),
        ("temperature", "°C"),
        ("spo2", "fraction"),
        ("blood_pressure", "mmhg"),
        ("steps", "count"),
    ],
)
def test_unknown_units(type_name: str, unit: str) -> None:
    with pytest.raises(UnknownUnit):
        to_canonical(type_name, Decimal(1), unit)
    with pytest.raises(UnknownUnit):
        convert(type_name, Decimal(1), unit, CATALOGUE[MeasurementType(type_name)].canonical_unit)


def test_non_finite_and_huge_values_are_refused() -> None:
    for value in (Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity")):
        with pytest.raises(ValueError):
            to_canonical("weight", value, "g")
        with pytest.raises(ValueError):
            convert("weight", value, "kg", "g")
    with pytest.raises(ValueError):
        to_canonical("weight", Decimal("1e70"), "g")


def test_same_unit() -> None:
    assert same_unit("blood_pressure", "mmHg", "mm[Hg]")
    assert same_unit("glucose", "mg/dl", "mg/dL")
    assert same_unit("glucose", "mmol<180.15588000005408>/L", "mmol/L")
    assert not same_unit("glucose", "mg/dL", "mmol/L")
    assert not same_unit("glucose", "mg/dL", "furlong")
    assert same_unit("glucose", "furlong", "furlong")


@pytest.mark.parametrize(
    ("type_name", "component", "low", "high"),
    [
        ("blood_pressure", "systolic", "40", "300"),
        ("blood_pressure", "diastolic", "20", "200"),
        ("pulse", "value", "20", "300"),
        ("glucose", "value", "0.5", "50"),
        ("cgm_glucose", "value", "1.0", "40"),
        ("weight", "value", "0.3", "500"),
        ("spo2", "value", "50", "100"),
        ("temperature", "value", "25", "45"),
        ("respiratory_rate", "value", "2", "80"),
        ("steps", "value", "0", "100000"),
        ("peak_flow", "value", "30", "1000"),
        ("ketones", "value", "0", "10"),
    ],
)
def test_plausible_ranges(type_name: str, component: str, low: str, high: str) -> None:
    assert plausible_range(type_name, component) == (Decimal(low), Decimal(high))


@pytest.mark.parametrize(
    ("interval", "high"),
    [
        (timedelta(hours=1), "100000"),
        (timedelta(days=1), "100000"),
        (timedelta(days=2), "200000"),
        (timedelta(hours=36), "150000"),
    ],
)
def test_steps_limit_scales_with_the_interval(interval: timedelta, high: str) -> None:
    assert plausible_range("steps", "value", interval=interval) == (Decimal(0), Decimal(high))


@pytest.mark.parametrize(
    ("instrument", "bounds"),
    [
        ("CAT", ("0", "40")),
        ("cat", ("0", "40")),
        ("breathlessness", ("0", "10")),
        ("mMRC", ("0", "4")),
        ("ESAS", ("0", "10")),
        ("PHQ-9", None),
        (None, None),
        (5, None),
    ],
)
def test_symptom_score_ranges_follow_the_instrument(
    instrument: object, bounds: tuple[str, str] | None
) -> None:
    expected = None if bounds is None else (Decimal(bounds[0]), Decimal(bounds[1]))
    context = {} if instrument is None else {"instrument": instrument}
    assert plausible_range("symptom_score", "value", context=context) == expected


@pytest.mark.parametrize(
    ("unit", "shown"),
    [("mm[Hg]", "mmHg"), ("Cel", "°C"), ("[degF]", "°F"), ("mmol/L", "mmol/L"), ("1", "")],
)
def test_display_unit(unit: str, shown: str) -> None:
    assert display_unit(unit) == shown


@given(
    st.decimals(
        min_value=Decimal("-100000"), max_value=Decimal("100000"), places=6, allow_nan=False
    ).map(lambda d: d.normalize() if d == d.to_integral_value() else d)
)
def test_a_stored_decimal_is_a_json_number_with_the_same_value(value: Decimal) -> None:
    text = json.dumps(json_number(str(value)))
    assert json.loads(text, parse_float=Decimal) == value


@pytest.mark.parametrize(
    ("stored", "expected"),
    [("7.1", "7.1"), ("96.0", "96.0"), ("8042", "8042"), ("0.000001", "1e-06"),
     ("37.25", "37.25"), ("1E+2", "100"), ("5.550000", "5.55")],
)  # fmt: skip
def test_numbers_print_without_float_noise(stored: str, expected: str) -> None:
    assert json.dumps(json_number(stored)) == expected


def test_nan_is_refused() -> None:
    with pytest.raises(ValueError):
        json_number("NaN")


def test_a_bool_is_not_a_number() -> None:
    with pytest.raises(ValueError):
        json_number(True)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("7.493506", 7.493506),
     ({"systolic": "142", "diastolic": "91.0"}, {"systolic": 142, "diastolic": 91.0}),
     (81.25, 81.25), (None, None), ("2026-11-20T07:31:00+00:00", "2026-11-20T07:31:00+00:00"),
     (Decimal("37.05"), 37.05), ("", "")],
)  # fmt: skip
def test_a_measured_value_answers_as_numbers_whatever_was_stored(value: Any, expected: Any) -> None:
    shown = json_value(value)
    assert shown == expected
    assert json.dumps(shown) == json.dumps(expected)


@given(
    st.one_of(
        st.decimals(allow_nan=False, allow_infinity=False, places=None).map(decimal_text),
        st.from_regex(r"-?0*[0-9]{1,15}(\.[0-9]{1,9}0*)?", fullmatch=True),
        st.sampled_from(["9" * 200, "1" * 70 + ".5", "-0", "-0.0"]),
    )
)
def test_decimal_text_answers_as_the_number_json_number_makes_of_it(text: str) -> None:
    shown, expected = json_value(text), json_number(text)
    assert type(shown) is type(expected) and shown == expected
    assert json.dumps(shown) == json.dumps(expected)
    assert json_value({"systolic": text}) == {"systolic": expected}


@given(st.decimals(allow_nan=False, allow_infinity=False, places=None))
def test_decimal_text_is_plain_text_without_exponent(value: Decimal) -> None:
    """Any finite value is written as format "f" writes it: no exponent, digits as given."""
    text = decimal_text(value)
    assert text == format(value, "f") and "E" not in text and Decimal(text) == value
    assert decimal_text(value.scaleb(9)) == format(value.scaleb(9), "f")  # 1E+9 style too
    assert decimal_text(value.scaleb(-9)) == format(value.scaleb(-9), "f")  # 1E-9 style too
