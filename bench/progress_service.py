"""Goal progress through the service, on both databases (issue 17 §5, with ``progress.py``).

``progress.py`` times the pure core: the state and the readings already in memory. A sync
does more: it finds which local days changed since the goal's stored position in the change
feed, reads those days' readings, recomputes, and writes the progress back. The nightly job
reads every reading since the goal's start instead. This bench times both as the service
runs them, on each database:

- **incremental**: what a sync runs after storing a day's readings
  (``app.goals.progress.recompute_for_readings``: the patient's open goals on the type, the
  changed days, the new progress written);
- **full**: what the nightly job runs for the same goal (``recompute_all``'s per-goal work:
  the open goals, their milestones, ``refresh(full=True)``).

Patients as in ``progress.py`` (a third each: home blood pressure four times a day, weight
every morning, daily steps; one goal each, started 89 days ago). Each patient's history is
synced in one batch of 89 days (not timed), then today's readings; before
each timed call the goal's stored progress is put back to what it was before today's
readings, and the call's transaction is rolled back afterwards, so both paths start from
the same state. The patient's feed lock is taken before the clock starts: a sync holds it
already, having stored the readings. Both must give the same progress (checked). The figure
is full ÷ incremental per goal (medians of three calls per patient and path), per kind and
in all.

    .venv/bin/python bench/progress_service.py [--patients 150] [--backends sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import select  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from app.auth.models import User  # noqa: E402
from app.config import Settings  # noqa: E402
from app.db import make_engine, make_sessionmaker, transaction  # noqa: E402
from app.feed import service as feed  # noqa: E402
from app.findings.outgoing import Outgoing  # noqa: E402
from app.goals.models import Goal  # noqa: E402
from app.goals.progress import recompute_for_readings, refresh  # noqa: E402
from app.goals.repository import milestones_of, open_goals  # noqa: E402
from app.goals.schemas import GoalIn  # noqa: E402
from app.goals.service import create_goal  # noqa: E402
from app.heap import settle_startup_heap  # noqa: E402
from app.ingest import pipeline  # noqa: E402
from app.patients.models import Patient  # noqa: E402
from bench import cluster_for  # noqa: E402
from bench.ingest import fresh_database, seed_people  # noqa: E402
from sync.wire import SourceIn  # noqa: E402

STOCKHOLM = ZoneInfo("Europe/Stockholm")
SOURCE = SourceIn(id="bench-phone", kind="app", name="Bench", version="1")
KINDS = ("blood_pressure", "weight", "steps")


def _item(day: date, at: str, type_: str, value: Any, unit: str, now: datetime) -> dict[str, Any]:
    moment = datetime.combine(day, clock.fromisoformat(at), STOCKHOLM)
    item = {"client_id": str(uuid.uuid4()), "type": type_, "time": moment.isoformat(),
            "value": value, "unit": unit}  # fmt: skip
    if type_ == "steps":  # the day's total so far
        item["end_time"] = min(moment + timedelta(days=1), now - timedelta(minutes=2)).isoformat()
    return item


def day_readings(
    kind: int, day: date, progress: float, rng: random.Random, now: datetime
) -> list[dict[str, Any]]:
    """One day's readings of a kind, drifting toward the target as ``progress`` goes 0 → 1."""
    if kind == 0:
        return [
            _item(day, at, "blood_pressure", {
                "systolic": round(148 - 10 * progress + rng.gauss(0, 6)),
                "diastolic": round(92 - 5 * progress + rng.gauss(0, 4)),
            }, "mm[Hg]", now)
            for at in ("07:00", "07:02", "21:00", "21:02")
        ]  # fmt: skip
    if kind == 1:
        kg = round(96 - 2.5 * progress + rng.gauss(0, 0.3), 1)
        return [_item(day, "07:15", "weight", kg, "kg", now)]
    steps = round(4500 + 3000 * progress + rng.gauss(0, 900))
    return [_item(day, "00:00", "steps", steps, "{steps}", now)]


def goal_body(kind: int, start: date) -> dict[str, Any]:
    """The goal of each kind, as ``progress.py`` sets it."""
    dates = {"start": start.isoformat(), "lifecycle": "active"}
    if kind == 0:
        return {"title": "Blodtryck", "measure": {"type": "blood_pressure", "aggregate": "mean",
                "window_days": 7}, "target": {"value": {"systolic": 135, "diastolic": 85},
                "unit": "mm[Hg]", "direction": "below", "inclusive": False},
                "due": (start + timedelta(days=180)).isoformat(), **dates}  # fmt: skip
    if kind == 1:
        return {"title": "Vikt", "measure": {"type": "weight", "aggregate": "last",
                "window_days": 14}, "target": {"value": 91.0, "unit": "kg", "direction": "below"},
                "due": (start + timedelta(days=240)).isoformat(),
                "milestones": [{"title": "94 kg", "target": {"value": 94.0, "unit": "kg"}}],
                **dates}  # fmt: skip
    return {
        "title": "Steg",
        "measure": {"type": "steps", "aggregate": "sum", "window_days": 7},
        "target": {"value": 7000, "unit": "{steps}", "direction": "above"},
        **dates,
    }


