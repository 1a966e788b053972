"""Backtest a plan over a history: firings, advice and flag episodes per rule per week.

The same semantics as :mod:`rules.engine` (its module docstring), computed over the
whole history at once: every reading is an anchor. Reading-anchored kinds are vectorised
with numpy/pandas — windows are index ranges found by ``searchsorted`` on the sorted
times, sums are cumulative sums and min/max are ``reduceat`` over those ranges, all on
exact Decimal values (object arrays), so the result equals the incremental path exactly
(tests/rules/test_backtest.py checks it). Three parts reuse the incremental code on the few
readings that need it: the occurrence count and escalation of a threshold rule's flag
(only at firing readings), baseline medians (a median is no running sum; baseline rules
read daily measurements, so one evaluation per reading of their types is cheap), and the
time-based rules (one evaluation per local day).

What the app would have done with the firings:

* Advice: an active, not superseded firing with advice gives advice unless the rule gave
  advice less than ``cooldown_minutes`` before (times are the anchors' times: the
  backtest assumes each reading arrived when it was measured, so no advice is stale). A
  rule with an advice episode (CGM lows) gives advice once per episode and level instead,
  without a cooldown, as the app does. Advice is pushed unless the plan mutes it (a
  sensor that alarms on its own); urgent pushes between 22:00 and 07:00 local time are
  counted apart: they wake people (routine ones wait out the default quiet hours).
* Flags are episodes. An active firing with a flag severity opens a flag unless the
  rule's previous flagged firing was at most ``episode_days`` earlier, in which case it
  attaches to that open flag. The app keeps a flag open until a clinician resolves it; the
  backtest assumes they resolve it once ``episode_days`` (default 7) pass without a new
  flagged firing.
* Per week: counts divided by the weeks from ``start`` to ``end`` (at least one day): the
  alert burden of one patient.

Modules, each one job: :mod:`~rules.backtest.run` (the backtest),
:mod:`~rules.backtest.vectorised` (the reading-anchored kinds over every anchor at once),
:mod:`~rules.backtest.arrays` (the readings as arrays, exact vector operations) and
:mod:`~rules.backtest.burden` (firings, advice and flag episodes counted per rule).
"""

from rules.backtest.burden import EPISODE_DAYS, BacktestFiring, BacktestReport, RuleBurden
from rules.backtest.run import backtest

__all__ = ["EPISODE_DAYS", "BacktestFiring", "BacktestReport", "RuleBurden", "backtest"]
