"""The plan editor: a patient's rules with their limits, the schedule, and a preview before saving.

"Förhandsgranska" runs the same backtest as ``POST /v1/patients/{pid}/plan/backtest`` for the
current and the changed plan over the patient's last 30 days and shows flags and advice per
week, rule by rule; "Spara" saves through the same service as ``PUT /v1/patients/{pid}/plan``
(a new plan version). A value that cannot be used is shown at the top (an error summary) and
at its field, in Swedish, and nothing is saved.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from app.auth.policy import Access, Action
from app.clock import utcnow
from app.deps import SessionDep
from app.errors import Unprocessable
from app.plans import contact
from app.plans import repository as plans_repository
from app.plans import service as plans_service
from app.plans.models import PlanVersion
from app.web import words
from app.web.pages import (
    CheckedForm,
    PageActor,
    PageNotFound,
    WebSessionDep,
    lang_of,
    render,
    see_other,
)
from app.web.patients import authorised_patient
from rules.catalogue import display_unit
from rules.language import RuleLibrary, load_library, validate_plan
from rules.plan import PlanBody, PlanRule, ScheduleEntry

router = APIRouter(include_in_schema=False)

BACKTEST_DAYS = 30
TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
DAYS = ("daily", "weekdays", "weekly")


@dataclass
class Edited:
    """A plan as the form sent it: the body when every value could be read, and the errors."""

    body: PlanBody | None
    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)  # field id -> message
    working: list[WorkingRule] | None = None  # the rules the page shows


@dataclass
class WorkingRule:
    """A rule as the form shows it: stored or added on the page, perhaps marked for removal."""

    index: int  # its fields are ``r{index}-…``
    rule: str
    params: dict[str, Any]
    mode: str | None = None
    added: bool = False
    removed: bool = False


def working_rules(row: PlanVersion, form: dict[str, str] | None = None) -> list[WorkingRule]:
    """The stored rules (those ticked for removal marked), then the rules added on the page.

    A rule added earlier on the page travels in hidden fields ``added-{j}``; the select
    ``add-rule`` adds one more. A rule already in the plan is not added twice.
    """
    form = form or {}
    stored = row.body.get("rules", [])
    rules = [
        WorkingRule(
            i,
            r["rule"],
            dict(r.get("params", {})),
            r.get("mode"),
            removed=form.get(f"r{i}-remove") == "1",
        )  # fmt: skip
        for i, r in enumerate(stored)
    ]
    library = load_library()
    hidden = [k for k in form if k.startswith("added-") and k[6:].isdigit()]
    wanted = [form[k] for k in sorted(hidden, key=lambda k: int(k[6:]))]
    wanted.append(form.get("add-rule", ""))
    for rule_id in wanted:
        if library.get(rule_id) is None or any(w.rule == rule_id for w in rules):
            continue
        rules.append(WorkingRule(len(rules), rule_id, {}, added=True,
                                 removed=form.get(f"r{len(rules)}-remove") == "1"))  # fmt: skip
    return rules


def _plan_or_404(session: Session, patient_id: str) -> PlanVersion:
    row = plans_service.current(session, patient_id)
    if row is None:
        raise PageNotFound("The patient has no plan yet.")
    return row


def _shown(value: Any, lang: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        value = value.get("value")
    text = str(Decimal(str(value)).normalize()) if value is not None else ""
    if "E" in text:
        text = f"{Decimal(str(value)):f}"
    return text.replace(".", ",") if lang == "sv" else text


def form_values(
    row: PlanVersion, library: RuleLibrary, lang: str, rules: list[WorkingRule] | None = None
) -> dict[str, str]:
    """The form's values for a plan: each parameter as the plan sets it, else its default."""
    values: dict[str, str] = {}
    for working in rules if rules is not None else working_rules(row):
        rule = library.get(working.rule)
        if rule is None:
            continue
        for name, spec in rule.params.items():
            if spec.required and name not in working.params:
                values[f"r{working.index}-{name}"] = ""  # a personal best is never guessed
                continue
            given = working.params.get(name, spec.default)
            values[f"r{working.index}-{name}"] = _shown(given, lang)
    for i, entry in enumerate(row.body.get("schedule", [])):
        values[f"s{i}-times"] = ", ".join(entry.get("times", []))
        values[f"s{i}-days"] = entry.get("days", "daily")
    return values


