"""Evaluation orchestration: load what the rule engine needs, run it, record what it found.

Reading-anchored rules run inside the sync transaction on the new readings (and on every
anchor whose window a late or deleted reading touches): the ingest pipeline
(:mod:`app.ingest.pipeline`) calls :func:`inputs_for` (load), :func:`evaluate_recorded` (the
pure engine, told which firings are recorded) and :func:`record`. The load is narrow (the
readings the evaluation reads when the recorded firings are only checked, ``narrow_span``):
a CGM batch in range no longer reads the fortnight a low's flag counts over. When the run
read beyond it (an old anchor checked against a rule that reads further back, an old firing
not recorded after a new plan version), what it read is loaded and the engine runs again.
Time-based rules (missing data, CGM windows) run from :func:`run_due`, which the scheduler
and ``selfcare rules run-due`` call. Both record through :func:`app.findings.service.record`,
which is idempotent per (rule, anchor, plan version), so re-running is always safe; what the
feed and the pushes are to carry is published last (:mod:`app.findings.outgoing`).

Advice names whom to call (:func:`addressee`): the patient's named care contact (fast
vårdkontakt, :mod:`app.plans.contact`), else the phone of the patient's care team (the first
enrolled that has one), else a generic "din vårdcentral eller ditt vårdteam".
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property

from sqlalchemy.orm import Session

from app.config import Settings
from app.feed import service as feed
from app.findings import repository as findings_repository
from app.findings import service as findings_service
from app.findings import unrunnable
from app.findings.models import Advice, EvaluationStatus
from app.findings.outgoing import Outgoing, publish
from app.patients.models import Patient
from app.plans import contact as plans_contact
from app.plans import service as plans_service
from app.readings.repository import counted_facts, through
from rules.advice import Addressee, first_name
from rules.engine import (
    EvaluationRun,
    Recorded,
    due_lookback,
    evaluate_due_run,
    evaluate_run,
    history_types,
    lookback,
    narrow_span,
    reading_types,
)
from rules.facts import ReadingFact
from rules.language import RuleLibrary, load_library
from rules.plan import PlanSpec


def addressee(session: Session, patient: Patient) -> Addressee:
    """The patient's first name and care contact (the named one, else the team's phone).

    The contact is read when advice is first worded, in this session (most syncs word none).
    """
    return Addressee(
        patient_name=first_name(patient.display_name),
        contact_of=lambda: plans_contact.care_contact(session, patient.id),
    )


@dataclass(frozen=True)
class Inputs:
    """What one evaluation of readings needs, loaded: plan, rules, readings, the addressee."""

    plan: PlanSpec
    library: RuleLibrary
    new: list[ReadingFact]
    removed: list[ReadingFact]
    facts: list[ReadingFact]
    addressee: Addressee
    # The span of times loaded, if the narrow one (None: the lookback around the readings).
    span: tuple[datetime, datetime] | None = None
    # The evaluation states the run on these inputs asked for (see fired_before): every key
    # asked, with its (id, status), or None when nothing is recorded for it.
    states: dict[tuple[str, str], tuple[str, str] | None] = field(default_factory=dict)

    @cached_property
    def anchor_times(self) -> dict[str, datetime]:
        """Each loaded reading's time by id: the anchors an evaluation of these can name."""
        return {f.id: f.time for group in (self.facts, self.new, self.removed) for f in group}


def inputs_for(
    session: Session,
    patient: Patient,
    *,
    new: Sequence[ReadingFact],
    removed: Sequence[ReadingFact] = (),
    narrow: bool = True,
    span: tuple[datetime, datetime] | None = None,
) -> Inputs | None:
    """Load what evaluating new (or removed) readings needs; None when the plan has no rules.

    ``narrow``: the span the evaluation reads when the recorded firings are only checked
    (see :func:`evaluate_recorded`), or ``span`` when given; else the lookback, which holds
    every window.
    """
    plan = plans_service.current_effective_spec(session, patient.id)
    if plan is None or not plan.rules:
        return None
    library = load_library()
    ruled = reading_types(plan, library)
    new = [f for f in new if f.type in ruled]  # a weight is no news to a BP-only plan
    removed = [f for f in removed if f.type in ruled]
    touched = [*new, *removed]
    facts: list[ReadingFact] = []
    if touched:
        types = {f.type for f in touched}
        if narrow and span is None:
            span = narrow_span(plan, library, touched, patient.timezone)
        if span is None:
            # Every anchor whose window a touched reading is in: both edges included.
            reach = lookback(plan, library, types)
            start, end = min(f.time for f in touched) - reach, max(f.time for f in touched) + reach
        else:
            start, end = span
        facts = counted_facts(
            session,
            patient.id,
            set(history_types(plan, library, types)),
            start,
            through(end),
            known=new,  # just stored: no need to read them back
        )
    return Inputs(plan, library, new, removed, facts, addressee(session, patient), span)


def evaluate_recorded(
    session: Session, patient: Patient, inputs: Inputs, *, now: datetime
) -> tuple[Inputs, EvaluationRun | None]:
    """Evaluate, told which firings are recorded; again on what the run read if it read
    beyond a narrow load. Returns the inputs the run was made on, and the run."""
    run = evaluate(
        inputs, tz=patient.timezone, now=now, recorded=fired_before(session, patient, inputs)
    )
    if run is None or inputs.span is None or _holds(inputs.span, run.needed):
        return inputs, run
    # The narrow load holds every anchor to evaluate, so what the run read says what their
    # windows need: loaded, the same anchors are evaluated again with all they read. The
    # lookback is the last resort, should that run still read beyond (it holds everything).
    assert run.needed is not None
    for wider in (_union(inputs.span, run.needed), None):
        again = inputs_for(
            session, patient, new=inputs.new, removed=inputs.removed,
            narrow=wider is not None, span=wider,
        )  # fmt: skip
        assert again is not None  # the same plan, just loaded
        run = evaluate(
            again, tz=patient.timezone, now=now, recorded=fired_before(session, patient, again)
        )
        if run is None or again.span is None or _holds(again.span, run.needed):
            return again, run
    raise AssertionError("the lookback holds every window")  # pragma: no cover


