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
        out = live.cli("simulate", "--days", "1", "--tick-hours", "6", "--pause", "0",
                       "--base-url", live.base)
    finally:
        live.stop()
    assert "done" in out
    per_source = dict(session.execute(
        select(Source.client_source_id, func.count(Reading.id))
        .join(Reading, Reading.source_id == Source.id)
        .group_by(Source.client_source_id)
    ).all())
    assert per_source["gunilla-cgm-sim"] >= 250  # a day of five-minute CGM values
    assert per_source["allan-phone-sim"] >= 2
    # Every weight from the scale's own app is a duplicate of the tablet's, never counted twice.
    scale = session.scalars(
        select(Reading).join(Source, Source.id == Reading.source_id)
        .where(Source.client_source_id == "asta-scale-sim")
    ).all()
    assert scale and all(r.duplicate_of is not None for r in scale)
    # Devices that were offline caught up: no queue holds a reading the server lacks.
    queues = sorted((tmp_path / "simulate").glob("*.db"))
    assert len(queues) == 4
    for queue in queues:
        with sqlite3.connect(queue) as db:
            assert db.execute("SELECT count(*) FROM queue").fetchone() == (0,), queue.name
            acked = db.execute("SELECT count(*) FROM acknowledged").fetchone()[0]
        assert acked == per_source[queue.stem], queue.name