def _number(raw: str) -> Decimal | None:
    try:
        number = Decimal(raw.strip().replace(",", ".").replace(" ", "").replace("\u2212", "-"))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def read_form(row: PlanVersion, form: dict[str, str], library: RuleLibrary, lang: str) -> Edited:
    """The changed plan from the posted form (each field read on its own, errors kept)."""
    t = words.for_lang(lang)
    stored = row.body
    working = working_rules(row, form)
    values = form_values(row, library, lang, working)
    errors: dict[str, str] = {}
    rules: list[PlanRule] = []
    fields: list[int] = []  # the form index of each rule of the body (for its errors)
    for plan_rule in working:
        i = plan_rule.index
        params = dict(plan_rule.params)
        rule = library.get(plan_rule.rule)
        for name, spec in rule.params.items() if rule is not None else ():
            key = f"r{i}-{name}"
            raw = form.get(key)
            if raw is None:
                continue
            values[key] = raw
            if plan_rule.removed:
                continue  # kept on the page as typed, read no further
            if spec.is_flag:
                if raw in ("true", "false"):
                    chosen = raw == "true"
                    if chosen == spec.default:
                        params.pop(name, None)
                    else:
                        params[name] = chosen
                continue
            number = _number(raw)
            if number is None:
                example = _shown(spec.default, lang)
                errors[key] = t("error_number").format(example=example)
                continue
            old = params.get(name)
            old_number = old.get("value") if isinstance(old, dict) else old
            if old is not None and _number(str(old_number)) == number:
                continue  # unchanged: kept as stored (in its own unit)
            if old is None and number == Decimal(str(spec.default)) and not spec.required:
                continue  # the default, as before
            params[name] = {"value": str(number), "unit": spec.unit} if spec.unit else str(number)
        if plan_rule.removed:
            continue
        fields.append(i)
        rules.append(
            PlanRule.model_validate(
                {
                    "rule": plan_rule.rule,
                    "params": params,
                    **({"mode": plan_rule.mode} if plan_rule.mode else {}),
                }
            )  # fmt: skip
        )
    schedule: list[ScheduleEntry] = []
    for i, entry in enumerate(stored.get("schedule", [])):
        times_raw = form.get(f"s{i}-times", ", ".join(entry.get("times", [])))
        days = form.get(f"s{i}-days", entry.get("days", "daily"))
        values[f"s{i}-times"], values[f"s{i}-days"] = times_raw, days
        times = [p for p in re.split(r"[,\s]+", times_raw.strip()) if p]
        times = [f"0{p}" if re.match(r"^\d:\d\d$", p) else p for p in times]
        if not all(TIME.match(p) for p in times) or days not in DAYS:
            errors[f"s{i}-times"] = t("error_time")
            continue
        schedule.append(ScheduleEntry(type=entry["type"], times=times, days=days))
    if errors:
        return Edited(None, values, errors)
    body = PlanBody(rules=rules, schedule=schedule, agreements=stored.get("agreements", []))
    for problem in validate_plan(body, library):
        loc = problem.loc.split(".")
        if loc[0] == "rules" and len(loc) >= 2 and loc[1].isdigit() and int(loc[1]) < len(fields):
            field_id = _field_of(".".join(["rules", str(fields[int(loc[1])]), *loc[2:]]))
        else:
            field_id = _field_of(problem.loc)
        errors[field_id] = _message(problem.loc, problem.code, body, library, t)
    return Edited(None if errors else body, values, errors)


def _field_of(loc: str) -> str:
    """A plan error's place (``rules.0.params.gain``) as the form's field id (``r0-gain``)."""
    parts = loc.split(".")
    if parts[0] == "rules" and len(parts) >= 4:
        return f"r{parts[1]}-{parts[3]}"
    if parts[0] == "schedule" and len(parts) >= 2:
        return f"s{parts[1]}-times"
    return "plan"


