"""Database plumbing: engines for SQLite and PostgreSQL, sessions, shared column types.

SQLite runs with WAL, ``synchronous=FULL``, ``foreign_keys=ON`` and a busy timeout, and every
transaction begins ``IMMEDIATE``: nearly every request writes (an audit row at least), and
taking the write lock up front avoids the deadlock of two readers upgrading at once. The
threads of one process take turns at that lock through a Python lock first
(:class:`_TurnTakingConnection`): SQLite's own busy handler waits by sleeping 1, 2, 5, 10 …
ms and trying again, so a waiting request overslept a lock freed sooner, and four
connections to one API process synced at less than half the rate of one.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import uuid_utils
from sqlalchemy import JSON, DateTime, Engine, MetaData, String, create_engine, event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC timestamp on both databases (SQLite stores no zone, so we add it back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """The timestamp as stored: in UTC; a naive one is refused."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are never stored")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """The timestamp as read: aware and in UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


JSONType = JSON().with_variant(JSONB(), "postgresql")

JSONDocument = JSON()
"""A document kept whole and never queried inside (an evaluation's explanation): PostgreSQL's
``json`` (the text as written, checked) rather than ``jsonb`` (parsed into a tree on every
insert), and compressed with lz4 there (migration 0019). A dense week's late sync writes a
thousand explanations of ~8 KB; as jsonb with the default compression their insert was a
fifth of the sync on PostgreSQL, and this takes half as long (issue 17 §6)."""


def new_id() -> str:
    """A new random, server-generated identifier (a version 4 UUID, as text)."""
    # uuid-utils (Rust) rather than the standard library: 0.3 µs against 4 µs, and a
    # 1,000-reading sync makes two or three thousand ids (the readings, their changes).
    return str(uuid_utils.uuid4())


class Base(DeclarativeBase):
    """Base of every ORM model; constraint names follow one convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSONType,
        list[str]: JSONType,
        list[dict[str, Any]]: JSONType,
    }


IdColumn = String(36)


def is_sqlite(url: str) -> bool:
    """Whether a database URL points at SQLite."""
    return url.startswith("sqlite")


def normalise_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL URLs given without a driver."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def json_text(value: Any) -> str:
    """Return a JSON column's text: orjson, or the standard library for what orjson refuses."""
    # A batch of readings and its findings' explanations are thousands of JSON values, and
    # the standard encoder was a sixth of a late sync. orjson writes the same values (UTF-8
    # instead of \u escapes, no spaces); an integer past 64 bits goes the old way.
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except orjson.JSONEncodeError:
        return json.dumps(value)


def json_value(text: str | bytes) -> Any:
    """Return a JSON column's value: orjson, or the standard library for what orjson refuses."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:  # NaN, which the standard encoder once wrote
        return json.loads(text)


def make_engine(
    url: str,
    *,
    busy_timeout_ms: int = 10_000,
    pool_size: int = 8,
    max_overflow: int = 8,
    statement_timeout_ms: int | None = None,
) -> Engine:
    """Create an engine with the settings this service relies on.

    ``statement_timeout_ms`` bounds each statement (and, on PostgreSQL, each lock wait): the
    API's requests must not hold a connection or SQLite's write lock for minutes; a statement
    past it fails with an error :func:`unavailable_reason` calls ``busy`` (503 Retry-After).
    Jobs and the command line run without it.
    """
    url = normalise_url(url)
    if is_sqlite(url):
        engine = create_engine(
            url,
            connect_args={
                "check_same_thread": False,
                "timeout": busy_timeout_ms / 1000,
                "factory": _TurnTakingConnection,
            },
            pool_size=pool_size,
            max_overflow=max_overflow,
            json_serializer=json_text,
            json_deserializer=json_value,
        )
        _configure_sqlite(engine, busy_timeout_ms)
        if statement_timeout_ms is not None:
            _interrupt_slow_sqlite_statements(engine, statement_timeout_ms)
        return engine
    connect_args = {}
    if statement_timeout_ms is not None:
        timeout = int(statement_timeout_ms)
        connect_args["options"] = f"-c statement_timeout={timeout} -c lock_timeout={timeout}"
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=True,
        connect_args=connect_args,
        json_serializer=json_text,
        json_deserializer=json_value,
    )


# One lock per database file and process: every engine of the process on that file queues on it.
_TURNS: dict[str, threading.Lock] = {}
_TURNS_GUARD = threading.Lock()


def _turn_lock(database: str | None) -> threading.Lock:
    """The process's turn for a database file (an in-memory database: its engine's own)."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return threading.Lock()
    with _TURNS_GUARD:
        return _TURNS.setdefault(str(Path(database).resolve()), threading.Lock())


