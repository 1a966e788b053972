"""Sync over HTTP on both databases: per-item results, idempotence (AT-09), bad input."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Select, create_engine, delete, func, select
from sqlalchemy.orm import Session

from app import deps
from app.auth.tokens import verify_token
from app.clock import clock
from app.db import normalise_url
from app.feed.models import Change
from app.findings.models import Advice, Flag
from app.readings import repository as readings_repository
from app.readings.models import Reading, Source
from tests.app.factories import batch, bp, patient_id, scalar

Auth = Callable[[str], dict[str, str]]


def _count(session: Session, model: type) -> int:
    session.expire_all()
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_very_high_blood_pressure_gives_urgent_advice_in_the_answer(
    client: TestClient, auth: Auth
) -> None:
    response = client.post("/v1/patients/me/sync", json=batch(bp(185, 100)), headers=auth("allan"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert [r["status"] for r in body["results"]] == ["created"]
    assert [a["rule"]["id"] for a in body["advice"]] == ["bp-very-high"]
    assert body["advice"][0]["priority"] == "urgent"
    assert body["advice"][0]["lang"] == "sv"
    kinds = {(c["entity"], c["op"]) for c in body["changes"]}
    assert {("reading", "upsert"), ("advice", "upsert"), ("flag", "upsert")} <= kinds
    assert body["has_more"] is False and body["cursor"]


def test_advice_follows_accept_language(client: TestClient, auth: Auth) -> None:
    headers = {**auth("allan"), "Accept-Language": "en-GB,en;q=0.8"}
    body = client.post("/v1/patients/me/sync", json=batch(bp(181, 90)), headers=headers).json()
    assert body["advice"][0]["lang"] == "en"
    swedish = client.get("/v1/patients/me/advice", headers=auth("allan")).json()["items"][0]
    assert swedish["lang"] == "sv" and swedish["title"] != body["advice"][0]["title"]


def test_replaying_a_batch_ten_times_stores_each_reading_once(
    client: TestClient, auth: Auth, session: Session
) -> None:
    """AT-09: same batch ×10 → one row each, identical results; other content → conflict."""
    readings = [bp(140 + i, 85, minutes_ago=60 - i) for i in range(5)]
    first = client.post("/v1/patients/me/sync", json=batch(*readings), headers=auth("allan"))
    assert first.status_code == 200
    ids = [r["id"] for r in first.json()["results"]]
    before = _count(session, Reading)
    replies = [
        client.post("/v1/patients/me/sync", json=batch(*readings), headers=auth("allan")).json()
        for _ in range(10)
    ]
    assert _count(session, Reading) == before
    for reply in replies:
        assert [r["status"] for r in reply["results"]] == ["duplicate"] * 5
        assert [r["id"] for r in reply["results"]] == ids
    changed = dict(readings[0], value={"systolic": 150, "diastolic": 85})
    conflict = client.post("/v1/patients/me/sync", json=batch(changed), headers=auth("allan"))
    result = conflict.json()["results"][0]
    assert result["status"] == "rejected"
    assert result["errors"][0]["code"] == "client_id_conflict"
    assert _count(session, Reading) == before
    print(f"AT-09 replays=10 rows_created={len(ids)}")


def test_same_measurement_from_a_second_source_is_a_duplicate_and_not_counted(
    client: TestClient, auth: Auth, session: Session
) -> None:
    tablet = scalar("spo2", 85, "%", minutes_ago=10)
    scale_app = dict(tablet, client_id="other-source-id", time=tablet["time"])
    one = client.post(
        "/v1/patients/me/sync", json=batch(tablet, source="asta-tablet"), headers=auth("asta")
    ).json()
    two = client.post(
        "/v1/patients/me/sync", json=batch(scale_app, source="asta-scale"), headers=auth("asta")
    ).json()
    assert one["results"][0]["status"] == "created"
    assert two["results"][0]["status"] == "duplicate"
    assert two["results"][0]["duplicate_of"] == one["results"][0]["id"]
    assert two["advice"] == []
    flags = session.scalars(select(Flag).where(Flag.rule_id == "spo2-low")).all()
    assert len(flags) == 1 and flags[0].firing_count == 1


def test_a_source_is_kept_from_its_first_sync_and_its_last_seen_moves(
    client: TestClient, auth: Auth, session: Session
) -> None:
    """One statement records a source (insert, or only move ``last_seen`` when known): the
    first sync's name and kind stay, the row is one, and the readings of both syncs name it."""
    first = datetime.now(UTC).replace(microsecond=0)
    second = first + timedelta(minutes=7)
    try:
        clock.fixed = first
        one = client.post(
            "/v1/patients/me/sync",
            json=batch(scalar("spo2", 97, "%", minutes_ago=5), source="asta-oximeter"),
            headers=auth("asta"),
        )
        renamed = batch(scalar("spo2", 96, "%", minutes_ago=3), source="asta-oximeter")
        renamed["source"] = dict(renamed["source"], name="Another name", version="2.0")
        clock.fixed = second
        two = client.post("/v1/patients/me/sync", json=renamed, headers=auth("asta"))
    finally:
        clock.fixed = None
    assert one.status_code == two.status_code == 200
    (source,) = session.scalars(
        select(Source).where(Source.client_source_id == "asta-oximeter")
    ).all()
    assert (source.name, source.version) == ("Testappen", "1.0")
    assert source.first_seen == first and source.last_seen == second
    ids = [one.json()["results"][0]["id"], two.json()["results"][0]["id"]]
    assert set(session.scalars(select(Reading.source_id).where(Reading.id.in_(ids)))) == {source.id}


