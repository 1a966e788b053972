"""The dispatcher with a recording fake sender, on both databases: claims, outcomes, retries."""

from __future__ import annotations

import random
import threading
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.auth.models import ProxyGrant
from app.config import Settings
from app.db import transaction
from app.push import dispatcher as dispatcher_module
from app.push import repository
from app.push.dispatcher import (
    DispatchStats,
    backoff_seconds,
    claim,
    dispatch,
    record,
    retry_after_seconds,
)
from app.push.models import OutboxMessage, PushSubscription
from app.push.sender import MAX_PLAINTEXT_BYTES, RecordingSender, SendResult, encode_payload
from app.push.service import fit_payload
from tests.app.push import factories as f
from tests.app.push.push_service import LocalPushService
from tests.query_plans import plan


def _rows(factory: sessionmaker[Session]) -> dict[str, OutboxMessage]:
    with transaction(factory) as session:
        return {row.id: row for row in session.scalars(select(OutboxMessage))}


def _sub(factory: sessionmaker[Session], sub_id: str) -> PushSubscription:
    with transaction(factory) as session:
        row = session.get(PushSubscription, sub_id)
        assert row is not None
        return row


def test_outcomes_by_answer(
    factory: sessionmaker[Session], push_settings: Settings, push_service: LocalPushService
) -> None:
    """2xx sent; 404/410 gone and the subscription dead; 413 dead letter; 429, 5xx, no answer:
    retried."""
    answers = {
        "ok": SendResult(201),
        "gone": SendResult(410),
        "not_found": SendResult(404),
        "too_large": SendResult(413),
        "limited": SendResult(429, retry_after="120"),
        "error": SendResult(503),
        "timeout": SendResult(None, error="timeout"),
    }
    sender = RecordingSender()
    ids: dict[str, tuple[str, str]] = {}
    with transaction(factory) as session:
        asta, target = f.user(session, "asta"), f.patient(session, "asta")
        for name, answer in answers.items():
            browser = push_service.subscriber()
            sub = f.subscription(session, asta, browser)
            sender.script[browser.endpoint] = [answer]
            ids[name] = (f.message(session, sub, target).id, sub.id)

    stats = dispatch(factory, push_settings, f.T0, sender=sender, rng=random.Random(1))

    assert (stats.sent, stats.gone, stats.dead, stats.retried) == (1, 2, 1, 3)
    rows = _rows(factory)
    status = {name: rows[mid].status for name, (mid, _) in ids.items()}
    assert status == {
        "ok": "sent",
        "gone": "gone",
        "not_found": "gone",
        "too_large": "dead",
        "limited": "pending",
        "error": "pending",
        "timeout": "pending",
    }
    assert rows[ids["ok"][0]].sent_at == f.T0
    assert _sub(factory, ids["ok"][1]).last_success_at == f.T0
    for name in ("gone", "not_found"):
        sub = _sub(factory, ids[name][1])
        assert (sub.status, sub.ended_at) == ("dead", f.T0)
    # Retry-After is respected exactly; 5xx and timeouts back off within [base/2, base].
    assert rows[ids["limited"][0]].next_attempt_at == f.T0 + timedelta(seconds=120)
    for name in ("error", "timeout"):
        delay = (rows[ids[name][0]].next_attempt_at - f.T0).total_seconds()
        assert 5.0 <= delay <= 10.0
    assert all(rows[mid].attempts == 1 for mid, _ in ids.values())


def test_backoff_grows_to_the_cap_then_dead_letter(
    factory: sessionmaker[Session], push_settings: Settings, push_service: LocalPushService
) -> None:
    """Exponential backoff with jitter, capped; after push_max_attempts the message is dead."""
    browser = push_service.subscriber()
    sender = RecordingSender(script={browser.endpoint: [SendResult(500)]})
    with transaction(factory) as session:
        sub = f.subscription(session, f.user(session, "asta"), browser)
        mid = f.message(session, sub, f.patient(session, "asta")).id
    now, delays = f.T0, []
    for _ in range(push_settings.push_max_attempts):
        dispatch(factory, push_settings, now, sender=sender, rng=random.Random(7))
        row = _rows(factory)[mid]
        if row.status == "dead":
            break
        delays.append((row.next_attempt_at - now).total_seconds())
        now = row.next_attempt_at
    assert row.status == "dead" and row.attempts == push_settings.push_max_attempts
    assert len(sender.sent) == push_settings.push_max_attempts
    base, cap = push_settings.push_backoff_base_seconds, push_settings.push_backoff_max_seconds
    for n, delay in enumerate(delays, start=1):
        ceiling = min(cap, base * 2 ** (n - 1))
        assert ceiling / 2 <= delay <= ceiling, (n, delay)


