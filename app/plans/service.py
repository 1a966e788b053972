"""Plan use cases: read the current version, save a new one, list versions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from app.db import database_of
from app.errors import ErrorItem, NotFound, Unprocessable
from app.feed import service as feed
from app.patients.models import Patient
from app.plans import agreements, repository
from app.plans.models import PlanVersion

# Other domains and the router read plan versions through the service.
from app.plans.repository import current as current
from app.plans.repository import versions as versions
from app.plans.spec_cache import SPECS
from app.readings.repository import counted_facts, through
from rules.backtest import BacktestReport
from rules.backtest import backtest as run_backtest
from rules.engine import due_lookback, lookback
from rules.language import load_library, validate_plan
from rules.plan import PlanBody, PlanSpec


def current_spec(session: Session, patient_id: str) -> PlanSpec | None:
    """The newest plan as the rule engine sees it (shared between requests: do not change)."""
    kept = _current_kept(session, patient_id)
    return kept[1] if kept is not None else None


def current_effective_spec(session: Session, patient_id: str) -> PlanSpec | None:
    """The newest plan with ``effective_from`` (see :func:`effective`), kept like the spec.

    The first version of a plan is as immutable as the newest, so the pair is kept by the
    newest version's id.
    """
    kept = _current_kept(session, patient_id)
    if kept is None:
        return None
    key, spec = kept
    return SPECS.get_or_make((*key, "effective"), lambda: effective(session, patient_id, spec))


def _current_kept(session: Session, patient_id: str) -> tuple[tuple[str, str], PlanSpec] | None:
    """The newest version's cache key and spec: only its id is read while the spec is kept."""
    newest = repository.current_id(session, patient_id)
    if newest is None:
        return None
    key = (database_of(session), newest)
    return key, SPECS.get_or_make(key, lambda: to_spec(_row(session, newest)))


def _row(session: Session, version_id: str) -> PlanVersion:
    row = session.get(PlanVersion, version_id)
    assert row is not None  # its id was just read in this transaction
    return row


def effective(session: Session, patient_id: str, plan: PlanSpec) -> PlanSpec:
    """The plan with ``effective_from``: when the patient's first plan version was made."""
    if plan.effective_from is not None:
        return plan
    first = repository.first_created_at(session, patient_id)
    return plan.model_copy(update={"effective_from": first}) if first else plan


def to_spec(row: PlanVersion) -> PlanSpec:
    """A stored version as a validated plan spec."""
    return PlanSpec.model_validate({**row.body, "version": row.version})


def get_current(session: Session, patient_id: str) -> PlanVersion:
    """The current plan, or 404 when the patient has none yet."""
    row = current(session, patient_id)
    if row is None:
        raise NotFound("The patient has no plan yet.")
    return row


def save(
    session: Session, *, patient: Patient, body: PlanBody, author_id: str | None, now: datetime
) -> PlanVersion:
    """Validate a plan against the rule library and store it as a new, immutable version.

    Agreements without an id are proposed by this version (:mod:`app.plans.agreements`).
    A free-text ``contact`` is refused: the care contact is set on its own route.
    """
    errors = [ErrorItem.of(e) for e in validate_plan(body, load_library())]
    if body.contact is not None:
        errors.append(
            ErrorItem(
                loc="contact",
                code="moved",
                message="The care contact is set with PUT /v1/patients/{pid}/care-contact.",
            )
        )
    stored, agreement_errors = agreements.prepare(session, patient, body.agreements, now)
    errors += agreement_errors
    if errors:
        raise Unprocessable("The plan is not valid.", errors=errors)
    # The feed lock serialises writers for this patient, so version numbers never collide.
    feed.lock_patient(session, patient.id)
    latest = repository.latest_number(session, patient.id)
    plan_body = body.model_dump(mode="json", exclude_none=True, exclude={"agreements"})
    row = PlanVersion(
        patient_id=patient.id,
        version=(latest or 0) + 1,
        body={**plan_body, "agreements": stored},
        created_at=now,
        created_by=author_id,
    )
    session.add(row)
    session.flush()
    agreements.record_new(session, row, stored, author_id)
    feed.append(
        session,
        patient.id,
        entity="plan",
        op="upsert",
        entity_id=row.id,
        data=to_dicts(session, [row])[0],
        now=now,
    )
    return row


def to_dicts(session: Session, rows: Sequence[PlanVersion]) -> list[dict[str, Any]]:
    """Plan versions in their API form, each agreement with its status today."""
    enriched = agreements.enrich(session, [row.body for row in rows])
    return [
        {
            **row.body,
            "agreements": items,
            "version": row.version,
            "created_at": row.created_at.isoformat(),
            "created_by": row.created_by,
        }
        for row, items in zip(rows, enriched, strict=True)
    ]


def backtest(
    session: Session,
    *,
    patient_id: str,
    timezone: str,
    proposed: PlanBody | None,
    days: int,
    now: datetime,
) -> dict[str, Any]:
    """The alert burden a plan (the current one, or a proposal) would have had lately.

    Runs the same rule engine, vectorised, over the patient's counted readings of the last
    ``days`` days: per rule, firings, advice and flag episodes in total and per week.
    """
    library = load_library()
    if proposed is not None:
        errors = validate_plan(proposed, library)
        if errors:
            raise Unprocessable(
                "The proposed plan is not valid.",
                errors=[ErrorItem.of(e) for e in errors],
            )
        plan = PlanSpec.model_validate({**proposed.model_dump(), "version": 0})
    else:
        spec = current_spec(session, patient_id)
        if spec is None:
            raise NotFound("The patient has no plan yet.")
        plan = spec
    start = now - timedelta(days=days)
    types: set[str] = {str(entry.type) for entry in plan.schedule}
    types |= {str(t) for r in plan.rules if (rule := library.get(r.rule)) for t in rule.types}
    reach = max(lookback(plan, library), due_lookback(plan, library))
    facts = counted_facts(session, patient_id, types, start - reach, through(now))
    report = run_backtest(plan, facts, library=library, tz=timezone, start=start, end=now)
    return burden_dict(report, proposed=proposed is not None)


def burden_dict(report: BacktestReport, *, proposed: bool) -> dict[str, Any]:
    """A backtest report in its API form."""
    return {
        "plan": "proposed" if proposed else "current",
        "from": report.start.isoformat(),
        "to": report.end.isoformat(),
        "weeks": round(report.weeks, 2),
        "readings": report.readings,
        "episode_days": report.episode_days,
        "rules": [
            {
                "rule": burden.rule_id,
                "mode": burden.mode,
                "firings": burden.firings,
                "advice": burden.advice,
                "flags": burden.flags,
                "firings_per_week": round(burden.firings_per_week, 2),
                "advice_per_week": round(burden.advice_per_week, 2),
                "flags_per_week": round(burden.flags_per_week, 2),
            }
            for burden in report.rules
        ],
    }
