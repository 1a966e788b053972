"""evaluations by time: a patient's evaluations in a span of anchor times

Revision ID: 0018_evaluations_by_time
Revises: 0017_lookup_indexes
Create Date: 2026-12-06 03:20:00

A late batch or a correction in a dense week asks which of thousands of re-evaluated anchors
fired before. Probing the unique index once per (rule, anchor) pair was a tenth of such a
sync; the patient's evaluations in the span of those anchors' times are one range read
(issue 17 §6).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0018_evaluations_by_time"
down_revision: str | None = "0017_lookup_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_evaluations_patient_time",
        "evaluations",
        ["patient_id", "anchor_time", "plan_version", "rule_id", "anchor_key", "status", "id"],
    )


def downgrade() -> None:
    op.drop_index("ix_evaluations_patient_time", table_name="evaluations")
