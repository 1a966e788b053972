"""Back up, write more, restore: counts come back and the audit chain still verifies.

The real CLI on both databases (issue 12, DESIGN §4.10). After a restore the anchors of the
rows it took away would fail verification; its restore marker and its own audit row explain
the missing tail instead (app/backup.py).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from app.audit.models import AuditEvent
from app.db import normalise_url
from app.readings.models import Reading
from tests.live import LiveServer

pytestmark = pytest.mark.e2e  # runs the CLI in processes of its own


def _counts(url: str) -> tuple[int, int, str]:
    engine = create_engine(normalise_url(url))
    with Session(engine) as session:
        readings = session.scalar(select(func.count()).select_from(Reading)) or 0
        events = session.scalar(select(func.count()).select_from(AuditEvent)) or 0
        last = session.scalars(select(AuditEvent.action).order_by(AuditEvent.seq.desc())).first()
    engine.dispose()
    return readings, events, last or ""


def test_backup_write_more_restore_and_verify(db_url: str, tmp_path: Path) -> None:
    cli = LiveServer(db_url, tmp_path).cli
    cli("audit", "anchor")
    backup = tmp_path / "backups" / "selfcare.backup"
    cli("backup", str(backup))
    at_backup = _counts(db_url)
    assert at_backup[2] == "backup"  # taking the copy is audited, and in the copy

    cli("seed")  # a month of readings for each persona: more data and more audit rows
    cli("audit", "anchor")  # anchors rows the restore will take away
    written = _counts(db_url)
    assert written[0] > 0 and written[1] > at_backup[1]

    with pytest.raises(subprocess.CalledProcessError):
        cli("restore", str(backup))  # not without --yes
    assert _counts(db_url) == written
    cli("restore", str(backup), "--yes")
    restored = _counts(db_url)
    assert restored[0] == at_backup[0] == 0
    assert restored[1] == at_backup[1] + 1 and restored[2] == "restore"
    verified = cli("audit", "verify")
    assert "restored on" in verified

    # Without the restore marker, the anchors of the lost rows would break verification.
    anchors = tmp_path / "audit-anchors.log"
    unmarked = tmp_path / "unmarked.log"
    unmarked.write_text(
        "".join(line for line in anchors.read_text().splitlines(True) if "restore" not in line)
    )
    with pytest.raises(subprocess.CalledProcessError):
        cli("audit", "verify", "--anchors", str(unmarked))

    cli("seed")  # life goes on after the restore; the chain and its anchors with it
    cli("audit", "anchor")
    assert _counts(db_url)[0] == written[0]
    assert "restored on" in cli("audit", "verify")
