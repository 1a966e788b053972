"""The FHIR builders' pure parts: birth dates, identifiers."""

from __future__ import annotations

from datetime import date

import pytest

from app.interop import fhir


@pytest.mark.parametrize(
    ("pnr", "born"),
    [("197701172392", date(1977, 1, 17)), ("194107862389", date(1941, 7, 26)),
     ("19771317239", None), ("197713172392", None)],
)  # fmt: skip
def test_birth_date_of_personnummer_and_samordningsnummer(pnr: str, born: date | None) -> None:
    assert fhir.birth_date_of(pnr) == born
