"""Audit: every access to patient data is appended to a keyed hash chain in the same transaction.

Entries are collected on the session while the request runs and written just before it
commits, under a lock on the chain's head. If writing them fails, the commit fails and the
caller gets no data: the log fails closed.

The chain is keyed: ``hash`` = HMAC-SHA256(key, ``prev_hash`` + the row's canonical content),
with a key that lives outside the database (``SELFCARE_AUDIT_KEY``, or ``var/audit-key``
generated once, like the cursor secret). Someone who can write to the database but has not
the key cannot recompute the chain after changing, inserting or swapping a row. Deleting rows
at the tail (and moving the head back) is caught by the anchors, copies of the head written
outside the database at intervals (``app.audit.anchors``).

The chain is keyed from its first row: there is no production data from before, and accepting
an unkeyed prefix would give a forger a way around the key. A database written before the key
was introduced fails verification at row 1; recreate it (development data only).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, Protocol

from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from app.audit import repository
from app.audit.models import AuditHead
from app.config import Settings, get_settings
from app.keys import write_once

GENESIS_HASH = "0" * 64
_PENDING = "audit_pending"
_KEY = "audit_key"


@dataclass(frozen=True)
class AuditEntry:
    """What one request did to whose data; never any measurement values."""

    occurred_at: datetime
    actor_id: str | None
    actor_handle: str
    actor_role: str
    relation: str
    action: str
    resource: str
    patient_ids: tuple[str, ...]
    care_unit_id: str | None = None
    care_unit_name: str | None = None
    outcome: str = "ok"
    extra: dict[str, Any] = field(default_factory=dict)


def record(session: Session, entry: AuditEntry) -> None:
    """Queue an audit entry; it is written in the same transaction, before commit."""
    session.info.setdefault(_PENDING, []).append(entry)


def pending(session: Session) -> list[AuditEntry]:
    """The entries queued on this session and not yet written."""
    return list(session.info.get(_PENDING, []))


def audit_key(settings: Settings) -> bytes:
    """The chain's HMAC key: configured, or generated into ``var/`` once (mode 0600)."""
    if settings.audit_key:
        return settings.audit_key.encode()
    generated = write_once(settings.var_dir / "audit-key", lambda: secrets.token_hex(32).encode())
    return generated.strip()


def use_key(factory: sessionmaker[Session], key: bytes) -> sessionmaker[Session]:
    """Make the sessions of ``factory`` sign audit rows with ``key``; the same factory back."""
    factory.configure(info={_KEY: key})
    return factory


class ChainRow(Protocol):
    """The columns of an audit row that the chain covers (an ORM row or a result row)."""

    @property
    def seq(self) -> int:
        """The row's place in the chain, from 1."""

    @property
    def occurred_at(self) -> datetime:
        """When the access happened."""

    @property
    def actor_id(self) -> str | None:
        """The acting user's id (None: the system, e.g. a command-line import or a backup)."""

    @property
    def actor_handle(self) -> str:
        """The actor's handle as it was then."""

    @property
    def actor_role(self) -> str:
        """The actor's role: patient, proxy, clinician or admin."""

    @property
    def care_unit_id(self) -> str | None:
        """The care unit the actor worked for, when the token says so."""

    @property
    def care_unit_name(self) -> str | None:
        """That care unit's name as it was then."""

    @property
    def relation(self) -> str:
        """How the actor came to the data: self, proxy, care_team or admin."""

    @property
    def action(self) -> str:
        """What was done: a policy action, or what a command or a login did."""

    @property
    def resource(self) -> str:
        """What was touched: the request's path, or what a command worked on."""

    @property
    def outcome(self) -> str:
        """How it went: ``ok``, or ``refused:<status>``."""


