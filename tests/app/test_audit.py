"""The audit log on both databases: hash chain, tamper evidence, failing closed."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.audit.models import AuditEvent, AuditHead, AuditSubject
from app.readings.models import Reading
from tests.app.factories import batch, bp, patient_id

Auth = Callable[[str], dict[str, str]]


def test_every_request_extends_an_intact_chain(
    client: TestClient, auth: Auth, session: Session
) -> None:
    client.post("/v1/patients/me/sync", json=batch(bp(185, 100)), headers=auth("allan"))
    client.get("/v1/flags", headers=auth("eva"))
    client.get(f"/v1/patients/{patient_id(session, 'allan')}/readings", headers=auth("eva"))
    assert audit.count_events(session) == 3
    assert audit.verify_chain(session) is None
    rows = session.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
    assert [r.seq for r in rows] == [1, 2, 3]
    assert all("185" not in (r.resource + r.action) for r in rows)  # no values in the log

    session.execute(update(AuditEvent).where(AuditEvent.seq == 2).values(actor_handle="mallory"))
    assert audit.verify_chain(session) == 2


def test_deleting_the_last_row_is_detected(
    client: TestClient, auth: Auth, session: Session
) -> None:
    for _ in range(3):
        client.get("/v1/patients/me/readings", headers=auth("allan"))
    session.execute(delete(AuditSubject).where(AuditSubject.event_seq == 3))
    session.execute(delete(AuditEvent).where(AuditEvent.seq == 3))
    assert audit.verify_chain(session) == 3  # the head still names row 3


def test_when_the_audit_write_fails_no_data_is_returned_and_nothing_is_saved(
    client: TestClient, auth: Auth, session: Session
) -> None:
    """Fail closed: without its audit row, a request neither answers with data nor writes."""
    session.execute(delete(AuditHead))
    readings_before = session.scalar(select(func.count()).select_from(Reading))
    read = client.get("/v1/patients/me/readings", headers=auth("allan"))
    assert read.status_code == 500 and "items" not in read.json()
    write = client.post("/v1/patients/me/sync", json=batch(bp(120, 80)), headers=auth("allan"))
    assert write.status_code == 500 and "results" not in write.json()
    assert session.scalar(select(func.count()).select_from(Reading)) == readings_before
    assert audit.count_events(session) == 0
