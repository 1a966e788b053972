"""What a database would do with a statement: its query plan, as one line of text."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.sql import Executable


def plan(connection: Connection, statement: Executable, params: Mapping[str, Any]) -> str:
    """The plan of a statement as compiled for this connection's database, its steps joined.

    On PostgreSQL sequential scans are turned off for the transaction: a test's small table
    is cheaper to scan, and the question is whether an index can serve the statement.
    """
    postgres = connection.dialect.name == "postgresql"
    if postgres:
        connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
    compiled = statement.compile(dialect=connection.dialect)  # type: ignore[attr-defined]
    values = compiled.construct_params(dict(params))
    bound = tuple(values[k] for k in compiled.positiontup) if compiled.positional else values
    explain = "EXPLAIN " if postgres else "EXPLAIN QUERY PLAN "
    rows = connection.exec_driver_sql(explain + str(compiled), bound)
    return " | ".join(str(row[-1]) for row in rows)
