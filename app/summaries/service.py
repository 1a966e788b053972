"""Summaries of a measurement type: CGM metrics and AGP, or count/mean/min/max/last per day."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from app.goals.progress import local_day_facts
from app.localtime import local_today, zone_of
from app.patients.models import Patient
from app.readings.repository import counted_facts
from rules.catalogue import MeasurementType, json_number, spec_for
from rules.cgm import MMOL_L, GlucoseSample, agp_profile, cgm_metrics, samples_from_readings
from rules.progress import MICRO, DayAggregate, aggregate_days


def _round(value: float | Decimal | None, places: int = 4) -> float | None:
    if value is None:
        return None
    number = float(value)
    return round(number, places) if math.isfinite(number) else None


def cgm_summary(
    samples: Sequence[GlucoseSample],
    *,
    tz: tzinfo,
    start: datetime | None = None,
    end: datetime | None = None,
) -> dict[str, Any]:
    """The CGM fields of DESIGN §4.4 (CLINICAL §3, via rules.cgm) and the hourly AGP profile."""
    metrics = cgm_metrics(samples, unit=MMOL_L, start=start, end=end)
    inside = [
        s for s in samples if (start is None or s.time >= start) and (end is None or s.time < end)
    ]
    return {
        "n": metrics.n,
        "wear_percent": _round(metrics.wear_percent),
        "mean": _round(metrics.mean),
        "sd": _round(metrics.sd),
        "cv": _round(metrics.cv),
        "tir": _round(metrics.tir),
        "tbr_3_9": _round(metrics.tbr_3_9),
        "tbr_3_0": _round(metrics.tbr_3_0),
        "tar_10_0": _round(metrics.tar_10_0),
        "tar_13_9": _round(metrics.tar_13_9),
        "gmi_percent": _round(metrics.gmi_percent),
        "gmi_mmol_mol": _round(metrics.gmi_mmol_mol),
        "gri": _round(metrics.gri),
        "unit": MMOL_L,
        "agp": [
            {
                "hour": h.hour,
                "n": h.n,
                "p5": _round(h.p5),
                "p25": _round(h.p25),
                "p50": _round(h.p50),
                "p75": _round(h.p75),
                "p95": _round(h.p95),
            }
            for h in agp_profile(inside, tz=tz, unit=MMOL_L)
        ],
    }


def _day_summary(
    comps: Mapping[str, DayAggregate], components: tuple[str, ...], interval: bool
) -> dict[str, Any]:
    def per(pick: str) -> Any:
        values: dict[str, int | float] = {}
        for c in components:
            agg = comps.get(c)
            if agg is None:
                return None
            if pick == "mean":  # computed: four decimals, as the CGM metrics
                values[c] = round(agg.total / agg.count / MICRO, 4)
                continue
            # Measured values (and a sum of them) exactly, as stored: the aggregates keep
            # integer millionths, and stored values have at most six decimals.
            micros = {"min": agg.low, "max": agg.high, "last": agg.last, "sum": agg.total}[pick]
            values[c] = json_number(Decimal(micros) / MICRO)
        return values[components[0]] if len(components) == 1 else values

    out: dict[str, Any] = {
        "count": max((a.count for a in comps.values()), default=0),
        "mean": per("mean"),
        "min": per("min"),
        "max": per("max"),
        "last": per("last"),
    }
    if interval:
        out["sum"] = per("sum")
    return out


def _merge(aggs: Iterable[DayAggregate]) -> DayAggregate | None:
    merged: DayAggregate | None = None
    for a in aggs:
        merged = a if merged is None else DayAggregate(
            merged.count + a.count, merged.total + a.total, min(merged.low, a.low),
            max(merged.high, a.high), a.last,
        )  # fmt: skip
    return merged


def summary(
    session: Session, *, patient: Patient, type_: MeasurementType, days: int, now: datetime
) -> dict[str, Any]:
    """CGM metrics over the last ``days`` × 24 h, or for other types count/mean/min/max/last per
    local day."""
    tz = zone_of(patient)
    if type_ is MeasurementType.cgm_glucose:
        start = now - timedelta(days=days)
        facts = counted_facts(session, patient.id, {type_.value}, start, now)
        body = cgm_summary(samples_from_readings(facts), tz=tz, start=start, end=now)
        return {"type": type_.value, "days": days, "from": start.isoformat(),
                "to": now.isoformat(), **body}  # fmt: skip
    today = local_today(patient, now)
    first = today - timedelta(days=days - 1)
    return _daily_summary(session, patient, type_.value, first, today)


def _daily_summary(
    session: Session, patient: Patient, type_: str, first: date, last: date
) -> dict[str, Any]:
    tz = zone_of(patient)
    spec = spec_for(type_)
    assert spec is not None
    components = spec.components
    facts = local_day_facts(session, patient.id, type_, first, last, tz)
    aggregated = aggregate_days(facts, components, tz)
    per_day = []
    day = first
    while day <= last:
        aggregates = aggregated.get(day, {})
        per_day.append(
            {"date": day.isoformat(), **_day_summary(aggregates, components, spec.interval)}
        )
        day += timedelta(days=1)
    ordered = [aggregated[d] for d in sorted(aggregated)]
    overall = {
        c: merged
        for c in components
        if (merged := _merge(a[c] for a in ordered if c in a)) is not None
    }
    return {
        "type": type_,
        "unit": spec.canonical_unit,
        "from": first.isoformat(),
        "to": last.isoformat(),
        "total": _day_summary(overall, components, spec.interval),
        "days": per_day,
    }
