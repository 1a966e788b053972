"""Model-based test of sync against a real uvicorn, on both databases.

AT-11: a hypothesis state machine drives two of Allan's devices (two sources, each a
:class:`sync.client.SyncClient` with its own queue file) through enqueueing (some readings
days late), the same measurement through the second source, uploads with random batch sizes,
a reordered queue, answers dropped after the server committed (or requests that never got
there), retries, client restarts and deletions. A model says what the server must hold;
after every step the database equals it: every acknowledged reading exactly once, nothing
that was never enqueued, a cross-source copy stored once as ``duplicate_of`` and never
counted, counted values as sent, tombstones where deleted. After a pull each client's mirror
equals the server's readings.

One server serves all examples of a backend; an example owns its two source ids and its own
reading times (slots two minutes apart, copies within 50 s of their original), so examples
never see each other's readings, not even as cross-source duplicates.
"""

from __future__ import annotations

import itertools
import json
import random
import sqlite3
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.readings.models import Reading, Source
from sync.client import SyncClient, SyncUnavailable
from tests.live import LiveServer

pytestmark = pytest.mark.e2e

MAX_EXAMPLES = 20
STEPS = 15
MAX_ATTEMPTS = 3
LATE = timedelta(days=12)  # an offline spell: far behind every example's recent readings
SLOT = timedelta(minutes=2)  # > 2 x 50 s: a copy is never near another slot's reading
RULES: Counter[str] = Counter()
STATS = {
    "examples": 0,
    "failures": 0,
    "steps": 0,
    "late": 0,
    "copies": 0,
    "reorders": 0,
    "unheard_commits": 0,
    "never_sent": 0,
    "restarts": 0,
    "deletes": 0,
}


# -- the wire -------------------------------------------------------------------------------


@dataclass
class Exchange:
    """One sync request as it went: the batch, the server's real answer, and whether the
    client heard it (a dropped answer was still committed by the server)."""

    source: str
    readings: list[dict[str, Any]]
    status: int | None  # None: the request never reached the server
    answer: dict[str, Any] | None
    heard: bool


@dataclass
class Fault:
    """Spoil the sync request after ``skip`` more have gone through."""

    mode: str  # "read-after", "connect-after" (server committed) or "connect-before"
    skip: int


class Wire(httpx.BaseTransport):
    """A real HTTP transport that logs every sync exchange and spoils one on demand."""

    def __init__(self, source: str, log: list[Exchange]) -> None:
        self.inner = httpx.HTTPTransport()
        self.source = source
        self.log = log
        self.fault: Fault | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method != "POST" or not request.url.path.endswith("/sync"):
            return self.inner.handle_request(request)
        readings = json.loads(request.read())["readings"]
        fault = self.fault
        spoil = fault is not None and fault.skip == 0
        if fault is not None:
            fault.skip -= 1
        if spoil:
            self.fault = None
        if spoil and fault is not None and fault.mode == "connect-before":
            self.log.append(Exchange(self.source, readings, None, None, heard=False))
            raise httpx.ConnectError("dropped before sending (test)", request=request)
        response = self.inner.handle_request(request)
        response.read()
        answer = response.json() if response.status_code == 200 else None
        self.log.append(Exchange(self.source, readings, response.status_code, answer, not spoil))
        if spoil and fault is not None:
            error = httpx.ReadError if fault.mode == "read-after" else httpx.ConnectError
            raise error("answer dropped after the server committed (test)", request=request)
        return response

    def close(self) -> None:
        self.inner.close()


# -- the model ------------------------------------------------------------------------------


@dataclass
class Item:
    """A reading some device enqueued, and what the server must have made of it."""

    source: str
    client_id: str
    body: dict[str, Any]
    group: int  # one measurement; at most one reading per source
    values: dict[str, Decimal]  # canonical, as the server must store them
    stored: bool = False
    id: str | None = None
    deleted: bool = False
    duplicate_of: tuple[str, str] | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.source, self.client_id)


@dataclass
class Context:
    """What the examples of one backend share: the server, a token, a look at the database."""

    server: LiveServer
    token: str
    session: Session
    folder: Path
    t0: datetime
    slots: Iterator[int] = field(default_factory=itertools.count)


def _values(kind: str, slot: int) -> dict[str, Decimal]:
    if kind == "weight":
        return {"value": Decimal(600 + slot % 400) / 10}
    return {"systolic": Decimal(105 + slot % 50), "diastolic": Decimal(62 + slot % 28)}