def canonical_content(row: ChainRow, patient_ids: Iterable[str]) -> str:
    """The row's content as the chain signs it: sorted-key JSON, times in UTC."""
    content = {
        "seq": row.seq,
        "occurred_at": row.occurred_at.astimezone(UTC).isoformat(),
        "actor_id": row.actor_id,
        "actor_handle": row.actor_handle,
        "actor_role": row.actor_role,
        "care_unit_id": row.care_unit_id,
        "care_unit_name": row.care_unit_name,
        "relation": row.relation,
        "action": row.action,
        "resource": row.resource,
        "outcome": row.outcome,
        "patients": sorted(set(patient_ids)),
    }
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def row_hash(key: bytes, prev_hash: str, row: ChainRow, patient_ids: Iterable[str]) -> str:
    """The chain hash of one audit row: HMAC-SHA256 over the previous hash and the content."""
    message = (prev_hash + canonical_content(row, patient_ids)).encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def _session_key(session: Session) -> bytes:
    key = session.info.get(_KEY)
    if isinstance(key, bytes) and key:
        return key
    # Sessions not made by a factory bound with use_key (the CLI, jobs) sign with the key of
    # the process's settings, which is the one key in production.
    return audit_key(get_settings())


def write_pending(session: Session) -> None:
    """Append the queued entries to the chain (called from the before-commit hook).

    Core statements, not the session's unit of work: the head is read locked from the
    database (a session kept across transactions must not chain onto a stale copy of it),
    and a request's one or two rows need no objects of their own.
    """
    entries: list[AuditEntry] = session.info.pop(_PENDING, [])
    if not entries:
        return
    key = _session_key(session)
    last_seq, last_hash = repository.locked_head(session)
    events: list[dict[str, Any]] = []
    subjects: list[dict[str, Any]] = []
    for entry in entries:
        row: dict[str, Any] = {
            "seq": last_seq + 1,
            "occurred_at": entry.occurred_at.astimezone(UTC),
            "actor_id": entry.actor_id,
            "actor_handle": entry.actor_handle,
            "actor_role": entry.actor_role,
            "care_unit_id": entry.care_unit_id,
            "care_unit_name": entry.care_unit_name,
            "relation": entry.relation,
            "action": entry.action,
            "resource": entry.resource,
            "outcome": entry.outcome,
            "prev_hash": last_hash,
        }
        row["hash"] = row_hash(key, last_hash, SimpleNamespace(**row), entry.patient_ids)
        events.append(row)
        subjects += [{"event_seq": row["seq"], "patient_id": p} for p in set(entry.patient_ids)]
        last_seq, last_hash = row["seq"], row["hash"]
    repository.append(session, events, subjects, (last_seq, last_hash))


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    write_pending(session)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)


@dataclass(frozen=True)
class Anchor:
    """A copy of the chain's head kept outside the database: row ``seq`` had ``hash``."""

    seq: int
    hash: str
    at: datetime | None = None
    # A restore marker (app/backup.py): the chain was put back to this row; earlier anchors
    # of later rows name rows the restore took away.
    restore: bool = False


@dataclass(frozen=True)
class ChainReport:
    """What a walk along the chain found; ``first_bad_*`` name the first row that is wrong.

    ``first_bad_index`` is the row's position (0-based, in ``seq`` order) as stored now,
    ``first_bad_seq`` the sequence number the chain expected there. When rows are missing at
    the tail, both point one past the last row, and ``truncated`` is set.
    """

    rows: int
    last_seq: int
    anchors_checked: int = 0
    first_bad_index: int | None = None
    first_bad_seq: int | None = None
    reason: str | None = None
    truncated: bool = False

    @property
    def intact(self) -> bool:
        """Whether every row, the head and every anchor agree."""
        return self.first_bad_seq is None

    def summary(self) -> str:
        """One line for the log and the CLI."""
        if self.intact:
            return (
                f"audit chain intact: rows={self.rows} last_seq={self.last_seq} "
                f"anchors_checked={self.anchors_checked}"
            )
        return (
            f"AUDIT CHAIN BROKEN: first bad row index={self.first_bad_index} "
            f"seq={self.first_bad_seq} ({self.reason}); rows={self.rows} "
            f"last_seq={self.last_seq} anchors_checked={self.anchors_checked}"
            + (" TRUNCATED" if self.truncated else "")
        )


