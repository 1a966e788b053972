"""Load the sample personas (sample_data/) into the configured database, idempotently.

Organisations, teams, users, patients and grants are matched by natural keys; plans (and,
after the readings, goals) are added when a patient has none; readings go through the same
ingest as sync (so the rules run) and are loaded once per source. Reading times in the CSVs
(and goal dates) are day offsets from an anchor day, set at load to the patient's local
yesterday, so the demo always has recent data.
"""

from __future__ import annotations

import csv
import json
import logging
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.activities import service as activities_service
from app.activities.models import Activity
from app.activities.schemas import ActivityIn
from app.audit import service as audit
from app.auth.models import ProxyGrant, Role, User
from app.auth.policy import Actor, Relation, relation_to
from app.config import Settings
from app.errors import Unprocessable
from app.goals import service as goals_service
from app.ingest import pipeline as ingest_pipeline
from app.patients.models import CareTeam, CareUnit, Organisation, Patient, TeamMember, TeamPatient
from app.plans import contact as plans_contact
from app.plans import repository as plans_repository
from app.plans import service as plans_service
from app.plans.models import AgreementEvent, StoryVersion
from app.readings.models import Reading, Source
from rules.engine import DEFAULT_TZ
from rules.language import load_library
from rules.plan import PlanBody
from sync.wire import SourceIn

log = logging.getLogger("selfcare.seed")
BATCH = 1000


def _get_or_add(session: Session, model: Any, lookup: dict[str, Any], **values: Any) -> Any:
    row = session.scalars(select(model).filter_by(**lookup)).first()
    if row is None:
        row = model(**lookup, **values)
        session.add(row)
        session.flush()
    return row


def load_people(session: Session, personas: dict[str, Any], now: datetime) -> dict[str, Any]:
    """Organisations, care units, teams, users, patients, memberships and grants."""
    orgs = {
        o["key"]: _get_or_add(session, Organisation, {"name": o["name"]}, kind=o["kind"])
        for o in personas["organisations"]
    }
    units = {
        u["key"]: _get_or_add(
            session, CareUnit, {"name": u["name"]}, organisation_id=orgs[u["organisation"]].id
        )
        for u in personas["care_units"]
    }
    teams = {
        t["key"]: _get_or_add(
            session,
            CareTeam,
            {"name": t["name"]},
            care_unit_id=units[t["care_unit"]].id,
            phone=t.get("phone", ""),
        )
        for t in personas["teams"]
    }
    users: dict[str, User] = {}
    for u in personas["users"]:
        users[u["handle"]] = _get_or_add(
            session,
            User,
            {"handle": u["handle"]},
            subject=u["handle"],
            display_name=u["display_name"],
            role=u["role"],
            title=u.get("title", ""),
            language=u.get("language", "sv"),
            active=True,
            created_at=now,
        )
        for team_key in u.get("teams", []):
            _get_or_add(
                session,
                TeamMember,
                {"team_id": teams[team_key].id, "user_id": users[u["handle"]].id},
                since=now,
            )
    patients: dict[str, Patient] = {}
    for p in personas["patients"]:
        patient = _get_or_add(
            session,
            Patient,
            {"personnummer": p["personnummer"]},
            display_name=p["display_name"],
            timezone=p.get("timezone", DEFAULT_TZ),
            language=p.get("language", "sv"),
            user_id=users[p["handle"]].id if p["handle"] in users else None,
            created_at=now,
        )
        patients[p["handle"]] = patient
        for team_key in p.get("teams", []):
            _get_or_add(
                session,
                TeamPatient,
                {"team_id": teams[team_key].id, "patient_id": patient.id},
                enrolled_at=now,
            )
    for g in personas.get("grants", []):
        _get_or_add(
            session,
            ProxyGrant,
            {"grantee_id": users[g["grantee"]].id, "patient_id": patients[g["patient"]].id},
            scopes=list(g["scopes"]),
            valid_from=datetime.fromisoformat(g["valid_from"]),
            valid_to=datetime.fromisoformat(g["valid_to"]) if g.get("valid_to") else None,
            status="active",
            created_at=now,
        )
    return {"users": users, "patients": patients, "teams": teams}


