"""Ingest benchmark (AT-22): end-to-end sync rate versus a raw bulk insert of the same rows.

For each database (SQLite file, throwaway PostgreSQL cluster) and batch size (10, 1,000):
a real uvicorn server, and a load generator in a separate process on loopback that posts
batches from several connections. Each reading goes the whole way — normalisation, dedup,
rules, audit, change feed, one transaction per batch. The baseline inserts the same rows
straight into the same table of a fresh database with the service's own bulk insert
(``app.bulk``: ``COPY`` on PostgreSQL, one ``executemany`` on SQLite), one transaction per
batch. Both run in the same process tree in the same minute, so the ratio is what counts.

With ``--patients N`` the load is N patients' streams (Gunilla and copies of her, each with
her plan), connection k posting as patient k mod N, instead of one patient's stream from every
connection (whose syncs the patient's feed lock takes in turn, by design).

    .venv/bin/python bench/ingest.py [--readings 20000] [--connections 4] [--patients 1]
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app import bulk, migrate  # noqa: E402
from app.auth.tokens import mint_token  # noqa: E402
from app.config import Settings  # noqa: E402
from app.db import make_engine, make_sessionmaker, new_id, transaction  # noqa: E402
from app.patients.models import Patient  # noqa: E402
from app.readings.models import Reading, Source  # noqa: E402
from app.readings.repository import READINGS  # noqa: E402
from bench import cluster_for  # noqa: E402
from sync.normalise import NormalisedReading, normalise_reading  # noqa: E402
from tests import pg  # noqa: E402

RSS_BOUND_MIB = 300  # one API process with 1,000-reading batches from four connections


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_readings(count: int, start: datetime) -> list[dict[str, Any]]:
    """Gunilla's kind of data, the high-volume case: a CGM value every five minutes with a
    daily rhythm and now and then a low, and a fingerstick glucose every morning."""
    items: list[dict[str, Any]] = []
    for i in range(count):
        at = start + timedelta(minutes=5 * i)
        if i % 288 == 84:  # 07:00 fingerstick
            items.append(
                {
                    "client_id": str(uuid.uuid4()),
                    "type": "glucose",
                    "time": at.isoformat(),
                    "value": 6.8,
                    "unit": "mmol/L",
                }
            )
            continue
        level = 7.5 + 2.5 * math.sin(i / 288 * 2 * math.pi) + (i % 7) / 10
        if i % 500 < 4:
            level = 3.6  # a short low
        items.append(
            {
                "client_id": str(uuid.uuid4()),
                "type": "cgm_glucose",
                "time": at.isoformat(),
                "value": round(level, 1),
                "unit": "mmol/L",
            }
        )
    return items


def _post_batches(
    args: tuple[str, str, list[list[dict[str, Any]]]],
) -> tuple[int, dict[int, int]]:
    """Post batches as an app does; (readings acknowledged, answers that asked to wait by
    status: 429 a rate limit, 503 the database busy).

    A 429 or 503 is waited out as its Retry-After says and the same batch sent again (the
    server answers a repeat with ``duplicate``, so nothing is stored twice); any other
    failure stops the bench.
    """
    base, token, batches = args
    acked = 0
    waits = {429: 0, 503: 0}
    with httpx.Client(
        base_url=base, timeout=120, headers={"Authorization": f"Bearer {token}"}
    ) as client:
        cursor = None  # like a real app: each device keeps its place in the change feed
        for batch in batches:
            body = {
                "source": {"id": "bench-app", "kind": "app"},
                "readings": batch,
                "cursor": cursor,
            }
            while True:
                response = client.post("/v1/patients/me/sync", json=body)
                if response.status_code not in (429, 503):
                    break
                waits[response.status_code] += 1
                time.sleep(min(float(response.headers.get("Retry-After", "1")), 5.0))
            if response.status_code != 200:
                raise RuntimeError(f"sync answered {response.status_code}: {response.text}")
            answer = response.json()
            cursor = answer["cursor"]
            acked += sum(r["status"] in ("created", "duplicate") for r in answer["results"])
    return acked, waits


def _started(ready: Any) -> None:
    """Pool initializer: this process is up, its imports done; wait for the others."""
    ready.wait()


def load(
    base: str,
    tokens: list[str],
    readings: list[dict[str, Any]],
    batch_size: int,
    connections: int,
) -> tuple[float, int, dict[int, int]]:
    """Post every reading from ``connections`` worker processes, connection k as the patient
    of ``tokens[k % len(tokens)]``; seconds, acked, waits."""
    batches = [readings[i : i + batch_size] for i in range(0, len(readings), batch_size)]
    shares = [(base, tokens[k % len(tokens)], batches[k::connections]) for k in range(connections)]
    context = mp.get_context("spawn")
    ready = context.Barrier(connections + 1)
    with context.Pool(connections, initializer=_started, initargs=(ready,)) as pool:
        # The clock starts once every load process has started and imported this module
        # (about a second of CPU each, which the 2-core machine otherwise spent during the
        # first seconds of the load, on the server's cores: until 2026-12-06 it did).
        ready.wait()
        started = time.perf_counter()
        results = pool.map(_post_batches, shares)
        elapsed = time.perf_counter() - started
    waits = {status: sum(r[1][status] for r in results) for status in (429, 503)}
    return elapsed, sum(r[0] for r in results), waits


def raw_insert(url: str, readings: list[dict[str, Any]], batch_size: int) -> float:
    """Seconds to insert the same normalised rows straight into ``readings``."""
    now = datetime.now(UTC)
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    with transaction(factory) as session:
        patient = Patient(personnummer="198804302381", display_name="Raw", created_at=now)
        session.add(patient)
        session.flush()
        source = Source(
            patient_id=patient.id, client_source_id="raw", kind="app", first_seen=now, last_seen=now
        )
        session.add(source)
        session.flush()
        patient_id, source_id = patient.id, source.id
    rows = []
    for item in readings:
        n = normalise_reading(item, now=now)
        assert isinstance(n, NormalisedReading)
        rows.append(
            {
                "id": new_id(),
                "patient_id": patient_id,
                "source_id": source_id,
                "client_id": n.client_id,
                "type": n.type,
                "time": n.time,
                "utc_offset_minutes": n.utc_offset_minutes,
                "end_time": n.end_time,
                "values": {k: str(v) for k, v in n.values.items()},
                "unit": n.unit,
                "original_values": {k: str(v) for k, v in n.original_values.items()},
                "original_unit": n.original_unit,
                "loinc": n.loinc,
                "context": n.context,
                "fingerprint": n.fingerprint,
                "status": "final",
                "received_at": now,
            }
        )
    # The service's own bulk insert (COPY on PostgreSQL, executemany on SQLite): the baseline
    # is the fastest way these rows go in, not a slower one the service no longer uses.
    started = time.perf_counter()
    for i in range(0, len(rows), batch_size):
        with transaction(factory) as session:
            bulk.insert_rows(session, READINGS, rows[i : i + batch_size])
    elapsed = time.perf_counter() - started
    engine.dispose()
    return elapsed


def fresh_database(backend: str, cluster: pg.Cluster | None, workdir: Path) -> str:
    """A new database, migrated to the newest schema (seed it with seed_people)."""
    from sqlalchemy import create_engine, text

    name = "b_" + uuid.uuid4().hex[:10]
    if backend == "sqlite":
        url = f"sqlite:///{workdir / (name + '.db')}"
    else:
        assert cluster is not None
        admin = create_engine(cluster.admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        url = cluster.url(name)
    migrate.upgrade(url)
    return url


def seed_people(url: str, workdir: Path, copies: int = 0) -> list[str]:
    """The personas and plans, without readings; and ``copies`` more patients like Gunilla,
    each with her plan. The handles of Gunilla and her copies."""
    import json

    from app.seed import load_people, load_plan

    settings = Settings(var_dir=workdir, database_url=url, environment="development")
    engine = make_engine(url)
    personas = json.loads((settings.sample_data_dir / "personas.json").read_text())
    (gunilla,) = (p for p in personas["patients"] if p["handle"] == "gunilla")
    handles = ["gunilla"] + [f"gunilla-{n}" for n in range(1, copies + 1)]
    for n, handle in enumerate(handles[1:], start=1):
        personas["users"].append(
            {"handle": handle, "display_name": f"Gunilla {n}", "role": "patient"}
        )
        personas["patients"].append(
            {**gunilla, "handle": handle, "personnummer": _personnummer(f"19790921{n:03d}")}
        )
    with transaction(make_sessionmaker(engine)) as session:
        now = datetime.now(UTC)
        loaded = load_people(session, personas, now)
        plans = settings.sample_data_dir / "plans"
        for handle, patient in loaded["patients"].items():
            plan = plans / ("gunilla.json" if handle.startswith("gunilla") else f"{handle}.json")
            load_plan(session, patient, plan, None, now)
    engine.dispose()
    return handles


def _personnummer(first_eleven: str) -> str:
    """YYYYMMDDNNN with the check digit the personnummer library accepts."""
    from personnummer import personnummer

    return next(first_eleven + d for d in "0123456789" if personnummer.valid(first_eleven + d))


def serve(
    url: str, workdir: Path, extra_env: dict[str, str] | None = None, workers: int = 1
) -> tuple[subprocess.Popen[bytes], str, dict[str, str]]:
    """Start ``selfcare serve`` (``--workers``) on a free port; wait for /healthz."""
    port = _free_port()
    env = {
        **os.environ,
        "SELFCARE_DATABASE_URL": url,
        "SELFCARE_VAR_DIR": str(workdir),
        "SELFCARE_PORT": str(port),
        "SELFCARE_SCHEDULER_ENABLED": "0",
        "SELFCARE_ENVIRONMENT": "development",  # accepts the bench's dev-issuer tokens
        **(extra_env or {}),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--workers", str(workers)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return process, base, env
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("server did not start")


def _peak_rss_mib(pid: int) -> float:
    """The peak resident memory so far (Linux ``VmHWM``) of the server's largest process
    (itself, or with ``--workers`` the largest of the processes it started), in MiB."""
    peaks = [
        int(line.split()[1]) / 1024
        for each in (pid, *_children(pid))
        for line in Path(f"/proc/{each}/status").read_text().splitlines()
        if line.startswith("VmHWM:")
    ]
    if not peaks:
        raise RuntimeError("no VmHWM in /proc: peak memory is measured on Linux only")
    return max(peaks)


def _children(pid: int) -> list[int]:
    """Every process below ``pid`` (uvicorn's workers and their helpers)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            found += [int(child), *_children(int(child))]
    return found


def count_readings(url: str) -> int:
    """How many readings the database holds."""
    from sqlalchemy import func, select

    engine = make_engine(url)
    with engine.connect() as conn:
        n = int(conn.execute(select(func.count()).select_from(Reading.__table__)).scalar_one())
    engine.dispose()
    return n


def main() -> None:
    """Run the ingest bench per backend and batch size and print e2e versus raw rates."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=20_000)
    parser.add_argument(
        "--small-readings",
        type=int,
        default=3_000,
        help="readings for the 10-reading batches (they are slow by nature)",
    )
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument(
        "--patients", type=int, default=1, help="patients whose streams the load is (1: Gunilla's)"
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="API processes (`selfcare serve --workers`)"
    )
    parser.add_argument(
        "--rss-bound-mib",
        type=int,
        default=RSS_BOUND_MIB,
        help="the server's peak resident memory must stay under this (issue 17 §7)",
    )
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="selfcare-bench-"))
    backends = args.backends.split(",")
    cluster = cluster_for(backends)
    print(
        f"API processes: {args.workers}, load connections: {args.connections}, "
        f"patients: {args.patients}"
    )
    print(
        f"{'database':<11} {'batch':>6} {'readings':>9} {'e2e r/s':>9} {'raw r/s':>10} "
        f"{'ratio':>7}  stored==acked"
    )
    try:
        for backend in backends:
            for batch_size, count in ((10, args.small_readings), (1000, args.readings)):
                readings = make_readings(
                    count, datetime.now(UTC) - timedelta(minutes=5 * count + 60)
                )
                url = fresh_database(backend, cluster, workdir)
                handles = seed_people(url, workdir, args.patients - 1)
                # The flood limit per device (600 syncs a minute, AT-23 and bench/flood.py) would
                # make the 10-reading load, one patient's 15 syncs a second, measure the
                # limiter's Retry-After instead of the work; the load is many devices' worth.
                process, base, _env = serve(
                    url, workdir, {"SELFCARE_SYNC_RATE_PER_MINUTE": "0"}, args.workers
                )
                settings = Settings(var_dir=workdir, database_url=url, environment="development")
                tokens = [mint_token(settings, h, now=datetime.now(UTC)) for h in handles]
                try:
                    seconds, acked, waits = load(
                        base, tokens, readings, batch_size, args.connections
                    )
                    peak_mib = _peak_rss_mib(process.pid)
                finally:
                    process.send_signal(signal.SIGTERM)
                    process.wait(timeout=30)
                stored = count_readings(url)
                raw_url = fresh_database(backend, cluster, workdir)
                raw_seconds = raw_insert(raw_url, readings, batch_size)
                e2e_rate, raw_rate = acked / seconds, count / raw_seconds
                print(
                    f"{backend:<11} {batch_size:>6} {count:>9} {e2e_rate:>9.0f} "
                    f"{raw_rate:>10.0f} {e2e_rate / raw_rate:>7.1%}  "
                    f"{stored == acked} (waits 429={waits[429]} 503={waits[503]})  "
                    f"server peak RSS {peak_mib:.0f} MiB "
                    f"(bound {args.rss_bound_mib} MiB: "
                    f"{'ok' if peak_mib <= args.rss_bound_mib else 'OVER'})",
                    flush=True,
                )
    finally:
        if cluster is not None:
            cluster.stop()


if __name__ == "__main__":
    main()
