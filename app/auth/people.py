"""People named in answers: who did it, by name and care unit, never a bare id.

An answer that names a person (who acknowledged a flag, who wrote a note or a message, who read
the record) gives ``{"id", "display_name", "role", "care_unit"}``. The care unit is the one the
person acted from, stored with what they did (it can change later); None for a patient or a
proxy. Lists look their people up in one query (``people``), not one per row.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from pydantic import BaseModel
from sqlalchemy.orm import Session

from app.auth import repository
from app.auth.models import User

Person = dict[str, Any]


def users_by_id(session: Session, user_ids: Collection[str | None]) -> dict[str, User]:
    """The users with these ids, in one query; unknown ids are left out."""
    wanted = {i for i in user_ids if i}
    if not wanted:
        return {}
    return repository.users_by_id(session, wanted)


def person_of(
    user_id: str | None, care_unit: str | None, users: Mapping[str, User]
) -> Person | None:
    """The named form of a user already looked up; None when there is no one to name."""
    if user_id is None:
        return None
    user = users.get(user_id)
    return {
        "id": user_id,
        "display_name": user.display_name if user is not None else None,
        "role": user.role if user is not None else None,
        "care_unit": care_unit,
    }


def person(session: Session, user_id: str | None, care_unit: str | None) -> Person | None:
    """The named form of one user, acting from ``care_unit`` (a name, or None)."""
    return person_of(user_id, care_unit, users_by_id(session, [user_id]))


class PersonOut(BaseModel):
    """A person named in an answer."""

    id: str
    display_name: str | None
    role: str | None
    care_unit: str | None
