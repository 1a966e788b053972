"""Directory administration and team requests (issue 12 part 2, DESIGN §4.10), both databases.

The operator adds a care unit, a team and a nurse (over the API and with ``selfcare admin``);
a team that asks for a patient enrolled elsewhere gets a pending request and sees nothing
until the patient accepts or an administrator confirms with a basis note.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from app.audit.models import AuditEvent, AuditSubject
from app.auth.models import ProxyGrant, User
from app.auth.tokens import mint_token
from app.cli import cli
from app.clock import clock, utcnow
from app.config import Settings, get_settings
from app.db import make_engine, make_sessionmaker, transaction
from app.directory import team_requests
from app.directory.models import TeamRequest
from app.patients.models import CareTeam, CareUnit, Organisation, Patient, TeamMember, TeamPatient
from app.push.dispatcher import dispatch
from app.push.models import OutboxMessage
from app.push.sender import RecordingSender
from tests.app.factories import patient_id

Auth = Callable[[str], dict[str, str]]
NOW = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)
SUBSCRIPTION = {
    "endpoint": "https://push.example.test/asta-teams",
    "keys": {
        "p256dh": "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpk"
        "NtoIAiw4",
        "auth": "BTBZMqHH6r4Tts7J_aSIgg",
    },
}


def _counts(session: Session) -> dict[str, int]:
    """Rows a directory change could add or remove."""
    return {
        model.__tablename__: int(session.scalar(select(func.count()).select_from(model)) or 0)
        for model in (Organisation, CareUnit, CareTeam, User, TeamMember, TeamPatient, TeamRequest)
    }


def _pnr(session: Session, handle: str) -> str:
    patient = session.get(Patient, patient_id(session, handle))
    assert patient is not None
    return patient.personnummer


def _team_of(client: TestClient, auth: Auth, handle: str) -> str:
    return str(client.get("/v1/teams", headers=auth(handle)).json()["items"][0]["id"])


def _pushes(session: Session, request_id: str) -> list[str]:
    rows = session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.kind == "team_request")
        .order_by(OutboxMessage.created_at, OutboxMessage.id)
    )
    return [r.payload["title"] for r in rows if r.payload.get("team_request_id") == request_id]


def _ask_as(client: TestClient, headers: dict[str, str], pnr: str, team_id: str) -> Any:
    body = {"personnummer": pnr, "display_name": "Vem som helst", "team_id": team_id}
    return client.post("/v1/patients", json=body, headers=headers)


def test_the_operator_adds_a_team_and_asta_accepts_it(
    client: TestClient, auth: Auth, session: Session, settings: Settings
) -> None:
    """A unit, a team and a nurse over the API; Asta accepts the new team's request."""
    clock.fixed = NOW
    admin = auth("admin")
    assert client.post("/v1/push/subscriptions", json=SUBSCRIPTION, headers=auth("asta")).is_success
    region = client.get("/v1/admin/organisations", headers=admin).json()["items"]
    org = next(o for o in region if o["kind"] == "region")

    unit = client.post(
        "/v1/admin/care-units",
        json={"organisation_id": org["id"], "name": "Hjärtmottagningen"},
        headers=admin,
    )
    assert unit.status_code == 201, unit.text
    assert unit.json()["organisation"]["name"] == org["name"]
    team = client.post(
        "/v1/admin/teams",
        json={
            "care_unit_id": unit.json()["id"],
            "name": "Hjärtsviktsteamet",
            "phone": "010-123 45",
        },
        headers=admin,
    )
    assert team.status_code == 201, team.text
    team_id = team.json()["id"]
    nurse = client.post(
        "/v1/admin/clinicians",
        json={"handle": "nina", "display_name": "Nina Nord", "title": "Sjuksköterska"},
        headers=admin,
    )
    assert nurse.status_code == 201, nurse.text
    nina = nurse.json()
    assert nina["role"] == "clinician" and nina["subject"] is None and nina["team_ids"] == []
    member = client.put(f"/v1/admin/teams/{team_id}/members/{nina['id']}", headers=admin)
    assert member.status_code == 200 and member.json()["member"] is True
    again = client.put(f"/v1/admin/teams/{team_id}/members/{nina['id']}", headers=admin)
    assert again.json()["since"] == member.json()["since"]  # unchanged
    login = client.put(
        f"/v1/admin/users/{nina['id']}/login", json={"subject": "hsa-nina"}, headers=admin
    )
    assert login.status_code == 200 and login.json()["subject"] == "hsa-nina"
    nina_auth = {"Authorization": f"Bearer {mint_token(settings, 'hsa-nina', now=NOW)}"}
    teams = client.get("/v1/teams", headers=nina_auth).json()["items"]
    assert [t["id"] for t in teams] == [team_id]
    listed = client.get("/v1/admin/teams", headers=admin).json()["items"]
    assert next(t for t in listed if t["id"] == team_id)["member_ids"] == [nina["id"]]

    # Nina asks to add Asta, who is already in two teams: a pending request, nothing more.
    asta = patient_id(session, "asta")
    asked = _ask_as(client, nina_auth, _pnr(session, "asta"), team_id)
    assert asked.status_code == 202, asked.text
    request = asked.json()["enrolment_request"]
    assert request["status"] == "pending" and request["team"]["id"] == team_id
    assert request["team"]["care_unit"]["name"] == "Hjärtmottagningen"
    assert request["requested_by"]["display_name"] == "Nina Nord"
    assert "personnummer" not in asked.text and "Asta" not in asked.text
    assert client.get(f"/v1/patients/{asta}", headers=nina_auth).status_code == 404
    assert asta not in [
        p["id"] for p in client.get("/v1/patients", headers=nina_auth).json()["items"]
    ]
    assert _pushes(session, request["id"]) == [
        "Hjärtmottagningen vill bli en del av din vård. Svara i appen."
    ]

    # Asta sees it, under `me` and under her id, and accepts.
    mine = client.get("/v1/patients/me/team-requests", headers=auth("asta")).json()["items"]
    assert [r["id"] for r in mine] == [request["id"]]
    assert client.get(f"/v1/patients/{asta}/team-requests", headers=auth("asta")).json() == {
        "items": mine
    }
    url = f"/v1/patients/me/team-requests/{request['id']}/decision"
    accepted = client.post(url, json={"decision": "accept"}, headers=auth("asta"))
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "accepted"
    assert accepted.json()["decided_by"]["display_name"] == "Asta Berglund"
    assert client.get(f"/v1/patients/{asta}", headers=nina_auth).status_code == 200
    assert sorted(_pushes(session, request["id"])) == [
        "Hjärtmottagningen vill bli en del av din vård. Svara i appen.",
        "Hjärtmottagningen är nu en del av din vård.",
    ]
    # Decided once: a second decision is a conflict and changes nothing.
    before = _counts(session)
    assert client.post(url, json={"decision": "decline"}, headers=auth("asta")).status_code == 409
    assert _counts(session) == before
    changes = client.get("/v1/patients/me/changes", headers=auth("asta")).json()["changes"]
    ops = [(c["entity"], c["op"]) for c in changes if c["entity"] == "team_request"]
    assert ops == [("team_request", "create"), ("team_request", "update")]

    # The same team again is a conflict; every admin call was logged as the admin's.
    assert _ask_as(client, nina_auth, _pnr(session, "asta"), team_id).status_code == 409
    logged = session.scalars(
        select(AuditEvent.resource).where(AuditEvent.actor_handle == "admin")
    ).all()
    for resource in (
        "POST /v1/admin/care-units",
        "POST /v1/admin/teams",
        "POST /v1/admin/clinicians",
        "PUT /v1/admin/teams/{team_id}/members/{user_id}",
        "PUT /v1/admin/users/{user_id}/login",
    ):
        assert resource in logged
    decision = session.scalars(
        select(AuditEvent).where(
            AuditEvent.resource == "POST /v1/patients/{pid}/team-requests/{request_id}/decision"
        )
    ).all()
    assert [d.outcome for d in decision] == ["ok", "refused:409"]


