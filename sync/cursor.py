"""Opaque change-feed cursors: a position, signed and bound to one patient.

A token is urlsafe base64 (no padding) of ``version (1 byte) | position (8 bytes, big
endian) | HMAC-SHA256(key, "cursor" | version | patient id | position)``. A token that was
altered, cut short, or made for another patient or with another key is an
:class:`InvalidCursor`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

_VERSION = 1
_POSITION_BYTES = 8
_MAC_BYTES = hashlib.sha256().digest_size
_TOKEN_BYTES = 1 + _POSITION_BYTES + _MAC_BYTES
_MAX_TOKEN_CHARS = 128
MAX_POSITION = 2**63 - 1


class InvalidCursor(ValueError):
    """A cursor that was not issued for this patient by this service."""


def _mac(key: bytes, patient_id: str, body: bytes) -> bytes:
    message = b"cursor\x00" + patient_id.encode() + b"\x00" + body
    return hmac.new(key, message, hashlib.sha256).digest()


def encode_cursor(patient_id: str, position: int, *, key: bytes) -> str:
    """Return an opaque token for a change-feed position of a patient."""
    if not key:
        raise ValueError("the cursor key must not be empty")
    if not 0 <= position <= MAX_POSITION:
        raise ValueError(f"position must be within 0..{MAX_POSITION}")
    body = bytes([_VERSION]) + position.to_bytes(_POSITION_BYTES, "big")
    return _text(body + _mac(key, patient_id, body))


def _text(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(token: str, patient_id: str, *, key: bytes) -> int:
    """Return the position in a token issued for this patient; raise InvalidCursor if not."""
    if not key:
        raise ValueError("the cursor key must not be empty")
    if not isinstance(token, str) or not 0 < len(token) <= _MAX_TOKEN_CHARS:
        raise InvalidCursor("malformed cursor")
    try:
        raw = base64.b64decode(token + "=" * (-len(token) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise InvalidCursor("malformed cursor") from None
    if len(raw) != _TOKEN_BYTES or raw[0] != _VERSION or _text(raw) != token:
        raise InvalidCursor("malformed cursor")  # only the one spelling we issue
    body, mac = raw[: 1 + _POSITION_BYTES], raw[1 + _POSITION_BYTES :]
    if not hmac.compare_digest(mac, _mac(key, patient_id, body)):
        raise InvalidCursor("cursor not valid for this patient")
    return int.from_bytes(body[1:], "big")


__all__ = ["MAX_POSITION", "InvalidCursor", "decode_cursor", "encode_cursor"]
