"""Goals over HTTP on both databases: who may write, validation, lifecycle, progress on sync,
milestone congratulations, the change feed, the nightly job, and Allan's sample goals."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from app.clock import utcnow
from app.config import Settings
from app.db import transaction
from app.feed import service as feed
from app.feed.models import Change
from app.findings.models import Advice
from app.goals.jobs import recompute_all
from app.goals.models import Goal, Milestone
from app.patients.models import Patient
from app.push.models import OutboxMessage
from app.readings.models import Reading
from app.readings.repository import changed_times
from app.seed import load_goals, load_readings
from tests.app.factories import STOCKHOLM, batch, patient_id, scalar

Auth = Callable[[str], dict[str, str]]


def today() -> date:
    return utcnow().astimezone(STOCKHOLM).date()


def weight_goal(**extra: Any) -> dict[str, Any]:
    """Lose weight to 91 kg, a milestone at 94 kg."""
    return {
        "title": "Gå ner 5 kilo",
        "measure": {"type": "weight", "aggregate": "last", "window_days": 14},
        "target": {"value": 91.0, "unit": "kg", "direction": "below"},
        "start": (today() - timedelta(days=30)).isoformat(),
        "due": (today() + timedelta(days=200)).isoformat(),
        "milestones": [{"title": "2 kilo", "target": {"value": 94.0, "unit": "kg"}}],
        "agreements": ["Väg dig varje måndag."],
        **extra,
    }


def weights(*pairs: tuple[int, float], source: str = "scale") -> dict[str, Any]:
    """A sync batch of weights at noon, Stockholm, ``days`` days ago (or just now, if later).

    Noon, not "so many minutes ago": from midnight to one o'clock local time a weight sent
    "two days and an hour ago" fell on the day before, and the milestone's day with it.
    """
    items = []
    for days, kg in pairs:
        item = scalar("weight", kg, "kg")
        noon = datetime.combine(today() - timedelta(days=days), time(12, 0), STOCKHOLM)
        item["time"] = min(noon, utcnow() - timedelta(minutes=5)).astimezone(STOCKHOLM).isoformat()
        items.append(item)
    return batch(*items, source=source)


def goal_count(session: Session) -> tuple[int, int]:
    goals = session.scalar(select(func.count()).select_from(Goal)) or 0
    milestones = session.scalar(select(func.count()).select_from(Milestone)) or 0
    return int(goals), int(milestones)


# --- who may write --------------------------------------------------------------------------------


def test_the_nurse_sets_a_goal_and_the_patient_sees_it(
    client: TestClient, auth: Auth, session: Session
) -> None:
    allan = patient_id(session, "allan")
    made = client.post(f"/v1/patients/{allan}/goals", json=weight_goal(), headers=auth("eva"))
    assert made.status_code == 201, made.text
    goal = made.json()
    assert goal["lifecycle"] == "active" and goal["personal"] is False
    assert goal["measure"] == {"type": "weight", "aggregate": "last", "window_days": 14,
                               "component": None}  # fmt: skip
    assert goal["target"] == {"value": 91.0, "unit": "kg", "direction": "below", "inclusive": True}
    assert goal["agreements"] == ["Väg dig varje måndag."]
    assert [m["title"] for m in goal["milestones"]] == ["2 kilo"]
    assert goal["progress"]["status"] == "insufficient_data"
    assert goal["progress"]["reason"] == "no_baseline"
    assert "state" not in goal["progress"]

    mine = client.get("/v1/patients/me/goals", headers=auth("allan")).json()["items"]
    assert [g["id"] for g in mine] == [goal["id"]]
    assert client.get(f"/v1/patients/{allan}/goals", headers=auth("karin")).status_code == 404


def test_a_patient_adds_personal_goals_only(
    client: TestClient, auth: Auth, session: Session
) -> None:
    before = goal_count(session)
    clinical = client.post("/v1/patients/me/goals", json=weight_goal(), headers=auth("allan"))
    assert clinical.status_code == 403
    assert goal_count(session) == before

    personal = client.post(
        "/v1/patients/me/goals", json=weight_goal(personal=True), headers=auth("allan")
    )
    assert personal.status_code == 201, personal.text
    goal_id = personal.json()["id"]
    renamed = client.patch(
        f"/v1/patients/me/goals/{goal_id}", json={"title": "Mitt eget mål"}, headers=auth("allan")
    )
    assert renamed.status_code == 200 and renamed.json()["title"] == "Mitt eget mål"

    # Maria (proxy, read scope) may not add one for Asta; nor may Allan for Asta (404).
    asta = patient_id(session, "asta")
    body = weight_goal(personal=True)
    url = f"/v1/patients/{asta}/goals"
    assert client.post(url, json=body, headers=auth("maria")).status_code == 403
    assert client.post(url, json=body, headers=auth("allan")).status_code == 404

    # The nurse's goal is not Allan's to change.
    allan = patient_id(session, "allan")
    nurse = client.post(f"/v1/patients/{allan}/goals", json=weight_goal(), headers=auth("eva"))
    denied = client.patch(
        f"/v1/patients/me/goals/{nurse.json()['id']}", json={"title": "x"}, headers=auth("allan")
    )
    assert denied.status_code == 403
    assert (
        client.get("/v1/patients/me/goals", headers=auth("allan")).json()["items"][1]["title"]
        == "Gå ner 5 kilo"
    )


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"target": {"value": 91, "unit": "stone", "direction": "below"}}, "target.unit"),
        ({"measure": {"type": "blood_pressure"},
          "target": {"value": {"systolic": 135}, "unit": "mm[Hg]", "direction": "below"}},
         "target.value"),
        ({"measure": {"type": "blood_pressure", "component": "mean_arterial"},
          "target": {"value": 100, "unit": "mm[Hg]", "direction": "below"}},
         "measure.component"),
        ({"target": {"value": 5000, "unit": "kg", "direction": "below"}}, "target.value"),
        ({"due": "2020-01-01"}, "due"),
        ({"target": {"value": "91", "unit": "kg", "direction": "below"}},
         "body.target.value.float"),
        ({"patient_id": "someone-else"}, "body.patient_id"),
        ({"created_at": "2020-01-01T00:00:00Z"}, "body.created_at"),
        ({"milestones": [{"title": "x", "target": {"value": [94], "unit": "kg"}}]},
         "body.milestones.0.target.value.float"),
        ({"measure": {"type": "weight", "aggregate": "median"}}, "body.measure.aggregate"),
        ({"lifecycle": "cancelled"}, "lifecycle"),
    ],
)  # fmt: skip
def test_a_bad_goal_is_422_and_changes_nothing(
    client: TestClient, auth: Auth, session: Session, change: dict[str, Any], loc: str
) -> None:
    allan = patient_id(session, "allan")
    before = goal_count(session)
    answer = client.post(
        f"/v1/patients/{allan}/goals", json=weight_goal(**change), headers=auth("eva")
    )
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert any(e["loc"].startswith(loc) for e in answer.json()["errors"]), answer.json()
    assert goal_count(session) == before


def test_nan_is_refused(client: TestClient, auth: Auth, session: Session) -> None:
    allan = patient_id(session, "allan")
    text = json.dumps(weight_goal()).replace("91.0", "NaN")
    answer = client.post(
        f"/v1/patients/{allan}/goals",
        content=text,
        headers={**auth("eva"), "content-type": "application/json"},
    )
    assert answer.status_code == 422


def test_lifecycle_moves_along_fhirs_arrows(
    client: TestClient, auth: Auth, session: Session
) -> None:
    allan = patient_id(session, "allan")
    goal = client.post(
        f"/v1/patients/{allan}/goals", json=weight_goal(lifecycle="proposed"), headers=auth("eva")
    ).json()
    url = f"/v1/patients/{allan}/goals/{goal['id']}"

    def move(to: str) -> int:
        return client.patch(url, json={"lifecycle": to}, headers=auth("eva")).status_code

    assert move("achieved") == 409  # a proposal is accepted first
    assert move("active") == 200
    assert move("achieved") == 200
    assert move("active") == 200  # reopened
    assert move("cancelled") == 200
    assert move("active") == 409
    assert client.patch(url, json={"title": "x"}, headers=auth("eva")).status_code == 409
    shown = client.get(f"/v1/patients/{allan}/goals", headers=auth("eva")).json()["items"][0]
    assert shown["lifecycle"] == "cancelled"
    assert shown["progress"]["status"] in {"insufficient_data", "on_track", "at_risk"}


def test_patch_replaces_milestones_and_agreements(
    client: TestClient, auth: Auth, session: Session
) -> None:
    allan = patient_id(session, "allan")
    goal = client.post(
        f"/v1/patients/{allan}/goals", json=weight_goal(), headers=auth("eva")
    ).json()
    kept = goal["milestones"][0]
    url = f"/v1/patients/{allan}/goals/{goal['id']}"
    changed = client.patch(
        url,
        json={
            "milestones": [
                {"id": kept["id"], "title": "2 kilo till jul", "target": kept["target"]},
                {"title": "4 kilo", "target": {"value": 92, "unit": "kg"}},
            ],
            "agreements": ["Väg dig varje måndag.", "Cykla till jobbet."],
            "due": None,
        },
        headers=auth("eva"),
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert [m["title"] for m in body["milestones"]] == ["2 kilo till jul", "4 kilo"]
    assert body["milestones"][0]["id"] == kept["id"]
    assert body["due"] is None and len(body["agreements"]) == 2
    unknown = client.patch(
        url,
        json={"milestones": [{"id": "no-such", "title": "x", "target": kept["target"]}]},
        headers=auth("eva"),
    )
    assert unknown.status_code == 422
    gone = client.patch(url, json={"milestones": []}, headers=auth("eva"))
    assert gone.json()["milestones"] == []
    changes = client.get("/v1/patients/me/changes", headers=auth("allan")).json()["changes"]
    deleted = [c for c in changes if c["entity"] == "milestone" and c["op"] == "delete"]
    assert {c["id"] for c in deleted} == {m["id"] for m in body["milestones"]}


# --- progress on sync, milestones, feed -----------------------------------------------------------


def test_sync_moves_progress_and_a_milestone_is_congratulated(
    client: TestClient, auth: Auth, session: Session
) -> None:
    allan = patient_id(session, "allan")
    goal = client.post(f"/v1/patients/{allan}/goals", json=weight_goal(), headers=auth("eva"))
    goal_id = goal.json()["id"]
    first = client.post(
        "/v1/patients/me/sync",
        json=weights((30, 96.0), (23, 95.6), (16, 95.1), (9, 94.8)),
        headers=auth("allan"),
    )
    assert first.status_code == 200
    shown = client.get("/v1/patients/me/goals", headers=auth("allan")).json()["items"][0]
    progress = shown["progress"]
    assert progress["baseline"] == 96.0 and progress["current"] == 94.8
    assert progress["status"] == "on_track" and progress["unit"] == "kg"
    assert progress["trend_per_week"] < 0 and progress["projected_date"] is not None
    assert progress["percent"] == pytest.approx(24.0)
    assert shown["milestones"][0]["achieved_at"] is None
    assert shown["milestones"][0]["projected_date"] is not None

    reached = client.post(
        "/v1/patients/me/sync",
        json=weights((2, 93.9), source="scale-2"),
        headers={**auth("allan"), "accept-language": "en"},
    )
    advice = reached.json()["advice"]
    assert [a["rule"]["id"] for a in advice] == ["goal-milestone"]
    assert "milestone" in advice[0]["title"].lower()
    shown = client.get("/v1/patients/me/goals", headers=auth("allan")).json()["items"][0]
    milestone = shown["milestones"][0]
    assert milestone["achieved_at"] is not None
    assert milestone["reached_on"] == (today() - timedelta(days=2)).isoformat()

    # Swedish by default; no measurement value in the advice text; the feed has it all.
    sv = client.get("/v1/patients/me/advice", headers=auth("allan")).json()["items"][0]
    assert sv["title"] == "Grattis, du har nått ett delmål!" and "93" not in sv["body"]
    changes = client.get("/v1/patients/me/changes", headers=auth("allan")).json()["changes"]
    entities = {(c["entity"], c["id"]) for c in changes}
    assert ("goal", goal_id) in entities and ("milestone", milestone["id"]) in entities
    assert ("advice", advice[0]["id"]) in entities

    # Once: another reading below 94 congratulates no more.
    again = client.post(
        "/v1/patients/me/sync", json=weights((1, 93.7), source="scale-3"), headers=auth("allan")
    )
    assert again.json()["advice"] == []
    assert (
        session.scalar(
            select(func.count()).select_from(Advice).where(Advice.rule_id == "goal-milestone")
        )
        == 1
    )


def test_a_congratulation_is_pushed(client: TestClient, auth: Auth, session: Session) -> None:
    subscription = {
        "endpoint": "https://push.example.test/allan",
        "keys": {
            "p256dh": "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8p"
            "ZGH6SRpkNtoIAiw4",
            "auth": "BTBZMqHH6r4Tts7J_aSIgg",
        },
    }
    assert client.post("/v1/push/subscriptions", json=subscription,
                       headers=auth("allan")).status_code == 201  # fmt: skip
    # He chose to see the title on his lock screen (the default is the neutral text).
    assert client.patch("/v1/me", json={"lock_screen": "title"}, headers=auth("allan")).is_success
    allan = patient_id(session, "allan")
    client.post(f"/v1/patients/{allan}/goals", json=weight_goal(), headers=auth("eva"))
    client.post("/v1/patients/me/sync", json=weights((20, 96.0), (1, 93.0)), headers=auth("allan"))
    outbox = list(session.scalars(select(OutboxMessage)))
    titles = [m.payload["title"] for m in outbox if m.kind == "advice"]
    assert "Grattis, du har nått ett delmål!" in titles
    assert "Grattis, du har nått ditt mål!" not in titles  # 93.0 is not 91.0


def test_late_data_is_recomputed_in_full_and_agrees(
    client: TestClient, auth: Auth, session: Session
) -> None:
    """An offline phone sends old weights after newer ones: the same progress as all at once."""
    allan = patient_id(session, "allan")
    goal = weight_goal(milestones=[])
    client.post(f"/v1/patients/{allan}/goals", json=goal, headers=auth("eva"))
    client.post("/v1/patients/me/sync", json=weights((9, 94.8), (2, 94.5)), headers=auth("allan"))
    client.post("/v1/patients/me/sync", json=weights((30, 96.0), (23, 95.6), source="old-phone"),
                headers=auth("allan"))  # fmt: skip
    stepwise = client.get("/v1/patients/me/goals", headers=auth("allan")).json()["items"][0]

    asta = patient_id(session, "asta")
    client.post(f"/v1/patients/{asta}/goals", json=goal, headers=auth("eva"))
    every = weights((30, 96.0), (23, 95.6), (9, 94.8), (2, 94.5))
    client.post("/v1/patients/me/sync", json=every, headers=auth("asta"))
    at_once = client.get("/v1/patients/me/goals", headers=auth("asta")).json()["items"][0]
    keys = ("baseline", "current", "percent", "status", "trend_per_week", "projected_date")
    assert {k: stepwise["progress"][k] for k in keys} == {k: at_once["progress"][k] for k in keys}
    assert stepwise["progress"]["status"] == "on_track"


def test_the_changed_readings_of_a_type_are_read_from_the_feed_or_none_when_it_lost_some(
    client: TestClient, auth: Auth, session: Session
) -> None:
    """``changed_times``: one statement for what a sync's goal refresh asks (issue 17 §5)."""
    allan = patient_id(session, "allan")
    start = feed.last_seq(session, allan)
    client.post("/v1/patients/me/sync", json=weights((3, 95.0), (2, 94.8)), headers=auth("allan"))
    client.post("/v1/patients/me/sync", json=batch(scalar("pulse", 61, "/min")),
                headers=auth("allan"))  # fmt: skip
    session.expire_all()
    head = feed.last_seq(session, allan)
    stored = session.scalars(
        select(Reading.time).where(Reading.patient_id == allan, Reading.type == "weight")
    ).all()
    assert len(stored) == 2 and head > start + 2

    assert sorted(changed_times(session, allan, "weight", start, head) or []) == sorted(stored)
    assert len(changed_times(session, allan, "pulse", start, head) or []) == 1
    assert changed_times(session, allan, "weight", head, head) == []  # nothing after the head

    # Once the change right after a position is gone (a gap: nothing numbers changes with
    # gaps, so only deleting can make one), what changed after it is not known, and a full
    # recomputation follows.
    session.execute(delete(Change).where(Change.patient_id == allan, Change.seq == start + 1))
    assert changed_times(session, allan, "weight", start, head) is None
    assert changed_times(session, allan, "weight", start + 1, head) is not None
    session.execute(delete(Change).where(Change.patient_id == allan, Change.seq > start))
    assert changed_times(session, allan, "weight", start, head) is None  # all gone, head moved
    session.rollback()


