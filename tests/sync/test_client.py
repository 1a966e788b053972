"""The reference client against an in-process fake server: queue, retries, crashes, mirror.

The fake (tests/sync/fake_server.py) keeps the server's idempotency promises; faults are
injected per request. Whatever happens, every reading ends on the server exactly once, the
client's queue empties, and its mirror equals the server's readings.
"""

from __future__ import annotations

import contextlib
import random
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sync.client import SyncClient, SyncError, SyncRejected, SyncUnavailable
from tests.sync.factories import NOW
from tests.sync.fake_server import TOKEN, Crash, FakeServer

BASE_URL = "https://selfcare.test"
TABLET = {"id": "asta-tablet", "kind": "app", "name": "Min hälsa", "version": "2.3.1"}
SCALE_APP = {"id": "maria-phone-scale", "kind": "app", "name": "Scale app"}


def weight(n: int, **changes: Any) -> dict[str, Any]:
    """Return a weight reading, one hour apart per ``n``, before the fake server's now."""
    item: dict[str, Any] = {
        "client_id": f"w-{n}",
        "type": "weight",
        "time": (NOW - timedelta(hours=n + 1)).isoformat(),
        "value": 70 + n / 10,
        "unit": "kg",
    }
    item.update(changes)
    return item


class Harness:
    """A fake server and clients on queue files in one folder."""

    def __init__(self, folder: Path, server: FakeServer | None = None) -> None:
        self.folder = folder
        self.server = server or FakeServer()
        self.sleeps: list[float] = []
        self.clients: list[SyncClient] = []

    def client(
        self, name: str = "tablet", *, source: dict[str, Any] = TABLET, **options: Any
    ) -> SyncClient:
        options.setdefault("sleep", self.sleeps.append)
        options.setdefault("rng", random.Random(7))
        options.setdefault("clock", lambda: NOW)
        client = SyncClient(
            BASE_URL,
            options.pop("token", TOKEN),
            source=source,
            queue_path=self.folder / f"{name}.sqlite",
            transport=self.server.transport(),
            **options,
        )
        self.clients.append(client)
        return client

    def close(self) -> None:
        for client in self.clients:
            with contextlib.suppress(sqlite3.ProgrammingError):
                client.close()

    def assert_converged(self, client: SyncClient, sent: list[dict[str, Any]]) -> None:
        """Every reading stored exactly once, acknowledged, and mirrored as the server has it."""
        source = client.source["id"]
        on_server = {
            s.reading.client_id for s in self.server.readings.values() if s.source == source
        }
        stored = [s for s in self.server.readings.values() if s.source == source]
        assert len(stored) == len(on_server) == len(sent)
        assert on_server == {r["client_id"] for r in sent}
        assert client.pending() == 0
        assert set(client.acknowledged()) == on_server
        assert {r["id"]: r for r in client.mirror()} == {s.id: s.data for s in self.server.live()}


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    h = Harness(tmp_path)
    yield h
    h.close()


def test_a_sync_sends_acknowledges_and_mirrors(harness: Harness) -> None:
    client = harness.client()
    readings = [weight(n) for n in range(3)]
    assert client.enqueue_many(readings) == ["w-0", "w-1", "w-2"]
    assert client.pending() == 3

    report = client.sync_once()

    assert (report.batches, report.created, report.duplicates, report.rejected) == (1, 3, 0, 0)
    assert report.changes == 3 and report.retries == 0
    assert client.cursor is not None
    harness.assert_converged(client, readings)


def test_enqueue_gives_a_client_id_and_refuses_a_conflict(harness: Harness) -> None:
    client = harness.client()
    reading = weight(0)
    del reading["client_id"]
    client_id = client.enqueue(reading)
    assert len(client_id) == 36  # a uuid4
    assert client.enqueue({**reading, "client_id": client_id}) == client_id  # the same: no-op
    assert client.pending() == 1
    with pytest.raises(ValueError, match="other content"):
        client.enqueue({**reading, "client_id": client_id, "value": 99})
    with pytest.raises(ValueError, match="client_id"):
        client.enqueue({**reading, "client_id": 7})
    with pytest.raises(TypeError):
        client.enqueue({**reading, "client_id": "x", "value": object()})
    assert client.pending() == 1


