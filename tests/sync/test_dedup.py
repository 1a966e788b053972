"""Cross-source dedup: same type, within 60 s, equal at the type's precision."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from rules.facts import ReadingFact
from sync.dedup import DEDUP_WINDOW, find_same_measurement, same_measurement
from sync.normalise import NormalisedReading, normalise_reading
from tests.rules.factories import T0, bp, reading
from tests.sync.factories import NOW, raw


def fact(
    type_name: str, value: str, unit: str | None = None, seconds: float = 0, **kw: Any
) -> ReadingFact:
    kw.setdefault("at", T0 + timedelta(seconds=seconds))
    return reading(type_name, value, unit, **kw)


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        (bp("142", "91"), bp("142", "91", at=T0 + DEDUP_WINDOW), True),
        (bp("142", "91"), bp("142", "91", at=T0 - DEDUP_WINDOW), True),
        (bp("142", "91"), bp("142", "91", at=T0 + timedelta(seconds=61)), False),
        (bp("142", "91"), bp("142", "92"), False),
        (bp("142", "91"), bp("142", "91", "mmHg"), True),
        (bp("142", "91"), bp("142.4", "90.6"), True),
        (bp("142", "91"), bp("142.5", "91"), True),  # half-even: 142.5 → 142
        (bp("142", "91"), bp("143.5", "91"), False),  # 143.5 → 144
        # glucose at one decimal: 126 mg/dL is 6.99 mmol/L
        (fact("glucose", "126", "mg/dL"), fact("glucose", "7.0", seconds=1), True),
        (fact("glucose", "6.94"), fact("glucose", "7.0"), False),
        (fact("glucose", "6.85"), fact("glucose", "6.8"), True),
        (fact("glucose", "6.85"), fact("glucose", "6.9"), False),
        (fact("glucose", "6.95"), fact("glucose", "7.0"), True),
        (fact("glucose", "5.0"), fact("cgm_glucose", "5.0"), False),
        (fact("weight", "82.44"), fact("weight", "82.4"), True),
        (fact("weight", "180", "[lb_av]"), fact("weight", "81.6"), True),  # 81.646627
        (fact("spo2", "0.97", "1"), fact("spo2", "97"), True),
        (fact("temperature", "98.6", "[degF]"), fact("temperature", "37.0"), True),
        (fact("pulse", "72"), fact("pulse", "73"), False),
    ],
)
def test_same_measurement(a: ReadingFact, b: ReadingFact, same: bool) -> None:
    assert same_measurement(a, b) is same
    assert same_measurement(b, a) is same


def test_intervals_must_match_at_both_ends() -> None:
    day = timedelta(days=1)
    a = fact("steps", "8042", end_time=T0 + day)
    assert same_measurement(a, fact("steps", "8042", seconds=30, end_time=T0 + day))
    assert not same_measurement(a, fact("steps", "8042", end_time=T0 + day / 2))
    assert not same_measurement(a, fact("steps", "8042"))


def test_normalised_and_stored_readings_compare() -> None:
    incoming = normalise_reading(raw("glucose", value=126, unit="mg/dL"), now=NOW)
    assert isinstance(incoming, NormalisedReading)
    stored = incoming.to_fact("r-1")
    assert same_measurement(incoming, stored)
    other_source = fact("glucose", "7.0", at=incoming.time + timedelta(seconds=1))
    assert same_measurement(incoming, other_source)
    assert not same_measurement(incoming, fact("glucose", "7.1", at=incoming.time))


def test_find_same_measurement_picks_the_closest() -> None:
    new = bp("142", "91")
    far = bp("142", "91", at=T0 - timedelta(seconds=50), reading_id="far")
    near = bp("142", "91", at=T0 + timedelta(seconds=2), reading_id="near")
    tie = bp("142", "91", at=T0 - timedelta(seconds=2), reading_id="tie")
    other = bp("150", "91", at=T0, reading_id="other")
    assert find_same_measurement(new, [far, other, near, tie]) is near
    assert find_same_measurement(new, [other]) is None
    assert find_same_measurement(new, []) is None
