"""The outbox dispatcher: claim due notifications, send them, record how each ended.

One run:

1. **Claim** (one short transaction): select due rows (``pending``, or ``sending`` whose lease
   ran out) with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL — on SQLite the transaction itself
   holds the write lock (``BEGIN IMMEDIATE``) — and, in the same transaction, mark each
   ``sending`` with a fresh claim token, one more attempt, and a lease (``next_attempt_at``)
   that outlasts sending the whole batch. Rows that must not be sent end here: the
   subscription ended or moved to another user (cancelled), the recipient may no longer
   receive this patient's pushes (cancelled), the TTL ran out (expired), out of attempts
   (dead). A routine push inside the recipient's quiet hours waits for their end; urgent
   ones never wait. Commit.
2. **Send** the claimed rows outside any transaction, up to ``push_concurrency``
   subscriptions at once on the process's push loop (aiohttp, kept-alive connections per
   push service; :mod:`app.push.transport`); one subscription's messages go in order, and
   once its endpoint answers 404/410 the rest of them are not sent. Each endpoint is checked
   again first (its host may resolve to a private address by now), each host resolved once
   per batch.
3. **Record** the batch's answers in one transaction (rows in id order, then each
   subscription once, in id order, so two workers never deadlock; if that transaction fails,
   each answer alone), each row only while it still holds our
   claim token: 2xx sent; 404/410 gone (the subscription is marked dead and never used
   again); 429 retried after ``Retry-After``; 5xx, timeouts and connection errors retried
   with exponential backoff and jitter; 413 and other 4xx dead-lettered; a retry past
   ``push_max_attempts`` dead-lettered.

**Delivery guarantee.** The service sends a message at most once, except in one case: a crash
(or a lost database) after the push service accepted a message and before the batch's answers
were recorded. Those rows are then still ``sending``; when their lease runs out the next claim
sends them again. So the boundary is at-least-once, and the window is one batch per worker
(``push_batch_size``): one commit per batch instead of one per message is what lets a worker
deliver hundreds a second. A resend carries the same
``Topic``: a push service keeps only the newest message per topic while the device is
offline, so the resend replaces the first one instead of stacking; and the payload carries the
same ``advice_id`` (or reminder/flag id) so the service worker can show it with that id as the
notification ``tag``, which replaces a notification already on the screen.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from app import metrics
from app.auth.models import User
from app.auth.policy import Action, Actor, Relation, may, receives_escalations, relation_to
from app.config import Settings
from app.db import new_id, transaction
from app.localtime import zone_named
from app.patients.models import Patient
from app.push import endpoints, repository, transport
from app.push.models import (
    FINAL_STATUSES,
    OutboxStatus,
    SubscriptionStatus,
)
from app.push.quiet_hours import quiet_until
from app.push.sender import MAX_PLAINTEXT_BYTES, PushMessage, PushSender, SendResult
from app.push.sender import encode_payload as _encode
from app.push.service import ENDPOINT_REFUSED, SENDER_ERROR

LEASE_MARGIN_SECONDS = 60
# A subscription's latest delivery is noted to the hour: it tells a working subscription from
# one silent for months, and writing it after every batch cost a locking read and an update
# of each subscription in every batch (a tenth of a push's work).
SUCCESS_MARK_INTERVAL = timedelta(hours=1)
log = logging.getLogger(__name__)


@dataclass
class DispatchStats:
    """What one run did, by outcome."""

    claimed: int = 0
    sent: int = 0
    gone: int = 0
    retried: int = 0
    dead: int = 0
    expired: int = 0
    cancelled: int = 0
    deferred: int = 0  # quiet hours
    stale: int = 0  # our lease ran out and another claim took the row over
    unrecorded: int = 0  # the answer could not be written: the row waits for its lease

    def as_dict(self) -> dict[str, int]:
        """The figures as a dict, for logs."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class Claimed:
    """A row this worker holds, with what to send."""

    id: str
    token: str
    attempts: int
    subscription_id: str
    message: PushMessage
    last_success_at: datetime | None = None  # the subscription's, when claimed


@dataclass
class _Batch:
    items: list[Claimed] = field(default_factory=list)
    selected: int = 0


