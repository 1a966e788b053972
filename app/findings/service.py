"""Findings: turn the rule engine's firings into evaluations, advice and flag episodes."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy.orm import Session

from app.auth import people
from app.auth.models import User
from app.config import Settings
from app.db import new_id
from app.errors import Conflict
from app.feed import service as feed
from app.findings import repository
from app.findings.models import (
    Advice,
    AdviceHeldBack,
    Evaluation,
    EvaluationStatus,
    Flag,
    FlagNote,
    FlagStatus,
)
from app.findings.outgoing import Outgoing

# Routers and other domains read advice and flags through the service.
from app.findings.repository import get_flag as get_flag
from app.findings.repository import list_advice as list_advice
from app.findings.repository import list_flags as list_flags
from app.patients.models import Patient
from rules.advice import PATIENT, PROXY, Audience
from rules.engine import Finding, explanation_json
from rules.language import SEVERITY_RANK, Severity, load_library

MAX_FLAG_READINGS = 50


class Recorded(NamedTuple):
    """What advice and a flag cite of a firing just recorded (a new evaluation or a refired one)."""

    id: str
    rule_id: str
    rule_version: int
    reading_ids: list[str]
    finding: Finding

    @property
    def explanation(self) -> dict[str, Any]:
        """The firing's explanation, made when a flag takes it: a dense week's late sync
        records a thousand firings of one flag, whose evaluations store it as written JSON."""
        return self.finding.explanation()


def _deadline(settings: Settings, severity: str) -> timedelta:
    hours = {
        Severity.high: settings.flag_deadline_hours_high,
        Severity.moderate: settings.flag_deadline_hours_moderate,
        Severity.low: settings.flag_deadline_hours_low,
    }[Severity(severity)]
    return timedelta(hours=hours)


def _rule_title(rule_id: str) -> dict[str, str]:
    rule = load_library().get(rule_id)
    if rule is None:
        return {"sv": rule_id, "en": rule_id}
    return {"sv": rule.title.sv, "en": rule.title.en}


def _states(
    session: Session,
    patient_id: str,
    plan_version: int,
    keys: set[tuple[str, str]],
    anchor_times: Mapping[str, datetime] | None,
    known: Mapping[tuple[str, str], tuple[str, str] | None],
    unrecorded_anchors: Collection[str],
) -> dict[tuple[str, str], tuple[str, str]]:
    """(id, status) of the keys recorded before: from ``known``, the rest from the database."""
    fresh = set(unrecorded_anchors)
    unread = {key for key in keys if key not in known and key[1] not in fresh}
    states = (
        repository.evaluation_states(session, patient_id, plan_version, unread, anchor_times)
        if unread
        else {}
    )
    for key in keys:
        if (state := known.get(key)) is not None:
            states[key] = state
    return states


def record(
    session: Session,
    settings: Settings,
    *,
    patient: Patient,
    plan_version: int,
    findings: Sequence[Finding],
    now: datetime,
    out: Outgoing,
    evaluated: Collection[tuple[str, str]] = (),
    still_firing: Collection[tuple[str, str]] = (),
    unfired_before: Collection[tuple[str, str]] = (),
    anchor_times: Mapping[str, datetime] | None = None,
    known: Mapping[tuple[str, str], tuple[str, str] | None] | None = None,
    unrecorded_anchors: Collection[str] = (),
) -> list[Advice]:
    """Store each new firing as an evaluation; raise advice and open or extend flags.

    ``anchor_times`` (the time of each reading an anchor can name) lets a large batch find
    what it recorded before by a span of times (see ``repository.evaluation_states``).
    ``known`` are states already read in this transaction (None: nothing recorded), and at
    ``unrecorded_anchors`` (readings this transaction stored) nothing is recorded: neither
    is read again.

    What the feed and the pushes are to carry is collected in ``out`` for the caller to publish.

    Idempotent: a (rule, anchor) already recorded under this plan version is not recorded
    again, so re-evaluating a window after late data, or two workers running the same due
    rules, never repeat advice or flags. A key in ``evaluated`` that fired before and does
    not fire now is retracted (the flag it raised stays for the team to resolve). A key in
    ``still_firing`` was recorded as fired and still fires, one in ``unfired_before`` had not
    fired and does not now: nothing to do for either.
    """
    created: list[Advice] = []
    settled = set(still_firing) | set(unfired_before)
    keys = {f.key for f in findings} | {key for key in evaluated if key not in settled}
    states = _states(session, patient.id, plan_version, keys, anchor_times, known or {},
                     unrecorded_anchors)  # fmt: skip
    fired_now = {f.key for f in findings}
    retracted = [
        states[key][0]
        for key in keys - fired_now
        if key in states and states[key][1] == EvaluationStatus.FIRED
    ]
    refired = [
        states[f.key][0]
        for f in findings
        if f.key in states and states[f.key][1] != EvaluationStatus.FIRED
    ]
    rows = repository.evaluations_by_id(session, retracted + refired)
    for evaluation_id in retracted:
        rows[evaluation_id].status = EvaluationStatus.RETRACTED
        rows[evaluation_id].retracted_at = now
    last_advice = repository.last_advice_times(session, patient.id, {f.rule_id for f in findings})
    # Flags this batch opened or extended, with their latest evaluation: their explanation and
    # their change-feed entry are written once per batch, not once per firing (a late week of
    # readings fires hundreds of anchors of one flag, each explaining a whole window).
    touched: dict[str, tuple[Flag, Recorded]] = {}
    episodes: dict[str, Flag | None] = {}  # each rule's open episode, looked up once
    firings: list[tuple[Finding, Recorded]] = []
    new_rows: list[dict[str, Any]] = []  # first firings, inserted in one statement
    for finding in findings:
        state = states.get(finding.key)
        if state is not None and state[1] == EvaluationStatus.FIRED:
            continue  # already recorded: nothing new to say
        reading_ids = list(finding.reading_ids)
        if state is None:
            evaluation_id = new_id()  # known now: advice and flags refer to it
            new_rows.append(
                {
                    "id": evaluation_id,
                    "patient_id": patient.id,
                    "rule_id": finding.rule_id,
                    "rule_version": finding.rule_version,
                    "plan_version": finding.plan_version,
                    "mode": finding.mode,
                    "anchor_reading_id": finding.anchor_reading_id,
                    "anchor_key": finding.key[1],
                    "anchor_time": finding.anchor_time,
                    "status": EvaluationStatus.FIRED,
                    "reading_ids": reading_ids,
                    "explanation": finding.explanation(written=True),
                    "created_at": now,
                    "retracted_at": None,
                }
            )
        else:  # retracted earlier, holds again
            evaluation_id = state[0]
            row = rows[evaluation_id]
            row.status, row.retracted_at = EvaluationStatus.FIRED, None
            row.explanation, row.reading_ids = finding.explanation(), reading_ids
        states[finding.key] = (evaluation_id, EvaluationStatus.FIRED)
        firings.append(
            (finding, Recorded(evaluation_id, finding.rule_id, finding.rule_version,
                               reading_ids, finding))
        )  # fmt: skip
    # The evaluations in one go, before the advice and flags that cite them: plain rows, not
    # objects (a dense week's late sync records ~900 firings; the ORM's flush of them was an
    # eighth of the sync).
    repository.insert_evaluations(session, new_rows)
    session.flush()  # the refired and retracted ones
    for finding, evaluation in firings:
        if finding.mode != "active":
            continue  # monitor mode records, never notifies or flags
        due = finding.advice is not None
        if due and _advice_due(session, patient.id, finding, last_advice, now):
            advice = _give_advice(session, patient, finding, evaluation, now, out)
            last_advice[finding.rule_id] = now
            created.append(advice)
        if finding.flag_severity is not None:
            if finding.rule_id not in episodes:
                episodes[finding.rule_id] = repository.open_episode(
                    session, patient.id, finding.rule_id
                )
            flag = _open_or_extend_flag(
                settings, patient, finding, evaluation, now, episodes[finding.rule_id]
            )
            if episodes[finding.rule_id] is None:
                session.add(flag)
                episodes[finding.rule_id] = flag
            touched[flag.id] = (flag, evaluation)
    for flag, evaluation in touched.values():
        flag.explanation = evaluation.explanation
    if touched:
        session.flush()
    for flag, _ in touched.values():
        out.change("flag", "upsert", flag.id, flag_dict(session, flag, patient.language, now))
    return created


def _advice_due(
    session: Session,
    patient_id: str,
    finding: Finding,
    last_advice: dict[str, datetime],
    now: datetime,
) -> bool:
    """Whether a firing gives advice: once per CGM episode and level, else after a cooldown.

    In an episode a repeat gives advice only when the advice of that level never reached
    the phone (it was stale on arrival) and this reading is fresh: the low is still going on.
    """
    if finding.episode is not None:
        if not finding.advice_repeat:
            return True
        if finding.push_muted or not _fresh(finding, now):
            return False
        start = datetime.fromisoformat(finding.episode["start"])
        return not repository.pushed_in_episode(
            session, patient_id, finding.rule_id, start, finding.anchor_time
        )
    previous = last_advice.get(finding.rule_id)
    cooldown = timedelta(minutes=finding.cooldown_minutes)
    return previous is None or now - previous >= cooldown or cooldown.total_seconds() == 0


def _fresh(finding: Finding, now: datetime) -> bool:
    """Whether the finding's reading is still fresh enough for its advice to be pushed."""
    fresh_until = finding.fresh_until
    return fresh_until is None or now < fresh_until


