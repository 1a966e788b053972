"""Goal progress benchmark of the pure core (issue 6 §6), without a database.

10,000 synthetic patients with 90 days of data, one goal each (a third each: home blood
pressure, mean of 7 days, four readings a day; weight, latest in 14 days, every morning;
steps, daily totals averaged over 7 days). For each patient, on day 90:

- **full**: every reading since the goal's start is aggregated and the progress computed
  (what the nightly job and a late-data fallback do);
- **incremental**: the state stored after day 89 (read back from its JSON, as the service
  keeps it in ``Goal.progress``) and only day 90's readings (what a sync does).

Both paths read the goal's stored progress and write the new state back as JSON, as the
service does on either path (until 2026-12-05 only the incremental one did). The JSON goes
  through the service's own codec for JSON columns (``app.db.json_text``/``json_value``,
  orjson); ``--codec stdlib`` measures with the standard library's ``json``, which this bench
  used before the service moved to orjson (about a quarter of the incremental path).

Both must give the same progress (checked for every patient); the figure is the ratio of the
time of full to incremental, measured in the same run. Data generation is not timed.

    .venv/bin/python bench/progress.py [--patients N] [--days D] [--codec service|stdlib]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.db import json_text, json_value  # noqa: E402
from rules.facts import ReadingFact  # noqa: E402
from rules.progress import (  # noqa: E402
    Aggregate,
    Direction,
    GoalProgress,
    GoalSpec,
    Measure,
    MilestoneSpec,
    ProgressState,
    Target,
    aggregate_days,
    compute_progress,
    full_progress,
)

STOCKHOLM = ZoneInfo("Europe/Stockholm")
TODAY = date(2026, 11, 26)


def _spec(kind: int, start: date) -> GoalSpec:
    if kind == 0:
        return GoalSpec(
            Measure("blood_pressure", Aggregate.MEAN, 7, ("systolic", "diastolic")),
            Target({"systolic": 135.0, "diastolic": 85.0}, Direction.BELOW, inclusive=False),
            start=start,
            due=start + timedelta(days=180),
        )
    if kind == 1:
        return GoalSpec(
            Measure("weight", Aggregate.LAST, 14, ("value",)),
            Target({"value": 91.0}, Direction.BELOW),
            start=start,
            due=start + timedelta(days=240),
            milestones=(MilestoneSpec("m", {"value": 94.0}),),
        )
    return GoalSpec(
        Measure("steps", Aggregate.SUM, 7, ("value",)),
        Target({"value": 7000.0}, Direction.ABOVE),
        start=start,
    )


def _fact(day: date, index: int, at: str, values: dict[str, Decimal]) -> ReadingFact:
    when = datetime.combine(day, clock.fromisoformat(at), STOCKHOLM).astimezone(UTC)
    return ReadingFact(
        id=f"{day.isoformat()}:{index}", type="x", time=when, values=values, unit="",
        original_values=values, original_unit="",
    )  # fmt: skip


def _readings(kind: int, days: int, rng: random.Random) -> list[list[ReadingFact]]:
    """Readings per local day (index 0 = the goal's start), drifting toward the target."""
    start = TODAY - timedelta(days=days - 1)
    per_day: list[list[ReadingFact]] = []
    for d in range(days):
        day = start + timedelta(days=d)
        progress = d / days
        if kind == 0:
            made = [
                _fact(day, i, at, {
                    "systolic": Decimal(round(148 - 10 * progress + rng.gauss(0, 6))),
                    "diastolic": Decimal(round(92 - 5 * progress + rng.gauss(0, 4))),
                })
                for i, at in enumerate(("07:00", "07:02", "21:00", "21:02"))
            ]  # fmt: skip
        elif kind == 1:
            kg = Decimal(str(round(96 - 2.5 * progress + rng.gauss(0, 0.3), 1)))
            made = [_fact(day, 0, "07:15", {"value": kg})]
        else:
            steps = Decimal(round(4500 + 3000 * progress + rng.gauss(0, 900)))
            made = [_fact(day, 0, "00:00", {"value": steps})]
        per_day.append(made)
    return per_day


CODECS: dict[str, tuple[Callable[[Any], str], Callable[[str], Any]]] = {
    "service": (json_text, json_value),
    "stdlib": (json.dumps, json.loads),
}


def _full(spec: GoalSpec, stored: str, everything: list[ReadingFact], codec: str) -> GoalProgress:
    """What the nightly job does: every reading, the state written back.

    The stored progress is read too (not its state): ``app.goals.progress.refresh`` loads the
    goal's progress on either path, to tell what changed.
    """
    dumps, loads = CODECS[codec]
    loads(stored)
    result = full_progress(spec, everything, STOCKHOLM, TODAY)
    dumps(result.state.to_dict())
    return result


def _incremental(spec: GoalSpec, stored: str, new: list[ReadingFact], codec: str) -> GoalProgress:
    """What a sync does: the stored state, the new day's readings, the state written back."""
    dumps, loads = CODECS[codec]
    prior = ProgressState.from_dict(loads(stored))
    days = aggregate_days(new, spec.measure.components, STOCKHOLM)
    result = compute_progress(spec, days, TODAY, prior)
    dumps(result.state.to_dict())
    return result


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--codec", choices=sorted(CODECS), default="service")
    args = parser.parse_args()
    rng = random.Random(6)
    start = TODAY - timedelta(days=args.days - 1)
    full_s = incremental_s = 0.0
    readings = new_readings = mismatches = 0
    by_kind = {0: [0.0, 0.0], 1: [0.0, 0.0], 2: [0.0, 0.0]}
    for patient in range(args.patients):
        kind = patient % 3
        spec = _spec(kind, start)
        per_day = _readings(kind, args.days, rng)
        everything = [r for day in per_day for r in day]
        readings += len(everything)
        new_readings += len(per_day[-1])
        yesterday = TODAY - timedelta(days=1)
        # The state as the service stored it after the day before (not timed).
        before = full_progress(spec, everything[: -len(per_day[-1])], STOCKHOLM, yesterday)
        stored = CODECS[args.codec][0](before.state.to_dict())

        started = time.perf_counter()
        full = _full(spec, stored, everything, args.codec)
        full_t = time.perf_counter() - started
        started = time.perf_counter()
        result = _incremental(spec, stored, per_day[-1], args.codec)
        incremental_t = time.perf_counter() - started
        mismatches += result != full
        full_s += full_t
        incremental_s += incremental_t
        by_kind[kind][0] += full_t
        by_kind[kind][1] += incremental_t

    names = {0: "blood_pressure", 1: "weight", 2: "steps"}
    print(
        f"patients={args.patients} days={args.days} codec={args.codec} "
        f"readings_aggregated_full={readings} "
        f"readings_aggregated_incremental={new_readings}"
    )
    print(
        f"full_s={full_s:.2f} incremental_s={incremental_s:.2f} "
        f"full_us_per_patient={full_s / args.patients * 1e6:.0f} "
        f"incremental_us_per_patient={incremental_s / args.patients * 1e6:.0f} "
        f"ratio_full_to_incremental={full_s / incremental_s:.1f} mismatches={mismatches}"
    )
    for kind, (full_k, inc_k) in by_kind.items():
        print(f"  {names[kind]}: ratio={full_k / inc_k:.1f}")
    if mismatches:
        raise SystemExit("incremental and full progress differ")


if __name__ == "__main__":
    main()
