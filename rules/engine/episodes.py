"""Advice episodes (a threshold rule's ``advice_episode``, CGM lows): the walk back from an
anchor over the readings of the episode's types, from indexes built once.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from rules.engine.history import INFINITY
from rules.facts import ReadingFact
from rules.ranges import RangeBest

EPISODE_LOOKBACK = timedelta(hours=12)
"""How far back an advice episode is followed: a low that lasts longer is advised again."""


@dataclass(frozen=True)
class Episode:
    """An advice episode at an anchor: its record, its sentence, whether it repeats or is muted."""

    json: dict[str, str]
    text: dict[str, str]
    first_at_level: bool
    muted: bool


def canonical_value(reading: ReadingFact) -> Decimal:
    """Return a reading's ``value`` component in the canonical unit (0 when it has none)."""
    return reading.values.get("value", Decimal(0))


class EpisodeStream:
    """The readings of an advice episode's types, with what a walk back from each one meets.

    A walk back from the reading at ``p`` (:meth:`ThresholdRun._episode`) stops at the
    first earlier reading ``j`` where the stream was silent for longer than ``max_gap``
    after ``j``, or where ``j`` ends a run of readings outside the condition that spans
    ``end_after`` from the run's latest reading before ``p``. Neither depends on where the
    walk started, except for the run just before ``p``, cut at ``p``. So one pass finds the
    latest stop at or before each index, and a walk is a few lookups.
    """

    def __init__(
        self,
        readings: list[ReadingFact],
        holds: list[bool],
        fires: list[bool],
        *,
        end_after: timedelta,
        max_gap: timedelta,
    ) -> None:
        n = len(readings)
        times = [r.time for r in readings]
        self.readings, self.times, self.holds, self.fires = readings, times, holds, fires
        self.end_after, self.max_gap = end_after, max_gap
        self.position = {r.id: i for i, r in enumerate(readings)}
        # For a reading outside the condition, the first and the last index of its run.
        self.run_start = list(range(n))
        for i in range(1, n):
            if not holds[i] and not holds[i - 1]:
                self.run_start[i] = self.run_start[i - 1]
        run_end = list(range(n))
        for i in range(n - 2, -1, -1):
            if not holds[i] and not holds[i + 1]:
                run_end[i] = run_end[i + 1]
        # The latest stop at or before each index: any stop, and a silence only.
        self.last_stop = [-1] * n
        self.last_silence = [-1] * n
        for i in range(n):
            silent = i + 1 < n and times[i + 1] - times[i] > max_gap
            recovered = not holds[i] and times[run_end[i]] - times[i] >= end_after
            before = i - 1 if i else -1
            self.last_silence[i] = i if silent else (self.last_silence[before] if i else -1)
            self.last_stop[i] = i if silent or recovered else (self.last_stop[before] if i else -1)
        # The first reading in the condition at or after each index (n: none).
        self.next_member = [n] * (n + 1)
        for i in range(n - 1, -1, -1):
            self.next_member[i] = i if holds[i] else self.next_member[i + 1]
        self.fires_before = [0]  # readings in the condition that fire the rule, before i
        for i in range(n):
            self.fires_before.append(self.fires_before[-1] + (holds[i] and fires[i]))
        # The lowest member: by value, then time, then the later reading (the walk meets it
        # first); readings outside the condition are never members.
        never = (INFINITY,)
        keys: list[tuple[Any, ...]] = [
            (canonical_value(r), r.time, -i) if holds[i] else never for i, r in enumerate(readings)
        ]
        self._nadir = RangeBest(keys)

    def walk_stop(self, position: int, lowest: int) -> int:
        """Return the index where a walk back from ``position`` stops (not a member).

        ``lowest`` is the earliest index the walk may reach (:data:`EPISODE_LOOKBACK`).
        """
        previous = position - 1
        # The run outside the condition just before the anchor is cut at the anchor.
        cut = self.run_start[previous] if previous >= 0 and not self.holds[previous] else position
        stop = self.last_stop[cut - 1] if cut > 0 else -1
        if cut < position:
            if self.last_silence[previous] >= cut:
                stop = max(stop, self.last_silence[previous])
            recovered = (
                bisect.bisect_right(self.times, self.times[previous] - self.end_after, 0, position)
                - 1
            )
            if recovered >= cut:
                stop = max(stop, recovered)
        return max(stop, lowest - 1)

    def first_member(self, start: int, position: int) -> int:
        """Return the earliest member in ``[start, position]``: the episode's first reading."""
        return min(self.next_member[start], position)

    def member_fires(self, start: int, position: int) -> bool:
        """Tell whether an earlier member (in ``[start, position)``) fired the rule."""
        return self.fires_before[position] > self.fires_before[start]

    def nadir(self, start: int, position: int) -> ReadingFact:
        """Return the lowest member of the episode ``[start, position]`` (the anchor first)."""
        anchor = self.readings[position]
        if start >= position:
            return anchor
        best = self._nadir.best(start, position)
        if self._nadir.keys[best] < (canonical_value(anchor), anchor.time, -position):
            return self.readings[best]
        return anchor


__all__ = ["EPISODE_LOOKBACK", "Episode", "EpisodeStream", "canonical_value"]
