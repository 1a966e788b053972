"""Free text and addresses with control characters, on both databases (issue 10 §4).

Every free-text field goes through one text type (rules/text.py): NUL, escape, bidi override
and lone surrogates are refused with 422 and a reason naming the field, and nothing is
saved; multi-line fields (notes, agreements) keep their line breaks and tabs; a path or query
parameter with a control character answers 400, never 500 (PostgreSQL cannot store NUL).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.audit.models import AuditEvent
from app.readings.models import Reading
from tests.app.auth.test_access_matrix import push_subscription
from tests.app.factories import batch, bp, patient_id, scalar
from tests.app.goals.test_goals_api import weight_goal

Auth = Callable[[str], dict[str, str]]

# Raw JSON, so that a lone surrogate (which Python's json would not write) can be sent too.
BAD = {
    "NUL": "\\u0000",
    "escape": "\\u001b[31m",
    "bidi override": "\\u202e",
    "lone surrogate": "\\ud800",
    "line break in one line": "\\n",
}


def _json(body: dict[str, Any], field_value: str) -> bytes:
    """The body as JSON text, with the placeholder ``@@`` replaced by raw JSON escapes."""
    import json

    return json.dumps(body, ensure_ascii=False).replace("@@", field_value).encode()


def _cases(
    client: TestClient, auth: Auth, session: Session
) -> list[tuple[str, str, str, str, dict[str, Any], str]]:
    """(who, method, url, field, body with @@, error loc) for each free-text field."""
    allan, asta = patient_id(session, "allan"), patient_id(session, "asta")
    team = client.get("/v1/teams", headers=auth("eva")).json()["items"][0]["id"]
    plan = client.get(f"/v1/patients/{asta}/plan", headers=auth("karin")).json()
    plan_body = {k: plan[k] for k in ("rules", "schedule", "agreements", "contact") if k in plan}
    for minutes in (30, 20):
        client.post(
            "/v1/patients/me/sync",
            json=batch(bp(190, 95, minutes_ago=minutes)),
            headers=auth("allan"),
        )
    flag = client.get("/v1/patients/me/flags", headers=auth("allan")).json()["items"][0]["id"]
    return [
        (
            "eva",
            "POST",
            "/v1/patients",
            "display_name",
            {"personnummer": "191212121212", "display_name": "Tolvan @@", "team_id": team},
            "body.display_name",
        ),
        (
            "eva",
            "POST",
            f"/v1/patients/{allan}/goals",
            "title",
            weight_goal(title="Gå ner @@"),
            "body.title",
        ),
        (
            "eva",
            "POST",
            f"/v1/patients/{allan}/goals",
            "agreements",
            weight_goal(agreements=["Väg dig @@"]),
            "body.agreements.0",
        ),
        (
            "karin",
            "PUT",
            f"/v1/patients/{asta}/plan",
            "agreement",
            {**plan_body, "agreements": [{"text": "Ring @@"}]},
            "body.agreements.0.text",
        ),
        (
            "karin",
            "PUT",
            f"/v1/patients/{asta}/plan",
            "contact",
            {**plan_body, "contact": {"name": "Karin @@"}},
            "body.contact.name",
        ),
        (
            "eva",
            "POST",
            f"/v1/flags/{flag}/acknowledge",
            "note",
            {"note": "Ringer @@"},
            "body.note",
        ),
        (
            "allan",
            "POST",
            "/v1/patients/me/sync",
            "source name",
            {**batch(bp(120, 80)), "source": {"id": "p", "kind": "app", "name": "App @@"}},
            "source.name",
        ),
        (
            "allan",
            "POST",
            "/v1/push/subscriptions",
            "endpoint",
            push_subscription("x@@"),
            "body.endpoint",
        ),
    ]


def test_control_characters_in_free_text_are_refused_per_field(
    client: TestClient, auth: Auth, session: Session
) -> None:
    cases = _cases(client, auth, session)
    readings = session.scalar(select(func.count()).select_from(Reading))
    refused = 0
    for who, method, url, field, body, loc in cases:
        for name, bad in BAD.items():
            if name == "line break in one line" and field in ("agreements", "agreement", "note"):
                continue  # multi-line fields keep line breaks (below)
            response = client.request(
                method,
                url,
                content=_json(body, bad),
                headers={**auth(who), "Content-Type": "application/json"},
            )
            assert response.status_code == 422, (field, name, response.status_code, response.text)
            problem = response.json()
            assert problem["title"] == "Unprocessable Content"
            locs = [e["loc"] for e in problem["errors"]]
            assert any(loc in found for found in locs), (field, name, locs)
            refused += 1
    assert session.scalar(select(func.count()).select_from(Reading)) == readings
    print(f"free_text fields={len(cases)} cases={refused} accepted=0")


def test_a_reading_context_with_a_control_character_is_rejected_alone(
    client: TestClient, auth: Auth
) -> None:
    bad = scalar("weight", 80.0, "kg")
    bad["context"] = {"note": "@@"}
    body = batch(bad, scalar("weight", 80.5, "kg"))
    answer = client.post(
        "/v1/patients/me/sync",
        content=_json(body, "\\u0000"),
        headers={**auth("allan"), "Content-Type": "application/json"},
    )
    assert answer.status_code == 200
    first, second = answer.json()["results"]
    assert first["status"] == "rejected" and first["errors"][0]["loc"] == "context.note"
    assert "U+0000" in first["errors"][0]["message"]
    assert second["status"] == "created"


def test_multi_line_text_keeps_its_line_breaks_and_tabs(
    client: TestClient, auth: Auth, session: Session
) -> None:
    for minutes in (30, 20):
        client.post(
            "/v1/patients/me/sync",
            json=batch(bp(190, 95, minutes_ago=minutes)),
            headers=auth("allan"),
        )
    flag = client.get("/v1/patients/me/flags", headers=auth("allan")).json()["items"][0]["id"]
    note = "Ringde Allan.\r\nMäter igen i kväll.\tEva"
    acked = client.post(f"/v1/flags/{flag}/acknowledge", json={"note": note}, headers=auth("eva"))
    assert acked.status_code == 200, acked.text
    worklist = client.get(
        "/v1/flags", params={"status": "acknowledged"}, headers=auth("eva")
    ).json()["items"]
    shown = next(f for f in worklist if f["id"] == flag)
    assert [n["body"] for n in shown["notes"]] == ["Ringde Allan.\nMäter igen i kväll.\tEva"]


@pytest.mark.parametrize(
    ("who", "method", "path"),
    [
        ("eva", "POST", "/v1/flags/a%00b/acknowledge"),
        ("allan", "GET", "/v1/patients/a%00b"),
        ("allan", "GET", "/v1/patients/me/readings?type=a%00b"),
        ("allan", "GET", "/v1/patients/me/readings?type=%E2%80%AE"),
        ("allan", "GET", "/v1/patients/me/goals/a%1Bb/progress"),
        ("allan", "GET", "/v1/patients/me/changes?cursor=%00"),
    ],
)
def test_a_control_character_in_the_address_answers_400(
    client: TestClient, auth: Auth, session: Session, who: str, method: str, path: str
) -> None:
    audit_rows = session.scalar(select(func.count()).select_from(AuditEvent))
    response = client.request(method, path, headers=auth(who))
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "control character" in response.json()["detail"]
    assert session.scalar(select(func.count()).select_from(AuditEvent)) == audit_rows