def dispatch(
    factory: sessionmaker[Session],
    settings: Settings,
    now: datetime,
    *,
    sender: PushSender,
    clock: Callable[[], datetime] | None = None,
    rng: random.Random | None = None,
    resolver: endpoints.Resolver | None = None,
) -> DispatchStats:
    """Deliver the outbox rows due at ``now``: claim, send, record (see the module notes).

    ``clock`` gives the time at which each answer came (default: ``now``), so a
    ``Retry-After`` counts from the answer, not from the start of the run.
    """
    at = clock or (lambda: now)
    jitter = rng or random.Random()
    hosts = resolver or endpoints.resolver_for(settings)
    stats = DispatchStats()
    for _ in range(settings.push_drain_batches):
        with transaction(factory) as session:
            batch = claim(session, settings, now, stats)
        if batch.selected == 0:
            break
        groups = _by_subscription(batch.items)
        refused = _refused_endpoints(groups, settings, endpoints.CachingResolver(hosts))
        sent = transport.run(_send_groups(groups, refused, settings.push_concurrency, sender, at))
        answers = [answer for group in sent for answer in group]
        for outcome in record_batch(factory, settings, answers, jitter):
            setattr(stats, outcome, getattr(stats, outcome) + 1)
            metrics.PUSH_OUTCOMES.labels(outcome=outcome).inc()
    return stats


Answer = tuple[Claimed, SendResult | None, datetime]  # the row, its answer, when it came
Mark = tuple[str, str, datetime]  # ("delivered" | "gone", subscription id, when)


def _by_subscription(items: Sequence[Claimed]) -> list[list[Claimed]]:
    """The claimed rows grouped by subscription, each group in claim order."""
    groups: dict[str, list[Claimed]] = {}
    for item in items:
        groups.setdefault(item.subscription_id, []).append(item)
    return list(groups.values())


def _refused_endpoints(
    groups: Sequence[Sequence[Claimed]], settings: Settings, resolver: endpoints.Resolver
) -> dict[str, SendResult]:
    """The answer for each endpoint the service must no longer push to (checked in this
    thread: resolving a host blocks, and must not hold up the push loop)."""
    refused = {}
    for endpoint in {group[0].message.endpoint for group in groups}:
        problem = endpoints.endpoint_problem(endpoint, settings, resolver)
        if problem is not None:
            refused[endpoint] = SendResult(None, error=ENDPOINT_REFUSED + problem.code, final=True)
    return refused


async def _send_groups(
    groups: Sequence[Sequence[Claimed]],
    refused: dict[str, SendResult],
    concurrency: int,
    sender: PushSender,
    at: Callable[[], datetime],
) -> list[list[Answer]]:
    """Send each subscription's messages in order, ``concurrency`` subscriptions at once."""
    slots = asyncio.Semaphore(concurrency)

    async def in_turn(group: Sequence[Claimed]) -> list[Answer]:
        async with slots:
            return await _send_in_order(group, refused, sender, at)

    return list(await asyncio.gather(*(in_turn(group) for group in groups)))


async def _send_in_order(
    group: Sequence[Claimed],
    refused: dict[str, SendResult],
    sender: PushSender,
    at: Callable[[], datetime],
) -> list[Answer]:
    """Send one subscription's messages in order; none after its endpoint says it is gone."""
    answers: list[Answer] = []
    gone = False
    for item in group:
        result = None if gone else await _send(item, refused, sender)
        gone = gone or (result is not None and result.status in (404, 410))
        answers.append((item, result, at()))
    return answers


def record_batch(
    factory: sessionmaker[Session], settings: Settings, answers: list[Answer], rng: random.Random
) -> list[str]:
    """Record a batch's answers in one transaction; if that fails, each in its own.

    Set-based: the rows this worker still holds are locked and read in one statement (in id
    order), their updates go as one ``executemany`` per shape, the subscriptions' marks
    likewise after locking them in id order, so two workers recording at once take their
    locks in the same order and never deadlock. A row that cannot be recorded even alone
    stays ``sending`` and is sent again after its lease. The outcomes follow ``answers``.
    """
    decided = [
        (item, when, verdict(settings, item, result, when, rng)) for item, result, when in answers
    ]
    try:
        with transaction(factory) as session:
            held = repository.finish_claimed_many(
                session, [(item.id, item.token, v.values) for item, _, v in decided]
            )
            apply_marks(
                session,
                [
                    (v.mark, item.subscription_id, when)
                    for item, when, v in decided
                    if v.mark is not None and item.id in held
                ],
            )
        return [v.outcome if item.id in held else "stale" for item, _, v in decided]
    except Exception:  # noqa: BLE001 - one bad row must not cost the batch its answers
        log.exception("recording %d push answers together failed: one by one", len(answers))
    outcomes = []
    for item, when, v in decided:
        try:
            with transaction(factory) as session:
                outcomes.append(_record_decided(session, item, when, v))
        except Exception:  # noqa: BLE001 - left to its lease, the others are recorded
            log.exception("push %s: its answer could not be recorded", item.id)
            outcomes.append("unrecorded")
    return outcomes


