"""Evaluations, advice, flags and flag notes from the database."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Select, Table, bindparam, select
from sqlalchemy.orm import Session, defer

from app import bulk
from app.findings.models import Advice, Evaluation, EvaluationStatus, Flag, FlagNote, FlagStatus
from app.patients.models import Patient

_IN_CHUNK = 500  # keep an IN list a sane size


def evaluation_states(
    session: Session,
    patient_id: str,
    plan_version: int,
    keys: set[tuple[str, str]],
    anchor_times: Mapping[str, datetime] | None = None,
) -> dict[tuple[str, str], tuple[str, str]]:
    """(id, status) of the evaluations recorded under a plan version for these keys.

    Plain rows, no objects: a late reading in a dense week re-evaluates thousands of anchors
    that fired before and still do, and nothing of them is wanted but that.

    With ``anchor_times`` (each anchor's time, by anchor key) and more keys than one IN list
    holds: the patient's evaluations in the span of those times, one range read through
    ``ix_evaluations_patient_time``, the keys picked from them. Else by the keys, as follows.

    On PostgreSQL one statement with the rule ids and anchors written into it as constants.
    As bound parameters, the same chunk of 500 ran often enough that psycopg prepared it and
    the server then used its generic plan: the patient's evaluations through the unique
    index's first column, each row searched for in the 500 parameters one by one (a constant
    list is searched through a hash), 0.2 s a chunk with 10,000 evaluations, so a delete in
    a dense week cost the square of the week. Constants make a statement that is not
    prepared (its text is new each time) and a plan that is linear: the unique index probed
    per key, or the patient's rows looked up in a hash of the keys. SQLite: bound chunks
    within its variable limit, each key found through the unique index.
    """
    found: dict[tuple[str, str], tuple[str, str]] = {}
    if anchor_times is not None and len(keys) > _IN_CHUNK:
        times = [anchor_times[a] for _, a in keys if a in anchor_times]
        if len(times) == len(keys):
            span = {
                "patient": patient_id,
                "version": plan_version,
                "start": min(times),
                "end": max(times),
            }
            for id_, rule_id, anchor, status in session.execute(_STATES_BETWEEN, span).all():
                if (rule_id, anchor) in keys:
                    found[(rule_id, anchor)] = (id_, status)
            return found
    anchors = sorted({anchor for _, anchor in keys})
    rules = sorted({rule for rule, _ in keys})
    constants = session.get_bind().dialect.name == "postgresql"
    step = max(len(anchors), 1) if constants else _IN_CHUNK
    query = _EVALUATION_STATES[constants]
    for start in range(0, len(anchors), step):
        params = {
            "patient": patient_id,
            "version": plan_version,
            "rules": rules,
            "anchors": anchors[start : start + step],
        }
        for id_, rule_id, anchor, status in session.execute(query, params):
            if (rule_id, anchor) in keys:
                found[(rule_id, anchor)] = (id_, status)
    return found


_EVALUATIONS = cast(Table, Evaluation.__table__)


def _evaluation_states(constants: bool) -> Select[Any]:
    """The statement of evaluation_states: its IN lists bound, or written in as constants."""
    table = _EVALUATIONS
    # The rule ids too: with them the unique index (patient, rule, anchor, version) finds
    # each row; without them every evaluation of the patient is read for each chunk.
    return select(table.c.id, table.c.rule_id, table.c.anchor_key, table.c.status).where(
        table.c.patient_id == bindparam("patient"),
        table.c.plan_version == bindparam("version"),
        table.c.rule_id.in_(bindparam("rules", expanding=True, literal_execute=constants)),
        table.c.anchor_key.in_(bindparam("anchors", expanding=True, literal_execute=constants)),
    )


_EVALUATION_STATES = {constants: _evaluation_states(constants) for constants in (False, True)}
"""Built once: a sync asks twice, and building the statement was most of a small ask."""

_STATES_BETWEEN = select(
    _EVALUATIONS.c.id, _EVALUATIONS.c.rule_id, _EVALUATIONS.c.anchor_key, _EVALUATIONS.c.status
).where(
    _EVALUATIONS.c.patient_id == bindparam("patient"),
    _EVALUATIONS.c.anchor_time >= bindparam("start"),
    _EVALUATIONS.c.anchor_time <= bindparam("end"),
    _EVALUATIONS.c.plan_version == bindparam("version"),
)
"""The evaluations of a span of anchor times (see evaluation_states)."""


def insert_evaluations(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert evaluations, given as column mappings (every column; see :mod:`app.bulk`)."""
    bulk.insert_rows(session, _EVALUATIONS, rows)


def evaluations_by_id(session: Session, ids: Collection[str]) -> dict[str, Evaluation]:
    """The evaluations with these ids (to change their status), without their explanations."""
    found: dict[str, Evaluation] = {}
    wanted = sorted(ids)
    for start in range(0, len(wanted), _IN_CHUNK):
        rows = session.scalars(
            select(Evaluation)
            .where(Evaluation.id.in_(wanted[start : start + _IN_CHUNK]))
            .options(defer(Evaluation.explanation), defer(Evaluation.reading_ids))
        )
        found.update((row.id, row) for row in rows)
    return found


def evaluation_at(
    session: Session, patient_id: str, rule_id: str, anchor_key: str, plan_version: int
) -> Evaluation | None:
    """The evaluation of a rule at an anchor under a plan version, if recorded."""
    return session.scalars(
        select(Evaluation).where(
            Evaluation.patient_id == patient_id,
            Evaluation.rule_id == rule_id,
            Evaluation.anchor_key == anchor_key,
            Evaluation.plan_version == plan_version,
        )
    ).first()


