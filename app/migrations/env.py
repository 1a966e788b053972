"""Alembic environment: migrations run against the connection or URL given by app.migrate."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine, pool

import app.models  # noqa: F401  (registers every table on the metadata)
from app.db import Base, is_sqlite, make_engine, normalise_url

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = normalise_url(config.get_main_option("sqlalchemy.url") or "")
    if is_sqlite(url):
        # SQLite changes a table by copying it (batch mode); with foreign keys enforced the
        # copy cannot replace a table others point at. Switch them off for the migration
        # (outside any transaction, where the pragma takes effect), then check them.
        engine = create_engine(url, poolclass=pool.NullPool)
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            conn.commit()  # end the autobegun transaction so Alembic owns its own
            _run(conn)
            problems = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if problems:
                raise RuntimeError(f"foreign keys broken by the migration: {problems[:5]}")
    else:
        engine = make_engine(url)
        with engine.connect() as conn:
            _run(conn)
    engine.dispose()
