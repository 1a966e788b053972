"""Crash consistency against a real uvicorn, on both databases.

AT-12: 50 uploaders, each a :class:`sync.client.SyncClient` with its own queue file and
source, upload Allan's readings in small batches while the server is SIGKILLed at random
moments (seeded) and restarted. Every sync request is written in a ledger: the batch of
client_ids it carried and whether an answer came back. While the server is down, every batch
that got no answer must be in the database completely or not at all. At the end every
acknowledged reading is stored exactly once, nothing else is stored, and on SQLite
``PRAGMA integrity_check`` says ``ok``.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from app.readings.models import Reading, Source
from sync.client import SyncClient, SyncUnavailable
from tests.live import LiveServer

pytestmark = pytest.mark.e2e

UPLOADERS = 50
PER_UPLOADER = 40
BATCH = 10
KILLS = 4
SEED = 20261212
RUN_LIMIT_S = 300  # a hang guard, not a performance bar
STOCKHOLM_WINTER = timezone(timedelta(hours=1))


@dataclass
class Sent:
    """One sync request: who sent which batch, and what came back (None: no answer)."""

    source: str
    client_ids: tuple[str, ...]
    status: int | None = None
    error: str | None = None
    busy: bool = False  # 503 "database busy" with Retry-After: nothing saved, come back soon


class Ledger:
    """Every sync request of every uploader, in the order they were sent."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entries: list[Sent] = []
        self.acked: set[tuple[str, str]] = set()

    def sent(self, source: str, client_ids: tuple[str, ...]) -> Sent:
        entry = Sent(source, client_ids)
        with self.lock:
            self.entries.append(entry)
        return entry

    def answered(self, entry: Sent, status: int, *, busy: bool = False) -> None:
        with self.lock:
            entry.status, entry.busy = status, busy
            if status == 200:
                self.acked.update((entry.source, c) for c in entry.client_ids)

    def failed(self, entry: Sent, error: BaseException) -> None:
        with self.lock:
            entry.error = f"{type(error).__name__}: {error}"

    def snapshot(self) -> list[Sent]:
        with self.lock:
            return list(self.entries)

    def acked_count(self) -> int:
        with self.lock:
            return len(self.acked)


class LedgerTransport(httpx.BaseTransport):
    """A real HTTP transport that writes every sync request and its fate in the ledger."""

    def __init__(self, ledger: Ledger, source: str) -> None:
        self.inner = httpx.HTTPTransport()
        self.ledger = ledger
        self.source = source

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method != "POST" or not request.url.path.endswith("/sync"):
            return self.inner.handle_request(request)
        body = json.loads(request.read())
        entry = self.ledger.sent(self.source, tuple(r["client_id"] for r in body["readings"]))
        try:
            response = self.inner.handle_request(request)
            response.read()  # an answer counts only when all of it arrived
        except BaseException as exc:
            self.ledger.failed(entry, exc)
            raise
        # Backpressure is an answer of the protocol, not a fault: with fifty uploaders on two
        # loaded cores a request may wait past the lock timeout behind the others, and is told
        # (503, Retry-After, "busy") that nothing was saved. The client retries it; whether
        # it is then stored exactly once is what the checks below count.
        busy = (
            response.status_code == 503
            and "retry-after" in response.headers
            and b"busy" in response.content
        )
        self.ledger.answered(entry, response.status_code, busy=busy)
        return response

    def close(self) -> None:
        self.inner.close()


def _readings(uploader: int, start: datetime) -> list[dict[str, Any]]:
    """Morning weights and some blood pressures, each at its own half hour.

    No two readings are one measurement (they are minutes apart), and there are about as many
    readings a day as a family of devices makes, so the plan's rules see realistic windows.
    """
    items: list[dict[str, Any]] = []
    for j in range(PER_UPLOADER):
        slot = j * UPLOADERS + uploader  # uploaders interleave in time, like devices do
        at = (start + timedelta(minutes=30 * slot)).astimezone(STOCKHOLM_WINTER).isoformat()
        client_id = f"at12-{uploader:02d}-{j:03d}"
        if slot % 5 == 0:
            items.append(
                {
                    "client_id": client_id,
                    "type": "blood_pressure",
                    "time": at,
                    "value": {"systolic": 118 + slot % 37, "diastolic": 72 + slot % 19},
                    "unit": "mm[Hg]",
                    "context": {"position": "sitting", "arm": "left"},
                }
            )
        else:
            items.append(
                {
                    "client_id": client_id,
                    "type": "weight",
                    "time": at,
                    "value": round(78 + (slot % 53) / 10, 1),
                    "unit": "kg",
                }
            )
    return items


