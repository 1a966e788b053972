"""The FHIR export: a patient's data, loaded through the domains' repositories, as a Bundle.

A page holds up to ``_count`` Observations in time order (keyset on time and id, so a reading
is on exactly one page however many there are); the first page also carries the Patient,
the Goals, a CarePlan per plan version, the Flags and a Communication per advice. ``since``
keeps what was recorded or changed after it (a reading received or entered in error, a goal
updated, a plan version written, a flag changed, advice given or withdrawn); the Patient is
always there, so every page names its subject.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from app.auth.policy import Access
from app.bounds import bounded_time
from app.errors import BadRequest
from app.findings import repository as findings_repository
from app.goals import repository as goals_repository
from app.interop import fhir
from app.plans import repository as plans_repository
from app.readings import repository as readings_repository

DEFAULT_COUNT = 500
MAX_COUNT = 5000
_EVER = datetime(1901, 1, 1, tzinfo=UTC)


def encode_cursor(time: datetime, reading_id: str) -> str:
    """The opaque position after a reading: its time and id."""
    raw = f"{time.astimezone(UTC).isoformat()}|{reading_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The position a cursor names; 400 for one this service did not write."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        time, reading_id = raw.split("|", 1)
        parsed = bounded_time(datetime.fromisoformat(time))
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise BadRequest("Invalid page cursor.") from exc
    if not reading_id or len(reading_id) > 36:
        raise BadRequest("Invalid page cursor.")
    return parsed, reading_id


def source_dicts(session: Session, source_ids: Collection[str]) -> dict[str, dict[str, Any]]:
    """The readings' sources by id, as the FHIR resources name them."""
    sources = readings_repository.sources_by_id(session, source_ids)
    return {
        sid: {
            "client_source_id": s.client_source_id,
            "kind": s.kind,
            "name": s.name,
            "version": s.version,
            "device": s.device,
        }
        for sid, s in sources.items()
    }


def _plan_resources(
    session: Session, patient_id: str, since: datetime | None
) -> list[dict[str, Any]]:
    versions = plans_repository.versions(session, patient_id)
    kept = {v.id for v in versions if since is None or v.created_at > since}
    return [r for r in fhir.care_plans(versions, patient_id) if r["id"] in kept]


def _goal_resources(
    session: Session, patient_id: str, since: datetime | None
) -> list[dict[str, Any]]:
    goals = [
        g
        for g in goals_repository.list_goals(session, patient_id)
        if since is None or g.updated_at > since
    ]
    milestones = goals_repository.milestones_of(session, [g.id for g in goals])
    return [fhir.goal(g, milestones[g.id], patient_id) for g in goals]


def export(
    session: Session,
    access: Access,
    *,
    since: datetime | None,
    count: int,
    cursor: str | None,
    lang: str,
    base: str,
    self_url: str,
    next_url: Callable[[str], str],
    now: datetime,
) -> dict[str, Any]:
    """One page of the patient's FHIR Bundle; ``next_url(cursor)`` links the next page."""
    patient = access.patient
    after = decode_cursor(cursor) if cursor else None
    rows = readings_repository.changed_page(
        session, patient.id, since=since, after=after, limit=count + 1
    )
    page = rows[:count]
    resources: list[dict[str, Any]] = [
        fhir.patient(patient, fhir.birth_date_of(patient.personnummer))
    ]
    if after is None:
        resources += _goal_resources(session, patient.id, since)
        resources += _plan_resources(session, patient.id, since)
        flags = findings_repository.flags_updated_since(
            session, patient.id, since if since is not None else _EVER
        )
        resources += [fhir.flag(f, patient.id, lang) for f in flags]
        advice = findings_repository.advice_changed_since(session, patient.id, since)
        resources += [fhir.communication(a, patient.id, lang) for a in advice]
    sources = source_dicts(session, {r["source_id"] for r in page})
    resources += [fhir.observation(r, patient.id, sources.get(r["source_id"])) for r in page]
    links = [("self", self_url)]
    if len(rows) > count:
        links.append(("next", next_url(encode_cursor(page[-1]["time"], page[-1]["id"]))))
    return fhir.bundle(resources, links, base, now)
