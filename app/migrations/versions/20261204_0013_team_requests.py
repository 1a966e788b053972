"""team requests: a second care team joins a patient's care only when the patient agrees

Revision ID: 0013_team_requests
Revises: 0012_identity
Create Date: 2026-12-04 04:20:00

A new table only; no existing rows change. (0012 is being written on another branch at the
same time; 0012_identity came first, so this follows it.)
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db

revision: str = "0013_team_requests"
down_revision: str | None = "0012_identity"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "team_requests",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("patient_id", sa.String(length=36), nullable=False),
        sa.Column("team_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("requested_by", sa.String(length=36), nullable=True),
        sa.Column("requested_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=36), nullable=True),
        sa.Column("decided_at", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("basis_note", sa.String(length=2000), nullable=True),
        sa.ForeignKeyConstraint(
            ["decided_by"], ["users.id"], name=op.f("fk_team_requests_decided_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_team_requests_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["requested_by"], ["users.id"], name=op.f("fk_team_requests_requested_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["team_id"], ["care_teams.id"], name=op.f("fk_team_requests_team_id_care_teams")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_team_requests")),
    )
    op.create_index(
        op.f("ix_team_requests_patient_id"), "team_requests", ["patient_id"], unique=False
    )
    op.create_index(
        "uq_team_requests_pending",
        "team_requests",
        ["patient_id", "team_id"],
        unique=True,
        sqlite_where=sa.text("status = 'pending'"),
        postgresql_where=sa.text("status = 'pending'"),
    )


def downgrade() -> None:
    op.drop_index("uq_team_requests_pending", table_name="team_requests")
    op.drop_index(op.f("ix_team_requests_patient_id"), table_name="team_requests")
    op.drop_table("team_requests")
