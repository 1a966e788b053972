"""The supported Open mHealth schemas: their versions, units and enumerated context terms."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

_POSTURES = frozenset({"sitting", "lying down", "standing", "semi-recumbent"})
_BODY_LOCATIONS = frozenset(
    {
        "left ankle", "right ankle", "left hip", "right hip", "left thigh", "right thigh",
        "left thorax", "middle left thorax", "left upper arm", "right upper arm",
        "left wrist", "right wrist",
    }
)  # fmt: skip
_ACTIVITY = frozenset({"at rest", "active", "before exercise", "after exercise", "during exercise"})
_MEAL = frozenset(
    {
        "fasting", "not fasting", "before meal", "after meal", "before breakfast",
        "after breakfast", "before lunch", "after lunch", "before dinner", "after dinner",
        "2 hours postprandial", "not related to meals", "with meal", "with food",
    }
)  # fmt: skip
_SLEEP = frozenset({"before sleeping", "during sleep", "on waking"})
_BLOOD_SPECIMENS = frozenset({"whole blood", "plasma", "serum", "capillary blood"})
OTHER_SPECIMENS = frozenset({"breath", "saliva", "sweat", "tears", "lacrimal fluid", "urine"})
INTERSTITIAL = "interstitial fluid"
_SPECIMENS = _BLOOD_SPECIMENS | OTHER_SPECIMENS | {INTERSTITIAL}
LEVEL_STATISTICS = frozenset(
    {
        "average", "maximum", "minimum", "median", "20th percentile", "80th percentile",
        "lower quartile", "upper quartile", "1st quintile", "2nd quintile", "3rd quintile",
        "4th quintile",
    }
)  # fmt: skip
OTHER_STATISTICS = frozenset(
    {"standard deviation", "variance", "sum", "count", "quartile deviation"}
)
_TEMPERATURE_LOCATIONS = frozenset(
    {
        "oral", "rectal", "vaginal", "vagina", "axillary", "otic", "wrist", "chest",
        "temporal", "finger", "forehead", "temporal artery", "toe", "tympanic",
    }
)  # fmt: skip


@dataclass(frozen=True)
class Schema:
    """How one OMH schema becomes readings of one of our types."""

    name: str
    majors: frozenset[str]
    type: str
    value_field: str  # the body field that identifies the schema
    units: Mapping[str, str]  # OMH unit -> UCUM unit of the catalogue
    context: Mapping[str, tuple[str, frozenset[str] | None]] = field(default_factory=dict)
    interval: bool = False  # the reading covers time..end_time (steps)


_COMMON = {"user_notes": ("note", None)}
SCHEMAS: tuple[Schema, ...] = (
    Schema(
        "blood-pressure",
        frozenset({"1", "2", "3", "4"}),
        "blood_pressure",
        "systolic_blood_pressure",
        {"mmHg": "mm[Hg]"},
        {
            **_COMMON,
            "position_during_measurement": ("position", _POSTURES),
            "body_posture": ("position", _POSTURES),
            "measurement_location": ("location", _BODY_LOCATIONS),
            "temporal_relationship_to_physical_activity": ("activity", _ACTIVITY),
        },
    ),
    Schema(
        "blood-glucose",
        frozenset({"1", "2", "3", "4"}),
        "glucose",
        "blood_glucose",
        {"mg/dL": "mg/dL", "mmol/L": "mmol/L"},
        {
            **_COMMON,
            "blood_specimen_type": ("specimen", _SPECIMENS),
            "specimen_source": ("specimen", _SPECIMENS),
            "temporal_relationship_to_meal": ("meal", _MEAL),
            "temporal_relationship_to_sleep": ("sleep", _SLEEP),
        },
    ),
    Schema(
        "body-weight",
        frozenset({"1", "2", "3"}),
        "weight",
        "body_weight",
        {"kg": "kg", "g": "g", "lb": "[lb_av]"},
        _COMMON,
    ),
    Schema(
        "heart-rate",
        frozenset({"1", "2"}),
        "pulse",
        "heart_rate",
        {"beats/min": "/min"},
        {
            **_COMMON,
            "temporal_relationship_to_physical_activity": ("activity", _ACTIVITY),
            "temporal_relationship_to_sleep": ("sleep", _SLEEP),
        },
    ),
    Schema(
        "oxygen-saturation",
        frozenset({"1", "2"}),
        "spo2",
        "oxygen_saturation",
        {"%": "%"},
        {
            **_COMMON,
            "system": ("system", frozenset({"peripheral capillary"})),
            "measurement_method": ("method", frozenset({"pulse oximetry"})),
            "oxygen_therapy_mode_of_administration": (
                "oxygen_therapy",
                frozenset({"nasal cannula"}),
            ),
        },
    ),
    Schema(
        "step-count",
        frozenset({"1", "2", "3"}),
        "steps",
        "step_count",
        {"steps": "{steps}"},
        {**_COMMON, "descriptive_statistic_denominator": ("statistic_per", None)},
        interval=True,
    ),
    Schema(
        "body-temperature",
        frozenset({"1", "2", "3", "4"}),
        "temperature",
        "body_temperature",
        {"C": "Cel", "F": "[degF]"},
        {
            **_COMMON,
            "measurement_location": ("location", _TEMPERATURE_LOCATIONS),
            "temporal_relationship_to_sleep": ("sleep", _SLEEP),
        },
    ),
)
BY_NAME = {schema.name: schema for schema in SCHEMAS}
SUPPORTED = {schema.name: tuple(sorted(schema.majors)) for schema in SCHEMAS}
"""The supported OMH schema names and their major versions."""


__all__ = [
    "BY_NAME",
    "INTERSTITIAL",
    "LEVEL_STATISTICS",
    "OTHER_SPECIMENS",
    "OTHER_STATISTICS",
    "SCHEMAS",
    "SUPPORTED",
    "Schema",
]
