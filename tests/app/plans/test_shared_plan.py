"""The shared plan over HTTP on both databases (issue 14, DESIGN §4.11).

Agreements proposed by the team and decided by the patient, the named care contact, the
patient's own words, and the plan overview in a fixed number of queries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, func, select, update
from sqlalchemy.orm import Session

from app.auth.models import ProxyGrant, User
from app.clock import clock
from app.findings.evaluation import addressee
from app.patients.models import Patient
from app.plans.models import AgreementEvent, PlanVersion, StoryVersion
from rules.advice import CareContact
from tests.app.factories import batch, bp, patient_id

Auth = Callable[[str], dict[str, str]]

MEASURE = "Mät blodtrycket morgon och kväll i två veckor"
CALL = "Ring Allan och gå igenom värdena"
WHAT_MATTERS = "Det viktigaste för mig är att orka gå med barnbarnen"
QUESTION = "Ska jag ta min blodtrycksmedicin på morgonen eller på kvällen?"


@pytest.fixture(autouse=True)
def _daytime() -> Iterator[None]:
    """Noon in Stockholm tomorrow, so that events are ordered and outside quiet hours."""
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    clock.fixed = tomorrow.replace(hour=11, minute=0, second=0, microsecond=0)
    yield
    clock.fixed = None


def _later(minutes: int = 1) -> None:
    assert clock.fixed is not None
    clock.fixed += timedelta(minutes=minutes)


def _user_id(session: Session, handle: str) -> str:
    return session.scalars(select(User.id).where(User.handle == handle)).one()


def _plan_body(client: TestClient, auth: Auth, pid: str, nurse: str) -> dict[str, Any]:
    plan = client.get(f"/v1/patients/{pid}/plan", headers=auth(nurse)).json()
    return {k: plan[k] for k in ("rules", "schedule", "agreements")}


def _propose(
    client: TestClient, auth: Auth, pid: str, nurse: str, *new: dict[str, Any]
) -> dict[str, Any]:
    body = _plan_body(client, auth, pid, nurse)
    body["agreements"] = body["agreements"] + list(new)
    answer = client.put(f"/v1/patients/{pid}/plan", json=body, headers=auth(nurse))
    assert answer.status_code == 200, answer.text
    return answer.json()


def _by_text(plan: dict[str, Any], text: str) -> dict[str, Any]:
    return next(a for a in plan["agreements"] if a["text"] == text)


def _versions(session: Session, pid: str) -> int:
    count = select(func.count()).select_from(PlanVersion).where(PlanVersion.patient_id == pid)
    return int(session.scalar(count) or 0)


def _give_maria(session: Session, *scopes: str) -> None:
    maria = _user_id(session, "maria")
    session.execute(update(ProxyGrant).where(ProxyGrant.grantee_id == maria).values(scopes=scopes))


def _proposals(session: Session) -> tuple[dict[str, Any], dict[str, Any]]:
    until = (clock.fixed or datetime.now(UTC)).date() + timedelta(days=14)
    measure = {
        "text": MEASURE,
        "what": "Blodtryck morgon och kväll",
        "when": {"days": "daily", "until": until.isoformat()},
        "responsible": {"kind": "patient"},
    }
    call = {
        "text": CALL,
        "when": {"on": (until - timedelta(days=7)).isoformat()},
        "responsible": {"kind": "clinician", "id": _user_id(session, "eva")},
    }
    return measure, call


def test_eva_proposes_allan_agrees_to_one_and_declines_the_other(
    client: TestClient, auth: Auth, session: Session
) -> None:
    allan = patient_id(session, "allan")
    measure, call = _proposals(session)
    plan = _propose(client, auth, allan, "eva", measure, call)
    proposed = _by_text(plan, MEASURE)
    assert proposed["status"] == "proposed" and proposed["decided_by"] is None
    assert proposed["responsible"] == {
        "kind": "patient", "id": allan, "display_name": "Allan Andersson"
    }  # fmt: skip
    assert _by_text(plan, CALL)["responsible"]["display_name"] == "Eva Ek"
    _later()
    url = f"/v1/patients/me/plan/agreements/{proposed['id']}/decision"
    agreed = client.post(url, json={"decision": "agreed"}, headers=auth("allan"))
    assert agreed.status_code == 200, agreed.text
    assert agreed.json()["status"] == "agreed"
    _later()
    call_id = _by_text(plan, CALL)["id"]
    declined = client.post(
        f"/v1/patients/me/plan/agreements/{call_id}/decision",
        json={"decision": "declined", "comment": "Jag ringer själv på fredag."},
        headers=auth("allan"),
    )
    assert declined.status_code == 200, declined.text
    # Eva sees both decisions, who made them and when; the plan version did not change.
    overview = client.get(f"/v1/patients/{allan}/plan/overview", headers=auth("eva")).json()
    seen = {a["text"]: a for a in overview["agreements"]}
    assert seen[MEASURE]["status"] == "agreed"
    assert seen[CALL]["status"] == "declined"
    assert seen[CALL]["comment"] == "Jag ringer själv på fredag."
    assert seen[CALL]["decided_by"]["display_name"] == "Allan Andersson"
    assert datetime.fromisoformat(seen[CALL]["decided_at"]) == clock.fixed
    assert overview["plan"]["version"] == plan["version"]
    # A retry of the same decision keeps nothing new; a new comment is kept.
    again = client.post(url, json={"decision": "agreed"}, headers=auth("allan"))
    assert again.status_code == 200 and len(again.json()["history"]) == 1
    # Both decisions reached Allan's app through the change feed.
    feed = client.get("/v1/patients/me/changes", headers=auth("allan")).json()["changes"]
    decided = {c["id"]: c["data"]["status"] for c in feed if c["entity"] == "agreement"}
    assert decided == {proposed["id"]: "agreed", call_id: "declined"}


def test_deciding_takes_the_patient_or_a_proxy_with_agree(
    client: TestClient, auth: Auth, session: Session
) -> None:
    asta = patient_id(session, "asta")
    plan = _propose(client, auth, asta, "karin", {"text": "Gå en kort promenad varje dag."})
    aid = _by_text(plan, "Gå en kort promenad varje dag.")["id"]
    url = f"/v1/patients/{asta}/plan/agreements/{aid}/decision"
    for handle in ("maria", "karin", "eva", "admin"):  # read, but no right to decide
        refused = client.post(url, json={"decision": "declined"}, headers=auth(handle))
        assert refused.status_code == 403, (handle, refused.text)
    assert client.post(url, json={"decision": "agreed"}, headers=auth("allan")).status_code == 404
    assert not session.scalars(
        select(AgreementEvent).where(AgreementEvent.agreement_id == aid)
    ).all()
    _give_maria(session, "read", "agree")
    by_maria = client.post(url, json={"decision": "agreed", "comment": "Vi går tillsammans."},
                           headers=auth("maria"))  # fmt: skip
    assert by_maria.status_code == 200, by_maria.text
    assert by_maria.json()["decided_by"]["display_name"] == "Maria Berglund"


def test_the_team_pauses_resumes_and_ends_an_agreement(
    client: TestClient, auth: Auth, session: Session
) -> None:
    allan = patient_id(session, "allan")
    measure, _ = _proposals(session)
    aid = _by_text(_propose(client, auth, allan, "eva", measure), MEASURE)["id"]
    status = f"/v1/patients/{allan}/plan/agreements/{aid}/status"
    decision = f"/v1/patients/{allan}/plan/agreements/{aid}/decision"
    # Nothing can be paused before the patient agreed.
    assert client.post(status, json={"status": "paused"}, headers=auth("eva")).status_code == 409
    assert client.post(status, json={"status": "paused"}, headers=auth("allan")).status_code == 403
    _later()
    client.post(decision, json={"decision": "agreed"}, headers=auth("allan"))
    steps = [("paused", 200, "paused"), ("resumed", 200, "agreed"), ("done", 200, "done"),
             ("done", 200, "done"), ("paused", 409, None)]  # fmt: skip
    for asked, code, result in steps:
        _later()
        answer = client.post(status, json={"status": asked}, headers=auth("eva"))
        assert answer.status_code == code, (asked, answer.text)
        if result is not None:
            assert answer.json()["status"] == result
    # A done agreement is not decided again.
    assert (
        client.post(decision, json={"decision": "declined"}, headers=auth("allan")).status_code
        == 409
    )
    history = client.get(f"/v1/patients/{allan}/plan", headers=auth("eva")).json()
    kept = _by_text(history, MEASURE)["history"]
    assert [h["status"] for h in kept] == ["agreed", "paused", "resumed", "done"]
    assert kept[1]["by"]["care_unit"] == "Vårdcentralen Norra"
    # An agreement the team took out of the plan can no longer be decided.
    body = _plan_body(client, auth, allan, "eva")
    body["agreements"] = [a for a in body["agreements"] if a["id"] != aid]
    assert (
        client.put(f"/v1/patients/{allan}/plan", json=body, headers=auth("eva")).status_code == 200
    )
    assert client.post(status, json={"status": "paused"}, headers=auth("eva")).status_code == 404


@pytest.mark.parametrize(
    ("change", "loc", "code"),
    [
        ({"responsible": {"kind": "clinician", "id": "olof"}}, "agreements[-1].responsible",
         "unknown_responsible"),
        ({"responsible": {"kind": "relative", "id": "maria"}}, "agreements[-1].responsible",
         "unknown_responsible"),
        ({"responsible": {"kind": "team", "id": "x"}}, "agreements[-1].responsible",
         "unknown_responsible"),
        ({"responsible": {"kind": "clinician"}}, "agreements[-1].responsible.id", "required"),
        ({"id": "no-such-agreement"}, "agreements[-1].id", "unknown_agreement"),
    ],
)  # fmt: skip
def test_a_bad_agreement_changes_nothing(
    client: TestClient,
    auth: Auth,
    session: Session,
    change: dict[str, Any],
    loc: str,
    code: str,
) -> None:
    """An agreement for a stranger, or that names no one, or an unknown id: 422, no version."""
    allan = patient_id(session, "allan")
    body = _plan_body(client, auth, allan, "eva")
    responsible = change.get("responsible")
    if responsible is not None and responsible.get("id") in ("olof", "maria"):
        # Olof works in the diabetes clinic, not Allan's team; Maria is Asta's relative.
        responsible["id"] = _user_id(session, responsible["id"])
    body["agreements"].append({"text": "Något nytt.", **change})
    before = _versions(session, allan)
    answer = client.put(f"/v1/patients/{allan}/plan", json=body, headers=auth("eva"))
    assert answer.status_code == 422, answer.text
    index = len(body["agreements"]) - 1
    expected = loc.replace("[-1]", f"[{index}]")
    assert {"loc": expected, "code": code} in [
        {k: e[k] for k in ("loc", "code")} for e in answer.json()["errors"]
    ]
    assert _versions(session, allan) == before


def test_an_agreement_is_not_rewritten_and_the_plan_has_no_free_contact(
    client: TestClient, auth: Auth, session: Session
) -> None:
    allan = patient_id(session, "allan")
    body = _plan_body(client, auth, allan, "eva")
    before = _versions(session, allan)
    changed = {**body, "agreements": [{**body["agreements"][0], "text": "Något annat."}]}
    answer = client.put(f"/v1/patients/{allan}/plan", json=changed, headers=auth("eva"))
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["code"] == "agreement_changed"
    contact = {**body, "contact": {"name": "Eva Ek", "phone": "08-465 004 10"}}
    answer = client.put(f"/v1/patients/{allan}/plan", json=contact, headers=auth("eva"))
    assert answer.status_code == 422 and answer.json()["errors"][0]["code"] == "moved"
    both = {**body, "agreements": [{"text": "x", "when": {"on": "2026-12-24", "days": "daily"}}]}
    assert (
        client.put(f"/v1/patients/{allan}/plan", json=both, headers=auth("eva")).status_code == 422
    )
    assert _versions(session, allan) == before
    # The same plan sent back (status, history and all, as GET gave it) is a valid new version.
    same = client.put(f"/v1/patients/{allan}/plan", json=body, headers=auth("eva"))
    assert same.status_code == 200, same.text
    assert [a["id"] for a in same.json()["agreements"]] == [a["id"] for a in body["agreements"]]


def _very_high_bp_advice(client: TestClient, auth: Auth, pid: str, minutes_ago: float) -> str:
    reading = bp(190, 115, minutes_ago=minutes_ago)
    synced = client.post(f"/v1/patients/{pid}/sync", json=batch(reading),
                         headers=auth("eva"))  # fmt: skip
    assert synced.status_code == 200, synced.text
    advice = client.get(f"/v1/patients/{pid}/advice", headers=auth("eva")).json()["items"]
    return str(advice[0]["body"])


def test_the_care_contact_is_whom_advice_names(
    client: TestClient, auth: Auth, session: Session
) -> None:
    asta = patient_id(session, "asta")
    # The sample plan's contact became Asta's care contact: Karin, of home care.
    named = client.get(f"/v1/patients/{asta}", headers=auth("asta")).json()["care_contact"]
    assert named["clinician"]["display_name"] == "Karin Holm"
    assert named["team"]["care_unit"] == "Hemsjukvården Exempels kommun"
    assert "Karin Holm" in _very_high_bp_advice(client, auth, asta, 30)
    # Eva becomes her contact, with hours; the next advice names Eva and her number.
    eva = _user_id(session, "eva")
    body = {"clinician_id": eva, "phone": "08-465 004 10", "hours": "Vardagar 8–16"}
    put = client.put(f"/v1/patients/{asta}/care-contact", json=body, headers=auth("karin"))
    assert put.status_code == 200, put.text
    assert (
        put.json()["hours"] == "Vardagar 8–16"
        and put.json()["set_by"]["display_name"] == "Karin Holm"
    )
    patient = session.get(Patient, asta)
    assert patient is not None
    assert addressee(session, patient).contact == CareContact(
        name="Eva Ek", role="Sjuksköterska, Vårdcentralen Norra", phone="08-465 004 10"
    )
    got = client.get(f"/v1/patients/{asta}/care-contact", headers=auth("maria")).json()
    assert got["clinician"]["display_name"] == "Eva Ek"


@pytest.mark.parametrize(
    ("handle", "field", "code"),
    [
        ("karin", "olof", 422),   # Olof is not in Asta's care
        ("karin", "wrong_team", 422),  # Karin is not in the diabetes team
        ("asta", "karin", 403),   # the team names the contact, not the patient
        ("maria", "karin", 403),
        ("olof", "karin", 404),   # no relation: like a missing patient
    ],
)  # fmt: skip
def test_a_bad_care_contact_changes_nothing(
    client: TestClient, auth: Auth, session: Session, handle: str, field: str, code: int
) -> None:
    asta = patient_id(session, "asta")
    before = client.get(f"/v1/patients/{asta}/care-contact", headers=auth("karin")).json()
    body: dict[str, Any] = {
        "clinician_id": _user_id(session, "karin" if field == "wrong_team" else field)
    }
    if field == "wrong_team":
        teams = client.get("/v1/teams", headers=auth("olof")).json()["items"]
        body["team_id"] = teams[0]["id"]
    answer = client.put(f"/v1/patients/{asta}/care-contact", json=body, headers=auth(handle))
    assert answer.status_code == code, answer.text
    assert client.get(f"/v1/patients/{asta}/care-contact", headers=auth("karin")).json() == before


def test_allan_writes_what_matters_and_eva_reads_it_before_the_call(
    client: TestClient, auth: Auth, session: Session
) -> None:
    allan = patient_id(session, "allan")
    empty = client.get(f"/v1/patients/{allan}/story", headers=auth("eva")).json()
    assert empty["version"] == 0 and empty["what_matters"] == ""
    first = {"what_matters": WHAT_MATTERS, "questions": [QUESTION]}
    written = client.put("/v1/patients/me/story", json=first, headers=auth("allan"))
    assert written.status_code == 200, written.text
    _later()
    second = {"what_matters": WHAT_MATTERS + " och att sova bättre.", "questions": [QUESTION]}
    client.put("/v1/patients/me/story", json=second, headers=auth("allan"))
    overview = client.get(f"/v1/patients/{allan}/plan/overview", headers=auth("eva")).json()
    assert overview["story"]["what_matters"].endswith("sova bättre.")
    assert overview["story"]["questions"] == [QUESTION]
    assert overview["story"]["written_by"]["display_name"] == "Allan Andersson"
    versions = client.get(f"/v1/patients/{allan}/story/versions", headers=auth("eva")).json()
    assert [v["version"] for v in versions["items"]] == [2, 1]
    assert versions["items"][1]["what_matters"] == WHAT_MATTERS  # nothing written is lost
    feed = client.get("/v1/patients/me/changes", headers=auth("allan")).json()["changes"]
    assert sum(c["entity"] == "story" for c in feed) == 2
    # The team reads but does not write the patient's words; bad input changes nothing.
    assert (
        client.put(f"/v1/patients/{allan}/story", json=first, headers=auth("eva")).status_code
        == 403
    )
    for bad in ({"what_matters": "x" * 4001}, {"questions": ["x" * 1001]},
                {"questions": ["?"] * 21}, {"questions": [""]}, {"what": "x"}):  # fmt: skip
        answer = client.put("/v1/patients/me/story", json=bad, headers=auth("allan"))
        assert answer.status_code == 422, bad
    count = select(func.count()).select_from(StoryVersion).where(StoryVersion.patient_id == allan)
    assert session.scalar(count) == 2


def test_a_proxy_writes_the_story_only_with_agree(
    client: TestClient, auth: Auth, session: Session
) -> None:
    asta = patient_id(session, "asta")
    body = {"what_matters": "Mamma vill kunna bo kvar hemma."}
    assert (
        client.put(f"/v1/patients/{asta}/story", json=body, headers=auth("maria")).status_code
        == 403
    )
    _give_maria(session, "read", "agree")
    written = client.put(f"/v1/patients/{asta}/story", json=body, headers=auth("maria"))
    assert written.status_code == 200, written.text
    assert written.json()["written_by"]["display_name"] == "Maria Berglund"


def _count_queries(client: TestClient, auth: Auth, url: str) -> int:
    engine = client.app.state.engine  # type: ignore[attr-defined]
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(engine, "before_cursor_execute", count)
    try:
        answer = client.get(url, headers=auth("eva"))
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert answer.status_code == 200, answer.text
    return len(statements)


def test_the_overview_is_one_answer_in_a_fixed_number_of_queries(
    client: TestClient, auth: Auth, session: Session
) -> None:
    """No N+1: more goals, agreements, decisions, advice and story versions, same queries."""
    allan = patient_id(session, "allan")
    url = f"/v1/patients/{allan}/plan/overview"

    def add(n: int) -> None:
        goal = {"title": f"Vilopuls {n}", "personal": True,
                "measure": {"type": "pulse", "aggregate": "mean", "window_days": 7},
                "target": {"value": 70 + n, "unit": "/min", "direction": "below"}}  # fmt: skip
        made = client.post("/v1/patients/me/goals", json=goal, headers=auth("allan"))
        assert made.status_code == 201, made.text
        client.put("/v1/patients/me/story", json={"what_matters": f"v{n}"}, headers=auth("allan"))
        _very_high_bp_advice(client, auth, allan, 10 + n)
        start = (clock.fixed or datetime.now(UTC)) + timedelta(days=n + 1)
        booked = client.post(f"/v1/patients/{allan}/activities", headers=auth("eva"),
                             json={"kind": "phone", "start": start.isoformat(),
                                   "where_or_how": "Eva ringer upp"})  # fmt: skip
        assert booked.status_code == 201, booked.text

    add(0)  # one of each kind first: the queries of a part that is empty are skipped
    before = _count_queries(client, auth, url)
    measure, call = _proposals(session)
    plan = _propose(client, auth, allan, "eva", measure, call)
    for item in plan["agreements"]:
        _later()
        decision = f"/v1/patients/me/plan/agreements/{item['id']}/decision"
        client.post(decision, json={"decision": "agreed", "comment": "Ja."}, headers=auth("allan"))
    for n in range(1, 4):
        add(n)
    overview = client.get(url, headers=auth("eva")).json()
    assert len(overview["goals"]) >= 4 and len(overview["advice"]) >= 1
    assert len(overview["activities"]) >= 4
    assert all(a["decided_by"] for a in overview["agreements"])
    after = _count_queries(client, auth, url)
    print(f"plan overview: {after} queries (before the additions: {before})")
    assert after == before


def test_migration_moves_plan_contacts_and_gives_agreements_ids(
    database_at: Callable[[str], tuple[str, Engine]],
) -> None:
    """0011: a named plan contact becomes the care contact; agreements get stable ids."""
    from sqlalchemy import text

    from app import migrate

    url, engine = database_at("0010_activities")
    at = "'2026-11-01 00:00:00+00'"
    body = ('{"rules": [], "agreements": [{"text": "Väg dig."}, {"text": "Mät trycket."}],'
            ' "contact": {"name": "Karin Holm", "role": "Sjuksköterska",'
            ' "phone": "08-1"}}')  # fmt: skip
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO users (id, handle, display_name, role, title, language, active,"
                " created_at) VALUES"
                f" ('u1', 'karin', 'Karin Holm', 'clinician', '', 'sv', true, {at})"
            )
        )
        conn.execute(
            text("INSERT INTO organisations (id, name, kind) VALUES ('o1', 'K', 'municipality')")
        )
        conn.execute(
            text("INSERT INTO care_units (id, organisation_id, name) VALUES ('c1', 'o1', 'H')")
        )
        conn.execute(
            text(
                "INSERT INTO care_teams (id, care_unit_id, name, phone)"
                " VALUES ('t1', 'c1', 'T', '')"
            )
        )
        conn.execute(
            text(f"INSERT INTO team_members (team_id, user_id, since) VALUES ('t1', 'u1', {at})")
        )
        conn.execute(
            text(
                "INSERT INTO patients (id, personnummer, display_name, timezone, language,"
                f" created_at) VALUES ('p1', '197701172392', 'A', 'Europe/Stockholm', 'sv', {at})"
            )
        )
        conn.execute(
            text(
                "INSERT INTO team_patients (team_id, patient_id, enrolled_at) VALUES"
                f" ('t1', 'p1', {at})"
            )
        )
        for version in (1, 2):
            conn.execute(
                text("INSERT INTO plan_versions (id, patient_id, version, body, created_at)"
                     f" VALUES (:id, 'p1', :v, :body, {at})"),
                {"id": f"v{version}", "v": version, "body": body},
            )  # fmt: skip
    migrate.upgrade(url)
    migrate.check(url)
    with engine.connect() as conn:
        contact = conn.execute(text("SELECT clinician_id, team_id, phone FROM care_contacts")).all()
        bodies = [
            r[0] for r in conn.execute(text("SELECT body FROM plan_versions ORDER BY version"))
        ]
        agreements = conn.execute(text("SELECT id, proposed_in FROM agreements")).all()
    assert [tuple(c) for c in contact] == [("u1", "t1", "08-1")]
    parsed = [b if isinstance(b, dict) else __import__("json").loads(b) for b in bodies]
    assert all("contact" not in b for b in parsed)
    ids = [[a["id"] for a in b["agreements"]] for b in parsed]
    assert ids[0] == ids[1] and len(set(ids[0])) == 2  # the same agreement keeps its id
    assert sorted(tuple(a) for a in agreements) == sorted((i, 1) for i in ids[0])


def test_the_personas_carry_a_shared_plan(client: TestClient, auth: Auth, session: Session) -> None:
    """Each seeded patient has a named care contact and agreements they agreed to."""
    for handle, contact in (("asta", "Karin Holm"), ("allan", "Eva Ek")):
        pid = patient_id(session, handle)
        overview = client.get(f"/v1/patients/{pid}/plan/overview", headers=auth(handle)).json()
        assert overview["care_contact"]["clinician"]["display_name"] == contact
        assert overview["agreements"]
        assert {a["status"] for a in overview["agreements"]} == {"agreed"}
        assert all(a["decided_by"]["id"] for a in overview["agreements"])
