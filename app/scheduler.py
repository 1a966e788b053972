"""The scheduler: the jobs in code, run by APScheduler 3 inside ``serve`` or in ``worker``.

Every job has an explicit id, ``coalesce=True`` (missed runs collapse into one),
``max_instances=1`` (a slow run is never overlapped in the same process) and a misfire grace.
Running several processes (``selfcare serve`` with its scheduler plus any number of
``selfcare worker``) is safe: every job claims its rows (see ``app.jobs``), so two processes
never do the same work.

Each job lives in its domain's ``jobs`` module (see ``app.jobs``); this module only lists
them with their intervals and runs them.
"""

from __future__ import annotations

import functools
import logging
import signal
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from types import FrameType
from typing import Any

import anyio
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

from app import metrics
from app.activities.jobs import run_activity_reminders
from app.audit import service as audit
from app.audit.jobs import anchor_audit_head, verify_audit_chain
from app.clock import utcnow
from app.config import Settings
from app.db import make_engine, make_sessionmaker
from app.findings.jobs import rules_due, run_escalation
from app.goals.jobs import recompute_all
from app.jobs import Job
from app.jobs.retention import clean_up
from app.plans.jobs import run_reminders
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

    def dispatch_outbox(factory: sessionmaker[Session], settings: Settings, now: datetime) -> Any:
        return dispatch(factory, settings, now, sender=push_sender, clock=clock).as_dict()

    every: list[tuple[str, Job[Mapping[str, int]], float]] = [
        ("push-dispatch", dispatch_outbox, settings.push_dispatch_interval_seconds),
        ("measurement-reminders", run_reminders, settings.reminder_interval_seconds),
        ("activity-reminders", run_activity_reminders, settings.activity_reminder_interval_seconds),
        ("flag-escalation", run_escalation, settings.escalation_interval_seconds),
        ("retention", clean_up, settings.retention_interval_seconds),
        ("rules-due", rules_due, settings.rules_due_interval_seconds),
        # Hourly, but a patient whose goals were recomputed in full today is skipped: nightly.
        ("goals-recompute", recompute_all, settings.goals_recompute_interval_seconds),
        ("audit-anchor", anchor_audit_head, settings.audit_anchor_interval_seconds),
        ("audit-verify", verify_audit_chain, settings.audit_verify_interval_seconds),
    ]
    return [
        JobSpec(job_id, functools.partial(_at_clock, job, factory, settings, clock), seconds)
        for job_id, job, seconds in every
    ]


def _at_clock(
    job: Job[Mapping[str, int]],
    factory: sessionmaker[Session],
    settings: Settings,
    clock: Callable[[], datetime],
) -> Mapping[str, int]:
    return job(factory, settings, clock())


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
