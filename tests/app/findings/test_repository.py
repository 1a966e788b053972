"""Evaluations from the database, on both databases: looking up recorded firings by key."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from app.findings.models import Evaluation, EvaluationStatus
from app.findings.repository import _IN_CHUNK, evaluation_states
from tests.app.factories import patient_id

RULES = ("bp-home-mean-high", "bp-low", "bp-very-high")
# More anchors than SQLite's chunk of 500, and anchors that need quoting as constants.
ANCHORS = [f"reading-{i:04d}" for i in range(1200)] + ["it's", 'say "hej"', "back\\slash"]


@pytest.fixture
def db(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose writes are never committed."""
    with factory() as session:
        yield session
        session.rollback()


def _record(
    session: Session,
    pid: str,
    rule_id: str,
    anchor: str,
    version: int,
    status: str,
    at: datetime = datetime(2026, 11, 30, tzinfo=UTC),
) -> str:
    row = Evaluation(
        patient_id=pid,
        rule_id=rule_id,
        rule_version=1,
        plan_version=version,
        mode="active",
        anchor_key=anchor,
        anchor_time=at,
        status=status,
        reading_ids=[],
        explanation={},
        created_at=datetime(2026, 11, 30, tzinfo=UTC),
    )
    session.add(row)
    session.flush()
    return row.id


def test_the_states_of_the_keys_asked_for_and_only_those(db: Session) -> None:
    """Every recorded key asked for, under the plan version asked for; none other."""
    pid = patient_id(db, "allan")
    other = patient_id(db, "gunilla")
    expected = {}
    for i, anchor in enumerate(ANCHORS):
        rule = RULES[i % 3]
        status = EvaluationStatus.RETRACTED if i % 7 == 0 else EvaluationStatus.FIRED
        expected[(rule, anchor)] = (_record(db, pid, rule, anchor, 2, status), status)
    _record(db, pid, RULES[0], "reading-0003", 1, EvaluationStatus.FIRED)  # another version
    _record(db, other, RULES[1], "reading-0001", 2, EvaluationStatus.FIRED)  # another patient
    _record(db, pid, RULES[1], "reading-0000", 2, EvaluationStatus.FIRED)  # a key not asked
    asked = set(expected) | {(RULES[0], "reading-0001"), (RULES[2], "never-recorded")}
    asked.discard((RULES[1], "reading-0000"))
    wanted = {key: state for key, state in expected.items() if key in asked}

    assert evaluation_states(db, pid, 2, asked) == wanted
    assert evaluation_states(db, pid, 2, set()) == {}


def test_the_keys_reach_each_database_in_the_form_its_planner_searches_fast(
    db: Session, backend: str
) -> None:
    """PostgreSQL: one round trip, and keys the server never sees as parameters (as
    parameters the statement was prepared after a few syncs, and the generic plan searched
    the list of parameters row by row for each of the patient's evaluations: quadratic in a
    dense week). SQLite: the keys bound, in chunks within its variable limit, each found
    through the unique index."""
    pid = patient_id(db, "allan")
    for i, anchor in enumerate(ANCHORS):
        _record(db, pid, RULES[i % 3], anchor, 2, EvaluationStatus.FIRED)
    asked = {(RULES[i % 3], anchor) for i, anchor in enumerate(ANCHORS)}
    statements: list[tuple[str, Any]] = []

    def seen(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "FROM evaluations" in statement:
            statements.append((statement, parameters))

    engine = db.get_bind()
    event.listen(engine, "before_cursor_execute", seen)
    try:
        for _ in range(7):  # past psycopg's threshold for preparing a statement it sees again
            assert len(evaluation_states(db, pid, 2, asked)) == len(ANCHORS)
    finally:
        event.remove(engine, "before_cursor_execute", seen)

    if backend == "postgresql":
        assert len(statements) == 7
        for statement, parameters in statements:
            assert "'reading-0042'" in statement and "'it''s'" in statement
            assert not any(v in ANCHORS or v in RULES for v in parameters.values())
    else:
        chunks = -(-len(ANCHORS) // _IN_CHUNK)
        assert len(statements) == 7 * chunks
        for statement, parameters in statements:
            assert "reading-0042" not in statement and "it's" not in statement
            assert sum(v in ANCHORS for v in parameters) <= _IN_CHUNK
        bound = {v for _, parameters in statements[:chunks] for v in parameters}
        assert set(ANCHORS) <= bound


def test_many_keys_with_their_times_are_one_read_of_the_span_they_cover(db: Session) -> None:
    """A dense week's keys, told their anchors' times: one statement reads the patient's
    evaluations in the span of those times and picks the keys from them. The states are
    those asked for key by key; evaluations of another version, another patient, a key not
    asked or a time outside the span are not among them."""
    pid = patient_id(db, "allan")
    other = patient_id(db, "gunilla")
    start = datetime(2026, 11, 23, 6, tzinfo=UTC)
    times = {anchor: start + timedelta(minutes=7 * i) for i, anchor in enumerate(ANCHORS)}
    expected = {}
    for i, anchor in enumerate(ANCHORS):
        rule = RULES[i % 3]
        status = EvaluationStatus.RETRACTED if i % 7 == 0 else EvaluationStatus.FIRED
        row = _record(db, pid, rule, anchor, 2, status, times[anchor])
        expected[(rule, anchor)] = (row, status)
    middle = times["reading-0600"]
    _record(db, pid, RULES[0], "reading-0600", 1, EvaluationStatus.FIRED, middle)  # version 1
    _record(db, other, RULES[0], "reading-0600", 2, EvaluationStatus.FIRED, middle)
    _record(db, pid, RULES[2], "in-span-not-asked", 2, EvaluationStatus.FIRED, middle)
    _record(db, pid, RULES[1], "before", 2, EvaluationStatus.FIRED, start - timedelta(hours=1))
    asked = set(expected) | {(RULES[1], "reading-0600")}  # asked, never recorded
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "FROM evaluations" in statement:
            statements.append(statement)

    engine = db.get_bind()
    event.listen(engine, "before_cursor_execute", seen)
    try:
        by_span = evaluation_states(db, pid, 2, asked, {**times, "before": start})
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert by_span == expected == evaluation_states(db, pid, 2, asked)
    assert len(statements) == 1 and "anchor_time" in statements[0]
    # A key whose anchor's time is not known: asked by the keys, as before.
    assert evaluation_states(db, pid, 2, asked | {(RULES[0], "no-time")}, times) == expected
