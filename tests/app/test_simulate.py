"""`selfcare simulate` drives the personas' devices through the reference client over HTTP."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.readings.models import Reading, Source
from tests.live import LiveServer

pytestmark = pytest.mark.e2e


def test_simulated_devices_arrive_with_their_duplicates(
    db_url: str, tmp_path: Path, session: Session
) -> None:
    live = LiveServer(db_url, tmp_path, sync_rate_per_minute="0")
    live.start()
    try:
        # A frozen end: which tick holds a morning weight (and so which device is offline
        # when it is uploaded) must not depend on the time of day the suite runs at.
        out = live.cli(
            "simulate",
            "--days",
            "1",
            "--tick-hours",
            "6",
            "--pause",
            "0",
            "--until",
            "2026-11-20T12:00:00+00:00",
            "--base-url",
            live.base,
        )
    finally:
        live.stop()
    assert "done" in out
    per_source = dict(
        session.execute(
            select(Source.client_source_id, func.count(Reading.id))
            .join(Reading, Reading.source_id == Source.id)
            .group_by(Source.client_source_id)
        ).all()
    )
    assert per_source["gunilla-cgm-sim"] >= 250  # a day of five-minute CGM values
    assert per_source["allan-phone-sim"] >= 2
    # Every weighing reaches the service from the tablet and from the scale's own app: one
    # copy counts, the other is its duplicate (whichever device was online first), never two.
    weights = session.scalars(
        select(Reading)
        .join(Source, Source.id == Reading.source_id)
        .where(
            Source.client_source_id.in_(["asta-tablet-sim", "asta-scale-sim"]),
            Reading.type == "weight",
        )
    ).all()
    originals = [r for r in weights if r.duplicate_of is None]
    copies = [r for r in weights if r.duplicate_of is not None]
    assert originals and len(copies) == len(originals)
    assert {r.duplicate_of for r in copies} == {r.id for r in originals}
    # Devices that were offline caught up: no queue holds a reading the server lacks.
    queues = sorted((tmp_path / "simulate").glob("*.db"))
    assert len(queues) == 4
    for queue in queues:
        with sqlite3.connect(queue) as db:
            assert db.execute("SELECT count(*) FROM queue").fetchone() == (0,), queue.name
            acked = db.execute("SELECT count(*) FROM acknowledged").fetchone()[0]
        assert acked == per_source[queue.stem], queue.name
