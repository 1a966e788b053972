"""The readings table: the queries every domain runs on it, and readings as the rules see them.

Readings move through here as plain column mappings (Core rows), not ORM objects: batches of
thousands are built, inserted and fed to the rules without the unit of work.

A reading *counts* when it is final (not entered in error) and not another source's copy of
a measurement already stored (``duplicate_of`` is null). Windows are half-open,
``start ≤ time < end``, everywhere; a caller that wants readings *at* ``end`` too asks for
:func:`through` ``(end)`` (times are stored to the microsecond).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Select, String, Table, and_, bindparam, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app import bulk
from app.db import database_of, new_id
from app.feed.models import Change
from app.readings.fact_cache import FACTS
from app.readings.models import ImportRun, Reading, ReadingStatus, Source
from rules.facts import ReadingFact

ReadingRow = Mapping[Any, Any]
READINGS = cast(Table, Reading.__table__)
_SOURCES = cast(Table, Source.__table__)
_RESOLUTION = timedelta(microseconds=1)
_IN_CHUNK = 500


def through(end: datetime) -> datetime:
    """The exclusive window end that still takes in readings at ``end``."""
    return end + _RESOLUTION


def to_fact(row: ReadingRow) -> ReadingFact:
    """A stored reading as the rule engine sees it."""
    return ReadingFact(
        id=row["id"],
        type=row["type"],
        time=row["time"],
        values={k: Decimal(v) for k, v in row["values"].items()},
        unit=row["unit"],
        original_values={k: Decimal(v) for k, v in row["original_values"].items()},
        original_unit=row["original_unit"],
        end_time=row["end_time"],
        context=row["context"],
    )


# The columns a fact is made of: a history of thousands reads no more than these.
_FACT_COLUMNS = [
    READINGS.c[name]
    for name in (
        "id",
        "type",
        "time",
        "values",
        "unit",
        "original_values",
        "original_unit",
        "end_time",
        "context",
    )
]


def counted_facts(
    session: Session,
    patient_id: str,
    types: Collection[str],
    start: datetime,
    end: datetime,
    *,
    known: Sequence[ReadingFact] = (),
) -> list[ReadingFact]:
    """Readings that count, of these types, with ``start ≤ time < end``, in time order.

    Which readings count is asked of the database; their content comes from ``known``
    (counted readings in hand: a batch just stored), else from the facts kept between
    batches (:mod:`app.readings.fact_cache`), else is read and decoded.
    """
    if not types:
        return []
    params = {"patient": patient_id, "types": sorted(types), "start": start, "end": end}
    ids = session.scalars(_COUNTED_IDS, params).all()
    database = database_of(session)
    facts = {f.id: f for f in known}
    facts.update(FACTS.get_many(database, (i for i in ids if i not in facts)))
    missing = [i for i in ids if i not in facts]
    for offset in range(0, len(missing), _IN_CHUNK):  # keep the IN list a sane size
        chunk = missing[offset : offset + _IN_CHUNK]
        rows = session.execute(select(*_FACT_COLUMNS).where(READINGS.c.id.in_(chunk))).mappings()
        facts.update((row["id"], to_fact(row)) for row in rows)
    FACTS.put_many(database, (facts[i] for i in ids))
    return [facts[i] for i in ids]


_COUNTED_IDS = (
    select(READINGS.c.id)
    .where(
        READINGS.c.patient_id == bindparam("patient"),
        READINGS.c.type.in_(bindparam("types", expanding=True)),
        READINGS.c.time >= bindparam("start"),
        READINGS.c.time < bindparam("end"),
        READINGS.c.status == ReadingStatus.FINAL,
        READINGS.c.duplicate_of.is_(None),
    )
    .order_by(READINGS.c.time, READINGS.c.id)
)


_CHANGES = Change.__table__
# Every change after a feed position, with the time of those that are readings of one type
# (NULL for the others): one statement for what a sync's goal refresh asks.
_CHANGED_TIMES = (
    select(_CHANGES.c.seq, READINGS.c.time)
    .select_from(
        _CHANGES.outerjoin(
            READINGS,
            and_(
                _CHANGES.c.entity == "reading",
                READINGS.c.id == _CHANGES.c.entity_id,
                READINGS.c.type == bindparam("type"),
            ),
        )
    )
    .where(_CHANGES.c.patient_id == bindparam("patient"), _CHANGES.c.seq > bindparam("after"))
)


def changed_times(
    session: Session, patient_id: str, type_: str, after_seq: int, head_seq: int
) -> list[datetime] | None:
    """The times of a type's readings changed after a feed position, or None when the feed
    no longer holds every change after it (``head_seq``: the feed's last number).

    A patient's changes are numbered without gaps, so the feed holds every change after
    ``after_seq`` exactly when the first one left is ``after_seq + 1`` (or none is due: the
    head has not moved). Nothing deletes changes today; the feed's readers allow for a
    retention that drops the oldest, as :func:`app.feed.service.read` does.
    """
    rows = session.execute(
        _CHANGED_TIMES, {"patient": patient_id, "type": type_, "after": after_seq}
    ).all()
    # With none left after it, none may have been made: the head tells.
    complete = min(row.seq for row in rows) == after_seq + 1 if rows else head_seq <= after_seq
    if not complete:
        return None
    return [row.time for row in rows if row.time is not None]


def upsert_source(
    session: Session,
    patient_id: str,
    *,
    client_source_id: str,
    values: Mapping[str, Any],
    now: datetime,
) -> str:
    """Record an app or device (created on first sight, ``last_seen`` now); return its id.

    One statement: an insert that, when the source is known, only moves ``last_seen`` (the
    first sight's name and kind stay) and returns the id either way.
    """
    params = {"new_id": new_id(), "patient": patient_id, "client_id": client_source_id, "now": now}
    upsert = _SOURCE_UPSERTS[session.get_bind().dialect.name]
    said = {f"said_{column}": values[column] for column in SOURCE_DESCRIPTION}
    source_id: str = session.execute(upsert, {**params, **said}).scalar_one()
    return source_id


def _source_upsert(dialect_insert: Any) -> Any:
    # On the table, not the mapped class: an insert of an entity goes the ORM's longer way.
    insert = dialect_insert(_SOURCES).values(
        id=bindparam("new_id"),
        patient_id=bindparam("patient"),
        client_source_id=bindparam("client_id"),
        first_seen=bindparam("now"),
        last_seen=bindparam("now"),
        **{column: bindparam(f"said_{column}") for column in SOURCE_DESCRIPTION},
    )
    return insert.on_conflict_do_update(
        index_elements=[_SOURCES.c.patient_id, _SOURCES.c.client_source_id],
        set_={"last_seen": insert.excluded.last_seen},
    ).returning(_SOURCES.c.id)


SOURCE_DESCRIPTION = ("kind", "name", "version", "device")
"""What an app says of itself, kept from its first sight (``values`` of upsert_source)."""

# Built once (here and below): a sync runs the same statements each time, and building one
# with its cache key costs as much as SQLAlchemy's execution of it from the compiled cache.
_SOURCE_UPSERTS = {
    "postgresql": _source_upsert(postgresql.insert),
    "sqlite": _source_upsert(sqlite.insert),
}


def by_client_id(
    session: Session, patient_id: str, source_id: str, client_ids: Collection[str]
) -> dict[str, ReadingRow]:
    """A source's stored readings with these client ids, by client id."""
    if not client_ids:
        return {}
    params = {"patient": patient_id, "source": source_id, "client_ids": list(client_ids)}
    query = _BY_CLIENT_ID[session.get_bind().dialect.name == "postgresql"]
    return {row["client_id"]: row for row in session.execute(query, params).mappings()}


def by_client_id_statement(*, postgres: bool) -> Select[Any]:
    """The statement of by_client_id: an IN list on SQLite, a join to the array on PostgreSQL.

    psycopg prepares a statement after a few runs, and PostgreSQL may then settle on a
    generic plan. For an IN list of bound parameters that plan read every reading of the
    source and compared each with every client id of the batch: half a second of a
    1,000-reading sync into a source of 10,000 (issue 17 §6). Joined to the unnested array,
    each client id is a probe of the unique index or a lookup in a hash of the source's
    readings, whatever the plan; and the ids stay one bound parameter, never written into
    the SQL (``tests/app/ingest/test_sync_api.py`` checks the generic plan).
    """
    if not postgres:
        return select(READINGS).where(
            READINGS.c.patient_id == bindparam("patient"),
            READINGS.c.source_id == bindparam("source"),
            READINGS.c.client_id.in_(bindparam("client_ids", expanding=True)),
        )
    asked = (
        func.unnest(bindparam("client_ids", type_=postgresql.ARRAY(String)))
        .table_valued("client_id")
        .render_derived(name="asked")
    )
    return (
        select(READINGS)
        .join(asked, READINGS.c.client_id == asked.c.client_id)
        .where(
            READINGS.c.patient_id == bindparam("patient"),
            READINGS.c.source_id == bindparam("source"),
        )
    )


_BY_CLIENT_ID = {postgres: by_client_id_statement(postgres=postgres) for postgres in (False, True)}


def counted_near(
    session: Session,
    patient_id: str,
    *,
    other_than_source: str,
    types: Collection[str],
    start: datetime,
    end: datetime,
) -> dict[str, list[ReadingFact]]:
    """Counted readings from other sources with ``start ≤ time ≤ end``, by type."""
    params = {
        "patient": patient_id,
        "source": other_than_source,
        "types": sorted(types),
        "start": start,
        "end": through(end),
    }
    grouped: dict[str, list[ReadingFact]] = {}
    for row in session.execute(_COUNTED_NEAR, params).mappings():
        grouped.setdefault(row["type"], []).append(to_fact(row))
    return grouped


_COUNTED_NEAR = select(READINGS).where(
    READINGS.c.patient_id == bindparam("patient"),
    READINGS.c.source_id != bindparam("source"),
    READINGS.c.type.in_(bindparam("types", expanding=True)),
    READINGS.c.time >= bindparam("start"),
    READINGS.c.time < bindparam("end"),
    READINGS.c.status == ReadingStatus.FINAL,
    READINGS.c.duplicate_of.is_(None),
)


def insert_rows(session: Session, rows: Sequence[ReadingRow]) -> None:
    """Insert readings, given as column mappings (see :mod:`app.bulk`)."""
    bulk.insert_rows(session, READINGS, rows)


def get(session: Session, reading_id: str) -> Reading | None:
    """A reading by id, or None (an over-long id is no reading's)."""
    return session.get(Reading, reading_id) if len(reading_id) <= 36 else None


def as_row(reading: Reading) -> ReadingRow:
    """An ORM reading as a column mapping."""
    return {c.key: getattr(reading, c.key) for c in READINGS.columns}


def list_readings(
    session: Session,
    patient_id: str,
    *,
    type_: str | None,
    start: datetime | None,
    end: datetime | None,
    after: tuple[datetime, str] | None,
    limit: int,
    include_deleted: bool = False,
) -> list[ReadingRow]:
    """A page of a patient's readings in time order (keyset on time, id)."""
    c = READINGS.c
    query = select(READINGS).where(c.patient_id == patient_id)
    if type_:
        query = query.where(c.type == type_)
    if start:
        query = query.where(c.time >= start)
    if end:
        query = query.where(c.time < end)
    if not include_deleted:
        query = query.where(c.status == ReadingStatus.FINAL)
    if after is not None:
        t, rid = after
        query = query.where((c.time > t) | ((c.time == t) & (c.id > rid)))
    return list(session.execute(query.order_by(c.time, c.id).limit(limit)).mappings())


def counts_by_type(
    session: Session, patient_id: str, start: datetime, end: datetime, type_: str | None = None
) -> dict[str, int]:
    """How many counted readings (final, not a duplicate) of each type in [start, end)."""
    query = (
        select(Reading.type, func.count())
        .where(
            Reading.patient_id == patient_id,
            Reading.time >= start,
            Reading.time < end,
            Reading.status == ReadingStatus.FINAL,
            Reading.duplicate_of.is_(None),
        )
        .group_by(Reading.type)
    )
    if type_ is not None:
        query = query.where(Reading.type == type_)
    return {str(t): int(n) for t, n in session.execute(query)}


def import_run(session: Session, patient_id: str, digest: str) -> ImportRun | None:
    """The patient's import run of the file with this digest."""
    return session.scalars(
        select(ImportRun).where(ImportRun.patient_id == patient_id, ImportRun.digest == digest)
    ).first()


def changed_page(
    session: Session,
    patient_id: str,
    *,
    since: datetime | None,
    after: tuple[datetime, str] | None,
    limit: int,
    type_: str | None = None,
) -> list[ReadingRow]:
    """A page of a patient's readings for an export, in time order (keyset on time, id).

    Entered-in-error readings are included (their status says so); another source's copy of
    a stored measurement is not (it is the same measurement). With ``since``, only readings
    received or entered in error after it.
    """
    c = READINGS.c
    query = select(READINGS).where(c.patient_id == patient_id, c.duplicate_of.is_(None))
    if type_ is not None:
        query = query.where(c.type == type_)
    if since is not None:
        query = query.where((c.received_at > since) | (c.deleted_at > since))
    if after is not None:
        t, rid = after
        query = query.where((c.time > t) | ((c.time == t) & (c.id > rid)))
    return list(session.execute(query.order_by(c.time, c.id).limit(limit)).mappings())


def sources_by_id(session: Session, source_ids: Collection[str]) -> dict[str, Source]:
    """Sources by their server id."""
    if not source_ids:
        return {}
    rows = session.scalars(select(Source).where(Source.id.in_(sorted(source_ids))))
    return {row.id: row for row in rows}
