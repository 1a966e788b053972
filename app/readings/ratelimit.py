"""Token buckets, in this process: flood protection for sync, and the probing limits.

Sync: a bucket per (caller, patient). A device that floods gets 429 with ``Retry-After``
before its body is read, so it cannot crowd out other patients. The patient is the one the
request is about, not the path's text: ``me`` and the caller's own patient id share a bucket
(``OwnPatients`` remembers, per token subject, which patient ``me`` is, from the first
authorised request of that subject in this process, without a query of its own; until then
``me`` keys a bucket of its own, whose spent tokens move to the id's bucket when the two
meet, so switching between the two spellings gains nothing).

Probing (``app/probing.py``): the same buckets, but only failures take a token.

Buckets live in process memory: with several API processes the effective limit is per
process, which is enough to stop a runaway app or slow a prober down.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass

from app.errors import TooManyRequests

MAX_BUCKETS = 100_000

Key = tuple[str, str]


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Allows ``burst`` requests at once, refilled at ``per_minute``; 0 means no limit."""

    def __init__(
        self,
        per_minute: int,
        burst: int,
        *,
        detail: str = "Too many uploads from this device; try again later.",
    ) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.detail = detail
        self._buckets: dict[Key, _Bucket] = {}
        self._lock = threading.Lock()

    def _refilled(self, key: Key, now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= MAX_BUCKETS:
                self._buckets.clear()  # bounded memory; a reset only forgives
            bucket = self._buckets[key] = _Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + max(0.0, now - bucket.updated) * self.rate)
        bucket.updated = now
        return bucket

    def _wait(self, bucket: _Bucket) -> int:
        return max(1, math.ceil((1 - bucket.tokens) / self.rate))

    def check(self, key: Key, now: float) -> None:
        """Take one token for ``key`` or raise 429 saying when the next one is due."""
        if self.rate <= 0:
            return
        with self._lock:
            bucket = self._refilled(key, now)
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return
            wait = self._wait(bucket)
        raise TooManyRequests(self.detail, retry_after=wait)

    def refuse_if_spent(self, key: Key, now: float) -> None:
        """Raise 429 if ``key`` has no token left; take none."""
        if self.rate <= 0:
            return
        with self._lock:
            bucket = self._refilled(key, now)
            if bucket.tokens >= 1:
                return
            wait = self._wait(bucket)
        raise TooManyRequests(self.detail, retry_after=wait)

    def spend(self, key: Key, now: float) -> None:
        """Take one token for ``key`` if one is left (a failure is charged, never refused)."""
        if self.rate <= 0:
            return
        with self._lock:
            bucket = self._refilled(key, now)
            bucket.tokens = max(0.0, bucket.tokens - 1)

    def merge(self, source: Key, target: Key, now: float) -> None:
        """Fold ``source``'s spent tokens into ``target`` and forget ``source``."""
        with self._lock:
            if source not in self._buckets:
                return
            spent = self.burst - self._refilled(source, now).tokens
            del self._buckets[source]
            bucket = self._refilled(target, now)
            bucket.tokens = max(0.0, bucket.tokens - spent)


class OwnPatients:
    """Which patient each token subject is, so ``me`` and that id key one sync bucket."""

    def __init__(self, limiter: RateLimiter, monotonic: Callable[[], float]) -> None:
        self._limiter = limiter
        self._monotonic = monotonic
        self._by_subject: dict[str, str] = {}
        self._lock = threading.Lock()

    def remember(self, subject: str, patient_id: str) -> None:
        """Note that ``subject`` is the patient ``patient_id`` (seen on an authorised request).

        The first time, what ``me`` spent so far moves to the id's bucket: no request is free.
        """
        with self._lock:
            if self._by_subject.get(subject) == patient_id:
                return
            if len(self._by_subject) >= MAX_BUCKETS:
                self._by_subject.clear()
            self._by_subject[subject] = patient_id
        self._limiter.merge((subject, "me"), (subject, patient_id), self._monotonic())

    def patient_key(self, subject: str, pid: str) -> str:
        """The patient a path's ``pid`` names, as a bucket key: ``me`` becomes the id if known."""
        if pid != "me":
            return pid
        with self._lock:
            return self._by_subject.get(subject, "me")
