"""The audit log on both databases: keyed chain, anchors, refusals, failing closed."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from app.audit import anchors as audit_anchors
from app.audit import repository as audit_repository
from app.audit import service as audit
from app.audit.jobs import anchor_audit_head, verify_audit_chain
from app.audit.models import AuditEvent, AuditHead, AuditSubject
from app.cli import cli
from app.clock import utcnow
from app.config import Settings, get_settings
from app.db import make_engine, make_sessionmaker
from app.readings.models import Reading
from tests.app.factories import batch, bp, patient_id

Auth = Callable[[str], dict[str, str]]


def _key(settings: Settings) -> bytes:
    return audit.audit_key(settings)


def _sha256_rechain(session: Session, from_seq: int) -> None:
    """What the hostile client does: recompute an unkeyed SHA-256 chain after a change."""
    rows = session.scalars(
        select(AuditEvent).where(AuditEvent.seq >= from_seq).order_by(AuditEvent.seq)
    ).all()
    prev = session.scalar(select(AuditEvent.hash).where(AuditEvent.seq == from_seq - 1))
    prev = prev or audit.GENESIS_HASH
    for row in rows:
        subjects = session.scalars(
            select(AuditSubject.patient_id).where(AuditSubject.event_seq == row.seq)
        ).all()
        digest = hashlib.sha256((prev + audit.canonical_content(row, subjects)).encode())
        session.execute(
            update(AuditEvent)
            .where(AuditEvent.seq == row.seq)
            .values(prev_hash=prev, hash=digest.hexdigest())
        )
        prev = digest.hexdigest()
    session.execute(update(AuditHead).values(last_hash=prev))


def test_every_request_extends_an_intact_keyed_chain(
    client: TestClient, auth: Auth, session: Session, settings: Settings
) -> None:
    client.post("/v1/patients/me/sync", json=batch(bp(185, 100)), headers=auth("allan"))
    client.get("/v1/flags", headers=auth("eva"))
    client.get(f"/v1/patients/{patient_id(session, 'allan')}/readings", headers=auth("eva"))
    assert audit_repository.count_events(session) == 3
    report = audit.verify_chain(session, _key(settings))
    assert report.intact and report.rows == 3, report.summary()
    rows = session.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
    assert [r.seq for r in rows] == [1, 2, 3]
    assert all("185" not in (r.resource + r.action) for r in rows)  # no values in the log
    # Another key does not verify the chain: the key, not the database, is the proof.
    assert audit.verify_chain(session, b"another key").first_bad_seq == 1

    session.execute(update(AuditEvent).where(AuditEvent.seq == 2).values(actor_handle="mallory"))
    report = audit.verify_chain(session, _key(settings))
    assert (report.first_bad_index, report.first_bad_seq) == (1, 2)


def test_an_edit_with_the_sha256_chain_recomputed_is_detected(
    client: TestClient, auth: Auth, session: Session, settings: Settings
) -> None:
    """The hostile-client story: edit a row, recompute the SHA-256 chain, fix the head."""
    for _ in range(4):
        client.get("/v1/patients/me/readings", headers=auth("allan"))
    session.execute(update(AuditEvent).where(AuditEvent.seq == 2).values(outcome="ok-ish"))
    _sha256_rechain(session, 2)
    report = audit.verify_chain(session, _key(settings))
    assert (report.first_bad_seq, report.truncated) == (2, False), report.summary()


def test_deleting_the_last_row_is_detected_by_the_head(
    client: TestClient, auth: Auth, session: Session, settings: Settings
) -> None:
    for _ in range(3):
        client.get("/v1/patients/me/readings", headers=auth("allan"))
    session.execute(delete(AuditSubject).where(AuditSubject.event_seq == 3))
    session.execute(delete(AuditEvent).where(AuditEvent.seq == 3))
    report = audit.verify_chain(session, _key(settings))
    assert (report.first_bad_index, report.first_bad_seq, report.truncated) == (2, 3, True)


def test_truncation_with_the_head_moved_back_is_caught_by_the_anchors(
    client: TestClient, auth: Auth, session: Session, settings: Settings
) -> None:
    engine = make_engine(settings.effective_database_url)
    factory = make_sessionmaker(engine)
    anchor_file = audit_anchors.anchor_path(settings)
    anchor_file.unlink(missing_ok=True)
    for _ in range(3):
        client.get("/v1/patients/me/readings", headers=auth("allan"))
    assert anchor_audit_head(factory, settings, utcnow()) == {"anchored": 1, "broken": 0}
    assert anchor_audit_head(factory, settings, utcnow()) == {"anchored": 0, "broken": 0}
    client.get("/v1/patients/me/readings", headers=auth("allan"))
    assert anchor_audit_head(factory, settings, utcnow())["anchored"] == 1
    anchors = audit_anchors.read_anchors(anchor_file)
    assert [a.seq for a in anchors] == [3, 4]

    # Rows 3 and 4 go, and the head is set back to row 2: only the anchors can tell.
    row2 = session.get(AuditEvent, 2)
    assert row2 is not None
    session.execute(delete(AuditSubject).where(AuditSubject.event_seq >= 3))
    session.execute(delete(AuditEvent).where(AuditEvent.seq >= 3))
    session.execute(update(AuditHead).values(last_seq=2, last_hash=row2.hash))
    assert audit.verify_chain(session, _key(settings)).intact  # without anchors: no proof
    report = audit.verify_chain(session, _key(settings), anchors)
    assert (report.first_bad_index, report.first_bad_seq, report.truncated) == (2, 3, True)
    assert "truncated" in (report.reason or "")
    assert anchor_audit_head(factory, settings, utcnow()) == {"anchored": 0, "broken": 1}
    engine.dispose()
    anchor_file.unlink()


def test_scheduled_verification_alerts_in_the_log(
    client: TestClient,
    auth: Auth,
    session: Session,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine = make_engine(settings.effective_database_url)
    factory = make_sessionmaker(engine)
    client.get("/v1/patients/me/readings", headers=auth("allan"))
    client.get("/v1/patients/me/readings", headers=auth("allan"))
    with caplog.at_level(logging.INFO, logger="selfcare.audit"):
        assert verify_audit_chain(factory, settings, utcnow()) == {"rows": 2, "broken": 0}
        session.execute(update(AuditEvent).where(AuditEvent.seq == 1).values(action="nothing"))
        assert verify_audit_chain(factory, settings, utcnow())["broken"] == 1
    alerts = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(alerts) == 1 and "AUDIT CHAIN BROKEN" in alerts[0].getMessage()
    assert "index=0 seq=1" in alerts[0].getMessage()
    engine.dispose()


def test_selfcare_audit_verify_names_the_first_bad_row(
    client: TestClient,
    auth: Auth,
    session: Session,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    for _ in range(3):
        client.get("/v1/patients/me/readings", headers=auth("allan"))
    anchors = tmp_path / "shipped.log"
    last = session.get(AuditEvent, 3)
    assert last is not None
    anchor = audit_anchors.anchor_line(audit.Anchor(seq=3, hash=last.hash))
    anchors.write_text(f"INFO selfcare.audit: {audit_anchors.LOG_PREFIX} {anchor}\n")
    monkeypatch.setenv("SELFCARE_DATABASE_URL", settings.effective_database_url)
    monkeypatch.setenv("SELFCARE_VAR_DIR", str(settings.var_dir))
    monkeypatch.setenv("SELFCARE_AUDIT_KEY", settings.audit_key)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        ok = runner.invoke(cli, ["audit", "verify", "--anchors", str(anchors)])
        assert ok.exit_code == 0, ok.output
        assert "rows=3" in ok.output and "anchors_checked=1" in ok.output
        session.execute(update(AuditEvent).where(AuditEvent.seq == 2).values(resource="x"))
        broken = runner.invoke(cli, ["audit", "verify", "--anchors", str(anchors)])
        assert broken.exit_code == 1
        assert "AUDIT CHAIN BROKEN" in broken.output and "index=1 seq=2" in broken.output
    finally:
        get_settings.cache_clear()


def test_refusals_by_the_policy_are_audited(
    client: TestClient, auth: Auth, session: Session, settings: Settings
) -> None:
    """A 404 for a patient the caller has no relation to is logged, naming that patient."""
    gunilla = patient_id(session, "gunilla")
    refused = client.get(f"/v1/patients/{gunilla}/readings", headers=auth("eva"))
    missing = client.get(
        "/v1/patients/00000000-0000-4000-8000-000000000000/readings", headers=auth("eva")
    )
    assert refused.status_code == missing.status_code == 404
    assert refused.json() == missing.json()  # the caller cannot tell them apart
    anonymous = client.get(f"/v1/patients/{gunilla}/readings")
    assert anonymous.status_code == 401
    rows = session.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
    assert [(r.actor_handle, r.relation, r.outcome) for r in rows] == [
        ("eva", "none", "refused:404"),
        ("eva", "none", "refused:404"),
    ]
    assert rows[0].care_unit_name == "Vårdcentralen Norra"
    subjects = session.execute(select(AuditSubject.event_seq, AuditSubject.patient_id)).all()
    assert [tuple(s) for s in subjects] == [(1, gunilla)]  # the missing id names nobody
    assert audit.verify_chain(session, _key(settings)).intact
    # Gunilla sees the attempt in her access log.
    log = client.get("/v1/patients/me/access-log", headers=auth("gunilla")).json()["items"]
    assert [(i["actor"]["handle"], i["outcome"]) for i in log][-1] == ("eva", "refused:404")


def test_when_the_audit_write_fails_no_data_is_returned_and_nothing_is_saved(
    client: TestClient, auth: Auth, session: Session
) -> None:
    """AT-06, fail closed: without its audit row, a request neither answers with data nor
    writes."""
    session.execute(delete(AuditHead))
    readings_before = session.scalar(select(func.count()).select_from(Reading))
    allan = patient_id(session, "allan")
    reads = [
        client.get("/v1/patients/me/readings", headers=auth("allan")),
        client.get(f"/v1/patients/{allan}/readings", headers=auth("eva")),
        client.get("/v1/flags", headers=auth("eva")),
        client.get("/v1/patients/me/access-log", headers=auth("allan")),
    ]
    writes = [
        client.post("/v1/patients/me/sync", json=batch(bp(120, 80)), headers=auth("allan")),
        client.post(f"/v1/patients/{allan}/sync", json=batch(bp(121, 81)), headers=auth("eva")),
    ]
    data_keys = {"items", "results", "advice", "changes"}
    with_data = [r for r in reads + writes if r.status_code < 500 or data_keys & set(r.json())]
    print(f"AT-06 responses={len(reads) + len(writes)} responses_with_data={len(with_data)}")
    assert with_data == []
    assert all(r.json()["status"] == 500 for r in reads + writes)
    assert session.scalar(select(func.count()).select_from(Reading)) == readings_before
    assert audit_repository.count_events(session) == 0


def test_anchor_lines_round_trip_from_a_shipped_log(tmp_path: Path) -> None:
    anchor = audit.Anchor(seq=7, hash="ab" * 32, at=utcnow())
    path = tmp_path / "anchors.log"
    audit_anchors.append_anchor(path, anchor)
    audit_anchors.append_anchor(path, audit.Anchor(seq=9, hash="cd" * 32, at=anchor.at))
    assert audit_anchors.read_anchors(path)[0] == anchor
    last = audit_anchors.last_anchor(path)
    assert last is not None and last.seq == 9
    logged = f"2026-12-03 INFO selfcare.audit: audit-anchor {audit_anchors.anchor_line(anchor)}"
    assert audit_anchors.parse_anchor(logged) == anchor
    assert audit_anchors.parse_anchor("INFO scheduler: jobs started") is None
    assert json.loads(path.read_text().splitlines()[1])["seq"] == 9


def test_a_session_kept_across_transactions_chains_onto_the_newest_head(
    settings: Settings, db_url: str
) -> None:
    """The head is read locked from the database at each append: a session that commits
    twice, with another session's append in between, continues after that append (it must
    not chain onto the head it saw in its first transaction)."""
    engine = make_engine(db_url)
    factory = audit.use_key(make_sessionmaker(engine), _key(settings))

    def entry(handle: str) -> audit.AuditEntry:
        return audit.AuditEntry(
            occurred_at=utcnow(),
            actor_id=None,
            actor_handle=handle,
            actor_role="clinician",
            relation="care_team",
            action="read",
            resource="GET /v1/flags",
            patient_ids=(),
        )

    try:
        with factory() as kept, factory() as other:
            before = audit_repository.count_events(kept)
            audit.record(kept, entry("first"))
            kept.commit()
            audit.record(other, entry("between"))
            other.commit()
            audit.record(kept, entry("second"))
            kept.commit()
            handles = kept.scalars(
                select(AuditEvent.actor_handle)
                .where(AuditEvent.seq > before)
                .order_by(AuditEvent.seq)
            ).all()
            assert handles == ["first", "between", "second"]
            report = audit.verify_chain(kept, _key(settings))
            assert report.intact, report.summary()
    finally:
        engine.dispose()
