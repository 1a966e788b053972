"""advice freshness: until when advice may be pushed, why it was not, its CGM episode

Revision ID: 0004_advice_freshness
Revises: 0003_evaluation_keys
Create Date: 2026-12-03 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db

revision: str = "0004_advice_freshness"
down_revision: str | None = "0003_evaluation_keys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("advice", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("fresh_until", app.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("not_pushed", sa.String(length=16), nullable=True))
        batch_op.add_column(
            sa.Column("episode_start", app.db.UTCDateTime(timezone=True), nullable=True)
        )
    # Advice from before was either pushed or held back because its reading was old.
    op.execute("UPDATE advice SET not_pushed = 'stale' WHERE notify = false")


def downgrade() -> None:
    with op.batch_alter_table("advice", schema=None) as batch_op:
        batch_op.drop_column("episode_start")
        batch_op.drop_column("not_pushed")
        batch_op.drop_column("fresh_until")
