"""The schema comes only from migrations (alembic check), and SQLite runs as AT-15 says."""

from __future__ import annotations

import math
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import JSON, Column, Engine, Integer, MetaData, Table, event, select, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import OperationalError

from app import migrate
from app.db import (
    json_text,
    json_value,
    make_engine,
    make_sessionmaker,
    new_id,
    transaction,
    unavailable_reason,
)
from app.jobs.retention import clean_up
from app.push.models import OutboxMessage
from tests.conftest import make_settings
from tests.query_plans import plan

PATIENT_P1 = text(
    "INSERT INTO patients (id, personnummer, display_name, timezone, language, created_at)"
    " VALUES ('p1', '197701172392', 'A', 'Europe/Stockholm', 'sv', '2026-11-01 00:00:00+00')"
)
"""A patient row as any revision's schema takes it: what the migration tests' rows belong to."""


def test_models_and_migrations_agree(migrated_url: str) -> None:
    migrate.check(migrated_url)  # raises when autogenerate would find a difference


def test_upgrading_twice_is_harmless(migrated_url: str) -> None:
    migrate.upgrade(migrated_url)
    migrate.check(migrated_url)


def test_a_correction_finds_advice_and_pushes_through_an_index(migrated_url: str) -> None:
    """A correction looks up advice by evaluation and pushes by advice, across all patients,
    and a dense week's recorded firings by the span of their times: each lookup is served by
    an index, not a read of the whole table."""
    lookups = {
        "ix_advice_evaluation": "SELECT id FROM advice WHERE evaluation_id IN ('e1', 'e2')",
        "ix_outbox_advice": "SELECT id FROM outbox WHERE advice_id IN ('a1', 'a2')",
        "ix_evaluations_patient_time": (
            "SELECT id FROM evaluations WHERE patient_id = 'p1' "
            "AND anchor_time >= '2026-11-23' AND anchor_time <= '2026-11-30'"
        ),
    }
    engine = make_engine(migrated_url)
    try:
        with engine.connect() as conn:
            for index, query in lookups.items():
                steps = plan(conn, text(query), {})
                assert index in steps, steps
                print(f"{conn.dialect.name}: {steps}")
    finally:
        engine.dispose()


def test_sqlite_pragmas_on_a_fresh_pooled_connection(tmp_path: object) -> None:
    """AT-15: WAL, synchronous FULL, busy_timeout ≥ 5000, foreign keys, BEGIN IMMEDIATE."""
    url = f"sqlite:///{tmp_path}/at15.db"
    engine = make_engine(url, busy_timeout_ms=10_000)
    with engine.connect() as conn:
        journal = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
        synchronous = conn.exec_driver_sql("PRAGMA synchronous").scalar()
        busy = conn.exec_driver_sql("PRAGMA busy_timeout").scalar()
        fks = conn.exec_driver_sql("PRAGMA foreign_keys").scalar()
    assert journal == "wal"
    assert synchronous == 2  # FULL
    assert busy is not None and int(busy) >= 5000
    assert fks == 1
    print(
        f"AT-15 journal_mode={journal} synchronous={synchronous} busy_timeout={busy} "
        f"foreign_keys={fks}"
    )

    # A transaction holds the write lock from its first statement (BEGIN IMMEDIATE): a second
    # connection cannot start writing while it is open.
    factory = make_sessionmaker(make_engine(url, busy_timeout_ms=5_000))
    blocker = make_engine(url, busy_timeout_ms=5_000)
    with transaction(factory) as session:
        session.execute(text("SELECT 1"))
        raw = blocker.raw_connection()
        try:
            raw.driver_connection.execute("PRAGMA busy_timeout=0")
            try:
                raw.driver_connection.execute("BEGIN IMMEDIATE")
                locked = False
            except Exception as exc:  # sqlite3.OperationalError: database is locked
                locked = "locked" in str(exc)
        finally:
            raw.close()
    assert locked, "the session's transaction did not begin IMMEDIATE"
    engine.dispose()
    blocker.dispose()


