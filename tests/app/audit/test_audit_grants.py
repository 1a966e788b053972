"""The production role (docs/production-grants.sql) on PostgreSQL: the app works, the audit
tables are append-only for it."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.exc import ProgrammingError

from app.config import PROJECT_ROOT
from app.db import normalise_url
from app.main import create_app
from tests.conftest import make_settings

GRANTS = PROJECT_ROOT / "docs" / "production-grants.sql"
Auth = Callable[[str], dict[str, str]]


@pytest.mark.postgres_only
def test_the_app_role_may_append_but_never_change_audit_rows(
    backend: str, db_url: str, auth: Auth, session_dir: object
) -> None:
    if backend != "postgresql":
        pytest.skip("database roles and grants are PostgreSQL's")
    owner = create_engine(normalise_url(db_url))
    with owner.begin() as conn:  # as psql -f would: the script as it is, no placeholders
        conn.connection.driver_connection.execute(GRANTS.read_text())  # type: ignore[union-attr]
    owner.dispose()

    app_url = db_url.replace("://postgres@", "://selfcare_app@")
    settings = make_settings(session_dir, app_url)  # type: ignore[arg-type]
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.get("/v1/patients/me/readings", headers=auth("allan"))
        assert answer.status_code == 200, answer.text
        synced = client.post(
            "/v1/patients/me/sync",
            json={"source": {"id": "p", "kind": "app"}, "readings": []},
            headers=auth("allan"),
        )
        assert synced.status_code == 200, synced.text
    app.state.engine.dispose()

    as_app = create_engine(normalise_url(app_url))
    refused = []
    for statement in (
        "UPDATE audit_events SET actor_handle = 'mallory' WHERE seq = 1",
        "DELETE FROM audit_events WHERE seq = 1",
        "TRUNCATE audit_events CASCADE",
        "UPDATE audit_subjects SET patient_id = 'x'",
        "DELETE FROM audit_subjects",
        "DELETE FROM audit_head",
    ):
        with as_app.connect() as conn:
            try:
                conn.execute(text(statement))
            except ProgrammingError as exc:
                assert "permission denied" in str(exc), statement
                refused.append(statement)
            conn.rollback()
    with as_app.connect() as conn:
        rows = conn.execute(text("SELECT count(*) FROM audit_events")).scalar_one()
    as_app.dispose()
    print(f"grants: statements_refused={len(refused)}/6 audit_rows={rows}")
    assert len(refused) == 6 and rows == 2
