"""Stored plan versions as the rule engine's specs, kept between requests.

A plan version is immutable once stored (a change is a new version), yet every sync read the
current one and validated its body again, and asked when the first version was made: a
twentieth of a 10-reading sync. Specs are kept by (database, version id), bounded, the least
recently used dropped first. A kept spec is shared between requests: it is read, never changed
in place (a spec with another ``effective_from`` is a copy).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

from rules.plan import PlanSpec

MAX_SPECS = 1_000  # a few kilobytes each


class SpecCache:
    """Specs by a key, the least recently used dropped beyond ``size``."""

    def __init__(self, size: int = MAX_SPECS) -> None:
        self._size = size
        self._specs: OrderedDict[tuple[str, ...], PlanSpec] = OrderedDict()
        self._lock = threading.Lock()  # the API's routes run in a thread pool

    def get_or_make(self, key: tuple[str, ...], make: Callable[[], PlanSpec]) -> PlanSpec:
        """Return the kept spec of a key, or make, keep and return it."""
        with self._lock:
            spec = self._specs.get(key)
            if spec is not None:
                self._specs.move_to_end(key)
                return spec
        spec = make()  # outside the lock: it may read the database
        with self._lock:
            self._specs[key] = spec
            while len(self._specs) > self._size:
                self._specs.popitem(last=False)
        return spec

    def __len__(self) -> int:
        with self._lock:
            return len(self._specs)


SPECS = SpecCache()

__all__ = ["MAX_SPECS", "SPECS", "SpecCache"]
