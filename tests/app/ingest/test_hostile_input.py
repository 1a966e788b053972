"""What a hostile client found (issue 10 §1, §4): scope leaks and input that answered 500.

Each case fails to do harm: a clear 4xx in problem+json, nothing stored, nothing leaked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.auth.models import ProxyGrant
from app.config import Settings
from app.main import create_app
from app.readings.models import Reading
from tests.app.factories import batch, patient_id, scalar

Auth = Callable[[str], dict[str, str]]


def _readings(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(Reading)) or 0)


@pytest.mark.parametrize(
    "query",
    [
        "from=9999-12-31T23:59:59-14:00",
        "to=9999-12-31T23:59:59-14:00",
        "from=0001-01-01T00:00:00%2B14:00",
        "from=1900-12-31T23:59:59Z",
        "from=2101-01-01T00:00:00Z",
        "from=2026-11-20T07:00:00",
    ],
)
def test_times_out_of_range_answer_422(client: TestClient, auth: Auth, query: str) -> None:
    answer = client.get(f"/v1/patients/me/readings?{query}", headers=auth("allan"))
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["errors"][0]["message"]


@pytest.mark.parametrize("week", ["9999-W52", "0001-W01", "1900-W52", "1901-W01", "2101-W01"])
@pytest.mark.parametrize("path", ["report", "report.png"])
def test_iso_weeks_out_of_range_answer_422(
    client: TestClient, auth: Auth, path: str, week: str
) -> None:
    answer = client.get(f"/v1/patients/me/{path}?week={week}", headers=auth("allan"))
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["loc"] == "week"


def test_edge_times_and_forged_cursors(client: TestClient, auth: Auth) -> None:
    edges = "from=1901-01-01T00:00:00Z&to=2100-12-31T23:59:59Z"
    assert client.get(f"/v1/patients/me/readings?{edges}", headers=auth("allan")).status_code == 200
    forged = "9999-12-31T23:59:59-14:00|x"
    answer = client.get(
        "/v1/patients/me/readings", params={"cursor": forged}, headers=auth("allan")
    )
    assert answer.status_code == 400, answer.text
    huge = client.get(
        "/v1/patients/me/access-log?before=99999999999999999999", headers=auth("allan")
    )
    assert huge.status_code == 422, huge.text


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "text/csv", None]
)
def test_sync_refuses_a_body_that_is_not_json(
    client: TestClient, auth: Auth, session: Session, content_type: str | None
) -> None:
    body = json.dumps(batch(scalar("weight", 80, "kg"))).encode()
    headers = {**auth("allan")}
    if content_type:
        headers["Content-Type"] = content_type
    answer = client.post("/v1/patients/me/sync", content=body, headers=headers)
    assert answer.status_code == 415, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert _readings(session) == 0
    ok = client.post(
        "/v1/patients/me/sync",
        content=body,
        headers={**headers, "Content-Type": "application/json; charset=utf-8"},
    )
    assert ok.status_code == 200


def test_a_proxy_who_may_only_enter_readings_learns_nothing_from_the_answer(
    client: TestClient, auth: Auth, session: Session
) -> None:
    asta = patient_id(session, "asta")
    # Asta's own readings and advice are in her record before Maria's upload.
    client.post("/v1/patients/me/sync", json=batch(scalar("spo2", 85, "%")), headers=auth("asta"))
    session.execute(
        update(ProxyGrant).where(ProxyGrant.patient_id == asta).values(scopes=["enter_readings"])
    )
    for body in (batch(), batch(scalar("spo2", 84, "%"))):  # empty, and one that gives advice
        answer = client.post(f"/v1/patients/{asta}/sync", json=body, headers=auth("maria"))
        assert answer.status_code == 200, answer.text
        data = answer.json()
        assert (data["changes"], data["advice"], data["cursor"]) == ([], [], None)
        assert all(
            set(r) <= {"client_id", "status", "id", "duplicate_of", "errors"}
            for r in data["results"]
        )
    # With read back in her grant, the same answer carries the record.
    session.execute(
        update(ProxyGrant)
        .where(ProxyGrant.patient_id == asta)
        .values(scopes=["read", "enter_readings"])
    )
    answer = client.post(f"/v1/patients/{asta}/sync", json=batch(), headers=auth("maria"))
    assert answer.json()["changes"]


def test_a_proxy_corrects_only_the_readings_they_entered(
    client: TestClient, auth: Auth, session: Session
) -> None:
    """Maria may mark her own typo in error, not Asta's scale reading (decision in policy)."""
    asta = patient_id(session, "asta")
    own = client.post(
        "/v1/patients/me/sync", json=batch(scalar("weight", 71.2, "kg")), headers=auth("asta")
    ).json()["results"][0]["id"]
    typo = client.post(
        f"/v1/patients/{asta}/sync", json=batch(scalar("weight", 17.2, "kg")), headers=auth("maria")
    ).json()["results"][0]["id"]
    refused = client.delete(f"/v1/patients/{asta}/readings/{own}", headers=auth("maria"))
    assert refused.status_code == 403, refused.text  # she may read the record: told why
    assert session.get(Reading, own).status != "entered_in_error"  # type: ignore[union-attr]
    session.execute(
        update(ProxyGrant).where(ProxyGrant.patient_id == asta).values(scopes=["enter_readings"])
    )
    hidden = client.delete(f"/v1/patients/{asta}/readings/{own}", headers=auth("maria"))
    assert hidden.status_code == 404  # without read, the same as a missing reading
    assert (
        client.delete(f"/v1/patients/{asta}/readings/{typo}", headers=auth("maria")).status_code
        == 204
    )
    assert (
        client.delete(f"/v1/patients/{asta}/readings/{own}", headers=auth("karin")).status_code
        == 204
    )  # the team may


