"""Rule-engine benchmark through the service (issue 4 §8, issue 17 §3), on SQLite and on a
throwaway PostgreSQL cluster.

1. Incremental evaluation cost per new reading — ingest, the window query, evaluation,
   recording — with 1,000 versus 1,000,000 readings of the patient's history in the
   database. The ratio must stay ≤ 1.5: the windows are read through the
   (patient, type, time) index, and only as far as the rules of the new readings' types
   reach, so the cost follows the batch and the windows.
2. The pure core's figures from bench/rules_core.py: the same ratio without a database,
   backtest throughput versus the incremental path, and the alert burden of the default
   library on the sample personas.

    .venv/bin/python bench/rules.py [--quick] [--backends sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, select  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402

from app.auth.models import User  # noqa: E402
from app.config import Settings  # noqa: E402
from app.db import make_engine, make_sessionmaker, new_id, transaction  # noqa: E402
from app.ingest import pipeline as ingest_pipeline  # noqa: E402
from app.patients.models import Patient  # noqa: E402
from app.readings.models import Reading, Source  # noqa: E402
from bench import cluster_for, rules_core  # noqa: E402
from bench.ingest import fresh_database, seed_people  # noqa: E402
from sync.wire import SourceIn  # noqa: E402
from tests import pg  # noqa: E402

NEW_READINGS = 300


def _history_rows(
    patient_id: str, source_id: str, indices: range, count: int, end: datetime
) -> list[dict[str, Any]]:
    """Rows ``indices`` of a history of ``count`` readings, 10 minutes apart, ending at end."""
    rows = []
    for i in indices:
        at = end - timedelta(minutes=10 * (count - i))
        systolic, diastolic = 120 + i % 15, 72 + i % 9
        values = {"systolic": str(systolic), "diastolic": str(diastolic)}
        rows.append(
            {
                "id": new_id(),
                "patient_id": patient_id,
                "source_id": source_id,
                "client_id": f"h{i}",
                "type": "blood_pressure",
                "time": at,
                "utc_offset_minutes": 60,
                "end_time": None,
                "values": values,
                "unit": "mm[Hg]",
                "original_values": values,
                "original_unit": "mm[Hg]",
                "loinc": "85354-9",
                "context": {},
                "fingerprint": "x",
                "status": "final",
                "duplicate_of": None,
                "received_at": end,
                "entered_by": None,
                "deleted_at": None,
                "deleted_by": None,
            }
        )
    return rows


ROUNDS = 5


@dataclass
class Prepared:
    """A fresh database holding a patient's history, ready for timed batches."""

    factory: sessionmaker[Session]
    settings: Settings
    patient_id: str
    now: datetime


def prepare(
    history: int, workdir: Path, backend: str = "sqlite", cluster: pg.Cluster | None = None
) -> Prepared:
    """A fresh database with the personas and ``history`` old readings of Allan's."""
    url = fresh_database(backend, cluster, workdir)
    seed_people(url, workdir)
    settings = Settings(var_dir=workdir, database_url=url, environment="development")
    factory = make_sessionmaker(make_engine(url))
    now = datetime.now(UTC)
    with transaction(factory) as session:
        user = session.scalars(select(User).where(User.handle == "allan")).one()
        patient = session.scalars(select(Patient).where(Patient.user_id == user.id)).one()
        source = Source(
            patient_id=patient.id,
            client_source_id="history",
            kind="app",
            first_seen=now,
            last_seen=now,
        )
        session.add(source)
        session.flush()
        patient_id, source_id = patient.id, source.id
    for start in range(0, history, 50_000):
        indices = range(start, min(history, start + 50_000))
        chunk = _history_rows(patient_id, source_id, indices, history, now - timedelta(days=1))
        with transaction(factory) as session:
            session.execute(insert(Reading), chunk)
    return Prepared(factory, settings, patient_id, now)


def incremental_cost(prepared: Prepared, round_: int) -> float:
    """Seconds per new reading, ingested in batches of 10: a reading every 2 minutes from
    20 hours ago, round k's 20·k seconds later than the first round's."""
    src = SourceIn(id="bench-phone", kind="app")
    first = prepared.now - timedelta(hours=20) + timedelta(seconds=20 * round_)
    new = [
        {
            "client_id": str(uuid.uuid4()),
            "type": "blood_pressure",
            "time": (first + timedelta(minutes=2 * i)).isoformat(),
            "value": {"systolic": 125 + i % 10, "diastolic": 78},
            "unit": "mm[Hg]",
        }
        for i in range(NEW_READINGS)
    ]
    started = time.perf_counter()
    for i in range(0, NEW_READINGS, 10):
        with transaction(prepared.factory) as session:
            patient = session.get(Patient, prepared.patient_id)
            assert patient is not None
            ingest_pipeline.ingest(
                session,
                prepared.settings,
                patient=patient,
                source=src,
                items=new[i : i + 10],
                entered_by=None,
                now=prepared.now,
            )
    return (time.perf_counter() - started) / NEW_READINGS


def costs(small: Prepared, big: Prepared) -> tuple[float, float]:
    """The median cost per reading of each, measured in turns (small, big, small, …).

    One measurement is a third of a second; on a shared machine a single pair gave ratios
    from 0.7 to 1.6 for the same code. Both databases get the same new readings in the
    same rounds, so what differs between them is only the history.
    """
    small_costs, big_costs = [], []
    for round_ in range(ROUNDS):
        small_costs.append(incremental_cost(small, round_))
        big_costs.append(incremental_cost(big, round_))
    return statistics.median(small_costs), statistics.median(big_costs)


def main() -> None:
    """Run the rule-engine bench and print the costs and their ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 instead of 1,000,000")
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    big = 100_000 if args.quick else 1_000_000
    workdir = Path(tempfile.mkdtemp(prefix="selfcare-bench-rules-"))
    backends = args.backends.split(",")
    cluster = cluster_for(backends)
    try:
        for backend in backends:
            small = prepare(1_000, workdir, backend, cluster)
            large = prepare(big, workdir, backend, cluster)
            small_cost, big_cost = costs(small, large)
            print(
                f"service path ({backend}): {small_cost * 1000:.2f} ms/reading with 1,000 "
                f"readings of history, {big_cost * 1000:.2f} ms with {big:,} "
                f"(medians of {ROUNDS} rounds in turns): "
                f"ratio {big_cost / small_cost:.2f} (must be ≤ 1.5)",
                flush=True,
            )
    finally:
        if cluster is not None:
            cluster.stop()
    rules_core.main(["--quick"] if args.quick else [])


if __name__ == "__main__":
    main()