def test_backoff_and_retry_after_arithmetic(push_settings: Settings) -> None:
    """The formulas on their own: cap, jitter range, both Retry-After forms."""
    rng = random.Random(3)
    for attempts in range(1, 20):
        ceiling = min(60.0, 10.0 * 2 ** (attempts - 1))
        assert ceiling / 2 <= backoff_seconds(push_settings, attempts, rng) <= ceiling
    at = datetime.fromisoformat("2026-11-20T12:00:00+00:00")
    assert retry_after_seconds("120", at) == 120
    assert retry_after_seconds("Fri, 20 Nov 2026 12:01:30 GMT", at) == 90
    assert retry_after_seconds("Fri, 20 Nov 2026 11:00:00 GMT", at) == 0
    assert retry_after_seconds("soon", at) is None and retry_after_seconds(None, at) is None
    # Digits that are not ASCII digits ("²" is a digit to str.isdigit, not to int()).
    assert retry_after_seconds("²", at) is None and retry_after_seconds("١٢", at) is None


def test_messages_to_a_gone_subscription_are_not_sent_again(
    factory: sessionmaker[Session], push_settings: Settings, push_service: LocalPushService
) -> None:
    """After a 410 the other queued messages of that subscription end without a request."""
    browser = push_service.subscriber()
    sender = RecordingSender(script={browser.endpoint: [SendResult(410)]})
    with transaction(factory) as session:
        sub = f.subscription(session, f.user(session, "asta"), browser)
        for n in range(3):
            f.message(session, sub, f.patient(session, "asta"), n)
    stats = dispatch(factory, push_settings, f.T0, sender=sender)
    assert len(sender.sent) == 1
    assert sorted(r.status for r in _rows(factory).values()) == ["cancelled", "cancelled", "gone"]
    assert stats.gone == 1 and stats.cancelled == 2
    # Later runs leave them alone.
    assert dispatch(factory, push_settings, f.T0 + timedelta(hours=1), sender=sender).claimed == 0


def test_quiet_hours_delay_routine_but_not_urgent(
    factory: sessionmaker[Session], push_settings: Settings, push_service: LocalPushService
) -> None:
    """22:00–07:00 in Stockholm: a routine push at 23:00 local waits until 07:00; urgent goes."""
    browser = push_service.subscriber()
    sender = RecordingSender()
    night = datetime.fromisoformat("2026-11-20T22:00:00+00:00")  # 23:00 in Stockholm
    with transaction(factory) as session:
        asta = f.user(session, "asta")
        asta.quiet_hours = {"start": "22:00", "end": "07:00"}
        sub = f.subscription(session, asta, browser)
        target = f.patient(session, "asta")
        routine = f.message(session, sub, target, 1, ttl=24 * 3600, now=night).id
        urgent = f.message(session, sub, target, 2, urgency="high", now=night).id
    stats = dispatch(factory, push_settings, night, sender=sender)
    rows = _rows(factory)
    assert stats.deferred == 1 and stats.sent == 1
    assert rows[urgent].status == "sent"
    morning = datetime.fromisoformat("2026-11-21T06:00:00+00:00")  # 07:00 in Stockholm
    assert (rows[routine].status, rows[routine].next_attempt_at) == ("pending", morning)
    assert rows[routine].attempts == 0
    dispatch(factory, push_settings, morning, sender=sender)
    assert _rows(factory)[routine].status == "sent"


@pytest.mark.parametrize(("default", "deferred"), [("22:00-07:00", True), ("", False)])
def test_a_user_without_quiet_hours_gets_the_default(
    factory: sessionmaker[Session],
    push_settings: Settings,
    push_service: LocalPushService,
    default: str,
    deferred: bool,
) -> None:
    """A reminder at 02:00 does not wake Asta, who never set quiet hours (unless turned off)."""
    settings = push_settings.model_copy(update={"push_default_quiet_hours": default})
    night = datetime.fromisoformat("2026-11-20T01:00:00+00:00")  # 02:00 in Stockholm
    with transaction(factory) as session:
        asta = f.user(session, "asta")
        assert asta.quiet_hours is None
        sub = f.subscription(session, asta, push_service.subscriber())
        routine = f.message(
            session, sub, f.patient(session, "asta"), 1, ttl=24 * 3600, now=night
        ).id
    stats = dispatch(factory, settings, night, sender=RecordingSender())
    assert (stats.deferred, stats.sent) == ((1, 0) if deferred else (0, 1))
    if deferred:
        morning = datetime.fromisoformat("2026-11-20T06:00:00+00:00")  # 07:00 in Stockholm
        assert _rows(factory)[routine].next_attempt_at == morning


