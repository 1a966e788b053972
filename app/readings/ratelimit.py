"""Flood protection for sync: a token bucket per (caller, patient), in this process.

A device that floods gets 429 with ``Retry-After`` before its body is read, so it cannot
crowd out other patients. Buckets live in process memory: with several API processes the
effective limit is per process, which is enough to stop a runaway app.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

from app.errors import TooManyRequests

MAX_BUCKETS = 100_000


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Allows ``burst`` requests at once, refilled at ``per_minute``; 0 means no limit."""

    def __init__(self, per_minute: int, burst: int) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._lock = threading.Lock()

    def check(self, key: tuple[str, str], now: float) -> None:
        """Take one token for ``key`` or raise 429 saying when the next one is due."""
        if self.rate <= 0:
            return
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= MAX_BUCKETS:
                    self._buckets.clear()  # bounded memory; a reset only forgives
                bucket = self._buckets[key] = _Bucket(self.burst, now)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return
            wait = math.ceil((1 - bucket.tokens) / self.rate)
        raise TooManyRequests(
            "Too many uploads from this device; try again later.", retry_after=max(1, wait)
        )
