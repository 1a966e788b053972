"""HTTP for the patient's access log."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from app.audit import repository as audit_repository
from app.audit.schemas import AccessLogOut
from app.auth import people
from app.bounds import MAX_DB_INT
from app.deps import AccessLogAccess, SessionDep

router = APIRouter(tags=["audit"])


@router.get(
    "/v1/patients/{pid}/access-log",
    response_model=AccessLogOut,
    summary="Who read or changed the patient's data",
)
def access_log(
    access: AccessLogAccess,
    session: SessionDep,
    before: Annotated[int | None, Query(ge=1, le=MAX_DB_INT)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """The patient's access log, newest first; ``before`` pages back by sequence number."""
    rows = audit_repository.access_log(
        session, access.patient.id, limit=limit + 1, before_seq=before
    )
    page = rows[:limit]
    names = people.users_by_id(session, [e.actor_id for e in page])
    return {
        "items": [
            {
                "seq": e.seq,
                "at": e.occurred_at.isoformat(),
                # The old fields stay; the name and care unit say who it was in words.
                "actor": {
                    "id": e.actor_id,
                    "handle": e.actor_handle,
                    "role": e.actor_role,
                    "display_name": names[e.actor_id].display_name if e.actor_id in names else None,
                    "care_unit": e.care_unit_name,
                },
                "relation": e.relation,
                "care_unit": {"id": e.care_unit_id, "name": e.care_unit_name}
                if e.care_unit_id
                else None,
                "action": e.action,
                "resource": e.resource,
                "outcome": e.outcome,
            }
            for e in page
        ],
        "next_before": page[-1].seq if len(rows) > limit else None,
    }