def test_decimals_from_importers_are_sent_as_numbers(harness: Harness) -> None:
    client = harness.client()
    client.enqueue(weight(0, value=Decimal("82.40")))
    client.sync_once()
    [stored] = harness.server.readings.values()
    assert stored.reading.original_values == {"value": Decimal("82.4")}


def test_a_rejected_reading_never_blocks_the_queue(harness: Harness) -> None:
    client = harness.client(batch_size=2)
    good = [weight(0), weight(2), weight(3)]
    client.enqueue_many([good[0], weight(1, value=900), good[1], good[2]])

    report = client.sync_once()

    assert (report.created, report.rejected) == (3, 1)
    [rejected] = client.rejected()
    assert rejected.client_id == "w-1" and rejected.reading["value"] == 900
    assert [e["code"] for e in rejected.errors] == ["implausible"]
    harness.assert_converged(client, good)
    assert client.sync_once().rejected == 0  # not sent again


def test_batches_follow_batch_size(harness: Harness) -> None:
    client = harness.client(batch_size=500)
    readings = [weight(n) for n in range(1200)]
    client.enqueue_many(readings)
    report = client.sync_once()
    assert [n for method, _, n in harness.server.log if method == "POST"] == [500, 500, 200]
    assert report.batches == 3 and report.created == 1200
    harness.assert_converged(client, readings)


def test_an_answer_lost_after_the_server_committed_is_retried_safely(harness: Harness) -> None:
    client = harness.client()
    readings = [weight(n) for n in range(5)]
    client.enqueue_many(readings)
    harness.server.fail("drop_after")

    report = client.sync_once()

    assert harness.server.commits == 2  # the lost one, and the repeat
    assert (report.created, report.duplicates, report.retries) == (0, 5, 1)
    assert len(harness.sleeps) == 1
    harness.assert_converged(client, readings)
    assert len(harness.server.feed) == 5  # the repeat changed nothing


def test_connection_errors_and_5xx_back_off_with_full_jitter(harness: Harness) -> None:
    client = harness.client(backoff_base=1.0, backoff_cap=5.0)
    client.enqueue(weight(0))
    harness.server.fail("drop_before", 500, 502, 503, "drop_before")

    report = client.sync_once()

    assert report.retries == 5 and report.created == 1
    caps = [1.0, 2.0, 4.0, 5.0, 5.0]  # base * 2^n, capped
    assert len(harness.sleeps) == len(caps)
    assert all(0 <= slept <= cap for slept, cap in zip(harness.sleeps, caps, strict=True))
    assert len(set(harness.sleeps)) == len(caps)  # jittered
    harness.assert_converged(client, [weight(0)])


def test_429_waits_for_retry_after_in_seconds(harness: Harness) -> None:
    client = harness.client()
    client.enqueue(weight(0))
    harness.server.fail(429, headers={"Retry-After": "7"})
    report = client.sync_once()
    assert harness.sleeps == [7.0] and report.retries == 1
    harness.assert_converged(client, [weight(0)])


def test_429_waits_for_retry_after_as_a_date(harness: Harness) -> None:
    client = harness.client()
    client.enqueue(weight(0))
    when = format_datetime(NOW + timedelta(seconds=30), usegmt=True)
    harness.server.fail(503, headers={"Retry-After": when})
    client.sync_once()
    assert harness.sleeps == [30.0]


def test_a_retry_after_beyond_max_delay_gives_up_at_once(harness: Harness) -> None:
    client = harness.client(max_delay=60)
    client.enqueue(weight(0))
    harness.server.fail(429, headers={"Retry-After": "3600"})
    with pytest.raises(SyncUnavailable) as caught:
        client.sync_once()
    assert caught.value.retry_after == 3600 and harness.sleeps == []
    assert client.pending() == 1


def test_giving_up_keeps_the_queue_for_later(harness: Harness) -> None:
    client = harness.client(max_attempts=3)
    client.enqueue(weight(0))
    harness.server.fail(500, 500, 500)
    with pytest.raises(SyncUnavailable, match="HTTP 500 \\(after 3 attempts\\)"):
        client.sync_once()
    assert len(harness.sleeps) == 2 and client.pending() == 1
    client.sync_once()
    harness.assert_converged(client, [weight(0)])


