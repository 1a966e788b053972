"""Consent the patient controls (DESIGN §4.6): invite, accept, confirm, narrow, revoke.

The story of issue 13 runs here through the app on both databases; ``consent_story`` is also
run against a real uvicorn by tests/app/consent/test_e2e_consent.py.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.models import GrantStatus, ProxyGrant, User
from app.clock import utcnow
from app.consent.models import ProxyInvitation
from app.consent.service import accept as accept_invitation
from app.consent.service import code_hash, find_invitation
from app.db import make_engine, make_sessionmaker, transaction
from app.errors import NotFound
from app.push.models import OutboxMessage
from tests.app.factories import patient_id, scalar

Auth = Callable[[str], dict[str, str]]
SUBSCRIPTION = {
    "endpoint": "https://push.example.test/asta-consent",
    "keys": {
        "p256dh": "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpk"
        "NtoIAiw4",
        "auth": "BTBZMqHH6r4Tts7J_aSIgg",
    },
}


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def consent_story(http: httpx.Client, auth: Auth, now: datetime) -> dict[str, Any]:
    """Asta gives, narrows and revokes Maria's consent; every step checked. Returns figures."""
    asta, maria = auth("asta"), auth("maria")
    me = http.get("/v1/me", headers=asta).json()
    asta_pid = next(p["id"] for p in me["patients"] if p["relation"] == "self")
    base = f"/v1/patients/{asta_pid}"

    # Asta lists her proxies and sees Maria's grant.
    listed = http.get(f"{base}/proxies", headers=asta).json()["items"]
    old = next(g for g in listed if g["grantee"]["display_name"] == "Maria Berglund")
    assert old["status"] == "active" and "enter_readings" in old["scopes"]

    # She invites a relative: read and receive advice until the end of March.
    until = now + timedelta(days=118)
    invited = http.post(
        f"{base}/proxies/invitations",
        json={"scopes": ["read", "receive_advice"], "valid_to": _iso(until)},
        headers=asta,
    )
    assert invited.status_code == 201, invited.text
    code = invited.json()["code"]
    assert len(re.sub(r"[^A-Z2-7]", "", code)) * 5 >= 128  # base32: 5 bits a character

    # Maria accepts: pending, no new access yet (her old grant still holds).
    accepted = http.post("/v1/proxy-invitations/accept", json={"code": code}, headers=maria)
    assert accepted.status_code == 201, accepted.text
    new = accepted.json()
    assert new["status"] == "pending" and new["in_force"] is False
    assert new["scopes"] == ["read", "receive_advice"]

    # The code is spent: a second use answers like a wrong code.
    again = http.post("/v1/proxy-invitations/accept", json={"code": code}, headers=auth("allan"))
    wrong = http.post("/v1/proxy-invitations/accept", json={"code": "AAAA-BBBB"},
                      headers=auth("allan"))  # fmt: skip
    assert again.status_code == wrong.status_code == 404 and again.json() == wrong.json()

    # Asta sees that it was Maria who accepted, and confirms.
    pending = http.get(f"{base}/proxies", headers=asta).json()["items"]
    shown = next(g for g in pending if g["id"] == new["id"])
    assert shown["grantee"]["display_name"] == "Maria Berglund" and shown["accepted_at"]
    confirmed = http.post(f"{base}/proxies/{new['id']}/confirm", headers=asta)
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["status"] == "active"
    after = {g["id"]: g for g in http.get(f"{base}/proxies", headers=asta).json()["items"]}
    assert after[old["id"]]["status"] == "revoked" and after[old["id"]]["replaced_by"] == new["id"]

    # Maria now reads Asta's values but cannot enter readings.
    assert http.get(f"{base}/readings", headers=maria).status_code == 200
    sync = {"source": {"id": "maria-phone", "kind": "app"},
            "readings": [scalar("weight", 71.0, "kg", minutes_ago=5)]}  # fmt: skip
    assert http.post(f"{base}/sync", json=sync, headers=maria).status_code == 403
    # Maria sees only her own grants (the replaced one too), and the new one in GET /v1/me.
    mine = http.get(f"{base}/proxies", headers=maria).json()["items"]
    assert {g["id"] for g in mine} == {new["id"], old["id"]}
    maria_me = http.get("/v1/me", headers=maria).json()
    assert maria_me["patients"][0]["valid_to"] is not None
    assert {g["id"] for g in maria_me["grants"]} == {new["id"]}

    # Maria tries to widen her own grant, and to extend it: refused, nothing changes.
    widen = http.patch(f"{base}/proxies/{new['id']}",
                       json={"scopes": ["read", "receive_advice", "enter_readings"]},
                       headers=maria)  # fmt: skip
    extend = http.patch(f"{base}/proxies/{new['id']}", json={"valid_to": None}, headers=maria)
    assert widen.status_code == extend.status_code == 403, (widen.text, extend.text)

    # Asta narrows the grant to read: Maria no longer receives advice.
    narrowed = http.patch(f"{base}/proxies/{new['id']}", json={"scopes": ["read"]}, headers=asta)
    assert narrowed.status_code == 200 and narrowed.json()["scopes"] == ["read"]
    subscribe = {**SUBSCRIPTION, "endpoint": "https://push.example.test/maria",
                 "patient_ids": [asta_pid]}  # fmt: skip
    assert http.post("/v1/push/subscriptions", json=subscribe, headers=maria).status_code == 403

    # Asta revokes it: Maria's very next request for Asta is denied, like a stranger's.
    revoked = http.post(f"{base}/proxies/{new['id']}/revoke", headers=asta)
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    denied = http.get(f"{base}/readings", headers=maria)
    stranger = http.get(f"{base}/readings", headers=auth("olof"))
    assert denied.status_code == 404 and denied.json() == stranger.json()
    assert http.get("/v1/me", headers=maria).json()["patients"] == []

    # Asta's own record shows every change.
    feed = http.get(f"{base}/changes", headers=asta).json()["changes"]
    grant_changes = [c for c in feed if c["entity"] == "grant"]
    return {"asta_pid": asta_pid, "grant_id": new["id"], "old_grant_id": old["id"],
            "grant_changes": len(grant_changes)}  # fmt: skip


