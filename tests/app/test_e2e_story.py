"""The foundation story end to end: the real CLI seeds, a real uvicorn serves, HTTP drives it.

Allan syncs 185/100 from his app and gets urgent advice; nurse Eva finds the flag at the top
of her worklist with its explanation and acknowledges it; Allan sees her in his access log;
Karin (hemsjukvård) cannot see Allan; Maria sees Asta but not Allan.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from app.config import PROJECT_ROOT

pytestmark = pytest.mark.e2e
SELFCARE = [sys.executable, "-m", "app"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(migrated_url: str, tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    port = _free_port()
    env = {
        **os.environ,
        "SELFCARE_DATABASE_URL": migrated_url,
        "SELFCARE_VAR_DIR": str(tmp_path),
        "SELFCARE_PORT": str(port),
        "SELFCARE_SCHEDULER_ENABLED": "0",
    }
    subprocess.run(
        [*SELFCARE, "seed"], env=env, check=True, cwd=PROJECT_ROOT, capture_output=True, timeout=600
    )
    process = subprocess.Popen(
        [*SELFCARE, "serve"],
        env=env,
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                output = process.stdout.read().decode() if process.stdout else ""
                pytest.fail(f"server did not start:\n{output}")
            time.sleep(0.2)
        yield base, env
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def _token(env: dict[str, str], handle: str) -> dict[str, str]:
    out = subprocess.run(
        [*SELFCARE, "token", handle],
        env=env,
        check=True,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return {"Authorization": f"Bearer {out.stdout.strip()}"}


def test_allan_eva_karin_maria(server: tuple[str, dict[str, str]]) -> None:
    base, env = server
    allan, eva, karin, maria = (_token(env, h) for h in ("allan", "eva", "karin", "maria"))
    http = httpx.Client(base_url=base, timeout=30)

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
    top = worklist[0]
    assert top["patient_id"] == allan_id and top["rule"]["id"] == "bp-very-high"
    assert top["severity"] == "high"
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
