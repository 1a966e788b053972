"""Open mHealth data points as sync wire readings.

Input: one data point ``{"header": …, "body": …}``, a bare body, or a JSON list of either.
Output: readings in the shape :func:`sync.normalise.normalise_reading` accepts, which then
go through the same ingest as any sync (same checks, dedup and rules); the catalogue's
checks (plausibility, units we accept, future times) are left to that gate.

Supported schemas (namespace ``omh``; any minor version of the major versions named):

=================  ======  ===================================================
schema             majors  type
=================  ======  ===================================================
blood-pressure     1–4     ``blood_pressure`` (mmHg → ``mm[Hg]``)
blood-glucose      1–4     ``glucose``; ``cgm_glucose`` from interstitial fluid
body-weight        1–3     ``weight`` (kg, g, lb → ``[lb_av]``)
heart-rate         1–2     ``pulse`` (beats/min → ``/min``)
oxygen-saturation  1–2     ``spo2`` (%)
step-count         1–3     ``steps`` (a number, or steps → ``{steps}`` from 3.0)
body-temperature   1–4     ``temperature`` (C → ``Cel``, F → ``[degF]``)
=================  ======  ===================================================

A bare body is recognised by its measurement field; a header's ``schema_id`` must agree.
Enumerated fields are checked against the union of the values of the supported versions.
OMH units we do not accept (K, oz, mg …) are rejected as ``unknown_unit``.

Time: ``effective_time_frame.date_time`` is the reading's time. A ``time_interval``
(start and end, or either with a duration) is ``time``/``end_time`` for steps; for the
other types, which are points in time, ``time`` is the start and the end is kept as
``context.interval_end`` (such data points are summaries, usually with a descriptive
statistic). Rejected on purpose, though some OMH versions allow them:

* no ``effective_time_frame`` (optional before blood-pressure 3, blood-glucose 3,
  body-weight 2, heart-rate 2, oxygen-saturation 2, step-count 2, body-temperature 3):
  a reading without a time cannot be placed in the patient's day or checked by a rule;
  the header's ``creation_date_time`` says when the record was made, not the measurement;
* ``date`` with ``part_of_day``: a part of a day is not a time;
* a step count with a descriptive statistic other than ``sum`` (an average or maximum per
  day is not the number of steps taken in the interval);
* a statistic that is not a level of the quantity (standard deviation, variance, count,
  sum, quartile deviation) for the point types;
* glucose measured in breath, saliva, sweat, tears or urine (not a blood glucose).

Context keys: ``position`` (body posture), ``location`` (measurement location),
``activity`` (relation to physical activity), ``meal``, ``sleep``, ``specimen``,
``statistic``, ``statistic_per`` (its denominator), ``interval_end``, ``system``,
``method``, ``oxygen_therapy``, ``oxygen_flow_l_min``, ``note`` (user notes, cut to the
context's text limit). Values are the OMH terms.

``client_id`` is ``omh:<header id>``; without a header id it is a hash of the converted
reading, so importing the same data twice answers ``duplicate``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sync.imports.result import ImportResult, Rejection, bounded_id, content_id
from sync.normalise import CONTEXT_MAX_TEXT, ItemError, ItemErrorCode

CLIENT_ID_PREFIX = "omh:"

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
_OTHER_SPECIMENS = frozenset({"breath", "saliva", "sweat", "tears", "lacrimal fluid", "urine"})
_INTERSTITIAL = "interstitial fluid"
_SPECIMENS = _BLOOD_SPECIMENS | _OTHER_SPECIMENS | {_INTERSTITIAL}
_LEVEL_STATISTICS = frozenset(
    {
        "average", "maximum", "minimum", "median", "20th percentile", "80th percentile",
        "lower quartile", "upper quartile", "1st quintile", "2nd quintile", "3rd quintile",
        "4th quintile",
    }
)  # fmt: skip
_OTHER_STATISTICS = frozenset(
    {"standard deviation", "variance", "sum", "count", "quartile deviation"}
)
_TEMPERATURE_LOCATIONS = frozenset(
    {
        "oral", "rectal", "vaginal", "vagina", "axillary", "otic", "wrist", "chest",
        "temporal", "finger", "forehead", "temporal artery", "toe", "tympanic",
    }
)  # fmt: skip
_DURATION_SECONDS = {
    "ps": Decimal("1e-12"),
    "ns": Decimal("1e-9"),
    "us": Decimal("1e-6"),
    "ms": Decimal("1e-3"),
    "sec": Decimal(1),
    "min": Decimal(60),
    "h": Decimal(3600),
    "d": Decimal(86400),
    "wk": Decimal(604800),
}  # Mo and yr are valid OMH units but have no fixed length


@dataclass(frozen=True)
class _Schema:
    """How one OMH schema becomes readings of one of our types."""

    name: str
    majors: frozenset[str]
    type: str
    value_field: str  # the body field that identifies the schema
    units: Mapping[str, str]  # OMH unit -> UCUM unit of the catalogue
    context: Mapping[str, tuple[str, frozenset[str] | None]] = field(default_factory=dict)
    interval: bool = False  # the reading covers time..end_time (steps)


_COMMON = {"user_notes": ("note", None)}
SCHEMAS: tuple[_Schema, ...] = (
    _Schema(
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
    _Schema(
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
    _Schema(
        "body-weight",
        frozenset({"1", "2", "3"}),
        "weight",
        "body_weight",
        {"kg": "kg", "g": "g", "lb": "[lb_av]"},
        _COMMON,
    ),
    _Schema(
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
    _Schema(
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
    _Schema(
        "step-count",
        frozenset({"1", "2", "3"}),
        "steps",
        "step_count",
        {"steps": "{steps}"},
        {**_COMMON, "descriptive_statistic_denominator": ("statistic_per", None)},
        interval=True,
    ),
    _Schema(
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
_BY_NAME = {schema.name: schema for schema in SCHEMAS}
SUPPORTED = {schema.name: tuple(sorted(schema.majors)) for schema in SCHEMAS}
"""The supported OMH schema names and their major versions."""


class _Errors(list[ItemError]):
    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def add(self, loc: str, code: str, message: str) -> None:
        self.append(ItemError(loc=self.prefix + loc, code=code, message=message))

    def invalid(self, loc: str, message: str) -> None:
        self.add(loc, ItemErrorCode.invalid, message)


def omh_to_readings(doc: Any) -> ImportResult:
    """Convert Open mHealth data points (one, or a list) to sync wire readings."""
    result = ImportResult()
    if isinstance(doc, list):
        for index, item in enumerate(doc):
            _convert(item, f"[{index}]", result)
    else:
        _convert(doc, "", result)
    return result


def _convert(doc: Any, where: str, result: ImportResult) -> None:
    reading, client_id, errors = _data_point(doc)
    if errors:
        result.rejected.append(Rejection(where, client_id, tuple(errors)))
    elif reading is not None:
        result.readings.append(reading)


def _data_point(doc: Any) -> tuple[dict[str, Any] | None, str | None, list[ItemError]]:
    """Return the reading of one data point (or bare body), its client_id, and errors."""
    if not isinstance(doc, dict):
        errors = _Errors("")
        errors.invalid("", "an Open mHealth data point must be a JSON object")
        return None, None, errors
    if "header" in doc or "body" in doc:
        errors = _Errors("")
        header = doc.get("header")
        client_id = _header_id(header)
        named = _header_schema(header, errors)
        body = doc.get("body")
        if not isinstance(body, dict):
            errors.invalid("body", "a data point needs a body object")
            return None, client_id, errors
        body_errors = _Errors("body.")
        reading = _body(body, named, body_errors)
        errors.extend(body_errors)
    else:
        client_id = None
        errors = _Errors("")
        reading = _body(doc, None, errors)
    if errors or reading is None:
        return None, client_id, errors
    reading = {"client_id": client_id or content_id(CLIENT_ID_PREFIX, reading), **reading}
    return reading, reading["client_id"], []


def _header_id(header: Any) -> str | None:
    if isinstance(header, dict) and isinstance(header.get("id"), str) and header["id"]:
        return bounded_id(CLIENT_ID_PREFIX, header["id"])
    return None


def _header_schema(header: Any, errors: _Errors) -> _Schema | None:
    """Return the schema a header names; ``None`` when it names none."""
    if header is None:
        return None
    if not isinstance(header, dict):
        errors.invalid("header", "the header must be an object")
        return None
    schema_id = header.get("schema_id")
    if schema_id is None:
        return None
    if not isinstance(schema_id, dict) or not all(
        isinstance(schema_id.get(key), str) for key in ("name", "version")
    ):
        errors.invalid("header.schema_id", "schema_id needs a name and a version")
        return None
    namespace, name, version = schema_id.get("namespace"), schema_id["name"], schema_id["version"]
    schema = _BY_NAME.get(name)
    if namespace not in (None, "omh") or schema is None:
        known = ", ".join(f"omh:{n}" for n in sorted(_BY_NAME))
        errors.add(
            "header.schema_id",
            ItemErrorCode.unknown_type,
            f"schema {namespace}:{name} is not supported (supported: {known})"[:300],
        )
        return None
    if version.split(".")[0] not in schema.majors:
        majors = ", ".join(f"{m}.x" for m in sorted(schema.majors))
        errors.add(
            "header.schema_id.version",
            ItemErrorCode.unknown_type,
            f"version {version[:16]!r} of {name} is not supported (supported: {majors})",
        )
        return None
    return schema


def _body(body: dict[str, Any], named: _Schema | None, errors: _Errors) -> dict[str, Any] | None:
    """Convert one body to a wire reading without client_id, or record why not."""
    found = [schema for schema in SCHEMAS if schema.value_field in body]
    if "diastolic_blood_pressure" in body and _BY_NAME["blood-pressure"] not in found:
        found.append(_BY_NAME["blood-pressure"])
    if len(found) > 1:
        names = ", ".join(schema.name for schema in found)
        errors.invalid("", f"the body holds more than one measurement ({names})")
        return None
    if not found:
        if named is not None:
            errors.invalid(named.value_field, f"{named.value_field} is required")
        elif not errors:
            known = ", ".join(sorted(_BY_NAME))
            errors.add(
                "",
                ItemErrorCode.unknown_type,
                f"not a supported Open mHealth body (supported: {known})",
            )
        return None
    schema = found[0]
    if named is not None and named is not schema:
        errors.invalid("", f"the header names {named.name} but the body is {schema.name}")
        return None

    value, unit = _VALUES[schema.name](schema, body, errors)
    context = _context(schema, body, errors)
    times = _time_frame(body.get("effective_time_frame"), errors)
    type_name = schema.type
    specimen = (context or {}).get("specimen")
    if specimen in _OTHER_SPECIMENS:
        errors.invalid("specimen_source", f"glucose in {specimen} is not a blood glucose")
    elif specimen == _INTERSTITIAL:
        type_name = "cgm_glucose"  # a sensor (or a scan of one) reads interstitial fluid
    if times is None or value is None or unit is None or context is None or errors:
        return None

    start, end = times
    reading: dict[str, Any] = {"type": type_name, "time": start.isoformat()}
    if schema.interval:
        if end is None:
            errors.invalid(
                "effective_time_frame",
                "a step count covers an interval: a time_interval is required",
            )
            return None
        reading["end_time"] = end.isoformat()
    elif end is not None:
        context["interval_end"] = end.isoformat()
    reading["value"] = value
    reading["unit"] = unit
    if context:
        reading["context"] = context
    return reading


def _number(value: Any, loc: str, errors: _Errors) -> int | float | Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        errors.invalid(loc, "expected a number")
        return None
    if isinstance(value, float) and not math.isfinite(value):
        errors.invalid(loc, "expected a finite number")
        return None
    return value


def _unit_value(
    schema: _Schema, body: Mapping[str, Any], name: str, errors: _Errors
) -> tuple[int | float | Decimal | None, str | None]:
    """Read ``{"value": number, "unit": text}`` and map the unit to UCUM."""
    item = body.get(name)
    if not isinstance(item, dict):
        errors.invalid(name, f"{name} must be an object with value and unit")
        return None, None
    value = _number(item.get("value"), f"{name}.value", errors) if "value" in item else None
    if "value" not in item:
        errors.invalid(f"{name}.value", "value is required")
    unit = item.get("unit")
    if not isinstance(unit, str):
        errors.invalid(f"{name}.unit", "unit is required")
        return value, None
    if unit not in schema.units:
        accepted = ", ".join(sorted(schema.units))
        errors.add(
            f"{name}.unit",
            ItemErrorCode.unknown_unit,
            f"unit {unit[:32]!r} is not accepted for {schema.name} (accepted: {accepted})",
        )
        return value, None
    return value, schema.units[unit]


def _scalar(schema: _Schema, body: Mapping[str, Any], errors: _Errors) -> tuple[Any, str | None]:
    return _unit_value(schema, body, schema.value_field, errors)


def _blood_pressure(
    schema: _Schema, body: Mapping[str, Any], errors: _Errors
) -> tuple[Any, str | None]:
    systolic, unit_s = _unit_value(schema, body, "systolic_blood_pressure", errors)
    diastolic, unit_d = _unit_value(schema, body, "diastolic_blood_pressure", errors)
    if systolic is None or diastolic is None or unit_s is None or unit_d is None:
        return None, None
    return {"systolic": systolic, "diastolic": diastolic}, unit_s


def _step_count(
    schema: _Schema, body: Mapping[str, Any], errors: _Errors
) -> tuple[Any, str | None]:
    if isinstance(body.get("step_count"), dict):  # 3.0: a unit-value
        value, unit = _unit_value(schema, body, "step_count", errors)
    else:  # 1.0 and 2.0: a bare number
        value, unit = _number(body.get("step_count"), "step_count", errors), "{steps}"
    statistic = body.get("descriptive_statistic")
    if statistic is not None and statistic != "sum":
        errors.invalid(
            "descriptive_statistic",
            f"a step count's {statistic!s:.32} is not the number of steps in the interval; "
            "only totals are imported",
        )
        return None, None
    return value, unit


_VALUES: Mapping[str, Callable[[_Schema, Mapping[str, Any], _Errors], tuple[Any, str | None]]] = {
    "blood-pressure": _blood_pressure,
    "step-count": _step_count,
    **{name: _scalar for name in _BY_NAME if name not in ("blood-pressure", "step-count")},
}


def _context(schema: _Schema, body: Mapping[str, Any], errors: _Errors) -> dict[str, Any] | None:
    """Collect the descriptive fields of a body into a flat wire context."""
    context: dict[str, Any] = {}
    ok = True
    for name, (key, allowed) in schema.context.items():
        if name not in body:
            continue
        value = body[name]
        if not isinstance(value, str):
            errors.invalid(name, f"{name} must be a text")
            ok = False
            continue
        if allowed is not None and value not in allowed:
            listed = ", ".join(sorted(allowed))
            errors.invalid(name, f"{value[:40]!r} is not a {name} (one of: {listed})")
            ok = False
            continue
        context[key] = value[:CONTEXT_MAX_TEXT]
    statistic = body.get("descriptive_statistic")
    if statistic is not None:
        if statistic not in _LEVEL_STATISTICS | _OTHER_STATISTICS:
            known = ", ".join(sorted(_LEVEL_STATISTICS | _OTHER_STATISTICS))
            errors.invalid("descriptive_statistic", f"unknown statistic (one of: {known})")
            ok = False
        elif statistic in _OTHER_STATISTICS and not schema.interval:
            errors.invalid(
                "descriptive_statistic",
                f"a {statistic} is not a {schema.type.replace('_', ' ')} value",
            )
            ok = False
        else:
            context["statistic"] = statistic
    if "supplemental_oxygen_flow_rate" in body:
        flow = body["supplemental_oxygen_flow_rate"]
        if not isinstance(flow, dict) or flow.get("unit") != "L/min":
            errors.add(
                "supplemental_oxygen_flow_rate.unit",
                ItemErrorCode.unknown_unit,
                "the oxygen flow rate must be in L/min",
            )
            ok = False
        else:
            rate = _number(flow.get("value"), "supplemental_oxygen_flow_rate.value", errors)
            if rate is None:
                ok = False
            else:
                context["oxygen_flow_l_min"] = rate
    return context if ok else None


def _time_frame(frame: Any, errors: _Errors) -> tuple[datetime, datetime | None] | None:
    """Return (start, end or None) of an effective time frame, with offsets kept."""
    loc = "effective_time_frame"
    if frame is None:
        errors.invalid(loc, "effective_time_frame is required: a reading needs a time")
        return None
    if not isinstance(frame, dict) or ("date_time" in frame) == ("time_interval" in frame):
        errors.invalid(loc, "effective_time_frame needs exactly one of date_time, time_interval")
        return None
    if "date_time" in frame:
        point = _date_time(frame["date_time"], f"{loc}.date_time", errors)
        return None if point is None else (point, None)
    return _time_interval(frame["time_interval"], f"{loc}.time_interval", errors)


def _time_interval(
    interval: Any, loc: str, errors: _Errors
) -> tuple[datetime, datetime | None] | None:
    if not isinstance(interval, dict):
        errors.invalid(loc, "time_interval must be an object")
        return None
    if "part_of_day" in interval or "date" in interval:
        errors.invalid(loc, "a date and part of day is not a time; a reading needs a time")
        return None
    before = len(errors)
    start = _date_time(interval.get("start_date_time"), f"{loc}.start_date_time", errors, True)
    end = _date_time(interval.get("end_date_time"), f"{loc}.end_date_time", errors, True)
    duration = _duration(interval.get("duration"), f"{loc}.duration", errors)
    if len(errors) > before:
        return None
    if sum(x is not None for x in (start, end, duration)) != 2:
        errors.invalid(loc, "time_interval needs two of start_date_time, end_date_time, duration")
        return None
    if start is None:
        assert end is not None and duration is not None
        start = end - duration
    elif end is None:
        assert duration is not None
        end = start + duration
    if end <= start:
        errors.invalid(loc, "the interval ends before it starts")
        return None
    return start, end


def _date_time(value: Any, loc: str, errors: _Errors, optional: bool = False) -> datetime | None:
    if value is None:
        if not optional:
            errors.invalid(loc, "a date-time is required")
        return None
    if not isinstance(value, str) or not 10 < len(value) <= 64:
        errors.invalid(loc, "expected an RFC 3339 date-time text")
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        errors.invalid(loc, "not a valid RFC 3339 date-time")
        return None
    if parsed.utcoffset() is None:
        errors.add(loc, ItemErrorCode.missing_offset, "the date-time has no UTC offset")
        return None
    return parsed


def _duration(value: Any, loc: str, errors: _Errors) -> timedelta | None:
    if value is None:
        return None
    if not isinstance(value, dict) or value.get("unit") not in _DURATION_SECONDS:
        units = ", ".join(_DURATION_SECONDS)
        errors.invalid(loc, f"duration must be a value with a unit of fixed length ({units})")
        return None
    number = _number(value.get("value"), f"{loc}.value", errors)
    if number is None:
        return None
    seconds = Decimal(str(number)) * _DURATION_SECONDS[value["unit"]]
    if not 0 < seconds <= Decimal(86400 * 366):
        errors.invalid(loc, "the duration must be positive and at most a year")
        return None
    return timedelta(microseconds=int(seconds * 1_000_000))


__all__ = ["CLIENT_ID_PREFIX", "SCHEMAS", "SUPPORTED", "omh_to_readings"]
