"""The change feed's retention: old entries go as the start of every patient's feed, and a
cursor into what went answers 410, never a feed with a hole (both databases).

Times here run ahead of the seeded database's, so the seed's own changes are the oldest, as
they would be in a running service; the retention's horizon is given, never today's date.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.clock import utcnow
from app.config import Settings
from app.db import transaction
from app.errors import Gone
from app.feed import service as feed
from app.feed.models import Change
from app.jobs.retention import clean_up, trim_feed
from app.readings.models import Reading
from sync.client import SyncClient
from sync.cursor import encode_cursor
from tests.app.factories import batch, bp, patient_id

Auth = Callable[[str], dict[str, str]]
DAY = timedelta(days=1)


def _append(factory: sessionmaker[Session], pid: str, at: datetime, count: int = 1) -> list[str]:
    """Append ``count`` changes made at ``at`` to a patient's feed; their entity ids."""
    ids = [str(uuid.uuid4()) for _ in range(count)]
    with transaction(factory) as session:
        feed.append_many(
            session, pid, [feed.ChangeEntry("reading", "upsert", i, {}) for i in ids], now=at
        )
    return ids


def _kept(session: Session, pid: str) -> list[int]:
    return list(
        session.scalars(select(Change.seq).where(Change.patient_id == pid).order_by(Change.seq))
    )


def _read(session: Session, settings: Settings, pid: str, after: int) -> list[str] | None:
    """The entity ids after a feed position (one page), or None for 410."""
    cursor = encode_cursor(pid, after, key=feed.cursor_key(settings))
    try:
        return [c["id"] for c in feed.read(session, settings, pid, cursor).changes]
    except Gone:
        return None


def test_retention_drops_the_start_of_each_feed_and_an_older_cursor_answers_410(
    factory: sessionmaker[Session], settings: Settings, session: Session
) -> None:
    allan, asta = patient_id(session, "allan"), patient_id(session, "asta")
    t0 = utcnow() + 10 * DAY
    for day in (1, 2, 3):  # the two patients' changes interleave in id order
        allans_last = _append(factory, allan, t0 + day * DAY, 2)
        _append(factory, asta, t0 + day * DAY)
    allan_head, asta_head = feed.last_seq(session, allan), feed.last_seq(session, asta)
    total = session.scalar(select(func.count()).select_from(Change))

    with transaction(factory) as s:  # everything before day 3 goes: the seed's and days 1–2
        dropped = feed.drop_oldest(s, t0 + 2.5 * DAY, limit=1_000_000)

    assert session.scalar(select(func.count()).select_from(Change)) == total - dropped == 3
    assert _kept(session, allan) == [allan_head - 1, allan_head]
    assert _kept(session, asta) == [asta_head]
    # Right before what is kept: every change after it is there. One earlier: one is gone.
    assert _read(session, settings, allan, allan_head - 2) == allans_last
    assert _read(session, settings, allan, allan_head - 3) is None
    assert _read(session, settings, asta, asta_head - 2) is None
    assert _read(session, settings, asta, asta_head) == []
    # Without a cursor the feed starts at what it keeps.
    assert [c["id"] for c in feed.read(session, settings, allan, None).changes] == allans_last


def test_a_cursor_answers_410_when_every_change_after_it_is_gone(
    factory: sessionmaker[Session], settings: Settings, session: Session
) -> None:
    """No change of the patient is left, but the head moved past the cursor: 410, not an
    empty page that would leave the client believing it is up to date."""
    asta = patient_id(session, "asta")
    t0 = utcnow() + 10 * DAY
    _append(factory, asta, t0, 3)
    head = feed.last_seq(session, asta)
    with transaction(factory) as s:
        feed.drop_oldest(s, t0 + DAY, limit=1_000_000)
    assert _kept(session, asta) == []
    assert _read(session, settings, asta, head - 1) is None
    assert _read(session, settings, asta, head) == []  # up to date: nothing came after it


def test_a_clock_set_back_holds_the_trim_up_rather_than_leave_a_hole(
    factory: sessionmaker[Session], settings: Settings, session: Session
) -> None:
    """A change written with a newer time stops the run of ids that goes; one written after
    it with an older time (another server's clock behind) waits for the next run."""
    allan, asta = patient_id(session, "allan"), patient_id(session, "asta")
    t0 = utcnow() + 10 * DAY
    with transaction(factory) as s:
        feed.drop_oldest(s, t0, limit=1_000_000)  # the seed's changes go
    _append(factory, allan, t0 + 1 * DAY)
    _append(factory, asta, t0 + 9 * DAY)  # newer, and lower id than the next
    _append(factory, allan, t0 + 2 * DAY)
    with transaction(factory) as s:
        assert feed.drop_oldest(s, t0 + 5 * DAY, limit=1_000_000) == 1
    head = feed.last_seq(session, allan)
    assert _kept(session, allan) == [head]  # the first went; the second stays
    assert _read(session, settings, allan, head - 1) is not None


