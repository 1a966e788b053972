"""Corrections undo what they caused, on both databases: a milestone or goal reached only
through a reading entered in error goes back and its congratulation is withdrawn; a flag
citing the reading says so to the team and stays open."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.findings.models import Advice
from app.push.models import OutboxMessage
from tests.app.factories import batch, bp, patient_id
from tests.app.goals.test_goals_api import today, weight_goal, weights

Auth = Callable[[str], dict[str, str]]
SUBSCRIPTION = {
    "endpoint": "https://push.example.test/allan",
    "keys": {
        "p256dh": "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8p"
        "ZGH6SRpkNtoIAiw4",
        "auth": "BTBZMqHH6r4Tts7J_aSIgg",
    },
}


def _goal(client: TestClient, auth: Auth, session: Session, **extra: Any) -> tuple[str, str]:
    allan = patient_id(session, "allan")
    made = client.post(
        f"/v1/patients/{allan}/goals", json=weight_goal(**extra), headers=auth("eva")
    )
    assert made.status_code == 201, made.text
    return allan, made.json()["id"]


def _sync(client: TestClient, auth: Auth, body: dict[str, Any]) -> dict[str, Any]:
    answer = client.post("/v1/patients/me/sync", json=body, headers=auth("allan"))
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def _delete(client: TestClient, auth: Auth, pid: str, reading_id: str) -> None:
    gone = client.delete(f"/v1/patients/{pid}/readings/{reading_id}", headers=auth("eva"))
    assert gone.status_code == 204, gone.text


def _shown(client: TestClient, auth: Auth) -> dict[str, Any]:
    goal: dict[str, Any] = client.get("/v1/patients/me/goals", headers=auth("allan")).json()[
        "items"
    ][0]
    return goal


def _advice(client: TestClient, auth: Auth) -> dict[str, dict[str, Any]]:
    items = client.get("/v1/patients/me/advice", headers=auth("allan")).json()["items"]
    return {a["id"]: a for a in items}


def test_a_milestone_reached_through_an_error_goes_back(
    client: TestClient, auth: Auth, session: Session
) -> None:
    allan, goal_id = _goal(client, auth, session)
    _sync(client, auth, weights((30, 96.0), (23, 95.6), (16, 95.1), (9, 94.8)))
    reached = _sync(client, auth, weights((2, 93.9), source="scale-2"))
    [congratulation] = reached["advice"]
    assert congratulation["rule"]["id"] == "goal-milestone"
    assert _shown(client, auth)["milestones"][0]["achieved_at"] is not None
    cursor = reached["cursor"]

    _delete(client, auth, allan, reached["results"][0]["id"])

    goal = _shown(client, auth)
    assert goal["milestones"][0]["achieved_at"] is None
    assert goal["milestones"][0]["reached_on"] is None
    assert goal["progress"]["current"] == 94.8  # recomputed at once, without the error
    withdrawn = _advice(client, auth)[congratulation["id"]]
    assert withdrawn["withdrawn_at"] is not None
    assert withdrawn["withdrawn_reason"] == "entered_in_error"
    changes = client.get(
        "/v1/patients/me/changes", params={"cursor": cursor}, headers=auth("allan")
    ).json()["changes"]
    seen = [(c["entity"], c["op"], c["id"]) for c in changes]
    assert ("reading", "delete", reached["results"][0]["id"]) in seen
    assert ("goal", "upsert", goal_id) in seen
    milestone = next(c for c in changes if c["entity"] == "milestone")
    assert milestone["data"]["achieved_at"] is None
    advice = next(c for c in changes if c["entity"] == "advice")
    assert advice["id"] == congratulation["id"] and advice["data"]["withdrawn_at"] is not None

    # Reached again by a true reading: congratulated again, once.
    again = _sync(client, auth, weights((1, 93.8), source="scale-3"))
    assert [a["rule"]["id"] for a in again["advice"]] == ["goal-milestone"]
    assert again["advice"][0]["id"] != congratulation["id"]
    assert _shown(client, auth)["milestones"][0]["achieved_at"] is not None


def test_an_achieved_goal_goes_back_to_active_and_its_pushes_are_cancelled(
    client: TestClient, auth: Auth, session: Session
) -> None:
    assert (
        client.post("/v1/push/subscriptions", json=SUBSCRIPTION, headers=auth("allan")).status_code
        == 201
    )
    allan, goal_id = _goal(client, auth, session)
    body = _sync(client, auth, weights((20, 96.0), (1, 90.5)))
    rules = sorted(a["rule"]["id"] for a in body["advice"])
    assert rules == ["goal-achieved", "goal-milestone"]
    assert _shown(client, auth)["progress"]["achieved_at"] is not None
    marked = client.patch(
        f"/v1/patients/{allan}/goals/{goal_id}", json={"lifecycle": "achieved"},
        headers=auth("eva"),
    )  # fmt: skip
    assert marked.status_code == 200 and marked.json()["lifecycle"] == "achieved"

    _delete(client, auth, allan, body["results"][1]["id"])

    goal = _shown(client, auth)
    assert goal["lifecycle"] == "active"
    assert goal["progress"]["achieved_at"] is None
    assert goal["progress"]["status"] != "achieved"
    assert goal["milestones"][0]["achieved_at"] is None
    advice = _advice(client, auth)
    assert all(advice[a["id"]]["withdrawn_at"] is not None for a in body["advice"])
    outbox = list(session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "advice")))
    assert outbox and {m.status for m in outbox} == {"cancelled"}


def test_what_holds_without_the_error_stands(
    client: TestClient, auth: Auth, session: Session
) -> None:
    allan, _ = _goal(client, auth, session)
    body = _sync(client, auth, weights((20, 96.0), (3, 93.5), (1, 93.6)))
    [congratulation] = body["advice"]
    _delete(client, auth, allan, body["results"][2]["id"])  # day 3 still meets 94 kg
    goal = _shown(client, auth)
    assert goal["milestones"][0]["achieved_at"] is not None
    assert goal["milestones"][0]["reached_on"] == (today() - timedelta(days=3)).isoformat()
    assert _advice(client, auth)[congratulation["id"]]["withdrawn_at"] is None


def test_a_flag_whose_reading_was_entered_in_error_says_so_and_stays_open(
    client: TestClient, auth: Auth, session: Session
) -> None:
    body = _sync(client, auth, batch(bp(185, 100, minutes_ago=30)))
    reading_id = body["results"][0]["id"]
    allan = patient_id(session, "allan")
    [flag] = client.get(f"/v1/patients/{allan}/flags", headers=auth("eva")).json()["items"]
    assert flag["rule"]["id"] == "bp-very-high" and flag["entered_in_error"] == []
    assert flag["correction"] is None

    _delete(client, auth, allan, reading_id)

    [after] = client.get(f"/v1/patients/{allan}/flags", headers=auth("eva")).json()["items"]
    assert after["id"] == flag["id"] and after["status"] == "open"
    assert after["entered_in_error"] == [reading_id]
    assert after["corrected_at"] is not None
    assert "felregistrerade" in after["correction"]
    english = client.get(
        f"/v1/patients/{allan}/flags", headers={**auth("eva"), "accept-language": "en"}
    ).json()["items"][0]
    assert "entered in error" in english["correction"]
    changes = client.get(
        "/v1/patients/me/changes", params={"cursor": body["cursor"]}, headers=auth("allan")
    ).json()["changes"]
    upserts = [c for c in changes if c["entity"] == "flag" and c["id"] == flag["id"]]
    assert upserts and upserts[-1]["data"]["entered_in_error"] == [reading_id]
    # The urgent advice the reading gave is history, not withdrawn: the patient acted on it.
    urgent = session.scalars(select(Advice).where(Advice.rule_id == "bp-very-high")).one()
    assert urgent.withdrawn_at is None

    _delete(client, auth, allan, reading_id)  # idempotent: nothing changes twice
    [twice] = client.get(f"/v1/patients/{allan}/flags", headers=auth("eva")).json()["items"]
    assert twice["entered_in_error"] == [reading_id]
