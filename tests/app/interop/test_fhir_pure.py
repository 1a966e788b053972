"""The FHIR builders' pure parts: exact numbers, birth dates, identifiers."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.interop import fhir


@given(
    st.decimals(
        min_value=Decimal("-100000"), max_value=Decimal("100000"), places=6, allow_nan=False
    ).map(lambda d: d.normalize() if d == d.to_integral_value() else d)
)
def test_a_stored_decimal_is_a_json_number_with_the_same_value(value: Decimal) -> None:
    text = json.dumps(fhir.number(str(value)))
    assert json.loads(text, parse_float=Decimal) == value


@pytest.mark.parametrize(
    ("stored", "expected"),
    [("7.1", "7.1"), ("96.0", "96.0"), ("8042", "8042"), ("0.000001", "1e-06"),
     ("37.25", "37.25"), ("1E+2", "100"), ("5.550000", "5.55")],
)  # fmt: skip
def test_numbers_print_without_float_noise(stored: str, expected: str) -> None:
    assert json.dumps(fhir.number(stored)) == expected


def test_nan_is_refused() -> None:
    with pytest.raises(ValueError):
        fhir.number("NaN")


@pytest.mark.parametrize(
    ("pnr", "born"),
    [("197701172392", date(1977, 1, 17)), ("194107862389", date(1941, 7, 26)),
     ("19771317239", None), ("197713172392", None)],
)  # fmt: skip
def test_birth_date_of_personnummer_and_samordningsnummer(pnr: str, born: date | None) -> None:
    assert fhir.birth_date_of(pnr) == born
