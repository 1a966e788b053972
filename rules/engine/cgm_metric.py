"""cgm_metric: the CGM metrics of whole local days before a day start, with a wear
requirement.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction

from rules import cgm
from rules.catalogue import decimal_text
from rules.engine.comparison import number_param, param_json
from rules.engine.days import DST_MARGIN, local_day_start
from rules.engine.findings import Finding, anchor_key
from rules.engine.history import History
from rules.engine.runs import TimeRun
from rules.engine.texts import LANGUAGES, METRIC_NAMES, number_text, round_to
from rules.language import CgmMetricRule, Match
from rules.plan import PlanSpec


@dataclass
class CgmRun(TimeRun):
    """cgm_metric: at a local day start, the metrics of the whole local days before it."""

    def _window_days(self) -> int:
        rule = self.rule
        assert isinstance(rule, CgmMetricRule)
        return int(number_param(self.params, rule.window))

    def reach(self, plan: PlanSpec) -> timedelta:
        """Return the window's days before a day start, plus a margin for a longer DST day."""
        return timedelta(days=self._window_days()) + DST_MARGIN

    def evaluate_at(
        self, day: datetime, plan: PlanSpec, history: History
    ) -> tuple[list[tuple[str, str]], list[Finding]]:
        """Return the day start evaluated and the finding of its metrics (none: too little wear)."""
        rule = self.rule
        assert isinstance(rule, CgmMetricRule)
        key = (rule.id, anchor_key(None, day))
        start = local_day_start(day, history.tz, self._window_days())
        window_key = ("cgm", start.isoformat(), day.isoformat())  # a shared window: once
        if window_key not in history.cache:
            readings = history.between(rule.types, start, day, end_open=True)
            samples = cgm.samples_from_readings(readings)
            history.cache[window_key] = cgm.cgm_metrics(samples, start=start, end=day)
        metrics: cgm.CgmMetrics = history.cache[window_key]
        wear = metrics.exact("wear") or Fraction(0)
        min_wear = number_param(self.params, rule.min_wear)
        computed: dict[str, str] = {
            "window_start": start.isoformat(),
            "window_end": day.isoformat(),
            "n": str(metrics.n),
            "interval_minutes": str(metrics.interval_minutes),
            "wear_percent": decimal_text(round_to(wear, 1)),
        }
        thresholds: dict[str, Mapping[str, str]] = {
            rule.window: param_json(self.params[rule.window]),
            rule.min_wear: param_json(self.params[rule.min_wear]),
        }
        if metrics.n == 0 or wear < Fraction(min_wear):
            return [key], []
        for metric in ("tir", "tbr_3_9", "tbr_3_0", "tar_10_0", "tar_13_9", "gri"):
            value = metrics.exact(metric)
            if value is not None:
                computed[metric] = decimal_text(round_to(value, 1))
        if metrics.mean is not None:
            computed["mean_mmol_l"] = decimal_text(round_to(Decimal(repr(metrics.mean)), 1))
        if metrics.cv is not None:
            computed["cv"] = decimal_text(round_to(Decimal(repr(metrics.cv)), 1))
        if metrics.gmi_mmol_mol is not None:
            computed["gmi_mmol_mol"] = decimal_text(cgm.round_half_up(metrics.gmi_mmol_mol, 0))
        held: list[tuple[str, Fraction, Decimal, str]] = []
        results: list[bool] = []
        for condition in rule.conditions:
            value = metrics.exact(condition.metric)
            threshold = number_param(self.params, condition.param)
            thresholds[condition.param] = param_json(self.params[condition.param])
            holds = value is not None and condition.op.holds(value, Fraction(threshold))
            results.append(holds)
            if holds and value is not None:
                held.append((condition.metric, value, threshold, condition.op.symbol))
        fires = any(results) if rule.match is Match.any else all(results)
        if not fires:
            return [key], []
        metric, value, threshold, symbol = held[0]
        values = {lang: f"{number_text(round_to(value, 1), lang)} %" for lang in LANGUAGES}
        reasons = {
            lang: "; ".join(
                f"{METRIC_NAMES[m][lang]} {number_text(round_to(v, 1), lang)} % {s} "
                f"{number_text(t, lang)} %"
                for m, v, t, s in held
            )
            for lang in LANGUAGES
        }
        finding = self._time_finding(
            day,
            scope=None,
            used=(),
            computed=computed,
            thresholds=thresholds,
            severity=rule.flag.severity if rule.flag is not None else None,
            values=values,
            reasons=reasons,
        )
        return [key], [finding]


__all__ = ["CgmRun"]
