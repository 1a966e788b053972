"""What the rule engine found: evaluations, advice for the patient, flags for the team."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, IdColumn, JSONDocument, new_id
from rules.advice import PROXY, Audience


class FlagStatus(StrEnum):
    """Where a flag is in the care team's handling."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class EvaluationStatus(StrEnum):
    """Whether an evaluation's firing still holds."""

    FIRED = "fired"
    RETRACTED = "retracted"  # a late or deleted reading means it no longer holds


class Evaluation(Base):
    """One firing of a rule: which rule and plan version, which readings, which numbers.

    ``anchor_key`` names what was evaluated (a reading, or a local day for time-based rules);
    one row per (patient, rule, anchor, plan version), so re-evaluating is idempotent and two
    workers can never record the same firing twice.
    """

    __tablename__ = "evaluations"
    __table_args__ = (
        Index("ix_evaluations_patient_rule", "patient_id", "rule_id"),
        # Covering: a dense week's recorded states are read from the index alone (the rows
        # hold explanations of ~30 KB each; reading them for four short columns took 30 µs
        # a row).
        Index(
            "ix_evaluations_patient_time",
            *("patient_id", "anchor_time", "plan_version", "rule_id", "anchor_key", "status", "id"),
        ),
        UniqueConstraint("patient_id", "rule_id", "anchor_key", "plan_version"),
    )

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True, default=new_id)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"))
    rule_id: Mapped[str] = mapped_column(String(64))
    rule_version: Mapped[int] = mapped_column(Integer)
    plan_version: Mapped[int] = mapped_column(Integer)
    mode: Mapped[str] = mapped_column(String(16))
    anchor_reading_id: Mapped[str | None] = mapped_column(ForeignKey("readings.id"))
    anchor_key: Mapped[str] = mapped_column(String(200))
    anchor_time: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default=EvaluationStatus.FIRED)
    reading_ids: Mapped[list[str]]
    explanation: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    created_at: Mapped[datetime]
    retracted_at: Mapped[datetime | None]


class Advice(Base):
    """Self-care advice to the patient (and their proxies), in Swedish and English."""

    __tablename__ = "advice"
    __table_args__ = (
        Index("ix_advice_patient_created", "patient_id", "created_at"),
        # A correction finds the advice of the evaluations it retracts by these ids alone.
        Index("ix_advice_evaluation", "evaluation_id"),
    )

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True, default=new_id)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"))
    evaluation_id: Mapped[str] = mapped_column(ForeignKey("evaluations.id"))
    rule_id: Mapped[str] = mapped_column(String(64))
    rule_version: Mapped[int] = mapped_column(Integer)
    priority: Mapped[str] = mapped_column(String(16))
    title: Mapped[dict[str, Any]]  # {"sv": ..., "en": ...}
    body: Mapped[dict[str, Any]]
    # The same advice to a proxy, about the patient by first name; None: the patient's texts.
    proxy_title: Mapped[dict[str, Any] | None]
    proxy_body: Mapped[dict[str, Any] | None]
    reading_ids: Mapped[list[str]]
    notify: Mapped[bool]  # False: recorded but not pushed (see not_pushed)
    created_at: Mapped[datetime]
    # Until when it may be pushed: its reading's time plus the rule's push_within (None: a
    # time-based rule's advice, fresh when made). An outbox row never outlives it.
    fresh_until: Mapped[datetime | None]
    not_pushed: Mapped[str | None] = mapped_column(String(16))  # AdviceHeldBack, or None
    episode_start: Mapped[datetime | None]  # the CGM episode it speaks for
    # Taken back: what caused it no longer holds (a reading entered in error); apps remove it.
    withdrawn_at: Mapped[datetime | None]
    withdrawn_reason: Mapped[str | None] = mapped_column(String(32))

    def texts(self, audience: Audience) -> tuple[dict[str, Any], dict[str, Any]]:
        """The (title, body) a reader sees: a proxy's variant when there is one."""
        if audience == PROXY and self.proxy_title and self.proxy_body:
            return self.proxy_title, self.proxy_body
        return self.title, self.body


class AdviceHeldBack(StrEnum):
    """Why advice was recorded without a push."""

    STALE = "stale"  # its reading was older than the rule's push_within when it arrived
    MUTED = "muted"  # the plan says the sensor alarms on its own


class Flag(Base):
    """A finding for the care team to review; an episode per (patient, rule) while open."""

    __tablename__ = "flags"
    __table_args__ = (
        Index("ix_flags_patient_rule_status", "patient_id", "rule_id", "status"),
        Index("ix_flags_status_severity", "status", "severity_rank", "created_at"),
    )

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True, default=new_id)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"))
    rule_id: Mapped[str] = mapped_column(String(64))
    rule_version: Mapped[int] = mapped_column(Integer)
    evaluation_id: Mapped[str] = mapped_column(ForeignKey("evaluations.id"))
    severity: Mapped[str] = mapped_column(String(16))
    severity_rank: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default=FlagStatus.OPEN)
    title: Mapped[dict[str, Any]]
    explanation: Mapped[dict[str, Any]]
    reading_ids: Mapped[list[str]]
    firing_count: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    due_at: Mapped[datetime | None]  # acknowledge by; past it the flag is overdue
    escalated_at: Mapped[datetime | None]
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    acknowledged_unit: Mapped[str | None] = mapped_column(String(200))  # care unit, by name
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    resolved_unit: Mapped[str | None] = mapped_column(String(200))
    # No longer written or shown: notes are a history in flag_notes (migration 0009 moved the
    # values there). The column stays so that older rows keep what they held.
    note: Mapped[str] = mapped_column(String(2000), default="")
    # Readings behind the flag later entered in error; the flag stays for the team to judge.
    entered_in_error: Mapped[list[str] | None]
    corrected_at: Mapped[datetime | None]


class FlagNote(Base):
    """A care team's note on a flag: appended, never overwritten, never shown to the patient."""

    __tablename__ = "flag_notes"
    __table_args__ = (Index("ix_flag_notes_flag_created", "flag_id", "created_at"),)

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True, default=new_id)
    flag_id: Mapped[str] = mapped_column(ForeignKey("flags.id"))
    author_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    author_care_unit: Mapped[str | None] = mapped_column(String(200))  # as named when written
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
