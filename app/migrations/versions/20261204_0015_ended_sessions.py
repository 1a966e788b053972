"""ended sessions: logout holds across processes (a table of ended page-session ids)

Revision ID: 0015_ended_sessions
Revises: 0014_goal_start
Create Date: 2026-12-04 15:00:00

A new table only; no existing rows change. Ended ids used to be kept in each process's memory,
so a logged-out cookie replayed to another worker was still accepted there.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db

revision: str = "0015_ended_sessions"
down_revision: str | None = "0014_goal_start"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "web_sessions_ended",
        sa.Column("sid", sa.String(length=64), nullable=False),
        sa.Column("expires_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sid", name=op.f("pk_web_sessions_ended")),
    )
    op.create_index(
        op.f("ix_web_sessions_ended_expires_at"),
        "web_sessions_ended",
        ["expires_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_web_sessions_ended_expires_at"), table_name="web_sessions_ended")
    op.drop_table("web_sessions_ended")
