"""Measured values are JSON numbers in every answer, with the decimals as stored (DESIGN §4.9).

Asta syncs readings with awkward decimals (126 mg/dL becomes 6.993939 mmol/L, a CGM value
of 7.493506, 81.25 kg, 37.05 °C, blood pressure as whole numbers) that fire flags; the test
then walks readings, the change feed (the sync answer's and GET's), flags, goals with their
progress and series, and summaries. Every measured value must be an int or a float (never
text, never a bool), equal to the stored decimal text exactly, and its JSON text no longer
than the stored text's digits: no float noise. Times are minutes back from now, so the test
holds at any time of day.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from decimal import Decimal
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.clock import utcnow
from app.feed.models import Change
from app.findings.models import Flag
from app.readings.models import Reading
from tests.app.factories import STOCKHOLM, batch, bp, patient_id, scalar

Auth = Callable[[str], dict[str, str]]
DAY = 24 * 60  # minutes
Json = Any


def _readings() -> dict[str, Any]:
    return batch(
        scalar("weight", 78.65, "kg", minutes_ago=8 * DAY),  # a week back: a trend
        scalar("weight", 79.0, "kg", minutes_ago=2 * DAY),
        scalar("weight", 80.15, "kg", minutes_ago=DAY),
        scalar("weight", 81.25, "kg", minutes_ago=60),  # +2.25 kg in two days: a flag
        scalar("temperature", 37.05, "Cel", minutes_ago=240),
        scalar("temperature", 38.35, "Cel", minutes_ago=30),  # fever: a flag
        bp(185, 100, minutes_ago=20),  # very high: a flag
        scalar("glucose", 126, "mg/dL", minutes_ago=90, context={"meal": "fasting"}),
        *(scalar("cgm_glucose", 7.493506, "mmol/L", minutes_ago=m) for m in (50, 45, 40)),
        source="asta-numbers",
    )


def _digits(text: str) -> int:
    """Significant digits written: what a value's text costs, float noise included."""
    return len(Decimal(text).normalize().as_tuple().digits)


def _assert_as_stored(shown: Any, stored: Any, where: str) -> None:
    """One measured value: a JSON number equal to what is stored, no longer written."""
    assert isinstance(shown, int | float) and not isinstance(shown, bool), (where, shown)
    stored_text = stored if isinstance(stored, str) else repr(stored)
    assert Decimal(repr(shown)) == Decimal(stored_text), (where, shown, stored)
    assert _digits(json.dumps(shown)) <= _digits(stored_text), (where, shown, stored)


def _assert_value(shown: Any, stored: Mapping[str, Any], where: str) -> None:
    """A reading's value: one number, or an object of components."""
    if list(stored) == ["value"]:
        _assert_as_stored(shown, stored["value"], where)
        return
    assert isinstance(shown, dict) and set(shown) == set(stored), (where, shown)
    for component, text in stored.items():
        _assert_as_stored(shown[component], text, f"{where}.{component}")


def _assert_reading(data: Json, stored: Reading, where: str) -> None:
    _assert_value(data["value"], stored.values, f"{where}.value")
    _assert_value(data["original"]["value"], stored.original_values, f"{where}.original.value")


