"""Readings as the rules see them, kept between batches: decoded once, not at every batch.

A stored reading's content never changes (a correction is a delete and a new reading), so a
fact read once serves every later batch of its patient; *which* readings count in a window
is still asked of the database each time. A CGM patient's batch reads a fortnight of
history on each side for the occurrence rules: without this, each 10-reading batch decoded
8,000 rows again. Bounded (least recently used first out) and kept per database.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable

from rules.facts import ReadingFact

# About a kilobyte each (~1.3 once an explanation has listed it: ReadingFact.listed_json): a CGM
# fortnight on both sides of a few patients' batches.
MAX_FACTS = 20_000


class FactCache:
    """Facts by (database, reading id), the least recently used dropped beyond ``size``."""

    def __init__(self, size: int = MAX_FACTS) -> None:
        self._size = size
        self._facts: OrderedDict[tuple[str, str], ReadingFact] = OrderedDict()
        self._lock = threading.Lock()  # the API's sync routes run in a thread pool

    def get_many(self, database: str, ids: Iterable[str]) -> dict[str, ReadingFact]:
        """Return the facts of these ids that are kept (a miss is simply absent)."""
        found: dict[str, ReadingFact] = {}
        with self._lock:
            for reading_id in ids:
                fact = self._facts.get((database, reading_id))
                if fact is not None:
                    self._facts.move_to_end((database, reading_id))
                    found[reading_id] = fact
        return found

    def put_many(self, database: str, facts: Iterable[ReadingFact]) -> None:
        """Keep these facts, dropping the least recently used beyond the bound."""
        with self._lock:
            for fact in facts:
                self._facts[(database, fact.id)] = fact
                self._facts.move_to_end((database, fact.id))
            while len(self._facts) > self._size:
                self._facts.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._facts)


FACTS = FactCache()

__all__ = ["FACTS", "MAX_FACTS", "FactCache"]
