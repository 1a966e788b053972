"""The facts the clinical core reasons about: readings in canonical units."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any

import orjson

from rules.catalogue import CENSORED, decimal_text


@dataclass(frozen=True, slots=True)
class ReadingFact:
    """One accepted reading, as the rule engine sees it.

    ``values`` holds the canonical value per component (``"value"`` for scalar types,
    ``"systolic"``/``"diastolic"`` for blood pressure). ``original_values`` and
    ``original_unit`` keep what the device sent, because published thresholds are compared
    in the unit they are published in (70 mg/dL is not exactly 3.9 mmol/L).

    Slots, no instance dict: the fact cache keeps ~20,000 facts between syncs, and each
    dict was one more object for every full collection of the garbage collector to walk.
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
    # Kept with the fact once made (see listed_json and local_date): no field of the reading,
    # never compared, copied by replace() or shown.
    _written: orjson.Fragment | None = field(default=None, init=False, repr=False, compare=False)
    _local: tuple[tzinfo, date] | None = field(default=None, init=False, repr=False, compare=False)

    def local_date(self, tz: tzinfo) -> date:
        """Return the reading's local date in a zone.

        The answer for the last zone asked is kept with the fact: every evaluation asks a
        patient's readings in the patient's zone (ten thousand in a dense week, each sync),
        and the fact cache keeps facts between syncs. Kept as a tuple of two objects the
        garbage collector does not track, so it soon stops walking it too.
        """
        kept = self._local
        if kept is not None and kept[0] is tz:
            return kept[1]
        day = self.time.astimezone(tz).date()
        object.__setattr__(self, "_local", (tz, day))  # frozen: set as __init__ sets fields
        return day

    @property
    def listed(self) -> dict[str, Any]:
        """Return the reading as a finding's explanation lists it (JSON-ready, its numbers as
        decimal text), made anew: kept, its dicts would be walked by every full collection of
        the garbage collector (the fact cache keeps facts between syncs; see listed_json)."""
        data: dict[str, Any] = {
            "id": self.id,
            "type": self.type,
            "time": self.time.isoformat(),
            "values": {name: decimal_text(v) for name, v in self.values.items()},
            "unit": self.unit,
            "original": {
                "values": {name: decimal_text(v) for name, v in self.original_values.items()},
                "unit": self.original_unit,
            },
        }
        if self.end_time is not None:
            data["end_time"] = self.end_time.isoformat()
        if self.context.get(CENSORED) is not None:
            data[CENSORED] = self.context[CENSORED]  # the true value lies beyond it
        return data

    @property
    def listed_json(self) -> orjson.Fragment:
        """Return :attr:`listed` as JSON text, made once and kept with the fact, for orjson to
        copy into a stored explanation.

        A dense week's explanations list ~9,000 readings, each in up to 30 explanations:
        building them was a tenth of such a sync, and writing their JSON most of the time of
        storing one. The text is one object the garbage collector does not track.
        """
        written = self._written
        if written is None:
            written = orjson.Fragment(orjson.dumps(self.listed))
            object.__setattr__(self, "_written", written)
        return written


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
"""The finest part of a reading's time: times and durations in whole microseconds are exact."""


def micros_of(moment: datetime) -> int:
    """Return an aware time as whole microseconds since the epoch (exact: times have no finer
    part), the key numpy and pandas search and group times by."""
    return (moment - _EPOCH) // MICROSECOND


__all__ = ["MICROSECOND", "ReadingFact", "micros_of"]