def test_consent_story(client: TestClient, auth: Auth, session: Session) -> None:
    subscribed = client.post("/v1/push/subscriptions", json=SUBSCRIPTION, headers=auth("asta"))
    assert subscribed.status_code == 201, subscribed.text  # so that Asta hears of each change
    figures = consent_story(client, auth, utcnow())
    # accept, confirm (and the replaced grant), narrow, revoke
    assert figures["grant_changes"] >= 4
    notices = [
        row.payload["title"]
        for row in session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "consent"))
    ]
    assert "Maria Berglund kan nu se dina värden." in notices, notices
    assert "Maria Berglund är inte längre ditt ombud." in notices, notices
    # The invitation is stored only as its hash, and spent.
    invitation = session.scalars(select(ProxyInvitation)).one()
    assert invitation.used_at is not None and invitation.grant_id == figures["grant_id"]
    assert len(invitation.code_hash) == 64
    # Each change is audited on Asta: her access log names the acceptance and the changes.
    log = client.get("/v1/patients/me/access-log", headers=auth("asta")).json()["items"]
    resources = {row["resource"] for row in log}
    assert "POST /v1/proxy-invitations/accept" in resources
    assert "POST /v1/patients/{pid}/proxies/{gid}/revoke" in resources


def test_an_expired_invitation_and_a_stranger_learn_nothing(
    client: TestClient, auth: Auth, session: Session
) -> None:
    from app.clock import clock

    start = utcnow().replace(microsecond=0)
    clock.fixed = start
    made = client.post("/v1/patients/me/proxies/invitations", json={"scopes": ["read"]},
                       headers=auth("asta"))  # fmt: skip
    assert made.status_code == 201
    clock.fixed = start + timedelta(hours=72)
    late = client.post("/v1/proxy-invitations/accept", json={"code": made.json()["code"]},
                       headers=auth("maria"))  # fmt: skip
    assert late.status_code == 404
    # Only the patient invites: her proxy and her nurse are told no, a stranger learns nothing.
    asta_pid = patient_id(session, "asta")
    url = f"/v1/patients/{asta_pid}/proxies/invitations"
    assert client.post(url, json={"scopes": ["read"]}, headers=auth("maria")).status_code == 403
    assert client.post(url, json={"scopes": ["read"]}, headers=auth("karin")).status_code == 403
    assert client.post(url, json={"scopes": ["read"]}, headers=auth("olof")).status_code == 404


def test_wrong_codes_are_rate_limited(client: TestClient, auth: Auth) -> None:
    answers = [
        client.post(
            "/v1/proxy-invitations/accept", json={"code": f"WRONG-{n}"}, headers=auth("allan")
        ).status_code  # fmt: skip
        for n in range(12)
    ]
    assert answers[:10] == [404] * 10 and answers[-1] == 429, answers


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"scopes": []}, "scopes"),
        ({"scopes": ["read", "read"]}, "scopes"),
        ({"scopes": ["everything"]}, "scopes"),
        ({"scopes": ["read"], "valid_to": "2020-01-01T00:00:00+00:00"}, "valid_to"),
        ({"scopes": ["read"], "valid_to": "2027-01-01T00:00:00"}, "valid_to"),
        (
            {
                "scopes": ["read"],
                "valid_from": "2027-02-01T00:00:00+00:00",
                "valid_to": "2027-01-01T00:00:00+00:00",
            },
            "body",
        ),  # fmt: skip
        ({"scopes": ["read"], "status": "active"}, "status"),
        ({"scopes": ["read"], "grantee_id": "x"}, "grantee_id"),
    ],
)
def test_bad_invitations_are_refused_per_item(
    client: TestClient, auth: Auth, session: Session, body: dict[str, Any], loc: str
) -> None:
    before = len(list(session.scalars(select(ProxyInvitation))))
    answer = client.post("/v1/patients/me/proxies/invitations", json=body, headers=auth("asta"))
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert any(loc in str(e["loc"]) for e in problem["errors"]), problem
    assert len(list(session.scalars(select(ProxyInvitation)))) == before


