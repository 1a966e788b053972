"""outbox halves: the waiting rows in claim order, the finished rows by when they finished

Revision ID: 0020_outbox_due
Revises: 0019_explanations_as_json
Create Date: 2026-12-07 02:00:00

A dispatcher claims the first rows by ``next_attempt_at, id`` among those pending or sending.
Served by ``(status, next_attempt_at)``, both databases read every waiting row that was due
and sorted them to return the first 50: a claim behind 12,000 waiting rows took 10–14 ms on
SQLite and 17–19 ms on PostgreSQL, so draining a backlog cost its square (issue 17 §4). A
partial index of the waiting rows alone, in claim order, lets the claim stop after its batch
(0.3–0.9 ms behind 12,000).

``(status, next_attempt_at)`` goes: SQLite, without statistics, would still take it for the
claim (an equality on status looks narrower than a range of times). What else it served, the
retention's delete of old finished rows and the metrics' count by status, a partial index of
the finished rows by status and end time serves better: the delete reads only the rows it
deletes, and the count of each half is read off its own index.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020_outbox_due"
down_revision: str | None = "0019_explanations_as_json"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As ``app.push.models`` writes them today (a migration keeps its own copy).
WAITING = "status IN ('pending', 'sending')"
FINISHED = "status IN ('cancelled', 'dead', 'expired', 'gone', 'sent')"


def upgrade() -> None:
    op.drop_index("ix_outbox_status_next", table_name="outbox")
    for name, columns, where in (
        ("ix_outbox_due", ["next_attempt_at", "id", "status"], WAITING),
        ("ix_outbox_finished", ["status", "finished_at"], FINISHED),
    ):
        op.create_index(
            name,
            "outbox",
            columns,
            sqlite_where=sa.text(where),
            postgresql_where=sa.text(where),
        )


def downgrade() -> None:
    op.drop_index("ix_outbox_finished", table_name="outbox")
    op.drop_index("ix_outbox_due", table_name="outbox")
    op.create_index("ix_outbox_status_next", "outbox", ["status", "next_attempt_at"])