def _give_advice(
    session: Session,
    patient: Patient,
    finding: Finding,
    evaluation: Recorded,
    now: datetime,
    out: Outgoing,
) -> Advice:
    """Record a firing's advice, tell the feed, and queue its pushes while it is fresh."""
    assert finding.advice is not None
    held_back: AdviceHeldBack | None = None
    if finding.push_muted:
        held_back = AdviceHeldBack.MUTED
    elif not _fresh(finding, now):
        held_back = AdviceHeldBack.STALE
    return issue_advice(
        session,
        patient,
        evaluation,
        priority=finding.advice.priority,
        title=finding.advice.title,
        body=finding.advice.body,
        proxy_title=finding.advice.proxy_title,
        proxy_body=finding.advice.proxy_body,
        held_back=held_back,
        fresh_until=finding.fresh_until,
        episode_start=(
            datetime.fromisoformat(finding.episode["start"]) if finding.episode else None
        ),
        now=now,
        out=out,
    )


def issue_advice(
    session: Session,
    patient: Patient,
    evaluation: Recorded | Evaluation,
    *,
    priority: str,
    title: Mapping[str, str],
    body: Mapping[str, str],
    now: datetime,
    out: Outgoing,
    proxy_title: Mapping[str, str] | None = None,
    proxy_body: Mapping[str, str] | None = None,
    held_back: AdviceHeldBack | None = None,
    fresh_until: datetime | None = None,
    episode_start: datetime | None = None,
) -> Advice:
    """Give the advice of an evaluation (its rule and readings): store, feed, push unless held."""
    advice = Advice(
        patient_id=patient.id,
        evaluation_id=evaluation.id,
        rule_id=evaluation.rule_id,
        rule_version=evaluation.rule_version,
        priority=priority,
        title=dict(title),
        body=dict(body),
        proxy_title=dict(proxy_title or {}) or None,
        proxy_body=dict(proxy_body or {}) or None,
        reading_ids=list(evaluation.reading_ids),
        notify=held_back is None,
        not_pushed=held_back,
        fresh_until=fresh_until,
        episode_start=episode_start,
        created_at=now,
    )
    session.add(advice)
    session.flush()
    out.change("advice", "upsert", advice.id, advice_feed_dict(advice, patient.language))
    if advice.notify:
        out.pushes.append(advice)
    return advice


