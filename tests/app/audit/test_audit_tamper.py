"""AT-08 tamper evidence: a long keyed chain, each mutation on its own copy, each found.

The chain is built fast (hashes computed here, rows bulk-inserted), with anchors every
``ANCHOR_EVERY`` rows as the anchor job would have written them. Every mutation is what
someone with write access to the database (but not the key, unless said) can do; each runs on
a fresh copy of the database and must be reported at the row where it was made:

- modify (first, middle, last row; a row's subject), delete, swap two rows, insert a row:
  at that row;
- truncate the tail: at the first missing row (by the head, or, when the head was moved back
  too, by an anchor past the end);
- recompute the chain after a change, without the key (plain SHA-256 as before, or HMAC with a
  guessed key): at the changed row;
- rewrite with the stolen key: the key alone cannot tell; the first anchor at or after the
  changed row does, so it is reported there (the bound anchors give).

SQLite runs the full 100,000 rows; PostgreSQL a smaller chain (the same code paths, at a
tenth of the cost on two shared cores).
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Connection, bindparam, create_engine, delete, insert, select, update
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.audit.models import AuditEvent, AuditHead, AuditSubject
from app.db import normalise_url
from tests.conftest import DatabaseFactory

KEY = b"at08-audit-key"
ANCHOR_EVERY = 997  # not a divisor of the length: the tail after the last anchor is real
ROWS = {"sqlite": 100_000, "postgresql": 10_000}
EVENTS = AuditEvent.__table__
SUBJECTS = AuditSubject.__table__


@dataclass
class FakeRow:
    """The chained columns of one row, before it is inserted."""

    seq: int
    occurred_at: datetime
    actor_id: str | None
    actor_handle: str
    actor_role: str
    care_unit_id: str | None
    care_unit_name: str | None
    relation: str
    action: str
    resource: str
    outcome: str


def build_chain(conn: Connection, n: int) -> list[audit.Anchor]:
    """Insert ``n`` chained rows with one subject each; the anchors of every ANCHOR_EVERY."""
    patients = [str(uuid.UUID(int=i + 1)) for i in range(40)]
    start = datetime(2026, 11, 1, tzinfo=UTC)
    prev = audit.GENESIS_HASH
    events, subjects, anchors = [], [], []
    for seq in range(1, n + 1):
        row = FakeRow(
            seq=seq,
            occurred_at=start + timedelta(seconds=7 * seq, microseconds=seq % 997),
            actor_id=patients[seq % 7],
            actor_handle=("eva", "karin", "allan", "maria")[seq % 4],
            actor_role=("clinician", "clinician", "patient", "proxy")[seq % 4],
            care_unit_id=None,
            care_unit_name="Vårdcentralen Norra" if seq % 4 == 0 else None,
            relation=("care_team", "care_team", "self", "proxy")[seq % 4],
            action="read",
            resource="GET /v1/patients/{pid}/readings",
            outcome="ok" if seq % 50 else "refused:404",
        )
        patient = patients[seq % len(patients)]
        digest = audit.row_hash(KEY, prev, row, [patient])
        events.append({**vars(row), "prev_hash": prev, "hash": digest})
        subjects.append({"event_seq": seq, "patient_id": patient})
        if seq % ANCHOR_EVERY == 0:
            anchors.append(audit.Anchor(seq=seq, hash=digest))
        prev = digest
    for i in range(0, n, 20_000):
        conn.execute(insert(EVENTS), events[i : i + 20_000])
        conn.execute(insert(SUBJECTS), subjects[i : i + 20_000])
    conn.execute(update(AuditHead).values(last_seq=n, last_hash=prev))
    return anchors


# --- the mutations: each returns the (index, seq) it must be reported at ----------------------

Mutation = Callable[[Connection, int], tuple[int, int]]


def _row(conn: Connection, seq: int) -> dict[str, object]:
    return dict(conn.execute(select(EVENTS).where(EVENTS.c.seq == seq)).one()._mapping)


def _subjects(conn: Connection, seq: int) -> list[str]:
    return list(conn.scalars(select(SUBJECTS.c.patient_id).where(SUBJECTS.c.event_seq == seq)))


def _modify(seq_of: Callable[[int], int]) -> Mutation:
    def mutate(conn: Connection, n: int) -> tuple[int, int]:
        seq = seq_of(n)
        conn.execute(update(EVENTS).where(EVENTS.c.seq == seq).values(actor_handle="mallory"))
        return seq - 1, seq

    return mutate


def modify_subject(conn: Connection, n: int) -> tuple[int, int]:
    seq = n * 3 // 5
    other = str(uuid.UUID(int=999))
    conn.execute(update(SUBJECTS).where(SUBJECTS.c.event_seq == seq).values(patient_id=other))
    return seq - 1, seq


def delete_row(conn: Connection, n: int) -> tuple[int, int]:
    seq = n // 2 + 3
    conn.execute(delete(SUBJECTS).where(SUBJECTS.c.event_seq == seq))
    conn.execute(delete(EVENTS).where(EVENTS.c.seq == seq))
    return seq - 1, seq


def swap_rows(conn: Connection, n: int) -> tuple[int, int]:
    """Exchange the contents (not the sequence numbers) of two neighbouring rows."""
    first = n // 3
    a, b = _row(conn, first), _row(conn, first + 1)
    sa, sb = _subjects(conn, first), _subjects(conn, first + 1)
    for seq, content, subjects in ((first, b, sb), (first + 1, a, sa)):
        values = {k: v for k, v in content.items() if k != "seq"}
        conn.execute(update(EVENTS).where(EVENTS.c.seq == seq).values(**values))
        conn.execute(delete(SUBJECTS).where(SUBJECTS.c.event_seq == seq))
        conn.execute(insert(SUBJECTS), [{"event_seq": seq, "patient_id": p} for p in subjects])
    return first - 1, first


def insert_row(conn: Connection, n: int) -> tuple[int, int]:
    """Make room at ``seq`` (renumbering the rows after it) and put a forged row there."""
    seq = n // 4
    for table, column in ((EVENTS, EVENTS.c.seq), (SUBJECTS, SUBJECTS.c.event_seq)):
        conn.execute(update(table).where(column >= seq).values({column.name: -(column + 1)}))
        conn.execute(update(table).where(column < 0).values({column.name: -column}))
    before = _row(conn, seq - 1)
    forged = {**_row(conn, seq + 1), "seq": seq, "actor_handle": "mallory"}
    forged["prev_hash"] = before["hash"]
    content = audit.canonical_content(FakeRow(**_chained(forged)), [])
    forged["hash"] = hashlib.sha256((str(before["hash"]) + content).encode()).hexdigest()
    conn.execute(insert(EVENTS), [forged])
    conn.execute(update(AuditHead).values(last_seq=n + 1))
    return seq - 1, seq


def _chained(row: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in row.items() if k not in ("prev_hash", "hash")}


def _truncate(rows: int, *, move_head: bool) -> Mutation:
    def mutate(conn: Connection, n: int) -> tuple[int, int]:
        keep = n - rows
        conn.execute(delete(SUBJECTS).where(SUBJECTS.c.event_seq > keep))
        conn.execute(delete(EVENTS).where(EVENTS.c.seq > keep))
        if move_head:
            last = _row(conn, keep)
            conn.execute(update(AuditHead).values(last_seq=keep, last_hash=last["hash"]))
        return keep, keep + 1

    return mutate


def _rechain(mac: Callable[[str, str], str], *, expect: str = "row") -> Mutation:
    """Change a row, then recompute every hash after it with ``mac`` and fix the head."""

    def mutate(conn: Connection, n: int) -> tuple[int, int]:
        seq = n - n // 20
        conn.execute(update(EVENTS).where(EVENTS.c.seq == seq).values(action="nothing"))
        prev = str(_row(conn, seq - 1)["hash"])
        subjects: dict[int, list[str]] = {}
        for s, p in conn.execute(select(SUBJECTS).where(SUBJECTS.c.event_seq >= seq)):
            subjects.setdefault(s, []).append(p)
        changes = []
        for row in conn.execute(select(EVENTS).where(EVENTS.c.seq >= seq).order_by(EVENTS.c.seq)):
            content = audit.canonical_content(FakeRow(**_chained(dict(row._mapping))),
                                              subjects.get(row.seq, []))  # fmt: skip
            digest = mac(prev, content)
            changes.append({"b_seq": row.seq, "b_prev": prev, "b_hash": digest})
            prev = digest
        conn.execute(
            update(EVENTS)
            .where(EVENTS.c.seq == bindparam("b_seq"))
            .values(prev_hash=bindparam("b_prev"), hash=bindparam("b_hash")),
            changes,
        )
        conn.execute(update(AuditHead).values(last_hash=prev))
        if expect == "anchor":
            anchored = -(-seq // ANCHOR_EVERY) * ANCHOR_EVERY
            return anchored - 1, anchored
        return seq - 1, seq

    return mutate


def _sha256(prev: str, content: str) -> str:
    return hashlib.sha256((prev + content).encode()).hexdigest()


def _hmac_with(key: bytes) -> Callable[[str, str], str]:
    return lambda prev, content: hmac.new(key, (prev + content).encode(), "sha256").hexdigest()


MUTATIONS: dict[str, Mutation] = {
    "modify_first": _modify(lambda n: 1),
    "modify_middle": _modify(lambda n: n * 618 // 1000),
    "modify_last": _modify(lambda n: n),
    "modify_subject": modify_subject,
    "delete": delete_row,
    "swap": swap_rows,
    "insert": insert_row,
    "truncate_tail": _truncate(10, move_head=False),
    "truncate_tail_head_moved_back": _truncate(2 * ANCHOR_EVERY, move_head=True),
    "recompute_sha256_without_key": _rechain(_sha256),
    "recompute_hmac_guessed_key": _rechain(_hmac_with(b"guessed")),
    "rewrite_with_stolen_key": _rechain(_hmac_with(KEY), expect="anchor"),
}


@pytest.mark.slow
def test_at08_every_mutation_is_found_at_its_row(
    backend: str, migrated_url: str, db_factories: dict[str, DatabaseFactory]
) -> None:
    n = ROWS[backend]
    engine = create_engine(normalise_url(migrated_url))
    with engine.begin() as conn:
        anchors = build_chain(conn, n)
    with engine.connect() as conn:
        if backend == "sqlite":
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        baseline = audit.verify_chain(Session(conn), KEY, anchors)
    engine.dispose()
    assert baseline.intact and baseline.rows == n, baseline.summary()

    factory = db_factories[backend]
    found: dict[str, str] = {}
    for name, mutate in MUTATIONS.items():
        copy = factory.clone(migrated_url)
        engine = create_engine(normalise_url(copy))
        with engine.begin() as conn:
            if backend == "postgresql":  # no foreign-key triggers: the forger renumbers freely
                conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
            index, seq = mutate(conn, n)
        with Session(engine) as session:
            report = audit.verify_chain(session, KEY, anchors)
        engine.dispose()
        if backend == "sqlite":
            Path(copy.removeprefix("sqlite:///")).unlink()
        got = (report.first_bad_index, report.first_bad_seq)
        found[name] = "ok" if got == (index, seq) else f"want {(index, seq)} got {got}"
        print(f"  {name}: expected index={index} seq={seq}; {report.summary()}")
    detected = sum(v == "ok" for v in found.values())
    print(f"AT-08 backend={backend} rows={n} mutations={len(MUTATIONS)} detected={detected}")
    assert found == dict.fromkeys(MUTATIONS, "ok")