def load_plan(
    session: Session, patient: Patient, path: Path, author: str | None, now: datetime
) -> bool:
    """Add the sample plan when the patient has none; rules the library lacks are left out."""
    if not path.exists() or plans_service.current(session, patient.id) is not None:
        return False
    body = json.loads(path.read_text())
    library = load_library()
    known = [r for r in body.get("rules", []) if library.get(r["rule"]) is not None]
    skipped = [r["rule"] for r in body.get("rules", []) if library.get(r["rule"]) is None]
    if skipped:
        log.info(
            "plan for %s: rules not in the library yet, left out: %s", patient.display_name, skipped
        )
    # The sample plans name their contact as a person; the service keeps it as the patient's
    # care contact (a clinician of the patient's team), not inside the plan.
    named = body.pop("contact", None)
    row = plans_service.save(
        session,
        patient=patient,
        body=PlanBody.model_validate({**body, "rules": known}),
        author_id=author,
        now=now,
    )
    if named is not None:
        _care_contact(session, patient, named, author, now)
    # The sample agreements were made together at the last visit: the patient agreed.
    for item in row.body.get("agreements", []):
        session.add(
            AgreementEvent(
                agreement_id=item["id"],
                patient_id=patient.id,
                kind="decision",
                status="agreed",
                comment="",
                actor_id=patient.user_id,
                actor_care_unit=None,
                at=now,
            )
        )
    return True


def _care_contact(
    session: Session, patient: Patient, named: dict[str, str], author: str | None, now: datetime
) -> None:
    """Make the sample plan's named contact the patient's care contact, when they are in a team."""
    clinician = session.scalars(
        select(User).where(User.display_name == named.get("name"), User.role == Role.CLINICIAN)
    ).first()
    if clinician is None:
        return
    try:
        plans_contact.set_contact(
            session,
            patient.id,
            set_by=author,
            clinician_id=clinician.id,
            team_id=None,
            phone=named.get("phone", ""),
            hours=named.get("hours", "Vardagar 8–16"),
            now=now,
        )
    except Unprocessable:
        log.info("sample contact %s is not in %s's team: left out", named, patient.display_name)


def _local(anchor: date, day: str, clock: str, zone: ZoneInfo) -> str | None:
    """The ISO time of a local wall-clock time, or None in the spring-forward gap."""
    moment = datetime.combine(anchor + timedelta(days=int(day)), time.fromisoformat(clock), zone)
    if moment.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != moment.replace(tzinfo=None):
        return None  # 02:00–02:59 on the day clocks go forward does not exist
    return moment.isoformat()


def _number(text: str) -> int | float:
    """A CSV number as a phone would send it: 129 stays a whole number (shown "129", not
    "129,0"), 71.0 keeps its decimal (the scale shows tenths)."""
    try:
        return int(text)
    except ValueError:
        return float(text)


def csv_to_wire(row: dict[str, str], anchor: date, zone: ZoneInfo) -> dict[str, Any] | None:
    """One sample CSV row as a sync reading (None for a time that does not exist locally)."""
    when = _local(anchor, row["day"], row["local_time"], zone)
    if when is None:
        return None
    item: dict[str, Any] = {
        "client_id": row["client_id"],
        "type": row["type"],
        "time": when,
        "unit": row["unit"],
    }
    if row.get("end_day"):
        item["end_time"] = _local(anchor, row["end_day"], row["end_local_time"], zone)
    if row["type"] == "blood_pressure":
        item["value"] = {
            "systolic": _number(row["systolic"]),
            "diastolic": _number(row["diastolic"]),
        }
    else:
        item["value"] = _number(row["value"])
    if row.get("context"):
        item["context"] = json.loads(row["context"])
    return item


def load_readings(
    session: Session,
    settings: Settings,
    patient: Patient,
    path: Path,
    sources: dict[str, dict[str, Any]],
    now: datetime,
) -> int:
    """Ingest a patient's sample readings once per source; returns how many were created."""
    if not path.exists():
        return 0
    zone = ZoneInfo(patient.timezone)
    anchor = now.astimezone(zone).date() - timedelta(days=1)
    by_source: dict[str, list[dict[str, Any]]] = {}
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            item = csv_to_wire(row, anchor, zone)
            if item is not None:
                by_source.setdefault(row["source_id"], []).append(item)
    created = 0
    for source_id, items in by_source.items():
        already = session.scalars(
            select(Reading.id)
            .join(Source, Source.id == Reading.source_id)
            .where(Source.patient_id == patient.id, Source.client_source_id == source_id)
            .limit(1)
        ).first()
        if already:
            continue
        spec = sources.get(source_id, {"id": source_id, "kind": "app"})
        source = SourceIn.model_validate({k: v for k, v in spec.items() if k != "patient"})
        items.sort(key=lambda i: i["time"])
        for start in range(0, len(items), BATCH):
            outcome = ingest_pipeline.ingest(
                session,
                settings,
                patient=patient,
                source=source,
                items=items[start : start + BATCH],
                entered_by=None,
                now=now,
            )
            created += len(outcome.created_ids)
    return created