def test_a_legal_representative_is_registered_by_the_team(
    client: TestClient, auth: Auth, session: Session
) -> None:
    allan_user = session.scalars(select(User).where(User.handle == "allan")).one()
    asta_pid = patient_id(session, "asta")
    body = {
        "grantee_id": allan_user.id,
        "scopes": ["read", "agree"],
        "basis": "legal_representative",
        "basis_note": "Förvaltare enligt beslut 2026-11-01",
    }
    url = f"/v1/patients/{asta_pid}/proxies"
    assert client.post(url, json=body, headers=auth("asta")).status_code == 403
    without_note = {**body, "basis_note": ""}
    assert client.post(url, json=without_note, headers=auth("karin")).status_code == 422
    made = client.post(url, json=body, headers=auth("karin"))
    assert made.status_code == 201, made.text
    grant = made.json()
    assert grant["status"] == "active" and grant["basis"] == "legal_representative"
    assert grant["created_by"]["display_name"] == "Karin Holm"
    # The patient sees it but cannot end it; the team can.
    seen = client.get(f"{url}", headers=auth("asta")).json()["items"]
    assert grant["id"] in {g["id"] for g in seen}
    revoke = f"{url}/{grant['id']}/revoke"
    assert client.post(revoke, headers=auth("asta")).status_code == 403
    assert client.post(revoke, headers=auth("karin")).status_code == 200
    # Allan, the representative, read Asta's record in between.
    assert (
        session.scalars(select(ProxyGrant).where(ProxyGrant.id == grant["id"])).one().status
        == GrantStatus.REVOKED
    )


def test_preferences(client: TestClient, auth: Auth) -> None:
    changed = client.patch("/v1/me", json={"language": "en",
                           "quiet_hours": {"start": "21:30", "end": "06:45"}},
                           headers=auth("allan"))  # fmt: skip
    assert changed.status_code == 200, changed.text
    assert changed.json()["user"]["language"] == "en"
    assert changed.json()["user"]["quiet_hours"] == {"start": "21:30", "end": "06:45"}
    for bad in ({"language": "de"}, {"quiet_hours": {"start": "25:00", "end": "07:00"}},
                {"role": "admin"}, {"language": None}):  # fmt: skip
        answer = client.patch("/v1/me", json=bad, headers=auth("allan"))
        assert answer.status_code == 422, (bad, answer.text)
    me = client.get("/v1/me", headers=auth("allan")).json()["user"]
    assert me["language"] == "en" and me["role"] == "patient"
    cleared = client.patch("/v1/me", json={"quiet_hours": None}, headers=auth("allan"))
    assert cleared.json()["user"]["quiet_hours"] is None


def test_codes_are_stored_hashed(client: TestClient, auth: Auth, session: Session) -> None:
    made = client.post("/v1/patients/me/proxies/invitations", json={"scopes": ["read"]},
                       headers=auth("asta")).json()  # fmt: skip
    stored = session.scalars(select(ProxyInvitation)).one()
    assert stored.code_hash == code_hash(made["code"].lower().replace("-", " "))
    assert made["code"] not in str(
        [getattr(stored, c.key) for c in ProxyInvitation.__table__.columns]
    )


def test_one_code_accepted_at_once_by_two_gives_one_grant(
    client: TestClient, auth: Auth, db_url: str
) -> None:
    """Two relatives race with one code: one pending grant, the other the wrong-code 404."""
    made = client.post("/v1/patients/me/proxies/invitations", json={"scopes": ["read"]},
                       headers=auth("asta")).json()  # fmt: skip
    engine = make_engine(db_url)
    factory = make_sessionmaker(engine)
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def accept(handle: str) -> None:
        start.wait()
        try:
            with transaction(factory) as session:
                user = session.scalars(select(User).where(User.handle == handle)).one()
                invitation = find_invitation(session, made["code"], utcnow())
                accept_invitation(session, invitation, user, utcnow())
            outcomes.append("grant")
        except NotFound:
            outcomes.append("404")

    threads = [threading.Thread(target=accept, args=(h,)) for h in ("maria", "allan")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    with transaction(factory) as session:
        pending = session.scalars(
            select(ProxyGrant).where(ProxyGrant.status == GrantStatus.PENDING)
        ).all()
    engine.dispose()
    assert sorted(outcomes) == ["404", "grant"] and len(pending) == 1