def test_each_bad_item_is_rejected_with_a_reason_and_the_good_ones_stored(
    client: TestClient, auth: Auth, session: Session
) -> None:
    good = scalar("weight", 80.5, "kg")
    items = [
        good,
        scalar("weight", 80.5, "stone"),
        scalar("height", 180, "cm"),
        bp(400, 80),
        dict(scalar("pulse", 70, "/min"), time="2026-11-20T07:31:00"),
        dict(scalar("pulse", 70, "/min"), time="2999-01-01T00:00:00+00:00"),
        {"type": "pulse"},
    ]
    body = client.post("/v1/patients/me/sync", json=batch(*items), headers=auth("allan")).json()
    statuses = [r["status"] for r in body["results"]]
    assert statuses == ["created"] + ["rejected"] * 6
    codes = [r["errors"][0]["code"] for r in body["results"][1:]]
    assert codes == [
        "unknown_unit",
        "unknown_type",
        "implausible",
        "missing_offset",
        "future_time",
        "invalid",
    ]
    assert all(r["errors"][0]["message"] for r in body["results"][1:])
    stored = session.scalars(select(Reading)).all()
    assert [r.client_id for r in stored] == [good["client_id"]]


def test_bad_envelopes_answer_4xx_problems_and_change_nothing(
    client: TestClient, auth: Auth, session: Session
) -> None:
    headers = {**auth("allan"), "Content-Type": "application/json"}
    before = (_count(session, Reading), _count(session, Change), _count(session, Advice))
    cases = [
        (b"{not json", 400),
        (b'{"source": {"id": "x", "kind": "app"}, "readings": [{"value": NaN}]}', 400),
        (b"\xef\xbb\xbf" + json.dumps(batch(bp(120, 80))).encode(), 400),
        (b"[" * 100_000 + b"]" * 100_000, 400),
        (json.dumps({"readings": []}).encode(), 422),
        (json.dumps({"source": {"id": "bad id!", "kind": "app"}, "readings": []}).encode(), 422),
        (json.dumps(batch(*[bp(120, 80) for _ in range(5001)])).encode(), 413),
        (b" " * (5 * 1024 * 1024 + 1), 413),
    ]
    for raw, status in cases:
        response = client.post("/v1/patients/me/sync", content=raw, headers=headers)
        assert response.status_code == status, (raw[:40], response.text[:200])
        assert response.headers["content-type"].startswith("application/problem+json")
        problem = response.json()
        assert problem["status"] == status and problem["title"] and problem["detail"]
    assert (_count(session, Reading), _count(session, Change), _count(session, Advice)) == before
    assert client.get("/v1/patients/me/readings", headers=auth("allan")).status_code == 200


