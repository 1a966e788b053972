"""AT-01 authorisation matrix and AT-05 access-log completeness, on both databases.

Every route of the app (the OpenAPI schema, plus routes left out of it such as the docs) is
called by every principal on A's object, B's object and a missing id, and the outcome is
compared with ``access_matrix.yaml``, the intended policy. Alongside:

- a patient the caller may not see answers the same 404 (status and body) as a missing one;
- listings (patients, worklist, /v1/me) name no patient the caller may not see;
- a denied write changes no row (readings and flags by status, plans, advice, changes,
  patients, team enrolments, grants);
- AT-05: every allowed request on patient data (a 409 included: it was authorised and read
  the patient's state) writes exactly one audit row (actor, role, relation, care unit, action,
  UTC time, the patient as subject), a listing one row naming the listed patients; denied
  requests on no patient's data write none; no audit row holds a measurement value that was
  sent;
- a signed-in caller refused (403/404) on a patient route writes one row with the refusal as its
  outcome, naming the patient when it exists (nobody for a missing id); other denials (401,
  422) write none;
- a directory route (/v1/admin) writes one row per signed-in call: the admin's, with the
  outcome ok or the refusal (404, 409), naming a patient only for team requests; anyone
  else's refused:403, naming nobody;
- a route whose link is the authority (the .ics calendar feed) writes one row per answer,
  naming the patient, with the link as actor (no person); an unknown link writes none.

Every mismatch is collected and reported once, as a table, at the end.
"""

from __future__ import annotations

import functools
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy import String, cast, func, literal, select, union_all
from sqlalchemy.orm import Session
from starlette.routing import Route

from app.audit.models import AuditEvent, AuditSubject
from app.auth.models import GrantStatus, ProxyGrant, Role, Scope, User
from app.clock import utcnow
from app.directory.models import TeamRequest
from app.feed.models import Change
from app.findings.models import Advice, Flag
from app.goals.models import Goal, Milestone
from app.patients.models import CareTeam, CareUnit, Organisation, Patient, TeamMember, TeamPatient
from app.plans.models import PlanVersion
from app.push.models import PushSubscription
from app.readings.models import Reading
from tests.app.factories import batch, bp, patient_id, scalar

Auth = Callable[[str], dict[str, str]]
Expected = tuple[str, str, str]  # outcome for targets A, B, missing

MATRIX_FILE = Path(__file__).with_name("access_matrix.yaml")
# More route entries, one file per domain (routes: only); they use the main file's profiles.
MATRIX_PARTS = Path(__file__).with_name("access_matrix.d")
TARGETS = ("A", "B", "missing")
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
DENIALS = frozenset({"401", "403", "404", "422"})
REFUSALS = frozenset({"403", "404"})  # refused by the policy (or for the object): audited
ENROL_PNR = "198804292384"  # from Skatteverket's list of test personnummer
FRESH_PULSE = 67  # the value of every reading the matrix uploads

# Principal -> seeded (or inserted) handle; None = no token.
HANDLES: dict[str, str | None] = {
    "anonymous": None,
    "patient_a": "asta",
    "patient_b": "allan",
    "proxy_active": "maria",
    "proxy_expired": "proxy_expired",
    "proxy_revoked": "proxy_revoked",
    "proxy_future": "proxy_future",
    "proxy_pending": "proxy_pending",
    "proxy_readonly": "proxy_readonly",
    "proxy_writeonly": "proxy_writeonly",
    "clinician_a_only": "karin",
    "clinician_both": "eva",
    "clinician_other": "olof",
    "admin": "admin",
}
# The care unit a clinician's audit rows must name.
CARE_UNITS = {"karin": "Hemsjukvården Exempels kommun", "eva": "Vårdcentralen Norra"}
# Every measurement value sent in this test; none may appear in the audit log.
SENT_VALUES = ("85", "185", "100", str(FRESH_PULSE))


# --- the matrix file -------------------------------------------------------------------------


@dataclass(frozen=True)
class RouteSpec:
    """What the matrix says about one route."""

    profile: str
    audit: str  # patient | list | none
    expected: dict[str, Expected]


def _as_outcome(value: Any) -> str:
    text = str(value)
    assert text in DENIALS | {"allow"}, f"unknown outcome {value!r} in {MATRIX_FILE.name}"
    return text


def _expand(value: Any, principal: str) -> Expected:
    """A profile cell as outcomes for (A, B, missing)."""
    if not isinstance(value, list):
        one = _as_outcome(value)
        return one, one, one
    if len(value) == 2:
        missing = "401" if principal == "anonymous" else "404"
        return _as_outcome(value[0]), _as_outcome(value[1]), missing
    assert len(value) == 3, f"{principal}: {value!r} needs 1, 2 or 3 outcomes"
    return _as_outcome(value[0]), _as_outcome(value[1]), _as_outcome(value[2])


def _profile_cells(profiles: dict[str, Any], name: str) -> dict[str, Any]:
    profile = profiles[name]
    cells = dict(_profile_cells(profiles, profile["extends"])) if "extends" in profile else {}
    cells.update({k: v for k, v in profile.items() if k not in ("extends", "audit")})
    return cells


def _profile_audit(profiles: dict[str, Any], name: str) -> str:
    profile = profiles[name]
    if "audit" in profile:
        return str(profile["audit"])
    return _profile_audit(profiles, profile["extends"])


