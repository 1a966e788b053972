"""The findings' jobs: time-based rules, and escalation of flags nobody acknowledged.

**rules-due** evaluates the time-based rules (missing readings, CGM windows) due now for every
patient (:func:`app.findings.evaluation.run_due_for_patient`, idempotent: one evaluation per
rule, anchor and plan version), one patient per transaction.

**flag-escalation**: an open flag nobody acknowledged by its deadline notifies the whole care
team. A flag's ``due_at`` comes from its severity (``flag_deadline_hours_*``); past it the worklist
shows the flag as ``overdue``. This job claims such flags (``FOR UPDATE SKIP LOCKED``), marks
each ``escalated_at`` — once, in the same transaction — and writes an outbox row for every
active subscription of every clinician in the patient's care teams. A flag acknowledged or
resolved in the meantime is no longer open and is left alone.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from app.auth import repository as auth_repository
from app.auth.repository import team_clinicians
from app.config import Settings
from app.db import transaction
from app.findings import repository as findings_repository
from app.findings.evaluation import run_due_for_patient
from app.jobs import each
from app.push import repository as push_repository
from app.push import service as push_service
from rules.language import Priority, Severity

BATCH = 100
ESCALATION_TTL_SECONDS = 24 * 3600
TITLES = {"sv": "Ej kvitterad flagga: {}", "en": "Unacknowledged flag: {}"}


def escalate_overdue(session: Session, settings: Settings, now: datetime) -> Counter[str]:
    """Claim up to a batch of overdue open flags, mark them escalated, notify their teams."""
    done: Counter[str] = Counter()
    flags = findings_repository.claim_overdue_flags(session, now, BATCH)
    for flag in flags:
        flag.escalated_at = now
        done["flags"] += 1
        urgent = flag.severity == Severity.high
        for clinician in team_clinicians(session, flag.patient_id):
            lang = push_service.language_of(clinician)
            title = TITLES[lang].format(flag.title.get(lang, flag.title.get("sv", "")))
            for sub in push_repository.active_subscriptions(session, clinician.id):
                push_service.enqueue(
                    session,
                    subscription=sub,
                    patient_id=flag.patient_id,
                    kind="escalation",
                    payload={
                        "title": title,
                        "flag_id": flag.id,
                        "patient_id": flag.patient_id,
                        "priority": Priority.urgent if urgent else Priority.routine,
                        "url": f"/flags/{flag.id}",
                    },
                    urgency="high" if urgent else "normal",
                    ttl_seconds=ESCALATION_TTL_SECONDS,
                    topic_=push_service.topic("flag", flag.id.replace("-", "")[:26]),
                    now=now,
                )
                done["notifications"] += 1
    session.flush()
    return done


def run_escalation(
    factory: sessionmaker[Session], settings: Settings, now: datetime
) -> dict[str, int]:
    """The escalation job: batches in transactions of their own until none is overdue."""
    totals: Counter[str] = Counter()
    while True:
        with transaction(factory) as session:
            done = escalate_overdue(session, settings, now)
        totals.update(done)
        if done["flags"] < BATCH:
            return dict(totals)


def all_patients(session: Session, _settings: Settings, _now: datetime) -> list[str]:
    """Every patient's id, in order (the time-based rules decide who has something due)."""
    return sorted(auth_repository.all_patient_ids(session))


@each("rules-due", all_patients)
def rules_due(
    session: Session, settings: Settings, now: datetime, patient_id: str
) -> dict[str, int]:
    """Evaluate one patient's time-based rules due at ``now``; the firings that hold."""
    return {"firings": run_due_for_patient(session, settings, patient_id=patient_id, now=now)}
