"""The scheduler: jobs in code with explicit ids and safe defaults; inside serve when enabled."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from apscheduler.triggers.interval import IntervalTrigger
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app import scheduler
from app.config import Settings
from app.main import create_app
from app.push.sender import RecordingSender

JOBS = {
    "push-dispatch",
    "measurement-reminders",
    "activity-reminders",
    "flag-escalation",
    "retention",
    "rules-due",
    "goals-recompute",
    "audit-anchor",
    "audit-verify",
}


def test_jobs_have_ids_coalesce_one_instance_and_a_misfire_grace(
    settings: Settings, factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every job: explicit id, coalesce, max_instances=1, misfire grace, interval trigger."""
    built = scheduler.build_scheduler(settings, factory, sender=RecordingSender())
    jobs = {job.id: job for job in built.get_jobs()}
    assert set(jobs) == JOBS
    for job in jobs.values():
        assert job.coalesce is True and job.max_instances == 1
        assert job.misfire_grace_time >= 30
        assert isinstance(job.trigger, IntervalTrigger)
    dispatch_every = jobs["push-dispatch"].trigger.interval.total_seconds()
    assert dispatch_every == settings.push_dispatch_interval_seconds


def test_rules_due_job_runs_the_rule_engine_at_the_scheduler_clock(
    settings: Settings, factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rules-due job calls the rule engine's job with the job's clock."""
    calls: list[datetime] = []

    def rules_due(_factory: Any, _settings: Settings, now: datetime) -> dict[str, int]:
        calls.append(now)
        return {"firings": 3}

    monkeypatch.setattr(scheduler, "rules_due", rules_due)
    fixed = datetime.fromisoformat("2026-11-20T12:00:00+00:00")
    specs = scheduler.job_specs(settings, factory, sender=RecordingSender(), clock=lambda: fixed)
    (due,) = [s for s in specs if s.id == "rules-due"]
    assert due.run() == {"firings": 3}
    assert calls == [fixed]


def test_run_once_runs_every_job(settings: Settings, factory: sessionmaker[Session]) -> None:
    """``selfcare worker --once``: each job once; on an empty outbox nothing happens."""
    done = scheduler.run_once(settings, factory)
    assert set(done) >= JOBS
    assert done["push-dispatch"]["claimed"] == 0


def test_the_api_process_runs_the_scheduler_when_enabled(settings: Settings) -> None:
    """Started by the app's lifespan, stopped with it; tests run with it disabled."""
    app = create_app(settings.model_copy(update={"scheduler_enabled": True}))
    with TestClient(app) as client:
        running = app.state.scheduler
        assert running is not None and running.running
        assert {job.id for job in running.get_jobs()} >= JOBS
        assert client.get("/healthz").status_code == 200
    assert app.state.scheduler is None and not running.running
    app.state.engine.dispose()
    off = create_app(settings)
    with TestClient(off):
        assert off.state.scheduler is None
    off.state.engine.dispose()