def test_decline_then_an_admin_confirms_with_a_basis_note(
    client: TestClient, auth: Auth, session: Session
) -> None:
    """Olof's diabetes team: declined (no access), asked again, confirmed by operations."""
    clock.fixed = NOW
    asta, pnr, diabetes = (
        patient_id(session, "asta"),
        _pnr(session, "asta"),
        _team_of(client, auth, "olof"),
    )
    first = _ask_as(client, auth("olof"), pnr, diabetes)
    assert first.status_code == 202, first.text
    rid = first.json()["enrolment_request"]["id"]
    # Asked twice while pending: a conflict, no second request.
    assert _ask_as(client, auth("olof"), pnr, diabetes).status_code == 409
    assert client.get(f"/v1/patients/{asta}", headers=auth("olof")).status_code == 404

    # Maria is Asta's proxy, but without the agree scope she may not decide.
    url = f"/v1/patients/{asta}/team-requests/{rid}/decision"
    assert client.post(url, json={"decision": "accept"}, headers=auth("maria")).status_code == 403
    assert client.post(url, json={"decision": "accept"}, headers=auth("olof")).status_code == 404
    bad = client.post(url, json={"decision": "maybe"}, headers=auth("asta"))
    assert bad.status_code == 422 and bad.json()["errors"][0]["loc"] == "body.decision"
    declined = client.post(url, json={"decision": "decline"}, headers=auth("asta"))
    assert declined.status_code == 200 and declined.json()["status"] == "declined"
    assert client.get(f"/v1/patients/{asta}", headers=auth("olof")).status_code == 404
    confirm = f"/v1/admin/team-requests/{rid}/confirm"
    note = {"basis_note": "Patienten kan inte svara själv; beslut i journalen."}
    assert client.post(confirm, json=note, headers=auth("admin")).status_code == 409

    # Asked again later; a proxy whose grant has the agree scope sees it too.
    clock.fixed = NOW.replace(hour=11)
    again = _ask_as(client, auth("olof"), pnr, diabetes)
    assert again.status_code == 202
    rid = again.json()["enrolment_request"]["id"]
    maria = session.scalars(select(User.id).where(User.handle == "maria")).one()
    grant = session.scalars(select(ProxyGrant).where(ProxyGrant.grantee_id == maria)).one()
    session.execute(
        update(ProxyGrant).where(ProxyGrant.id == grant.id).values(scopes=[*grant.scopes, "agree"])
    )
    seen = client.get(f"/v1/patients/{asta}/team-requests", headers=auth("maria")).json()
    assert [r["status"] for r in seen["items"]] == ["pending", "declined"]
    pending = client.get("/v1/admin/team-requests", headers=auth("admin")).json()["items"]
    assert [(r["id"], r["patient_id"]) for r in pending] == [(rid, asta)]

    # Operations confirm: the note is required and bounded; bad bodies change nothing.
    confirm = f"/v1/admin/team-requests/{rid}/confirm"
    before = _counts(session)
    for body in ({}, {"basis_note": ""}, {"basis_note": "x" * 2001}, {**note, "extra": 1}):
        refused = client.post(confirm, json=body, headers=auth("admin"))
        assert refused.status_code == 422, body
        assert all({"loc", "code", "message"} <= set(e) for e in refused.json()["errors"])
    assert client.post(confirm, json=note, headers=auth("olof")).status_code == 403
    missing = "/v1/admin/team-requests/00000000-0000-4000-8000-000000000000/confirm"
    assert client.post(missing, json=note, headers=auth("admin")).status_code == 404
    assert _counts(session) == before
    done = client.post(confirm, json=note, headers=auth("admin"))
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "confirmed" and done.json()["basis_note"] == note["basis_note"]
    assert client.get(f"/v1/patients/{asta}", headers=auth("olof")).status_code == 200
    assert client.post(confirm, json=note, headers=auth("admin")).status_code == 409
    assert _ask_as(client, auth("olof"), pnr, diabetes).status_code == 409  # same team again
    row = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.resource == "POST /v1/admin/team-requests/{request_id}/confirm")
        .where(AuditEvent.outcome == "ok")
    ).one()
    subjects = session.scalars(
        select(AuditSubject.patient_id).where(AuditSubject.event_seq == row.seq)
    ).all()
    assert (row.actor_handle, row.relation, list(subjects)) == ("admin", "admin", [asta])


