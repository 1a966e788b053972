"""Backups and restores of the database, with the audit chain kept explainable.

``selfcare backup PATH`` copies the database while it runs: SQLite through its online backup
API, PostgreSQL with ``pg_dump`` (custom format). A JSON file beside it (``PATH.json``) names
when it was taken and the audit chain's head then. Taking a backup is itself audited (a copy
of every patient's data leaves the database), before the copy, so the backup holds its row.

``selfcare restore PATH`` (the service stopped) puts the copy back: SQLite through the backup
API, PostgreSQL with ``pg_restore --clean``. Rows written after the backup are gone, and the
anchors written for them outside the database would now fail verification. So the restore
appends a *restore marker* to the anchor file (the head of the restored chain, flagged
``restore``): anchors before it that name later rows are superseded
(:func:`app.audit.anchors.read_anchors`). Then it writes an audit row of its own, saying which
backup was restored and which head it brought back, and anchors it like any other row.
"""

from __future__ import annotations

import glob
import json
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import make_url

from app.audit import anchors as audit_anchors
from app.audit import service as audit
from app.audit.jobs import anchor_audit_head
from app.config import Settings
from app.db import is_sqlite, make_engine, make_sessionmaker, normalise_url, transaction


@dataclass(frozen=True)
class BackupInfo:
    """What ``PATH.json`` says of a backup."""

    taken_at: str
    database: str  # sqlite | postgresql
    audit_seq: int
    audit_hash: str


def info_path(path: Path) -> Path:
    """Where the description of a backup file is kept."""
    return path.with_name(path.name + ".json")


def _sqlite_file(url: str) -> Path:
    database = make_url(url).database
    if not database:
        raise ValueError("an in-memory SQLite database cannot be backed up")
    return Path(database)


def _libpq_url(url: str) -> str:
    """The URL without SQLAlchemy's driver name, as pg_dump and pg_restore take it."""
    return (
        make_url(normalise_url(url))
        .set(drivername="postgresql")
        .render_as_string(hide_password=False)
    )


def pg_tool(name: str) -> str:
    """The path of a PostgreSQL client program: on PATH, else the newest Debian install."""
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True):
        return candidate
    raise FileNotFoundError(f"{name} not found: install the PostgreSQL client programs")


def _audited(settings: Settings, action: str, resource: str, now: datetime) -> tuple[int, str]:
    """Write one system audit row; the chain's head after it."""
    engine = make_engine(settings.effective_database_url)
    try:
        factory = audit.use_key(make_sessionmaker(engine), audit.audit_key(settings))
        with transaction(factory) as session:
            audit.record(
                session,
                audit.AuditEntry(
                    occurred_at=now,
                    actor_id=None,
                    actor_handle=f"system:{action}",
                    actor_role="system",
                    relation="system",
                    action=action,
                    resource=resource,
                    patient_ids=(),
                ),
            )
        with transaction(factory) as session:
            head = audit.chain_head(session)
    finally:
        engine.dispose()
    if head is None:
        raise RuntimeError("the audit chain has no head row")
    return head


def backup(settings: Settings, path: Path, now: datetime) -> BackupInfo:
    """Copy the running database to ``path`` (and describe it in ``PATH.json``)."""
    url = settings.effective_database_url
    path.parent.mkdir(parents=True, exist_ok=True)
    seq, digest = _audited(settings, "backup", f"selfcare backup {path.name}", now)
    if is_sqlite(url):
        source = sqlite3.connect(_sqlite_file(url))
        target = sqlite3.connect(path)
        try:
            source.backup(target)  # a consistent copy while others write
        finally:
            target.close()
            source.close()
        kind = "sqlite"
    else:
        subprocess.run(
            [pg_tool("pg_dump"), "--format=custom", "--file", str(path), _libpq_url(url)],
            check=True,
            capture_output=True,
        )
        kind = "postgresql"
    info = BackupInfo(taken_at=now.isoformat(), database=kind, audit_seq=seq, audit_hash=digest)
    info_path(path).write_text(json.dumps(info.__dict__, indent=2) + "\n")
    return info


def restore(settings: Settings, path: Path, now: datetime) -> BackupInfo:
    """Put a backup back in place of the database; audit and anchor the restore."""
    info = BackupInfo(**json.loads(info_path(path).read_text()))
    url = settings.effective_database_url
    if (info.database == "sqlite") != is_sqlite(url):
        raise ValueError(f"a {info.database} backup cannot be restored into this database")
    if is_sqlite(url):
        source = sqlite3.connect(path)
        target = sqlite3.connect(_sqlite_file(url))
        try:
            source.backup(target)
        finally:
            target.close()
            source.close()
    else:
        subprocess.run(
            [pg_tool("pg_restore"), "--clean", "--if-exists", "--no-owner",
             "--single-transaction", "--dbname", _libpq_url(url), str(path)],
            check=True,
            capture_output=True,
        )  # fmt: skip
    anchor_file = audit_anchors.anchor_path(settings)
    audit_anchors.append_anchor(
        anchor_file,
        audit.Anchor(seq=info.audit_seq, hash=info.audit_hash, at=now, restore=True),
    )
    _audited(
        settings,
        "restore",
        f"selfcare restore {path.name}: the backup of {info.taken_at} (audit head seq "
        f"{info.audit_seq}); what was written after it is gone",
        now,
    )
    engine = make_engine(url)
    try:
        anchor_audit_head(make_sessionmaker(engine), settings, now)
    finally:
        engine.dispose()
    return info
