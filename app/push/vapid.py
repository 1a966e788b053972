"""The VAPID key that signs every push (RFC 8292): from configuration, or generated into var/."""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02  # type: ignore[import-untyped]

from app.config import Settings
from app.keys import load_or_create_p256

VAPID_KEY_FILE = "vapid-private-key.pem"

log = logging.getLogger("selfcare.push")
_B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def b64url(data: bytes) -> str:
    """Base64url without padding, as Web Push writes keys."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode base64url with or without padding; raise ValueError on anything else."""
    cleaned = text.strip()
    if not cleaned or any(c not in _B64URL for c in cleaned.rstrip("=")):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(cleaned.rstrip("=") + "=" * (-len(cleaned.rstrip("=")) % 4))


@dataclass(frozen=True)
class VapidKey:
    """The application server's P-256 key pair."""

    private_key: ec.EllipticCurvePrivateKey

    @property
    def public_key(self) -> str:
        """The public key as browsers want it: base64url of the uncompressed point."""
        point = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return b64url(point)

    def signer(self) -> Vapid02:
        """A py_vapid signer (``Authorization: vapid t=…, k=…``) for this key."""
        return Vapid02(self.private_key)


def parse_private_key(text: str) -> ec.EllipticCurvePrivateKey:
    """A P-256 private key from PEM, or from base64url of its raw 32 bytes."""
    if "-----BEGIN" in text:
        loaded = serialization.load_pem_private_key(text.encode(), password=None)
        if not isinstance(loaded, ec.EllipticCurvePrivateKey) or not isinstance(
            loaded.curve, ec.SECP256R1
        ):
            raise ValueError("the VAPID key must be a P-256 EC private key")
        return loaded
    raw = b64url_decode(text)
    if len(raw) != 32:
        raise ValueError("a raw VAPID private key is 32 bytes, base64url")
    return ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())


def vapid_key(settings: Settings) -> VapidKey:
    """The configured key, else the one in ``var/`` (generated there on first use)."""
    if settings.vapid_private_key:
        return _configured(settings.vapid_private_key)
    return VapidKey(_load_or_create(settings.var_dir / VAPID_KEY_FILE))


@cache
def _configured(text: str) -> VapidKey:
    return VapidKey(parse_private_key(text))


@cache
def _load_or_create(path: Path) -> ec.EllipticCurvePrivateKey:
    created = not path.exists()
    pem = load_or_create_p256(path).decode()
    if created:
        log.info("generated a VAPID key in %s", path)
    return parse_private_key(pem)
