"""HTTP for the patient's message thread."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from app.clock import utcnow
from app.deps import MessageAccess, SessionDep
from app.dialogue import service as dialogue_service
from app.dialogue.schemas import MessageIn, MessageOut, ThreadOut

router = APIRouter(tags=["dialogue"])


@router.get(
    "/v1/patients/{pid}/messages",
    response_model=ThreadOut,
    summary="The patient's message thread (marks the other side's messages read)",
)
def read_thread(
    access: MessageAccess,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """The latest messages, oldest first; opening the thread marks the other side's read.

    A clinician opening it marks the patient side's messages read; the patient, or a proxy
    with ``message``, marks the care team's. ``unread`` is how many this opening marked.
    """
    messages, unread = dialogue_service.open_thread(session, access, limit=limit, now=utcnow())
    return {"items": dialogue_service.message_dicts(session, messages), "unread": unread}


@router.post(
    "/v1/patients/{pid}/messages",
    status_code=201,
    response_model=MessageOut,
    summary="Write to the patient's thread (the patient side or the care team)",
)
def post_message(access: MessageAccess, session: SessionDep, body: MessageIn) -> dict[str, Any]:
    """Add a message; the other side is told by push, without the text."""
    message = dialogue_service.post_message(session, access, body=body.body, now=utcnow())
    return dialogue_service.message_dicts(session, [message])[0]