def test_bad_directory_input_is_refused_with_reasons_and_changes_nothing(
    client: TestClient, auth: Auth, session: Session
) -> None:
    admin = auth("admin")
    org = client.get("/v1/admin/organisations", headers=admin).json()["items"][0]
    unit = client.get("/v1/admin/care-units", headers=admin).json()["items"][0]
    eva = session.scalars(select(User).where(User.handle == "eva")).one()
    allan = session.scalars(select(User).where(User.handle == "allan")).one()
    team = _team_of(client, auth, "eva")
    missing = "00000000-0000-4000-8000-000000000000"
    before = _counts(session)
    unprocessable = [
        ("/v1/admin/organisations", {"name": "", "kind": "region"}, "body.name"),
        ("/v1/admin/organisations", {"name": "Region Syd", "kind": "county"}, "body.kind"),
        ("/v1/admin/organisations", {"name": "Region\nSyd", "kind": "region"}, "body.name"),
        ("/v1/admin/care-units", {"organisation_id": org["id"]}, "body.name"),
        ("/v1/admin/teams", {"care_unit_id": unit["id"], "name": "T", "phone": "ring mig"},
         "body.phone"),
        ("/v1/admin/clinicians", {"handle": "Nina Nord", "display_name": "Nina"}, "body.handle"),
        ("/v1/admin/clinicians", {"handle": "nina", "display_name": "Nina", "role": "admin"},
         "body.role"),
    ]  # fmt: skip
    for url, body, loc in unprocessable:
        answer = client.post(url, json=body, headers=admin)
        assert answer.status_code == 422, (url, body, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert loc in [e["loc"] for e in answer.json()["errors"]], answer.json()
    not_found = [
        ("POST", "/v1/admin/care-units", {"organisation_id": missing, "name": "X"}),
        ("POST", "/v1/admin/teams", {"care_unit_id": missing, "name": "X"}),
        ("PUT", f"/v1/admin/teams/{missing}/members/{eva.id}", None),
        ("PUT", f"/v1/admin/teams/{team}/members/{missing}", None),
        ("DELETE", f"/v1/admin/teams/{missing}/members/{eva.id}", None),
        ("PUT", f"/v1/admin/users/{missing}/login", {"subject": "x"}),
        ("DELETE", f"/v1/admin/users/{missing}/login", None),
    ]
    for method, url, body in not_found:
        answer = client.request(method, url, json=body, headers=admin)
        assert answer.status_code == 404, (method, url, answer.text)
    conflicts = [
        ("POST", "/v1/admin/organisations", {"name": org["name"].upper(), "kind": "region"}),
        ("POST", "/v1/admin/care-units",
         {"organisation_id": unit["organisation"]["id"], "name": unit["name"].lower()}),
        ("POST", "/v1/admin/clinicians", {"handle": "eva", "display_name": "Eva två"}),
        ("POST", "/v1/admin/clinicians",
         {"handle": "eva2", "display_name": "E", "subject": "karin"}),
        ("PUT", f"/v1/admin/users/{eva.id}/login", {"subject": "olof"}),
    ]  # fmt: skip
    for method, url, body in conflicts:
        answer = client.request(method, url, json=body, headers=admin)
        assert answer.status_code == 409, (method, url, answer.text)
    # A patient is no team member.
    member = client.put(f"/v1/admin/teams/{team}/members/{allan.id}", headers=admin)
    assert member.status_code == 422 and member.json()["errors"][0]["code"] == "not_clinician"
    assert _counts(session) == before
    session.expire_all()
    assert session.get(User, eva.id).subject == "eva"  # type: ignore[union-attr]
    refused = session.scalars(
        select(AuditEvent.outcome).where(AuditEvent.actor_handle == "admin")
    ).all()
    # Refused by the service (404/409/422 after the role check): logged with the refusal.
    assert refused.count("refused:404") == len(not_found)
    assert refused.count("refused:409") == len(conflicts)


@pytest.mark.parametrize("handle", ["asta", "maria", "eva", "olof"])
def test_only_administrators_use_the_directory(
    client: TestClient, auth: Auth, session: Session, handle: str
) -> None:
    before = _counts(session)
    calls = [
        ("GET", "/v1/admin/organisations", None),
        ("POST", "/v1/admin/organisations", {"name": "Region X", "kind": "region"}),
        ("GET", "/v1/admin/clinicians", None),
        ("PUT", f"/v1/admin/users/{patient_id(session, 'asta')}/login", {"subject": "x"}),
    ]
    for method, url, body in calls:
        assert client.request(method, url, json=body).status_code == 401
        answer = client.request(method, url, json=body, headers=auth(handle))
        assert answer.status_code == 403, (handle, url, answer.text)
    assert _counts(session) == before
    outcomes = session.scalars(
        select(AuditEvent.outcome).where(AuditEvent.actor_handle == handle)
    ).all()
    assert outcomes == ["refused:403"] * len(calls)


def test_selfcare_admin_commands(
    client: TestClient,
    auth: Auth,
    session: Session,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same story with `selfcare admin`: created rows printed, refusals change nothing."""
    monkeypatch.setenv("SELFCARE_DATABASE_URL", settings.effective_database_url)
    monkeypatch.setenv("SELFCARE_VAR_DIR", str(settings.var_dir))
    monkeypatch.setenv("SELFCARE_AUDIT_KEY", settings.audit_key)
    get_settings.cache_clear()
    runner = CliRunner()

    def admin(*args: str, code: int = 0) -> str:
        result = runner.invoke(cli, ["admin", *args])
        assert result.exit_code == code, result.output
        return result.output

    try:
        assert "Region Norr" in admin("org", "add", "Region Norr", "--kind", "region")
        assert "Lungmottagningen" in admin(
            "unit", "add", "Lungmottagningen", "--org", "Region Norr"
        )
        out = admin("team", "add", "KOL-teamet", "--unit", "Lungmottagningen", "--phone", "010-1")
        assert "KOL-teamet" in out
        assert "lisa" in admin("clinician", "add", "lisa", "--name", "Lisa Lund", "--title", "Ssk")
        assert "is a member of" in admin("member", "add", "KOL-teamet", "lisa")
        assert "hsa-lisa" in admin("login", "link", "lisa", "hsa-lisa")
        listed = admin("list")
        for text in ("Region Norr", "Lungmottagningen", "KOL-teamet", "Lisa Lund", "hsa-lisa"):
            assert text in listed

        before = _counts(session)
        refused = admin("login", "link", "eva", "hsa-lisa", code=1)
        assert "409" in refused and "another user" in refused
        assert "404" in admin("member", "add", "KOL-teamet", "nobody", code=1)
        assert "409" in admin("org", "add", "region norr", code=1)
        assert _counts(session) == before

        lisa = session.scalars(select(User).where(User.handle == "lisa")).one()
        team = session.scalars(select(CareTeam).where(CareTeam.name == "KOL-teamet")).one()
        assert lisa.subject == "hsa-lisa" and team.phone == "010-1"
        lisa_auth = {"Authorization": f"Bearer {mint_token(settings, 'hsa-lisa', now=utcnow())}"}
        asked = _ask_as(client, lisa_auth, _pnr(session, "gunilla"), team.id)
        assert asked.status_code == 202, asked.text
        rid = asked.json()["enrolment_request"]["id"]
        assert rid in admin("list")
        assert "confirmed" in admin("request", "confirm", rid, "--note", "Remiss i journalen.")
        gunilla = patient_id(session, "gunilla")
        assert client.get(f"/v1/patients/{gunilla}", headers=lisa_auth).status_code == 200

        assert "is not a member of" in admin("member", "remove", "KOL-teamet", "lisa")
        assert client.get(f"/v1/patients/{gunilla}", headers=lisa_auth).status_code == 404
        admin("login", "unlink", "lisa")
        assert client.get("/v1/me", headers=lisa_auth).status_code == 401
        logged = session.scalars(
            select(AuditEvent.resource).where(AuditEvent.actor_handle == "system:admin-cli")
        ).all()
        assert "selfcare admin team add" in logged and "selfcare admin request confirm" in logged
        assert len(logged) == 11  # one per command that succeeded, none for the refusals
    finally:
        get_settings.cache_clear()


def test_two_requests_at_once_leave_one_pending(settings: Settings, session: Session) -> None:
    """The partial unique index decides a race the service's own check cannot see."""
    asta = session.get(Patient, patient_id(session, "asta"))
    diabetes = session.scalars(select(CareTeam.id).where(CareTeam.name == "Diabetesteamet")).one()
    assert asta is not None
    engine = make_engine(settings.effective_database_url)
    try:
        with transaction(make_sessionmaker(engine)) as tx:
            patient = tx.get(Patient, asta.id)
            assert patient is not None
            first = team_requests.create(
                tx, patient=patient, team_id=diabetes, requested_by=None, now=utcnow()
            )
            with pytest.raises(team_requests.RequestPending):
                team_requests.create(
                    tx, patient=patient, team_id=diabetes, requested_by=None, now=utcnow()
                )
            # Only the savepoint rolled back: the first request stands.
            assert tx.get(TeamRequest, first.id) is not None
    finally:
        engine.dispose()
    pending = session.scalars(select(TeamRequest.status)).all()
    assert pending == ["pending"]


def test_a_proxy_who_may_agree_is_told_and_decides(
    client: TestClient, auth: Auth, session: Session, settings: Settings
) -> None:
    """Maria's grant narrowed to ``agree``: the push reaches her, and she may decide."""
    clock.fixed = NOW.replace(hour=13)  # daytime: no quiet hours hold the push back
    asta = patient_id(session, "asta")
    sub = {**SUBSCRIPTION, "endpoint": "https://push.example.test/maria", "patient_ids": [asta]}
    assert client.post("/v1/push/subscriptions", json=sub, headers=auth("maria")).is_success
    maria = session.scalars(select(User.id).where(User.handle == "maria")).one()
    session.execute(
        update(ProxyGrant).where(ProxyGrant.grantee_id == maria).values(scopes=["agree"])
    )
    asked = _ask_as(client, auth("olof"), _pnr(session, "asta"), _team_of(client, auth, "olof"))
    rid = asked.json()["enrolment_request"]["id"]
    sender = RecordingSender()
    dispatch(client.app.state.sessionmaker, settings, utcnow(), sender=sender)  # type: ignore[attr-defined]
    assert [m.endpoint for m in sender.sent] == ["https://push.example.test/maria"]
    url = f"/v1/patients/{asta}/team-requests/{rid}/decision"
    decided = client.post(url, json={"decision": "decline"}, headers=auth("maria"))
    assert decided.status_code == 200 and decided.json()["decided_by"]["id"] == maria
