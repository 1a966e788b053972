"""Telling the patient what happened to their consent ("Maria kan nu se dina värden")."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from app.auth.models import ProxyGrant, Scope, User
from app.patients.models import Patient
from app.push import repository as push_repository
from app.push import service as push

ACCEPTED, CONFIRMED, CHANGED, REVOKED, REPRESENTATIVE = (
    "accepted", "confirmed", "changed", "revoked", "representative",
)  # fmt: skip

NOTICE_TTL_SECONDS = 7 * 24 * 3600

_TEXTS: dict[str, dict[str, str]] = {
    ACCEPTED: {
        "sv": "{name} har tagit emot din inbjudan. Bekräfta i appen om det stämmer.",
        "en": "{name} has accepted your invitation. Confirm it in the app if that is right.",
    },
    CONFIRMED: {
        "sv": "{name} är nu ditt ombud.",
        "en": "{name} is now your proxy.",
    },
    "confirmed_read": {
        "sv": "{name} kan nu se dina värden.",
        "en": "{name} can now see your values.",
    },
    CHANGED: {
        "sv": "Det {name} får göra för dig har ändrats.",
        "en": "What {name} may do for you has changed.",
    },
    REVOKED: {
        "sv": "{name} är inte längre ditt ombud.",
        "en": "{name} is no longer your proxy.",
    },
    REPRESENTATIVE: {
        "sv": "{name} är registrerad som din företrädare (god man eller förvaltare).",
        "en": "{name} is registered as your legal representative.",
    },
}


def notice_text(event: str, grant: ProxyGrant, grantee_name: str, lang: str) -> str:
    """The sentence the patient reads about a change to a grant, in their language."""
    key = "confirmed_read" if event == CONFIRMED and Scope.READ in grant.scopes else event
    texts = _TEXTS[key]
    return texts.get(lang, texts["sv"]).format(name=grantee_name)


def tell_patient(
    session: Session, patient: Patient, grant: ProxyGrant, event: str, now: datetime
) -> int:
    """Push the notice to the patient's own browsers and phones; how many pushes were queued."""
    owner = session.get(User, patient.user_id) if patient.user_id else None
    grantee = session.get(User, grant.grantee_id)
    if owner is None or not owner.active or grantee is None:
        return 0
    title = notice_text(event, grant, grantee.display_name, push.language_of(owner))
    count = 0
    for subscription in push_repository.active_subscriptions(session, owner.id):
        push.enqueue(
            session,
            subscription=subscription,
            patient_id=patient.id,
            kind="consent",
            payload={
                "title": title,
                "grant_id": grant.id,
                "patient_id": patient.id,
                "url": "/mina/ombud",
            },  # fmt: skip
            urgency="normal",
            ttl_seconds=NOTICE_TTL_SECONDS,
            topic_=push.topic("consent", grant.id),
            now=now,
        )
        count += 1
    return count
