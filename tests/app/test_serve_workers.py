"""`selfcare serve --workers 2`: two API processes, one set of metrics, one flood limit.

A real uvicorn with two worker processes on both databases (issue 12, DESIGN §4.10). Each
request opens its own connection, so the kernel spreads them over the processes. Metrics in
multiprocess mode add up across the processes; the sync flood limit is kept per process at
1/N of the configured one, so that N processes together allow what one would.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import multiprocess
from prometheus_client.parser import text_string_to_metric_families

from tests.app.factories import batch, scalar
from tests.conftest import DatabaseFactory, seeded_copy
from tests.live import LiveServer

pytestmark = pytest.mark.e2e

REQUESTS = 120
FLOOD = 40
BURST = 20  # for the whole service: each of the two processes keeps 10


@pytest.fixture
def two_workers(
    backend: str, db_factories: dict[str, DatabaseFactory], tmp_path: Path
) -> Iterator[LiveServer]:
    url = seeded_copy(backend, db_factories[backend], tmp_path)
    live = LiveServer(url, tmp_path, sync_rate_per_minute="1", sync_burst=str(BURST))
    live.start("--workers", "2")
    try:
        yield live
    finally:
        live.stop()


def _requests_by_process(metrics_dir: Path) -> dict[str, float]:
    """Requests each process counted, from its own file of the multiprocess directory."""
    counted: dict[str, float] = {}
    for path in sorted(metrics_dir.glob("counter_*.db")):
        families = multiprocess.MultiProcessCollector.merge([str(path)], accumulate=True)
        total = sum(
            s.value
            for family in families
            if family.name == "selfcare_http_requests"
            for s in family.samples
            if s.name.endswith("_total") and s.labels.get("route") == "/v1/me"
        )
        if total:
            counted[path.stem.removeprefix("counter_")] = total
    return counted


def test_two_processes_share_the_load_the_metrics_and_the_flood_limit(
    two_workers: LiveServer, tmp_path: Path
) -> None:
    me = two_workers.token("allan")
    fresh = httpx.Limits(max_keepalive_connections=0)  # a new connection per request
    with httpx.Client(base_url=two_workers.base, timeout=30, limits=fresh) as http:
        for _ in range(REQUESTS):
            assert http.get("/v1/me", headers=me).status_code == 200
        per_process = _requests_by_process(tmp_path / "metrics")
        # Whichever process answers /metrics reports what all of them counted.
        scraped = {
            (s.name, s.labels.get("route"), s.labels.get("status")): s.value
            for f in text_string_to_metric_families(http.get("/metrics").text)
            for s in f.samples
        }
        assert scraped[("selfcare_http_requests_total", "/v1/me", "200")] == REQUESTS
        statuses = []
        for n in range(FLOOD):
            reading = scalar("pulse", 60 + n % 20, "/min", minutes_ago=60 + n)
            answer = http.post("/v1/patients/me/sync", json=batch(reading), headers=me)
            statuses.append(answer.status_code)
    allowed, limited = statuses.count(200), statuses.count(429)
    print(
        f"serve --workers 2: /v1/me per process {sorted(per_process.values())} "
        f"(of {REQUESTS}); sync flood of {FLOOD}: {allowed} allowed, {limited} limited "
        f"(burst {BURST} for the service, {BURST // 2} per process)"
    )
    assert sum(per_process.values()) == REQUESTS
    assert len(per_process) <= 2 and os.path.isdir(tmp_path / "metrics")
    assert allowed + limited == FLOOD
    # One process's share at least; never more than the service's burst (the refill of one
    # reading a minute per process adds at most one each during the flood).
    assert BURST // 2 <= allowed <= BURST + 2
