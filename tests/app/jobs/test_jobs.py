"""The jobs' shared decorator: a transaction per patient; a failing one does not stop the rest.

And the README names exactly the jobs the scheduler runs.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime

import pytest
from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

from app import metrics, scheduler
from app.config import PROJECT_ROOT, Settings
from app.db import transaction
from app.jobs import each
from app.patients.models import Organisation
from app.push.sender import RecordingSender

NOW = datetime.fromisoformat("2026-11-20T12:00:00+00:00")


def _ids(_session: Session, _settings: Settings, _now: datetime) -> list[str]:
    return ["org-a", "org-b", "org-c"]


@each("test-job", _ids)
def _write_one(session: Session, _settings: Settings, _now: datetime, org: str) -> dict[str, int]:
    session.execute(insert(Organisation).values(id=org, name=org, kind="region"))
    session.flush()
    if org == "org-b":
        raise RuntimeError("this one is broken")
    return {"written": 1}


def test_a_failing_item_is_rolled_back_logged_counted_and_the_others_run(
    factory: sessionmaker[Session], settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    failures = metrics.JOB_ITEM_FAILURES.labels(job="test-job")
    before = failures._value.get()
    with caplog.at_level(logging.ERROR, logger="selfcare.jobs"):
        done = _write_one(factory, settings, NOW)
    assert done == {"written": 2, "failed": 1}
    with transaction(factory) as session:
        stored = set(session.scalars(select(Organisation.id).where(Organisation.id.like("org-%"))))
    assert stored == {"org-a", "org-c"}  # org-b's transaction was rolled back alone
    assert [r for r in caplog.records if "org-b" in r.getMessage() and r.exc_info]
    assert failures._value.get() == before + 1


def test_the_readme_lists_the_scheduled_jobs(
    settings: Settings, factory: sessionmaker[Session]
) -> None:
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    (listed,) = re.findall(
        r"- \*\*Jobs\*\* \(`app/scheduler.py`, APScheduler 3, ids (.*?);", readme, re.S
    )
    named = set(re.findall(r"`([a-z-]+)`", listed))
    specs = scheduler.job_specs(settings, factory, sender=RecordingSender())
    assert named == {spec.id for spec in specs}