def test_a_crash_between_send_and_answer_resumes_from_the_file(harness: Harness) -> None:
    client = harness.client()
    readings = [weight(n) for n in range(4)]
    client.enqueue_many(readings)
    harness.server.fail("crash_after")
    with pytest.raises(Crash):
        client.sync_once()
    client.close()  # the process is gone; only the file remains
    assert harness.server.commits == 1

    again = harness.client()
    assert again.pending() == 4
    report = again.sync_once()

    assert (report.created, report.duplicates) == (0, 4)
    harness.assert_converged(again, readings)


def test_a_failure_while_recording_leaves_nothing_half_done(harness: Harness) -> None:
    client = harness.client()
    client.enqueue_many([weight(0), weight(1)])
    harness.server.feed.append({"entity": "reading", "op": "merge", "id": "x", "data": {}})
    with pytest.raises(SyncError, match="unknown change op"):
        client.sync_once()
    assert client.pending() == 2 and client.acknowledged() == {} and client.mirror() == []
    assert client.cursor is None
    harness.server.feed.pop(0)  # the server mends its feed
    client.sync_once()
    harness.assert_converged(client, [weight(0), weight(1)])


def test_the_queue_survives_a_restart(harness: Harness) -> None:
    first = harness.client()
    first.enqueue_many([weight(0), weight(1)])
    first.close()
    second = harness.client()
    assert second.pending() == 2
    second.sync_once()
    harness.assert_converged(second, [weight(0), weight(1)])


def test_the_mirror_applies_deletes(harness: Harness) -> None:
    client = harness.client()
    client.enqueue_many([weight(0), weight(1)])
    client.sync_once()
    mistyped = client.acknowledged()["w-1"]

    harness.server.delete(mistyped)  # Karin deletes it on her device
    report = client.pull()

    assert report.changes == 1
    assert [r["id"] for r in client.mirror()] == [client.acknowledged()["w-0"]]


def test_an_empty_sync_pulls(harness: Harness) -> None:
    client = harness.client()
    client.enqueue(weight(0))
    client.sync_once()
    harness.server.delete(client.acknowledged()["w-0"])
    report = client.sync_once()
    assert report.batches == 0 and report.changes == 1 and client.mirror() == []


def test_has_more_is_followed_to_the_end(tmp_path: Path) -> None:
    harness = Harness(tmp_path, FakeServer(page_limit=3))
    client = harness.client(batch_size=4)
    readings = [weight(n) for n in range(10)]
    client.enqueue_many(readings)
    report = client.sync_once()
    assert report.changes == 10
    assert [m for m, _, _ in harness.server.log].count("GET") >= 1
    harness.assert_converged(client, readings)
    harness.close()


def test_a_cursor_too_old_rebuilds_the_mirror(harness: Harness) -> None:
    client = harness.client()
    client.enqueue_many([weight(0), weight(1)])
    client.sync_once()
    other = harness.client("phone", source=SCALE_APP)
    other.enqueue(weight(5, client_id="s-5", value=99))
    other.sync_once()
    harness.server.delete(client.acknowledged()["w-0"])
    harness.server.prune()  # the feed forgets everything so far

    report = client.pull()

    assert report.rereads == 1
    assert {r["id"] for r in client.mirror()} == {s.id for s in harness.server.live()}
    assert client.cursor is not None
    assert client.pull().changes == 0


def test_a_410_on_upload_rereads_then_sends(harness: Harness) -> None:
    client = harness.client()
    client.enqueue(weight(0))
    client.sync_once()
    other = harness.client("phone", source=SCALE_APP)
    other.enqueue_many([weight(5, client_id="s-5", value=99), weight(6, client_id="s-6")])
    other.sync_once()
    harness.server.prune()  # the tablet's cursor is now older than the feed keeps
    client.enqueue(weight(1))

    report = client.sync_once()

    assert report.rereads == 1 and report.created == 1
    assert [sent for _, _, sent in _posts(harness)][-2:] == [1, 1]  # refused, then sent
    harness.assert_converged(client, [weight(0), weight(1)])


def _posts(harness: Harness) -> list[tuple[str, str, int]]:
    return [entry for entry in harness.server.log if entry[0] == "POST"]


def test_a_cursor_the_server_no_longer_accepts_rereads(harness: Harness) -> None:
    client = harness.client()
    client.enqueue(weight(0))
    client.sync_once()
    client._db.execute("UPDATE meta SET value = 'forged' WHERE key = 'cursor'")
    report = client.pull()
    assert report.rereads == 1
    assert len(client.mirror()) == 1


