"""What the app would have done with the firings: the firings, each rule's burden and the report."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo

import numpy as np

from rules.backtest.arrays import EPOCH, MICRO
from rules.language import RuleMode

EPISODE_DAYS = 7
"""Days without a flagged firing after which the backtest takes a flag as resolved."""


@dataclass(frozen=True)
class BacktestFiring:
    """One firing: the rule, its anchor (reading id or time key), the flag and advice."""

    rule_id: str
    anchor: str
    time: datetime
    mode: str
    severity: str | None  # after supersession
    advice: bool  # the firing carries advice (before cooldown; after its episode)
    episode: bool = False  # advice per episode: no cooldown
    muted: bool = False  # advice recorded, not pushed


@dataclass(frozen=True)
class RuleBurden:
    """What one rule would have done over the period, and per patient-week."""

    rule_id: str
    mode: str
    firings: int
    advice: int
    flags: int
    weeks: float
    pushes: int = 0
    night_pushes: int = 0  # pushed between 22:00 and 07:00 local time

    @property
    def firings_per_week(self) -> float:
        """Return firings per patient-week."""
        return self.firings / self.weeks

    @property
    def advice_per_week(self) -> float:
        """Return advice per patient-week."""
        return self.advice / self.weeks

    @property
    def pushes_per_week(self) -> float:
        """Return pushes per patient-week."""
        return self.pushes / self.weeks

    @property
    def night_pushes_per_week(self) -> float:
        """Return pushes between 22:00 and 07:00 per patient-week."""
        return self.night_pushes / self.weeks

    @property
    def flags_per_week(self) -> float:
        """Return flags (episodes) per patient-week."""
        return self.flags / self.weeks


@dataclass(frozen=True)
class BacktestReport:
    """The alert burden of a plan over a period of one patient's history."""

    start: datetime
    end: datetime
    weeks: float
    readings: int
    episode_days: int
    rules: tuple[RuleBurden, ...]
    firings: tuple[BacktestFiring, ...] = field(repr=False)

    def rule(self, rule_id: str) -> RuleBurden | None:
        """Return the burden of one rule, or None when the plan does not evaluate it."""
        return next((r for r in self.rules if r.rule_id == rule_id), None)


NIGHT = (22, 7)
"""Local hours from which and until which a push wakes people."""


def rule_burden(
    rule_id: str,
    mode: str,
    cooldown_minutes: int,
    firings: Sequence[BacktestFiring],
    weeks: float,
    episode_days: int,
    zone: tzinfo,
    urgent: bool = True,
) -> RuleBurden:
    """Return what one rule's firings would have become: advice, pushes and flags."""
    active = mode == RuleMode.active
    advice = pushes = night = 0
    last: datetime | None = None
    cooldown = timedelta(minutes=cooldown_minutes)
    for firing in firings:
        if not active or not firing.advice:
            continue
        if (
            firing.episode
            or last is None
            or cooldown_minutes == 0
            or firing.time - last >= cooldown
        ):
            advice += 1
            last = firing.time
            if not firing.muted:
                pushes += 1
                hour = firing.time.astimezone(zone).hour
                # Routine pushes wait out the night (default quiet hours): only urgent wake.
                night += urgent and (hour >= NIGHT[0] or hour < NIGHT[1])
    flagged = np.array(
        [(f.time - EPOCH) // MICRO for f in firings if active and f.severity is not None],
        dtype=np.int64,
    )
    gap = timedelta(days=episode_days) // MICRO
    flags = 0 if len(flagged) == 0 else 1 + int((np.diff(flagged) > gap).sum())
    return RuleBurden(rule_id, mode, len(firings), advice, flags, weeks, pushes, night)


__all__ = [
    "BacktestFiring",
    "BacktestReport",
    "EPISODE_DAYS",
    "NIGHT",
    "RuleBurden",
    "rule_burden",
]
