"""The consent API's bodies and answers (DESIGN §4.6)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from app.auth.models import Scope
from app.auth.people import PersonOut
from app.bounds import BoundedTime
from rules.text import MultiLine, SingleLine


def _distinct(scopes: list[Scope]) -> list[Scope]:
    if len(set(scopes)) != len(scopes):
        raise ValueError("each scope at most once")
    return sorted(scopes)


Scopes = Annotated[list[Scope], Field(min_length=1, max_length=len(Scope)),
                   AfterValidator(_distinct)]  # fmt: skip


class _Period(BaseModel):
    """A grant's period: ``valid_from`` inclusive, ``valid_to`` exclusive (none: until revoked)."""

    model_config = ConfigDict(extra="forbid")

    valid_from: BoundedTime | None = None
    valid_to: BoundedTime | None = None

    @model_validator(mode="after")
    def _ordered(self) -> _Period:
        if self.valid_from and self.valid_to and self.valid_to <= self.valid_from:
            raise ValueError("valid_to must be after valid_from")
        return self


class InvitationIn(_Period):
    """What the patient offers: scopes and a period (valid_from defaults to now)."""

    scopes: Scopes


class InvitationOut(BaseModel):
    """The one-time code to give the relative; it is shown once and stored only hashed."""

    id: str
    code: str
    expires_at: datetime
    scopes: list[str]
    valid_from: datetime
    valid_to: datetime | None


class AcceptIn(BaseModel):
    """The code the relative was given (dashes, spaces and case do not matter)."""

    model_config = ConfigDict(extra="forbid")

    code: SingleLine = Field(min_length=1, max_length=100)


class GrantChangeIn(BaseModel):
    """New scopes or a new end; ``valid_to: null`` means until revoked (a widening)."""

    model_config = ConfigDict(extra="forbid")

    scopes: Scopes | None = None
    valid_to: BoundedTime | None = None


class RepresentativeIn(_Period):
    """A legal representative (god man, förvaltare) registered by the care team."""

    grantee_id: SingleLine = Field(min_length=1, max_length=36)
    scopes: Scopes
    basis: Literal["legal_representative"]
    basis_note: MultiLine = Field(min_length=1, max_length=2000)


class GrantPatientOut(BaseModel):
    """The patient a grant is about."""

    id: str
    display_name: str


class GrantOut(BaseModel):
    """A grant as the API shows it; ``status`` is ``expired`` once ``valid_to`` has passed."""

    id: str
    patient_id: str
    patient: GrantPatientOut
    grantee: PersonOut
    scopes: list[str]
    valid_from: datetime
    valid_to: datetime | None
    status: Literal["pending", "active", "expired", "revoked"]
    in_force: bool
    basis: str
    basis_note: str | None
    created_at: datetime
    created_by: PersonOut | None
    accepted_at: datetime | None
    confirmed_at: datetime | None
    revoked_at: datetime | None
    revoked_by: PersonOut | None
    replaced_by: str | None


class GrantListOut(BaseModel):
    """The grants the caller may see."""

    items: list[GrantOut]