def load_matrix() -> tuple[list[str], dict[str, RouteSpec], dict[str, Any]]:
    """The principals, the expected outcome of every route, and who may see whom."""
    raw = yaml.safe_load(MATRIX_FILE.read_text(encoding="utf-8"))
    for part in sorted(MATRIX_PARTS.glob("*.yaml")):
        extra = yaml.safe_load(part.read_text(encoding="utf-8"))
        assert set(extra) <= {"routes", "profiles"}, f"{part.name}: only routes and profiles"
        for section in ("routes", "profiles"):
            clash = set(extra.get(section, {})) & set(raw[section])
            assert not clash, f"{part.name} defines {section} twice: {sorted(clash)}"
            raw[section].update(extra.get(section, {}))
    principals = list(raw["principals"])
    assert set(principals) == set(HANDLES), "the matrix file and the test name other principals"
    profiles = raw["profiles"]
    routes: dict[str, RouteSpec] = {}
    for key, entry in raw["routes"].items():
        spec: dict[str, Any] = {"profile": entry} if isinstance(entry, str) else dict(entry)
        cells = _profile_cells(profiles, spec["profile"])
        cells.update(spec.get("overrides", {}))
        audit_kind = spec.get("audit") or _profile_audit(profiles, spec["profile"])
        assert audit_kind in ("patient", "list", "link", "admin", "none"), (
            f"{key}: audit {audit_kind!r}"
        )
        expected: dict[str, Expected] = {}
        for principal in principals:
            cell = cells.get(principal, cells.get("*"))
            assert cell is not None, f"{key}: no outcome for {principal}"
            expected[principal] = _expand(cell, principal)
        routes[key] = RouteSpec(spec["profile"], audit_kind, expected)
    visible = raw["visible"]
    assert set(visible) <= set(principals)
    return principals, routes, visible


# --- the world the matrix runs in -------------------------------------------------------------


@dataclass
class World:
    """Ids of A's and B's objects, the bodies for writes, and the principals' users."""

    patients: dict[str, str]  # target -> patient id ("missing": a random uuid)
    readings: dict[str, str]
    flags: dict[str, str]
    teams: dict[str, str]
    plans: dict[str, dict[str, Any]]
    rules: dict[str, str] = field(
        default_factory=lambda: {"A": "spo2-low", "B": "bp-very-high", "missing": "no-such-rule"}
    )
    users: dict[str, User] = field(default_factory=dict)  # handle -> user
    uploads: int = 0
    subscriptions: dict[str, str] = field(default_factory=dict)  # target -> push subscription
    goals: dict[str, str] = field(default_factory=dict)  # target -> a goal its nurse set
    grants: dict[str, str] = field(default_factory=dict)  # target -> a relative's grant
    agreements: dict[tuple[str, str], str] = field(default_factory=dict)  # of the target's plan
    nurses: dict[str, str] = field(default_factory=dict)  # target -> a clinician of its team
    codes: dict[str, list[str]] = field(default_factory=dict)  # target -> unused codes
    guardian: str = ""  # the user a care team registers as legal representative
    activities: dict[str, str] = field(default_factory=dict)  # target -> one its nurse booked
    calendars: dict[str, str] = field(default_factory=dict)  # target -> its .ics link's token
    directory_users: dict[str, str] = field(default_factory=dict)  # target -> a lone clinician
    team_requests: dict[str, str] = field(default_factory=dict)  # target -> a pending request
    organisation: str = ""  # where the matrix adds care units
    care_unit: str = ""  # where the matrix adds teams


def _insert_proxies(session: Session, asta_pid: str) -> None:
    """The proxies whose grants on A are expired, revoked, not yet valid or narrow."""
    now, day = utcnow(), timedelta(days=1)
    every = [Scope.READ, Scope.RECEIVE_ADVICE, Scope.ENTER_READINGS]
    active, revoked, pending = GrantStatus.ACTIVE, GrantStatus.REVOKED, GrantStatus.PENDING
    grants = {  # handle -> scopes, valid_from, valid_to, status
        "proxy_expired": (every, now - 60 * day, now - day, active),
        "proxy_revoked": (every, now - 60 * day, None, revoked),
        "proxy_future": (every, now + day, None, active),
        "proxy_pending": (every, now - day, None, pending),  # accepted, not yet confirmed
        "proxy_readonly": ([Scope.READ], now - 60 * day, None, active),
        "proxy_writeonly": ([Scope.ENTER_READINGS], now - 60 * day, None, active),
    }
    for handle, (scopes, valid_from, valid_to, status) in grants.items():
        user = User(
            handle=handle,
            subject=handle,
            display_name=handle.replace("_", " ").title(),
            role=Role.PROXY,
            created_at=now,
        )
        session.add(user)
        session.flush()
        session.add(
            ProxyGrant(
                grantee_id=user.id,
                patient_id=asta_pid,
                scopes=[str(s) for s in scopes],
                valid_from=valid_from,
                valid_to=valid_to,
                status=status,
                revoked_at=now - day if status == revoked else None,
                created_at=now,
            )
        )
    session.commit()