def _stored(session: Session) -> list[tuple[str, str, str, str | None]]:
    """(source, client_id, id, duplicate_of) of every stored reading, in one statement."""
    query = select(
        Source.client_source_id, Reading.client_id, Reading.id, Reading.duplicate_of
    ).join(Source, Source.id == Reading.source_id)
    return [(s, c, i, d) for s, c, i, d in session.execute(query).all()]


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    live = LiveServer(db_url, tmp_path, sync_rate_per_minute="0")
    live.start()
    try:
        yield live
    finally:
        live.stop()


def test_sigkill_during_uploads_loses_and_duplicates_nothing(
    server: LiveServer, session: Session, backend: str, tmp_path: Path
) -> None:
    token = server.token("allan")["Authorization"].removeprefix("Bearer ")
    ledger = Ledger()
    span = timedelta(minutes=30 * UPLOADERS * PER_UPLOADER + 60)  # about six weeks
    start = datetime.now(UTC).replace(microsecond=0) - span
    sent_readings = {i: _readings(i, start) for i in range(UPLOADERS)}
    total = UPLOADERS * PER_UPLOADER
    stop = threading.Event()

    def upload(i: int) -> tuple[dict[str, str], int, int]:
        source = f"at12-phone-{i:02d}"
        transport = LedgerTransport(ledger, source)
        client = SyncClient(
            server.base,
            token,
            source={"id": source, "kind": "app", "name": "Min hälsa"},
            queue_path=tmp_path / f"queue-{i:02d}.sqlite",
            transport=transport,
            batch_size=BATCH,
            max_attempts=4,
            backoff_base=0.05,
            backoff_cap=0.5,
            rng=random.Random(SEED + i),
            timeout=60,
        )
        unavailable = 0
        try:
            client.enqueue_many(sent_readings[i])
            while client.pending():
                if stop.is_set():
                    raise RuntimeError(f"{source}: given up with {client.pending()} queued")
                try:
                    client.sync_once()
                except SyncUnavailable:
                    unavailable += 1
                    time.sleep(0.5)  # the server is down: come back a little later
            return client.acknowledged(), len(client.rejected()), unavailable
        finally:
            client.close()
            transport.close()

    rng = random.Random(SEED)
    thresholds = sorted(rng.uniform(0.05, 0.9) * total for _ in range(KILLS))
    checks = partial_batches = in_flight = in_flight_committed = 0
    acked_lost_while_down = 0
    deadline = time.monotonic() + RUN_LIMIT_S

    def check_while_down() -> tuple[int, int]:
        """All or nothing for every unanswered batch; everything answered is stored."""
        nonlocal checks
        entries = ledger.snapshot()
        present = {(s, c) for s, c, _, _ in _stored(session)}
        partial = lost = 0
        for entry in entries:
            keys = [(entry.source, c) for c in entry.client_ids]
            found = sum(key in present for key in keys)
            if entry.status == 200:
                lost += len(keys) - found
            elif 0 < found < len(keys):
                partial += 1
                print(f"AT-12 PARTIAL {entry.source} {found}/{len(keys)} {entry.client_ids}")
        checks += 1
        return partial, lost

    with ThreadPoolExecutor(UPLOADERS) as pool:
        futures: list[Future[tuple[dict[str, str], int, int]]] = [
            pool.submit(upload, i) for i in range(UPLOADERS)
        ]
        try:
            for threshold in thresholds:
                while ledger.acked_count() < threshold:
                    assert not all(f.done() for f in futures), "uploaders ended before a kill"
                    assert time.monotonic() < deadline, "the uploads did not progress"
                    time.sleep(0.01)
                time.sleep(rng.uniform(0.0, 0.2))
                pending = [e for e in ledger.snapshot() if e.status is None and e.error is None]
                server.kill()
                # Let the requests that were on the wire learn that the server is gone.
                settle = time.monotonic() + 10
                while time.monotonic() < settle and any(
                    e.status is None and e.error is None for e in pending
                ):
                    time.sleep(0.01)
                partial, lost = check_while_down()
                partial_batches += partial
                acked_lost_while_down += lost
                present = {(s, c) for s, c, _, _ in _stored(session)}
                for entry in pending:
                    if entry.status is None:
                        in_flight += 1
                        in_flight_committed += all(
                            (entry.source, c) in present for c in entry.client_ids
                        )
                server.start(answering=True, timeout=180)  # uploaders already back at it
            results = [f.result(timeout=max(1.0, deadline - time.monotonic())) for f in futures]
        finally:
            stop.set()

    entries = ledger.snapshot()
    server_errors = sum(
        1 for e in entries if e.status is not None and e.status >= 500 and not e.busy
    )
    busy = sum(1 for e in entries if e.busy)
    unavailable = sum(u for _, _, u in results)
    rejected = sum(r for _, r, _ in results)
    acked: dict[tuple[str, str], str] = {}
    for i, (acknowledged, _, _) in enumerate(results):
        acked.update({(f"at12-phone-{i:02d}", c): rid for c, rid in acknowledged.items()})
    enqueued = {
        (f"at12-phone-{i:02d}", r["client_id"]) for i, items in sent_readings.items() for r in items
    }

    server.stop()
    rows = _stored(session)
    by_key = Counter((s, c) for s, c, _, _ in rows)
    ids = {(s, c): rid for s, c, rid, _ in rows}
    lost = sum(1 for key, rid in acked.items() if ids.get(key) != rid)
    duplicated = sum(n - 1 for n in by_key.values() if n > 1)
    extra = sum(1 for key in by_key if key not in acked)
    never_enqueued = sum(1 for key in by_key if key not in enqueued)
    cross_source = sum(1 for *_, dup in rows if dup is not None)
    integrity = "n/a"
    if backend == "sqlite":
        integrity = str(session.execute(text("PRAGMA integrity_check")).scalar())

    print(
        f"AT-12 rounds={checks} acked={len(acked)} lost={lost} duplicated={duplicated} "
        f"partial_batches={partial_batches}"
    )
    print(
        f"AT-12 detail backend={backend} requests={len(entries)} in_flight={in_flight} "
        f"in_flight_committed={in_flight_committed} checks={checks} "
        f"acked_missing_while_down={acked_lost_while_down} extra={extra} "
        f"sync_unavailable={unavailable} busy_503={busy} 5xx={server_errors} "
        f"integrity={integrity}"
    )
    if server_errors or partial_batches or lost or duplicated:
        print(_log_excerpt(server.log_path))
    assert checks == KILLS
    assert len(acked) == len(enqueued) == total and rejected == 0
    assert (lost, duplicated, partial_batches, acked_lost_while_down) == (0, 0, 0, 0)
    assert (extra, never_enqueued, cross_source, len(rows)) == (0, 0, 0, total)
    if backend == "sqlite":
        assert integrity == "ok"
    assert in_flight > 0, "no kill hit a batch on the wire: the test proved nothing"
    assert server_errors == 0, f"{server_errors} answers were 5xx (the log above says why)"
    assert busy < len(entries) // 10, f"{busy} of {len(entries)} answers were 'busy'"


def _log_excerpt(path: Path, limit: int = 40) -> str:
    """The server log's error lines and the requests answered 5xx."""
    lines = path.read_text(errors="replace").splitlines()
    picked = [
        line
        for line in lines
        if " 50" in line
        and "HTTP/1.1" in line
        or line.startswith(("ERROR", "sqlite3.", "sqlalchemy.exc.", "psycopg."))
    ]
    return "\n".join(["AT-12 server log (errors):", *picked[:limit]])
