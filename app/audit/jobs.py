"""Audit jobs: anchor the chain's head outside the database, and verify the whole chain.

``anchor_audit_head`` (every ``audit_anchor_interval_seconds``) walks the rows written since
the last anchor, and when they follow from it appends the new head to the anchor file and
logs it. ``verify_audit_chain`` (every ``audit_verify_interval_seconds``) walks the whole
chain against the key and every anchor. Both read in chunks of their own short transactions
(rows are only ever appended, so a chunk never changes behind the walk) and, when the chain is
broken, log an ERROR line starting ``AUDIT CHAIN BROKEN`` naming the first bad row: that line
is the alert. Several processes running them at once only repeat each other's work (two
identical anchor lines at worst).
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from app.audit import anchors as audit_anchors
from app.audit import service as audit
from app.audit.models import AuditEvent
from app.config import Settings
from app.db import transaction

log = logging.getLogger("selfcare.audit")


def walk_chain(
    factory: sessionmaker[Session], walk: audit.ChainWalk, *, chunk_rows: int = audit.CHUNK_ROWS
) -> audit.ChainReport:
    """Feed the rows after ``walk.next_seq - 1`` to ``walk``, one transaction per chunk."""
    last = walk.next_seq - 1
    while True:
        with transaction(factory) as session:
            chunk = audit.chain_chunk(session, after_seq=last, limit=chunk_rows)
            head = audit.chain_head(session)
        if not chunk or not walk.feed(chunk):
            return walk.finish(head)
        last = chunk[-1][0].seq


def verify_audit_chain(
    factory: sessionmaker[Session], settings: Settings, now: datetime
) -> dict[str, int]:
    """Verify the whole chain against the key and the anchor file; alert in the log."""
    anchors = audit_anchors.read_anchors(audit_anchors.anchor_path(settings))
    walk = audit.ChainWalk(audit.audit_key(settings), {a.seq: a.hash for a in anchors})
    report = walk_chain(factory, walk)
    if report.intact:
        log.info(report.summary())
    else:
        log.error(report.summary())
    return {"rows": report.rows, "broken": int(not report.intact)}


def anchor_audit_head(
    factory: sessionmaker[Session], settings: Settings, now: datetime
) -> dict[str, int]:
    """Append the head to the anchor file when it moved and the new rows verify."""
    path = audit_anchors.anchor_path(settings)
    previous = audit_anchors.last_anchor(path)
    key = audit.audit_key(settings)
    walk = audit.ChainWalk(key)
    if previous is not None:
        with transaction(factory) as session:
            anchored = session.get(AuditEvent, previous.seq)
            anchored_hash = None if anchored is None else anchored.hash
        if anchored_hash != previous.hash:
            reason = (
                "truncated: the last anchor's row is gone"
                if anchored_hash is None
                else "the last anchor's row has another hash"
            )
            log.error("AUDIT CHAIN BROKEN: %s (anchor seq=%s); not anchored", reason, previous.seq)
            return {"anchored": 0, "broken": 1}
        walk = audit.ChainWalk(
            key, next_seq=previous.seq + 1, prev_hash=previous.hash, index=previous.seq
        )
    report = walk_chain(factory, walk)
    if not report.intact:
        log.error(report.summary() + "; not anchored")
        return {"anchored": 0, "broken": 1}
    if report.last_seq == (previous.seq if previous is not None else 0):
        return {"anchored": 0, "broken": 0}
    anchor = audit.Anchor(seq=report.last_seq, hash=walk.prev_hash, at=now)
    line = audit_anchors.append_anchor(path, anchor)
    log.info("%s %s", audit_anchors.LOG_PREFIX, line)
    return {"anchored": 1, "broken": 0}