def _message(loc: str, code: str, body: PlanBody, library: RuleLibrary, t: Any) -> str:
    """A plan error in the team's words."""
    parts = loc.split(".")
    if code == "out_of_range" and parts[0] == "rules" and len(parts) >= 4:
        rule = library.get(body.rules[int(parts[1])].rule)
        spec = rule.params.get(parts[3]) if rule is not None else None
        if spec is not None:
            low = "" if spec.min is None else _shown(spec.min, "sv")
            high = "" if spec.max is None else _shown(spec.max, "sv")
            unit = display_unit(spec.unit) if spec.unit else ""
            return str(t("error_range").format(low=low, high=high, unit=unit)).rstrip()
    if code == "missing_param":
        return str(t("error_missing"))
    if code == "unknown_unit":
        return str(t("error_unit"))
    return str(t("error_plan").format(message=code))


def _page(
    request: Request,
    session: Session,
    access: Access,
    row: PlanVersion,
    values: dict[str, str],
    *,
    working: list[WorkingRule] | None = None,
    errors: dict[str, str] | None = None,
    burden: list[dict[str, Any]] | None = None,
    readings: int | None = None,
    notice: str = "",
    status_code: int = 200,
) -> Response:
    lang = lang_of(request)
    library = load_library()
    rules = []
    working = working if working is not None else working_rules(row)
    for plan_rule in working:
        i = plan_rule.index
        rule = library.get(plan_rule.rule)
        if rule is None:
            continue
        params = [
            {
                "id": f"r{i}-{name}",
                "name": name,
                "label": spec.description.get(lang),
                "unit": display_unit(spec.unit) if spec.unit else "",
                "flag": spec.is_flag,
                "default": _shown(spec.default, lang),
            }
            for name, spec in rule.params.items()
        ]
        rules.append(
            {"id": rule.id, "title": rule.title.get(lang), "params": params, "index": i,
             "added": plan_rule.added, "removed": plan_rule.removed}
        )  # fmt: skip
    in_plan = {w.rule for w in working}
    addable = sorted(
        (
            {"id": r.id, "title": r.title.get(lang) or r.id}
            for r in library.rules
            if r.id not in in_plan
        ),
        key=lambda r: r["title"],
    )
    context = {
        "user": access.actor.user,
        "t": words.for_lang(lang),
        "patient": access.patient,
        "version": row.version,
        "rules": rules,
        "addable": addable,
        "schedule": [
            {"index": i, "type": e["type"]} for i, e in enumerate(row.body.get("schedule", []))
        ],
        "days_choices": DAYS,
        "agreements": row.body.get("agreements", []),
        "contact": contact.contact_dict(
            session, plans_repository.current_contact(session, access.patient.id)
        ),
        "values": values,
        "errors": errors or {},
        "burden": burden,
        "burden_readings": readings,
        "notice": notice,
    }
    return render(request, "plan.html", context, status_code=status_code)


@router.get("/vard/patients/{pid}/plan")
def plan_page(pid: str, request: Request, actor: PageActor, session: SessionDep) -> Response:
    """The plan editor with the current plan's values."""
    access = authorised_patient(session, actor, pid, Action.READ, "GET /vard/patients/{pid}/plan")
    row = _plan_or_404(session, access.patient.id)
    values = form_values(row, load_library(), lang_of(request))
    return _page(request, session, access, row, values)


