"""Requests and answers of the directory (``/v1/admin/…``) and of team requests."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, StringConstraints

from app.auth.people import PersonOut
from app.directory.models import MAX_BASIS_NOTE
from rules.text import MultiLine, SingleLine

Name = Annotated[SingleLine, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Id = Annotated[str, StringConstraints(min_length=1, max_length=36)]
# A handle is typed into URLs and logs: lower-case letters, digits, dot, dash, underscore.
Handle = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{1,63}$")]
Phone = Annotated[str, StringConstraints(pattern=r"^[0-9 +()-]{0,50}$")]
Subject = Annotated[
    SingleLine, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)
]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OrganisationIn(_In):
    """A new organisation (huvudman)."""

    name: Name
    kind: Literal["region", "municipality"]


class OrganisationOut(BaseModel):
    """An organisation."""

    id: str
    name: str
    kind: str


class OrganisationListOut(BaseModel):
    """Every organisation, by name."""

    items: list[OrganisationOut]


class CareUnitIn(_In):
    """A new care unit of an organisation."""

    organisation_id: Id
    name: Name


class CareUnitOut(BaseModel):
    """A care unit and its organisation."""

    id: str
    name: str
    organisation: OrganisationOut


class CareUnitListOut(BaseModel):
    """Every care unit, by name."""

    items: list[CareUnitOut]


class TeamIn(_In):
    """A new care team of a care unit; ``phone`` is whom advice tells the patient to call."""

    care_unit_id: Id
    name: Name
    phone: Phone = ""


class UnitRefOut(BaseModel):
    """A care unit named in an answer."""

    id: str
    name: str


class TeamOut(BaseModel):
    """A care team, its care unit and its members' ids."""

    id: str
    name: str
    phone: str
    care_unit: UnitRefOut
    member_ids: list[str]


class TeamListOut(BaseModel):
    """Every care team, by name."""

    items: list[TeamOut]


class ClinicianIn(_In):
    """A new clinician; their login is linked later (or here, with ``subject``)."""

    handle: Handle
    display_name: Name
    title: Annotated[SingleLine, StringConstraints(strip_whitespace=True, max_length=100)] = ""
    language: Literal["sv", "en"] = "sv"
    subject: Subject | None = None


class UserOut(BaseModel):
    """A user as the directory shows them; ``subject`` is the linked login (OIDC ``sub``)."""

    id: str
    handle: str
    display_name: str
    role: str
    title: str
    language: str
    subject: str | None
    active: bool
    team_ids: list[str]


class UserListOut(BaseModel):
    """Every clinician, by name."""

    items: list[UserOut]


class MembershipOut(BaseModel):
    """A clinician's membership of a team."""

    team_id: str
    user_id: str
    member: bool
    since: datetime | None


class LoginIn(_In):
    """The login to link: the issuer's ``sub`` for this person."""

    subject: Subject


class TeamRefOut(BaseModel):
    """The team a request is from, and its care unit."""

    id: str
    name: str
    care_unit: UnitRefOut


class TeamRequestOut(BaseModel):
    """A care team's request to take part in the patient's care."""

    id: str
    team: TeamRefOut
    status: Literal["pending", "accepted", "declined", "confirmed"]
    requested_by: PersonOut | None
    requested_at: datetime
    decided_by: PersonOut | None = None
    decided_at: datetime | None = None


class TeamRequestAdminOut(TeamRequestOut):
    """A team request as operations see it: whose it is, and why it was confirmed."""

    patient_id: str
    basis_note: str | None = None


class TeamRequestListOut(BaseModel):
    """The patient's team requests, newest first."""

    items: list[TeamRequestOut]


class TeamRequestAdminListOut(BaseModel):
    """Pending team requests, oldest first."""

    items: list[TeamRequestAdminOut]


class EnrolmentRequestOut(BaseModel):
    """The 202 of ``POST /v1/patients`` when the patient is enrolled with another team."""

    enrolment_request: TeamRequestOut


class DecisionIn(_In):
    """The patient's answer to a team request."""

    decision: Literal["accept", "decline"]


class ConfirmIn(_In):
    """An administrator's confirmation, with the basis for it (why the patient did not decide)."""

    basis_note: Annotated[
        MultiLine, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_BASIS_NOTE)
    ]
