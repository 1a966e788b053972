"""The sync request and per-item results on the wire (DESIGN.md §4.2)."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Annotated, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from rules.text import SingleLine

MAX_READINGS = 5000
"""The most readings one sync request may carry (more is a 413)."""

SOURCE_ID_PATTERN = r"^[A-Za-z0-9._:-]+$"


class SourceKind(StrEnum):
    """What kind of thing sends readings."""

    app = "app"
    device = "device"
    manual = "manual"
    import_ = "import"


class DeviceIn(BaseModel):
    """The measuring device behind a source."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    manufacturer: SingleLine = Field(min_length=1, max_length=200)
    model: SingleLine = Field(min_length=1, max_length=200)


class SourceIn(BaseModel):
    """The app, device or person that sends a batch; ``id`` scopes its ``client_id``s."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=128, pattern=SOURCE_ID_PATTERN)
    kind: SourceKind
    name: SingleLine = Field(default="", max_length=200)
    version: SingleLine | None = Field(default=None, max_length=64)
    device: DeviceIn | None = None


class SyncRequest(BaseModel):
    """The body of ``POST /v1/patients/{pid}/sync``.

    ``readings`` stays raw: each item is checked by :func:`sync.normalise.normalise_reading`
    so that one bad item is rejected alone and never fails the batch.
    """

    model_config = ConfigDict(extra="forbid")

    source: SourceIn
    readings: list[Any] = Field(max_length=MAX_READINGS)
    cursor: SingleLine | None = Field(default=None, max_length=512)


class ItemStatus(StrEnum):
    """What became of one submitted reading."""

    created = "created"
    duplicate = "duplicate"
    rejected = "rejected"


class _ErrorLike(Protocol):
    @property
    def loc(self) -> str: ...
    @property
    def code(self) -> str: ...
    @property
    def message(self) -> str: ...


class ItemErrorOut(BaseModel):
    """Why a reading was rejected: where, a stable code, and a message for people."""

    model_config = ConfigDict(frozen=True)

    loc: str
    code: str
    message: str

    @classmethod
    def of(cls, error: _ErrorLike) -> ItemErrorOut:
        """Return the wire form of an item error."""
        return cls(loc=error.loc, code=error.code, message=error.message)


class ItemResult(BaseModel):
    """The answer for one submitted reading, in the order they were sent."""

    model_config = ConfigDict(frozen=True)

    client_id: str | None
    status: ItemStatus
    id: str | None = None
    duplicate_of: str | None = None
    errors: Annotated[list[ItemErrorOut] | None, Field(min_length=1)] = None

    @classmethod
    def rejected(cls, client_id: str | None, errors: Iterable[_ErrorLike]) -> ItemResult:
        """Return a rejection carrying every error of the item."""
        return cls(
            client_id=client_id,
            status=ItemStatus.rejected,
            errors=[ItemErrorOut.of(error) for error in errors],
        )


__all__ = [
    "MAX_READINGS",
    "SOURCE_ID_PATTERN",
    "DeviceIn",
    "ItemErrorOut",
    "ItemResult",
    "ItemStatus",
    "SourceIn",
    "SourceKind",
    "SyncRequest",
]