def test_a_sync_continues_the_stored_state_unless_the_feed_lost_changes_after_it(
    client: TestClient, auth: Auth, session: Session
) -> None:
    """A sync reads the days changed since the goal's feed position; when the feed no longer
    holds every change after it, the progress is recomputed in full, and agrees."""
    allan = patient_id(session, "allan")
    client.post(f"/v1/patients/{allan}/goals", json=weight_goal(), headers=auth("eva"))
    client.post("/v1/patients/me/sync", json=weights((20, 96.0), (13, 95.5)), headers=auth("allan"))

    def mark_last_full_long_ago() -> Goal:
        goal = session.scalars(select(Goal).where(Goal.patient_id == allan)).one()
        goal.progress = {**goal.progress, "full_on": "2000-01-01"}
        session.commit()
        return goal

    def progress() -> dict[str, Any]:
        session.expire_all()
        goal = session.scalars(select(Goal).where(Goal.patient_id == allan)).one()
        return dict(goal.progress)

    mark_last_full_long_ago()
    client.post("/v1/patients/me/sync", json=weights((6, 95.0), source="scale-2"),
                headers=auth("allan"))  # fmt: skip
    assert progress()["full_on"] == "2000-01-01"  # continued from the state
    assert progress()["current"] == 95.0

    goal = mark_last_full_long_ago()
    position = goal.progress["feed_seq"]
    session.execute(delete(Change).where(Change.patient_id == allan, Change.seq == position + 1))
    session.commit()
    client.post("/v1/patients/me/sync", json=weights((1, 94.6), source="scale-3"),
                headers=auth("allan"))  # fmt: skip
    # Recomputed in full: on the day the refresh took as today (its as-of day, for a latest
    # weight), not the test's clock, which may pass midnight in between.
    assert progress()["full_on"] == progress()["as_of"] != "2000-01-01"
    assert progress()["current"] == 94.6 and progress()["baseline"] == 96.0


