"""Typed factories for readings and plans in the rule tests."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from rules.catalogue import CATALOGUE, MeasurementType, to_canonical
from rules.facts import ReadingFact
from rules.language import load_library
from rules.plan import PlanRule, PlanSpec, Quantity

T0 = datetime(2026, 11, 20, 7, 0, tzinfo=UTC)
STOCKHOLM = ZoneInfo("Europe/Stockholm")
DAY0 = date(2026, 11, 20)


def local(day: int, clock: str = "08:00", *, start: date = DAY0) -> datetime:
    """Return a Stockholm wall-clock time ``day`` days after ``start``, in UTC."""
    moment = datetime.combine(start + timedelta(days=day), time.fromisoformat(clock), STOCKHOLM)
    return moment.astimezone(UTC)


Value = str | tuple[str, str]  # a scalar, or (systolic, diastolic)


def reading(
    type_name: str,
    value: Value,
    unit: str | None = None,
    *,
    at: datetime = T0,
    reading_id: str | None = None,
    end_time: datetime | None = None,
    context: Mapping[str, Any] | None = None,
) -> ReadingFact:
    """Return a reading as the app would hand it to the evaluator."""
    spec = CATALOGUE[MeasurementType(type_name)]
    unit = unit or spec.canonical_unit
    if isinstance(value, tuple):
        original = {"systolic": Decimal(value[0]), "diastolic": Decimal(value[1])}
    else:
        original = {"value": Decimal(value)}
    values = {name: to_canonical(type_name, v, unit) for name, v in original.items()}
    shown = "/".join(value) if isinstance(value, tuple) else value
    return ReadingFact(
        id=reading_id or f"{type_name}:{shown}{unit}@{at.isoformat()}",
        type=type_name,
        time=at,
        values=values,
        unit=spec.canonical_unit,
        original_values=original,
        original_unit=unit,
        end_time=end_time,
        context=dict(context or {}),
    )


def bp(systolic: str, diastolic: str, unit: str = "mm[Hg]", **kw: Any) -> ReadingFact:
    """Return a blood-pressure reading."""
    return reading("blood_pressure", (systolic, diastolic), unit, **kw)


def days(n: float) -> timedelta:
    """Return n days."""
    return timedelta(days=n)


ParamOverride = Quantity | bool | Decimal


def plan(
    *rule_ids: str,
    params: Mapping[str, Mapping[str, ParamOverride]] | None = None,
    modes: Mapping[str, str] | None = None,
    version: int = 1,
) -> PlanSpec:
    """Return a plan switching on the given rules (default: the whole library)."""
    ids = rule_ids or tuple(rule.id for rule in load_library().rules)
    params = params or {}
    modes = modes or {}
    return PlanSpec.model_validate(
        {
            "version": version,
            "rules": [
                PlanRule.model_validate(
                    {
                        "rule": rule_id,
                        "params": dict(params.get(rule_id, {})),
                        "mode": modes.get(rule_id),
                    }
                )
                for rule_id in ids
            ],
        }
    )


def qty(value: str, unit: str) -> Quantity:
    """Return a plan quantity."""
    return Quantity(value=Decimal(value), unit=unit)
