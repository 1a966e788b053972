"""Patient bodies and answers: enrolment, the patient list, one patient.

Times are the ISO strings the service writes (``isoformat()``, offset ``+00:00``).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from app.auth.people import PersonOut
from app.plans.schemas import CareContactTeamOut
from rules.engine import DEFAULT_TZ
from rules.text import SingleLine


class EnrolPatientIn(BaseModel):
    """The body of an enrolment."""

    model_config = ConfigDict(extra="forbid")

    personnummer: SingleLine = Field(min_length=10, max_length=13)
    display_name: SingleLine = Field(min_length=1, max_length=200)
    timezone: SingleLine = Field(default=DEFAULT_TZ, max_length=64)
    language: str = Field(default="sv", pattern="^(sv|en)$")
    team_id: SingleLine = Field(min_length=1, max_length=36)


class PatientOut(BaseModel):
    """A patient's registration data."""

    id: str
    display_name: str
    personnummer: str
    timezone: str
    language: str
    created_at: str


class PatientSummaryOut(BaseModel):
    """The patient as a list row names them, with their unread messages (null: not yours)."""

    id: str
    display_name: str
    unread_messages: int | None


class PatientListItemOut(PatientOut):
    """A row of the patient list."""

    patient: PatientSummaryOut


class PatientListOut(BaseModel):
    """A page of patients, by name; ``next_cursor`` continues it."""

    items: list[PatientListItemOut]
    next_cursor: str | None


class NamedCareContactOut(BaseModel):
    """The patient's named care contact (fast vårdkontakt), ``set_at`` as an ISO string."""

    clinician: PersonOut | None
    title: str
    team: CareContactTeamOut
    phone: str
    hours: str
    set_at: str
    set_by: PersonOut | None


class PatientDetailOut(PatientOut):
    """One patient: registration data and the named care contact, if one is set."""

    care_contact: NamedCareContactOut | None
