"""The proxies page (``/mina/ombud``): a patient's proxies, and whom a relative acts for.

Over the consent service and the same policy and audit as ``/v1/patients/{pid}/proxies``
(DESIGN §4.6). Whose page it is:

- a patient without ``?for=`` (or with their own id): their grants and legal representatives,
  inviting (the one-time code is shown once, in the answer to the form, never kept in the
  session cookie), confirming, narrowing or widening, and revoking;
- ``?for=<patient id>`` of someone one acts for: one's own grant for that person (a proxy sees
  no other grant) and giving it up; a person one may not see is a missing page (404);
- everyone: the grants one holds (pending ones included, as ``GET /v1/me`` lists them) and the
  form for a code one was given.

An end day is inclusive and in the patient's time zone: "till och med 31 mars" ends the grant
at the midnight that starts 1 April there (``valid_to`` is exclusive).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from app.auth.models import GrantBasis, ProxyGrant, Scope
from app.auth.policy import Access, Action, Actor, Forbidden, Relation
from app.clock import utcnow
from app.consent import notices
from app.consent import service as consent_service
from app.consent.schemas import GrantChangeIn, InvitationIn
from app.deps import SessionDep, audit_access
from app.errors import AppError, Conflict, NotFound, Unprocessable
from app.patients.models import Patient
from app.web import mina_words, texts
from app.web.mina import PersonActor, _base, _choices, acting
from app.web.pages import CheckedForm, PageNotFound, WebSessionDep, lang_of, render, see_other
from app.web.patients import authorised_patient

router = APIRouter(include_in_schema=False)

SCOPES = tuple(str(s) for s in Scope)
PAGE = "/mina/ombud"
GRANTS_SHOWN = 50  # newest first; ended ones stay as a history


def _scopes_of(form: dict[str, str], prefix: str) -> list[Scope]:
    """The checked scopes of a form (one field per scope: a form is read as a dict)."""
    return [Scope(s) for s in SCOPES if form.get(f"{prefix}scope-{s}")]


def _end_of(raw: str, zone: ZoneInfo) -> datetime | None:
    """The exclusive end of an inclusive last day in the patient's time zone; ValueError."""
    raw = raw.strip()
    if not raw:
        return None
    day = date.fromisoformat(raw)
    return datetime.combine(day + timedelta(days=1), time(0), zone)


def _last_day(valid_to: datetime | None, zone: ZoneInfo) -> date | None:
    """The inclusive last day shown for an exclusive end."""
    if valid_to is None:
        return None
    return (valid_to.astimezone(zone) - timedelta(microseconds=1)).date()


def _held(session: Session, actor: Actor, now: datetime) -> list[dict[str, Any]]:
    """The grants one holds as a proxy (pending ones included), by the patient's name."""
    grants = consent_service.grants_of_user(session, actor.user, now)
    held = [g for g in grants if (g["grantee"] or {}).get("id") == actor.id]
    return sorted(held, key=lambda g: g["patient"]["display_name"])


