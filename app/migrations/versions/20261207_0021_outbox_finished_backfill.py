"""outbox: a finish time for the rows that finished before there was one

Revision ID: 0021_outbox_finished_backfill
Revises: 0020_outbox_due
Create Date: 2026-12-07 05:00:00

``finished_at`` came with migration 0002; rows that had reached a final status before it kept
a NULL there, and the retention (``app.jobs.retention``), which deletes finished rows by
``finished_at`` older than the retention days, never matched them: their payloads (advice
titles, a patient's id) were kept for ever. They get the latest time they record: when they
were sent, else the end of their last lease or their next attempt, else when they were
written. That errs towards keeping a row a little longer, never shorter.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0021_outbox_finished_backfill"
down_revision: str | None = "0020_outbox_due"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As ``app.push.models.FINISHED`` writes it today (a migration keeps its own copy).
FINISHED = "status IN ('cancelled', 'dead', 'expired', 'gone', 'sent')"


def upgrade() -> None:
    op.execute(
        "UPDATE outbox SET finished_at = COALESCE(sent_at, next_attempt_at, created_at)"
        f" WHERE finished_at IS NULL AND {FINISHED}"
    )


def downgrade() -> None:
    # Which rows had no finish time is not kept; the times given are as good as any.
    pass