def _dated(body: dict[str, Any], anchor: date) -> dict[str, Any]:
    """A goal or milestone body with its day offsets (start_day, due_day) as dates."""
    out = {k: v for k, v in body.items() if k not in ("start_day", "due_day")}
    for key in ("start", "due"):
        offset = body.get(f"{key}_day")
        if offset is not None:
            out[key] = (anchor + timedelta(days=int(offset))).isoformat()
    if "milestones" in body:
        out["milestones"] = [_dated(m, anchor) for m in body["milestones"]]
    return out


def load_goals(
    session: Session, patient: Patient, path: Path, author: str | None, now: datetime
) -> int:
    """Add the sample goals when the patient has none (dates relative to the anchor day)."""
    if not path.exists():
        return 0
    anchor = now.astimezone(ZoneInfo(patient.timezone)).date() - timedelta(days=1)
    bodies = [_dated(goal, anchor) for goal in json.loads(path.read_text())["goals"]]
    return goals_service.load_goals(session, patient, bodies, author, now)


WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _activity_day(entry: dict[str, Any], today: date) -> date:
    """The day of a sample activity: the next such weekday after today, or days from today."""
    if "weekday" in entry:
        ahead = (WEEKDAYS.index(entry["weekday"]) - today.weekday() - 1) % 7 + 1
        return today + timedelta(days=ahead)
    return today + timedelta(days=int(entry["in_days"]))


def load_activities(
    session: Session, patient: Patient, path: Path, users: dict[str, User], now: datetime
) -> int:
    """Book the sample activities when the patient has none, by their clinician, ahead of now."""
    if (
        not path.exists()
        or session.scalars(
            select(Activity.id).where(Activity.patient_id == patient.id).limit(1)
        ).first()
    ):
        return 0
    zone = ZoneInfo(patient.timezone)
    today = now.astimezone(zone).date()
    booked = 0
    for entry in json.loads(path.read_text())["activities"]:
        clinician = users[entry["who"]]
        access = relation_to(session, Actor(user=clinician), patient, now)
        if access is None or access.relation != Relation.CARE_TEAM:
            log.warning("seed: %s is not on %s's care team", entry["who"], patient.display_name)
            continue
        start = datetime.combine(
            _activity_day(entry, today), time.fromisoformat(entry["time"]), zone
        )
        body = ActivityIn(
            kind=entry["kind"],
            start=start,
            end=start + timedelta(minutes=int(entry["minutes"])),
            where_or_how=entry.get("where_or_how", ""),
            note=entry.get("note"),
        )
        activities_service.create(session, access, body, now)
        booked += 1
    return booked


def _team_clinician(session: Session, patient: Patient) -> str | None:
    """A clinician of the patient's care team, as the author of the sample plan."""
    return session.scalars(
        select(TeamMember.user_id)
        .join(TeamPatient, TeamPatient.team_id == TeamMember.team_id)
        .join(User, User.id == TeamMember.user_id)
        .where(TeamPatient.patient_id == patient.id)
        .order_by(User.handle)
        .limit(1)
    ).first()


def load_story(session: Session, patient: Patient, path: Path, now: datetime) -> bool:
    """Add what matters to the patient, in their own words, when they have written nothing."""
    if not path.exists() or plans_repository.current_story(session, patient.id) is not None:
        return False
    body = json.loads(path.read_text())
    session.add(
        StoryVersion(
            patient_id=patient.id,
            version=1,
            what_matters=body.get("what_matters", ""),
            questions=list(body.get("questions", [])),
            written_at=now,
            written_by=patient.user_id,
        )
    )
    return True


def seed(session: Session, settings: Settings, now: datetime) -> dict[str, int]:
    """Load every persona; safe to run again."""
    root = settings.sample_data_dir
    personas = json.loads((root / "personas.json").read_text())
    loaded = load_people(session, personas, now)
    sources = {s["id"]: s for s in personas.get("sources", [])}
    counts: dict[str, int] = {}
    for handle, patient in loaded["patients"].items():
        author = _team_clinician(session, patient)
        load_plan(session, patient, root / "plans" / f"{handle}.json", author, now)
        counts[handle] = load_readings(
            session, settings, patient, root / "readings" / f"{handle}.csv", sources, now
        )
        load_goals(session, patient, root / "goals" / f"{handle}.json", author, now)
        load_story(session, patient, root / "stories" / f"{handle}.json", now)
        load_activities(
            session, patient, root / "activities" / f"{handle}.json", loaded["users"], now
        )
        if counts[handle]:
            audit.record(
                session,
                audit.AuditEntry(
                    occurred_at=now,
                    actor_id=None,
                    actor_handle="system:seed",
                    actor_role="system",
                    relation="system",
                    action="write_readings",
                    resource="selfcare seed",
                    patient_ids=(patient.id,),
                ),
            )
    return counts