def build_world(client: TestClient, auth: Auth, session: Session) -> World:
    """A's and B's readings, flags, plans and teams, made through the API; the extra proxies."""
    pids = {"A": patient_id(session, "asta"), "B": patient_id(session, "allan")}
    _insert_proxies(session, pids["A"])
    uploads = {
        "A": ("asta", scalar("spo2", 85, "%", minutes_ago=20)),
        "B": ("allan", bp(185, 100, minutes_ago=20)),
    }
    readings, flags, plans = {}, {}, {}
    for target, (handle, reading) in uploads.items():
        synced = client.post("/v1/patients/me/sync", json=batch(reading), headers=auth(handle))
        assert synced.status_code == 200, synced.text
        readings[target] = synced.json()["results"][0]["id"]
        own_flags = client.get("/v1/patients/me/flags", headers=auth(handle)).json()["items"]
        assert len(own_flags) == 1, own_flags
        flags[target] = own_flags[0]["id"]
        plan = client.get("/v1/patients/me/plan", headers=auth(handle)).json()
        plans[target] = {
            k: plan[k] for k in ("rules", "schedule", "agreements", "contact") if k in plan
        }
    teams = {
        target: client.get("/v1/teams", headers=auth(handle)).json()["items"][0]["id"]
        for target, handle in (("A", "karin"), ("B", "eva"))
    }
    world = World(
        patients={**pids, "missing": str(uuid.uuid4())},
        readings={**readings, "missing": str(uuid.uuid4())},
        flags={**flags, "missing": str(uuid.uuid4())},
        teams={**teams, "missing": str(uuid.uuid4())},
        plans={**plans, "missing": plans["A"]},
    )
    for target, handle in (("A", "asta"), ("B", "allan")):
        body = push_subscription(f"world-{target}")
        subscribed = client.post("/v1/push/subscriptions", json=body, headers=auth(handle))
        assert subscribed.status_code == 201, subscribed.text
        world.subscriptions[target] = subscribed.json()["id"]
    world.subscriptions["missing"] = str(uuid.uuid4())
    for target, nurse in (("A", "karin"), ("B", "eva")):
        url = f"/v1/patients/{world.patients[target]}/goals"
        made = client.post(url, json=goal_body(personal=False), headers=auth(nurse))
        assert made.status_code == 201, made.text
        world.goals[target] = made.json()["id"]
    world.goals["missing"] = str(uuid.uuid4())
    for target, nurse in (("A", "karin"), ("B", "eva")):
        items = world.plans[target]["agreements"]
        world.agreements[target, "decision"] = items[0]["id"]
        world.agreements[target, "status"] = items[-1]["id"]
        world.nurses[target] = session.scalars(select(User.id).where(User.handle == nurse)).one()
    for route in ("decision", "status"):
        world.agreements["missing", route] = str(uuid.uuid4())
    _consent_world(client, auth, session, world)
    _activities_world(client, auth, world)
    _directory_world(client, auth, session, world)
    handles = [h for h in HANDLES.values() if h]
    found = session.scalars(select(User).where(User.handle.in_(handles)))
    world.users = {user.handle: user for user in found}
    assert set(world.users) == set(handles)
    return world


def _activities_world(client: TestClient, auth: Auth, world: World) -> None:
    """An activity each nurse booked for their patient, and each patient's calendar link."""
    for target, nurse, handle in (("A", "karin", "asta"), ("B", "eva", "allan")):
        url = f"/v1/patients/{world.patients[target]}/activities"
        booked = client.post(url, json=activity_body(), headers=auth(nurse))
        assert booked.status_code == 201, booked.text
        world.activities[target] = booked.json()["id"]
        link = client.post("/v1/patients/me/calendar-link", headers=auth(handle))
        assert link.status_code == 201, link.text
        world.calendars[target] = link.json()["url"].rsplit("/", 1)[1].removesuffix(".ics")
    world.activities["missing"] = str(uuid.uuid4())
    world.calendars["missing"] = "A" * 43  # well formed, but no link's


def _directory_world(client: TestClient, auth: Auth, session: Session, world: World) -> None:
    """A clinician in no team, a team no principal is in, and its pending requests for A and B."""
    admin = auth("admin")
    unit = client.get("/v1/admin/care-units", headers=admin).json()["items"][0]
    world.care_unit, world.organisation = unit["id"], unit["organisation"]["id"]
    team = client.post(
        "/v1/admin/teams", json={"care_unit_id": unit["id"], "name": "AT-01"}, headers=admin
    )
    assert team.status_code == 201, team.text
    lone = client.post(
        "/v1/admin/clinicians", json={"handle": "matrix-nurse", "display_name": "M"}, headers=admin
    )
    assert lone.status_code == 201, lone.text
    world.directory_users = {"A": lone.json()["id"], "B": lone.json()["id"]}
    world.directory_users["missing"] = str(uuid.uuid4())
    for target in ("A", "B"):
        patient = session.get(Patient, world.patients[target])
        assert patient is not None
        body = {"personnummer": patient.personnummer, "display_name": "-",
                "team_id": team.json()["id"]}  # fmt: skip
        asked = client.post("/v1/patients", json=body, headers=admin)
        assert asked.status_code == 202, asked.text
        world.team_requests[target] = asked.json()["enrolment_request"]["id"]
    world.team_requests["missing"] = str(uuid.uuid4())