def test_the_nightly_job_recomputes_once_per_day(
    client: TestClient,
    auth: Auth,
    session: Session,
    factory: sessionmaker[Session],
    settings: Settings,
) -> None:
    allan = patient_id(session, "allan")
    client.post(f"/v1/patients/{allan}/goals", json=weight_goal(), headers=auth("eva"))
    client.post("/v1/patients/me/sync", json=weights((20, 96.0), (13, 95.5), (6, 95.0)),
                headers=auth("allan"))  # fmt: skip
    later = utcnow() + timedelta(days=1)
    first = recompute_all(factory, settings, later)
    assert first == {"patients": 1, "goals": 1, "advice": 0}
    second = recompute_all(factory, settings, later)
    assert second == {"skipped": 1}
    shown = client.get("/v1/patients/me/goals", headers=auth("allan")).json()["items"][0]
    assert shown["progress"]["as_of"] == (later.astimezone(STOCKHOLM).date()).isoformat()


# --- Allan's sample goals -------------------------------------------------------------------------


def _seed_allan(settings: Settings, factory: sessionmaker[Session], goals_first: bool) -> None:
    root = settings.sample_data_dir
    personas = json.loads((root / "personas.json").read_text())
    sources = {s["id"]: s for s in personas["sources"]}
    now = utcnow()
    with transaction(factory) as session:
        allan = session.get(Patient, patient_id(session, "allan"))
        assert allan is not None
        steps = [
            lambda: load_goals(session, allan, root / "goals" / "allan.json", None, now),
            lambda: load_readings(session, settings, allan, root / "readings" / "allan.csv",
                                  sources, now),
        ]  # fmt: skip
        for step in steps if goals_first else reversed(steps):
            step()


