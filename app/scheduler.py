"""The scheduler: the jobs in code, run by APScheduler 3 inside ``serve`` or in ``worker``.

Every job has an explicit id, ``coalesce=True`` (missed runs collapse into one),
``max_instances=1`` (a slow run is never overlapped in the same process) and a misfire grace.
Running several processes (``selfcare serve`` with its scheduler plus any number of
``selfcare worker``) is safe: every job claims its rows (see ``app.jobs``), so two processes
never do the same work.

Time-based rule evaluation (missing readings, CGM windows) is the rule engine's
``app.findings.evaluation.run_due``: one short transaction per patient, idempotent (one
evaluation per rule, anchor and plan version).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from types import FrameType

import anyio
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

from app import metrics
from app.audit import service as audit
from app.clock import utcnow
from app.config import Settings
from app.db import make_engine, make_sessionmaker
from app.findings.evaluation import run_due
from app.goals.progress import recompute_all
from app.jobs.activity_reminders import run_activity_reminders
from app.jobs.audit import anchor_audit_head, verify_audit_chain
from app.jobs.escalation import run_escalation
from app.jobs.reminders import run_reminders
from app.jobs.retention import clean_up
from app.push.dispatcher import dispatch
from app.push.sender import PushSender, WebPushSender
from app.push.vapid import vapid_key

log = logging.getLogger("selfcare.jobs")


@dataclass(frozen=True)
class JobSpec:
    """One scheduled job: its id, what it runs, and how often."""

    id: str
    run: Callable[[], Mapping[str, int]]
    seconds: float

    @property
    def misfire_grace_seconds(self) -> int:
        """How late a run may start and still run (then coalesced into one)."""
        return max(30, int(self.seconds * 2))


def default_sender(settings: Settings) -> PushSender:
    """pywebpush with the service's VAPID key."""
    return WebPushSender(
        vapid_key(settings),
        subject=settings.vapid_subject,
        timeout=settings.push_timeout_seconds,
    )


def job_specs(
    settings: Settings,
    factory: sessionmaker[Session],
    *,
    sender: PushSender | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> list[JobSpec]:
    """Every job of the service, bound to a database and a clock."""
    push_sender = sender or default_sender(settings)
    specs = [
        JobSpec(
            "push-dispatch",
            lambda: dispatch(factory, settings, clock(), sender=push_sender, clock=clock).as_dict(),
            settings.push_dispatch_interval_seconds,
        ),
        JobSpec(
            "measurement-reminders",
            lambda: run_reminders(factory, settings, clock()),
            settings.reminder_interval_seconds,
        ),
        JobSpec(
            "activity-reminders",
            lambda: run_activity_reminders(factory, settings, clock()),
            settings.activity_reminder_interval_seconds,
        ),
        JobSpec(
            "flag-escalation",
            lambda: run_escalation(factory, settings, clock()),
            settings.escalation_interval_seconds,
        ),
        JobSpec(
            "retention",
            lambda: clean_up(factory, settings, clock()),
            settings.retention_interval_seconds,
        ),
    ]
    specs.append(
        JobSpec(
            "rules-due",
            lambda: {"firings": run_due(factory, settings, now=clock())},
            settings.rules_due_interval_seconds,
        )
    )
    # Hourly, but a patient whose goals were recomputed in full today is skipped: nightly.
    specs.append(
        JobSpec(
            "goals-recompute",
            lambda: recompute_all(factory, clock()),
            settings.goals_recompute_interval_seconds,
        )
    )
    specs.append(
        JobSpec(
            "audit-anchor",
            lambda: anchor_audit_head(factory, settings, clock()),
            settings.audit_anchor_interval_seconds,
        )
    )
    specs.append(
        JobSpec(
            "audit-verify",
            lambda: verify_audit_chain(factory, settings, clock()),
            settings.audit_verify_interval_seconds,
        )
    )
    return specs


def _logged(spec: JobSpec) -> Callable[[], None]:
    def run() -> None:
        try:
            done = spec.run()
        except Exception:
            metrics.JOB_RUNS.labels(job=spec.id, outcome="failed").inc()
            log.exception("job %s failed; it runs again at its next time", spec.id)
            return
        metrics.JOB_RUNS.labels(job=spec.id, outcome="ok").inc()
        if any(done.values()):
            log.info("job %s: %s", spec.id, " ".join(f"{k}={v}" for k, v in done.items()))

    return run


def build_scheduler(
    settings: Settings,
    factory: sessionmaker[Session],
    *,
    sender: PushSender | None = None,
) -> BackgroundScheduler:
    """A scheduler (not started) with every job; each first runs right after start."""
    # APScheduler logs every run at INFO (every few seconds); our jobs log what they did.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    scheduler = BackgroundScheduler(timezone=UTC)
    start = datetime.now(UTC)
    for spec in job_specs(settings, factory, sender=sender):
        scheduler.add_job(
            _logged(spec),
            trigger=IntervalTrigger(seconds=spec.seconds, timezone=UTC),
            id=spec.id,
            name=spec.id,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=spec.misfire_grace_seconds,
            next_run_time=start,
            replace_existing=True,
        )
    return scheduler


def run_once(settings: Settings, factory: sessionmaker[Session]) -> dict[str, Mapping[str, int]]:
    """Run every job once, in order; what each did."""
    return {spec.id: spec.run() for spec in job_specs(settings, factory)}


def run_worker(settings: Settings, *, stop: threading.Event | None = None) -> None:
    """Run the jobs until SIGTERM or SIGINT (or ``stop`` is set)."""
    engine = make_engine(
        settings.effective_database_url, busy_timeout_ms=settings.sqlite_busy_timeout_ms
    )
    factory = audit.use_key(make_sessionmaker(engine), audit.audit_key(settings))
    scheduler = build_scheduler(settings, factory)
    stopping = stop or threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("worker: signal %s, stopping after the running jobs", signum)
        stopping.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
    scheduler.start()
    log.info("worker: jobs %s", ", ".join(job.id for job in scheduler.get_jobs()))
    try:
        stopping.wait()
    finally:
        scheduler.shutdown(wait=True)
        engine.dispose()


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Run the scheduler inside the API process when ``scheduler_enabled`` (not in tests)."""
    settings: Settings = app.state.settings
    scheduler = None
    if settings.scheduler_enabled:
        scheduler = build_scheduler(settings, app.state.sessionmaker)
        scheduler.start()
        log.info("scheduler: jobs %s", ", ".join(job.id for job in scheduler.get_jobs()))
    app.state.scheduler = scheduler
    try:
        yield
    finally:
        if scheduler is not None:
            # Waiting for a running job blocks; keep the event loop free meanwhile.
            await anyio.to_thread.run_sync(lambda: scheduler.shutdown(wait=True))
            app.state.scheduler = None