def _consent_world(client: TestClient, auth: Auth, session: Session, world: World) -> None:
    """A relative with a consent grant on A and on B, a guardian, and unused codes of both."""
    now = utcnow()
    relative, guardian = (
        User(handle=h, subject=h, display_name=h.title(), role=Role.PROXY, created_at=now)
        for h in ("matrix_relative", "matrix_guardian")
    )
    session.add_all([relative, guardian])
    session.flush()
    for target in ("A", "B"):
        grant = ProxyGrant(
            grantee_id=relative.id, patient_id=world.patients[target],
            scopes=[Scope.READ, Scope.RECEIVE_ADVICE], valid_from=now - timedelta(days=1),
            valid_to=None, status=GrantStatus.ACTIVE, created_at=now,
        )  # fmt: skip
        session.add(grant)
        session.flush()
        world.grants[target] = grant.id
    session.commit()
    world.grants["missing"] = str(uuid.uuid4())
    world.guardian = guardian.id
    for target, handle in (("A", "asta"), ("B", "allan")):
        url = "/v1/patients/me/proxies/invitations"
        world.codes[target] = [
            client.post(url, json={"scopes": ["read"]}, headers=auth(handle)).json()["code"]
            for _ in range(len(HANDLES))
        ]
    world.codes["missing"] = ["NO-SUCH-CODE"] * len(HANDLES)


# --- requests ----------------------------------------------------------------------------------


def app_routes(client: TestClient) -> dict[str, bool]:
    """Every "METHOD path" the app answers -> whether the OpenAPI schema lists it."""
    schema = client.get("/openapi.json").json()
    routes = {
        f"{method.upper()} {path}": True
        for path, operations in schema["paths"].items()
        for method in operations
        if method in ("get", "post", "put", "patch", "delete")
    }
    for route in client.app.routes:  # type: ignore[attr-defined]
        if isinstance(route, Route):
            for method in sorted(route.methods or ()):
                if method not in ("HEAD", "OPTIONS"):
                    routes.setdefault(f"{method} {route.path}", False)
    return routes


def omh_heart_rate(bpm: int, *, minutes_ago: float) -> dict[str, Any]:
    """An Open mHealth heart-rate data point (the import route's body)."""
    at = (utcnow() - timedelta(minutes=minutes_ago)).isoformat()
    return {
        "header": {
            "id": str(uuid.uuid4()),
            "creation_date_time": at,
            "schema_id": {"namespace": "omh", "name": "heart-rate", "version": "1.1"},
        },
        "body": {
            "heart_rate": {"value": bpm, "unit": "beats/min"},
            "effective_time_frame": {"date_time": at},
        },
    }


def request_for(world: World, method: str, path: str, target: str) -> tuple[str, Any]:
    """The concrete URL and JSON body of one call of a route on one target."""
    values = {
        "pid": world.patients[target],
        "reading_id": world.readings[target],
        "flag_id": world.flags[target],
        "rule_id": world.rules[target],
        "subscription_id": world.subscriptions[target],
        "goal_id": world.goals[target],
        "gid": world.grants[target],
        # {aid}: an activity on the activity routes; on the agreement routes, decisions on the
        # plan's first agreement and the team's status on its last, so that neither route's
        # repeats depend on the order the matrix calls them in.
        "aid": world.activities[target]
        if "/activities/" in path
        else world.agreements[target, "status" if path.endswith("/status") else "decision"],
        "token": world.calendars[target],
        "team_id": world.teams[target],
        "user_id": world.directory_users[target],
        "request_id": world.team_requests[target],
    }

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in values, f"no value for the path parameter {{{name}}} of {path}"
        return values[name]

    url = re.sub(r"\{(\w+)\}", fill, path)
    body: Any = None
    if path.endswith("/sync"):
        world.uploads += 1
        body = batch(
            scalar("pulse", FRESH_PULSE, "/min", minutes_ago=60 + world.uploads / 10),
            source="at01-matrix",
        )
    elif path.endswith("/import"):
        world.uploads += 1
        url += "?format=omh&source_id=at01-import"
        body = omh_heart_rate(FRESH_PULSE, minutes_ago=90 + world.uploads / 10)
    elif (method == "PUT" and path.endswith("/plan")) or path.endswith("/plan/backtest"):
        body = world.plans[target]  # a backtest takes the proposed plan
    elif path.endswith(("/messages", "/notes")):
        body = {"body": "AT-01"}
    elif path.startswith("/v1/flags/"):
        body = {"note": "AT-01"}
    elif method == "POST" and path == "/v1/patients":
        body = {
            "personnummer": ENROL_PNR,
            "display_name": "Tolvan Tolvansson",
            "team_id": world.teams[target],
        }
    elif method == "POST" and path == "/v1/push/subscriptions":
        world.uploads += 1
        body = {
            **push_subscription(f"at01-{world.uploads}"),
            "patient_ids": [world.patients[target]],
        }
    elif method == "POST" and path.endswith("/goals"):
        body = goal_body(personal=True)
    elif method == "PATCH" and "/goals/" in path:
        body = {"title": "AT-01", "agreements": ["Gå en promenad varje dag."]}
    elif path.endswith("/summary"):
        url += "?type=pulse&days=7"
    elif path.endswith("/proxies/invitations"):
        body = {"scopes": ["read"]}
    elif path == "/v1/proxy-invitations/accept":
        body = {"code": world.codes[target].pop()}
    elif method == "POST" and path.endswith("/proxies"):
        body = {"grantee_id": world.guardian, "scopes": ["read"],
                "basis": "legal_representative", "basis_note": "AT-01"}  # fmt: skip
    elif method == "PATCH" and path.endswith("/proxies/{gid}"):
        body = {"scopes": ["read"]}  # narrower than the relative's grant
    elif path.endswith(("/confirm", "/revoke")) and not path.startswith("/v1/admin/"):
        body = None
    elif path.startswith("/v1/admin/"):
        body = directory_body(world, method, path)
    elif path.endswith("/team-requests/{request_id}/decision"):
        body = {"decision": "accept"}
    elif path.endswith("/decision"):
        body = {"decision": "agreed"}
    elif path.endswith("/agreements/{aid}/status"):
        body = {"status": "paused"}
    elif path.endswith("/care-contact"):
        body = {"clinician_id": world.nurses.get(target, str(uuid.uuid4()))}
    elif path.endswith("/story"):
        body = {"what_matters": "AT-01", "questions": ["AT-01?"]}
    elif method == "POST" and path.endswith("/activities"):
        body = activity_body()
    elif method == "PATCH" and "/activities/" in path:
        body = {"where_or_how": "AT-01"}
    elif path.endswith("/calendar-link"):
        body = None
    elif method == "PATCH" and path == "/v1/me":
        body = {"language": "sv"}
    elif not path.startswith("/v1/"):
        body = {"handle": "eva", "note": "AT-01"}  # a page's form (app/web), sent without CSRF
    elif method in MUTATING and method != "DELETE":
        raise AssertionError(f"no request body is defined for {method} {path}")
    return url, body