def _open_or_extend_flag(
    settings: Settings,
    patient: Patient,
    finding: Finding,
    evaluation: Recorded,
    now: datetime,
    flag: Flag | None,
) -> Flag:
    """Open a flag for a firing (``flag`` None), or attach the firing to the open episode.

    The caller adds a new flag to the session, sets the flag's explanation from its latest
    evaluation and feeds the change.
    """
    severity = finding.flag_severity or Severity.low
    if flag is None:
        flag = Flag(
            id=new_id(),
            patient_id=patient.id,
            rule_id=finding.rule_id,
            rule_version=finding.rule_version,
            evaluation_id=evaluation.id,
            severity=severity,
            severity_rank=SEVERITY_RANK[Severity(severity)],
            status=FlagStatus.OPEN,
            title=_rule_title(finding.rule_id),
            explanation=evaluation.explanation,
            reading_ids=list(finding.reading_ids),
            firing_count=1,
            created_at=now,
            updated_at=now,
            due_at=now + _deadline(settings, severity),
        )
    else:
        # An open episode: attach the firing, keep the highest severity seen.
        flag.firing_count += 1
        flag.evaluation_id = evaluation.id
        new = set(finding.reading_ids)
        ids = [i for i in flag.reading_ids if i not in new]
        flag.reading_ids = (ids + list(finding.reading_ids))[-MAX_FLAG_READINGS:]
        if SEVERITY_RANK[Severity(severity)] > flag.severity_rank:
            flag.severity = severity
            flag.severity_rank = SEVERITY_RANK[Severity(severity)]
            flag.due_at = min(flag.due_at or now, now + _deadline(settings, severity))
        flag.updated_at = now
    return flag


def pick_language(requested: str | None, default: str) -> str:
    """sv or en: the caller's Accept-Language if it names one, else the default, else sv."""
    for part in (requested or "").split(","):
        tag = part.split(";")[0].strip().lower()[:2]
        if tag in ("sv", "en"):
            return tag
    return default if default in ("sv", "en") else "sv"


