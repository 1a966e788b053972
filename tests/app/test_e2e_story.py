"""The foundation story end to end: the real CLI seeds, a real uvicorn serves, HTTP drives it.

Allan syncs 185/100 from his app and gets urgent advice; nurse Eva finds the flag at the top
of her worklist with its explanation and acknowledges it; Allan sees her in his access log;
Karin (hemsjukvård) cannot see Allan; Maria sees Asta but not Allan.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.live import LiveServer

pytestmark = pytest.mark.e2e


def test_allan_eva_karin_maria(seeded_server: LiveServer) -> None:
    allan, eva, karin, maria = (seeded_server.token(h) for h in ("allan", "eva", "karin", "maria"))
    http = httpx.Client(base_url=seeded_server.base, timeout=30)

    now = datetime.now(UTC).astimezone()
    reading = {
        "client_id": str(uuid.uuid4()),
        "type": "blood_pressure",
        "time": (now - timedelta(minutes=2)).isoformat(),
        "value": {"systolic": 185, "diastolic": 100},
        "unit": "mm[Hg]",
    }
    body = {
        "source": {"id": "allan-phone", "kind": "app", "name": "Min hälsa"},
        "readings": [reading],
    }
    synced = http.post("/v1/patients/me/sync", json=body, headers=allan)
    assert synced.status_code == 200, synced.text
    answer = synced.json()
    assert answer["results"][0]["status"] == "created"
    urgent = [a for a in answer["advice"] if a["rule"]["id"] == "bp-very-high"]
    assert urgent and urgent[0]["priority"] == "urgent" and urgent[0]["body"]

    allan_id = http.get("/v1/me", headers=allan).json()["patients"][0]["id"]
    worklist = http.get("/v1/flags", params={"status": "open"}, headers=eva).json()["items"]
    # Most severe first: Allan's new high flag is among the high ones at the top (Asta's
    # sample data holds a high COPD-deterioration flag too, older, so it may come first).
    top = next(
        f for f in worklist if f["patient_id"] == allan_id and f["rule"]["id"] == "bp-very-high"
    )
    assert top["severity"] == "high"
    ranks = [{"high": 3, "moderate": 2, "low": 1}[f["severity"]] for f in worklist]
    assert ranks == sorted(ranks, reverse=True) and worklist.index(top) < ranks.count(3)
    explanation = top["explanation"]
    assert explanation["rule"]["id"] == "bp-very-high" and explanation["plan_version"] >= 1
    assert answer["results"][0]["id"] in top["reading_ids"]
    assert explanation["thresholds"]

    acked = http.post(
        f"/v1/flags/{top['id']}/acknowledge", json={"note": "Ringer Allan."}, headers=eva
    )
    assert acked.status_code == 200 and acked.json()["status"] == "acknowledged"

    log = http.get(f"/v1/patients/{allan_id}/access-log", headers=allan).json()["items"]
    eva_rows = [e for e in log if e["actor"]["handle"] == "eva"]
    assert {e["action"] for e in eva_rows} >= {"manage_flags"}
    assert all(e["care_unit"] and e["care_unit"]["name"] for e in eva_rows)
    worklist_reads = http.get("/v1/patients/me/access-log", headers=allan).json()["items"]
    assert any(e["resource"] == "GET /v1/flags" for e in worklist_reads)

    assert http.get(f"/v1/patients/{allan_id}", headers=karin).status_code == 404
    assert http.get(f"/v1/patients/{allan_id}/readings", headers=karin).status_code == 404
    asta_id = http.get("/v1/me", headers=maria).json()["patients"][0]["id"]
    assert http.get(f"/v1/patients/{asta_id}/readings", headers=maria).status_code == 200
    assert http.get(f"/v1/patients/{allan_id}", headers=maria).status_code == 404
    readings = http.get(
        f"/v1/patients/{asta_id}/readings", params={"limit": 1000}, headers=maria
    ).json()
    assert len(readings["items"]) >= 100  # the seeded month of Asta's measurements
