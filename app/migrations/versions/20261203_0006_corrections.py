"""corrections: advice can be withdrawn; flags note readings entered in error

Revision ID: 0006_corrections
Revises: 0005_team_phone
Create Date: 2026-12-03 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db

revision: str = "0006_corrections"
down_revision: str | None = "0005_team_phone"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("advice", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("withdrawn_at", app.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("withdrawn_reason", sa.String(length=32), nullable=True))
    with op.batch_alter_table("flags", schema=None) as batch_op:
        batch_op.add_column(sa.Column("entered_in_error", app.db.JSONType, nullable=True))
        batch_op.add_column(
            sa.Column("corrected_at", app.db.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("flags", schema=None) as batch_op:
        batch_op.drop_column("corrected_at")
        batch_op.drop_column("entered_in_error")
    with op.batch_alter_table("advice", schema=None) as batch_op:
        batch_op.drop_column("withdrawn_reason")
        batch_op.drop_column("withdrawn_at")
