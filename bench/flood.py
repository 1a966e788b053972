"""AT-23 flood bench: one device floods sync; another patient's latency must not suffer.

A real uvicorn server with the default flood protection; a victim (Gunilla's CGM, one reading
a request) measures its latency alone, then while a flooder process hammers Allan's sync as
fast as it can. The flooder gets 429 with Retry-After once its burst is spent; the victim's
p95 should stay within 20 % of its p95 alone.

    .venv/bin/python bench/flood.py [--requests 100] [--backends sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import signal
import statistics
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

from app.auth.tokens import mint_token  # noqa: E402
from app.config import Settings  # noqa: E402
from bench import cluster_for  # noqa: E402
from bench.ingest import fresh_database, seed_people, serve  # noqa: E402


def _victim(base: str, token: str, count: int) -> list[float]:
    latencies = []
    start = datetime.now(UTC) - timedelta(days=1)
    with httpx.Client(
        base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60
    ) as client:
        for i in range(count):
            body = {
                "source": {"id": f"victim-{uuid.uuid4().hex[:6]}", "kind": "device"},
                "readings": [
                    {
                        "client_id": str(uuid.uuid4()),
                        "type": "cgm_glucose",
                        "time": (start + timedelta(minutes=5 * i)).isoformat(),
                        "value": 6.5,
                        "unit": "mmol/L",
                    }
                ],
            }
            began = time.perf_counter()
            response = client.post("/v1/patients/me/sync", json=body)
            took = time.perf_counter() - began
            latencies.append(took)
            assert response.status_code == 200, response.text
            time.sleep(max(0.0, 0.2 - took))  # a busy device: five uploads a second
    return latencies


def _flood(args: tuple[str, str, float]) -> dict[str, int]:
    base, token, seconds = args
    counts: dict[str, int] = {}
    deadline = time.monotonic() + seconds
    body = {
        "source": {"id": "flooder", "kind": "app"},
        "readings": [
            {
                "client_id": "same",
                "type": "weight",
                "time": datetime.now(UTC).isoformat(),
                "value": 80,
                "unit": "kg",
            }
        ],
    }
    with httpx.Client(
        base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60
    ) as client:
        while time.monotonic() < deadline:
            status = client.post("/v1/patients/me/sync", json=body).status_code
            counts[str(status)] = counts.get(str(status), 0) + 1
    return counts


def p95(values: list[float]) -> float:
    """The 95th percentile of the victim's latencies."""
    return statistics.quantiles(values, n=20)[-1]


def main() -> None:
    """Run the flood bench on each backend: the victim's latency alone and under flood."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="selfcare-flood-"))
    backends = args.backends.split(",")
    cluster = cluster_for(backends)
    try:
        for backend in backends:
            if backend == "postgresql" and cluster is None:
                continue
            url = fresh_database(backend, cluster, workdir)
            seed_people(url, workdir)
            process, base, _ = serve(url, workdir)
            settings = Settings(var_dir=workdir, database_url=url, environment="development")
            now = datetime.now(UTC)
            victim, flooder = (
                mint_token(settings, "gunilla", now=now),
                mint_token(settings, "allan", now=now),
            )
            try:
                _victim(base, victim, 20)  # warm up
                alone = _victim(base, victim, args.requests)
                ctx = mp.get_context("spawn")
                with ctx.Pool(1) as pool:
                    pending: Any = pool.map_async(_flood, [(base, flooder, 3600.0)])
                    time.sleep(2)  # the flooder spends its burst and is being refused
                    under = _victim(base, victim, args.requests)
                    pool.terminate()
                del pending
            finally:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=30)
            delta = p95(under) / p95(alone) - 1
            print(
                f"AT-23 {backend}: victim p95 alone {p95(alone) * 1000:.1f} ms, under flood "
                f"{p95(under) * 1000:.1f} ms, victim_p95_delta={delta:+.0%}",
                flush=True,
            )
    finally:
        if cluster is not None:
            cluster.stop()


if __name__ == "__main__":
    main()