def directory_body(world: World, method: str, path: str) -> Any:
    """The body of a /v1/admin call: new names every time, so that none is a duplicate."""
    world.uploads += 1
    n = world.uploads
    bodies: dict[str, Any] = {
        "POST /v1/admin/organisations": {"name": f"AT-01 {n}", "kind": "region"},
        "POST /v1/admin/care-units": {"organisation_id": world.organisation, "name": f"AT-01 {n}"},
        "POST /v1/admin/teams": {"care_unit_id": world.care_unit, "name": f"AT-01 {n}"},
        "POST /v1/admin/clinicians": {"handle": f"at01-{n}", "display_name": "AT-01"},
        "PUT /v1/admin/users/{user_id}/login": {"subject": f"at01-login-{n}"},
        "POST /v1/admin/team-requests/{request_id}/confirm": {"basis_note": "AT-01"},
    }
    return bodies.get(f"{method} {path}")


def push_subscription(name: str) -> dict[str, Any]:
    """A browser's PushSubscription JSON with a fresh endpoint (the RFC 8291 example's keys)."""
    return {
        "endpoint": f"https://push.example.test/{name}",
        "keys": {
            "p256dh": "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8p"
            "ZGH6SRpkNtoIAiw4",
            "auth": "BTBZMqHH6r4Tts7J_aSIgg",
        },
    }


def activity_body() -> dict[str, Any]:
    """A phone call two days ahead, by the nurse who books it."""
    start = (utcnow() + timedelta(days=2)).isoformat()
    return {"kind": "phone", "start": start, "where_or_how": "AT-01"}


def goal_body(*, personal: bool) -> dict[str, Any]:
    """A goal: a resting pulse under 70 (the matrix uploads pulses)."""
    return {
        "title": "Vilopuls under 70",
        "measure": {"type": "pulse", "aggregate": "mean", "window_days": 7},
        "target": {"value": 70, "unit": "/min", "direction": "below"},
        "personal": personal,
    }


def outcome_of(response: Response) -> str:
    """The outcome class of a response."""
    status = response.status_code
    if 200 <= status < 300 or status == 409:
        return "allow"
    return str(status)


def body_of(response: Response) -> Any:
    """The parsed JSON of an answer, or its text when it is no JSON."""
    try:
        return response.json()
    except (ValueError, json.JSONDecodeError):
        return response.text


# --- looking behind the API -------------------------------------------------------------------


COUNTED: tuple[tuple[str, Any], ...] = (
    ("plan_versions", PlanVersion),
    ("advice", Advice),
    ("changes", Change),
    ("patients", Patient),
    ("team_patients", TeamPatient),
    ("proxy_grants", ProxyGrant),
    ("push_subscriptions", PushSubscription),
    ("goals", Goal),
    ("milestones", Milestone),
    ("team_requests", TeamRequest),
    ("team_members", TeamMember),
    ("care_teams", CareTeam),
    ("care_units", CareUnit),
    ("organisations", Organisation),
    ("users", User),
)
# One statement for every count: it runs around each denied write (thousands of times), and
# seventeen round trips through the ORM cost as much as the request under test.
ROW_COUNTS = union_all(
    *(
        select(literal(name), cast(model.status, String), func.count()).group_by(model.status)
        for name, model in (("readings", Reading), ("flags", Flag))
    ),
    *(
        select(literal(name), cast(literal(""), String), func.count()).select_from(entity)
        for name, entity in COUNTED
    ),
)


def row_counts(session: Session) -> dict[str, int]:
    """Rows that a write could change, by table (readings and flags also by status)."""
    return {
        f"{name}[{status}]" if status else str(name): int(n)
        for name, status, n in session.execute(ROW_COUNTS)
    }


def last_audit_seq(session: Session) -> int:
    return int(session.scalar(select(func.max(AuditEvent.seq))) or 0)


def new_audit_rows(session: Session, after_seq: int) -> list[tuple[AuditEvent, set[str]]]:
    """The audit rows written after ``after_seq``, each with its subject patients."""
    rows = list(
        session.scalars(
            select(AuditEvent).where(AuditEvent.seq > after_seq).order_by(AuditEvent.seq)
        )
    )
    result = []
    for row in rows:
        subjects = set(
            session.scalars(
                select(AuditSubject.patient_id).where(AuditSubject.event_seq == row.seq)
            )
        )
        result.append((row, subjects))
    return result


EXPECTED_RELATION = {
    Role.PATIENT: "self",
    Role.PROXY: "proxy",
    Role.CLINICIAN: "care_team",
    Role.ADMIN: "admin",
}