def test_expired_and_no_longer_allowed_messages_end_unsent(
    factory: sessionmaker[Session], push_settings: Settings, push_service: LocalPushService
) -> None:
    """Past its TTL: expired. Maria's grant revoked after queueing: cancelled."""
    sender = RecordingSender()
    with transaction(factory) as session:
        target = f.patient(session, "asta")
        asta_sub = f.subscription(session, f.user(session, "asta"), push_service.subscriber())
        maria = f.user(session, "maria")
        maria_sub = f.subscription(
            session, maria, push_service.subscriber(), patient_ids=[target.id]
        )
        old = f.message(session, asta_sub, target, 1, ttl=60, now=f.T0 - timedelta(minutes=5)).id
        to_maria = f.message(session, maria_sub, target, 2).id
        grant = session.scalars(select(ProxyGrant).where(ProxyGrant.grantee_id == maria.id)).one()
        grant.status, grant.revoked_at = "revoked", f.T0 - timedelta(minutes=1)
    stats = dispatch(factory, push_settings, f.T0, sender=sender)
    rows = _rows(factory)
    assert (rows[old].status, rows[to_maria].status) == ("expired", "cancelled")
    assert stats.expired == 1 and stats.cancelled == 1 and sender.sent == []


def test_a_claimed_row_is_not_claimed_twice(
    factory: sessionmaker[Session], push_settings: Settings, push_service: LocalPushService
) -> None:
    """While one dispatcher holds its claim, a second finds nothing to claim (both databases)."""
    with transaction(factory) as session:
        sub = f.subscription(session, f.user(session, "asta"), push_service.subscriber())
        for n in range(5):
            f.message(session, sub, f.patient(session, "asta"), n)
    first_claimed = threading.Event()
    first: list[str] = []

    def hold_claim() -> None:
        with transaction(factory) as session:
            first.extend(
                item.id for item in claim(session, push_settings, f.T0, DispatchStats()).items
            )
            first_claimed.set()
            threading.Event().wait(0.3)  # commit a little later: the second claim comes meanwhile

    holder = threading.Thread(target=hold_claim)
    holder.start()
    assert first_claimed.wait(10)
    with transaction(factory) as session:  # SQLite: waits for the write lock; PG: skips rows
        second = claim(session, push_settings, f.T0, DispatchStats()).items
    holder.join()
    assert len(first) == 5 and second == []
    assert {r.status for r in _rows(factory).values()} == {"sending"}


def test_crash_between_send_and_record_resends_only_that_message(
    factory: sessionmaker[Session], push_settings: Settings, push_service: LocalPushService
) -> None:
    """The at-least-once boundary: an unrecorded send is sent again after its lease, once."""
    sender = RecordingSender()
    with transaction(factory) as session:
        sub = f.subscription(session, f.user(session, "asta"), push_service.subscriber())
        for n in range(3):
            f.message(session, sub, f.patient(session, "asta"), n)
    with transaction(factory) as session:
        batch = claim(session, push_settings, f.T0, DispatchStats())
    crashed, *rest = batch.items
    sender.send(crashed.message)  # sent, then the worker dies before recording it
    for item in rest:
        sender.send(item.message)
        with transaction(factory) as session:
            assert record(session, push_settings, item, SendResult(201), f.T0, random.Random())
    # Nothing is due while the lease lasts; after it, only the crashed message is sent again.
    assert (
        dispatch(factory, push_settings, f.T0 + timedelta(seconds=30), sender=sender).claimed == 0
    )
    after_lease = f.T0 + timedelta(minutes=5)
    stats = dispatch(factory, push_settings, after_lease, sender=sender)
    assert stats.sent == 1
    topics = [m.topic for m in sender.sent]
    assert len(sender.sent) == 4 and topics.count(crashed.message.topic) == 2
    # The same message, the same Topic: it collapses; only its TTL shrank to what is left.
    assert replace(sender.sent[0], ttl=0) == replace(sender.sent[-1], ttl=0)
    assert sender.sent[-1].ttl == sender.sent[0].ttl - 300