def test_413_halves_the_batch(tmp_path: Path) -> None:
    harness = Harness(tmp_path, FakeServer(max_batch=3))
    client = harness.client(batch_size=10)
    readings = [weight(n) for n in range(10)]
    client.enqueue_many(readings)
    client.sync_once()
    sizes = [n for method, _, n in harness.server.log if method == "POST"]
    assert sizes[:3] == [10, 5, 2]
    harness.assert_converged(client, readings)
    harness.close()


def test_a_refused_request_stops_the_sync_and_keeps_the_queue(harness: Harness) -> None:
    client = harness.client(token="expired")
    client.enqueue(weight(0))
    with pytest.raises(SyncRejected) as caught:
        client.sync_once()
    assert caught.value.status == 401 and client.pending() == 1
    assert harness.sleeps == []


def test_a_queue_file_belongs_to_one_patient_and_source(harness: Harness) -> None:
    harness.client().close()
    with pytest.raises(ValueError, match="already uses this queue file"):
        harness.client(source=SCALE_APP)
    with pytest.raises(ValueError, match="already uses this queue file"):
        harness.client(patient_id="someone-else")


def test_the_source_is_checked_at_once(harness: Harness) -> None:
    with pytest.raises(ValueError):
        harness.client("bad", source={"id": "has spaces", "kind": "app"})


def test_two_devices_converge_without_double_counting(harness: Harness) -> None:
    """Asta's tablet and Maria's scale app send the same weights; both see one set."""
    tablet = harness.client("tablet")
    phone = harness.client("phone", source=SCALE_APP)
    weights = [weight(n) for n in range(0, 72, 24)]  # three days of morning weights
    tablet.enqueue_many(weights)
    phone.enqueue_many({**w, "client_id": f"scale-{w['client_id']}"} for w in weights)
    harness.server.fail("drop_after")  # one upload is cut off and retried

    tablet.sync_once()
    phone.sync_once()
    tablet.pull()

    assert len(harness.server.live(counted=True)) == 3
    assert all(s.data["duplicate_of"] for s in harness.server.live() if s.source == SCALE_APP["id"])
    assert tablet.mirror() == phone.mirror()
    mistyped = tablet.acknowledged()["w-24"]
    harness.server.delete(mistyped)
    tablet.pull()
    phone.pull()
    assert tablet.mirror() == phone.mirror()
    assert mistyped not in {r["id"] for r in phone.mirror()}


FAULTS = st.sampled_from(["drop_before", "drop_after", "crash_after", 500, 503, 429])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    count=st.integers(1, 25),
    batch_size=st.integers(1, 8),
    page_limit=st.integers(1, 10),
    faults=st.lists(FAULTS, max_size=12),
    late=st.integers(0, 5),
)
def test_exactly_once_whatever_fails(
    count: int, batch_size: int, page_limit: int, faults: list[str | int], late: int
) -> None:
    """Any mix of lost answers, crashes and errors ends with each reading stored once."""
    with tempfile.TemporaryDirectory() as folder:
        harness = Harness(Path(folder), FakeServer(page_limit=page_limit))
        readings = [weight(n) for n in range(count + late)]
        client = _resilient(harness, batch_size)
        client.enqueue_many(readings[:count])
        harness.server.fail(*faults)
        client = _sync_until_done(harness, client, batch_size)
        client.enqueue_many(readings[count:])  # a late offline upload
        client = _sync_until_done(harness, client, batch_size)
        harness.assert_converged(client, readings)
        harness.close()


def _resilient(harness: Harness, batch_size: int) -> SyncClient:
    return harness.client(batch_size=batch_size, max_attempts=20)


def _sync_until_done(harness: Harness, client: SyncClient, batch_size: int) -> SyncClient:
    for _ in range(20):
        try:
            client.sync_once()
            return client
        except Crash:
            client.close()
            client = _resilient(harness, batch_size)
    raise AssertionError("the sync never finished")


def test_the_clock_is_injectable(harness: Harness) -> None:
    times: list[datetime] = [datetime(2026, 11, 20, 9, tzinfo=UTC)]
    clock: Callable[[], datetime] = lambda: times[0]  # noqa: E731
    client = harness.client(clock=clock)
    client.enqueue(weight(0, value=900))
    client.sync_once()
    assert client.rejected()[0].rejected_at == "2026-11-20T09:00:00+00:00"