@pytest.mark.parametrize("goals_first", [False, True], ids=["seed-order", "goals-first"])
def test_allans_goals_end_in_the_states_his_data_implies(
    client: TestClient,
    auth: Auth,
    settings: Settings,
    factory: sessionmaker[Session],
    goals_first: bool,
) -> None:
    """BP 148/90 → ~140/87, weight 96.0 → 94.5 kg, steps rising to ~7,200 a day."""
    _seed_allan(settings, factory, goals_first)
    items = client.get("/v1/patients/me/goals", headers=auth("allan")).json()["items"]
    goals = {g["measure"]["type"]: g for g in items}
    assert set(goals) == {"blood_pressure", "weight", "steps"}
    horizon = today()

    bp = goals["blood_pressure"]["progress"]
    assert bp["status"] == "on_track"  # not there yet, on the way, before the end of March
    assert bp["baseline"]["systolic"] > 145 and bp["baseline"]["diastolic"] > 88
    assert 135 < bp["current"]["systolic"] < 142 and 85 < bp["current"]["diastolic"] < 89
    assert bp["trend_per_week"]["systolic"] < 0 and bp["trend_per_week"]["diastolic"] < 0
    assert (
        horizon
        < date.fromisoformat(bp["projected_date"])
        <= date.fromisoformat(goals["blood_pressure"]["due"])
    )
    assert 0 < bp["percent"] < 100

    weight = goals["weight"]
    progress = weight["progress"]
    assert progress["status"] == "on_track"
    assert (progress["baseline"], progress["current"]) == (96.0, 94.5)
    assert progress["percent"] == 30.0  # 1.5 of 5 kg
    (christmas,) = weight["milestones"]
    assert christmas["achieved_at"] is None  # 94.5 is not yet 94.0
    assert date.fromisoformat(christmas["projected_date"]) <= date.fromisoformat(christmas["due"])

    steps = goals["steps"]["progress"]
    assert steps["status"] == "achieved"  # the last week averages over 7,000
    assert steps["current"] >= 7000 and steps["baseline"] < 5000
    assert steps["streak"]["longest"] >= steps["streak"]["current"] >= 1

    advice = client.get("/v1/patients/me/advice", headers=auth("allan")).json()["items"]
    assert [a["rule"]["id"] for a in advice if a["rule"]["id"].startswith("goal-")] == [
        "goal-achieved"
    ]


