"""Flags over HTTP on both databases: the worklist, acknowledge, resolve, episodes."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.app.factories import batch, bp, patient_id, scalar

Auth = Callable[[str], dict[str, str]]


def test_worklist_most_severe_first_then_oldest(client: TestClient, auth: Auth) -> None:
    client.post("/v1/patients/me/sync", json=batch(bp(85, 60)), headers=auth("allan"))  # moderate
    client.post(
        "/v1/patients/me/sync", json=batch(scalar("pulse", 130, "/min")), headers=auth("asta")
    )  # moderate, later
    client.post("/v1/patients/me/sync", json=batch(bp(185, 100)), headers=auth("allan"))  # high
    items = client.get("/v1/flags", headers=auth("eva")).json()["items"]
    assert [(f["rule"]["id"], f["severity"]) for f in items] == [
        ("bp-very-high", "high"),
        ("bp-low", "moderate"),
        ("pulse-abnormal", "moderate"),
    ]
    top = items[0]
    assert top["explanation"]["rule"] == {"id": "bp-very-high", "version": top["rule"]["version"]}
    assert top["explanation"]["plan_version"] >= 1
    assert top["reading_ids"] and top["title"]
    # Karin (hemsjukvård) sees Asta's flag only; Olof none of these.
    karin = client.get("/v1/flags", headers=auth("karin")).json()["items"]
    assert [f["rule"]["id"] for f in karin] == ["pulse-abnormal"]
    assert client.get("/v1/flags", headers=auth("olof")).json()["items"] == []


def test_repeated_firings_attach_to_the_open_episode_until_resolved(
    client: TestClient, auth: Auth, session: Session
) -> None:
    for minutes in (30, 20, 10):
        client.post(
            "/v1/patients/me/sync",
            json=batch(bp(190, 95, minutes_ago=minutes)),
            headers=auth("allan"),
        )
    flags = client.get("/v1/patients/me/flags", headers=auth("allan")).json()["items"]
    assert len(flags) == 1 and flags[0]["firing_count"] == 3
    assert len(flags[0]["reading_ids"]) == 3
    flag_id = flags[0]["id"]

    acked = client.post(f"/v1/flags/{flag_id}/acknowledge", headers=auth("eva"))
    assert acked.status_code == 200 and acked.json()["status"] == "acknowledged"
    client.post(
        "/v1/patients/me/sync", json=batch(bp(195, 95, minutes_ago=5)), headers=auth("allan")
    )
    still_one = client.get("/v1/patients/me/flags", headers=auth("allan")).json()["items"]
    assert len(still_one) == 1 and still_one[0]["firing_count"] == 4

    resolved = client.post(
        f"/v1/flags/{flag_id}/resolve", json={"note": "Ringt Allan, ok."}, headers=auth("eva")
    )
    assert resolved.status_code == 200
    assert resolved.json()["status"] == "resolved"
    assert [n["body"] for n in resolved.json()["notes"]] == ["Ringt Allan, ok."]
    again = client.post(f"/v1/flags/{flag_id}/resolve", json={"note": "x"}, headers=auth("eva"))
    assert again.status_code == 409

    client.post(
        "/v1/patients/me/sync", json=batch(bp(200, 100, minutes_ago=1)), headers=auth("allan")
    )
    flags = client.get("/v1/patients/me/flags", headers=auth("allan")).json()["items"]
    assert sorted(f["status"] for f in flags) == ["open", "resolved"]


def test_only_the_care_team_handles_flags(client: TestClient, auth: Auth, session: Session) -> None:
    client.post("/v1/patients/me/sync", json=batch(bp(185, 100)), headers=auth("allan"))
    flag_id = client.get("/v1/patients/me/flags", headers=auth("allan")).json()["items"][0]["id"]
    assert client.post(f"/v1/flags/{flag_id}/acknowledge", headers=auth("allan")).status_code == 403
    for outsider in ("karin", "olof", "maria", "gunilla"):
        denied = client.post(f"/v1/flags/{flag_id}/acknowledge", headers=auth(outsider))
        missing = client.post(
            "/v1/flags/00000000-0000-0000-0000-000000000000/acknowledge", headers=auth(outsider)
        )
        assert denied.status_code == missing.status_code == 404
        assert denied.json() == missing.json()
    assert (
        client.get("/v1/patients/me/flags", headers=auth("allan")).json()["items"][0]["status"]
        == "open"
    )
    pid = patient_id(session, "allan")
    log = client.get(f"/v1/patients/{pid}/access-log", headers=auth("allan")).json()["items"]
    # The outsiders' attempts are in Allan's log, as refusals (issue 10: audited 404s).
    tried = [e for e in log if e["actor"]["handle"] in ("karin", "olof")]
    assert len(tried) == 2 and all(e["outcome"] == "refused:404" for e in tried)
    assert all(e["relation"] == "none" for e in tried)
