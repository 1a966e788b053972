"""The reference patient-app client: an offline queue, batched sync with retries, a mirror.

Everything the client knows lives in one SQLite file (WAL, ``synchronous=FULL``), so a
client killed at any moment carries on when a new :class:`SyncClient` opens the same file:

* ``queue``: readings waiting to be sent, oldest first. A reading leaves the queue only in
  the transaction that records the server's answer to it.
* ``acknowledged``: the server's answer to each sent reading (created or duplicate, its id).
* ``rejected``: readings the server refused, with its errors. They are not sent again and
  never hold up the readings behind them.
* ``mirror``: the patient's data as the change feed tells it, one row per (entity, id);
  an ``upsert`` replaces the row, a ``delete`` removes it.
* ``meta``: the feed cursor, and the server, patient and source the file belongs to.

Exactly once: a batch is sent again unchanged (same source id, same client_ids) until an
answer arrives. The server answers a repeat with ``duplicate`` and the first id, so an
answer lost after the server committed costs one repeat and nothing more; the changes of
the lost answer come again because the cursor only moves with an answer.

Retries: network errors, 408, 429 and 5xx are tried again, at most ``max_attempts`` times
per request, after ``uniform(0, min(backoff_cap, backoff_base * 2**n))`` seconds (full
jitter), or after ``Retry-After`` when the server sends one (seconds or an HTTP date). A
413 halves the batch. A 410 (cursor too old), or a 400 while a cursor was sent (a cursor
the server no longer accepts), re-reads: the mirror is emptied and rebuilt from the feed
and the readings list, then the sync goes on. Other 4xx end the sync with
:class:`SyncRejected`; the queue is kept.

Exceptions::

    SyncError               the answer broke the protocol (nothing was recorded)
     ├── SyncRejected       the server refused the request (4xx): status and problem body
     └── SyncUnavailable    still failing after max_attempts, or Retry-After beyond max_delay

One client per file at a time, from one thread.
"""

from __future__ import annotations

import json
import random
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from rules.catalogue import json_number
from sync.wire import SourceIn

