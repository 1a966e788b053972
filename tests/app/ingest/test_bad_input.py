"""AT-20 (bad input corpus) and AT-21 (size limits), on both databases.

Every bad item gets a 4xx-class answer with a reason; nothing invalid is stored; the service
keeps answering. Size limits are enforced before a body is buffered: a real uvicorn process
takes a 10 MiB body and a 100 MiB chunked upload without its memory growing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.readings.models import Reading
from tests.app.factories import batch, scalar, when
from tests.live import LiveServer

Auth = Callable[[str], dict[str, str]]
SYNC = "/v1/patients/me/sync"


def _item(**changes: Any) -> dict[str, Any]:
    return {**scalar("weight", 80.0, "kg"), **changes}


NOW = datetime.now(UTC)
ITEM_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("string number", _item(value="80"), "invalid"),
    ("bool number", _item(value=True), "invalid"),
    ("null value", _item(value=None), "invalid"),
    ("huge number", _item(value=1e300), "invalid"),
    ("negative weight", _item(value=-3), "implausible"),
    ("implausible weight", _item(value=900), "implausible"),
    ("implausible pulse", scalar("pulse", 400, "/min"), "implausible"),
    (
        "diastolic over systolic",
        {
            **_item(),
            "type": "blood_pressure",
            "unit": "mm[Hg]",
            "value": {"systolic": 80, "diastolic": 120},
        },
        "implausible",
    ),
    (
        "bp without component",
        {**_item(), "type": "blood_pressure", "unit": "mm[Hg]", "value": {"systolic": 120}},
        "invalid",
    ),
    ("naive time", _item(time="2026-11-20T07:31:00"), "missing_offset"),
    ("future time", _item(time=(NOW + timedelta(hours=1)).isoformat()), "future_time"),
    ("year 1900", _item(time="1900-01-01T00:00:00+00:00"), "invalid"),
    ("epoch seconds", _item(time=int(NOW.timestamp())), "invalid"),
    ("epoch milliseconds", _item(time=int(NOW.timestamp() * 1000)), "invalid"),
    ("garbage time", _item(time="yesterday"), "invalid"),
    ("unknown unit", _item(unit="stone"), "unknown_unit"),
    ("unknown type", _item(type="mood"), "unknown_type"),
    ("no client_id", {k: v for k, v in _item().items() if k != "client_id"}, "invalid"),
    ("long client_id", _item(client_id="x" * 500), "invalid"),
    ("not an object", "weight 80", "invalid"),  # type: ignore[list-item]
    ("context not an object", _item(context=["a"]), "invalid"),
    ("steps without end", scalar("steps", 5000, "{steps}"), "invalid"),
]

BODY_CASES: list[tuple[str, bytes, int]] = [
    ("NaN", b'{"source":{"id":"a","kind":"app"},"readings":[{"value":NaN}]}', 400),
    ("Infinity", b'{"source":{"id":"a","kind":"app"},"readings":[{"value":Infinity}]}', 400),
    ("-Infinity", b'{"source":{"id":"a","kind":"app"},"readings":[{"value":-Infinity}]}', 400),
    ("malformed", b'{"source": {', 400),
    ("BOM", b"\xef\xbb\xbf" + json.dumps(batch(_item())).encode(), 400),
    ("not UTF-8", json.dumps(batch(_item())).encode("utf-16"), 400),
    ("deep nesting", b"[" * 50_000 + b"]" * 50_000, 400),
    ("empty", b"", 400),
    ("array envelope", b"[]", 422),
    (
        "readings not a list",
        json.dumps({"source": {"id": "a", "kind": "app"}, "readings": {}}).encode(),
        422,
    ),
]


def test_bad_input_corpus(client: TestClient, auth: Auth, session: Session) -> None:
    """AT-20: a reason per bad item, nothing invalid stored, later GETs still 200."""
    headers = {**auth("allan"), "Content-Type": "application/json"}
    server_errors = 0
    stored_before = session.scalar(select(func.count()).select_from(Reading))
    items = [case for _, case, _ in ITEM_CASES]
    answer = client.post(SYNC, json=batch(*items), headers=headers)
    assert answer.status_code == 200, answer.text
    for (name, _, code), result in zip(ITEM_CASES, answer.json()["results"], strict=True):
        assert result["status"] == "rejected", name
        assert result["errors"][0]["code"] == code, (name, result)
        assert result["errors"][0]["message"], name
    # 1e400 overflows a float: sent as raw JSON text it must be refused, never stored as inf.
    raw = json.dumps(batch(_item(value=0))).replace('"value": 0', '"value": 1e400').encode()
    cases = [*BODY_CASES, ("1e400", raw, 200)]
    for name, body, status in cases:
        response = client.post(SYNC, content=body, headers=headers)
        server_errors += response.status_code >= 500
        assert response.status_code == status, (name, response.text[:200])
        if status != 200:
            assert response.headers["content-type"].startswith("application/problem+json")
            assert response.json()["detail"], name
        else:
            assert response.json()["results"][0]["status"] == "rejected", name
    assert session.scalar(select(func.count()).select_from(Reading)) == stored_before
    values = [v for row in session.scalars(select(Reading)) for v in row.values.values()]
    assert not any(math.isnan(float(v)) or math.isinf(float(v)) for v in values)
    assert client.get("/v1/patients/me/readings", headers=headers).status_code == 200
    print(f"AT-20 cases={len(ITEM_CASES) + len(cases)} 5xx={server_errors} invalid_stored=0")


@pytest.fixture
def live(db_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    server = LiveServer(db_url, tmp_path, sync_rate_per_minute="0")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _chunks(total: int, size: int = 1 << 20) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        yield b" " * size
        sent += size


def test_size_limits_refuse_before_buffering(live: LiveServer) -> None:
    """AT-21: 10 MiB body, 100 MiB chunked, 5,001 readings → 413; memory stays flat."""
    headers = {**live.token("allan"), "Content-Type": "application/json"}
    url = f"{live.base}{SYNC}"
    with httpx.Client(timeout=60) as http:
        http.post(url, json=batch(_item()), headers=headers)  # warm up
        baseline = live.rss_kib()
        big = http.post(url, content=b" " * (10 << 20), headers=headers)
        assert big.status_code == 413
        try:
            chunked = http.post(url, content=_chunks(100 << 20), headers=headers)
            chunked_status = chunked.status_code
        except httpx.HTTPError:
            chunked_status = 413  # the server answered 413 and closed while we still sent
        assert chunked_status == 413
        many = {
            "source": {"id": "x", "kind": "app"},
            "readings": [_item(client_id=f"c{i}", time=when(i)) for i in range(5001)],
        }
        assert http.post(url, json=many, headers=headers).status_code == 413
        assert (
            http.get(
                f"{live.base}/v1/patients/me/readings", params={"limit": 10**9}, headers=headers
            ).status_code
            == 422
        )
        growth_mib = (live.rss_kib() - baseline) / 1024
        assert http.get(f"{live.base}/healthz").status_code == 200
    print(f"AT-21 max_rss_growth_mib={growth_mib:.1f}")
    assert growth_mib < 50, "a refused body was buffered"
