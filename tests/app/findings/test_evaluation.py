"""The rule engine in the service, on both databases: late data, deletions, due rules,
batch independence, and the backtest of a proposed plan."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from app.clock import clock
from app.config import Settings
from app.db import make_sessionmaker, transaction
from app.findings.jobs import rules_due
from app.findings.models import Evaluation, EvaluationStatus, Flag
from app.plans import service as plans_service
from app.plans.models import PlanVersion
from app.readings.repository import counted_facts
from rules.engine import evaluate_run
from tests.app.factories import STOCKHOLM, batch, patient_id

Auth = Callable[[str], dict[str, str]]


def _bp(at: datetime, systolic: int, diastolic: int) -> dict[str, Any]:
    return {
        "client_id": str(uuid.uuid4()),
        "type": "blood_pressure",
        "time": at.astimezone(STOCKHOLM).isoformat(),
        "value": {"systolic": systolic, "diastolic": diastolic},
        "unit": "mm[Hg]",
    }


def _home_week(start: datetime, systolic: int) -> list[dict[str, Any]]:
    """ESH protocol: 7 days, morning and evening, two readings each."""
    items = []
    for day in range(7):
        for hour in (7, 21):
            for minute in (0, 2):
                at = start + timedelta(days=day, hours=hour, minutes=minute)
                items.append(_bp(at, systolic, 80))
    return items


def _midnight_days_ago(days: int) -> datetime:
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(
        days=days
    )


def _fired(session: Session, rule: str) -> set[str]:
    return set(
        session.scalars(
            select(Evaluation.anchor_key).where(
                Evaluation.rule_id == rule, Evaluation.status == EvaluationStatus.FIRED
            )
        )
    )


def test_a_late_reading_retracts_what_no_longer_holds(
    client: TestClient, auth: Auth, session: Session
) -> None:
    week = _home_week(_midnight_days_ago(20), 140)
    first = client.post("/v1/patients/me/sync", json=batch(*week), headers=auth("allan"))
    assert first.status_code == 200
    fired = _fired(session, "bp-home-mean-high")
    assert fired, "a home mean of 140/80 is above 135"
    # The same week from the meter's other app, lower: the means drop under the threshold.
    late = [_bp(datetime.fromisoformat(r["time"]) + timedelta(minutes=1), 120, 75) for r in week]
    client.post(
        "/v1/patients/me/sync", json=batch(*late, source="allan-meter"), headers=auth("allan")
    )
    still = _fired(session, "bp-home-mean-high")
    retracted = set(
        session.scalars(
            select(Evaluation.anchor_key).where(
                Evaluation.rule_id == "bp-home-mean-high",
                Evaluation.status == EvaluationStatus.RETRACTED,
            )
        )
    )
    assert retracted, "anchors whose 7-day mean fell under 135/85 are retracted"
    assert still.isdisjoint(retracted)


def test_deleting_a_reading_re_evaluates_its_windows(
    client: TestClient, auth: Auth, session: Session
) -> None:
    body = client.post(
        "/v1/patients/me/sync",
        json=batch(_bp(datetime.now(UTC) - timedelta(hours=1), 185, 100)),
        headers=auth("allan"),
    ).json()
    rid = body["results"][0]["id"]
    assert _fired(session, "bp-very-high") == {rid}
    pid = patient_id(session, "allan")
    assert (
        client.delete(f"/v1/patients/{pid}/readings/{rid}", headers=auth("eva")).status_code == 204
    )
    assert _fired(session, "bp-very-high") == set()


def test_due_rules_run_once_however_often(
    client: TestClient, settings: Settings, app: Any, session: Session
) -> None:
    """Asta's plan schedules a daily weight; days without one make missing-readings fire."""
    # Noon in Stockholm six days on: the run half an hour later is on the same local day at
    # any time of day (from 23:30 local it used to cross midnight and find a new day due).
    day = (datetime.now(UTC).astimezone(STOCKHOLM) + timedelta(days=6)).date()
    later = datetime.combine(day, time(12, 0), STOCKHOLM).astimezone(UTC)
    factory = make_sessionmaker(app.state.engine)
    first = rules_due(factory, settings, later)["firings"]
    count = session.scalar(select(func.count()).select_from(Evaluation))
    again = rules_due(factory, settings, later + timedelta(minutes=30))["firings"]
    assert first > 0 and again == first
    assert session.scalar(select(func.count()).select_from(Evaluation)) == count
    rules = set(session.scalars(select(Evaluation.rule_id)))
    assert "missing-readings" in rules


