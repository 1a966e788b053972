"""The sync protocol, pure: wire schemas, normalisation, dedup decisions, cursors.

Nothing here does I/O or reads the clock; ``now`` is always a parameter.
"""

from sync.cursor import InvalidCursor, decode_cursor, encode_cursor
from sync.dedup import DEDUP_WINDOW, find_same_measurement, same_measurement
from sync.normalise import (
    FUTURE_TOLERANCE,
    ItemError,
    ItemErrorCode,
    NormalisedReading,
    normalise_reading,
)
from sync.wire import (
    MAX_READINGS,
    DeviceIn,
    ItemErrorOut,
    ItemResult,
    ItemStatus,
    SourceIn,
    SourceKind,
    SyncRequest,
)

__all__ = [
    "DEDUP_WINDOW",
    "FUTURE_TOLERANCE",
    "MAX_READINGS",
    "DeviceIn",
    "InvalidCursor",
    "ItemError",
    "ItemErrorCode",
    "ItemErrorOut",
    "ItemResult",
    "ItemStatus",
    "NormalisedReading",
    "SourceIn",
    "SourceKind",
    "SyncRequest",
    "decode_cursor",
    "encode_cursor",
    "find_same_measurement",
    "normalise_reading",
    "same_measurement",
]