def test_a_stale_claim_cannot_record_over_a_newer_one(
    factory: sessionmaker[Session], push_settings: Settings, push_service: LocalPushService
) -> None:
    """A worker whose lease ran out records nothing; the newer claim's result stands."""
    with transaction(factory) as session:
        sub = f.subscription(session, f.user(session, "asta"), push_service.subscriber())
        f.message(session, sub, f.patient(session, "asta"))
    with transaction(factory) as session:
        (old,) = claim(session, push_settings, f.T0, DispatchStats()).items
    with transaction(factory) as session:
        (new,) = claim(session, push_settings, f.T0 + timedelta(minutes=5), DispatchStats()).items
    with transaction(factory) as session:
        assert (
            record(session, push_settings, old, SendResult(500), f.T0, random.Random()) == "stale"
        )
    with transaction(factory) as session:
        outcome = record(session, push_settings, new, SendResult(201), f.T0, random.Random())
        assert outcome == "sent"
    (row,) = _rows(factory).values()
    assert row.status == "sent" and row.attempts == 2


def test_a_batch_records_each_answer_and_skips_only_the_stale_claims(
    factory: sessionmaker[Session], push_settings: Settings, push_service: LocalPushService
) -> None:
    """Recorded together, each row gets its own answer; a row whose lease ran out and was
    claimed again is "stale" and keeps the newer claim; a subscription is marked only by the
    rows this claim still held."""
    with transaction(factory) as session:
        asta, patient = f.user(session, "asta"), f.patient(session, "asta")
        subs = [f.subscription(session, asta, push_service.subscriber()) for _ in range(4)]
        for n, sub in enumerate(subs):
            f.message(session, sub, patient, n)
    with transaction(factory) as session:
        old = claim(session, push_settings, f.T0, DispatchStats()).items
    stale = old[0]
    with transaction(factory) as session:  # the lease of the first ran out; claimed again
        session.get(OutboxMessage, stale.id).next_attempt_at = f.T0  # type: ignore[union-attr]
    with transaction(factory) as session:
        (newer,) = claim(session, push_settings, f.T0 + timedelta(seconds=1), DispatchStats()).items
    assert newer.id == stale.id and newer.token != stale.token
    results = [SendResult(201), SendResult(410), SendResult(503), SendResult(413)]
    answers = [(item, result, f.T0) for item, result in zip(old, results, strict=True)]
    outcomes = dispatcher_module.record_batch(factory, push_settings, answers, random.Random(1))
    assert outcomes == ["stale", "gone", "retried", "dead"]
    rows = _rows(factory)
    assert rows[stale.id].status == "sending" and rows[stale.id].claim_token == newer.token
    assert [rows[item.id].status for item in old[1:]] == ["gone", "pending", "dead"]
    assert rows[old[1].id].finished_at == f.T0 and rows[old[2].id].finished_at is None
    assert [rows[item.id].last_status_code for item in old[1:]] == [410, 503, 413]
    assert all(rows[item.id].claim_token is None for item in old[1:])
    # The stale row's 201 marks nothing; the 410 ends its subscription.
    by_id = {item.id: item.subscription_id for item in old}
    assert _sub(factory, by_id[stale.id]).last_success_at is None
    assert _sub(factory, by_id[old[1].id]).status == "dead"
    assert {_sub(factory, by_id[item.id]).status for item in old[2:]} == {"active"}


@pytest.mark.parametrize("title", ["kort", "å" * 5000, "\u0001" * 3000])
def test_payloads_fit_one_push_record(title: str) -> None:
    """A long title is cut so the JSON fits 3993 bytes (4096 with aes128gcm overhead)."""
    payload = {"title": title, "advice_id": "a" * 36, "patient_id": "p" * 36, "url": "/x"}
    fitted = fit_payload(payload)
    assert len(encode_payload(fitted)) <= MAX_PLAINTEXT_BYTES
    assert {k: v for k, v in fitted.items() if k != "title"} == {
        k: v for k, v in payload.items() if k != "title"
    }
    if title == "kort":
        assert fitted == payload


