"""Values, units and context of an Open mHealth body."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from sync.imports.omh.errors import Errors
from sync.imports.omh.schemas import BY_NAME, LEVEL_STATISTICS, OTHER_STATISTICS, Schema
from sync.normalise import CONTEXT_MAX_TEXT, ItemErrorCode


def number(value: Any, loc: str, errors: Errors) -> int | float | Decimal | None:
    """The value if it is a finite JSON number, else None with the error recorded."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        errors.invalid(loc, "expected a number")
        return None
    if isinstance(value, float) and not math.isfinite(value):
        errors.invalid(loc, "expected a finite number")
        return None
    return value


def _unit_value(
    schema: Schema, body: Mapping[str, Any], name: str, errors: Errors
) -> tuple[int | float | Decimal | None, str | None]:
    """Read ``{"value": number, "unit": text}`` and map the unit to UCUM."""
    item = body.get(name)
    if not isinstance(item, dict):
        errors.invalid(name, f"{name} must be an object with value and unit")
        return None, None
    value = number(item.get("value"), f"{name}.value", errors) if "value" in item else None
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


def _scalar(schema: Schema, body: Mapping[str, Any], errors: Errors) -> tuple[Any, str | None]:
    return _unit_value(schema, body, schema.value_field, errors)


def _blood_pressure(
    schema: Schema, body: Mapping[str, Any], errors: Errors
) -> tuple[Any, str | None]:
    systolic, unit_s = _unit_value(schema, body, "systolic_blood_pressure", errors)
    diastolic, unit_d = _unit_value(schema, body, "diastolic_blood_pressure", errors)
    if systolic is None or diastolic is None or unit_s is None or unit_d is None:
        return None, None
    return {"systolic": systolic, "diastolic": diastolic}, unit_s


def _step_count(schema: Schema, body: Mapping[str, Any], errors: Errors) -> tuple[Any, str | None]:
    if isinstance(body.get("step_count"), dict):  # 3.0: a unit-value
        value, unit = _unit_value(schema, body, "step_count", errors)
    else:  # 1.0 and 2.0: a bare number
        value, unit = number(body.get("step_count"), "step_count", errors), "{steps}"
    statistic = body.get("descriptive_statistic")
    if statistic is not None and statistic != "sum":
        errors.invalid(
            "descriptive_statistic",
            f"a step count's {statistic!s:.32} is not the number of steps in the interval; "
            "only totals are imported",
        )
        return None, None
    return value, unit


VALUES: Mapping[str, Callable[[Schema, Mapping[str, Any], Errors], tuple[Any, str | None]]] = {
    "blood-pressure": _blood_pressure,
    "step-count": _step_count,
    **{name: _scalar for name in BY_NAME if name not in ("blood-pressure", "step-count")},
}


def context_of(schema: Schema, body: Mapping[str, Any], errors: Errors) -> dict[str, Any] | None:
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
        if statistic not in LEVEL_STATISTICS | OTHER_STATISTICS:
            known = ", ".join(sorted(LEVEL_STATISTICS | OTHER_STATISTICS))
            errors.invalid("descriptive_statistic", f"unknown statistic (one of: {known})")
            ok = False
        elif statistic in OTHER_STATISTICS and not schema.interval:
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
            rate = number(flow.get("value"), "supplemental_oxygen_flow_rate.value", errors)
            if rate is None:
                ok = False
            else:
                context["oxygen_flow_l_min"] = rate
    return context if ok else None


__all__ = ["VALUES", "context_of", "number"]