@dataclass
class ChainWalk:
    """Checks rows in ``seq`` order, chunk by chunk, from genesis or from a trusted anchor.

    A row is bad when its ``seq`` is not the next one (a row deleted, inserted or moved), when
    its ``prev_hash`` is not the previous row's hash, when its HMAC does not match its content
    (changed, swapped, or recomputed without the key) or when an anchor names another hash for
    it (the chain rewritten by someone holding the key). Walking stops at the first bad row.
    """

    key: bytes
    anchors: Mapping[int, str] = field(default_factory=dict)
    next_seq: int = 1
    prev_hash: str = GENESIS_HASH
    index: int = 0
    anchors_checked: int = 0
    bad: tuple[int, int, str] | None = None  # index, seq, reason

    def feed(self, rows: Iterable[tuple[ChainRow, str, str, Sequence[str]]]) -> bool:
        """Check ``(row, prev_hash, hash, patient_ids)`` in order; False once a row is bad."""
        for row, prev_hash, row_mac, patients in rows:
            if self.bad is not None:
                return False
            reason = None
            if row.seq != self.next_seq:
                reason = (
                    f"rows missing before seq {row.seq}"
                    if row.seq > self.next_seq
                    else f"seq {row.seq} out of order"
                )
            elif prev_hash != self.prev_hash:
                reason = "prev_hash does not link to the row before"
            elif not hmac.compare_digest(row_hash(self.key, prev_hash, row, patients), row_mac):
                reason = "hash does not match the content (changed, or not made with the key)"
            elif row.seq in self.anchors:
                self.anchors_checked += 1
                if self.anchors[row.seq] != row_mac:
                    reason = "the anchor kept outside the database names another hash"
            if reason is not None:
                self.bad = (self.index, self.next_seq, reason)
                return False
            self.prev_hash, self.next_seq, self.index = row_mac, row.seq + 1, self.index + 1
        return self.bad is None

    def finish(self, head: tuple[int, str] | None) -> ChainReport:
        """The report, after the last row: the head and the anchors past the end checked."""
        last_seq = self.next_seq - 1
        truncated = False
        if self.bad is None:
            beyond = sorted(s for s in self.anchors if s > last_seq)
            if beyond:
                truncated = True
                self.anchors_checked += len(beyond)
                self.bad = (
                    self.index,
                    self.next_seq,
                    f"truncated: an anchor names seq {beyond[-1]} but the chain ends at "
                    f"seq {last_seq}",
                )
            elif head is None and last_seq > 0:
                self.bad = (self.index, self.next_seq, "the head row is missing")
            elif head is not None and head != (last_seq, self.prev_hash):
                head_seq = head[0]
                truncated = head_seq > last_seq
                where = min(head_seq + 1, self.next_seq)
                self.bad = (
                    self.index - (self.next_seq - where),
                    where,
                    f"the head names seq {head_seq} but the chain ends at seq {last_seq}"
                    if head_seq != last_seq
                    else "the head's hash differs from the last row's",
                )
        index, seq, reason = self.bad if self.bad is not None else (None, None, None)
        return ChainReport(
            rows=self.index,
            last_seq=last_seq,
            anchors_checked=self.anchors_checked,
            first_bad_index=index,
            first_bad_seq=seq,
            reason=reason,
            truncated=truncated,
        )


CHUNK_ROWS = 5_000


def chain_chunk(
    session: Session, *, after_seq: int, limit: int = CHUNK_ROWS
) -> list[tuple[ChainRow, str, str, list[str]]]:
    """The next ``limit`` audit rows after ``after_seq``, each with its subject patients."""
    rows: Sequence[Any] = repository.rows_after(session, after_seq, limit)
    if not rows:
        return []
    subjects: dict[int, list[str]] = {}
    for seq, pid in repository.subjects_between(session, after_seq, rows[-1].seq):
        subjects.setdefault(seq, []).append(pid)
    return [(r, r.prev_hash, r.hash, subjects.get(r.seq, [])) for r in rows]


def chain_head(session: Session) -> tuple[int, str] | None:
    """The head row's ``(last_seq, last_hash)``, or None when it is missing."""
    head = session.get(AuditHead, 1)
    return None if head is None else (head.last_seq, head.last_hash)


def verify_chain(session: Session, key: bytes, anchors: Iterable[Anchor] = ()) -> ChainReport:
    """Walk the whole chain in one session; the report names the first bad row."""
    walk = ChainWalk(key, {a.seq: a.hash for a in anchors})
    last = 0
    while True:
        chunk = chain_chunk(session, after_seq=last)
        if not chunk or not walk.feed(chunk):
            break
        last = chunk[-1][0].seq
    return walk.finish(chain_head(session))
