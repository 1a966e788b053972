"""Rule-engine benchmark of the pure core (issue 4 §8), without a database.

1. Incremental cost per reading with 1,000 versus 1,000,000 readings of history. The
   history is a sorted index of times (what the database index gives the app); for each
   new reading the window ``[t − lookback, t + lookback]`` is looked up with bisect and
   only those readings are built and evaluated with ``evaluate_run``, as the app does.
   The ratio must stay ≤ 1.5: cost follows the batch and the windows, not the history.
2. Backtest throughput (readings per second) versus the incremental path on the same
   data (every reading evaluated as it arrives, one at a time).
3. The alert burden of the default library on the sample personas (sample_data/), per
   rule: firings, advice and flag episodes per patient-week.

    .venv/bin/python bench/rules_core.py [--quick]
"""

from __future__ import annotations

import argparse
import bisect
import csv
import json
import sys
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rules.backtest import backtest  # noqa: E402
from rules.catalogue import CATALOGUE, MeasurementType, to_canonical  # noqa: E402
from rules.engine import evaluate_run, lookback  # noqa: E402
from rules.facts import ReadingFact  # noqa: E402
from rules.language import load_library  # noqa: E402
from rules.plan import PlanSpec  # noqa: E402

LIBRARY = load_library()
T0 = datetime(2024, 1, 1, tzinfo=UTC)
STOCKHOLM = ZoneInfo("Europe/Stockholm")
PLAN = PlanSpec.model_validate(
    {
        "version": 1,
        "rules": [
            {"rule": r.id} for r in LIBRARY.rules if not r.time_based and r.id != "peak-flow-zone"
        ]
        + [{"rule": "peak-flow-zone", "params": {"personal_best": 450}}],
    }
)
# A patient measuring everything: (type, minutes between readings, value maker).
_KINDS: list[tuple[str, int]] = [
    ("blood_pressure", 360),
    ("weight", 1440),
    ("glucose", 480),
    ("pulse", 720),
    ("spo2", 720),
    ("peak_flow", 1440),
    ("symptom_score", 1440),
]


def _fact(index: int, type_name: str, at: datetime) -> ReadingFact:
    wobble = (index * 7919) % 100
    context: dict[str, Any] = {}
    if type_name == "blood_pressure":
        values = {"systolic": Decimal(120 + wobble % 40), "diastolic": Decimal(70 + wobble % 25)}
    elif type_name == "weight":
        values = {"value": Decimal(800 + wobble % 30) / 10}
    elif type_name == "glucose":
        values = {"value": Decimal(30 + wobble * 2) / 10}
    elif type_name == "pulse":
        values = {"value": Decimal(50 + wobble)}
    elif type_name == "spo2":
        values = {"value": Decimal(88 + wobble % 12)}
    elif type_name == "peak_flow":
        values = {"value": Decimal(200 + wobble * 3)}
    else:
        values = {"value": Decimal(wobble % 7)}
        context = {"instrument": "breathlessness"}
    unit = CATALOGUE[MeasurementType(type_name)].canonical_unit
    return ReadingFact(f"r{index}", type_name, at, values, unit, values, unit, context=context)


