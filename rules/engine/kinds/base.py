"""What every reading-anchored check is: its outcome at an anchor, its reach and the readings
it selects.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from rules.engine.comparison import Comparison, context_matches
from rules.engine.history import History
from rules.engine.texts import LANGUAGES
from rules.facts import ReadingFact
from rules.language import Band, ResolvedParam


@dataclass
class Outcome:
    """What a check found at an anchor: whether it held, and how to explain it."""

    held: bool
    computed: dict[str, str] = field(default_factory=dict)
    thresholds: dict[str, Mapping[str, str]] = field(default_factory=dict)
    used: Iterable[ReadingFact] = field(default_factory=list)
    reasons: dict[str, list[str]] = field(default_factory=lambda: {lang: [] for lang in LANGUAGES})
    value: dict[str, str] | None = None  # $value per language; None: the anchor as measured
    change: dict[str, str] | None = None  # $change per language (delta rules)
    band: Band | None = None
    comparisons: list[Comparison | None] = field(default_factory=list)


class Check(ABC):
    """The logic of one kind with resolved parameters: does it hold at an anchor?"""

    def __init__(
        self,
        key: str,
        types: Sequence[str],
        context: Mapping[str, str],
        params: Mapping[str, ResolvedParam],
    ) -> None:
        self.key = key  # for caches: the rule id (and part)
        self.types = frozenset(types)
        self.context = context
        self.params = params

    def selects(self, reading: ReadingFact) -> bool:
        """Tell whether a reading is one this check anchors at (its types and context)."""
        if not self.context:  # most rules ask for none; asked of every anchor, for every rule
            return reading.type in self.types
        return reading.type in self.types and context_matches(reading, self.context)

    def anchor_types(self) -> tuple[frozenset[str], bool]:
        """Return the types this check may anchor at, and whether :meth:`selects` must still
        be asked of each reading of them (a context to match)."""
        return self.types, bool(self.context)

    def reach(self) -> tuple[timedelta, timedelta]:
        """Return how far before and after an anchor the check reads (none: the anchor alone)."""
        return timedelta(0), timedelta(0)

    def prepare(self, anchors: Sequence[ReadingFact], history: History) -> None:
        """Get ready to be asked of these anchors in this evaluation (most kinds: nothing)."""
        del anchors, history  # each anchor is asked on its own

    def holds(self, anchor: ReadingFact, history: History) -> bool:
        """Tell whether the check holds at an anchor (False when the anchor is not ours)."""
        # Kinds whose holding is cheaper than its explanation override this: most readings
        # of a stream do not fire, and only a firing is ever explained.
        outcome = self.outcome(anchor, history)
        return outcome is not None and outcome.held

    def outcome(self, anchor: ReadingFact, history: History) -> Outcome | None:
        """Return the outcome at an anchor, or None when the anchor is not one of ours."""
        if not self.selects(anchor):
            return None
        key = (self.key, "outcome", anchor.id)
        if key not in history.cache:
            history.cache[key] = self._outcome(anchor, history)
        result: Outcome = history.cache[key]
        return result

    @abstractmethod
    def _outcome(self, anchor: ReadingFact, history: History) -> Outcome:
        """What this kind of rule finds at one anchor (each kind defines it)."""


__all__ = ["Check", "Outcome"]
