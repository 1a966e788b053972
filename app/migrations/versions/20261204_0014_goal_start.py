"""goal start: a goal's start date in its own column, no longer a key inside ``target``

Revision ID: 0014_goal_start
Revises: 0013_team_requests
Create Date: 2026-12-04 07:00:00

Every stored goal has ``target.start`` (an ISO date, written since goals exist): it moves to
``goals.start`` and leaves ``target``. Downgrade puts it back.
"""

from collections.abc import Sequence
from datetime import date

import sqlalchemy as sa
from alembic import op

import app.db

revision: str = "0014_goal_start"
down_revision: str | None = "0013_team_requests"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GOALS = sa.table(
    "goals",
    sa.column("id", sa.String(36)),
    sa.column("target", app.db.JSONType),
    sa.column("start", sa.Date()),
)


def upgrade() -> None:
    op.add_column("goals", sa.Column("start", sa.Date(), nullable=True))
    bind = op.get_bind()
    for goal_id, target in bind.execute(sa.select(GOALS.c.id, GOALS.c.target)).all():
        moved = dict(target)
        start = date.fromisoformat(moved.pop("start"))
        bind.execute(
            GOALS.update().where(GOALS.c.id == goal_id).values(start=start, target=moved)
        )
    with op.batch_alter_table("goals") as batch:
        batch.alter_column("start", existing_type=sa.Date(), nullable=False)


def downgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.select(GOALS.c.id, GOALS.c.target, GOALS.c.start)).all()
    for goal_id, target, start in rows:
        bind.execute(
            GOALS.update()
            .where(GOALS.c.id == goal_id)
            .values(target={**target, "start": start.isoformat()})
        )
    with op.batch_alter_table("goals") as batch:
        batch.drop_column("start")
