"""The sample readings keep the precision they were measured with."""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from app.seed import csv_to_wire
from sync.normalise import normalise_reading

SAMPLES = Path(__file__).resolve().parents[2] / "sample_data" / "readings"
NOW = datetime(2026, 12, 6, 12, tzinfo=UTC)


def _normalised(handle: str, type_: str) -> list[dict[str, Decimal]]:
    with (SAMPLES / f"{handle}.csv").open(newline="") as handle_file:
        rows = [r for r in csv.DictReader(handle_file) if r["type"] == type_]
    items = [csv_to_wire(r, date(2026, 12, 5), ZoneInfo("Europe/Stockholm")) for r in rows]
    return [normalise_reading(i, now=NOW).values for i in items if i is not None]  # type: ignore[union-attr]


def test_whole_numbers_stay_whole_and_tenths_stay_tenths() -> None:
    pressures = _normalised("allan", "blood_pressure")
    assert pressures
    for values in pressures:  # a cuff measures whole mm Hg: "149/95", never "149,0/95,0"
        assert all(
            v == v.to_integral_value() and v.as_tuple().exponent == 0 for v in values.values()
        )
    steps = _normalised("allan", "steps")
    assert steps and all(v["value"].as_tuple().exponent == 0 for v in steps)
    weights = _normalised("asta", "weight")  # the scale shows tenths: 71.0 stays 71,0
    assert weights and all(v["value"].as_tuple().exponent == -1 for v in weights)
