"""An in-memory sync server behind ``httpx.MockTransport``, with faults on demand.

It keeps the server's promises that the client relies on (DESIGN.md §4.2): readings keyed by
(source, client_id), a repeat answered ``duplicate`` with the first id, other content
``client_id_conflict``, the same measurement from another source ``duplicate`` with
``duplicate_of``, a per-patient change feed with an opaque cursor, ``has_more``, and 410
for a cursor older than the feed keeps. Every reading goes through ``normalise_reading``.

Faults are queued with :meth:`FakeServer.fail` and each spoils one request:

* ``drop_before``: the connection fails before the server sees the request;
* ``drop_after``: the server commits, then the answer is lost (a read error);
* ``crash_after``: the server commits, then the client process dies (:class:`Crash`);
* an HTTP status (500, 503, 429 …): answered without doing anything, with ``headers``.
"""

from __future__ import annotations

import json
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from rules.catalogue import json_number
from sync.cursor import InvalidCursor, decode_cursor, encode_cursor
from sync.dedup import find_same_measurement
from sync.normalise import NormalisedReading, normalise_reading
from tests.sync.factories import NOW

TOKEN = "test-token"
KEY = b"fake-cursor-key"
PATIENT = "me"


class Crash(BaseException):
    """The client process died between sending a request and reading the answer."""


@dataclass(frozen=True)
class Fault:
    """One spoiled request."""

    kind: str  # drop_before, drop_after, crash_after, or "status"
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Stored:
    """A stored reading: what dedup reads, and the API form."""

    id: str
    source: str
    reading: NormalisedReading
    data: dict[str, Any]
    deleted: bool = False

    # What sync.dedup reads:
    @property
    def type(self) -> str:
        return self.reading.type

    @property
    def time(self) -> datetime:
        return self.reading.time

    @property
    def end_time(self) -> datetime | None:
        return self.reading.end_time

    @property
    def values(self) -> dict[str, Any]:
        return self.reading.values