def _burden(
    session: Session, access: Access, body: PlanBody, lang: str
) -> tuple[list[dict[str, Any]], int]:
    """Flags and advice per week and rule, the current plan beside the changed one."""
    now = utcnow()
    reports = [
        plans_service.backtest(
            session,
            patient_id=access.patient.id,
            timezone=access.patient.timezone,
            proposed=proposed,
            days=BACKTEST_DAYS,
            now=now,
        )  # fmt: skip
        for proposed in (None, body)
    ]
    old = {r["rule"]: r for r in reports[0]["rules"]}
    new = {r["rule"]: r for r in reports[1]["rules"]}
    library = load_library()
    rows = []
    for rule_id in [*old, *(r for r in new if r not in old)]:
        before, after = old.get(rule_id, {}), new.get(rule_id, {})
        rule = library.get(rule_id)
        row = {"rule": rule_id, "title": rule.title.get(lang) if rule else rule_id}
        for key in ("flags_per_week", "advice_per_week"):
            row[f"old_{key}"] = before.get(key, 0)
            row[f"new_{key}"] = after.get(key, 0)
        row["changed"] = any(row[f"old_{k}"] != row[f"new_{k}"]
                             for k in ("flags_per_week", "advice_per_week"))  # fmt: skip
        rows.append(row)
    rows.sort(key=lambda r: not r["changed"])  # what the change changes, first
    return rows, int(reports[0]["readings"])


def _edit(
    pid: str, form: dict[str, str], request: Request, actor: Any, session: Session, verb: str
) -> tuple[Access, PlanVersion, Edited]:
    resource = f"POST /vard/patients/{{pid}}/plan{verb}"
    access = authorised_patient(session, actor, pid, Action.WRITE_PLAN, resource)
    row = _plan_or_404(session, access.patient.id)
    edited = read_form(row, form, load_library(), lang_of(request))
    edited.working = working_rules(row, form)
    return access, row, edited


def _again(
    request: Request, session: Session, access: Access, row: PlanVersion, edited: Edited,
    **shown: Any,
) -> Response:  # fmt: skip
    """The editor again with what the team wrote (and the errors, the preview or a notice)."""
    return _page(request, session, access, row, edited.values, working=edited.working, **shown)


@router.post("/vard/patients/{pid}/plan/preview")
def preview(
    pid: str, form: CheckedForm, request: Request, actor: PageActor, session: SessionDep
) -> Response:
    """The alert burden of the current and the changed plan, last 30 days (nothing saved)."""
    access, row, edited = _edit(pid, form, request, actor, session, "/preview")
    if edited.body is None:
        return _again(request, session, access, row, edited, errors=edited.errors,
                      status_code=422)  # fmt: skip
    burden, readings = _burden(session, access, edited.body, lang_of(request))
    return _again(request, session, access, row, edited, burden=burden, readings=readings)


@router.post("/vard/patients/{pid}/plan")
def save(
    pid: str,
    form: CheckedForm,
    request: Request,
    actor: PageActor,
    session: SessionDep,
    ws: WebSessionDep,
) -> Response:
    """Save the changed plan as a new version, as ``PUT /v1/patients/{pid}/plan`` does."""
    access, row, edited = _edit(pid, form, request, actor, session, "")
    lang = lang_of(request)
    t = words.for_lang(lang)
    if edited.body is None:
        return _again(request, session, access, row, edited, errors=edited.errors,
                      status_code=422)  # fmt: skip
    stored = edited.body.model_dump(mode="json", exclude_none=True, exclude={"agreements"})
    current = PlanBody.model_validate({**row.body, "agreements": [], "contact": None})
    if stored == current.model_dump(mode="json", exclude_none=True, exclude={"agreements"}):
        return _again(request, session, access, row, edited, notice=t("unchanged"))
    try:
        saved = plans_service.save(session, patient=access.patient, body=edited.body,
                                   author_id=actor.id, now=utcnow())  # fmt: skip
    except Unprocessable as exc:
        session.rollback()  # nothing of the attempt stays; the page read is audited again
        access = authorised_patient(session, actor, pid, Action.READ,
                                    "GET /vard/patients/{pid}/plan")  # fmt: skip
        message = "; ".join(e.message for e in exc.errors or [])
        errors = {"plan": t("error_plan").format(message=message or exc.detail)}
        return _again(request, session, access, row, edited, errors=errors, status_code=422)
    ws.set_flash(t("flash_plan_saved").format(version=saved.version))
    return see_other(f"/vard/patients/{access.patient.id}/plan")