# --- series, pictures, summaries, report ----------------------------------------------------------


PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def decoded_size(png: bytes) -> tuple[int, int]:
    """Width and height of a PNG as matplotlib decodes it (Pillow, its dependency)."""
    import io

    from matplotlib import image

    pixels = image.imread(io.BytesIO(png), format="png")
    return int(pixels.shape[1]), int(pixels.shape[0])


def test_progress_series_chart_summary_and_report(
    client: TestClient, auth: Auth, settings: Settings, factory: sessionmaker[Session]
) -> None:
    _seed_allan(settings, factory, goals_first=False)
    goals = client.get("/v1/patients/me/goals", headers=auth("allan")).json()["items"]
    bp = next(g for g in goals if g["measure"]["type"] == "blood_pressure")
    url = f"/v1/patients/me/goals/{bp['id']}"

    series = client.get(f"{url}/progress", headers=auth("allan")).json()
    assert series["from"] == bp["start"] and series["to"] == today().isoformat()
    days = series["series"]
    assert len(days) == (today() - date.fromisoformat(bp["start"])).days + 1
    assert set(days[0]["value"]) == {"systolic", "diastolic"} and days[0]["count"] >= 2
    assert series["target"]["value"] == {"systolic": 135.0, "diastolic": 85.0}
    assert series["projection"]["to"]["date"] == bp["progress"]["projected_date"]
    week = client.get(f"{url}/progress?from={(today() - timedelta(days=6)).isoformat()}",
                      headers=auth("allan")).json()  # fmt: skip
    assert len(week["series"]) == 7
    bad = client.get(f"{url}/progress?from=2020-01-01", headers=auth("allan"))
    assert bad.status_code == 422
    assert client.get(f"{url}/progress?from=2030-01-01", headers=auth("allan")).status_code == 422

    as_nurse = f"/v1/patients/{bp['patient_id']}/goals/{bp['id']}"
    chart = client.get(f"{as_nurse}/chart.png", headers=auth("eva"))
    assert chart.status_code == 200 and chart.headers["content-type"] == "image/png"
    assert chart.content.startswith(PNG_MAGIC)
    assert decoded_size(chart.content) == (800, 450)

    weight = client.get("/v1/patients/me/summary?type=weight&days=15", headers=auth("allan"))
    body = weight.json()
    assert body["unit"] == "kg" and len(body["days"]) == 15  # the weights of days -13 and -6
    assert body["total"]["count"] == 2 and body["total"]["last"] == 94.5
    steps = client.get("/v1/patients/me/summary?type=steps&days=7", headers=auth("allan")).json()
    assert all(d["count"] == 1 and d["sum"] == d["mean"] for d in steps["days"][:-1])
    pressure = client.get("/v1/patients/me/summary?type=blood_pressure&days=3",
                          headers=auth("allan")).json()  # fmt: skip
    assert set(pressure["total"]["mean"]) == {"systolic", "diastolic"}
    assert client.get("/v1/patients/me/summary?type=nope", headers=auth("allan")).status_code == 422

    year, number, _ = (today() - timedelta(days=7)).isocalendar()
    report = client.get(f"/v1/patients/{bp['patient_id']}/report?week={year}-W{number:02d}",
                        headers=auth("eva"))  # fmt: skip
    assert report.status_code == 200, report.text
    data = report.json()
    assert [g["title"] for g in data["goals"]] == [g["title"] for g in goals]
    assert all(len(g["series"]) == 7 for g in data["goals"])
    assert data["cgm"] is None and data["readings"]["blood_pressure"] >= 20
    picture = client.get(f"/v1/patients/me/report.png?week={year}-W{number:02d}",
                         headers=auth("allan"))  # fmt: skip
    assert picture.content.startswith(PNG_MAGIC)
    width, height = decoded_size(picture.content)
    assert width == 900 and height > 900  # three goal panels
    for week in ("2026-W99", "2099-W01", "last"):  # no such week; not begun; no week at all
        answer = client.get(f"/v1/patients/me/report?week={week}", headers=auth("allan"))
        assert answer.status_code == 422


