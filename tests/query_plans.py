"""What a database would do with a statement: its query plan, as one line of text."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from psycopg import sql
from sqlalchemy import Connection
from sqlalchemy.dialects.postgresql import psycopg as postgresql_psycopg
from sqlalchemy.sql import Executable


def plan(connection: Connection, statement: Executable, params: Mapping[str, Any]) -> str:
    """The plan of a statement as compiled for this connection's database, its steps joined.

    On PostgreSQL it is the **generic** plan, the one a statement prepared on the server
    (psycopg prepares one after five runs) settles on without seeing its parameters: a
    condition the planner can prove only from a value (a partial index's) must hold without
    it. Sequential scans are off for the transaction: a test's small table is cheaper to scan,
    and the question is whether an index can serve the statement.
    """
    if connection.dialect.name == "postgresql":
        return _generic_plan(connection, statement, params)
    compiled = statement.compile(dialect=connection.dialect)  # type: ignore[attr-defined]
    expanded = compiled.construct_expanded_state(dict(params))  # IN lists written out
    bound = tuple(expanded.positional_parameters)
    rows = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + expanded.statement, bound)
    return " | ".join(str(row[-1]) for row in rows)


def _generic_plan(connection: Connection, statement: Executable, params: Mapping[str, Any]) -> str:
    dialect = postgresql_psycopg.dialect(paramstyle="numeric_dollar")
    compiled = statement.compile(dialect=dialect)  # type: ignore[attr-defined]
    expanded = compiled.construct_expanded_state(dict(params))  # IN lists written out
    raw = connection.connection.driver_connection
    literals = ", ".join(sql.Literal(v).as_string(raw) for v in expanded.positional_parameters)
    name = f"plan_{uuid.uuid4().hex}"  # not psycopg's own names, which it keeps track of
    connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
    connection.exec_driver_sql("SET LOCAL plan_cache_mode = force_generic_plan")
    connection.exec_driver_sql(f"PREPARE {name} AS {expanded.statement}")
    try:
        execute = f"EXECUTE {name}({literals})" if literals else f"EXECUTE {name}"
        rows = connection.exec_driver_sql("EXPLAIN " + execute)
        return " | ".join(str(row[-1]) for row in rows)
    finally:
        connection.exec_driver_sql(f"DEALLOCATE {name}")