def fired_evaluations(
    session: Session, patient_id: str, rule_id: str, anchor_key: str
) -> list[Evaluation]:
    """The evaluations of a rule at an anchor that still hold, under any plan version."""
    return list(
        session.scalars(
            select(Evaluation).where(
                Evaluation.patient_id == patient_id,
                Evaluation.rule_id == rule_id,
                Evaluation.anchor_key == anchor_key,
                Evaluation.status == EvaluationStatus.FIRED,
            )
        )
    )


_LAST_ADVICE = (
    select(Advice.created_at)
    .where(Advice.patient_id == bindparam("patient"), Advice.rule_id == bindparam("rule"))
    .order_by(Advice.created_at.desc())
    .limit(1)
)


def last_advice_times(session: Session, patient_id: str, rule_ids: set[str]) -> dict[str, datetime]:
    """When each rule last gave the patient advice."""
    times: dict[str, datetime] = {}
    for rule_id in sorted(rule_ids):
        latest = session.scalars(_LAST_ADVICE, {"patient": patient_id, "rule": rule_id}).first()
        if latest is not None:
            times[rule_id] = latest
    return times


def pushed_in_episode(
    session: Session, patient_id: str, rule_id: str, start: datetime, until: datetime
) -> bool:
    """Whether a rule's advice was pushed for an episode that started in [start, until]."""
    pushed = session.scalars(
        select(Advice.id)
        .where(
            Advice.patient_id == patient_id,
            Advice.rule_id == rule_id,
            Advice.notify.is_(True),
            Advice.episode_start >= start,
            Advice.episode_start <= until,
        )
        .limit(1)
    ).first()
    return pushed is not None


def advice_of_evaluations(session: Session, evaluation_ids: Collection[str]) -> list[Advice]:
    """The advice the given evaluations gave."""
    return list(session.scalars(select(Advice).where(Advice.evaluation_id.in_(evaluation_ids))))


def open_episode(session: Session, patient_id: str, rule_id: str) -> Flag | None:
    """The rule's latest flag not yet resolved, of a clinical episode (not "cannot run")."""
    return session.scalars(
        select(Flag)
        .join(Evaluation, Evaluation.id == Flag.evaluation_id)
        .where(
            Flag.patient_id == patient_id,
            Flag.rule_id == rule_id,
            Flag.status.in_([FlagStatus.OPEN, FlagStatus.ACKNOWLEDGED]),
            # A "rule cannot run" flag (app.findings.unrunnable) is no clinical episode.
            Evaluation.anchor_key.not_like("config/%"),
        )
        .order_by(Flag.created_at.desc())
        .limit(1)
    ).first()


def flags_updated_since(session: Session, patient_id: str, since: datetime) -> list[Flag]:
    """The patient's flags written at or after ``since``, oldest first."""
    return list(
        session.scalars(
            select(Flag)
            .where(Flag.patient_id == patient_id, Flag.updated_at >= since)
            .order_by(Flag.created_at, Flag.id)
        )
    )


def notes_of(session: Session, flag_ids: Collection[str]) -> dict[str, list[FlagNote]]:
    """The notes of flags, by flag id, oldest first."""
    notes: dict[str, list[FlagNote]] = {}
    if flag_ids:
        for note in session.scalars(
            select(FlagNote)
            .where(FlagNote.flag_id.in_(list(flag_ids)))
            .order_by(FlagNote.created_at, FlagNote.id)
        ):
            notes.setdefault(note.flag_id, []).append(note)
    return notes


def patient_names(session: Session, patient_ids: Collection[str]) -> dict[str, str]:
    """Display names of patients by id, in one query."""
    if not patient_ids:
        return {}
    rows = session.execute(
        select(Patient.id, Patient.display_name).where(Patient.id.in_(list(patient_ids)))
    ).all()
    return {r.id: r.display_name for r in rows}


def list_advice(session: Session, patient_id: str, *, limit: int) -> list[Advice]:
    """A patient's advice, newest first."""
    return list(
        session.scalars(
            select(Advice)
            .where(Advice.patient_id == patient_id)
            .order_by(Advice.created_at.desc(), Advice.id)
            .limit(limit)
        )
    )


def advice_changed_since(session: Session, patient_id: str, since: datetime | None) -> list[Advice]:
    """The patient's advice given or withdrawn after ``since`` (all of it without), oldest first."""
    query = select(Advice).where(Advice.patient_id == patient_id)
    if since is not None:
        query = query.where((Advice.created_at > since) | (Advice.withdrawn_at > since))
    return list(session.scalars(query.order_by(Advice.created_at, Advice.id)))


def list_flags(
    session: Session, patient_ids: Sequence[str], *, status: str | None, limit: int
) -> list[Flag]:
    """Flags of the given patients: most severe first, then oldest."""
    if not patient_ids:
        return []
    query = select(Flag).where(Flag.patient_id.in_(patient_ids))
    if status:
        query = query.where(Flag.status == status)
    query = query.order_by(Flag.severity_rank.desc(), Flag.created_at, Flag.id).limit(limit)
    return list(session.scalars(query))


def get_flag(session: Session, flag_id: str) -> Flag | None:
    """A flag by id, or None."""
    return session.get(Flag, flag_id) if len(flag_id) <= 36 else None


def claim_overdue_flags(session: Session, now: datetime, limit: int) -> list[Flag]:
    """Lock up to ``limit`` open flags past their deadline and not yet escalated, oldest first.

    ``SKIP LOCKED``: another worker claiming at the same time takes other flags.
    """
    return list(
        session.scalars(
            select(Flag)
            .where(
                Flag.status == FlagStatus.OPEN,
                Flag.due_at <= now,
                Flag.escalated_at.is_(None),
            )
            .order_by(Flag.due_at, Flag.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
