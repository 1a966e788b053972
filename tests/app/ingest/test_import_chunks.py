"""Imports in chunks under an import id, resumable, on both databases (issue 10 §2).

A file is stored in chunks of at most ``import_chunk_readings`` readings (5,000; 50 here so
a small file has three), each its own transaction. When the database refuses a chunk (a real
trigger here, no mock), what committed stays, the answer says where the import stopped, and
posting the same file again completes it: every reading once, none twice.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import Session

from app.config import Settings
from app.db import normalise_url
from app.main import create_app
from app.readings.models import ImportRun, Reading
from tests.app.auth.test_access_matrix import omh_heart_rate

Auth = Callable[[str], dict[str, str]]
URL = "/v1/patients/me/import?format=omh&source_id=watch-export"
POISON_BPM = 77  # the trigger refuses this pulse: the 60th point, in the second chunk

TRIGGER = {
    "sqlite": [
        "CREATE TRIGGER refuse_poison BEFORE INSERT ON readings "
        f"WHEN json_extract(NEW.original_values, '$.value') = '{POISON_BPM}' "
        "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
    ],
    "postgresql": [
        "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"IF NEW.original_values->>'value' = '{POISON_BPM}' THEN "
        "RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$",
        "CREATE TRIGGER refuse_poison BEFORE INSERT ON readings "
        "FOR EACH ROW EXECUTE FUNCTION refuse_poison()",
    ],
}
DROP = {
    "sqlite": ["DROP TRIGGER refuse_poison"],
    "postgresql": ["DROP TRIGGER refuse_poison ON readings", "DROP FUNCTION refuse_poison()"],
}


@pytest.fixture
def chunked(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings.model_copy(update={"import_chunk_readings": 50}))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client
    app.state.engine.dispose()


def _execute(db_url: str, statements: list[str]) -> None:
    engine = create_engine(normalise_url(db_url))
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))
    engine.dispose()


def _export() -> bytes:
    """120 heart-rate points, one a minute, the 60th at the poisoned value."""
    points = [
        omh_heart_rate(POISON_BPM if i == 59 else 60 + i % 15, minutes_ago=600 - i)
        for i in range(120)
    ]
    return json.dumps(points).encode()


def _stored(session: Session) -> tuple[int, int]:
    rows = session.scalars(select(Reading.client_id).where(Reading.type == "pulse")).all()
    return len(rows), len(set(rows))


def test_a_refused_chunk_stops_the_import_and_the_same_file_completes_it(
    backend: str, db_url: str, chunked: TestClient, auth: Auth, session: Session
) -> None:
    export = _export()
    headers = {**auth("allan"), "Content-Type": "application/json"}
    _execute(db_url, TRIGGER[backend])
    stopped = chunked.post(URL, content=export, headers=headers)
    assert stopped.status_code == 200, stopped.text
    first = stopped.json()
    assert first["import"]["status"] == "stopped"
    assert (first["import"]["chunks"], first["import"]["chunks_committed"]) == (3, 1)
    assert first["import"]["stopped_at"]["chunk"] == 2
    assert first["import"]["stopped_at"]["reading_index"] == 50
    assert first["summary"]["created"] == 50 and first["summary"]["unprocessed"] == 70
    assert _stored(session) == (50, 50)  # the first chunk stays; nothing of the second

    _execute(db_url, DROP[backend])
    again = chunked.post(URL, content=export, headers=headers).json()
    assert again["import"]["id"] == first["import"]["id"]
    assert again["import"]["status"] == "complete" and again["import"]["attempts"] == 2
    assert again["import"]["chunks_committed"] == 3 and again["import"]["stopped_at"] is None
    assert (again["summary"]["created"], again["summary"]["duplicate"]) == (70, 50)
    assert _stored(session) == (120, 120)
    run = session.scalars(select(ImportRun)).one()
    assert (run.readings, run.chunks, run.status) == (120, 3, "complete")

    third = chunked.post(URL, content=export, headers=headers).json()
    assert (third["summary"]["created"], third["summary"]["duplicate"]) == (0, 120)
    assert session.scalar(select(func.count()).select_from(ImportRun)) == 1
    print(
        f"import_chunks readings=120 chunks=3 stopped_at_chunk=2 resumed_created=70 "
        f"stored={_stored(session)[0]} duplicates=0"
    )