def test_the_retention_job_trims_the_feed_in_chunks_and_again_finds_nothing(
    factory: sessionmaker[Session], settings: Settings, session: Session
) -> None:
    allan = patient_id(session, "allan")
    kept_from = utcnow() + 100 * DAY
    _append(factory, allan, kept_from, 2)
    before = session.scalar(select(func.count()).select_from(Change))
    now = kept_from + timedelta(days=settings.feed_retention_days)  # kept_from is the horizon
    assert trim_feed(factory, settings, now, chunk=7) == before - 2
    assert session.scalar(select(func.count()).select_from(Change)) == 2
    assert clean_up(factory, settings, now)["changes"] == 0
    assert clean_up(factory, settings, now + DAY)["changes"] == 2


def _through(client: TestClient) -> httpx.MockTransport:
    """The sync client's requests to the app in this process, through the test client."""

    def forward(request: httpx.Request) -> httpx.Response:
        answer = client.request(
            request.method, str(request.url), content=request.read(), headers=request.headers
        )
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)

    return httpx.MockTransport(forward)


@pytest.mark.parametrize("pull_first", [True, False], ids=["pull", "sync"])
def test_an_app_whose_cursor_is_older_than_the_feed_keeps_reads_everything_again(
    client: TestClient,
    auth: Auth,
    factory: sessionmaker[Session],
    settings: Settings,
    session: Session,
    tmp_path: Any,
    pull_first: bool,
) -> None:
    """Allan's phone is off for months; meanwhile his scale sends two readings and the
    retention drops the feed's old entries. When the phone is back (it opens the app and
    pulls, or it sends a new reading at once) it is told its cursor is too old, reads his
    data again and holds every reading the server holds."""
    token = auth("allan")["Authorization"].removeprefix("Bearer ")
    app = SyncClient(
        str(client.base_url),
        token,
        source={"id": "allans-phone", "kind": "app", "name": "Min hälsa"},
        queue_path=tmp_path / "queue.sqlite",
        transport=_through(client),
        sleep=lambda _: None,
    )
    with app:
        app.enqueue_many([bp(131, 82, minutes_ago=60), bp(128, 80, minutes_ago=30)])
        assert app.sync_once().batches == 1
        scale = client.post(
            "/v1/patients/me/sync",
            json=batch(bp(142, 88, minutes_ago=20), bp(139, 86, minutes_ago=10), source="scale"),
            headers=auth("allan"),
        )
        assert scale.status_code == 200
        assert (
            trim_feed(
                factory, settings, utcnow() + timedelta(days=settings.feed_retention_days + 1)
            )
            > 0
        )

        if pull_first:
            report = app.pull()
        else:
            app.enqueue(bp(126, 79, minutes_ago=1))
            report = app.sync_once()

        assert report.rereads == 1
        pid = patient_id(session, "allan")
        held = set(
            session.scalars(
                select(Reading.id).where(Reading.patient_id == pid, Reading.deleted_at.is_(None))
            )
        )
        assert {r["id"] for r in app.mirror()} == held
        assert {r["id"] for r in scale.json()["results"]} <= held


_OPS = st.lists(
    st.one_of(
        st.tuples(
            st.just("append"), st.sampled_from(["allan", "asta"]), st.sampled_from([1, 3, 9])
        ),
        st.tuples(st.just("trim"), st.integers(0, 6), st.sampled_from([1, 2, 5, 1_000_000])),
    ),
    min_size=1,
    max_size=12,
)


@hypothesis_settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=_OPS)
def test_any_appends_and_trims_leave_every_cursor_a_410_or_every_change_after_it(
    factory: sessionmaker[Session], settings: Settings, session: Session, ops: list[Any]
) -> None:
    """Appends for two patients, an hour apart, and trims at any horizon and chunk size, in any
    order: every patient keeps a run of its last numbers, and a read from any position gives
    exactly the changes after it, or 410 when one of them is gone. (Nine changes go by COPY
    on PostgreSQL, fewer as INSERTs: both must number the ids in the feed's order.)"""
    pids = {h: patient_id(session, h) for h in ("allan", "asta")}
    made = {
        h: {
            row.seq: row.entity_id
            for row in session.execute(
                select(Change.seq, Change.entity_id).where(Change.patient_id == p)
            )
        }
        for h, p in pids.items()
    }  # what an earlier example or the seed left; later changes are added as they are made
    clock = max(
        utcnow(), session.scalar(select(func.max(Change.created_at))) or utcnow()
    ) + timedelta(hours=1)
    for op in ops:
        if op[0] == "append":
            _, handle, count = op
            head = feed.last_seq(session, pids[handle])
            for offset, entity_id in enumerate(_append(factory, pids[handle], clock, count), 1):
                made[handle][head + offset] = entity_id
            clock += timedelta(hours=1)
        else:
            _, hours_back, chunk = op
            with transaction(factory) as s:
                feed.drop_oldest(s, clock - timedelta(hours=hours_back), limit=chunk)

    for handle, pid in pids.items():
        head = feed.last_seq(session, pid)
        kept = _kept(session, pid)
        assert kept == list(range(head - len(kept) + 1, head + 1))  # a run ending at the head
        first_kept = kept[0] if kept else head + 1
        for after in {0, first_kept - 2, first_kept - 1, head - 1, head}:
            if not 0 <= after <= head:
                continue
            got = _read(session, settings, pid, after)
            if after < first_kept - 1:
                assert got is None
            else:
                expected = [made[handle][seq] for seq in range(after + 1, head + 1)]
                assert got == expected[: feed.MAX_CHANGES]
