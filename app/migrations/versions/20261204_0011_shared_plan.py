"""shared plan: agreements with decisions, the named care contact, the patient's own words

Revision ID: 0011_shared_plan
Revises: 0010_activities
Create Date: 2026-12-04 03:40:00

Agreements stored inside plan versions get ids: the same text of the same patient gets the
same id in every version (uuid5), and one ``agreements`` row, proposed by the version that
first held it; none has a decision yet, so each is ``proposed`` until the patient decides.
A plan's free-text ``contact`` becomes the patient's care contact when its name is a clinician
of one of the patient's teams (the phone moves with it), and leaves the stored bodies: the
care contact is the one source of whom to call. This rewrites the agreement and contact keys
of stored plan bodies; their rules, schedule and texts are untouched.
"""

import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

import app.db

revision: str = "0011_shared_plan"
down_revision: str | None = "0010_activities"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_AGREEMENT_NS = uuid.UUID("6f1d3c52-93a4-4d1b-9a57-2f0e8c1d7b11")


def upgrade() -> None:
    op.create_table(
        "agreements",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("patient_id", sa.String(length=36), nullable=False),
        sa.Column("content", app.db.JSONType, nullable=False),
        sa.Column("proposed_in", sa.Integer(), nullable=False),
        sa.Column("proposed_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("proposed_by", sa.String(length=36), nullable=True),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_agreements_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["proposed_by"], ["users.id"], name=op.f("fk_agreements_proposed_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agreements")),
    )
    op.create_index(op.f("ix_agreements_patient_id"), "agreements", ["patient_id"], unique=False)
    op.create_table(
        "agreement_events",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("agreement_id", sa.String(length=36), nullable=False),
        sa.Column("patient_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("actor_id", sa.String(length=36), nullable=True),
        sa.Column("actor_care_unit", sa.String(length=200), nullable=True),
        sa.Column("at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["users.id"], name=op.f("fk_agreement_events_actor_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["agreement_id"],
            ["agreements.id"],
            name=op.f("fk_agreement_events_agreement_id_agreements"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_agreement_events_patient_id_patients")
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_agreement_events")),
    )
    op.create_index(
        "ix_agreement_events_agreement_seq",
        "agreement_events",
        ["agreement_id", "seq"],
        unique=False,
    )
    op.create_index(
        op.f("ix_agreement_events_patient_id"), "agreement_events", ["patient_id"], unique=False
    )
    op.create_table(
        "care_contacts",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("patient_id", sa.String(length=36), nullable=False),
        sa.Column("clinician_id", sa.String(length=36), nullable=False),
        sa.Column("team_id", sa.String(length=36), nullable=False),
        sa.Column("phone", sa.String(length=50), nullable=False),
        sa.Column("hours", sa.String(length=200), nullable=False),
        sa.Column("set_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("set_by", sa.String(length=36), nullable=True),
        sa.ForeignKeyConstraint(
            ["clinician_id"], ["users.id"], name=op.f("fk_care_contacts_clinician_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_care_contacts_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["set_by"], ["users.id"], name=op.f("fk_care_contacts_set_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["team_id"], ["care_teams.id"], name=op.f("fk_care_contacts_team_id_care_teams")
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_care_contacts")),
    )
    op.create_index(
        "ix_care_contacts_patient_seq", "care_contacts", ["patient_id", "seq"], unique=False
    )
    op.create_table(
        "story_versions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("patient_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("what_matters", sa.Text(), nullable=False),
        sa.Column("questions", app.db.JSONType, nullable=False),
        sa.Column("written_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("written_by", sa.String(length=36), nullable=True),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_story_versions_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["written_by"], ["users.id"], name=op.f("fk_story_versions_written_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_story_versions")),
        sa.UniqueConstraint(
            "patient_id", "version", name=op.f("uq_story_versions_patient_id_version")
        ),
    )
    _move_plan_content()


def _move_plan_content() -> None:
    bind = op.get_bind()
    versions = sa.table(
        "plan_versions",
        sa.column("id", sa.String),
        sa.column("patient_id", sa.String),
        sa.column("version", sa.Integer),
        sa.column("body", app.db.JSONType),
        sa.column("created_at"),
        sa.column("created_by", sa.String),
    )
    agreements = sa.table(
        "agreements",
        sa.column("id", sa.String),
        sa.column("patient_id", sa.String),
        sa.column("content", app.db.JSONType),
        sa.column("proposed_in", sa.Integer),
        sa.column("proposed_at"),
        sa.column("proposed_by", sa.String),
    )
    contacts = sa.table(
        "care_contacts",
        sa.column("patient_id", sa.String),
        sa.column("clinician_id", sa.String),
        sa.column("team_id", sa.String),
        sa.column("phone", sa.String),
        sa.column("hours", sa.String),
        sa.column("set_at"),
        sa.column("set_by", sa.String),
    )
    rows = bind.execute(
        sa.select(versions).order_by(versions.c.patient_id, versions.c.version)
    ).all()
    seen: set[str] = set()
    latest_contact: dict[str, tuple[Any, dict[str, Any]]] = {}
    for row in rows:
        body = dict(row.body or {})
        items = []
        for item in body.get("agreements") or []:
            item = dict(item)
            if not item.get("id"):
                name = f"{row.patient_id}\n{item.get('text', '')}"
                item["id"] = str(uuid.uuid5(_AGREEMENT_NS, name))
            if item["id"] not in seen:
                seen.add(item["id"])
                content = {k: v for k, v in item.items() if k != "id"}
                bind.execute(
                    agreements.insert().values(
                        id=item["id"],
                        patient_id=row.patient_id,
                        content=content,
                        proposed_in=row.version,
                        proposed_at=row.created_at,
                        proposed_by=row.created_by,
                    )
                )
            items.append(item)
        contact = body.pop("contact", None)
        if isinstance(contact, dict):
            latest_contact[row.patient_id] = (row, contact)
        if items or "agreements" in body:
            body["agreements"] = items
        bind.execute(versions.update().where(versions.c.id == row.id).values(body=body))
    for patient_id, (row, contact) in latest_contact.items():
        member = _clinician_named(bind, patient_id, str(contact.get("name", "")))
        if member is None:
            continue  # advice falls back to the team's phone, as for a plan without contact
        bind.execute(
            contacts.insert().values(
                patient_id=patient_id,
                clinician_id=member[0],
                team_id=member[1],
                phone=str(contact.get("phone", "")),
                hours="",
                set_at=row.created_at,
                set_by=row.created_by,
            )
        )


def _clinician_named(bind: sa.Connection, patient_id: str, name: str) -> tuple[str, str] | None:
    """A clinician of one of the patient's teams with this display name: (user id, team id)."""
    found = bind.execute(
        sa.text(
            "SELECT u.id, tm.team_id FROM users u"
            " JOIN team_members tm ON tm.user_id = u.id"
            " JOIN team_patients tp ON tp.team_id = tm.team_id"
            " WHERE tp.patient_id = :pid AND u.display_name = :name AND u.role = 'clinician'"
            " ORDER BY tp.enrolled_at LIMIT 1"
        ),
        {"pid": patient_id, "name": name.strip()},
    ).first()
    return (found[0], found[1]) if found is not None else None


def downgrade() -> None:
    op.drop_table("story_versions")
    op.drop_index("ix_care_contacts_patient_seq", table_name="care_contacts")
    op.drop_table("care_contacts")
    op.drop_index(op.f("ix_agreement_events_patient_id"), table_name="agreement_events")
    op.drop_index("ix_agreement_events_agreement_seq", table_name="agreement_events")
    op.drop_table("agreement_events")
    op.drop_index(op.f("ix_agreements_patient_id"), table_name="agreements")
    op.drop_table("agreements")
