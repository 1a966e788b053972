"""lookup indexes: advice by evaluation, outbox messages by advice

Revision ID: 0017_lookup_indexes
Revises: 0016_lock_screen
Create Date: 2026-12-06 00:30:00

A correction (a reading entered in error) finds the advice of the evaluations it retracts,
and the pushes of that advice to withdraw, by ``advice.evaluation_id`` and
``outbox.advice_id`` alone. Without these indexes each lookup read the whole table, every
patient's rows (issue 17: the database does useful work, not repeated work).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0017_lookup_indexes"
down_revision: str | None = "0016_lock_screen"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_advice_evaluation", "advice", ["evaluation_id"])
    op.create_index("ix_outbox_advice", "outbox", ["advice_id"])


def downgrade() -> None:
    op.drop_index("ix_outbox_advice", table_name="outbox")
    op.drop_index("ix_advice_evaluation", table_name="advice")
