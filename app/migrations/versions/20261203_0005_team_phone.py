"""team phone; advice to proxies: care teams get a phone, advice a proxy variant

Revision ID: 0005_team_phone
Revises: 0004_advice_freshness
Create Date: 2026-12-03 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005_team_phone"
down_revision: str | None = "0004_advice_freshness"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("care_teams", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("phone", sa.String(length=50), server_default="", nullable=False)
        )
    # Advice from before has no proxy variant: a proxy reads the patient's texts.
    with op.batch_alter_table("advice", schema=None) as batch_op:
        batch_op.add_column(sa.Column("proxy_title", JSON, nullable=True))
        batch_op.add_column(sa.Column("proxy_body", JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("advice", schema=None) as batch_op:
        batch_op.drop_column("proxy_body")
        batch_op.drop_column("proxy_title")
    with op.batch_alter_table("care_teams", schema=None) as batch_op:
        batch_op.drop_column("phone")