def test_an_oversize_chunked_body_gets_413_on_every_operation(
    settings: Settings, auth: Auth
) -> None:
    """No Content-Length, 6 MiB in 64 KiB chunks: refused while streaming, on every route."""
    app = create_app(settings.model_copy(update={"import_max_bytes": 1 << 20}))
    operations = [
        (method.upper(), re.sub(r"\{pid\}", "me", re.sub(r"\{(?!pid)[^}]+\}", "x", path)))
        for path, item in app.openapi()["paths"].items()
        for method in item
    ]

    def chunks() -> Iterator[bytes]:
        for _ in range(96):
            yield b"[" * (64 << 10)

    statuses = {}
    with TestClient(app, raise_server_exceptions=False) as client:
        for method, path in operations:
            answer = client.request(
                method,
                path,
                content=chunks(),
                headers={**auth("allan"), "Content-Type": "application/json"},
            )
            statuses[(method, path)] = answer.status_code
    app.state.engine.dispose()
    assert len(operations) > 20
    assert {op: s for op, s in statuses.items() if s != 413} == {}


HOSTILE_CLIENT_IDS = [
    "it's",
    "back\\slash'",
    "%(patient)s",
    "50% %s %%",
    "x') OR ('1'='1",
    "a'); DELETE FROM readings; --",
    "åäö “citat” 🙂",
]


def test_client_ids_with_quotes_and_placeholders_are_found_again_on_a_retry(
    client: TestClient, auth: Auth, session: Session
) -> None:
    """A retried batch finds each reading by its client id, whatever printable characters the
    id holds: each answers as stored before, with its id, and nothing is stored twice.

    On PostgreSQL the lookup passes a batch's client ids as one array parameter, unnested
    in the statement (issue 17 §6); on SQLite as an IN list of parameters.
    """
    readings = [
        scalar("weight", 80 + i / 10, "kg", minutes_ago=60 - i, client_id=client_id)
        for i, client_id in enumerate(HOSTILE_CLIENT_IDS)
    ]
    first = client.post("/v1/patients/me/sync", json=batch(*readings), headers=auth("allan"))
    assert first.status_code == 200, first.text
    results = first.json()["results"]
    assert [r["status"] for r in results] == ["created"] * len(readings)
    stored = _readings(session)

    again = client.post("/v1/patients/me/sync", json=batch(*readings), headers=auth("allan"))
    assert again.status_code == 200, again.text
    assert [r["status"] for r in again.json()["results"]] == ["duplicate"] * len(readings)
    assert [r["id"] for r in again.json()["results"]] == [r["id"] for r in results]
    changed = dict(readings[5], value=99.9)
    conflict = client.post("/v1/patients/me/sync", json=batch(changed), headers=auth("allan"))
    assert conflict.json()["results"][0]["errors"][0]["code"] == "client_id_conflict"
    assert _readings(session) == stored
