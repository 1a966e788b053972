"""Rules a stored plan cannot run: one flag for the team per (patient, plan version, rule).

A parameter the rule marks required has no silent default. ``PUT .../plan`` refuses a plan
without it, but a version stored before the rule required it (or written around the API)
may lack it: the evaluator skips that rule and runs the others, and the team gets a flag
saying which rule cannot run and what the plan must set. The flag is recorded as a firing
of the rule anchored at ``config/<plan version>``, so it is raised once per plan version,
never extends the rule's clinical flags, and gives the patient no advice.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from app.config import Settings
from app.findings import repository
from app.findings import service as findings_service
from app.findings.models import (
    Evaluation,
    EvaluationStatus,
    Flag,
    FlagStatus,
)
from app.findings.outgoing import Outgoing
from app.patients.models import Patient
from rules.engine import UnrunnableRule, unrunnable_rules
from rules.language import SEVERITY_RANK, RuleLibrary, Severity
from rules.plan import PlanSpec

ANCHOR_PREFIX = "config/"
"""Anchor keys of plan problems start so; a clinical firing's never do."""

PROBLEM = "rule_cannot_run"

_TITLE = {"sv": "Regeln kan inte köras", "en": "Rule cannot run"}
_SUMMARY = {
    "sv": "Regeln ”{rule}” kan inte köras: planen (version {version}) saknar {params}. "
    "Övriga regler körs. Ange värdet i planen.",
    "en": "The rule “{rule}” cannot run: the plan (version {version}) does not set {params}. "
    "The other rules run. Set the value in the plan.",
}


def anchor(plan_version: int) -> str:
    """The anchor key of a plan version's problems."""
    return f"{ANCHOR_PREFIX}{plan_version}"


def _explanation(item: UnrunnableRule, plan: PlanSpec, library: RuleLibrary) -> dict[str, Any]:
    rule = library.get(item.rule_id)
    params = ", ".join(item.missing)
    return {
        "problem": PROBLEM,
        "rule": {"id": item.rule_id, "version": item.rule_version},
        "plan_version": plan.version,
        "missing_params": list(item.missing),
        "summary": {
            lang: text.format(
                rule=rule.title.get(lang) if rule is not None else item.rule_id,
                version=plan.version,
                params=params,
            )
            for lang, text in _SUMMARY.items()
        },
    }


def flag_unrunnable_rules(
    session: Session,
    settings: Settings,
    *,
    patient: Patient,
    plan: PlanSpec,
    library: RuleLibrary,
    now: datetime,
    out: Outgoing,
) -> list[Flag]:
    """Raise a flag for each rule of the plan that lacks a required parameter (once each)."""
    raised: list[Flag] = []
    for item in unrunnable_rules(plan, library):
        key = anchor(plan.version)
        if repository.evaluation_at(session, patient.id, item.rule_id, key, plan.version):
            continue
        explanation = _explanation(item, plan, library)
        evaluation = Evaluation(
            patient_id=patient.id,
            rule_id=item.rule_id,
            rule_version=item.rule_version,
            plan_version=plan.version,
            mode="active",
            anchor_reading_id=None,
            anchor_key=key,
            anchor_time=now,
            status=EvaluationStatus.FIRED,
            reading_ids=[],
            explanation=explanation,
            created_at=now,
        )
        session.add(evaluation)
        session.flush()
        flag = Flag(
            patient_id=patient.id,
            rule_id=item.rule_id,
            rule_version=item.rule_version,
            evaluation_id=evaluation.id,
            severity=Severity.moderate,
            severity_rank=SEVERITY_RANK[Severity.moderate],
            status=FlagStatus.OPEN,
            title=dict(_TITLE),
            explanation=explanation,
            reading_ids=[],
            firing_count=1,
            created_at=now,
            updated_at=now,
            due_at=now + timedelta(hours=settings.flag_deadline_hours_moderate),
            note="",
        )
        session.add(flag)
        session.flush()
        flag_data = findings_service.flag_dict(session, flag, patient.language, now)
        out.change("flag", "upsert", flag.id, flag_data)
        raised.append(flag)
    return raised
