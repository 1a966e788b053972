"""Typed factories for submitted readings in the sync tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

BASE: dict[str, dict[str, Any]] = {
    "blood_pressure": {"value": {"systolic": 142, "diastolic": 91}, "unit": "mm[Hg]"},
    "pulse": {"value": 72, "unit": "/min"},
    "glucose": {"value": 6.2, "unit": "mmol/L"},
    "cgm_glucose": {"value": 6.2, "unit": "mmol/L"},
    "weight": {"value": 82.4, "unit": "kg"},
    "spo2": {"value": 96, "unit": "%"},
    "temperature": {"value": 37.2, "unit": "Cel"},
    "respiratory_rate": {"value": 16, "unit": "/min"},
    "steps": {
        "value": 8042,
        "unit": "{steps}",
        "time": "2026-11-19T00:00:00+01:00",
        "end_time": "2026-11-20T00:00:00+01:00",
    },
    "peak_flow": {"value": 420, "unit": "L/min"},
    "symptom_score": {"value": 12, "unit": "{score}", "context": {"instrument": "CAT"}},
    "ketones": {"value": 0.4, "unit": "mmol/L"},
}


DROP = object()
"""Pass as a field's value to remove the field."""


def raw(type_name: str = "blood_pressure", **changes: Any) -> dict[str, Any]:
    """Return a valid submitted reading of a type, with some fields changed or removed."""
    item: dict[str, Any] = {
        "client_id": "6f1c0a5e-2b1d-4c8e-9a77-1f0e2d3c4b5a",
        "type": type_name,
        "time": "2026-11-20T07:31:00+01:00",
        **BASE[type_name],
    }
    for key, value in changes.items():
        if value is DROP:
            item.pop(key, None)
        else:
            item[key] = value
    return item