def advice_dict(advice: Advice, lang: str, audience: Audience = PATIENT) -> dict[str, Any]:
    """The API form of advice, in one language, to the patient or (``proxy``) to a proxy."""
    title, body = advice.texts(audience)
    return {
        "id": advice.id,
        "rule": {"id": advice.rule_id, "version": advice.rule_version},
        "priority": advice.priority,
        "title": title.get(lang, title.get("sv", "")),
        "body": body.get(lang, body.get("sv", "")),
        "lang": lang,
        "reading_ids": list(advice.reading_ids),
        "evaluation_id": advice.evaluation_id,
        "created_at": advice.created_at.isoformat(),
        # Pushed, or why not: "stale" (the reading was too old on arrival), "muted".
        "not_pushed": advice.not_pushed,
        "fresh_until": advice.fresh_until.isoformat() if advice.fresh_until else None,
        **withdrawal_dict(advice),
    }


def advice_feed_dict(advice: Advice, lang: str) -> dict[str, Any]:
    """Advice as the change feed keeps it: the patient's form, with the proxy's texts aside."""
    data = advice_dict(advice, lang)
    proxy = advice_dict(advice, lang, PROXY)
    data["proxy"] = {"title": proxy["title"], "body": proxy["body"]}
    return data


def addressed_changes(
    changes: list[dict[str, Any]], audience: Audience, *, messages: bool = True
) -> list[dict[str, Any]]:
    """Feed changes as a reader sees them: advice in the reader's variant, one shape for all.

    ``messages`` False leaves out the message thread, for readers who may not take part in it
    (a proxy without the message scope, operations).
    """
    shown: list[dict[str, Any]] = []
    for change in changes:
        if not messages and change.get("entity") == "message":
            continue
        data = change.get("data")
        if change.get("entity") == "advice" and isinstance(data, dict) and "proxy" in data:
            data = dict(data)
            proxy = data.pop("proxy")
            if audience == PROXY and isinstance(proxy, dict):
                data["title"], data["body"] = proxy.get("title"), proxy.get("body")
            change = {**change, "data": data}
        shown.append(change)
    return shown


def flag_dicts(
    session: Session,
    flags: Sequence[Flag],
    lang: str,
    now: datetime,
    *,
    team_patients: Collection[str] = frozenset(),
    unread: Mapping[str, int | None] | None = None,
) -> list[dict[str, Any]]:
    """The API form of flags, with the people who handled them named, in a few queries.

    Flags of ``team_patients`` (the patients the reader treats as their care team) carry the
    team's notes; every other reader (the patient, a proxy, operations, the change feed) gets
    no notes and no note text. ``unread`` adds the patient's unread message count to each row.
    """
    notes = repository.notes_of(session, [f.id for f in flags if f.patient_id in team_patients])
    users = people.users_by_id(
        session,
        [f.acknowledged_by for f in flags]
        + [f.resolved_by for f in flags]
        + [n.author_id for ns in notes.values() for n in ns],
    )
    names = repository.patient_names(session, {f.patient_id for f in flags})
    shown: list[dict[str, Any]] = []
    for flag in flags:
        data = _flag_fields(flag, lang, now, users)
        data["patient"] = {"id": flag.patient_id, "display_name": names.get(flag.patient_id)}
        if unread is not None:
            data["patient"]["unread_messages"] = unread.get(flag.patient_id)
        if flag.patient_id in team_patients:
            data["notes"] = [note_dict(n, users) for n in notes.get(flag.id, [])]
        shown.append(data)
    return shown


def flag_dict(session: Session, flag: Flag, lang: str, now: datetime) -> dict[str, Any]:
    """The form of a flag anyone who may read the patient sees (and the change feed keeps)."""
    return flag_dicts(session, [flag], lang, now)[0]


def _flag_fields(flag: Flag, lang: str, now: datetime, users: Mapping[str, User]) -> dict[str, Any]:
    return {
        "id": flag.id,
        "patient_id": flag.patient_id,
        "rule": {"id": flag.rule_id, "version": flag.rule_version},
        "severity": flag.severity,
        "status": flag.status,
        "title": flag.title.get(lang, flag.title.get("sv", "")),
        "explanation": explanation_json(flag.explanation),
        "reading_ids": list(flag.reading_ids),
        "firing_count": flag.firing_count,
        "created_at": flag.created_at.isoformat(),
        "updated_at": flag.updated_at.isoformat(),
        "due_at": flag.due_at.isoformat() if flag.due_at else None,
        "overdue": bool(
            flag.status == FlagStatus.OPEN and flag.due_at is not None and flag.due_at < now
        ),
        "escalated_at": flag.escalated_at.isoformat() if flag.escalated_at else None,
        "acknowledged_at": flag.acknowledged_at.isoformat() if flag.acknowledged_at else None,
        "acknowledged_by": people.person_of(flag.acknowledged_by, flag.acknowledged_unit, users),
        "resolved_at": flag.resolved_at.isoformat() if flag.resolved_at else None,
        "resolved_by": people.person_of(flag.resolved_by, flag.resolved_unit, users),
        **correction_dict(flag, lang),
    }