def audit_row_problems(
    row: AuditEvent,
    subjects: set[str],
    *,
    user: User,
    relation: str,
    patients: set[str],
    started: datetime,
    ended: datetime,
    outcome: str = "ok",
    other_relations: frozenset[str] = frozenset(),
) -> list[str]:
    """What is wrong with one audit row (empty when it is complete and right)."""
    problems = []
    if row.actor_id != user.id or row.actor_handle != user.handle:
        problems.append(f"actor {row.actor_handle}/{row.actor_id}")
    if row.actor_role != user.role:
        problems.append(f"role {row.actor_role}")
    if row.relation != relation and row.relation not in other_relations:
        problems.append(f"relation {row.relation} (want {relation})")
    if not row.action:
        problems.append("no action")
    if row.outcome != outcome:
        problems.append(f"outcome {row.outcome} (want {outcome})")
    at = row.occurred_at
    if at.tzinfo is None or at.utcoffset() != timedelta(0):
        problems.append(f"time not UTC: {at!r}")
    elif not started - timedelta(seconds=2) <= at <= ended + timedelta(seconds=2):
        problems.append(f"time {at.isoformat()} outside the request")
    if user.role == Role.CLINICIAN:
        if not row.care_unit_id or row.care_unit_name != CARE_UNITS.get(
            user.handle, row.care_unit_name
        ):
            problems.append(f"care unit {row.care_unit_name!r}")
    elif row.care_unit_id is not None:
        problems.append(f"care unit {row.care_unit_name!r} for a {user.role}")
    if subjects != patients:
        problems.append(f"subjects {sorted(subjects)} (want {sorted(patients)})")
    return problems


# GET route -> where its answer names patient ids.
LISTINGS = {
    "GET /v1/patients": ("items", "id"),
    "GET /v1/flags": ("items", "patient_id"),
    "GET /v1/me": ("patients", "id"),
}


def listing_problem(session: Session, key: str, answer: Any, visible: str | list[str]) -> str:
    """Why a listing's answer names patients it should not (or misses some), or ""."""
    items_key, id_key = LISTINGS[key]
    enrolled = session.scalar(select(Patient.id).where(Patient.personnummer == ENROL_PNR))
    named = {item[id_key] for item in answer[items_key]} - {enrolled}
    if visible == "all":
        allowed = set(session.scalars(select(Patient.id))) - {enrolled}
    else:
        allowed = {patient_id(session, handle) for handle in visible}
    extra, lacking = named - allowed, allowed - named
    if extra or (key == "GET /v1/patients" and lacking):
        handles = dict(
            session.execute(
                select(Patient.id, Patient.display_name).where(Patient.id.in_(extra | lacking))
            )
        )
        return (
            f"names {sorted(handles.get(i, i) for i in extra)}, "
            f"lacks {sorted(handles.get(i, i) for i in lacking)}"
        )
    return ""


# --- the test ----------------------------------------------------------------------------------


@dataclass
class Tally:
    """Figures and mismatches of one run."""

    requests: int = 0
    audited_requests: int = 0
    audited_refusals: int = 0
    audit_rows: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    mismatches: list[tuple[str, str, str, str, str, str]] = field(default_factory=list)

    def miss(
        self, kind: str, route: str, principal: str, target: str, expected: str, got: str
    ) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        self.mismatches.append((kind, route, principal, target, expected, got))

    def table(self) -> str:
        header = ("kind", "route", "principal", "target", "expected", "got")
        rows = [header, *self.mismatches]
        widths = [min(60, max(len(r[i]) for r in rows)) for i in range(len(header))]
        return "\n".join(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            for row in rows
        )


