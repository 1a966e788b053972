"""The CGM summary (DESIGN §4.4) against iglu: the builder the endpoint uses on every series of
``crosscheck_expected_metrics.csv``, and the endpoint itself on series synced through the API
(both databases). The iglu data is read from ``../shared`` at test time, never copied."""

from __future__ import annotations

import csv
import math
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.clock import clock, utcnow
from app.summaries import service as summaries_service
from rules.catalogue import GLUCOSE_MG_DL_PER_MMOL_L
from rules.cgm import GlucoseSample, agp_profile
from tests.app.factories import STOCKHOLM, batch
from tests.shared_data import SHARED_DATA, needs

Auth = Callable[[str], dict[str, str]]
SHARED = SHARED_DATA
EXPECTED = SHARED / "iglu" / "crosscheck_expected_metrics.csv"
FACTOR = float(GLUCOSE_MG_DL_PER_MMOL_L)
PERCENTS = {"tir": "tir", "tbr70": "tbr_3_9", "tbr54": "tbr_3_0", "tar180": "tar_10_0",
            "tar250": "tar_13_9", "cv": "cv", "gmi": "gmi_percent"}  # fmt: skip

needs_shared = needs("iglu/crosscheck_expected_metrics.csv", "cgmquantify/dexcom_g6_test_file.csv")


def iglu_series(dataset: str, subject: str) -> list[tuple[datetime, Decimal]]:
    """A crosscheck series as (naive time read as UTC, mg/dL)."""
    rows: list[tuple[datetime, Decimal]] = []
    if dataset == "dexcom_g6_test_file":
        path = SHARED / "cgmquantify" / "dexcom_g6_test_file.csv"
        with path.open(encoding="utf-8-sig", newline="") as handle:
            for row in csv.DictReader(handle):
                if row["Event Type"] == "EGV":
                    at = datetime.fromisoformat(row["Timestamp (YYYY-MM-DDThh:mm:ss)"])
                    rows.append((at.replace(tzinfo=UTC), Decimal(row["Glucose Value (mg/dL)"])))
        return rows
    with (SHARED / "iglu" / f"{dataset}.csv").open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["id"] == subject and row["gl"] not in ("", "NA"):
                at = datetime.fromisoformat(row["time"]).replace(tzinfo=UTC)
                rows.append((at, Decimal(row["gl"])))
    return rows


def expected_rows() -> list[dict[str, str]]:
    if not EXPECTED.exists():
        return []
    with EXPECTED.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def check_against_iglu(body: dict[str, Any], row: dict[str, str]) -> None:
    """Every consensus metric within 0.001 of iglu (the mean compared in mmol/L)."""
    assert body["n"] == int(row["n"])
    assert body["unit"] == "mmol/L"
    assert abs(body["mean"] - float(row["mean_iglu"]) / FACTOR) <= 0.001
    for iglu, ours in PERCENTS.items():
        assert abs(body[ours] - float(row[f"{iglu}_iglu"])) <= 0.001, ours
    mean_mmol = float(row["mean_iglu"]) / FACTOR
    assert abs(body["gmi_mmol_mol"] - (12.71 + 4.70587 * mean_mmol)) <= 0.001
    assert 0 <= body["gri"] <= 100
    agp = body["agp"]
    assert [h["hour"] for h in agp] == sorted(h["hour"] for h in agp)
    assert all(h["p5"] <= h["p25"] <= h["p50"] <= h["p75"] <= h["p95"] for h in agp)


@needs_shared
@pytest.mark.parametrize("row", expected_rows(), ids=lambda r: f"{r['dataset']}|{r['id']}")
def test_the_summary_builder_matches_iglu(row: dict[str, str]) -> None:
    samples = [GlucoseSample(t, v, "mg/dL") for t, v in iglu_series(row["dataset"], row["id"])]
    body = summaries_service.cgm_summary(samples, tz=UTC)
    check_against_iglu(body, row)
    assert round(body["wear_percent"], 2) == pytest.approx(float(row["active_pct_iglu"]))
    assert len(body["agp"]) == 24


# Through the API: the two shortest series (every series goes through the builder above;
# syncing all of them twice, on both databases, would add a minute to the suite).
SYNCED = [r for r in expected_rows() if r["id"] in ("dexcom_g6", "Subject 3")]


@needs_shared
@pytest.mark.parametrize("row", SYNCED, ids=lambda r: f"{r['dataset']}|{r['id']}")
def test_the_summary_endpoint_matches_iglu(
    client: TestClient, auth: Auth, row: dict[str, str]
) -> None:
    """The series synced as Allan's sensor, shifted to end an hour ago, summarised over it."""
    series = iglu_series(row["dataset"], row["id"])
    now = utcnow().replace(microsecond=0)
    clock.fixed = now
    shift = now - timedelta(hours=1) - max(t for t, _ in series)
    readings = [
        {"client_id": str(uuid.uuid4()), "type": "cgm_glucose",
         "time": (t + shift).astimezone(STOCKHOLM).isoformat(), "value": int(v), "unit": "mg/dL"}
        for t, v in series
    ]  # fmt: skip
    answer = client.post("/v1/patients/me/sync", json=batch(*readings, source="iglu-cgm"),
                         headers=auth("allan"))  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert all(r["status"] == "created" for r in answer.json()["results"])
    span = (max(t for t, _ in series) - min(t for t, _ in series)).total_seconds() / 86400
    days = math.ceil(span + 1 / 24) + 1
    summary = client.get(f"/v1/patients/me/summary?type=cgm_glucose&days={days}",
                         headers=auth("allan"))  # fmt: skip
    assert summary.status_code == 200, summary.text
    body = summary.json()
    check_against_iglu(body, row)
    assert body["days"] == days and body["to"] == now.isoformat()
    assert 0 < body["wear_percent"] <= 100  # of the window's 5-minute slots: not iglu's range
    # The AGP is the rules.cgm profile of the same samples in Allan's local hours.
    shifted = [GlucoseSample(t + shift, v, "mg/dL") for t, v in series]
    profile = agp_profile(shifted, tz=STOCKHOLM)
    assert [(h["hour"], h["n"]) for h in body["agp"]] == [(h.hour, h.n) for h in profile]
    assert body["agp"][0]["p50"] == pytest.approx(profile[0].p50, abs=1e-4)


def test_a_summary_of_no_data(client: TestClient, auth: Auth) -> None:
    body = client.get("/v1/patients/me/summary?type=cgm_glucose", headers=auth("allan")).json()
    assert body["n"] == 0 and body["mean"] is None and body["tir"] is None and body["agp"] == []
    assert body["days"] == 14
    pulse = client.get("/v1/patients/me/summary?type=pulse&days=3", headers=auth("allan")).json()
    assert [d["count"] for d in pulse["days"]] == [0, 0, 0]
    assert pulse["total"] == {"count": 0, "mean": None, "min": None, "max": None, "last": None}
    assert client.get("/v1/patients/me/summary?type=pulse&days=91",
                      headers=auth("allan")).status_code == 422  # fmt: skip