def test_envelope_validation_lists_every_error(client: TestClient, auth: Auth) -> None:
    body = {"source": {"kind": "spaceship"}, "readings": "many"}
    response = client.post("/v1/patients/me/sync", json=body, headers=auth("allan"))
    assert response.status_code == 422
    locs = {e["loc"] for e in response.json()["errors"]}
    assert {"source.id", "source.kind", "readings"} <= locs


def test_change_feed_continues_from_the_cursor(client: TestClient, auth: Auth) -> None:
    first = client.post("/v1/patients/me/sync", json=batch(bp(120, 80)), headers=auth("allan"))
    cursor = first.json()["cursor"]
    client.post("/v1/patients/me/sync", json=batch(bp(121, 80)), headers=auth("allan"))
    page = client.get(
        "/v1/patients/me/changes", params={"cursor": cursor}, headers=auth("allan")
    ).json()
    assert [c["entity"] for c in page["changes"]] == ["reading"]
    assert page["changes"][0]["data"]["value"] == {"systolic": 121, "diastolic": 80}
    other = client.get(
        "/v1/patients/me/changes", params={"cursor": cursor}, headers=auth("gunilla")
    )
    assert other.status_code == 400  # a cursor is bound to its patient


def test_delete_is_a_tombstone_in_the_feed(
    client: TestClient, auth: Auth, session: Session
) -> None:
    created = client.post(
        "/v1/patients/me/sync", json=batch(scalar("weight", 71.0, "kg")), headers=auth("asta")
    ).json()
    rid = created["results"][0]["id"]
    pid = patient_id(session, "asta")
    gone = client.delete(f"/v1/patients/{pid}/readings/{rid}", headers=auth("karin"))
    assert gone.status_code == 204
    listed = client.get("/v1/patients/me/readings", headers=auth("asta")).json()["items"]
    assert rid not in [r["id"] for r in listed]
    feed = client.get(
        f"/v1/patients/{pid}/changes", params={"cursor": created["cursor"]}, headers=auth("maria")
    ).json()
    assert [(c["entity"], c["op"], c["id"]) for c in feed["changes"]] == [
        ("reading", "delete", rid)
    ]
    session.expire_all()
    assert session.get(Reading, rid) is not None  # nothing is physically deleted


def test_a_cursor_older_than_the_feed_keeps_answers_410(
    client: TestClient, auth: Auth, session: Session
) -> None:
    first = client.post("/v1/patients/me/sync", json=batch(bp(120, 80)), headers=auth("allan"))
    old_cursor = first.json()["cursor"]
    for systolic in (121, 122, 123):
        client.post("/v1/patients/me/sync", json=batch(bp(systolic, 80)), headers=auth("allan"))
    pid = patient_id(session, "allan")
    newest = session.scalar(select(func.max(Change.seq)).where(Change.patient_id == pid))
    # Retention dropped the oldest changes: the old cursor points before what is kept.
    session.execute(delete(Change).where(Change.patient_id == pid, Change.seq < newest - 1))
    gone = client.get(
        "/v1/patients/me/changes", params={"cursor": old_cursor}, headers=auth("allan")
    )
    assert gone.status_code == 410
    assert gone.headers["content-type"].startswith("application/problem+json")
    fresh = client.get("/v1/patients/me/changes", headers=auth("allan"))
    assert fresh.status_code == 200 and fresh.json()["changes"]