async def _send(item: Claimed, refused: dict[str, SendResult], sender: PushSender) -> SendResult:
    """Send one claimed message, unless its endpoint is no longer allowed; never raise.

    Any error of one message is that message's outcome (a dead letter), never the end of the
    run for the others.
    """
    answer = refused.get(item.message.endpoint)
    if answer is not None:
        return answer
    try:
        return await sender.send_async(item.message)
    except Exception as exc:  # noqa: BLE001 - one broken message must not stop the others
        log.exception("push %s failed in the sender", item.id)
        return SendResult(None, error=SENDER_ERROR + type(exc).__name__, final=True)


def claim(session: Session, settings: Settings, now: datetime, stats: DispatchStats) -> _Batch:
    """Claim up to a batch of due rows for this worker (call inside a transaction).

    The rows and their subscriptions are read as plain rows; only the users and patients,
    which the access policy asks about, are loaded as objects. Every row's new state is
    written at the end, set-wise.
    """
    rows = repository.due_messages(session, now, settings.push_batch_size)
    batch = _Batch(selected=len(rows))
    if not rows:
        return batch
    subscriptions = repository.subscriptions_by_id(
        session, {row.subscription_id for row in rows if row.subscription_id}
    )
    users, patients = repository.recipients(session, rows)
    # The lease outlasts every send timing out one after another (one subscription's
    # messages go in order; concurrency across subscriptions only shortens the batch).
    lease = timedelta(seconds=settings.push_timeout_seconds * len(rows) + LEASE_MARGIN_SECONDS)
    changes: list[tuple[str, dict[str, Any]]] = []

    def end(row_id: str, status: OutboxStatus, error: str) -> None:
        changes.append(
            (row_id, {"status": status, "finished_at": now, "claim_token": None,
                      "last_error": error[:500]})
        )  # fmt: skip

    for row in rows:
        sub = subscriptions.get(row.subscription_id) if row.subscription_id else None
        if sub is None or sub.status != SubscriptionStatus.ACTIVE or sub.user_id != row.user_id:
            end(row.id, OutboxStatus.CANCELLED, "the subscription ended")
            stats.cancelled += 1
            continue
        expires = row.created_at + timedelta(seconds=row.ttl_seconds)
        if now >= expires:
            end(row.id, OutboxStatus.EXPIRED, "its TTL ran out before delivery")
            stats.expired += 1
            continue
        if row.attempts >= settings.push_max_attempts:
            end(row.id, OutboxStatus.DEAD, "out of attempts")
            stats.dead += 1
            continue
        user = users.get(row.user_id)
        patient = patients.get(row.patient_id)
        if (
            user is None
            or patient is None
            or not may_receive(session, user, patient, row.kind, sub.patient_ids, now)
        ):
            end(row.id, OutboxStatus.CANCELLED, "the recipient may no longer receive it")
            stats.cancelled += 1
            continue
        payload = _encode(row.payload)
        if len(payload) > MAX_PLAINTEXT_BYTES:
            end(row.id, OutboxStatus.DEAD, "the payload does not fit one push")
            stats.dead += 1
            continue
        if row.urgency != "high":
            # A user who never chose quiet hours still sleeps: the default holds for them.
            quiet = user.quiet_hours
            if quiet is None:
                quiet = settings.default_quiet_hours
            until = quiet_until(quiet, zone_named(patient.timezone), now)
            if until is not None:
                changes.append((row.id, {"status": OutboxStatus.PENDING, "next_attempt_at": until}))
                stats.deferred += 1
                continue
        token = new_id()
        attempts = row.attempts + 1
        changes.append(
            (row.id, {"status": OutboxStatus.SENDING, "attempts": attempts, "claim_token": token,
                      "next_attempt_at": now + lease})
        )  # fmt: skip
        stats.claimed += 1
        batch.items.append(
            Claimed(
                id=row.id,
                token=token,
                attempts=attempts,
                subscription_id=sub.id,
                last_success_at=sub.last_success_at,
                message=PushMessage(
                    endpoint=sub.endpoint,
                    p256dh=sub.p256dh,
                    auth=sub.auth,
                    payload=payload,
                    # The freshness left, not the TTL it was written with: a retry an hour
                    # later must not let the push service hold it for the full time again.
                    ttl=max(1, int((expires - now).total_seconds())),
                    urgency=row.urgency,
                    topic=row.topic,
                ),
            )
        )
    repository.update_messages(session, changes)
    return batch


def may_receive(
    session: Session,
    user: User,
    patient: Patient,
    kind: str,
    subscribed_for: Sequence[str],
    now: datetime,
) -> bool:
    """Whether the recipient may still get this patient's push, asked of the one policy.

    Checked again at sending time: a grant may have been revoked, or a clinician may have
    left the team, since the row was written. ``subscribed_for``: the patients a proxy's
    subscription was made for.
    """
    access = relation_to(session, Actor(user=user), patient, now)
    if access is None:
        return False
    if kind == "escalation":
        return receives_escalations(access)
    if access.relation == Relation.PROXY and patient.id not in subscribed_for:
        return False
    if kind == "message":
        # Told of a new message: whoever may still take part in the patient's thread.
        return may(access, Action.MESSAGE)
    if kind == "team_request":
        # Told of a care team's request: whoever may still decide it for the patient.
        return may(access, Action.DECIDE_TEAM_REQUEST)
    return may(access, Action.SUBSCRIBE_ADVICE)