def test_threads_of_a_process_take_turns_at_the_sqlite_write_lock(tmp_path: object) -> None:
    """The threads of one process wait for SQLite's write lock on the process's turn, not in
    SQLite's busy handler: with that handler off (busy_timeout 0), a second thread's
    transaction still waits for the first and then runs. Every way a transaction ends (commit,
    rollback, an error, its connection closed) gives the turn back; a thread that does not
    get it within the busy timeout gets SQLite's own answer, "database is locked" (busy, 503).
    """
    url = f"sqlite:///{tmp_path}/turns.db"
    first = make_sessionmaker(make_engine(url, busy_timeout_ms=5_000))
    impatient = make_engine(url, busy_timeout_ms=5_000)

    @event.listens_for(impatient, "connect")
    def _no_busy_handler(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA busy_timeout=0")

    second = make_sessionmaker(impatient)
    with transaction(first) as session:
        session.execute(text("CREATE TABLE t (a INTEGER)"))

    holding, wrote = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def write_after_the_first() -> None:
        holding.wait()
        try:
            with transaction(second) as session:
                session.execute(text("INSERT INTO t VALUES (2)"))
            wrote.set()
        except BaseException as exc:  # reported below
            errors.append(exc)

    waiter = threading.Thread(target=write_after_the_first)
    waiter.start()
    with transaction(first) as session:
        session.execute(text("INSERT INTO t VALUES (1)"))
        holding.set()
        assert not wrote.wait(0.3)  # it waits for the turn…
    waiter.join(10)
    assert not errors, errors  # …and gets it once the first commits, never "locked"
    assert wrote.is_set()

    # Rollback, an error and a closed connection each give the turn back.
    session = first()
    session.execute(text("INSERT INTO t VALUES (3)"))
    session.rollback()
    session.close()
    with pytest.raises(RuntimeError), transaction(first) as session:
        session.execute(text("INSERT INTO t VALUES (4)"))
        raise RuntimeError("a request fails halfway")
    connection = impatient.connect()
    connection.execute(text("INSERT INTO t VALUES (5)"))
    connection.invalidate()  # closes the driver's connection mid-transaction
    connection.close()
    with transaction(second) as session:
        session.execute(text("INSERT INTO t VALUES (6)"))
        assert session.scalars(text("SELECT a FROM t ORDER BY a")).all() == [1, 2, 6]

    # Not in time: SQLite's own words, which the API answers with 503 busy.
    brief = make_sessionmaker(make_engine(url, busy_timeout_ms=200))
    with transaction(first) as session:
        session.execute(text("INSERT INTO t VALUES (7)"))
        with pytest.raises(OperationalError) as refused, transaction(brief) as other:
            other.execute(text("SELECT 1"))
    assert unavailable_reason(refused.value) == "busy"


def test_upgrading_a_database_with_data_keeps_it(
    database_at: Callable[[str], tuple[str, Engine]],
) -> None:
    """Every migration runs on a database in use: rows written at 0001 survive to head."""
    url, engine = database_at("0001")
    with engine.begin() as conn:
        conn.execute(PATIENT_P1)
        conn.execute(
            text(
                "INSERT INTO evaluations (id, patient_id, rule_id, rule_version, plan_version,"
                " mode, reading_ids, explanation, created_at) VALUES ('e1', 'p1', 'bp-low', 1, 1,"
                " 'active', '[]', '{}', '2026-11-01 00:00:00+00')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO advice (id, patient_id, evaluation_id, rule_id, rule_version,"
                " priority, title, body, reading_ids, notify, created_at)"
                " VALUES ('a1', 'p1', 'e1', 'bp-low', 1, 'routine', '{}', '{}', '[]', true,"
                " '2026-11-01 00:00:00+00')"
            )
        )
    migrate.upgrade(url)
    migrate.check(url)
    with engine.connect() as conn:
        row = conn.execute(text("SELECT anchor_key, status FROM evaluations")).one()
        advice = conn.execute(text("SELECT count(*) FROM advice")).scalar_one()
    assert (row.anchor_key, row.status, advice) == ("e1", "fired", 1)


def test_json_columns_give_back_every_value_they_took(migrated_url: str) -> None:
    """JSON columns go through orjson: Swedish text, nesting, floats, and what orjson itself
    refuses (an integer past 64 bits) come back as they went in, on both databases."""
    engine = make_engine(migrated_url)
    table = Table(
        "json_probe",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("data", JSON().with_variant(JSONB(), "postgresql")),
    )
    values: list[Any] = [
        {"namn": "Åsa Öberg", "ort": "Västra Götaland"},
        {"n": 2**70, "small": -3, "ratio": 0.1, "list": [1.5, None, True, "ä"]},
        {"1": "a string key", "nested": {"deep": [{"x": []}]}},
        "ett värde",
    ]
    table.create(engine)
    try:
        with engine.begin() as conn:
            conn.execute(table.insert(), [{"id": i, "data": v} for i, v in enumerate(values)])
        with engine.connect() as conn:
            back = [row.data for row in conn.execute(select(table).order_by(table.c.id))]
        assert back == values
    finally:
        table.drop(engine)
        engine.dispose()


def test_json_text_falls_back_to_the_standard_library() -> None:
    """What orjson refuses is written and read as the standard library does."""
    assert json_value(json_text({"n": 2**70})) == {"n": 2**70}
    # JSON already written (a stored explanation's readings) goes in as it is. (The standard
    # library cannot: an explanation holds no integer orjson refuses, its numbers are text.)
    written = orjson.Fragment(b'{"values":{"systolic":"142"}}')
    assert json_text({"r": [written]}) == '{"r":[{"values":{"systolic":"142"}}]}'
    assert json_text({2: "int key"}) == '{"2":"int key"}'
    assert math.isnan(json_value("NaN"))  # what the standard encoder once wrote
    assert json_value(json_text({"å": "ö"})) == {"å": "ö"}


def test_new_ids_are_distinct_version_4_uuids_in_canonical_text() -> None:
    ids = [new_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    for text_id in ids[:1000]:
        parsed = uuid.UUID(text_id)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
        assert str(parsed) == text_id  # lower case, with hyphens, as the columns hold them


def test_an_explanation_is_kept_as_written_and_compressed_with_lz4(
    backend: str, database_at: Callable[[str], tuple[str, Engine]]
) -> None:
    """Migration 0019: an explanation written before it reads back the same after it; new ones
    are kept as the text written (PostgreSQL ``json``, not a parsed ``jsonb`` tree, so their
    key order stays), lz4-compressed where the server has lz4."""
    url, engine = database_at("0018_evaluations_by_time")
    before = {"rule": {"id": "bp-low", "version": 1}, "readings": [{"values": {"sys": "88"}}]}
    with engine.begin() as conn:
        conn.execute(PATIENT_P1)
        insert = text(
            "INSERT INTO evaluations (id, patient_id, rule_id, rule_version, plan_version, mode,"
            " anchor_key, anchor_time, status, reading_ids, explanation, created_at)"
            " VALUES (:id, 'p1', 'bp-low', 1, 1, 'active', :id, '2026-11-01 00:00:00+00',"
            " 'fired', '[]', :explanation, '2026-11-01 00:00:00+00')"
        )
        conn.execute(insert, {"id": "e1", "explanation": json_text(before)})
    migrate.upgrade(url)
    # Long keys first: jsonb would give them back sorted by length, then bytes.
    after = {"zzzz_long_key_first": 1, "mode": "active", "a": "x" * 4000}
    with engine.begin() as conn:
        conn.execute(insert, {"id": "e2", "explanation": json_text(after)})
    with engine.connect() as conn:
        stored = dict(conn.execute(text("SELECT id, explanation FROM evaluations")).all())
        if backend == "postgresql":
            kind, method = conn.execute(
                text(
                    "SELECT format_type(a.atttypid, a.atttypmod), a.attcompression FROM"
                    " pg_attribute a WHERE a.attrelid = 'evaluations'::regclass"
                    " AND a.attname = 'explanation'"
                )
            ).one()
            lz4 = (
                "lz4"
                in conn.execute(
                    text(
                        "SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'"
                    )
                ).scalar_one()
            )
            assert kind == "json"
            assert method == ("l" if lz4 else "")
    texts = {
        key: value if isinstance(value, str) else json_text(value) for key, value in stored.items()
    }
    assert json_value(texts["e1"]) == before
    assert list(json_value(texts["e2"])) == list(after)  # the keys in the order written


def test_outbox_rows_finished_before_there_was_a_finish_time_get_one_and_are_forgotten(
    database_at: Callable[[str], tuple[str, Engine]], tmp_path: Path
) -> None:
    """Migration 0021: a row that reached a final status before migration 0002 had no
    ``finished_at``, so the retention never deleted it. It gets the latest time it records;
    a waiting row and a row with a finish time are left as they are."""
    url, engine = database_at("0020_outbox_due")
    old, later = "2026-01-05 10:00:00+00:00", "2026-01-05 10:30:00+00:00"
    rows = {
        # id: (status, sent_at, next_attempt_at, finished_at)
        "sent": ("sent", later, old, None),
        "dead": ("dead", None, later, None),
        "finished": ("cancelled", None, old, old),
        "waiting": ("pending", None, old, None),
    }
    with engine.begin() as conn:
        conn.execute(PATIENT_P1)
        conn.execute(
            text(
                "INSERT INTO users (id, handle, display_name, role, title, language, active,"
                " created_at) VALUES ('u1', 'asta', 'Asta', 'patient', '', 'sv', true, :at)"
            ),
            {"at": old},
        )
        for row_id, (status, sent_at, next_at, finished_at) in rows.items():
            conn.execute(
                text(
                    "INSERT INTO outbox (id, patient_id, user_id, kind, payload, urgency,"
                    " ttl_seconds, status, attempts, next_attempt_at, created_at, sent_at,"
                    " finished_at) VALUES (:id, 'p1', 'u1', 'advice', '{}', 'normal', 3600,"
                    " :status, 1, :next_at, :created, :sent_at, :finished_at)"
                ),
                {"id": row_id, "status": status, "next_at": next_at, "created": old,
                 "sent_at": sent_at, "finished_at": finished_at},
            )  # fmt: skip
    migrate.upgrade(url)

    factory = make_sessionmaker(make_engine(url))
    with transaction(factory) as session:
        finished = dict(session.execute(select(OutboxMessage.id, OutboxMessage.finished_at)).all())
    at = datetime.fromisoformat
    assert finished == {
        "sent": at(later),  # when it was sent
        "dead": at(later),  # its last lease's end
        "finished": at(old),  # as it was
        "waiting": None,
    }
    settings = make_settings(tmp_path, url)
    months_later = at(later) + timedelta(days=settings.retention_days + 1)
    assert clean_up(factory, settings, months_later)["outbox"] == 3
    with transaction(factory) as session:
        assert list(session.scalars(select(OutboxMessage.id))) == ["waiting"]