class _Index:
    """A history of n readings as sorted times; readings are built only when read."""

    def __init__(self, n: int) -> None:
        self.times: list[datetime] = []
        self.types: list[str] = []
        per_day = sum(1440 // every for _, every in _KINDS)
        days = n // per_day + 1
        for day in range(days):
            for type_name, every in _KINDS:
                for k in range(1440 // every):
                    self.times.append(
                        T0 + timedelta(days=day, minutes=k * every + 7 * len(self.types) % 5)
                    )
                    self.types.append(type_name)
        order = sorted(range(len(self.times)), key=lambda i: self.times[i])[:n]
        self.times = [self.times[i] for i in order]
        self.types = [self.types[i] for i in order]

    def window(self, start: datetime, end: datetime) -> list[ReadingFact]:
        low = bisect.bisect_left(self.times, start)
        high = bisect.bisect_right(self.times, end)
        return [_fact(i, self.types[i], self.times[i]) for i in range(low, high)]


def incremental_cost(history: int, new: int) -> float:
    """Return seconds per new reading evaluated on top of ``history`` readings."""
    index = _Index(history + new)
    reach = lookback(PLAN, LIBRARY)
    started = time.perf_counter()
    for position in range(history, history + new):
        at = index.times[position]
        loaded = [r for r in index.window(at - reach, at + reach) if int(r.id[1:]) <= position]
        evaluate_run(PLAN, loaded, new_reading_ids={f"r{position}"}, now=at, library=LIBRARY)
    return (time.perf_counter() - started) / new


def throughput(n: int) -> tuple[float, float]:
    """Return (backtest, incremental) readings per second over the same n readings."""
    index = _Index(n)
    readings = index.window(index.times[0], index.times[-1])
    started = time.perf_counter()
    backtest(PLAN, readings, library=LIBRARY, tz=STOCKHOLM)
    vectorised = n / (time.perf_counter() - started)
    reach = lookback(PLAN, LIBRARY)
    started = time.perf_counter()
    for position, reading in enumerate(readings):
        low = bisect.bisect_left(index.times, reading.time - reach)
        loaded = readings[low : position + 1]
        evaluate_run(PLAN, loaded, new_reading_ids={reading.id}, now=reading.time, library=LIBRARY)
    incremental = n / (time.perf_counter() - started)
    return vectorised, incremental


def _persona_readings(path: Path, anchor: date) -> list[ReadingFact]:
    readings: list[ReadingFact] = []
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            local = datetime.combine(
                anchor + timedelta(days=int(row["day"])),
                clock.fromisoformat(row["local_time"]),
                STOCKHOLM,
            )
            if row["type"] == "blood_pressure":
                original = {
                    "systolic": Decimal(row["systolic"]),
                    "diastolic": Decimal(row["diastolic"]),
                }
            else:
                original = {"value": Decimal(row["value"])}
            spec = CATALOGUE[MeasurementType(row["type"])]
            values = {k: to_canonical(row["type"], v, row["unit"]) for k, v in original.items()}
            readings.append(
                ReadingFact(
                    row["client_id"],
                    row["type"],
                    local.astimezone(UTC),
                    values,
                    spec.canonical_unit,
                    original,
                    row["unit"],
                    context=json.loads(row["context"]) if row["context"] else {},
                )
            )
    return readings


def burden() -> list[str]:
    """Return the alert burden of each sample persona's whole plan, as table lines."""
    lines = [
        f"{'persona':8} {'rule':30} {'firings/wk':>10} {'advice/wk':>10} {'pushes/wk':>10} "
        f"{'22-07/wk':>9} {'flags/wk':>9}"
    ]
    anchor = date(2026, 11, 1)
    for plan_file in sorted((ROOT / "sample_data" / "plans").glob("*.json")):
        if plan_file.name.count(".") > 1:
            continue  # the v1 variants
        handle = plan_file.stem
        body = json.loads(plan_file.read_text(encoding="utf-8"))
        plan = PlanSpec.model_validate({**body, "version": 1})
        readings = _persona_readings(ROOT / "sample_data" / "readings" / f"{handle}.csv", anchor)
        report = backtest(plan, readings, library=LIBRARY, tz=STOCKHOLM)
        lines.extend(
            f"{handle:8} {rule.rule_id:30} {rule.firings_per_week:10.2f} "
            f"{rule.advice_per_week:10.2f} {rule.pushes_per_week:10.2f} "
            f"{rule.night_pushes_per_week:9.2f} {rule.flags_per_week:9.2f}"
            for rule in report.rules
        )
        weeks = report.weeks
        lines.append(
            f"{handle:8} {'(all rules)':30} {sum(r.firings for r in report.rules) / weeks:10.2f} "
            f"{sum(r.advice for r in report.rules) / weeks:10.2f} "
            f"{sum(r.pushes for r in report.rules) / weeks:10.2f} "
            f"{sum(r.night_pushes for r in report.rules) / weeks:9.2f} "
            f"{sum(r.flags for r in report.rules) / weeks:9.2f}"
        )
        lines.append(
            f"{handle:8} {'(weeks, readings)':30} {report.weeks:10.1f} {report.readings:10d}"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    """Run the three measurements and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="100k instead of 1M history")
    args = parser.parse_args(argv)
    big = 100_000 if args.quick else 1_000_000
    incremental_cost(1_000, 100)  # warm up caches and the allocator
    small_cost = incremental_cost(1_000, 200)
    big_cost = incremental_cost(big, 200)
    print(
        f"incremental: {small_cost * 1e3:.2f} ms/reading at 1,000; {big_cost * 1e3:.2f} ms/reading "
        f"at {big:,}; ratio={big_cost / small_cost:.2f} (must be ≤ 1.5)"
    )
    vectorised, incremental = throughput(20_000)
    print(
        f"throughput over 20,000 readings: backtest={vectorised:,.0f} readings/s "
        f"incremental={incremental:,.0f} readings/s ratio={vectorised / incremental:.1f}"
    )
    print("alert burden of the sample plans:")
    for line in burden():
        print("  " + line)


if __name__ == "__main__":
    main()
