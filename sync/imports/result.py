"""What an import gives back: wire readings for the sync ingest, and what could not be read."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sync.normalise import CLIENT_ID_MAX, ItemError


@dataclass(frozen=True)
class Rejection:
    """One data point or row that did not become a reading, where it was, and why."""

    where: str  # "" for a single document, "[3]" for an item of a list, "line 14" for CSV
    client_id: str | None  # when one could be derived, so an app can match its own record
    errors: tuple[ItemError, ...]


@dataclass(frozen=True)
class ImportResult:
    """Readings in the wire shape of ``normalise_reading``, in input order, and the rest.

    ``skipped`` counts input rows that are not measurements at all (a Dexcom alert or the
    patient's name), which are left out without being an error.
    """

    readings: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    skipped: int = 0
    ignored: list[str] = field(default_factory=list)  # what was skipped, where, and why


def _canonical(value: Any) -> Any:
    """Numbers as normalised decimal text, so 50 and 50.0 hash alike."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float | Decimal):
        number = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
        return format(number.normalize(), "f") if number.is_finite() else str(value)
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    return str(value)


def content_id(prefix: str, content: Any) -> str:
    """Return a client_id that is a hash of the content (equal content, equal id)."""
    text = json.dumps(_canonical(content), sort_keys=True, separators=(",", ":"))
    return f"{prefix}sha256:{hashlib.sha256(text.encode()).hexdigest()}"


def bounded_id(prefix: str, natural: str) -> str:
    """Return ``prefix + natural`` when it is a valid client_id, else a hash of it."""
    candidate = prefix + natural
    if len(candidate) <= CLIENT_ID_MAX and candidate.isprintable():
        return candidate
    return content_id(prefix, natural)


__all__ = ["ImportResult", "Rejection", "bounded_id", "content_id"]