def _decimal_texts(data: Json, path: str = "") -> Iterator[tuple[str, str]]:
    """Every decimal text of stored JSON, by path ("computed.delta")."""
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _decimal_texts(value, f"{path}.{key}" if path else str(key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from _decimal_texts(value, f"{path}[{index}]")
    elif isinstance(data, str) and data.lstrip("-").replace(".", "", 1).isdigit():
        yield path, data


def _at(data: Json, path: str) -> Any:
    for part in path.replace("[", ".[").split("."):
        data = data[int(part[1:-1])] if part.startswith("[") else data[part]
    return data


def _assert_explanation(shown: Json, stored: Json, where: str) -> int:
    """Every decimal text the flag stores answers as the number it writes; returns how many."""
    assert set(shown) == set(stored), where
    count = 0
    for path, text in _decimal_texts(stored):
        if path.startswith(("computed", "thresholds", "episode", "readings")):
            _assert_as_stored(_at(shown, path), text, f"{where}.{path}")
            count += 1
    return count


def _assert_number_tree(value: Any, where: str) -> int:
    """A computed value (or an object of them): numbers only; returns how many."""
    if value is None:
        return 0
    if isinstance(value, dict):
        return sum(_assert_number_tree(v, f"{where}.{k}") for k, v in value.items())
    assert isinstance(value, int | float) and not isinstance(value, bool), (where, value)
    _assert_as_stored(value, repr(value), where)  # its repr is its JSON: no noise beyond it
    return 1


def test_every_measured_value_is_a_json_number_as_stored(
    client: TestClient, auth: Auth, session: Session
) -> None:
    asta = patient_id(session, "asta")
    base = f"/v1/patients/{asta}"
    synced = client.post(f"{base}/sync", json=_readings(), headers=auth("asta"))
    assert synced.status_code == 200, synced.text
    answer = synced.json()
    assert {r["status"] for r in answer["results"]} == {"created"}, answer["results"]

    session.expire_all()
    stored = {r.id: r for r in session.scalars(select(Reading).where(Reading.patient_id == asta))}
    flags = {f.id: f for f in session.scalars(select(Flag).where(Flag.patient_id == asta))}
    # The awkward cases are there as text, as the database keeps them.
    texts = {(r.type, v) for r in stored.values() for v in r.values.values()}
    assert {("weight", "81.25"), ("temperature", "37.05"), ("cgm_glucose", "7.493506")} <= texts
    assert ("blood_pressure", "185") in texts
    assert {f.rule_id for f in flags.values()} >= {
        "weight-gain-hf",
        "temperature-fever",
        "bp-very-high",
    }

    # Readings.
    response = client.get(f"{base}/readings", params={"limit": 500}, headers=auth("karin"))
    assert response.status_code == 200, response.text  # a string value fails the schema: 500
    listed = response.json()
    assert len(listed["items"]) == len(stored) == 11
    for item in listed["items"]:
        _assert_reading(item, stored[item["id"]], f"readings/{item['type']}")

    # The change feed, in the sync answer and from GET .../changes.
    feed = client.get(f"{base}/changes", headers=auth("asta")).json()["changes"]
    explained = 0
    for where, changes in (("sync.changes", answer["changes"]), ("changes", feed)):
        readings = [c for c in changes if c["entity"] == "reading"]
        assert len(readings) == 11, where
        for change in readings:
            _assert_reading(change["data"], stored[change["id"]], where)
        for change in (c for c in changes if c["entity"] == "flag"):
            flag = flags[change["id"]]
            explained += _assert_explanation(
                change["data"]["explanation"], flag.explanation, f"{where}.flag"
            )

    # Flags: the patient's list and the care team's worklist.
    for url, handle in ((f"{base}/flags", "asta"), ("/v1/flags?status=open", "karin")):
        items = client.get(url, headers=auth(handle)).json()["items"]
        assert {i["id"] for i in items} >= set(flags), url
        for item in items:
            if item["id"] in flags:
                explained += _assert_explanation(
                    item["explanation"], flags[item["id"]].explanation, url
                )
    assert explained >= 60  # readings' values, computed values, thresholds: all compared

    # Goals: target, milestones, progress (computed at two and three decimals).
    today = utcnow().astimezone(STOCKHOLM).date()
    goal = {
        "title": "Väga under 79,5 kg",
        "measure": {"type": "weight", "aggregate": "last", "window_days": 14},
        "target": {"value": 79.45, "unit": "kg", "direction": "below"},
        "start": (today - timedelta(days=10)).isoformat(),
        "due": (today + timedelta(days=90)).isoformat(),
        "milestones": [{"title": "Första steget", "target": {"value": 80.15, "unit": "kg"}}],
    }
    made = client.post(f"{base}/goals", json=goal, headers=auth("karin"))
    assert made.status_code == 201, made.text
    goals = client.get(f"{base}/goals", headers=auth("asta")).json()["items"]
    assert len(goals) == 1
    shown = goals[0]
    _assert_as_stored(shown["target"]["value"], "79.45", "goal.target")
    _assert_as_stored(shown["milestones"][0]["target"]["value"], "80.15", "milestone.target")
    progress = shown["progress"]
    _assert_as_stored(progress["current"], "81.25", "goal.progress.current")
    _assert_as_stored(progress["baseline"], "78.65", "goal.progress.baseline")
    assert _assert_number_tree(progress["trend_per_week"], "goal.progress.trend_per_week") == 1
    assert round(progress["trend_per_week"], 3) == progress["trend_per_week"]  # three places
    series = client.get(f"{base}/goals/{shown['id']}/progress", headers=auth("asta")).json()
    _assert_as_stored(series["target"]["value"], "79.45", "series.target")
    _assert_as_stored(series["milestones"][0]["target"], "80.15", "series.milestone")
    days = [d for d in series["series"] if d["value"] is not None]
    assert days
    assert all(_assert_number_tree(d["value"], "series.value") for d in days)
    _assert_as_stored(days[-1]["value"], "81.25", "series.last")

    # Summaries: measured values as stored, means at most four decimals, no noise.
    for type_, expected in (
        ("weight", {"min": "78.65", "max": "81.25", "last": "81.25"}),
        ("temperature", {"min": "37.05", "max": "38.35", "last": "38.35"}),
        ("glucose", {"last": stored_text(stored, "glucose")}),
    ):
        summary = client.get(
            f"{base}/summary", params={"type": type_, "days": 14}, headers=auth("asta")
        ).json()
        for key, text in expected.items():
            _assert_as_stored(summary["total"][key], text, f"summary/{type_}.{key}")
        _assert_number_tree(summary["total"]["mean"], f"summary/{type_}.mean")
        assert round(summary["total"]["mean"], 4) == summary["total"]["mean"]
    pressure = client.get(
        f"{base}/summary", params={"type": "blood_pressure", "days": 14}, headers=auth("asta")
    ).json()["total"]
    assert pressure["max"] == {"systolic": 185, "diastolic": 100}
    assert all(type(v) is int for v in pressure["max"].values())
    cgm = client.get(
        f"{base}/summary", params={"type": "cgm_glucose", "days": 14}, headers=auth("asta")
    ).json()
    _assert_as_stored(cgm["mean"], "7.4935", "summary/cgm.mean")  # four decimals, as decided
    for key in ("wear_percent", "sd", "cv", "tir", "gmi_percent", "gmi_mmol_mol", "gri"):
        _assert_number_tree(cgm[key], f"summary/cgm.{key}")


def stored_text(stored: Mapping[str, Reading], type_: str) -> str:
    """The one stored canonical value of a type."""
    (reading,) = (r for r in stored.values() if r.type == type_)
    return str(reading.values["value"])


def test_feed_rows_written_as_decimal_text_answer_as_numbers(
    client: TestClient, auth: Auth, session: Session
) -> None:
    """Rows the feed stored before values were numbers are converted on the way out."""
    asta = patient_id(session, "asta")
    base = f"/v1/patients/{asta}"
    synced = client.post(
        f"{base}/sync",
        json=batch(bp(185, 100), scalar("weight", 81.25, "kg")),
        headers=auth("asta"),
    )
    assert synced.status_code == 200, synced.text
    # Write the rows back in the old form: values, explanation numbers as decimal text.
    rows = session.scalars(select(Change).where(Change.patient_id == asta)).all()
    old_form = 0
    for row in rows:
        if row.entity == "reading":
            data = dict(row.data)
            data["value"] = _as_text(data["value"])
            data["original"] = {**data["original"], "value": _as_text(data["original"]["value"])}
        elif row.entity == "flag":
            data = {**row.data, "explanation": session.get(Flag, row.entity_id).explanation}
        else:
            continue
        row.data = data
        old_form += 1
    session.flush()
    assert old_form >= 3
    stored = {r.id: r for r in session.scalars(select(Reading).where(Reading.patient_id == asta))}
    changes = client.get(f"{base}/changes", headers=auth("asta")).json()["changes"]
    for change in changes:
        if change["entity"] == "reading":
            _assert_reading(change["data"], stored[change["id"]], "old feed row")
        elif change["entity"] == "flag":
            flag = session.get(Flag, change["id"])
            assert flag is not None
            assert _assert_explanation(change["data"]["explanation"], flag.explanation, "old flag")


def _as_text(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _as_text(v) for k, v in value.items()}
    return str(value)
