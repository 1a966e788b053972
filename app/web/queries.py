"""Small read-only lookups the worklist shows beside the API's flag rows, one query each.

The API's worklist row has no care unit and no last upload yet; these add them for the
patients already on the page (the policy has decided who those are).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.auth.policy import Actor
from app.patients.models import CareTeam, CareUnit, TeamMember, TeamPatient
from app.readings.models import Reading


def care_units(session: Session, actor: Actor, patient_ids: Collection[str]) -> dict[str, str]:
    """The care units through which the clinician treats each patient ("A, B" when several)."""
    if not patient_ids:
        return {}
    rows = session.execute(
        select(TeamPatient.patient_id, CareUnit.name)
        .join(CareTeam, CareTeam.id == TeamPatient.team_id)
        .join(CareUnit, CareUnit.id == CareTeam.care_unit_id)
        .join(TeamMember, TeamMember.team_id == CareTeam.id)
        .where(TeamMember.user_id == actor.id, TeamPatient.patient_id.in_(list(patient_ids)))
        .order_by(CareUnit.name)
    ).all()
    units: dict[str, list[str]] = {}
    for patient_id, name in rows:
        if name not in units.setdefault(patient_id, []):
            units[patient_id].append(name)
    return {pid: ", ".join(names) for pid, names in units.items()}


def team_patient_ids(session: Session, team_id: str) -> set[str]:
    """The patients enrolled with one team."""
    return set(
        session.scalars(select(TeamPatient.patient_id).where(TeamPatient.team_id == team_id))
    )


def last_uploads(session: Session, patient_ids: Collection[str]) -> dict[str, datetime]:
    """When each patient's latest reading arrived."""
    if not patient_ids:
        return {}
    rows = session.execute(
        select(Reading.patient_id, func.max(Reading.received_at))
        .where(Reading.patient_id.in_(list(patient_ids)))
        .group_by(Reading.patient_id)
    ).all()
    return {pid: at for pid, at in rows if at is not None}
