"""identity: a clinician's HSA-id on users, so that their first login links their `sub`

Revision ID: 0012_identity
Revises: 0011_shared_plan
Create Date: 2026-12-04 05:30:00

Nullable and unique: existing users have none until an administrator (or the seed) sets it.
A unique index rather than a constraint, so SQLite adds it without rebuilding ``users``.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_identity"
down_revision: str | None = "0011_shared_plan"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("users", sa.Column("hsa_id", sa.String(length=64), nullable=True))
    op.create_index("uq_users_hsa_id", "users", ["hsa_id"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_users_hsa_id", table_name="users")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("hsa_id")