@hsettings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(seed=st.integers(0, 10**6), cuts=st.lists(st.integers(1, 27), max_size=4))
def test_any_batching_and_order_fires_as_one_shot(
    client: TestClient, auth: Auth, session: Session, app: Any, seed: int, cuts: list[int]
) -> None:
    """For any split into batches and any upload order, the fired evaluations equal a
    one-shot evaluation of the whole history (reading-anchored rules)."""
    rng = random.Random(seed)
    # Each example in its own stretch of Allan's past, far from the others.
    start = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(days=40 * (seed % 200))
    history = [
        _bp(
            start + timedelta(hours=12 * i, minutes=rng.randint(0, 30)),
            rng.choice([85, 120, 133, 137, 150, 182]),
            rng.choice([70, 84, 86, 95, 111]),
        )
        for i in range(28)
    ]
    rng.shuffle(history)
    edges = [0, *sorted(set(cuts)), len(history)]
    source = f"prop-{uuid.uuid4().hex[:8]}"
    for a, b in zip(edges, edges[1:], strict=False):
        if a < b:
            answer = client.post(
                "/v1/patients/me/sync",
                json=batch(*history[a:b], source=source),
                headers=auth("allan"),
            )
            assert answer.status_code == 200
    pid = patient_id(session, "allan")
    factory = make_sessionmaker(app.state.engine)
    with transaction(factory) as s:
        plan = plans_service.current_spec(s, pid)
        assert plan is not None
        facts = counted_facts(
            s, pid, {"blood_pressure"}, start - timedelta(days=1), start + timedelta(days=16)
        )
        ids = {f.id for f in facts}
        one_shot = evaluate_run(
            plan, facts, new_reading_ids=ids, now=clock.now(), tz="Europe/Stockholm"
        )
        stored = {
            (e.rule_id, e.anchor_key)
            for e in s.scalars(
                select(Evaluation).where(
                    Evaluation.patient_id == pid,
                    Evaluation.status == EvaluationStatus.FIRED,
                    Evaluation.anchor_reading_id.in_(ids),
                )
            )
        }
    assert stored == {f.key for f in one_shot.findings}


def test_backtest_a_proposed_threshold_before_saving(
    client: TestClient, auth: Auth, session: Session
) -> None:
    pid = patient_id(session, "asta")
    current = client.get(f"/v1/patients/{pid}/plan/backtest", headers=auth("karin"))
    assert current.status_code == 200, current.text
    assert {r["rule"] for r in current.json()["rules"]} >= {"weight-gain-hf", "spo2-low"}
    plan = client.get(f"/v1/patients/{pid}/plan", headers=auth("karin")).json()
    body = {k: plan[k] for k in ("rules", "schedule", "agreements", "contact") if k in plan}
    for rule in body["rules"]:
        if rule["rule"] == "weight-gain-hf":
            rule["params"] = {"gain": {"value": 2.5, "unit": "kg"}}
    proposed = client.post(
        f"/v1/patients/{pid}/plan/backtest?days=90", json=body, headers=auth("karin")
    )
    assert proposed.status_code == 200, proposed.text
    assert proposed.json()["plan"] == "proposed"
    body["rules"].append({"rule": "no-such-rule"})
    bad = client.post(f"/v1/patients/{pid}/plan/backtest", json=body, headers=auth("karin"))
    assert bad.status_code == 422
    versions = client.get(f"/v1/patients/{pid}/plan/versions", headers=auth("karin")).json()
    assert len(versions["items"]) == 1  # a backtest never saves
    assert (
        client.post(
            f"/v1/patients/{pid}/plan/backtest", json=body, headers=auth("asta")
        ).status_code
        == 403
    )


