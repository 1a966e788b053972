"""outbox due: the waiting rows in the order a claim takes them

Revision ID: 0020_outbox_due
Revises: 0019_explanations_as_json
Create Date: 2026-12-07 02:00:00

A dispatcher claims the first rows by ``next_attempt_at, id`` among those pending or sending.
Served by ``(status, next_attempt_at)``, both databases read every waiting row due and sorted
them to return the first 50: a claim behind 12,000 waiting rows took 10–14 ms on SQLite and
17–19 ms on PostgreSQL, so draining a backlog cost its square (issue 17 §4). A partial index
of the waiting rows alone, in claim order, lets the claim stop after its batch (0.3–0.9 ms
behind 12,000).

It replaces ``(status, next_attempt_at)``: SQLite, without statistics, would still take that
one for the claim (an equality on status looks narrower), and nothing else needs it. The
retention's delete of final rows and the metrics' count by status read most of the table
either way; every claim and every recorded answer has one index fewer to update.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020_outbox_due"
down_revision: str | None = "0019_explanations_as_json"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As ``app.push.models.WAITING`` says it today (a migration keeps its own copy).
WAITING = "status IN ('pending', 'sending')"


def upgrade() -> None:
    op.drop_index("ix_outbox_status_next", table_name="outbox")
    op.create_index(
        "ix_outbox_due",
        "outbox",
        ["next_attempt_at", "id"],
        sqlite_where=sa.text(WAITING),
        postgresql_where=sa.text(WAITING),
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_due", table_name="outbox")
    op.create_index("ix_outbox_status_next", "outbox", ["status", "next_attempt_at"])
