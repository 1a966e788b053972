"""Inserting a batch's rows: ``COPY`` on PostgreSQL, one ``executemany`` on SQLite.

A sync of 1,000 readings writes 1,000 readings, 1,000 change-feed rows and, in a dense week,
about as many evaluations with explanations of ~8 KB. On PostgreSQL, psycopg's
``executemany`` sends each row as its own ``INSERT`` (pipelined); ``COPY … FROM STDIN``
streams the same rows as one command, in about half the time for the feed's rows and less
for the explanations (issue 17 §1 and §6; ``bench/ingest.py``, ``bench/reevaluation.py``).

The values go through each column's SQLAlchemy type first, exactly as an ``INSERT`` would
bind them (an aware time made UTC, a JSON value written by the engine's serializer), and a
database error comes out as SQLAlchemy's own (``IntegrityError``, ``OperationalError`` …),
so the callers and the API's handlers see what an ``INSERT`` would have raised.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import Table, insert
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

COPY_FROM_ROWS = 8
"""From this many rows, PostgreSQL gets them by ``COPY``; fewer go as one ``INSERT`` each (a
``COPY`` takes one more round trip to start, more than it saves on a handful of rows)."""


def insert_rows(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert rows, each a mapping with the same columns, in this transaction."""
    if not rows:
        return
    connection = session.connection()
    columns = list(rows[0])
    if (
        connection.dialect.name != "postgresql"
        or len(rows) < COPY_FROM_ROWS
        or _defaults_missing(table, columns)
    ):
        connection.execute(insert(table), list(rows))
        return
    _copy(connection, table, columns, rows)


def _defaults_missing(table: Table, columns: Sequence[str]) -> bool:
    """Tell whether a column left out has a default SQLAlchemy fills in (COPY would not)."""
    given = set(columns)
    return any(c.key not in given and c.default is not None for c in table.columns)


def _copy(
    connection: Connection, table: Table, columns: Sequence[str], rows: Sequence[Mapping[str, Any]]
) -> None:
    """Stream the rows into the table with ``COPY … FROM STDIN`` on this connection."""
    dialect = connection.dialect
    processors = [_bind_processor(table, name, dialect) for name in columns]
    names = sql.SQL(", ").join(sql.Identifier(table.c[name].name) for name in columns)
    command = sql.SQL("COPY {} ({}) FROM STDIN").format(sql.Identifier(table.name), names)
    raw = connection.connection.driver_connection
    assert isinstance(raw, psycopg.Connection)
    try:
        with raw.cursor() as cursor, cursor.copy(command) as copy:
            for row in rows:
                values = (row[name] for name in columns)
                copy.write_row(
                    [v if p is None else p(v) for p, v in zip(processors, values, strict=True)]
                )
    except psycopg.Error as exc:
        # As SQLAlchemy raises it for a statement: IntegrityError, OperationalError …
        raise DBAPIError.instance(
            command.as_string(raw), None, exc, psycopg.Error, dialect=dialect
        ) from exc


def _bind_processor(table: Table, name: str, dialect: Dialect) -> Callable[[Any], Any] | None:
    """The column type's conversion of a Python value for the driver (None: as it is)."""
    kind = table.c[name].type
    processor: Callable[[Any], Any] | None = kind.dialect_impl(dialect).bind_processor(dialect)
    return processor


__all__ = ["COPY_FROM_ROWS", "insert_rows"]
