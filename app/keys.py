"""Keys the service generates for itself into ``var/`` on first use (dev issuer, VAPID)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec


def write_once(path: Path, make: Callable[[], bytes]) -> bytes:
    """The bytes at ``path``; when missing, ``make()`` them and write them (mode 0600) first.

    Written under a temporary name and linked into place, so two processes starting at once
    never see half a secret, and the loser of the race uses the winner's.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(make())
        os.chmod(tmp, 0o600)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_bytes()


def load_or_create_p256(path: Path) -> bytes:
    """The PEM of a P-256 private key at ``path``, generated (mode 0600) when missing."""

    def generate() -> bytes:
        return ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    return write_once(path, generate)
