"""The application shell: /healthz takes the write path; a database that cannot take writes
(missing, read-only) answers 503 problem+json, never 500 and never ``created``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import Session

from app.db import normalise_url
from app.main import create_app
from app.readings.models import Reading
from tests.app.factories import batch, bp
from tests.conftest import make_settings

Auth = Callable[[str], dict[str, str]]


def _calls(client: TestClient, auth: Auth) -> dict[str, Response]:
    health = client.get("/healthz")
    read = client.get("/v1/patients/me/readings", headers=auth("allan"))
    sync = client.post("/v1/patients/me/sync", json=batch(bp(150, 90)), headers=auth("allan"))
    return {"health": health, "read": read, "sync": sync}


def _assert_unavailable(answers: dict[str, Response]) -> None:
    for name, answer in answers.items():
        assert answer.status_code == 503, (name, answer.status_code, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
        body = answer.json()
        assert body["status"] == 503 and body["detail"], body
        assert "created" not in answer.text and "items" not in body


def test_healthz_answers_when_the_database_takes_writes(client: TestClient) -> None:
    answer = client.get("/healthz")
    assert (answer.status_code, answer.json()) == (200, {"status": "ok"})


def test_a_read_only_database_answers_503(
    backend: str, db_url: str, session_dir: Path, auth: Auth, session: Session
) -> None:
    if backend == "sqlite":
        # As root, file modes do not stop writes; SQLite's read-only open mode does.
        path = db_url.removeprefix("sqlite:///")
        url = f"sqlite:///file:{path}?mode=ro&uri=true"
    else:
        name = db_url.rsplit("/", 1)[1]
        admin = create_engine(normalise_url(db_url), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on'))
        admin.dispose()
        url = db_url
    before = session.scalar(select(func.count()).select_from(Reading))
    app = create_app(make_settings(session_dir, url))
    with TestClient(app, raise_server_exceptions=False) as client:
        _assert_unavailable(_calls(client, auth))
    app.state.engine.dispose()
    if backend == "postgresql":
        session.execute(text("SET default_transaction_read_only = off"))
    assert session.scalar(select(func.count()).select_from(Reading)) == before


def test_a_missing_database_answers_503(
    backend: str, db_url: str, session_dir: Path, auth: Auth, tmp_path: Path
) -> None:
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'no-such-folder' / 'selfcare.db'}"
    else:
        url = db_url.rsplit("/", 1)[0] + "/no_such_database"
    app = create_app(make_settings(session_dir, url))
    with TestClient(app, raise_server_exceptions=False) as client:
        _assert_unavailable(_calls(client, auth))
    app.state.engine.dispose()


def test_an_empty_database_without_the_schema_answers_503(
    backend: str, db_url: str, session_dir: Path, auth: Auth, tmp_path: Path
) -> None:
    """A database file created by mistake (or a database nobody migrated)."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'empty.db'}"
    else:
        name = "empty_" + tmp_path.name.replace("-", "_")[-20:].lower()
        admin = create_engine(normalise_url(db_url), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        url = db_url.rsplit("/", 1)[0] + f"/{name}"
    app = create_app(make_settings(session_dir, url))
    with TestClient(app, raise_server_exceptions=False) as client:
        _assert_unavailable({"health": client.get("/healthz")})
    app.state.engine.dispose()
