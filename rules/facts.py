"""The facts the clinical core reasons about: readings in canonical units."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any


@dataclass(frozen=True)
class ReadingFact:
    """One accepted reading, as the rule engine sees it.

    ``values`` holds the canonical value per component (``"value"`` for scalar types,
    ``"systolic"``/``"diastolic"`` for blood pressure). ``original_values`` and
    ``original_unit`` keep what the device sent, because published thresholds are compared
    in the unit they are published in (70 mg/dL is not exactly 3.9 mmol/L).
    """

    id: str
    type: str
    time: datetime  # aware, UTC
    values: Mapping[str, Decimal]
    unit: str  # canonical unit of the type
    original_values: Mapping[str, Decimal]
    original_unit: str
    end_time: datetime | None = None  # interval readings (steps)
    context: Mapping[str, Any] = field(default_factory=dict)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
"""The finest part of a reading's time: times and durations in whole microseconds are exact."""


def micros_of(moment: datetime) -> int:
    """Return an aware time as whole microseconds since the epoch (exact: times have no finer
    part), the key numpy and pandas search and group times by."""
    return (moment - _EPOCH) // MICROSECOND


__all__ = ["MICROSECOND", "ReadingFact", "micros_of"]
