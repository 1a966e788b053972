"""Anchors: copies of the chain's head kept outside the database.

A job appends one JSON line ``{"at", "seq", "hash"}`` to ``SELFCARE_AUDIT_ANCHOR_FILE``
(default ``var/audit-anchors.log``) and logs the same line (logger ``selfcare.audit``,
prefix ``audit-anchor``), at intervals and only when the head moved. The operator ships the
file or the log lines elsewhere. Verification checks that every anchored row still has its
anchored hash: rows deleted from the tail (with the head moved back to match) or a chain
rewritten by someone who holds the key are found up to the last anchor. Rows written after the
last anchor are protected by the key alone.

A restore (app/backup.py) appends a marker line with ``"restore": true``: the head it put
back. Anchors written before it of rows after it no longer count.

Lines are read back from the file or from shipped log lines alike: the JSON object is taken
from the first ``{`` of each line; blank lines and lines without one are skipped.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

from app.audit.service import Anchor
from app.config import Settings

LOG_PREFIX = "audit-anchor"


def anchor_path(settings: Settings) -> Path:
    """Where this process appends its anchors."""
    return settings.audit_anchor_file or settings.var_dir / "audit-anchors.log"


def anchor_line(anchor: Anchor) -> str:
    """The JSON line of one anchor."""
    at = anchor.at.isoformat() if anchor.at else None
    fields: dict[str, object] = {"at": at, "seq": anchor.seq, "hash": anchor.hash}
    if anchor.restore:
        fields["restore"] = True
    return json.dumps(fields, separators=(",", ":"))


def parse_anchor(line: str) -> Anchor | None:
    """The anchor in one line of the file or of a shipped log, or None for other lines."""
    start = line.find("{")
    if start < 0:
        return None
    raw = json.loads(line[start:])
    at = datetime.fromisoformat(raw["at"]) if raw.get("at") else None
    seq, digest = raw["seq"], raw["hash"]
    if not isinstance(seq, int) or not isinstance(digest, str):
        raise ValueError(f"not an anchor: {line.strip()!r}")
    return Anchor(seq=seq, hash=digest, at=at, restore=raw.get("restore") is True)


def read_anchors(path: Path) -> list[Anchor]:
    """The anchors of a file in force (none when it does not exist).

    A restore marker supersedes the anchors before it of rows after its own: those rows
    were taken away by the restore, which its own audit row explains (app/backup.py).
    """
    if not path.exists():
        return []
    anchors: list[Anchor] = []
    with path.open(encoding="utf-8") as lines:
        for anchor in (parse_anchor(line) for line in lines if line.strip()):
            if anchor is None:
                continue
            if anchor.restore:
                anchors = [a for a in anchors if a.seq <= anchor.seq]
            anchors.append(anchor)
    return anchors


def restores(path: Path) -> list[Anchor]:
    """The restore markers of a file, oldest first."""
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as lines:
        return [
            a for a in (parse_anchor(line) for line in lines if line.strip()) if a and a.restore
        ]


def last_anchor(path: Path) -> Anchor | None:
    """The newest anchor of a file (its last line), or None."""
    if not path.exists():
        return None
    with path.open("rb") as file:
        size = file.seek(0, os.SEEK_END)
        file.seek(max(0, size - 4096))
        tail = file.read().decode("utf-8", errors="replace").strip().splitlines()
    for line in reversed(tail):
        anchor = parse_anchor(line)
        if anchor is not None:
            return anchor
    return None


def append_anchor(path: Path, anchor: Anchor) -> str:
    """Append one anchor line and flush it to disk; the line written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = anchor_line(anchor)
    # One write of one short line with O_APPEND: lines of several processes never interleave.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    return line
