"""The patient's and relative's pages: overview, entering a value by hand, who has read.

Over the same services, policy and audit as the API (DESIGN §4.8): a relative sees what
their grant's scopes allow and nothing else; an id the person may not see answers 404. A
value entered by hand goes through the sync ingest (source kind ``manual``), exactly as an
app's would, and ``POST /mina/sync`` takes the sync envelope with the session cookie and the
CSRF header and answers as ``POST /v1/patients/{pid}/sync`` does.

Whose data a page shows: ``?for=<patient id>``; without it one's own (a patient), or the only
person one acts for; a relative with several chooses on ``/mina``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session

from app.audit import repository as audit_repository
from app.auth import people
from app.auth.models import Role, Scope
from app.auth.policy import Access, Action, Actor, Relation, advice_audience
from app.clock import utcnow
from app.deps import SessionDep, SettingsDep
from app.enrolment import service as patients_service
from app.findings import service as findings_service
from app.goals import service as goals_service
from app.headers import PAGE_CSP
from app.ingest import service as sync_service
from app.plans import contact
from app.plans import repository as plans_repository
from app.plans import service as plans_service
from app.web import mina_words, patient_data, timeline
from app.web.pages import (
    CheckedForm,
    LoginRequired,
    PageForbidden,
    PageNotFound,
    WebSessionDep,
    csrf_checked,
    lang_of,
    render,
    see_other,
    signed_in_user,
)
from app.web.patients import authorised_patient
from rules.catalogue import display_unit, spec_for
from rules.language import load_library
from sync.wire import SourceIn, SourceKind, SyncRequest

router = APIRouter(include_in_schema=False)

LATEST_DAYS = 90  # the overview's latest values: the last reading of each type in this time
ADVICE_SHOWN = 10
ACCESS_ROWS = 500
MANUAL_SOURCE = "mina-manual"  # the manual source of the pages (client ids are unique in it)
URGENT = ("urgent", "high")


def person_actor(request: Request, session: SessionDep) -> Actor:
    """The signed-in patient or relative; others are sent to log in or to their own pages."""
    user = signed_in_user(request, session)
    if user is None:
        raise LoginRequired(str(request.url.path))
    if user.role == Role.CLINICIAN:
        raise PageForbidden(mina_words.mina_word(lang_of(request), "patients_only"))
    return Actor(user=user)


PersonActor = Annotated[Actor, Depends(person_actor)]


def _choices(session: Session, actor: Actor) -> list[dict[str, Any]]:
    """The people one may act for (oneself first), as ``GET /v1/me`` lists them."""
    found = patients_service.me(session, actor, utcnow())["patients"]
    return sorted(found, key=lambda p: (p["relation"] != Relation.SELF, p["display_name"]))


def acting(
    request: Request, session: Session, actor: Actor, action: Action, resource: str
) -> Access | None:
    """Whose data the page is for, authorised and audited; None: the person must choose."""
    wanted = request.query_params.get("for")
    if not wanted:
        choices = _choices(session, actor)
        own = [c for c in choices if c["relation"] == Relation.SELF]
        if own or len(choices) == 1:
            wanted = (own or choices)[0]["id"]
        else:
            return None
    return authorised_patient(session, actor, wanted, action, resource)


def _for(access: Access) -> str:
    """The query that keeps a relative on the person they act for."""
    return "" if access.relation == Relation.SELF else f"?for={access.patient.id}"


def _base(request: Request, access: Access, actor: Actor) -> dict[str, Any]:
    lang = lang_of(request)
    return {
        "user": actor.user,
        "t": mina_words.for_lang(lang),
        "patient": access.patient,
        "own": access.relation == Relation.SELF,
        "for_query": _for(access),
        "mina": True,  # the app's manifest, script and the offline queue's status
        "may_message": access.relation == Relation.SELF or Scope.MESSAGE in access.scopes,
        "may_enter": access.relation == Relation.SELF or Scope.ENTER_READINGS in access.scopes,
    }


@dataclass(frozen=True)
class Latest:
    """A type's latest reading with the plan's limits in plain words."""

    type: str
    unit: str
    reading: dict[str, Any]
    limits: list[timeline.Limit]
    outside: bool


def _outside(limit: timeline.Limit, values: dict[str, Any]) -> bool:
    value = values.get(limit.component)
    if value is None:
        return False
    number = float(value)
    bound = float(limit.value)
    return {
        "lt": number < bound,
        "le": number <= bound,
        "gt": number > bound,
        "ge": number >= bound,
    }[limit.op]


def latest_values(session: Session, access: Access, lang: str, now: datetime) -> list[Latest]:
    """Each type's latest reading of the last 90 days against the plan's own limits."""
    plan = plans_service.current_spec(session, access.patient.id)
    rows = patient_data.window_readings(
        session, access.patient.id, now - timedelta(days=LATEST_DAYS), now
    )
    by_type: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_type.setdefault(str(row["type"]), []).append(dict(row))
    chart_words = {key: mina_words.mina_word(lang, "limit_" + key) for key in timeline.LIMIT_WORDS}
    found = []
    for type_ in timeline.order_types(by_type):
        mine = by_type[type_]
        unit = str(mine[-1]["unit"])
        limits = timeline.limits_for(type_, unit, plan, load_library(), mine, lang, chart_words)
        limits = [li for li in limits if not li.note]  # single-reading limits only: plain words
        latest = mine[-1]
        outside = any(_outside(li, latest["values"]) for li in limits)
        found.append(Latest(type_, display_unit(unit), latest, limits, outside))
    return found


@router.get("/mina")
def overview(request: Request, actor: PersonActor, session: SessionDep) -> Response:
    """One's own (or the chosen person's) latest values, advice, goals, agreements, whom to call."""
    lang = lang_of(request)
    access = acting(request, session, actor, Action.READ, "GET /mina")
    if access is None:
        context = {"user": actor.user, "t": mina_words.for_lang(lang),
                   "choices": _choices(session, actor)}  # fmt: skip
        return render(request, "mina_choose.html", context)
    now = utcnow()
    patient = access.patient
    advice = findings_service.list_advice(session, patient.id, limit=ADVICE_SHOWN)
    audience = advice_audience(access)
    shown = [findings_service.advice_dict(a, lang, audience) for a in advice]
    shown.sort(key=lambda a: a["priority"] not in URGENT)  # urgent first, then newest
    plan = plans_service.current(session, patient.id)
    plan_dict = plans_service.to_dicts(session, [plan])[0] if plan is not None else None
    context = _base(request, access, actor) | {
        "latest": latest_values(session, access, lang, now),
        "val": lambda value, type_: timeline.format_value(value, type_, lang),
        "advice": shown,
        "urgent": URGENT,
        "goals": goals_service.goals_with_milestones(session, patient.id),
        "agreements": plan_dict["agreements"] if plan_dict else [],
        "contact": contact.contact_dict(
            session, plans_repository.current_contact(session, patient.id)
        ),
        "choices": (choices := _choices(session, actor)),
        "several": len(choices) > 1,
    }
    return render(request, "mina.html", context)


# --- entering a value by hand ------------------------------------------------------------


COMMON_TYPES = ("weight", "blood_pressure", "pulse", "spo2", "temperature", "glucose")


def entry_types(session: Session, patient_id: str) -> list[str]:
    """The plan's types: the scheduled ones first, then those its rules watch (never CGM).

    Without a plan, the common home measurements.
    """
    plan = plans_service.current_spec(session, patient_id)
    if plan is None:
        return list(COMMON_TYPES)
    library = load_library()
    rules = [rule for r in plan.rules if (rule := library.get(r.rule)) is not None]
    watched = [str(t) for rule in rules if not rule.time_based for t in rule.types]
    found = [e.type for e in plan.schedule] + timeline.order_types(watched)
    return [t for t in dict.fromkeys(found) if t != "cgm_glucose"] or list(COMMON_TYPES)


def _local_now(access: Access, now: datetime) -> str:
    zone = ZoneInfo(access.patient.timezone)
    return now.astimezone(zone).replace(second=0, microsecond=0, tzinfo=None).isoformat()[:16]


def _offset(access: Access, now: datetime) -> str:
    """The patient's UTC offset now (``+01:00``): an offline entry's local time is in it."""
    text = now.astimezone(ZoneInfo(access.patient.timezone)).strftime("%z")
    return f"{text[:3]}:{text[3:]}"


def _entry_page(
    request: Request,
    session: Session,
    access: Access,
    actor: Actor,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    """The form for one type (``values["type"]``), or the choice of type when none is given."""
    types = entry_types(session, access.patient.id)
    chosen = values.get("type", "")
    spec = spec_for(chosen) if chosen in types else None
    context = _base(request, access, actor) | {
        "types": types,
        "type": chosen if spec is not None else "",
        "fields": [{"name": c, "id": f"{chosen}-{c}"} for c in spec.components] if spec else [],
        "unit": display_unit(spec.canonical_unit) if spec else "",
        "canonical_unit": spec.canonical_unit if spec else "",
        "components": ",".join(spec.components) if spec else "",
        "offset": _offset(access, utcnow()),
        "values": values,
        "errors": errors or {},
    }
    return render(request, "mina_entry.html", context, status_code=status_code)


@router.get("/mina/varden/ny")
def entry_form(request: Request, actor: PersonActor, session: SessionDep) -> Response:
    """What one has measured (a button per type of the plan), then its form."""
    access = acting(request, session, actor, Action.WRITE_READINGS, "GET /mina/varden/ny")
    if access is None:
        return see_other("/mina")
    chosen = request.query_params.get("type") or ""
    values = {"client_id": str(uuid.uuid4()), "time": _local_now(access, utcnow()), "type": chosen}
    return _entry_page(request, session, access, actor, values)


def _reading_of(form: dict[str, str], access: Access) -> tuple[dict[str, Any], dict[str, str]]:
    """The sync item of the form, and the problems that keep it from being one (by field)."""
    lang = "sv"
    type_ = form.get("type", "")
    spec = spec_for(type_)
    errors: dict[str, str] = {}
    if spec is None:
        return {}, {"type": mina_words.mina_word(lang, "enter_type")}
    values: dict[str, Decimal] = {}
    for component in spec.components:
        raw = form.get(f"{type_}-{component}", "").strip().replace(",", ".").replace(" ", "")
        try:
            number = Decimal(raw)
        except InvalidOperation:
            errors[f"{type_}-{component}"] = "number"
            continue
        if not number.is_finite():
            errors[f"{type_}-{component}"] = "number"
            continue
        values[component] = number
    try:
        local = datetime.fromisoformat(form.get("time", ""))
    except ValueError:
        errors["time"] = "time"
        local = None
    if errors or local is None:
        return {}, errors
    when = (
        local.replace(tzinfo=ZoneInfo(access.patient.timezone)) if local.tzinfo is None else local
    )
    item: dict[str, Any] = {
        "client_id": form.get("client_id") or str(uuid.uuid4()),
        "type": type_,
        "time": when.isoformat(),
        "unit": spec.canonical_unit,
        "value": values["value"] if spec.components == ("value",) else values,
    }
    return item, {}


def _problem_text(code: str, loc: str, lang: str, example: str) -> str:
    t = mina_words.for_lang(lang)
    if code in ("number", "invalid") and loc.startswith("value"):
        return t("enter_number").format(example=example)
    if code in ("implausible", "out_of_range"):
        return t("enter_error_range")
    if code in ("future_time", "time"):
        return (
            t("enter_error_time")
            if code == "future_time"
            else t("enter_number").format(example="2026-12-04 07:30")
        )
    return t("enter_error_other").format(message=code)


@router.post("/mina/varden/ny")
def enter(
    form: CheckedForm,
    request: Request,
    actor: PersonActor,
    session: SessionDep,
    settings: SettingsDep,
    ws: WebSessionDep,
) -> Response:
    """Save a value through the sync ingest (source ``manual``); show its advice at once."""
    lang = lang_of(request)
    t = mina_words.for_lang(lang)
    access = acting(request, session, actor, Action.WRITE_READINGS, "POST /mina/varden/ny")
    if access is None:
        return see_other("/mina")
    type_ = form.get("type", "")
    spec = spec_for(type_)
    example = "72,4" if type_ == "weight" else "120"
    item, problems = _reading_of(form, access)
    errors = {
        field: _problem_text(code, "value" if field != "time" else "time", lang, example)
        for field, code in problems.items()
    }
    if not errors:
        source = SourceIn(id=MANUAL_SOURCE, kind=SourceKind.manual, name="Mina sidor")
        envelope = SyncRequest(source=source, readings=[item])
        answer = sync_service.sync(session, settings, access, envelope, lang)
        result = answer["results"][0]
        if result.get("status") == "rejected":
            for problem in result.get("errors") or []:
                loc = str(problem["loc"])
                component = loc.split(".", 1)[1] if loc.startswith("value.") else "value"
                field = "time" if loc.startswith("time") else f"{type_}-{component}"
                if spec is not None and field.endswith("-value") and len(spec.components) > 1:
                    field = f"{type_}-{spec.components[0]}"
                errors[field] = _problem_text(str(problem["code"]), loc, lang, example)
        else:
            said = t("enter_saved") if result.get("status") == "created" else t("enter_duplicate")
            titles = [t("enter_new_advice").format(title=a["title"]) for a in answer["advice"]]
            ws.set_flash(" ".join([said, *titles]))
            return see_other(f"/mina{_for(access)}")
    return _entry_page(request, session, access, actor, dict(form), errors, status_code=422)


@router.post("/mina/sync")
async def page_sync(
    request: Request,
    actor: PersonActor,
    session: SessionDep,
    settings: SettingsDep,
    body: Annotated[bytes, Depends(csrf_checked)],
) -> Response:
    """The sync envelope from the app's pages (cookie + CSRF header); the API's answer."""
    access = acting(request, session, actor, Action.WRITE_READINGS, "POST /mina/sync")
    if access is None:
        raise PageNotFound("Choose whose data first.")
    envelope = sync_service.envelope_of(sync_service.parse_json_body(body))
    answer = sync_service.sync(
        session, settings, access, envelope, request.headers.get("accept-language")
    )
    return JSONResponse(jsonable_encoder(answer))


SERVICE_WORKER = Path(__file__).with_name("static") / "mina" / "sw.js"


@router.get("/mina/sw.js")
def service_worker() -> Response:
    """The app's service worker, served from /mina so that it may control the /mina pages."""
    return Response(
        SERVICE_WORKER.read_bytes(),
        media_type="text/javascript",
        # A worker obeys its own script's CSP: the pages' policy, so that it may fetch and
        # keep this origin's pages and assets (the API's 'none' would forbid every fetch).
        headers={"Service-Worker-Allowed": "/mina", "Content-Security-Policy": PAGE_CSP},
    )