class _TurnTakingConnection(sqlite3.Connection):
    """A SQLite connection that holds its process's turn from ``BEGIN IMMEDIATE`` until the
    transaction ends (commit, rollback or close), so that the process's threads wait for the
    write lock on a Python lock, woken the moment it is free, not in SQLite's sleeps.

    Other processes on the same file still meet SQLite's busy handler, as before.
    """

    turn: threading.Lock
    turn_timeout_s: float
    _holds_turn = False

    def begin_immediate(self, begin: Any) -> None:
        """Take the turn (waiting at most the busy timeout, then "database is locked" like
        SQLite itself), then run ``begin``; the turn is given back if that fails."""
        if not self.turn.acquire(timeout=self.turn_timeout_s):
            # As SQLAlchemy wraps the driver's own error, so the API answers 503 busy.
            raise OperationalError(
                "BEGIN IMMEDIATE", None, sqlite3.OperationalError("database is locked")
            )
        self._holds_turn = True
        try:
            begin()
        except BaseException:
            self._give_turn_back()
            raise

    def commit(self) -> None:
        """Commit, then give the turn to the next thread."""
        self._ending(super().commit)

    def rollback(self) -> None:
        """Roll back, then give the turn to the next thread."""
        self._ending(super().rollback)

    def close(self) -> None:
        """Close (an open transaction ends with it), then give the turn back."""
        self._ending(super().close)

    def _ending(self, end: Any) -> None:
        try:
            end()
        finally:
            self._give_turn_back()

    def _give_turn_back(self) -> None:
        if self._holds_turn:
            self._holds_turn = False
            self.turn.release()


def _configure_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    turn = _turn_lock(engine.url.database)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.
        dbapi_connection.isolation_level = None
        dbapi_connection.turn = turn
        dbapi_connection.turn_timeout_s = busy_timeout_ms / 1000
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        dbapi_connection: _TurnTakingConnection = connection.connection.dbapi_connection
        dbapi_connection.begin_immediate(lambda: connection.exec_driver_sql("BEGIN IMMEDIATE"))


def _interrupt_slow_sqlite_statements(engine: Engine, timeout_ms: int) -> None:
    """Interrupt a statement that runs past the timeout ("interrupted": busy, 503)."""
    limit = timeout_ms / 1000

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        deadline = record.info.setdefault("statement_deadline", [float("inf")])
        # SQLite calls this every 10,000 virtual-machine steps; non-zero aborts the statement.
        dbapi_connection.set_progress_handler(lambda: time.monotonic() > deadline[0], 10_000)

    @event.listens_for(engine, "before_cursor_execute")
    def _start_clock(conn: Any, *_: Any) -> None:
        conn.info["statement_deadline"][0] = time.monotonic() + limit


# SQLSTATE classes and codes that mean "the database cannot serve writes now", not a bug:
# 08 connection, 25006 read-only transaction, 3D000 no such database, 42P01 no such table
# (schema missing), 53 insufficient resources, 57P operator intervention (shutdown).
_UNAVAILABLE_SQLSTATES = ("08", "25006", "3D000", "42P01", "53", "57P")
# The request's time ran out: 57014 statement_timeout, 55P03 lock_timeout. Trying again
# shortly works; nothing was saved.
_BUSY_SQLSTATES = frozenset({"57014", "55P03"})


def unavailable_reason(exc: DBAPIError) -> str | None:
    """Why the database cannot serve (missing, read-only, unreachable, busy), or None."""
    if isinstance(exc, OperationalError):
        message = str(exc.orig).lower()
        if "database is locked" in message or "interrupted" in message:
            return "busy"
        sqlstate = getattr(exc.orig, "sqlstate", None)
        if sqlstate not in _BUSY_SQLSTATES:
            return "unavailable"
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate in _BUSY_SQLSTATES:
        return "busy"
    if isinstance(sqlstate, str) and sqlstate.startswith(_UNAVAILABLE_SQLSTATES):
        return "unavailable"
    return None


def database_of(session: Session) -> str:
    """Return the session's database as a key for what is kept per database between requests."""
    return session.get_bind().engine.url.render_as_string(hide_password=True)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """A session factory; sessions never expire loaded objects on commit."""
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