def test_an_answer_that_cannot_be_recorded_costs_only_its_own_row(
    factory: sessionmaker[Session],
    push_settings: Settings,
    push_service: LocalPushService,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A batch's answers go in one transaction; when that fails (here: one row's update
    raises), each is recorded alone: the others are sent and final, the one row stays
    ``sending`` and goes again after its lease."""
    sender = RecordingSender()
    with transaction(factory) as session:
        user, patient = f.user(session, "asta"), f.patient(session, "asta")
        subs = [f.subscription(session, user, push_service.subscriber()) for _ in range(3)]
        for n in range(6):
            f.message(session, subs[n % 3], patient, n)
    ids = sorted(_rows(factory))
    broken = ids[2]
    real_many = dispatcher_module.repository.finish_claimed_many

    def finish_claimed_many(session: Session, claims: list[tuple[str, str, dict]]) -> set[str]:
        if any(message_id == broken for message_id, _, _ in claims):
            raise RuntimeError("this row cannot be written")
        return real_many(session, claims)

    monkeypatch.setattr(dispatcher_module.repository, "finish_claimed_many", finish_claimed_many)
    stats = dispatch(factory, push_settings, f.T0, sender=sender)
    assert (stats.sent, stats.unrecorded, len(sender.sent)) == (5, 1, 6)
    rows = _rows(factory)
    assert rows[broken].status == "sending"
    assert {rows[i].status for i in ids if i != broken} == {"sent"}
    assert all(_sub(factory, sub.id).last_success_at is not None for sub in subs)

    monkeypatch.setattr(dispatcher_module.repository, "finish_claimed_many", real_many)
    again = dispatch(factory, push_settings, f.T0 + timedelta(minutes=10), sender=sender)
    assert again.sent == 1 and _rows(factory)[broken].status == "sent"


def test_a_subscription_s_latest_delivery_is_noted_to_the_hour(
    factory: sessionmaker[Session], push_settings: Settings, push_service: LocalPushService
) -> None:
    """Written on the first delivery, then again only once an hour has passed since."""
    sender = RecordingSender()
    with transaction(factory) as session:
        asta, target = f.user(session, "asta"), f.patient(session, "asta")
        sub_id = f.subscription(session, asta, push_service.subscriber()).id
    noted = []
    for minutes in (0, 10, 59, 61, 62):
        at = f.T0 + timedelta(minutes=minutes)
        with transaction(factory) as session:
            sub = session.get(PushSubscription, sub_id)
            assert sub is not None
            f.message(session, sub, target, minutes + 1, now=at)
        assert dispatch(factory, push_settings, at, sender=sender).sent == 1
        noted.append(_sub(factory, sub_id).last_success_at)
    later = f.T0 + timedelta(minutes=61)
    assert noted == [f.T0, f.T0, f.T0, later, later]


def test_a_claim_takes_the_waiting_rows_in_time_order_off_their_index(
    factory: sessionmaker[Session], push_settings: Settings, push_service: LocalPushService
) -> None:
    """Pending rows and sending rows whose lease ran out are claimed by their time, in
    batches; a row under a live lease, a finished row and a later one are not. The claim's
    statement is served in order by the waiting rows' index, with no sort of the backlog
    (both databases; a claim behind 12,000 waiting rows read and sorted them all)."""
    minutes = {"a": -3, "b": -2, "c": -1, "leased": 10, "sent": -10, "later": 60}
    statuses = {"b": "sending", "leased": "sending", "sent": "sent"}
    with transaction(factory) as session:
        target = f.patient(session, "asta")
        sub = f.subscription(session, f.user(session, "asta"), push_service.subscriber())
        ids = {}
        for n, (name, offset) in enumerate(minutes.items()):
            row = f.message(session, sub, target, n, ttl=86_400, now=f.T0 - timedelta(hours=1))
            row.status = statuses.get(name, "pending")
            row.next_attempt_at = f.T0 + timedelta(minutes=offset)
            ids[row.id] = name
    two = push_settings.model_copy(update={"push_batch_size": 2})
    batches = []
    for _ in range(3):
        with transaction(factory) as session:
            batches.append(
                [ids[item.id] for item in claim(session, two, f.T0, DispatchStats()).items]
            )
    assert batches == [["a", "b"], ["c"], []]

    with transaction(factory) as session:
        steps = plan(session.connection(), repository._DUE, {"now": f.T0, "limit": 50})
    assert "ix_outbox_due" in steps, steps
    assert "Sort" not in steps and "TEMP B-TREE" not in steps, steps