# --- who has read -----------------------------------------------------------------------


def _day(raw: str | None) -> date | None:
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


@router.get("/mina/atkomst")
def access_log(request: Request, actor: PersonActor, session: SessionDep) -> Response:
    """Who read or changed the data, with names and care units; a date filter."""
    access = acting(request, session, actor, Action.READ_ACCESS_LOG, "GET /mina/atkomst")
    if access is None:
        return see_other("/mina")
    zone = ZoneInfo(access.patient.timezone)
    first, last = _day(request.query_params.get("from")), _day(request.query_params.get("to"))
    since = datetime.combine(first, time(0), zone) if first else None
    until = datetime.combine(last + timedelta(days=1), time(0), zone) if last else None
    rows = audit_repository.access_log(session, access.patient.id, limit=ACCESS_ROWS + 1,
                                       before_seq=None, since=since, until=until)  # fmt: skip
    names = people.users_by_id(session, [e.actor_id for e in rows[:ACCESS_ROWS]])
    entries = [
        {
            "at": e.occurred_at,
            "who": names[e.actor_id].display_name if e.actor_id in names else e.actor_handle,
            "self": e.actor_id == actor.user.id,
            "care_unit": e.care_unit_name,
            "role": e.actor_role,
            "what": "refused"
            if e.outcome.startswith("refused")
            else ("read" if e.action in ("read", "read_access_log", "read_grants") else "write"),
            "resource": e.resource,
        }
        for e in rows[:ACCESS_ROWS]
    ]
    context = _base(request, access, actor) | {
        "entries": entries,
        "more": len(rows) > ACCESS_ROWS,
        "from": first.isoformat() if first else "",
        "to": last.isoformat() if last else "",
    }
    return render(request, "mina_access.html", context)
