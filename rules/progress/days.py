"""Stage 1: readings to day aggregates (a plain loop for few readings, pandas for many)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, timedelta, tzinfo
from decimal import ROUND_HALF_EVEN, Decimal

import numpy as np
import pandas as pd

from rules.facts import ReadingFact, micros_of
from rules.progress.goals import MICRO, PANDAS_MIN_READINGS, DayAggregate

_EPOCH_DAY = date(1970, 1, 1)


def _micro(value: Decimal) -> int:
    return int((value * MICRO).to_integral_value(rounding=ROUND_HALF_EVEN))


def aggregate_days(
    readings: Iterable[ReadingFact], components: Sequence[str], tz: tzinfo
) -> dict[date, dict[str, DayAggregate]]:
    """Reduce readings to day aggregates per local day and component (latest = by time, id).

    Counts over an interval (steps) come from one device a day (:func:`one_device_a_day`).
    """
    rows = one_device_a_day(sorted(readings, key=lambda r: (r.time, r.id)), tz)
    if len(rows) >= PANDAS_MIN_READINGS:
        return _aggregate_frame(rows, components, tz)
    return _aggregate_loop(rows, components, tz)


def one_device_a_day(rows: Sequence[ReadingFact], tz: tzinfo) -> Sequence[ReadingFact]:
    """Keep, of each local day's interval readings of a type, those of the device that
    counted most; every other reading stays.

    A phone in the pocket and a watch on the wrist both count the same walk, and an Apple
    Health export keeps the records of both (``context.source_name``): summed, the day would
    show the steps twice and a goal progress not made. The device with the highest total
    that day counts (a tie goes to the name that sorts last, so the order of the readings
    does not matter). It never counts a step twice; on a day the devices took turns it
    understates. Point readings (a blood pressure from each of two cuffs) are measurements
    of their own and all count. Readings without a device (a phone app's own sync) are one
    device of their own.
    """
    totals: dict[tuple[date, str], dict[str, int]] = {}
    for reading in rows:
        if reading.end_time is not None:
            devices = totals.setdefault((reading.local_date(tz), reading.type), {})
            device = _device(reading)
            devices[device] = devices.get(device, 0) + sum(
                _micro(v) for v in reading.values.values()
            )
    counted = {
        key: max(devices.items(), key=lambda item: (item[1], item[0]))[0]
        for key, devices in totals.items()
        if len(devices) > 1
    }
    if not counted:
        return rows
    return [r for r in rows if r.end_time is None or _counts(r, counted, tz)]


def _counts(reading: ReadingFact, counted: Mapping[tuple[date, str], str], tz: tzinfo) -> bool:
    chosen = counted.get((reading.local_date(tz), reading.type))
    return chosen is None or chosen == _device(reading)


def _device(reading: ReadingFact) -> str:
    # Apple's sourceName names the phone or the watch; its device text also carries the
    # software version, which changes with an update in the middle of a day.
    context = reading.context
    return str(context.get("source_name") or context.get("device") or "") if context else ""


def _aggregate_loop(
    rows: Sequence[ReadingFact], components: Sequence[str], tz: tzinfo
) -> dict[date, dict[str, DayAggregate]]:
    acc: dict[date, dict[str, list[int]]] = {}
    for reading in rows:
        per_day = acc.setdefault(reading.time.astimezone(tz).date(), {})
        for component in components:
            raw = reading.values.get(component)
            if raw is None:
                continue
            m = _micro(raw)
            agg = per_day.get(component)
            if agg is None:
                per_day[component] = [1, m, m, m, m]
            else:
                agg[0] += 1
                agg[1] += m
                agg[2] = min(agg[2], m)
                agg[3] = max(agg[3], m)
                agg[4] = m
    return {
        day: {c: DayAggregate(*a) for c, a in comps.items()} for day, comps in acc.items() if comps
    }


def _aggregate_frame(
    rows: Sequence[ReadingFact], components: Sequence[str], tz: tzinfo
) -> dict[date, dict[str, DayAggregate]]:
    micros = np.fromiter((micros_of(r.time) for r in rows), dtype=np.int64, count=len(rows))
    local = pd.to_datetime(micros, unit="us", utc=True).tz_convert(tz).tz_localize(None)
    day_numbers = local.to_numpy().astype("datetime64[D]").astype(np.int64)
    out: dict[date, dict[str, DayAggregate]] = {}
    for component in components:
        present = [i for i, r in enumerate(rows) if component in r.values]
        if not present:
            continue
        frame = pd.DataFrame(
            {
                "day": day_numbers[present],
                "v": np.array([_micro(rows[i].values[component]) for i in present], np.int64),
            }
        )
        grouped = frame.groupby("day", sort=True)["v"].agg(["count", "sum", "min", "max", "last"])
        for number, n, total, low, high, last in grouped.itertuples(name=None):
            day = _EPOCH_DAY + timedelta(days=int(number))
            out.setdefault(day, {})[component] = DayAggregate(
                int(n), int(total), int(low), int(high), int(last)
            )
    return out


__all__ = ["aggregate_days", "one_device_a_day"]