def test_a_sync_verifies_its_token_once(
    client: TestClient, auth: Auth, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The flood limit verifies the token before the body is read; the actor reuses those
    claims (a signature check is a tenth of a millisecond on every request)."""
    calls: list[str] = []

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append("verify")
        return verify_token(*args, **kwargs)

    monkeypatch.setattr(deps, "verify_token", counting)
    sent = client.post(
        "/v1/patients/me/sync", json=batch(scalar("spo2", 97, "%")), headers=auth("asta")
    )
    assert sent.status_code == 200
    assert calls == ["verify"]
    forged = client.post(
        "/v1/patients/me/sync",
        json=batch(scalar("spo2", 97, "%")),
        headers={"Authorization": auth("asta")["Authorization"] + "x"},
    )
    assert forged.status_code == 401  # a token that fails is refused, not reused


def test_a_batch_s_client_ids_are_never_compared_one_by_one(
    backend: str, db_url: str, client: TestClient, auth: Auth
) -> None:
    """Finding which client ids of a batch are stored is an index probe or a hash per id, with
    statistics from when the source was small too. On PostgreSQL that holds for the generic
    plan it may settle on once psycopg prepares the lookup: with an IN list of parameters
    that plan read the source's readings and compared each with every id of the batch (issue
    17 §6: 0.36 s for 1,000 ids at 9,000 readings, 12 ms as a join to the array). SQLite,
    which plans each run and has no statistics (the service never runs ANALYZE there),
    searches the unique index for each id of its IN list."""
    postgres = backend == "postgresql"

    def sync(count: int) -> None:
        items = [
            scalar("weight", 70 + i % 50 / 10, "kg", minutes_ago=3000 - i) for i in range(count)
        ]
        answer = client.post("/v1/patients/me/sync", json=batch(*items), headers=auth("allan"))
        assert answer.status_code == 200, answer.text

    engine = create_engine(normalise_url(db_url))
    try:
        sync(5)
        if postgres:  # the statistics of a small source, as autovacuum may have left them
            with engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE readings")
        sync(1000)
        statement = readings_repository.by_client_id_statement(postgres=postgres)
        with engine.begin() as conn:
            patient, source = conn.execute(select(Reading.patient_id, Reading.source_id)).first()
            if postgres:
                plan = _generic_plan(conn, statement, patient, source)
            else:
                asked = statement.params(patient=patient, source=source, client_ids=["a", "b"])
                sql = asked.compile(
                    dialect=engine.dialect, compile_kwargs={"render_postcompile": True}
                )
                plan = [
                    str(row[-1])
                    for row in conn.exec_driver_sql(
                        f"EXPLAIN QUERY PLAN {sql}", (patient, source, "a", "b")
                    )
                ]
    finally:
        engine.dispose()
    print("\n".join(plan))
    assert plan and not [line for line in plan if "Filter" in line and "client_id" in line]
    if not postgres:
        assert [line for line in plan if line.startswith("SEARCH") and "client_id=?" in line]
        assert not [line for line in plan if line.startswith("SCAN")]


def _generic_plan(conn: Connection, statement: Select[Any], patient: str, source: str) -> list[str]:
    """The lines of PostgreSQL's generic plan of the client-id lookup, for two ids."""
    sql = str(statement.compile(dialect=conn.dialect))
    for n, name in enumerate(("patient", "source", "client_ids"), start=1):
        sql = sql.replace(f"%({name})s", f"${n}")
    conn.exec_driver_sql(f"PREPARE lookup(varchar, varchar, varchar[]) AS {sql}")
    conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_generic_plan")
    return [
        str(row[0])
        for row in conn.exec_driver_sql(  # the ids are the server's own uuids
            f"EXPLAIN EXECUTE lookup('{patient}', '{source}', ARRAY['a', 'b'])"
        )
    ]
