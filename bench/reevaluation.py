"""Re-evaluation benchmark (issue 17 §6): a week dense with blood pressures, then one more sync
and one delete.

Allan's plan (home blood-pressure mean, very high, low) and a history of plausible blood
pressures spread over the last week, stored through the real ingest in 1,000-reading batches.
Then, timed: a 1,000-reading sync into the same week (late readings: every window that holds
them is re-evaluated), marking one reading in the middle of the week entered-in-error, and the
next 1,000-reading sync (by then the database driver has prepared the statements that run on
every sync, and PostgreSQL may plan them generically: a plan that reads a whole source per
batch shows here, not in the first sync).

The baseline is the same with a tenth of the history, in the same run: if re-evaluation
touched every anchor of the week and scanned the whole window for each (the quadratic path,
74 s for the sync and 76 s for the delete at 9,000 readings), the ratio would be about 100;
linear work gives a ratio near 1 (the rules read only the windows that hold the change).

    .venv/bin/python bench/reevaluation.py [--history 9000] [--backends sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import select  # noqa: E402

from app.auth.models import User  # noqa: E402
from app.config import Settings  # noqa: E402
from app.db import make_engine, make_sessionmaker, transaction  # noqa: E402
from app.heap import settle_startup_heap  # noqa: E402
from app.ingest import pipeline  # noqa: E402
from app.patients.models import Patient  # noqa: E402
from bench import cluster_for  # noqa: E402
from bench.ingest import fresh_database, seed_people  # noqa: E402
from sync.wire import SourceIn  # noqa: E402

BATCH = 1000
SOURCE = SourceIn(id="bench-cuff", kind="app", name="Bench", version="1")


def readings(count: int, now: datetime, rng: random.Random) -> list[dict[str, Any]]:
    """Plausible home blood pressures at random times in the week before ``now``."""
    week = timedelta(days=7).total_seconds()
    out = []
    for _ in range(count):
        at = now - timedelta(seconds=60 + rng.random() * (week - 3600))
        out.append(
            {
                "client_id": str(uuid.uuid4()),
                "type": "blood_pressure",
                "time": at.isoformat(),
                "value": {"systolic": rng.randint(118, 168), "diastolic": rng.randint(70, 102)},
                "unit": "mm[Hg]",
            }
        )
    return out


def run(url: str, workdir: Path, history: int) -> tuple[float, float, float]:
    """Store ``history`` readings, then time a 1,000-reading sync, one delete and the next
    1,000-reading sync (seconds)."""
    seed_people(url, workdir)
    settings = Settings(var_dir=workdir, database_url=url, environment="development")
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    rng = random.Random(17)
    now = datetime.now(UTC)
    with factory() as session:
        user = session.scalars(select(User).where(User.handle == "allan")).one()
        patient = session.scalars(select(Patient).where(Patient.user_id == user.id)).one()
        session.expunge(patient)

    def sync(items: list[dict[str, Any]]) -> tuple[float, Any]:
        """One batch through the ingest pipeline: its seconds and its answer."""
        started = time.perf_counter()
        with transaction(factory) as session:
            answer = pipeline.ingest(
                session,
                settings,
                patient=session.merge(patient),
                source=SOURCE,
                items=items,
                entered_by=None,
                now=now,
            )
        return time.perf_counter() - started, answer

    stored = readings(history, now, rng)
    for start in range(0, len(stored), BATCH):
        sync(stored[start : start + BATCH])
    late = readings(BATCH, now, rng)
    sync_s, answer = sync(late)
    # The reading in the middle of the week (by time, so every run deletes alike): the
    # anchors of the half week after it hold it in their windows.
    by_client = {r["client_id"]: r for r in answer.results if r.get("status") == "created"}
    in_time = sorted(
        (item for item in late if item["client_id"] in by_client), key=lambda i: i["time"]
    )
    middle = by_client[in_time[len(in_time) // 2]["client_id"]]["id"]
    started = time.perf_counter()
    with transaction(factory) as session:
        pipeline.delete_reading(
            session,
            settings,
            patient=session.merge(patient),
            reading_id=str(middle),
            by=user.id,
            now=now,
        )
    delete_s = time.perf_counter() - started
    # The phone's next late batch into the same week: the statements have run often enough
    # by now for the driver to prepare them, and for the database to plan them generically.
    next_sync_s, _ = sync(readings(BATCH, now, rng))
    engine.dispose()
    return sync_s, delete_s, next_sync_s


def main() -> None:
    """Time the late sync and the delete with a dense week and with a tenth of it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", type=int, default=9000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    settle_startup_heap()  # as the server does once started (app.asgi)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        backends = args.backends.split(",")
        cluster = cluster_for(backends)
        try:
            for backend in backends:
                if backend == "postgresql" and cluster is None:
                    print("postgresql: no cluster (see tests/pg.py); skipped")
                    continue
                baseline = run(
                    fresh_database(backend, cluster, workdir), workdir, args.history // 10
                )
                dense = run(fresh_database(backend, cluster, workdir), workdir, args.history)
                print(
                    f"{backend}: history={args.history} "
                    f"sync_1000_s={dense[0]:.2f} delete_s={dense[1]:.2f} | "
                    f"history={args.history // 10} sync_1000_s={baseline[0]:.2f} "
                    f"delete_s={baseline[1]:.2f} | "
                    f"ratio sync={dense[0] / baseline[0]:.2f} delete={dense[1] / baseline[1]:.2f}"
                )
                print(
                    f"{backend}: the next sync: history={args.history + BATCH - 1} "
                    f"sync_1000_s={dense[2]:.2f} | history={args.history // 10 + BATCH - 1} "
                    f"sync_1000_s={baseline[2]:.2f} | ratio sync={dense[2] / baseline[2]:.2f}"
                )
        finally:
            if cluster is not None:
                cluster.stop()


if __name__ == "__main__":
    main()