def _page(
    request: Request,
    session: Session,
    actor: Actor,
    *,
    invitation: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    """The page for whoever asks: the patient's own grants, one's grant for someone, or both."""
    lang = lang_of(request)
    now = utcnow()
    choices = _choices(session, actor)
    own = next((c for c in choices if c["relation"] == Relation.SELF), None)
    wanted = request.query_params.get("for") or (own["id"] if own else None)
    access = None
    if wanted:
        access = authorised_patient(session, actor, wanted, Action.READ_GRANTS, "GET /mina/ombud")
    if access is not None:
        context = _base(request, access, actor)
        zone = ZoneInfo(access.patient.timezone)
        grants = consent_service.list_grants(session, access, now)
    else:
        context = {"user": actor.user, "t": mina_words.for_lang(lang), "patient": None,
                   "own": False, "for_query": "", "mina": True}  # fmt: skip
        zone = texts.TIME_ZONE
        grants = []
    context |= {
        "grants": [g for g in grants if g["basis"] == GrantBasis.CONSENT][:GRANTS_SHOWN],
        "representatives": [
            g
            for g in grants
            if g["basis"] == GrantBasis.LEGAL_REPRESENTATIVE and g["status"] != "revoked"
        ],  # fmt: skip
        "held": _held(session, actor, now),
        "proxy_view": access is not None and access.relation == Relation.PROXY,
        "choices": choices,
        "several": len(choices) > 1,
        "current": access.patient.id if access is not None else "",
        "scopes": SCOPES,
        "first_day": lambda value: texts.local_date(value.astimezone(zone).date(), lang),
        "day": lambda value: texts.local_date(_last_day(value, zone), lang),
        "day_iso": lambda value: d.isoformat() if (d := _last_day(value, zone)) else "",
        "invitation": invitation,
        "errors": errors or {},
        "values": values or {},
    }
    response = render(request, "mina_proxies.html", context, status_code=status_code)
    if invitation is not None:
        response.headers["Cache-Control"] = "no-store"  # the code is shown once
    return response


@router.get(PAGE)
def proxies_page(request: Request, actor: PersonActor, session: SessionDep) -> Response:
    """One's proxies (a patient), one's grant for the chosen person, whom one acts for."""
    return _page(request, session, actor)


def _after(access: Access) -> str:
    return f"{PAGE}{'' if access.relation == Relation.SELF else f'?for={access.patient.id}'}"


@router.post(f"{PAGE}/inbjudan")
def invite(
    form: CheckedForm, request: Request, actor: PersonActor, session: SessionDep
) -> Response:
    """Make an invitation; the answer shows its one-time code once (not kept anywhere)."""
    t = mina_words.for_lang(lang_of(request))
    access = acting(request, session, actor, Action.MANAGE_CONSENT, f"POST {PAGE}/inbjudan")
    if access is None:
        raise PageNotFound("Choose whose data first.")
    errors: dict[str, str] = {}
    scopes = _scopes_of(form, "")
    if not scopes:
        errors["scope-read"] = t("error_no_scope")
    valid_to = None
    try:
        valid_to = _end_of(form.get("valid_to", ""), ZoneInfo(access.patient.timezone))
    except ValueError:
        errors["valid_to"] = t("error_day")
    if not errors:
        try:
            body = InvitationIn(scopes=scopes, valid_to=valid_to)
            invitation = consent_service.invite(session, access, body, utcnow())
        except Unprocessable:
            errors["valid_to"] = t("error_day_past")
        else:
            return _page(request, session, actor, invitation=invitation, status_code=201)
    return _page(request, session, actor, errors=errors, values=dict(form), status_code=422)


@router.post(f"{PAGE}/kod")
def accept(
    form: CheckedForm, request: Request, actor: PersonActor, session: SessionDep, ws: WebSessionDep
) -> Response:
    """Use a code one was given: the grant waits for the patient's yes (as the API's accept)."""
    t = mina_words.for_lang(lang_of(request))
    probing = request.app.state.probing
    now = utcnow()
    try:
        probing.before_attempt("invitation", actor.id)
        try:
            invitation = consent_service.find_invitation(session, form.get("code", ""), now)
            patient = session.get(Patient, invitation.patient_id)
            assert patient is not None
            consent_service.check_invitee(invitation, patient, actor.user)
        except AppError as exc:
            probing.attempt_failed("invitation", actor.id, exc)
            raise
    except NotFound:
        error = t("code_wrong")
    except Unprocessable:
        error = t("code_own")
    except AppError as exc:
        if exc.status != 429:
            raise
        error = t("code_too_many")
    else:
        # As the API: the code is the authority, logged as an access to the patient's consent.
        invitee = Access(actor, patient, Relation.PROXY, frozenset())
        audit_access(session, invitee, Action.MANAGE_CONSENT, f"POST {PAGE}/kod",
                     relation="invitee")  # fmt: skip
        consent_service.accept(session, invitation, actor.user, now)
        ws.set_flash(t("code_accepted").format(name=patient.display_name))
        return see_other(PAGE)
    values = {"code": form.get("code", "")}
    return _page(request, session, actor, errors={"code": error}, values=values, status_code=422)


def _grant(
    request: Request, session: Session, actor: Actor, gid: str, action: Action, what: str
) -> tuple[Access, ProxyGrant]:
    access = acting(request, session, actor, action, f"POST {PAGE}/{{gid}}/{what}")
    if access is None:
        raise PageNotFound("Choose whose data first.")
    try:
        return access, consent_service.get_grant(session, access, gid)
    except NotFound as exc:
        raise PageNotFound("No such grant.") from exc


def _grantee_name(session: Session, grant: ProxyGrant) -> str:
    data = consent_service.grant_dict(session, grant, utcnow())
    return str((data["grantee"] or {}).get("display_name") or "")


@router.post(PAGE + "/{gid}/godkann")
def confirm(
    gid: str,
    form: CheckedForm,
    request: Request,
    actor: PersonActor,
    session: SessionDep,
    ws: WebSessionDep,
) -> Response:
    """Say yes to a pending grant: the relative may act from its first day."""
    lang = lang_of(request)
    access, grant = _grant(request, session, actor, gid, Action.MANAGE_CONSENT, "godkann")
    try:
        consent_service.confirm(session, access, grant, utcnow())
    except Conflict:
        ws.set_flash(mina_words.mina_word(lang, "error_ended"))
    except Forbidden:
        ws.set_flash(mina_words.mina_word(lang, "error_team_only"))
    else:
        name = _grantee_name(session, grant)
        ws.set_flash(notices.notice_text(notices.CONFIRMED, grant, name, lang))
    return see_other(_after(access))


@router.post(PAGE + "/{gid}/andra")
def change(
    gid: str,
    form: CheckedForm,
    request: Request,
    actor: PersonActor,
    session: SessionDep,
    ws: WebSessionDep,
) -> Response:
    """New scopes or an earlier last day (a proxy may only narrow their own grant)."""
    lang = lang_of(request)
    t = mina_words.for_lang(lang)
    access, grant = _grant(request, session, actor, gid, Action.READ_GRANTS, "andra")
    prefix = f"{gid}-"
    errors: dict[str, str] = {}
    changes: dict[str, Any] = {"scopes": _scopes_of(form, prefix)}
    if not changes["scopes"]:
        errors[f"{prefix}scope-read"] = t("error_no_scope")
    try:
        end = _end_of(form.get(f"{prefix}valid_to", ""), ZoneInfo(access.patient.timezone))
    except ValueError:
        errors[f"{prefix}valid_to"] = t("error_day")
    else:
        if end is not None:  # an empty day keeps the end as it is
            changes["valid_to"] = end
    if not errors:
        try:
            body = GrantChangeIn.model_validate(changes)
            consent_service.change(session, access, grant, body, utcnow())
        except Forbidden:
            errors[f"{prefix}scope-read"] = t("error_wider")
        except Conflict:
            errors[f"{prefix}scope-read"] = t("error_ended")
        except Unprocessable:
            errors[f"{prefix}valid_to"] = t("error_day_past")
        else:
            name = _grantee_name(session, grant)
            ws.set_flash(notices.notice_text(notices.CHANGED, grant, name, lang))
            return see_other(_after(access))
    return _page(request, session, actor, errors=errors, values=dict(form), status_code=422)


@router.post(PAGE + "/{gid}/aterkalla")
def revoke(
    gid: str,
    form: CheckedForm,
    request: Request,
    actor: PersonActor,
    session: SessionDep,
    ws: WebSessionDep,
) -> Response:
    """End a grant now: the patient withdraws it, or the relative gives it up."""
    lang = lang_of(request)
    access, grant = _grant(request, session, actor, gid, Action.READ_GRANTS, "aterkalla")
    try:
        consent_service.revoke(session, access, grant, utcnow())
    except (Conflict, Forbidden) as exc:
        key = "error_ended" if isinstance(exc, Conflict) else "error_team_only"
        ws.set_flash(mina_words.mina_word(lang, key))
        return see_other(_after(access))
    if access.relation == Relation.SELF:
        name = _grantee_name(session, grant)
        ws.set_flash(notices.notice_text(notices.REVOKED, grant, name, lang))
        return see_other(PAGE)
    gone = mina_words.mina_word(lang, "gave_up").format(name=access.patient.display_name)
    ws.set_flash(gone)
    return see_other(PAGE)  # the grant is gone: back to one's own page
