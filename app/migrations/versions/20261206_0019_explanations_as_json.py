"""explanations as json: an evaluation's explanation stored as written, lz4-compressed

Revision ID: 0019_explanations_as_json
Revises: 0018_evaluations_by_time
Create Date: 2026-12-06 10:20:00

An explanation is kept whole and read whole, never queried inside. On PostgreSQL, ``jsonb``
parsed each one into a tree on insert and compressed it with pglz: a dense week's late sync
(a thousand explanations of ~8 KB) spent a fifth of its time inserting them (issue 17 §6).
``json`` keeps the text as written (still checked to be JSON), and lz4 compresses it several
times faster. lz4 only where the server was built with it; SQLite stores text either way.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0019_explanations_as_json"
down_revision: str | None = "0018_evaluations_by_time"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _has_lz4() -> bool:
    """Whether this PostgreSQL can compress with lz4 (a build option)."""
    values = op.get_bind().scalar(
        sa.text("SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'")
    )
    return "lz4" in (values or [])


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.alter_column(
        "evaluations",
        "explanation",
        type_=sa.JSON(),
        existing_type=postgresql.JSONB(),
        postgresql_using="explanation::json",
    )
    if _has_lz4():
        op.execute("ALTER TABLE evaluations ALTER COLUMN explanation SET COMPRESSION lz4")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE evaluations ALTER COLUMN explanation SET COMPRESSION default")
    op.alter_column(
        "evaluations",
        "explanation",
        type_=postgresql.JSONB(),
        existing_type=sa.JSON(),
        postgresql_using="explanation::jsonb",
    )