def test_migration_moves_the_goal_start_to_its_column_and_back(
    database_at: Callable[[str], tuple[str, Engine]],
) -> None:
    """0014: ``target.start`` becomes ``goals.start``; the downgrade puts it back."""
    from alembic import command
    from sqlalchemy import text

    from app import migrate

    url, engine = database_at("0013_team_requests")
    config = migrate.alembic_config(url)
    at = "'2026-11-01 00:00:00+00'"
    target = {"value": 130, "unit": "mm[Hg]", "direction": "at_most", "start": "2026-10-05"}
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO patients (id, personnummer, display_name, timezone, language,"
                f" created_at) VALUES ('p1', '197701172392', 'A', 'Europe/Stockholm', 'sv', {at})"
            )
        )
        conn.execute(
            text("INSERT INTO goals (id, patient_id, title, measure, target, lifecycle, personal,"
                 f" agreements, created_at, updated_at) VALUES ('g1', 'p1', 'Lägre tryck', '{{}}',"
                 f" :target, 'active', false, '[]', {at}, {at})"),
            {"target": json.dumps(target)},
        )  # fmt: skip
    migrate.upgrade(url)
    migrate.check(url)
    with engine.connect() as conn:
        start, stored = conn.execute(text("SELECT start, target FROM goals")).one()
    stored = json.loads(stored) if isinstance(stored, str) else stored
    assert str(start) == "2026-10-05"
    assert stored == {k: v for k, v in target.items() if k != "start"}
    command.downgrade(config, "0013_team_requests")
    with engine.connect() as conn:
        back = conn.execute(text("SELECT target FROM goals")).scalar_one()
    assert (json.loads(back) if isinstance(back, str) else back) == target