@dataclass(frozen=True)
class Verdict:
    """What one answer does to its row: the outcome, the row's new values, the subscription's
    mark (``delivered``, ``gone`` or None)."""

    outcome: str
    values: dict[str, Any]
    mark: str | None = None


def verdict(
    settings: Settings,
    item: Claimed,
    result: SendResult | None,
    at: datetime,
    rng: random.Random,
) -> Verdict:
    """What an answer means for its row, decided without the database.

    ``result`` None: not sent, because the subscription turned out gone earlier in the run.
    """

    def to(
        status: OutboxStatus, outcome: str, values: dict[str, Any], mark: str | None = None
    ) -> Verdict:
        if status in FINAL_STATUSES:
            values["finished_at"] = at
        return Verdict(outcome, {"status": status, **values}, mark)

    if result is None:
        return to(OutboxStatus.CANCELLED, "cancelled", {"last_error": "the subscription ended"})
    status = result.status
    answer: dict[str, Any] = {"last_status_code": status, "last_error": result.error[:500] or None}
    if result.final:
        return to(OutboxStatus.DEAD, "dead", answer)
    if status is not None and 200 <= status < 300:
        # The subscription's latest delivery, noted when an hour has passed since the last.
        noted = item.last_success_at
        due = noted is None or at - noted >= SUCCESS_MARK_INTERVAL
        return to(
            OutboxStatus.SENT, "sent", {"sent_at": at, **answer}, "delivered" if due else None
        )
    if status in (404, 410):
        answer["last_error"] = result.error[:500] or "subscription gone"
        return to(OutboxStatus.GONE, "gone", answer, "gone")
    retryable = status is None or status == 429 or status >= 500
    if not retryable or item.attempts >= settings.push_max_attempts:
        # 413 and every other 4xx: sending it again cannot help; or out of attempts.
        reason = f"refused with {status}" if not retryable else f"out of attempts ({status})"
        answer["last_error"] = result.error[:500] or reason
        return to(OutboxStatus.DEAD, "dead", answer)
    delay = None
    if status == 429:
        delay = retry_after_seconds(result.retry_after, at)
        if delay is not None:
            delay = min(delay, float(settings.push_retry_after_max_seconds))
    if delay is None:
        delay = backoff_seconds(settings, item.attempts, rng)
    answer["next_attempt_at"] = at + timedelta(seconds=delay)
    return to(OutboxStatus.PENDING, "retried", answer)


def record(
    session: Session,
    settings: Settings,
    item: Claimed,
    result: SendResult | None,
    at: datetime,
    rng: random.Random,
) -> str:
    """Record one answer on the row this claim still holds; the name of the outcome."""
    return _record_decided(session, item, at, verdict(settings, item, result, at, rng))


def _record_decided(session: Session, item: Claimed, at: datetime, decided: Verdict) -> str:
    # Guarded by our claim token: a claim that lost its lease changes nothing.
    if item.id not in repository.finish_claimed_many(
        session, [(item.id, item.token, decided.values)]
    ):
        return "stale"
    if decided.mark is not None:
        apply_marks(session, [(decided.mark, item.subscription_id, at)])
    return decided.outcome


def apply_marks(session: Session, marks: Sequence[Mark]) -> None:
    """Write what answers say of their subscriptions: the latest delivery, or gone.

    The subscriptions are locked in id order first, then updated set-wise.
    """
    delivered: dict[str, datetime] = {}
    gone: dict[str, datetime] = {}
    for kind, subscription_id, at in marks:
        into = delivered if kind == "delivered" else gone
        into[subscription_id] = max(at, into.get(subscription_id, at))
    repository.mark_subscriptions(session, delivered=delivered, gone=gone)


def backoff_seconds(settings: Settings, attempts: int, rng: random.Random) -> float:
    """Exponential backoff after ``attempts`` failures, capped, with jitter in [d/2, d]."""
    exponent = min(max(attempts - 1, 0), 30)
    ceiling = min(
        settings.push_backoff_max_seconds, settings.push_backoff_base_seconds * 2**exponent
    )
    return float(ceiling * (0.5 + 0.5 * rng.random()))


def retry_after_seconds(value: str | None, at: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date), or None."""
    if not value:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():  # "²".isdigit() holds too, and int() refuses it
        return float(int(text[:12]))  # capped by the caller anyway
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - at).total_seconds())