class FakeServer:
    """The sync endpoints of one patient, in memory."""

    def __init__(self, *, now: datetime = NOW, page_limit: int = 500, max_batch: int = 5000):
        self.now = now
        self.page_limit = page_limit
        self.max_batch = max_batch
        self.readings: dict[str, Stored] = {}
        self.keys: dict[tuple[str, str], Stored] = {}
        self.feed: list[dict[str, Any]] = []  # position n is feed[n - 1]
        self.oldest = 1  # positions before this were pruned
        self.faults: deque[Fault] = deque()
        self.log: list[tuple[str, str, int]] = []  # (method, path, readings sent)
        self.commits = 0  # sync requests that stored their batch

    # -- test controls ----------------------------------------------------------------------

    def fail(self, *faults: str | int, headers: dict[str, str] | None = None) -> None:
        """Spoil the next requests, one fault each."""
        for fault in faults:
            if isinstance(fault, int):
                self.faults.append(Fault("status", fault, headers or {}))
            else:
                self.faults.append(Fault(fault))

    def transport(self) -> httpx.MockTransport:
        """Return a transport that sends requests here."""
        return httpx.MockTransport(self.handle)

    def delete(self, reading_id: str) -> None:
        """Mark a reading entered-in-error, as another device's DELETE would."""
        stored = self.readings[reading_id]
        stored.deleted = True
        self._append(
            "reading", "delete", reading_id, {"id": reading_id, "status": "entered-in-error"}
        )

    def prune(self) -> None:
        """Forget the feed so far, as a retention job would."""
        self.oldest = len(self.feed) + 1

    def live(self, *, counted: bool = False) -> list[Stored]:
        """Return the readings not deleted (only those not duplicates, if ``counted``)."""
        return [
            s
            for s in self.readings.values()
            if not s.deleted and not (counted and s.data["duplicate_of"])
        ]

    # -- the HTTP side ----------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return _problem(401, "Unauthorised")
        path = request.url.path
        body = json.loads(request.content) if request.content else None
        sent = len(body["readings"]) if isinstance(body, dict) and "readings" in body else 0
        self.log.append((request.method, path, sent))
        fault = self.faults.popleft() if self.faults else None
        if fault is not None and fault.kind == "drop_before":
            raise httpx.ConnectError("connection refused", request=request)
        if fault is not None and fault.kind == "status":
            return _problem(fault.status, "injected", headers=fault.headers)

        response = self._route(request, path, body)

        if fault is not None and fault.kind == "drop_after":
            raise httpx.ReadError("connection reset", request=request)
        if fault is not None and fault.kind == "crash_after":
            raise Crash
        return response

    def _route(self, request: httpx.Request, path: str, body: Any) -> httpx.Response:
        prefix = f"/v1/patients/{PATIENT}/"
        if not path.startswith(prefix):
            return _problem(404, "Not found")
        name = path.removeprefix(prefix)
        params = request.url.params
        if request.method == "POST" and name == "sync":
            if len(body["readings"]) > self.max_batch:
                return _problem(413, "Too many readings")
            return self._sync(body)
        if request.method == "GET" and name == "changes":
            limit = int(params.get("limit", self.page_limit))
            return self._page(params.get("cursor"), limit)
        if request.method == "GET" and name == "readings":
            return self._list(params.get("cursor"), int(params.get("limit", 100)))
        return _problem(404, "Not found")

    def _sync(self, body: dict[str, Any]) -> httpx.Response:
        position = self._position(body.get("cursor"))
        if isinstance(position, httpx.Response):
            return position
        source = body["source"]["id"]
        results = [self._ingest(source, item) for item in body["readings"]]
        self.commits += 1
        page = self._changes_after(position, self.page_limit)
        return httpx.Response(200, json={"results": results, "advice": [], **page})

    def _ingest(self, source: str, item: Any) -> dict[str, Any]:
        reading = normalise_reading(item, now=self.now)
        client_id = item.get("client_id") if isinstance(item, dict) else None
        if not isinstance(reading, NormalisedReading):
            errors = [{"loc": e.loc, "code": e.code, "message": e.message} for e in reading]
            return {"client_id": client_id, "status": "rejected", "errors": errors}
        prior = self.keys.get((source, reading.client_id))
        if prior is not None:
            if prior.reading.fingerprint != reading.fingerprint:
                error = {
                    "loc": "client_id",
                    "code": "client_id_conflict",
                    "message": "other content",
                }
                return {"client_id": client_id, "status": "rejected", "errors": [error]}
            return _acknowledged(prior, "duplicate")
        others = [s for s in self.live(counted=True) if s.source != source]
        original = find_same_measurement(reading, others)
        stored = Stored(str(uuid.uuid4()), source, reading, {})
        stored.data = {
            "id": stored.id,
            "client_id": reading.client_id,
            "source_id": source,
            "type": reading.type,
            "time": reading.time.isoformat(),
            "values": {k: json_number(v) for k, v in reading.values.items()},
            "unit": reading.unit,
            "status": "final",
            "duplicate_of": original.id if original is not None else None,
        }
        self.readings[stored.id] = stored
        self.keys[(source, reading.client_id)] = stored
        self._append("reading", "upsert", stored.id, stored.data)
        return _acknowledged(stored, "created" if original is None else "duplicate")

    def _append(self, entity: str, op: str, entity_id: str, data: dict[str, Any]) -> None:
        self.feed.append({"entity": entity, "op": op, "id": entity_id, "data": dict(data)})

    def _position(self, cursor: str | None) -> int | httpx.Response:
        if cursor is None:
            return 0
        try:
            position = decode_cursor(cursor, PATIENT, key=KEY)
        except InvalidCursor:
            return _problem(400, "The cursor is not valid for this patient.")
        if position < self.oldest - 1:
            return _problem(410, "The cursor is too old; read the patient's data again.")
        return position

    def _changes_after(self, position: int, limit: int) -> dict[str, Any]:
        start = max(position, self.oldest - 1)
        page = self.feed[start : start + min(limit, self.page_limit)]
        last = start + len(page)
        return {
            "changes": page,
            "cursor": encode_cursor(PATIENT, last, key=KEY),
            "has_more": last < len(self.feed),
        }

    def _page(self, cursor: str | None, limit: int) -> httpx.Response:
        position = self._position(cursor)
        if isinstance(position, httpx.Response):
            return position
        return httpx.Response(200, json=self._changes_after(position, limit))

    def _list(self, cursor: str | None, limit: int) -> httpx.Response:
        live = sorted(self.live(), key=lambda s: (s.data["time"], s.id))
        start = int(cursor) if cursor else 0
        page = live[start : start + limit]
        more = start + limit < len(live)
        return httpx.Response(
            200,
            json={
                "items": [s.data for s in page],
                "next_cursor": str(start + limit) if more else None,
            },
        )


def _acknowledged(stored: Stored, status: str) -> dict[str, Any]:
    answer = {"client_id": stored.reading.client_id, "status": status, "id": stored.id}
    if stored.data["duplicate_of"]:
        answer["duplicate_of"] = stored.data["duplicate_of"]
    return answer


def _problem(status: int, title: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(
        status,
        json={"type": "about:blank", "title": title, "status": status, "detail": title},
        headers={"Content-Type": "application/problem+json", **(headers or {})},
    )