def _incremental(session: Session, patient: Patient, goal: Goal, now: datetime) -> None:
    """What a sync runs for the goal after storing readings of its type."""
    recompute_for_readings(session, patient, {goal.measure["type"]}, now, Outgoing())


def _full(session: Session, patient: Patient, goal: Goal, now: datetime) -> None:
    """What the nightly job runs for the goal (``recompute_all``'s work for one goal)."""
    goals = open_goals(session, patient.id)
    milestones = milestones_of(session, [g.id for g in goals])
    for each in goals:
        refresh(session, patient, each, milestones[each.id], now, full=True, out=Outgoing())


def run(backend: str, url: str, workdir: Path, patients: int) -> None:
    """Set up the patients and print the figures for one database."""
    handles = seed_people(url, workdir, copies=patients - 1)
    settings = Settings(var_dir=workdir, database_url=url, environment="development")
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    settle_startup_heap()  # as the server does once started
    now = datetime.now(UTC)
    today = now.astimezone(STOCKHOLM).date()
    start = today - timedelta(days=89)
    rng = random.Random(6)
    prepared: list[tuple[str, str, dict[str, Any], int]] = []
    for n, handle in enumerate(handles):
        kind = n % 3
        with transaction(factory) as session:
            user_id = session.scalars(select(User.id).where(User.handle == handle)).one()
            patient = session.scalars(select(Patient).where(Patient.user_id == user_id)).one()
            body = GoalIn.model_validate(goal_body(kind, start))
            made = create_goal(session, patient=patient, body=body, author_id=None, now=now)
            goal_id = made["id"]
            history = [
                item
                for d in range(89)
                for item in day_readings(kind, start + timedelta(days=d), d / 90, rng, now)
            ]
            pipeline.ingest(session, settings, patient=patient, source=SOURCE, items=history,
                            entered_by=None, now=now)  # fmt: skip
            goal = session.get(Goal, goal_id)
            assert goal is not None and goal.progress is not None
            before_today = dict(goal.progress)
            pipeline.ingest(session, settings, patient=patient, source=SOURCE,
                            items=day_readings(kind, today, 89 / 90, rng, now), entered_by=None,
                            now=now)  # fmt: skip
        prepared.append((patient.id, goal_id, before_today, kind))

    def timed(
        path: Callable[..., None], patient_id: str, goal_id: str, state: dict[str, Any]
    ) -> tuple[float, dict[str, Any]]:
        with factory() as session:
            goal = session.get(Goal, goal_id)
            patient = session.get(Patient, patient_id)
            assert goal is not None and patient is not None
            goal.progress = state  # as it was before today's readings
            session.flush()
            # The patient's feed lock: a sync holds it already (it stored the readings), and
            # the nightly job takes it once per patient; it is neither path's own work.
            feed.lock_patient(session, patient_id)
            started = time.perf_counter()
            path(session, patient, goal, now)
            elapsed = time.perf_counter() - started
            shown = {k: v for k, v in goal.progress.items() if k not in ("updated_at", "state",
                     "feed_seq", "full_on")}  # fmt: skip
            session.rollback()
        return elapsed, shown

    by_kind: dict[int, list[list[float]]] = {k: [[], []] for k in range(3)}
    mismatches = 0
    for patient_id, goal_id, state, kind in prepared:
        full_times, incremental_times = [], []
        for _ in range(3):
            full_t, full_shown = timed(_full, patient_id, goal_id, state)
            incremental_t, incremental_shown = timed(_incremental, patient_id, goal_id, state)
            full_times.append(full_t)
            incremental_times.append(incremental_t)
            mismatches += full_shown != incremental_shown
        by_kind[kind][0].append(statistics.median(full_times))
        by_kind[kind][1].append(statistics.median(incremental_times))
    engine.dispose()
    total_full = total_incremental = 0.0
    for kind, (full_k, incremental_k) in by_kind.items():
        total_full += sum(full_k)
        total_incremental += sum(incremental_k)
        print(
            f"  {backend} {KINDS[kind]}: full {statistics.mean(full_k) * 1e3:.2f} ms, "
            f"incremental {statistics.mean(incremental_k) * 1e3:.2f} ms a goal, "
            f"ratio={sum(full_k) / sum(incremental_k):.1f}"
        )
    print(
        f"{backend}: patients={patients} full_ms_per_goal={total_full / patients * 1e3:.2f} "
        f"incremental_ms_per_goal={total_incremental / patients * 1e3:.2f} "
        f"ratio_full_to_incremental={total_full / total_incremental:.1f} mismatches={mismatches}",
        flush=True,
    )
    if mismatches:
        raise SystemExit("incremental and full progress differ")


def main() -> None:
    """Run the service-path progress bench on each database and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patients", type=int, default=150)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    backends = args.backends.split(",")
    cluster = cluster_for(backends)
    try:
        for backend in backends:
            workdir = Path(tempfile.mkdtemp(prefix="bench-progress-"))
            run(backend, fresh_database(backend, cluster, workdir), workdir, args.patients)
    finally:
        if cluster is not None:
            cluster.stop()


if __name__ == "__main__":
    main()
