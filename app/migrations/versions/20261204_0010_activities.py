"""activities: booked contacts, their history, the .ics calendar link and activity reminders

Revision ID: 0010_activities
Revises: 0009_dialogue
Create Date: 2026-12-04 04:00:00

New tables only; nothing existing changes.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db

revision: str = "0010_activities"
down_revision: str | None = "0009_dialogue"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "activities",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("patient_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("start", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("end", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("who_id", sa.String(length=36), nullable=False),
        sa.Column("who_care_unit", sa.String(length=200), nullable=True),
        sa.Column("where_or_how", sa.String(length=300), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("created_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=36), nullable=False),
        sa.Column("updated_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_activities_created_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_activities_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["updated_by"], ["users.id"], name=op.f("fk_activities_updated_by_users")
        ),
        sa.ForeignKeyConstraint(["who_id"], ["users.id"], name=op.f("fk_activities_who_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activities")),
    )
    op.create_index(
        "ix_activities_patient_start", "activities", ["patient_id", "start"], unique=False
    )
    op.create_index("ix_activities_status_start", "activities", ["status", "start"], unique=False)
    op.create_table(
        "activity_changes",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("activity_id", sa.String(length=36), nullable=False),
        sa.Column("changed_by", sa.String(length=36), nullable=False),
        sa.Column("changed_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("before", app.db.JSONType, nullable=False),
        sa.Column("after", app.db.JSONType, nullable=False),
        sa.ForeignKeyConstraint(
            ["activity_id"],
            ["activities.id"],
            name=op.f("fk_activity_changes_activity_id_activities"),
        ),
        sa.ForeignKeyConstraint(
            ["changed_by"], ["users.id"], name=op.f("fk_activity_changes_changed_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activity_changes")),
    )
    op.create_index(
        "ix_activity_changes_activity_at",
        "activity_changes",
        ["activity_id", "changed_at"],
        unique=False,
    )
    op.create_table(
        "calendar_links",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("patient_id", sa.String(length=36), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=36), nullable=False),
        sa.Column("ended_at", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_calendar_links_created_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_calendar_links_patient_id_patients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calendar_links")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_calendar_links_token_hash")),
    )
    op.create_index("ix_calendar_links_patient", "calendar_links", ["patient_id"], unique=False)
    op.create_table(
        "activity_reminders",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("activity_id", sa.String(length=36), nullable=False),
        sa.Column("start", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("notifications", sa.Integer(), nullable=False),
        sa.Column("created_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["activity_id"],
            ["activities.id"],
            name=op.f("fk_activity_reminders_activity_id_activities"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activity_reminders")),
        sa.UniqueConstraint(
            "activity_id", "start", name=op.f("uq_activity_reminders_activity_id_start")
        ),
    )


def downgrade() -> None:
    op.drop_table("activity_reminders")
    op.drop_index("ix_calendar_links_patient", table_name="calendar_links")
    op.drop_table("calendar_links")
    op.drop_index("ix_activity_changes_activity_at", table_name="activity_changes")
    op.drop_table("activity_changes")
    op.drop_index("ix_activities_status_start", table_name="activities")
    op.drop_index("ix_activities_patient_start", table_name="activities")
    op.drop_table("activities")
