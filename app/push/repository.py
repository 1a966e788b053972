"""Push subscriptions and outbox rows from the database."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Row, Select, Table, Update, bindparam, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from app.auth.models import ProxyGrant, User
from app.patients.models import Patient
from app.push.models import (
    WAITING,
    OutboxMessage,
    OutboxStatus,
    PushSubscription,
    SubscriptionStatus,
)

_OUTBOX = cast(Table, OutboxMessage.__table__)
_SUBSCRIPTIONS = cast(Table, PushSubscription.__table__)


def active_subscriptions(session: Session, user_id: str) -> list[PushSubscription]:
    """A user's subscriptions that still receive pushes, oldest first."""
    return list(
        session.scalars(
            select(PushSubscription)
            .where(
                PushSubscription.user_id == user_id,
                PushSubscription.status == SubscriptionStatus.ACTIVE,
            )
            .order_by(PushSubscription.created_at, PushSubscription.id)
        )
    )


def proxy_grants(session: Session, patient_id: str) -> Iterable[ProxyGrant]:
    """Every proxy grant of the patient, in force or not."""
    return session.scalars(select(ProxyGrant).where(ProxyGrant.patient_id == patient_id))


def subscription_by_endpoint(session: Session, endpoint: str) -> PushSubscription | None:
    """The stored subscription with this endpoint, if any."""
    return session.scalars(
        select(PushSubscription).where(PushSubscription.endpoint == endpoint)
    ).first()


def notifications(session: Session, patient_id: str, *, limit: int) -> list[OutboxMessage]:
    """A patient's notifications, newest first."""
    return list(
        session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.patient_id == patient_id)
            .order_by(OutboxMessage.created_at.desc(), OutboxMessage.id)
            .limit(limit)
        )
    )


# What a claim reads of a due row, not its outcome columns (each of those datetimes costs a
# conversion per row, and the claim runs once per batch of every worker); read off the front
# of the waiting rows' index (``ix_outbox_due``), so a batch costs the same behind any backlog.
_DUE: Select[Any] = (
    select(
        _OUTBOX.c.id,
        _OUTBOX.c.patient_id,
        _OUTBOX.c.user_id,
        _OUTBOX.c.subscription_id,
        _OUTBOX.c.kind,
        _OUTBOX.c.payload,
        _OUTBOX.c.urgency,
        _OUTBOX.c.ttl_seconds,
        _OUTBOX.c.topic,
        _OUTBOX.c.attempts,
        _OUTBOX.c.created_at,
    )
    .where(text(WAITING), _OUTBOX.c.next_attempt_at <= bindparam("now"))
    .order_by(_OUTBOX.c.next_attempt_at, _OUTBOX.c.id)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
)
_SUBSCRIPTIONS_BY_ID: Select[Any] = select(
    _SUBSCRIPTIONS.c.id, _SUBSCRIPTIONS.c.user_id, _SUBSCRIPTIONS.c.status,
    _SUBSCRIPTIONS.c.endpoint, _SUBSCRIPTIONS.c.p256dh, _SUBSCRIPTIONS.c.auth,
    _SUBSCRIPTIONS.c.patient_ids, _SUBSCRIPTIONS.c.last_success_at,
).where(_SUBSCRIPTIONS.c.id.in_(bindparam("ids", expanding=True)))  # fmt: skip


def due_messages(session: Session, now: datetime, limit: int) -> Sequence[Row[Any]]:
    """Up to ``limit`` outbox rows due now, locked for this worker (skip locked ones)."""
    return session.execute(_DUE, {"now": now, "limit": limit}).all()


def subscriptions_by_id(session: Session, ids: Iterable[str]) -> dict[str, Row[Any]]:
    """The subscriptions with these ids, as rows by id."""
    wanted = sorted(ids)
    if not wanted:
        return {}
    return {row.id: row for row in session.execute(_SUBSCRIPTIONS_BY_ID, {"ids": wanted})}


