"""consent: invitations with hashed one-time codes, pending grants, bases and revocations

Revision ID: 0008_consent
Revises: 0007_imports
Create Date: 2026-12-04 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db

revision: str = "0008_consent"
down_revision: str | None = "0007_imports"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("proxy_grants") as batch:
        batch.add_column(sa.Column("revoked_by", sa.String(length=36), nullable=True))
        batch.add_column(
            sa.Column("basis", sa.String(length=32), nullable=False, server_default="consent")
        )
        batch.add_column(sa.Column("basis_note", sa.String(length=2000), nullable=True))
        batch.add_column(
            sa.Column("accepted_at", app.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch.add_column(
            sa.Column("confirmed_at", app.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch.add_column(sa.Column("replaced_by", sa.String(length=36), nullable=True))
        batch.add_column(sa.Column("updated_at", app.db.UTCDateTime(timezone=True), nullable=True))
        batch.create_foreign_key(
            op.f("fk_proxy_grants_revoked_by_users"), "users", ["revoked_by"], ["id"]
        )
    with op.batch_alter_table("proxy_grants") as batch:
        batch.alter_column("basis", server_default=None)
    for status in ("pending", "active"):
        op.create_index(
            f"uq_proxy_grants_{status}",
            "proxy_grants",
            ["patient_id", "grantee_id"],
            unique=True,
            sqlite_where=sa.text(f"status = '{status}'"),
            postgresql_where=sa.text(f"status = '{status}'"),
        )
    op.create_table(
        "proxy_invitations",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("patient_id", sa.String(length=36), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("scopes", app.db.JSONType, nullable=False),
        sa.Column("valid_from", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("valid_to", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("expires_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=36), nullable=False),
        sa.Column("used_at", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("used_by", sa.String(length=36), nullable=True),
        sa.Column("grant_id", sa.String(length=36), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_proxy_invitations_created_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["grant_id"], ["proxy_grants.id"],
            name=op.f("fk_proxy_invitations_grant_id_proxy_grants"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_proxy_invitations_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["used_by"], ["users.id"], name=op.f("fk_proxy_invitations_used_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_proxy_invitations")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_proxy_invitations_code_hash")),
    )
    op.create_index(
        op.f("ix_proxy_invitations_patient_id"), "proxy_invitations", ["patient_id"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_proxy_invitations_patient_id"), table_name="proxy_invitations")
    op.drop_table("proxy_invitations")
    for status in ("pending", "active"):
        op.drop_index(f"uq_proxy_grants_{status}", table_name="proxy_grants")
    with op.batch_alter_table("proxy_grants") as batch:
        batch.drop_constraint(op.f("fk_proxy_grants_revoked_by_users"), type_="foreignkey")
        for column in ("updated_at", "replaced_by", "confirmed_at", "accepted_at",
                       "basis_note", "basis", "revoked_by"):  # fmt: skip
            batch.drop_column(column)