def note_dict(note: FlagNote, users: Mapping[str, User]) -> dict[str, Any]:
    """The API form of a flag note (for the care team only)."""
    return {
        "id": note.id,
        "flag_id": note.flag_id,
        "author": people.person_of(note.author_id, note.author_care_unit, users),
        "body": note.body,
        "created_at": note.created_at.isoformat(),
    }


def withdrawal_dict(advice: Advice) -> dict[str, Any]:
    """Whether advice was taken back, and why (apps remove withdrawn advice)."""
    return {
        "withdrawn_at": advice.withdrawn_at.isoformat() if advice.withdrawn_at else None,
        "withdrawn_reason": advice.withdrawn_reason,
    }


_CORRECTION_TEXT = {
    "sv": "{n} av mätvärdena bakom flaggan har markerats som felregistrerade.",
    "en": "{n} of the readings behind this flag were marked as entered in error.",
}


def correction_dict(flag: Flag, lang: str) -> dict[str, Any]:
    """Readings behind a flag later entered in error, said in words for the team."""
    ids = list(flag.entered_in_error or [])
    text = _CORRECTION_TEXT.get(lang, _CORRECTION_TEXT["sv"]).format(n=len(ids))
    return {
        "entered_in_error": ids,
        "corrected_at": flag.corrected_at.isoformat() if flag.corrected_at else None,
        "correction": text if ids else None,
    }


def add_note(
    session: Session, flag: Flag, *, by: str, care_unit: str | None, body: str, now: datetime
) -> FlagNote:
    """Append a note to a flag's history; notes are never overwritten."""
    note = FlagNote(
        flag_id=flag.id, author_id=by, author_care_unit=care_unit, body=body, created_at=now
    )
    session.add(note)
    session.flush()
    return note


def _keep_note_unless_resolved(
    session: Session, flag: Flag, *, by: str, care_unit: str | None, note: str, now: datetime
) -> None:
    """A resolved flag changes no more (409); otherwise the note of the change is kept."""
    if flag.status == FlagStatus.RESOLVED:
        raise Conflict("The flag is already resolved.")
    if note:
        add_note(session, flag, by=by, care_unit=care_unit, body=note, now=now)


def acknowledge(
    session: Session, flag: Flag, *, by: str, care_unit: str | None, note: str, now: datetime
) -> Flag:
    """Mark a flag as seen by the team; acknowledging twice is harmless (a note is kept)."""
    _keep_note_unless_resolved(session, flag, by=by, care_unit=care_unit, note=note, now=now)
    if flag.status == FlagStatus.OPEN:
        flag.status = FlagStatus.ACKNOWLEDGED
        flag.acknowledged_at, flag.acknowledged_by = now, by
        flag.acknowledged_unit = care_unit
        flag.updated_at = now
        _flag_changed(session, flag, now)
    return flag


def resolve(
    session: Session, flag: Flag, *, by: str, care_unit: str | None, note: str, now: datetime
) -> Flag:
    """Close a flag's episode; a later firing opens a new flag."""
    _keep_note_unless_resolved(session, flag, by=by, care_unit=care_unit, note=note, now=now)
    if flag.acknowledged_at is None:
        flag.acknowledged_at, flag.acknowledged_by = now, by
        flag.acknowledged_unit = care_unit
    flag.status = FlagStatus.RESOLVED
    flag.resolved_at, flag.resolved_by = now, by
    flag.resolved_unit = care_unit
    flag.updated_at = now
    _flag_changed(session, flag, now)
    return flag


def _flag_changed(session: Session, flag: Flag, now: datetime) -> None:
    session.flush()
    feed.append(
        session,
        flag.patient_id,
        entity="flag",
        op="upsert",
        entity_id=flag.id,
        data=flag_dict(session, flag, "sv", now),
        now=now,
    )


def patient_language(session: Session, patient_id: str) -> str:
    """The patient's language."""
    patient = session.get(Patient, patient_id)
    return patient.language if patient is not None else "sv"