def _cgm(at: datetime, value: float) -> dict[str, Any]:
    return {
        "client_id": str(uuid.uuid4()),
        "type": "cgm_glucose",
        "time": at.astimezone(STOCKHOLM).isoformat(),
        "value": value,
        "unit": "mmol/L",
    }


def test_an_old_low_is_counted_on_the_whole_week_under_a_new_plan_version(
    client: TestClient, auth: Auth, session: Session
) -> None:
    """A sync loads only what its evaluation reads when the recorded firings are just
    checked: a CGM value in range does not load the week a low's flag counts over. Under a
    new plan version nothing is recorded yet, so a value in range two hours before
    Thursday's low makes the service explain that low again: it sees that the narrow load
    does not hold the low's week, loads it, and counts Monday's low too (two in a week)."""
    pid = patient_id(session, "gunilla")
    monday = datetime.now(UTC).replace(hour=5, minute=0, second=0, microsecond=0) - timedelta(
        days=30
    )
    thursday = monday + timedelta(days=3)
    lows = [_cgm(monday, 3.4), _cgm(thursday, 3.5)]
    sent = client.post("/v1/patients/me/sync", json=batch(*lows), headers=auth("gunilla"))
    assert sent.status_code == 200
    current = client.get(f"/v1/patients/{pid}/plan", headers=auth("olof")).json()
    body = {k: current[k] for k in ("rules", "schedule", "agreements") if k in current}
    saved = client.put(f"/v1/patients/{pid}/plan", json=body, headers=auth("olof"))
    assert saved.status_code == 200
    version = saved.json()["version"]
    in_range = _cgm(thursday - timedelta(hours=2), 6.1)
    sent = client.post("/v1/patients/me/sync", json=batch(in_range), headers=auth("gunilla"))
    assert sent.status_code == 200
    (again,) = session.scalars(
        select(Evaluation).where(
            Evaluation.patient_id == pid,
            Evaluation.rule_id == "glucose-low",
            Evaluation.plan_version == version,
            Evaluation.status == EvaluationStatus.FIRED,
        )
    )
    assert again.anchor_time == thursday
    assert again.explanation["computed"]["count_in_window"] == "2"
    assert again.explanation["flag_severity"] == "low"


def test_the_plan_kept_between_requests_is_the_newest_version(
    client: TestClient, auth: Auth, session: Session
) -> None:
    """Each stored version's spec is validated once and kept; a new version is read as soon
    as it is saved, and keeps the first version's ``effective_from``."""
    pid = patient_id(session, "gunilla")
    first = plans_service.current_effective_spec(session, pid)
    assert first is not None
    assert plans_service.current_effective_spec(session, pid) is first  # kept, not re-read
    started = session.scalar(
        select(func.min(PlanVersion.created_at)).where(PlanVersion.patient_id == pid)
    )
    assert first.effective_from == started
    current = client.get(f"/v1/patients/{pid}/plan", headers=auth("olof")).json()
    body = {k: current[k] for k in ("rules", "schedule", "agreements") if k in current}
    body["rules"] = [r for r in body["rules"] if r["rule"] != "glucose-high"]
    saved = client.put(f"/v1/patients/{pid}/plan", json=body, headers=auth("olof"))
    assert saved.status_code == 200
    second = plans_service.current_effective_spec(session, pid)
    assert second is not None and second.version == saved.json()["version"] == first.version + 1
    assert "glucose-high" not in {r.rule for r in second.rules}
    assert "glucose-high" in {r.rule for r in first.rules}
    assert second.effective_from == started