@dataclass
class MatrixRun:
    """One pass over the matrix: sends the requests and checks each answer."""

    client: TestClient
    session: Session
    world: World
    visible: dict[str, Any]
    headers: dict[str, dict[str, str]]
    tally: Tally = field(default_factory=Tally)

    def route(self, key: str, spec: RouteSpec, principal: str) -> None:
        """Call one route as one principal on A, B and missing; check the denials agree."""
        answers = {
            target: self.call(key, spec, principal, target, index)
            for index, target in enumerate(TARGETS)
        }
        # A patient the caller may not see answers exactly like a missing one.
        expected = spec.expected[principal]
        missing = answers["missing"]
        for index, target in enumerate(TARGETS[:2]):
            answer = answers[target]
            if (
                expected[index] == expected[2] in ("404", "422")
                and answer.status_code == missing.status_code
                and body_of(answer) != body_of(missing)
            ):
                self.tally.miss(
                    "unlike_missing", key, principal, target,
                    f"as missing: {body_of(missing)}", str(body_of(answer)),
                )  # fmt: skip

    def call(self, key: str, spec: RouteSpec, principal: str, target: str, index: int) -> Response:
        """Send one request and check its outcome, its effect and its audit rows."""
        method, path = key.split(" ", 1)
        expected = spec.expected[principal][index]
        url, body = request_for(self.world, method, path, target)
        audit_before = last_audit_seq(self.session)
        counts_before = row_counts(self.session) if method in MUTATING else None
        started = utcnow()
        response = self.client.request(method, url, json=body, headers=self.headers[principal])
        ended = utcnow()
        self.tally.requests += 1
        got = outcome_of(response)
        shown = f"{got} ({response.status_code})" if got == "allow" else got
        miss = functools.partial(self.tally.miss, route=key, principal=principal, target=target)
        if got != expected:
            if got == "allow":
                miss("unexpected_allow", expected=expected, got=shown)
            elif expected == "allow":
                miss("unexpected_deny", expected=expected, got=shown)
            else:
                miss("wrong_denial", expected=expected, got=shown)

        if got == "allow" and key in LISTINGS:
            problem = listing_problem(
                self.session, key, body_of(response), self.visible.get(principal, [])
            )
            if problem:
                miss("listing", expected="visible patients only", got=problem)

        if counts_before is not None and got != "allow":
            counts_after = row_counts(self.session)
            if counts_after != counts_before:
                changed = {
                    k: (counts_before.get(k, 0), counts_after.get(k, 0))
                    for k in sorted(set(counts_before) | set(counts_after))
                    if counts_before.get(k, 0) != counts_after.get(k, 0)
                }
                miss("denied_write_changed", expected="no change", got=str(changed))

        # AT-05: exactly one complete row for an allowed request on patient data, else none.
        written = new_audit_rows(self.session, audit_before)
        self.tally.audit_rows += len(written)
        user = self.world.users.get(str(HANDLES[principal]))
        # Enrolment is refused by role before any patient is looked at: not a patient's data.
        on_patient = spec.audit == "patient" and key != "POST /v1/patients"
        if got in REFUSALS and on_patient and user is not None:
            self.check_refusal(key, path, target, got, user, written, miss)
            return response
        if spec.audit == "admin" and user is not None:
            self.check_directory_row(key, path, target, response, user, written, miss)
            return response
        if got == "allow" and spec.audit == "link":
            self.check_link_row(target, written, miss)
            return response
        if got != "allow" or spec.audit == "none":
            if written:
                miss("audit_extra", expected="no audit row", got=f"{len(written)} ({shown})")
            return response
        self.tally.audited_requests += 1
        assert user is not None
        if len(written) != 1:
            kind = "audit_missing" if not written else "audit_extra"
            miss(kind, expected="1 audit row", got=f"{len(written)} rows ({shown})")
            return response
        if spec.audit == "list":
            items_key, id_key = LISTINGS[key]
            subjects = {item[id_key] for item in body_of(response)[items_key]}
            relation = "list"
        else:
            subjects = {subject_of(self.session, self.world, path, target, response)}
            relation = EXPECTED_RELATION[Role(user.role)]
            if path == "/v1/proxy-invitations/accept":
                relation = "invitee"  # no relation yet: the code is the authority
        row, logged_subjects = written[0]
        # An authorised request refused for its content (409: already resolved, already
        # enrolled) is still logged, with the refusal as its outcome; learning that a
        # personnummer is enrolled with a team one is not in is logged as relation "enrol".
        refused = response.status_code >= 400
        # Enrolled with another team (202: a pending team request) is no relation either.
        enrolling = key == "POST /v1/patients" and response.status_code != 201
        problems = audit_row_problems(
            row, logged_subjects, user=user, relation=relation, patients=subjects,
            started=started, ended=ended,
            outcome=f"refused:{response.status_code}" if refused else "ok",
            other_relations=frozenset({"enrol"}) if enrolling else frozenset(),
        )  # fmt: skip
        if problems:
            miss("audit_malformed", expected="complete row", got="; ".join(problems))
        return response

    def check_refusal(
        self,
        key: str,
        path: str,
        target: str,
        got: str,
        user: User,
        written: list[tuple[AuditEvent, set[str]]],
        miss: Callable[..., None],
    ) -> None:
        """A signed-in caller refused on a patient's data: one row, the refusal its outcome.

        The row names the patient when the target patient exists (A or B; they see the attempt
        in their access log) and nobody for a missing id. A missing object of another kind (a
        flag, a goal) is refused before the policy is asked: no patient, so no row is needed.
        """
        self.tally.audited_refusals += 1
        patients = set() if target == "missing" else {self.world.patients[target]}
        if len(written) > 1 or (not written and patients):
            kind = "refusal_audit_missing" if not written else "audit_extra"
            miss(kind, expected="1 refusal row", got=f"{len(written)} rows ({got})")
            return
        if not written:
            return
        row, logged = written[0]
        problems = []
        if row.outcome != f"refused:{got}":
            problems.append(f"outcome {row.outcome} (want refused:{got})")
        if (row.actor_id, row.actor_handle, row.actor_role) != (user.id, user.handle, user.role):
            problems.append(f"actor {row.actor_handle}/{row.actor_role}")
        if logged != patients:
            problems.append(f"subjects {sorted(logged)} (want {sorted(patients)})")
        if problems:
            miss("refusal_malformed", expected="complete refusal row", got="; ".join(problems))

    def check_directory_row(
        self,
        key: str,
        path: str,
        target: str,
        response: Response,
        user: User,
        written: list[tuple[AuditEvent, set[str]]],
        miss: Callable[..., None],
    ) -> None:
        """A /v1/admin call: one row, the outcome ok or the refusal; patients for requests."""
        if len(written) != 1:
            kind = "audit_missing" if not written else "audit_extra"
            miss(kind, expected="1 directory row", got=f"{len(written)} rows")
            return
        self.tally.audited_requests += 1
        row, logged = written[0]
        status = response.status_code
        admin = user.role == Role.ADMIN
        patients: set[str] = set()
        if admin and key == "GET /v1/admin/team-requests":
            patients = {item["patient_id"] for item in body_of(response)["items"]}
        elif admin and "{request_id}" in path and target != "missing":
            patients = {self.world.patients[target]}
        problems = audit_row_problems(
            row, logged, user=user, relation="admin" if admin else "none", patients=patients,
            started=row.occurred_at, ended=row.occurred_at,
            outcome="ok" if status < 400 else f"refused:{status}",
        )  # fmt: skip
        if problems:
            miss("audit_malformed", expected="complete directory row", got="; ".join(problems))

    def check_link_row(
        self, target: str, written: list[tuple[AuditEvent, set[str]]], miss: Callable[..., None]
    ) -> None:
        """A feed fetched by its link: one row, the link as actor, the patient as subject."""
        self.tally.audited_requests += 1
        if len(written) != 1:
            kind = "audit_missing" if not written else "audit_extra"
            miss(kind, expected="1 audit row", got=f"{len(written)} rows")
            return
        row, logged = written[0]
        problems = []
        if (row.actor_id, row.actor_handle, row.outcome) != (None, "calendar-link", "ok"):
            problems.append(f"actor {row.actor_handle}/{row.actor_id}, outcome {row.outcome}")
        if logged != {self.world.patients[target]}:
            problems.append(f"subjects {sorted(logged)}")
        if problems:
            miss("audit_malformed", expected="complete link row", got="; ".join(problems))

    def check_no_values_logged(self) -> None:
        """No audit row, from setup on, holds a measurement value that was sent."""
        for row in self.session.scalars(select(AuditEvent)):
            fields = (row.action, row.resource, row.relation, row.outcome, row.actor_handle,
                      row.actor_role, row.care_unit_name)  # fmt: skip
            text = " ".join(str(v) for v in fields)
            leaked = [v for v in SENT_VALUES if v in text]
            if leaked:
                self.tally.miss(
                    "audit_value", f"audit seq {row.seq}", row.actor_handle, "-",
                    "no measurement values", f"{leaked} in {text!r}",
                )  # fmt: skip