def _holds(span: tuple[datetime, datetime], needed: tuple[datetime, datetime] | None) -> bool:
    return needed is None or (span[0] <= needed[0] and needed[1] <= span[1])


def _union(
    span: tuple[datetime, datetime], other: tuple[datetime, datetime]
) -> tuple[datetime, datetime]:
    return min(span[0], other[0]), max(span[1], other[1])


def evaluate(
    inputs: Inputs, *, tz: str, now: datetime, recorded: Recorded | None = None
) -> EvaluationRun | None:
    """Run the rules on the loaded readings; None when nothing ruled was touched.

    ``recorded`` (see :func:`fired_before`) spares re-explaining the firings already recorded.
    """
    if not inputs.new and not inputs.removed:
        return None
    return evaluate_run(
        inputs.plan,
        inputs.facts,
        new_reading_ids={f.id for f in inputs.new},
        now=now,
        library=inputs.library,
        tz=tz,
        removed=inputs.removed,
        addressee=inputs.addressee,
        recorded=recorded,
    )


def fired_before(session: Session, patient: Patient, inputs: Inputs) -> Recorded:
    """Which evaluation keys already fired under the plan's version, for :func:`evaluate`.

    What is read is kept in ``inputs.states`` for :func:`record`: a late sync in a dense week
    asks about ten thousand anchors, read as a range of the week's evaluations, and recording
    the run asked the same range again.
    """

    def recorded(keys: Collection[tuple[str, str]]) -> set[tuple[str, str]]:
        asked = set(keys)
        states = findings_repository.evaluation_states(
            session, patient.id, inputs.plan.version, asked, inputs.anchor_times
        )
        inputs.states.update(dict.fromkeys(asked))
        inputs.states.update(states)
        return {key for key, (_, status) in states.items() if status == EvaluationStatus.FIRED}

    return recorded


def record(
    session: Session,
    settings: Settings,
    *,
    patient: Patient,
    inputs: Inputs,
    run: EvaluationRun | None,
    now: datetime,
    out: Outgoing,
) -> list[Advice]:
    """Flag rules the plan cannot run, then record what the run found (idempotent)."""
    unrunnable.flag_unrunnable_rules(
        session, settings, patient=patient, plan=inputs.plan, library=inputs.library, now=now,
        out=out,
    )  # fmt: skip
    if run is None:
        return []
    return findings_service.record(
        session,
        settings,
        patient=patient,
        plan_version=inputs.plan.version,
        findings=run.findings,
        evaluated=run.evaluated,
        still_firing=run.still_firing,
        unfired_before=run.unfired_before,
        now=now,
        out=out,
        anchor_times=inputs.anchor_times,
        # Read while evaluating, in this transaction under the patient's lock; the new
        # readings were stored by it, so nothing can be recorded at them yet.
        known=inputs.states,
        unrecorded_anchors={f.id for f in inputs.new},
    )


def run_due_for_patient(
    session: Session, settings: Settings, *, patient_id: str, now: datetime
) -> int:
    """Evaluate one patient's time-based rules due at ``now``; how many firings hold.

    Under the patient's feed lock, so a second worker doing the same waits and then finds
    everything recorded: running twice is the same as running once.
    """
    library = load_library()
    patient = session.get(Patient, patient_id)
    plan = plans_service.current_spec(session, patient_id) if patient is not None else None
    if (
        patient is None
        or plan is None
        or not any(
            (rule := library.get(r.rule)) is not None and rule.time_based for r in plan.rules
        )
    ):
        return 0
    feed.lock_patient(session, patient.id)
    plan = plans_service.effective(session, patient.id, plan)
    out = Outgoing()
    unrunnable.flag_unrunnable_rules(
        session, settings, patient=patient, plan=plan, library=library, now=now, out=out
    )
    # Yesterday's anchor too: a run just after midnight must not miss the day before.
    since = now - timedelta(days=1)
    reach = due_lookback(plan, library) + timedelta(days=2)
    types = _all_types(plan, library)
    facts = counted_facts(session, patient.id, types, now - reach, through(now))
    run = evaluate_due_run(
        plan,
        facts,
        now=now,
        tz=patient.timezone,
        library=library,
        since=since,
        addressee=addressee(session, patient),
    )
    findings_service.record(
        session,
        settings,
        patient=patient,
        plan_version=plan.version,
        findings=run.findings,
        evaluated=run.evaluated,
        still_firing=run.still_firing,
        unfired_before=run.unfired_before,
        now=now,
        out=out,
    )
    publish(session, patient, out, now)
    return len(run.findings)


def _all_types(plan: PlanSpec, library: RuleLibrary) -> set[str]:
    """Every type the plan schedules or one of its rules reads."""
    names: set[str] = {entry.type for entry in plan.schedule}
    for plan_rule in plan.rules:
        rule = library.get(plan_rule.rule)
        if rule is not None:
            names.update(rule.types)
    return names
