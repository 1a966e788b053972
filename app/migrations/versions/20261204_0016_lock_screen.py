"""lock screen: what a push may show on a locked screen (``users.lock_screen``)

Revision ID: 0016_lock_screen
Revises: 0015_ended_sessions
Create Date: 2026-12-04 18:00:00

A new column with a server default: every existing user gets ``neutral`` (a push shows the
fixed text "Nytt råd från din vård", never the advice's title) until they choose ``title``.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_lock_screen"
down_revision: str | None = "0015_ended_sessions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column("lock_screen", sa.String(length=16), server_default="neutral", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("lock_screen")