Clock = Callable[[], datetime]
RETRY_STATUSES = frozenset({408, 429})
PAGE_LIMIT = 500
READINGS_PAGE_LIMIT = 1000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS queue (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    client_id TEXT NOT NULL UNIQUE,
    reading TEXT NOT NULL,
    enqueued_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS acknowledged (
    client_id TEXT PRIMARY KEY,
    id TEXT NOT NULL,
    status TEXT NOT NULL,
    duplicate_of TEXT,
    acknowledged_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS rejected (
    client_id TEXT PRIMARY KEY,
    reading TEXT NOT NULL,
    errors TEXT NOT NULL,
    rejected_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS mirror (
    entity TEXT NOT NULL,
    id TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (entity, id)
);
"""


class SyncError(Exception):
    """The sync could not be completed; what was not recorded is still queued."""


class SyncRejected(SyncError):
    """The server refused the request (a 4xx that retrying will not change)."""

    def __init__(self, status: int, problem: Mapping[str, Any]) -> None:
        detail = problem.get("detail") or problem.get("title") or ""
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.problem = dict(problem)


class SyncUnavailable(SyncError):
    """The server could not be reached or kept failing; try again later."""

    def __init__(self, reason: str, *, attempts: int, retry_after: float | None = None) -> None:
        super().__init__(f"{reason} (after {attempts} attempts)")
        self.reason = reason
        self.attempts = attempts
        self.retry_after = retry_after


class _CursorGone(Exception):
    """410: the stored cursor is older than the feed keeps."""


class _TooLarge(Exception):
    """413: the batch is too large for the server."""


@dataclass
class SyncReport:
    """What one sync_once or pull did."""

    batches: int = 0
    created: int = 0
    duplicates: int = 0
    rejected: int = 0
    changes: int = 0
    retries: int = 0
    rereads: int = 0
    advice: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class RejectedReading:
    """A reading the server refused, with the server's reasons."""

    client_id: str
    reading: dict[str, Any]
    errors: list[dict[str, Any]]
    rejected_at: str


def _json_default(value: Any) -> Any:
    # Importers hand over Decimal values; a JSON number with the same decimals is what the
    # wire wants (the one conversion the service's answers use too).
    if isinstance(value, Decimal):
        return json_number(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _dumps(value: Any) -> str:
    return json.dumps(value, default=_json_default, separators=(",", ":"), ensure_ascii=False)


class SyncClient:
    """A patient app's sync: queue readings offline, send them exactly once, mirror the feed."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        source: Mapping[str, Any],
        queue_path: Path,
        patient_id: str = "me",
        transport: httpx.BaseTransport | None = None,
        clock: Clock | None = None,
        batch_size: int = 500,
        max_attempts: int = 6,
        backoff_base: float = 0.5,
        backoff_cap: float = 60.0,
        max_delay: float = 300.0,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        timeout: float = 30.0,
    ) -> None:
        if batch_size < 1 or max_attempts < 1:
            raise ValueError("batch_size and max_attempts must be at least 1")
        self.source = SourceIn.model_validate(source).model_dump(mode="json", exclude_none=True)
        self.patient_id = patient_id
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.max_delay = max_delay
        self._clock: Clock = clock or partial(datetime.now, UTC)
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._http = httpx.Client(
            base_url=base_url,
            transport=transport,
            timeout=timeout,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        )
        self._db = sqlite3.connect(queue_path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)
        self._bind({"base_url": base_url, "patient_id": patient_id, "source": self.source["id"]})

    # -- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        """Close the HTTP client and the queue file."""
        self._http.close()
        self._db.close()

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- the queue --------------------------------------------------------------------------

    def enqueue(self, reading: Mapping[str, Any]) -> str:
        """Store a reading durably for sending; return its client_id (a new uuid4 if none)."""
        return self.enqueue_many([reading])[0]

    def enqueue_many(self, readings: Iterable[Mapping[str, Any]]) -> list[str]:
        """Store readings durably in one transaction; return their client_ids."""
        rows = []
        for reading in readings:
            item = dict(reading)
            if item.get("client_id") is None:
                item["client_id"] = str(uuid.uuid4())
            client_id = item["client_id"]
            if not isinstance(client_id, str) or not client_id:
                raise ValueError("client_id must be a non-empty string")
            rows.append((client_id, _dumps(item)))
        now = self._clock().isoformat()
        with self._transaction() as db:
            for client_id, text in rows:
                queued = db.execute(
                    "SELECT reading FROM queue WHERE client_id = ?", (client_id,)
                ).fetchone()
                if queued is not None and json.loads(queued[0]) != json.loads(text):
                    raise ValueError(f"client_id {client_id!r} is queued with other content")
                db.execute(
                    "INSERT INTO queue (client_id, reading, enqueued_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (client_id) DO NOTHING",
                    (client_id, text, now),
                )
        return [client_id for client_id, _ in rows]

    def pending(self) -> int:
        """Return how many readings wait to be sent."""
        return int(self._db.execute("SELECT count(*) FROM queue").fetchone()[0])

    def rejected(self) -> list[RejectedReading]:
        """Return the readings the server refused, oldest first."""
        rows = self._db.execute(
            "SELECT client_id, reading, errors, rejected_at FROM rejected ORDER BY rejected_at"
        )
        return [RejectedReading(c, json.loads(r), json.loads(e), at) for c, r, e, at in rows]

    def acknowledged(self) -> dict[str, str]:
        """Return the server id of every acknowledged reading, by client_id."""
        return dict(self._db.execute("SELECT client_id, id FROM acknowledged").fetchall())

    def mirror(self, entity: str = "reading") -> list[dict[str, Any]]:
        """Return the mirrored entities of a kind (readings by default), by id."""
        rows = self._db.execute("SELECT data FROM mirror WHERE entity = ? ORDER BY id", (entity,))
        return [json.loads(data) for (data,) in rows]

    @property
    def cursor(self) -> str | None:
        """Return the stored change-feed cursor (None before the first answer)."""
        return self._meta("cursor")

    # -- syncing ----------------------------------------------------------------------------

    def sync_once(self) -> SyncReport:
        """Send every queued reading in batches, then follow the change feed to its end."""
        report = SyncReport()
        size = self.batch_size
        while batch := self._next_batch(size):
            body = {
                "source": self.source,
                "readings": [json.loads(text) for _, _, text in batch],
                "cursor": self.cursor,
            }
            try:
                answer = self._request("POST", "sync", report, body=body)
            except _TooLarge:
                if size == 1:
                    raise SyncRejected(413, {"detail": "one reading is too large"}) from None
                size = max(1, size // 2)
                continue
            except _CursorGone:
                self._reread(report)
                continue
            self._record(batch, answer, report)
            report.batches += 1
            report.advice.extend(answer.get("advice") or [])
            self._follow(answer, report)
        if report.batches == 0:
            self._pull(report)
        return report

    def pull(self) -> SyncReport:
        """Bring the mirror up to date from the change feed, sending nothing."""
        report = SyncReport()
        self._pull(report)
        return report

    # -- internals --------------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _bind(self, binding: dict[str, str]) -> None:
        """Tie the file to one server, patient and source: a cursor means nothing elsewhere."""
        text = _dumps(binding)
        with self._transaction() as db:
            stored = self._meta("binding")
            if stored is None:
                db.execute("INSERT INTO meta (key, value) VALUES ('binding', ?)", (text,))
            elif json.loads(stored) != binding:
                raise ValueError(f"{stored} already uses this queue file, not {text}")

    def _next_batch(self, size: int) -> list[tuple[int, str, str]]:
        query = "SELECT seq, client_id, reading FROM queue ORDER BY seq LIMIT ?"
        return [(int(s), str(c), str(r)) for s, c, r in self._db.execute(query, (size,))]

    def _path(self, name: str) -> str:
        return f"/v1/patients/{quote(self.patient_id, safe='')}/{name}"

    def _request(
        self,
        method: str,
        name: str,
        report: SyncReport,
        *,
        body: Any = None,
        params: Mapping[str, str | int] | None = None,
    ) -> dict[str, Any]:
        """Send one request, retrying what may succeed later; return the JSON answer."""
        content = None if body is None else _dumps(body).encode()
        headers = {"Content-Type": "application/json"} if content is not None else {}
        for attempt in range(1, self.max_attempts + 1):
            delay: float | None = None
            try:
                response = self._http.request(
                    method, self._path(name), content=content, params=params, headers=headers
                )
                status = response.status_code
                if status < 300:
                    answer = response.json()
                    if not isinstance(answer, dict):
                        raise ValueError("the answer is not a JSON object")
                    return answer
            except (httpx.TransportError, ValueError) as exc:
                reason = f"{type(exc).__name__}: {exc}"
            else:
                if status == 410 or (status == 400 and self.cursor is not None):
                    raise _CursorGone  # too old, or signed with a key the server dropped
                if status == 413:
                    raise _TooLarge
                if status not in RETRY_STATUSES and status < 500:
                    raise SyncRejected(status, _problem(response))
                reason = f"HTTP {status}"
                delay = self._retry_after(response)
            if attempt == self.max_attempts:
                break
            if delay is None:
                delay = self._rng.uniform(
                    0, min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1))
                )
            elif delay > self.max_delay:
                raise SyncUnavailable(reason, attempts=attempt, retry_after=delay)
            report.retries += 1
            self._sleep(delay)
        raise SyncUnavailable(reason, attempts=self.max_attempts)

    def _retry_after(self, response: httpx.Response) -> float | None:
        value = response.headers.get("Retry-After")
        if value is None:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, (when - self._clock()).total_seconds())

    def _record(
        self, batch: list[tuple[int, str, str]], answer: Mapping[str, Any], report: SyncReport
    ) -> None:
        """Record the answer to a batch, its changes and cursor, in one transaction."""
        results = answer.get("results")
        if not isinstance(results, list) or len(results) != len(batch):
            raise SyncError("the answer does not have one result per reading sent")
        for (_, client_id, _), result in zip(batch, results, strict=True):
            if not isinstance(result, dict) or result.get("client_id") != client_id:
                raise SyncError(f"the answer's results are not in order at {client_id!r}")
            status = result.get("status")
            if status not in ("created", "duplicate", "rejected"):
                raise SyncError(f"unknown status {status!r} for {client_id!r}")
            if status != "rejected" and not isinstance(result.get("id"), str):
                raise SyncError(f"no id for the acknowledged {client_id!r}")
        now = self._clock().isoformat()
        with self._transaction() as db:
            for (seq, client_id, text), result in zip(batch, results, strict=True):
                db.execute("DELETE FROM queue WHERE seq = ?", (seq,))
                if result["status"] == "rejected":
                    report.rejected += 1
                    db.execute(
                        "INSERT OR REPLACE INTO rejected VALUES (?, ?, ?, ?)",
                        (client_id, text, _dumps(result.get("errors") or []), now),
                    )
                    continue
                if result["status"] == "created":
                    report.created += 1
                else:
                    report.duplicates += 1
                db.execute(
                    "INSERT OR REPLACE INTO acknowledged VALUES (?, ?, ?, ?, ?)",
                    (client_id, result["id"], result["status"], result.get("duplicate_of"), now),
                )
            self._apply(db, answer, report)

    def _apply(self, db: sqlite3.Connection, page: Mapping[str, Any], report: SyncReport) -> None:
        """Apply a page of changes to the mirror and store its cursor (inside a transaction)."""
        changes, cursor = page.get("changes"), page.get("cursor")
        if not isinstance(changes, list) or not isinstance(cursor, str):
            raise SyncError("the answer has no changes list or no cursor")
        for change in changes:
            if not isinstance(change, dict):
                raise SyncError("a change is not an object")
            entity, op, entity_id = (change.get(k) for k in ("entity", "op", "id"))
            if not isinstance(entity, str) or not isinstance(entity_id, str):
                raise SyncError(f"a change without entity or id: {change!r}"[:300])
            if op == "delete":
                db.execute("DELETE FROM mirror WHERE entity = ? AND id = ?", (entity, entity_id))
            elif op == "upsert":
                db.execute(
                    "INSERT OR REPLACE INTO mirror VALUES (?, ?, ?)",
                    (entity, entity_id, _dumps(change.get("data"))),
                )
            else:
                raise SyncError(f"unknown change op {op!r}")
        db.execute("INSERT OR REPLACE INTO meta VALUES ('cursor', ?)", (cursor,))
        report.changes += len(changes)

    def _follow(self, page: Mapping[str, Any], report: SyncReport) -> None:
        """Read the feed on while the last page said there is more."""
        if page.get("has_more"):
            self._read_feed(report)

    def _read_feed(self, report: SyncReport) -> None:
        """Read the feed after the stored cursor to its end."""
        while self._changes_page(report).get("has_more"):
            pass

    def _changes_page(self, report: SyncReport) -> dict[str, Any]:
        params: dict[str, str | int] = {"limit": PAGE_LIMIT}
        if self.cursor is not None:
            params["cursor"] = self.cursor
        page = self._request("GET", "changes", report, params=params)
        with self._transaction() as db:
            self._apply(db, page, report)
        return page

    def _pull(self, report: SyncReport) -> None:
        try:
            self._read_feed(report)
        except _CursorGone:
            self._reread(report)

    def _reread(self, report: SyncReport) -> None:
        """Rebuild the mirror after a 410: the feed from its start, then every reading."""
        if report.rereads:
            raise SyncError("the change feed answered 410 twice in one sync")
        report.rereads += 1
        with self._transaction() as db:
            db.execute("DELETE FROM mirror")
            db.execute("DELETE FROM meta WHERE key = 'cursor'")
        self._read_feed(report)
        # The feed may have been cut short; readings it no longer holds come from the list.
        # A reading deleted after this point is removed by the feed, which continues after it.
        page_cursor: str | None = None
        while True:
            params: dict[str, str | int] = {"limit": READINGS_PAGE_LIMIT}
            if page_cursor is not None:
                params["cursor"] = page_cursor
            page = self._request("GET", "readings", report, params=params)
            items = page.get("items")
            if not isinstance(items, list):
                raise SyncError("the readings list has no items")
            with self._transaction() as db:
                for item in items:
                    db.execute(
                        "INSERT OR REPLACE INTO mirror VALUES ('reading', ?, ?)",
                        (str(item["id"]), _dumps(item)),
                    )
            page_cursor = page.get("next_cursor")
            if not page_cursor:
                return


def _problem(response: httpx.Response) -> dict[str, Any]:
    try:
        problem = response.json()
    except ValueError:
        return {"detail": response.text[:300]}
    return problem if isinstance(problem, dict) else {"detail": str(problem)[:300]}


__all__ = [
    "RejectedReading",
    "SyncClient",
    "SyncError",
    "SyncRejected",
    "SyncReport",
    "SyncUnavailable",
]
