"""Sync under concurrency against a real uvicorn, on both databases.

AT-10: 50 identical batches at once, 100 rounds: exactly one copy of each reading, identical
answers, no 5xx.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.readings.models import Reading
from tests.live import LiveServer

pytestmark = pytest.mark.e2e
CLIENTS = 50
ROUNDS = 100


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    live = LiveServer(db_url, tmp_path, sync_rate_per_minute="0")
    live.start()
    try:
        yield live
    finally:
        live.stop()


def _round_batch(round_no: int, cursor: str | None) -> dict[str, Any]:
    start = datetime.now(UTC) - timedelta(days=2, minutes=round_no * 10)
    readings = [
        {
            "client_id": f"r{round_no}-{i}-{uuid.uuid4()}",
            "type": "weight",
            "time": (start + timedelta(minutes=i)).isoformat(),
            "value": 80 + i / 10,
            "unit": "kg",
        }
        for i in range(3)
    ]
    # The phone sends its change-feed cursor, as a real one does: each answer carries the
    # changes since the last round, not the first 500 of the patient's whole record.
    return {"source": {"id": "at10-phone", "kind": "app"}, "readings": readings, "cursor": cursor}


def test_identical_concurrent_batches_store_each_reading_once(
    server: LiveServer, session: Session
) -> None:
    headers = server.token("allan")
    # Idle connections are dropped by the client before the server's keep-alive timeout
    # (5 s) can close one under a request being sent on it.
    limits = httpx.Limits(keepalive_expiry=1)
    clients = [
        httpx.Client(base_url=server.base, headers=headers, timeout=60, limits=limits)
        for _ in range(CLIENTS)
    ]
    barrier = threading.Barrier(CLIENTS)
    server_errors = 0
    expected = 0

    def post(client: httpx.Client, body: dict[str, Any]) -> tuple[int, list[str], str | None]:
        barrier.wait()
        response = client.post("/v1/patients/me/sync", json=body)
        if response.status_code != 200:
            return response.status_code, [], None
        answer = response.json()
        return 200, [r["id"] for r in answer["results"]], answer["cursor"]

    with ThreadPoolExecutor(CLIENTS) as pool:
        cursor = None
        for round_no in range(ROUNDS):
            body = _round_batch(round_no, cursor)
            answers = list(pool.map(post, clients, [body] * CLIENTS))
            server_errors += sum(status >= 500 for status, _, _ in answers)
            assert {status for status, _, _ in answers} == {200}, answers
            assert len({tuple(ids) for _, ids, _ in answers}) == 1  # everyone got the same ids
            expected += len(body["readings"])
            cursor = answers[0][2]
    for client in clients:
        client.close()

    stored = session.scalar(
        select(func.count()).select_from(Reading).where(Reading.client_id.like("r%-%"))
    )
    distinct = session.scalar(select(func.count(func.distinct(Reading.client_id))))
    dup_rows = (stored or 0) - (distinct or 0)
    lost = expected - (distinct or 0)
    print(f"AT-10 rounds={ROUNDS} dup_rows={dup_rows} lost={lost} 5xx={server_errors}")
    assert (dup_rows, lost, server_errors) == (0, 0, 0)
