"""Issue 13's story end to end: the real CLI seeds, a real uvicorn serves, HTTP drives it.

Asta gives, narrows and revokes Maria's consent (tests/app/consent/test_consent.py tells the steps);
Allan and Eva write to each other; Eva and Karin each add a note to Asta's flag.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache

import httpx
import pytest

from tests.app.consent.test_consent import consent_story
from tests.live import LiveServer

pytestmark = pytest.mark.e2e


QUESTION = "Ska jag ändra min medicin när trycket är högt?"


def dialogue_story(http: httpx.Client, auth: Callable[[str], dict[str, str]]) -> None:
    """Allan asks, Eva sees it unread and answers, signed; two notes on Asta's flag stay."""
    allan, eva, karin = auth("allan"), auth("eva"), auth("karin")
    allan_pid = http.get("/v1/me", headers=allan).json()["patients"][0]["id"]
    asked = http.post("/v1/patients/me/messages", json={"body": QUESTION}, headers=allan)
    assert asked.status_code == 201, asked.text

    rows = http.get("/v1/patients", headers=eva).json()["items"]
    assert next(r for r in rows if r["id"] == allan_pid)["patient"]["unread_messages"] == 1
    for row in http.get("/v1/flags", headers=eva).json()["items"]:
        if row["patient_id"] == allan_pid:  # Allan's worklist rows say so too
            assert row["patient"]["unread_messages"] == 1
    thread = http.get(f"/v1/patients/{allan_pid}/messages", headers=eva).json()
    assert [m["body"] for m in thread["items"]] == [QUESTION] and thread["unread"] == 1
    answered = http.post(f"/v1/patients/{allan_pid}/messages",
                         json={"body": "Nej, ändra inte själv. Jag ringer dig i morgon."},
                         headers=eva)  # fmt: skip
    assert answered.status_code == 201, answered.text
    mine = http.get("/v1/patients/me/messages", headers=allan).json()["items"]
    author = mine[-1]["author"]
    assert (author["display_name"], author["care_unit"]) == ("Eva Ek", "Vårdcentralen Norra")

    asta_flags = http.get("/v1/flags", headers=karin).json()["items"]
    flag = asta_flags[0]
    notes = ("Ringt Asta, hon mår bättre.", "Hembesök: vikten stämmer, inga ödem.")
    acked = http.post(f"/v1/flags/{flag['id']}/acknowledge", json={"note": notes[0]},
                      headers=eva)  # fmt: skip
    assert acked.status_code == 200, acked.text
    added = http.post(f"/v1/flags/{flag['id']}/notes", json={"body": notes[1]}, headers=karin)
    assert added.status_code == 201, added.text
    acknowledged = http.get("/v1/flags", params={"status": "acknowledged"}, headers=karin)
    seen = next(f for f in acknowledged.json()["items"] if f["id"] == flag["id"])
    assert [n["body"] for n in seen["notes"]] == list(notes)
    assert seen["acknowledged_by"]["display_name"] == "Eva Ek"
    for handle in ("asta", "maria"):
        own = http.get(f"/v1/patients/{flag['patient_id']}/flags", headers=auth(handle)).text
        feed = http.get(f"/v1/patients/{flag['patient_id']}/changes", headers=auth(handle)).text
        assert not any(note in own or note in feed for note in notes), handle


def test_issue_13_story(seeded_server: LiveServer) -> None:
    auth = cache(seeded_server.token)
    with httpx.Client(base_url=seeded_server.base, timeout=30) as http:
        dialogue_story(http, auth)
        figures = consent_story(http, auth, datetime.now(UTC))
        assert figures["grant_changes"] >= 4