def recipients(
    session: Session, rows: Sequence[Row[Any]]
) -> tuple[dict[str, User], dict[str, Patient]]:
    """The rows' users and patients as objects by id, in two queries, not two per row."""
    users = session.scalars(select(User).where(User.id.in_(sorted({r.user_id for r in rows}))))
    patients = session.scalars(
        select(Patient).where(Patient.id.in_(sorted({r.patient_id for r in rows})))
    )
    return {u.id: u for u in users}, {p.id: p for p in patients}


def update_messages(session: Session, changes: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
    """Write each row's new values (rows this transaction has locked), in id order."""
    _write_outbox(
        session.connection(),
        [({"b_id": row_id}, values) for row_id, values in sorted(changes, key=lambda c: c[0])],
        guarded=False,
    )


def _write_outbox(
    connection: Connection,
    rows: Sequence[tuple[dict[str, Any], Mapping[str, Any]]],
    *,
    guarded: bool,
) -> None:
    """Update outbox rows, given as (their keys, their new values): one ``executemany`` per
    set of columns, the rows in the order given."""
    shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for keys, values in rows:
        params = {**keys, **{f"v_{name}": value for name, value in values.items()}}
        shapes.setdefault(tuple(sorted(values)), []).append(params)
    for columns, params_of_rows in shapes.items():
        connection.execute(_outbox_update(columns, guarded), params_of_rows)


@functools.lru_cache(maxsize=64)
def _outbox_update(columns: tuple[str, ...], guarded: bool) -> Update:
    where = [_OUTBOX.c.id == bindparam("b_id")]
    if guarded:  # only while the row is still sending under the claim that sent it
        where += [
            _OUTBOX.c.claim_token == bindparam("b_token"),
            _OUTBOX.c.status == OutboxStatus.SENDING,
        ]
    return (
        update(_OUTBOX)
        .where(*where)
        .values({name: bindparam(f"v_{name}", type_=_OUTBOX.c[name].type) for name in columns})
    )


def finish_claimed_many(
    session: Session, claims: Sequence[tuple[str, str, Mapping[str, Any]]]
) -> set[str]:
    """Update each row (and clear its claim) while it is still sending under its claim
    token; the ids updated.

    One locking read (in id order) finds the rows still held; their updates go as one
    ``executemany`` per set of columns, each still guarded by the claim token.
    """
    if not claims:
        return set()
    table = _OUTBOX
    wanted = {row_id: token for row_id, token, _ in claims}
    connection = session.connection()
    found = connection.execute(
        select(table.c.id, table.c.claim_token)
        .where(table.c.id.in_(sorted(wanted)), table.c.status == OutboxStatus.SENDING)
        .order_by(table.c.id)
        .with_for_update()
    )
    held = {row_id for row_id, token in found if token == wanted[row_id]}
    _write_outbox(
        connection,
        [
            ({"b_id": row_id, "b_token": token}, {**values, "claim_token": None})
            for row_id, token, values in sorted(claims, key=lambda claim: claim[0])
            if row_id in held
        ],
        guarded=True,
    )
    return held


def mark_subscriptions(
    session: Session, *, delivered: Mapping[str, datetime], gone: Mapping[str, datetime]
) -> None:
    """Note each subscription's latest delivery and end the active ones that are gone.

    The subscriptions are locked in id order first (two workers never deadlock), then
    updated with one ``executemany`` per kind.
    """
    ids = sorted(delivered.keys() | gone.keys())
    if not ids:
        return
    table = _SUBSCRIPTIONS
    connection = session.connection()
    connection.execute(
        select(table.c.id).where(table.c.id.in_(ids)).order_by(table.c.id).with_for_update()
    ).all()
    if delivered:
        connection.execute(
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .values(last_success_at=bindparam("b_at", type_=table.c.last_success_at.type)),
            [{"b_id": sub_id, "b_at": at} for sub_id, at in sorted(delivered.items())],
        )
    if gone:
        connection.execute(
            update(table)
            .where(table.c.id == bindparam("b_id"), table.c.status == SubscriptionStatus.ACTIVE)
            .values(
                status=SubscriptionStatus.DEAD,
                ended_at=bindparam("b_at", type_=table.c.ended_at.type),
            ),
            [{"b_id": sub_id, "b_at": at} for sub_id, at in sorted(gone.items())],
        )
