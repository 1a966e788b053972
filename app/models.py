"""Every ORM model, imported in one place for Alembic and the metadata."""

from app.activities.models import Activity, ActivityChange, ActivityReminder, CalendarLink
from app.audit.models import AuditEvent, AuditHead, AuditSubject
from app.auth.models import EndedSession, ProxyGrant, User
from app.consent.models import ProxyInvitation
from app.db import Base
from app.dialogue.models import Message
from app.directory.models import TeamRequest
from app.feed.models import Change, FeedHead
from app.findings.models import Advice, Evaluation, Flag, FlagNote
from app.goals.models import Goal, Milestone
from app.patients.models import CareTeam, CareUnit, Organisation, Patient, TeamMember, TeamPatient
from app.plans.models import (
    AgreementEvent,
    AgreementRecord,
    CareContactRecord,
    PlanVersion,
    StoryVersion,
)
from app.push.models import OutboxMessage, PushSubscription, Reminder
from app.readings.models import Reading, Source

__all__ = [
    "Activity",
    "ActivityChange",
    "ActivityReminder",
    "Advice",
    "AgreementEvent",
    "AgreementRecord",
    "AuditEvent",
    "AuditHead",
    "AuditSubject",
    "Base",
    "CalendarLink",
    "CareContactRecord",
    "CareTeam",
    "CareUnit",
    "Change",
    "EndedSession",
    "Evaluation",
    "FeedHead",
    "Flag",
    "FlagNote",
    "Goal",
    "Message",
    "Milestone",
    "Organisation",
    "OutboxMessage",
    "Patient",
    "PlanVersion",
    "StoryVersion",
    "ProxyGrant",
    "ProxyInvitation",
    "PushSubscription",
    "Reading",
    "Reminder",
    "Source",
    "TeamMember",
    "TeamPatient",
    "TeamRequest",
    "User",
]
