"""dialogue: the message thread, flag notes as a history, the care units of flag actions

Revision ID: 0009_dialogue
Revises: 0008_consent
Create Date: 2026-12-04 01:30:00

``flags.note`` held one note, overwritten by each acknowledge or resolve; its values move to
``flag_notes`` (author: whoever wrote it last — the resolver of a resolved flag, else the one who
acknowledged it) and the column is no longer written. Notes are internal to the care team, so
the note is also taken out of the flag entries already in the patients' change feeds.
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db

revision: str = "0009_dialogue"
down_revision: str | None = "0008_consent"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 1000


def upgrade() -> None:
    op.create_table(
        "messages",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("patient_id", sa.String(length=36), nullable=False),
        sa.Column("author_id", sa.String(length=36), nullable=False),
        sa.Column("author_care_unit", sa.String(length=200), nullable=True),
        sa.Column("side", sa.String(length=16), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("read_at", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["author_id"], ["users.id"], name=op.f("fk_messages_author_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_messages_patient_id_patients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
    )
    op.create_index(
        "ix_messages_patient_created", "messages", ["patient_id", "created_at"], unique=False
    )
    op.create_index(
        "ix_messages_patient_side_read", "messages", ["patient_id", "side", "read_at"], unique=False
    )
    op.create_table(
        "flag_notes",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("flag_id", sa.String(length=36), nullable=False),
        sa.Column("author_id", sa.String(length=36), nullable=True),
        sa.Column("author_care_unit", sa.String(length=200), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"], ["users.id"], name=op.f("fk_flag_notes_author_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["flag_id"], ["flags.id"], name=op.f("fk_flag_notes_flag_id_flags")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_flag_notes")),
    )
    op.create_index(
        "ix_flag_notes_flag_created", "flag_notes", ["flag_id", "created_at"], unique=False
    )
    op.add_column("flags", sa.Column("acknowledged_unit", sa.String(length=200), nullable=True))
    op.add_column("flags", sa.Column("resolved_unit", sa.String(length=200), nullable=True))
    _move_notes()
    _scrub_feed()


def _move_notes() -> None:
    # Timestamps are copied as the database gave them (untyped columns), in its own format.
    bind = op.get_bind()
    flags = sa.table(
        "flags",
        sa.column("id", sa.String),
        sa.column("status", sa.String),
        sa.column("note", sa.String),
        sa.column("acknowledged_by", sa.String),
        sa.column("acknowledged_at"),
        sa.column("resolved_by", sa.String),
        sa.column("resolved_at"),
        sa.column("updated_at"),
    )
    notes = sa.table(
        "flag_notes",
        sa.column("id", sa.String),
        sa.column("flag_id", sa.String),
        sa.column("author_id", sa.String),
        sa.column("author_care_unit", sa.String),
        sa.column("body", sa.Text),
        sa.column("created_at"),
    )
    rows = bind.execute(sa.select(flags).where(flags.c.note != "")).all()
    moved = []
    for row in rows:
        resolved = row.status == "resolved" and row.resolved_by is not None
        moved.append(
            {
                "id": str(uuid.uuid4()),
                "flag_id": row.id,
                "author_id": row.resolved_by if resolved else row.acknowledged_by,
                "author_care_unit": None,  # not recorded before this revision
                "body": row.note,
                "created_at": (row.resolved_at if resolved else row.acknowledged_at)
                or row.updated_at,
            }
        )
    for start in range(0, len(moved), _BATCH):
        bind.execute(notes.insert(), moved[start : start + _BATCH])


def _scrub_feed() -> None:
    bind = op.get_bind()
    changes = sa.table(
        "changes",
        sa.column("id", sa.BigInteger),
        sa.column("entity", sa.String),
        sa.column("data", app.db.JSONType),
    )
    last = 0
    while True:
        rows = bind.execute(
            sa.select(changes.c.id, changes.c.data)
            .where(changes.c.entity == "flag", changes.c.id > last)
            .order_by(changes.c.id)
            .limit(_BATCH)
        ).all()
        if not rows:
            return
        for row in rows:
            if isinstance(row.data, dict) and "note" in row.data:
                data = {k: v for k, v in row.data.items() if k != "note"}
                bind.execute(changes.update().where(changes.c.id == row.id).values(data=data))
        last = rows[-1].id


def downgrade() -> None:
    op.drop_column("flags", "resolved_unit")
    op.drop_column("flags", "acknowledged_unit")
    op.drop_index("ix_flag_notes_flag_created", table_name="flag_notes")
    op.drop_table("flag_notes")
    op.drop_index("ix_messages_patient_side_read", table_name="messages")
    op.drop_index("ix_messages_patient_created", table_name="messages")
    op.drop_table("messages")
