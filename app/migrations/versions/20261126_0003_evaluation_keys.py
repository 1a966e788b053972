"""evaluation keys: one row per (patient, rule, anchor, plan version); retraction

Revision ID: 0003_evaluation_keys
Revises: 0002_push
Create Date: 2026-11-26 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db

revision: str = "0003_evaluation_keys"
down_revision: str | None = "0002_push"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("evaluations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("anchor_key", sa.String(length=200), nullable=True))
        batch_op.add_column(
            sa.Column("anchor_time", app.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("status", sa.String(length=16), nullable=True))
        batch_op.add_column(
            sa.Column("retracted_at", app.db.UTCDateTime(timezone=True), nullable=True)
        )
    # Rows from before: each was its own firing, anchored at its reading (or itself).
    op.execute(
        "UPDATE evaluations SET anchor_key = COALESCE(anchor_reading_id, id), "
        "anchor_time = created_at, status = 'fired'"
    )
    with op.batch_alter_table("evaluations", schema=None) as batch_op:
        batch_op.alter_column("anchor_key", existing_type=sa.String(length=200), nullable=False)
        batch_op.alter_column(
            "anchor_time", existing_type=app.db.UTCDateTime(timezone=True), nullable=False
        )
        batch_op.alter_column("status", existing_type=sa.String(length=16), nullable=False)
        batch_op.create_unique_constraint(
            batch_op.f("uq_evaluations_patient_id_rule_id_anchor_key_plan_version"),
            ["patient_id", "rule_id", "anchor_key", "plan_version"],
        )


def downgrade() -> None:
    with op.batch_alter_table("evaluations", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_evaluations_patient_id_rule_id_anchor_key_plan_version"), type_="unique")
        batch_op.drop_column("retracted_at")
        batch_op.drop_column("status")
        batch_op.drop_column("anchor_time")
        batch_op.drop_column("anchor_key")