# The matrix runs in shards, each in its own world, so that the suite's workers share it.
SHARDS = 3


@pytest.mark.slow
@pytest.mark.parametrize("shard", range(SHARDS))
def test_access_matrix_and_access_log(
    client: TestClient, auth: Auth, session: Session, shard: int
) -> None:
    """AT-01 and AT-05: every route x principal x target against the checked-in matrix.

    Shard ``shard`` takes its contiguous part of the routes in their order (by path, then
    method: lists are read before enrolment, flags acknowledged before resolved); the shards
    together cover every route, and each checks that the matrix and the app name the same ones.
    """
    principals, matrix, visible = load_matrix()
    world = build_world(client, auth, session)
    routes = app_routes(client)
    headers = {p: auth(h) if h else {} for p, h in HANDLES.items()}
    run = MatrixRun(client, session, world, visible, headers)
    tally = run.tally
    for key in sorted(set(routes) - set(matrix)):
        tally.miss("unmapped", key, "-", "-", "in the matrix", "route has no matrix entry")
    for key in sorted(set(matrix) - set(routes)):
        tally.miss("unmapped", key, "-", "-", "a route", "matrix entry has no route")
    ordered = sorted(set(routes) & set(matrix), key=lambda k: (k.split()[1], k.split()[0]))
    size = -(-len(ordered) // SHARDS)
    for key in ordered[shard * size : (shard + 1) * size]:
        for principal in principals:
            run.route(key, matrix[key], principal)
    run.check_no_values_logged()

    c = tally.counts
    print(
        f"AT-01 shard={shard + 1}/{SHARDS} routes={len(set(routes) | set(matrix))} "
        f"principals={len(principals)} "
        f"requests={tally.requests} unexpected_allow={c.get('unexpected_allow', 0)} "
        f"unexpected_deny={c.get('unexpected_deny', 0)} unmapped={c.get('unmapped', 0)} "
        f"wrong_denial={c.get('wrong_denial', 0)} unlike_missing={c.get('unlike_missing', 0)} "
        f"denied_write_changed={c.get('denied_write_changed', 0)} listing={c.get('listing', 0)}"
    )
    print(
        f"AT-05 shard={shard + 1}/{SHARDS} requests={tally.audited_requests} "
        f"audit_rows={tally.audit_rows} "
        f"missing={c.get('audit_missing', 0)} extra={c.get('audit_extra', 0)} "
        f"malformed={c.get('audit_malformed', 0)} values={c.get('audit_value', 0)} "
        f"refusals={tally.audited_refusals} "
        f"refusal_missing={c.get('refusal_audit_missing', 0)} "
        f"refusal_malformed={c.get('refusal_malformed', 0)}"
    )
    if tally.mismatches:
        print(tally.table())
    assert not tally.mismatches, f"{len(tally.mismatches)} mismatches:\n{tally.table()}"


def subject_of(session: Session, world: World, path: str, target: str, response: Response) -> str:
    """The patient an allowed request on patient data touched."""
    if path == "/v1/patients":  # enrolment: the new patient, or on 409 the enrolled one
        if response.status_code == 201:
            return str(response.json()["id"])
        return str(session.scalar(select(Patient.id).where(Patient.personnummer == ENROL_PNR)))
    return world.patients[target]


def test_matrix_file_names_only_known_profiles_and_outcomes() -> None:
    """The matrix file parses, every route resolves, and every principal has an outcome."""
    principals, routes, _ = load_matrix()
    assert len(principals) >= 10
    assert routes and all(len(spec.expected) == len(principals) for spec in routes.values())