def _wire_value(kind: str, values: dict[str, Decimal], grams: bool) -> tuple[Any, str]:
    if kind == "weight":
        kg = values["value"]
        return (int(kg * 1000), "g") if grams else (float(kg), "kg")
    return {k: int(v) for k, v in values.items()}, ("mmHg" if grams else "mm[Hg]")


def _offset(n: int) -> timezone:
    return timezone(timedelta(hours=(1, 2, -5, 0)[n % 4]))  # the time as the phone wrote it


class SyncModel(RuleBasedStateMachine):
    """Two devices of Allan's against the live server, and the model of what it holds."""

    ctx: ClassVar[Context]

    def __init__(self) -> None:
        super().__init__()
        STATS["examples"] += 1
        self.n = STATS["examples"]
        self.rng = random.Random(self.n)
        self.names = {"a": f"at11-{self.n:03d}-phone", "b": f"at11-{self.n:03d}-scale-app"}
        self.folder = self.ctx.folder / f"example-{self.n:03d}"
        self.folder.mkdir()
        self.log: list[Exchange] = []
        self.wires = {w: Wire(self.names[w], self.log) for w in "ab"}
        self.clients = {w: self._open(w) for w in "ab"}
        self.items: dict[tuple[str, str], Item] = {}
        self.groups: dict[int, list[Item]] = {}
        self.acked: set[tuple[str, str]] = set()
        self.dropped = False
        self.seq = itertools.count()

    # -- helpers ----------------------------------------------------------------------------

    def _open(self, which: str) -> SyncClient:
        return SyncClient(
            self.ctx.server.base,
            self.ctx.token,
            source={"id": self.names[which], "kind": "app", "name": "Min hälsa"},
            queue_path=self.folder / f"{which}.sqlite",
            transport=self.wires[which],
            max_attempts=MAX_ATTEMPTS,
            sleep=lambda _: None,
            rng=self.rng,
        )

    def _which(self, source: str) -> str:
        return "a" if source == self.names["a"] else "b"

    def _new_item(
        self, which: str, kind: str, group: int, slot: int, at: datetime, grams: bool, zone: int = 0
    ) -> Item:
        values = _values(kind, slot)
        value, unit = _wire_value(kind, values, grams)
        client_id = f"{self.names[which]}-{next(self.seq)}"
        time = at.astimezone(_offset(slot + zone)).isoformat()
        body = {"client_id": client_id, "type": kind, "time": time, "value": value, "unit": unit}
        item = Item(self.names[which], client_id, body, group, values)
        self.items[item.key] = item
        self.groups.setdefault(group, []).append(item)
        return item

    def _apply_log(self) -> None:
        """Play what reached the server into the model, checking each answer on the way."""
        while self.log:
            ex = self.log.pop(0)
            if ex.status is None:
                STATS["never_sent"] += 1
                continue
            STATS["unheard_commits"] += not ex.heard
            assert ex.status == 200, f"sync answered {ex.status}"
            assert ex.answer is not None
            results = ex.answer["results"]
            assert len(results) == len(ex.readings)
            for body, result in zip(ex.readings, results, strict=True):
                item = self.items[(ex.source, body["client_id"])]
                assert result["client_id"] == item.client_id
                if item.stored:  # a retry: the first answer again
                    want = {"status": "duplicate", "id": item.id}
                else:
                    counted = [
                        o
                        for o in self.groups[item.group]
                        if o.source != item.source
                        and o.stored
                        and not o.deleted
                        and o.duplicate_of is None
                    ]
                    assert len(counted) <= 1
                    item.stored, item.id = True, result.get("id")
                    if counted:
                        item.duplicate_of = counted[0].key
                        want = {"status": "duplicate", "id": item.id}
                    else:
                        want = {"status": "created", "id": item.id}
                if item.duplicate_of is not None:
                    want["duplicate_of"] = self.items[item.duplicate_of].id
                assert result == {"client_id": item.client_id, **want}, (result, want)
                if ex.heard:
                    self.acked.add(item.key)

    def _sync(self, which: str, batch_size: int) -> None:
        client = self.clients[which]
        client.batch_size = batch_size
        try:
            client.sync_once()
        finally:
            self._apply_log()

    # -- rules ------------------------------------------------------------------------------

    @rule(
        which=st.sampled_from("ab"),
        kind=st.sampled_from(["weight", "blood_pressure"]),
        n=st.integers(1, 5),
        late=st.booleans(),
    )
    def enqueue(self, which: str, kind: str, n: int, late: bool) -> None:
        """New readings; late ones were measured days ago, during an offline spell."""
        RULES["enqueue"] += 1
        fresh = []
        for _ in range(n):
            slot = next(self.ctx.slots)
            assert slot < LATE / SLOT, "slots reach the late lane: lower the example count"
            at = self.ctx.t0 - slot * SLOT - (LATE if late else timedelta(0))
            fresh.append(self._new_item(which, kind, slot, slot, at, grams=slot % 3 == 0))
        self.clients[which].enqueue_many([item.body for item in fresh])
        STATS["late"] += n if late else 0

    def _uncopied(self) -> list[int]:
        return sorted(g for g, members in self.groups.items() if len(members) == 1)

    @precondition(lambda self: bool(self._uncopied()))
    @rule(data=st.data(), shift=st.integers(-50, 50), other_unit=st.booleans())
    def enqueue_copy(self, data: st.DataObject, shift: int, other_unit: bool) -> None:
        """The same measurement through the other device (the scale's own app)."""
        RULES["copy"] += 1
        group = data.draw(st.sampled_from(self._uncopied()), label="group")
        [original] = self.groups[group]
        which = "b" if self._which(original.source) == "a" else "a"
        at = datetime.fromisoformat(original.body["time"]) + timedelta(seconds=shift)
        copy = self._new_item(which, original.body["type"], group, group, at, other_unit, 1)
        assert copy.values == original.values
        self.clients[which].enqueue(copy.body)
        STATS["copies"] += 1

    @precondition(lambda self: any(c.pending() for c in self.clients.values()))
    @rule(which=st.sampled_from("ab"), batch_size=st.integers(1, 7))
    def upload(self, which: str, batch_size: int) -> None:
        """Send the queue in batches of a random size (a re-chunk of earlier attempts)."""
        RULES["upload"] += 1
        self._sync(which, batch_size)
        assert self.clients[which].pending() == 0
        self.dropped = False

    @precondition(lambda self: any(c.pending() for c in self.clients.values()))
    @rule(which=st.sampled_from("ab"), data=st.data())
    def reorder(self, which: str, data: st.DataObject) -> None:
        """Shuffle the queue, so the next batches hold other readings in another order."""
        RULES["reorder"] += 1
        path = self.folder / f"{which}.sqlite"
        db = sqlite3.connect(path, isolation_level=None)
        try:
            rows = db.execute("SELECT client_id, reading, enqueued_at FROM queue ORDER BY seq")
            shuffled = data.draw(st.permutations(rows.fetchall()), label="order")
            db.execute("BEGIN IMMEDIATE")
            db.execute("DELETE FROM queue")
            db.executemany(
                "INSERT INTO queue (client_id, reading, enqueued_at) VALUES (?, ?, ?)", shuffled
            )
            db.execute("COMMIT")
            STATS["reorders"] += 1
        finally:
            db.close()

    @precondition(lambda self: any(c.pending() for c in self.clients.values()))
    @rule(
        which=st.sampled_from("ab"),
        batch_size=st.integers(1, 7),
        skip=st.integers(0, 2),
        mode=st.sampled_from(["read-after", "connect-after", "connect-before"]),
        retry_at_once=st.booleans(),
    )
    def upload_dropped(
        self, which: str, batch_size: int, skip: int, mode: str, retry_at_once: bool
    ) -> None:
        """An upload whose (skip+1)-th request loses its answer (or never gets there)."""
        RULES["drop"] += 1
        if self.clients[which].pending() == 0:
            which = "b" if which == "a" else "a"
        client = self.clients[which]
        batches = -(-client.pending() // batch_size)
        client.max_attempts = MAX_ATTEMPTS if retry_at_once else 1
        self.wires[which].fault = Fault(mode, skip % batches)  # always one of this upload's
        try:
            self._sync(which, batch_size)
        except SyncUnavailable:
            assert not retry_at_once
            self.dropped = True
        finally:
            client.max_attempts = MAX_ATTEMPTS
            self.wires[which].fault = None

    @precondition(lambda self: self.dropped)
    @rule(which=st.sampled_from("ab"))
    def retry(self, which: str) -> None:
        """Try again after a lost answer, with the batch size of the failed attempt."""
        RULES["retry"] += 1
        for name in (which, "b" if which == "a" else "a"):
            self._sync(name, self.clients[name].batch_size)
        self.dropped = False

    @precondition(lambda self: any(c.pending() for c in self.clients.values()))
    @rule(which=st.sampled_from("ab"))
    def restart_client(self, which: str) -> None:
        """The app is killed with readings queued and started again on the same queue file."""
        RULES["restart"] += 1
        self.clients[which].close()
        self.clients[which] = self._open(which)
        STATS["restarts"] += 1

    @precondition(lambda self: any(i.stored for i in self.items.values()))
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        """Allan deletes a reading (maybe one already deleted, maybe a duplicate)."""
        RULES["delete"] += 1
        stored = sorted((i for i in self.items.values() if i.stored), key=lambda i: i.key)
        item = data.draw(st.sampled_from(stored), label="reading")
        response = httpx.delete(
            f"{self.ctx.server.base}/v1/patients/me/readings/{item.id}",
            headers={"Authorization": f"Bearer {self.ctx.token}"},
            timeout=30,
        )
        assert response.status_code == 204, response.text
        item.deleted = True
        STATS["deletes"] += 1

    # -- the invariant ----------------------------------------------------------------------

    @invariant()
    def server_equals_model(self) -> None:
        STATS["steps"] += 1
        query = (
            select(
                Source.client_source_id,
                Reading.client_id,
                Reading.id,
                Reading.status,
                Reading.duplicate_of,
                Reading.values,
                Source.id,
            )
            .join(Source, Source.id == Reading.source_id)
            .where(Source.client_source_id.in_(list(self.names.values())))
        )
        rows = self.ctx.session.execute(query).all()
        by_key = {(r[0], r[1]): r for r in rows}
        assert len(by_key) == len(rows), "a reading is stored twice"
        stored = {key: item for key, item in self.items.items() if item.stored}
        assert set(by_key) == set(stored), (
            f"lost {set(stored) - set(by_key)}, never sent {set(by_key) - set(stored)}"
        )
        for key, item in stored.items():
            _, _, rid, status, dup, values, _ = by_key[key]
            assert rid == item.id
            assert status == ("entered-in-error" if item.deleted else "final"), key
            assert dup == (self.items[item.duplicate_of].id if item.duplicate_of else None), key
            assert {k: Decimal(v) for k, v in values.items()} == item.values, key
        counted = {k for k, r in by_key.items() if r[3] == "final" and r[4] is None}
        assert counted == {k for k, i in stored.items() if not i.deleted and i.duplicate_of is None}
        for which, client in self.clients.items():
            name = self.names[which]
            mine = {i.key: i for i in self.items.values() if i.source == name}
            assert client.acknowledged() == {k[1]: mine[k].id for k in self.acked if k in mine}
            assert client.pending() == sum(1 for k in mine if k not in self.acked)
            assert client.rejected() == []
        self._mirrors_converge({r[6] for r in rows})

    def _mirrors_converge(self, source_ids: set[str]) -> None:
        """After a pull, each client mirrors this example's readings as the server lists them."""
        listed: dict[str, dict[str, Any]] = {}
        cursor: str | None = None
        with httpx.Client(
            base_url=self.ctx.server.base,
            timeout=30,
            headers={"Authorization": f"Bearer {self.ctx.token}"},
        ) as http:
            while True:
                params: dict[str, Any] = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
                page = http.get("/v1/patients/me/readings", params=params)
                assert page.status_code == 200, page.text
                body = page.json()
                listed.update({r["id"]: r for r in body["items"] if r["source_id"] in source_ids})
                cursor = body["next_cursor"]
                if not cursor:
                    break
        for client in self.clients.values():
            client.pull()
            mirrored = {r["id"]: r for r in client.mirror() if r["source_id"] in source_ids}
            assert mirrored == listed

    def teardown(self) -> None:
        for client in self.clients.values():
            client.close()
        for wire in self.wires.values():
            wire.close()


@pytest.fixture
def live(db_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    server = LiveServer(db_url, tmp_path, sync_rate_per_minute="0")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    yield
    print(f"AT-11 examples={STATS['examples']} failures={STATS['failures']}")


def test_server_equals_the_model_after_every_step(
    live: LiveServer, session: Session, tmp_path: Path, backend: str
) -> None:
    t0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)
    token = live.token("allan")["Authorization"].removeprefix("Bearer ")
    SyncModel.ctx = Context(live, token, session, tmp_path, t0)
    before, rules_before = dict(STATS), Counter(RULES)
    try:
        run_state_machine_as_test(
            SyncModel,
            settings=settings(
                max_examples=MAX_EXAMPLES,
                stateful_step_count=STEPS,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
            ),
        )
    except BaseException:
        STATS["failures"] += 1
        print(server_log_tail(live))
        raise
    finally:
        figures = " ".join(f"{k}={STATS[k] - before[k]}" for k in STATS if k != "failures")
        rules = " ".join(f"{k}={RULES[k] - rules_before[k]}" for k in sorted(RULES))
        print(f"AT-11 {backend}: {figures}\nAT-11 {backend} rules: {rules}")


def server_log_tail(live: LiveServer, lines: int = 60) -> str:
    text = live.log_path.read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])
