"""push: reminders, outbox claims and final times, ended subscriptions

Revision ID: 0002_push
Revises: 0001
Create Date: 2026-11-26 10:16:36.430021
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db

revision: str = '0002_push'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('reminders',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('patient_id', sa.String(length=36), nullable=False),
    sa.Column('type', sa.String(length=32), nullable=False),
    sa.Column('local_date', sa.String(length=10), nullable=False),
    sa.Column('local_time', sa.String(length=5), nullable=False),
    sa.Column('due_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('notifications', sa.Integer(), nullable=False),
    sa.Column('created_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_reminders_patient_id_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reminders')),
    sa.UniqueConstraint('patient_id', 'type', 'local_date', 'local_time', name=op.f('uq_reminders_patient_id_type_local_date_local_time'))
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claim_token', sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column('finished_at', app.db.UTCDateTime(timezone=True), nullable=True))

    with op.batch_alter_table('push_subscriptions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ended_at', app.db.UTCDateTime(timezone=True), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('push_subscriptions', schema=None) as batch_op:
        batch_op.drop_column('ended_at')

    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_column('finished_at')
        batch_op.drop_column('claim_token')

    op.drop_table('reminders')