def test_a_retracted_firing_that_holds_again_is_the_same_evaluation_fired_again(
    client: TestClient, auth: Auth, session: Session
) -> None:
    week = _home_week(_midnight_days_ago(20), 140)
    client.post("/v1/patients/me/sync", json=batch(*week), headers=auth("allan"))
    rule = Evaluation.rule_id == "bp-home-mean-high"
    first = {e.anchor_key: e for e in session.scalars(select(Evaluation).where(rule))}
    assert first and {e.status for e in first.values()} == {EvaluationStatus.FIRED}
    for evaluation in first.values():  # new rows carry their readings and numbers
        assert evaluation.anchor_key in evaluation.reading_ids
        assert evaluation.explanation["rule"]["id"] == "bp-home-mean-high"
        assert evaluation.explanation["anchor_reading_id"] == evaluation.anchor_reading_id
    flagged = select(Flag.evaluation_id).where(Flag.rule_id == "bp-home-mean-high")
    cited = set(session.scalars(flagged))
    assert cited and cited <= {e.id for e in first.values()}
    late = [_bp(datetime.fromisoformat(r["time"]) + timedelta(minutes=1), 120, 75) for r in week]
    answer = client.post(
        "/v1/patients/me/sync", json=batch(*late, source="allan-meter"), headers=auth("allan")
    ).json()
    session.expire_all()
    retracted = set(
        session.scalars(
            select(Evaluation.id).where(rule, Evaluation.status == EvaluationStatus.RETRACTED)
        )
    )
    assert retracted
    pid = patient_id(session, "allan")
    for result in answer["results"]:  # the other app's week was entered in error
        gone = client.delete(f"/v1/patients/{pid}/readings/{result['id']}", headers=auth("eva"))
        assert gone.status_code == 204
    session.expire_all()
    again = {e.anchor_key: e for e in session.scalars(select(Evaluation).where(rule))}
    # The first week's anchors fire again as the same rows (one per rule, anchor and plan
    # version), neither retracted nor recorded twice.
    assert {key: again[key].id for key in first} == {key: e.id for key, e in first.items()}
    assert {again[key].status for key in first} == {EvaluationStatus.FIRED}
    assert {again[key].retracted_at for key in first} == {None}
    assert {e.id for e in first.values()} & retracted, "some of them had been retracted"


def test_a_late_sync_reads_the_recorded_states_once_and_records_as_before(
    client: TestClient, auth: Auth, session: Session, app: Any
) -> None:
    """The evaluation asks which re-checked anchors fired before; recording its run reuses
    that answer instead of reading the same evaluations again (a dense week's late sync read
    ten thousand of them twice). The new readings' own keys are not read at all."""
    week = _home_week(_midnight_days_ago(20), 140)
    client.post("/v1/patients/me/sync", json=batch(*week), headers=auth("allan"))
    before = _fired(session, "bp-home-mean-high")
    assert before
    reads: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        text = " ".join(statement.split())
        if text.startswith(
            "SELECT evaluations.id, evaluations.rule_id, evaluations.anchor_key, "
            "evaluations.status FROM evaluations"
        ):
            reads.append(text)

    late = [_bp(datetime.fromisoformat(r["time"]) + timedelta(minutes=1), 150, 80) for r in week]
    event.listen(app.state.engine, "before_cursor_execute", count)
    try:
        answer = client.post(
            "/v1/patients/me/sync", json=batch(*late, source="allan-meter"), headers=auth("allan")
        )
    finally:
        event.remove(app.state.engine, "before_cursor_execute", count)
    assert answer.status_code == 200
    assert len(reads) == 1, reads  # the evaluation's question, not again when recording
    session.expire_all()
    after = _fired(session, "bp-home-mean-high")
    created = {r["id"] for r in answer.json()["results"]}
    # The old firings still stand, recorded once each (one row per key); late readings' own
    # windows fired too.
    assert before <= after and after & created
    rows = session.scalars(select(Evaluation).where(Evaluation.rule_id == "bp-home-mean-high"))
    keys = [(e.anchor_key, e.plan_version) for e in rows]
    assert len(keys) == len(set(keys))
