"""missing_data: at a local day start, the scheduled types without recent readings; one
reminder per day naming every missing type.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from types import MappingProxyType

from rules.catalogue import DISPLAY_NAMES, display_name
from rules.engine.comparison import number_param
from rules.engine.days import DST_MARGIN, local_day_start
from rules.engine.findings import Finding, anchor_key
from rules.engine.history import History
from rules.engine.runs import TimeRun
from rules.engine.texts import LANGUAGES, spoken_list
from rules.language import MissingDataRule, Rule, RuleMode
from rules.plan import PlanSpec

SCHEDULE_INTERVAL_DAYS: Mapping[str, int] = MappingProxyType(
    {"daily": 1, "weekdays": 3, "weekly": 7}
)
"""The longest gap between two scheduled days (Friday to Monday for weekdays)."""


def _schedule_days(plan: PlanSpec) -> dict[str, int]:
    """Return each scheduled type's interval in days (the shortest of its entries)."""
    days: dict[str, int] = {}
    for entry in plan.schedule:
        interval = SCHEDULE_INTERVAL_DAYS[entry.days]
        days[entry.type] = min(days.get(entry.type, interval), interval)
    return days


def reminder_order(plan: PlanSpec, rule: Rule, types: Iterable[str]) -> list[str]:
    """Return missing types in the order a reminder names them.

    First the types of each ``first_when`` entry of the rule whose rules the plan lists
    (and does not switch off), entries in their order: weight first in a heart-failure
    plan. Then the rest in the order of the plan's schedule.
    """
    wanted = list(dict.fromkeys(types))
    listed = {r.rule for r in plan.rules if r.mode is None or RuleMode(r.mode) is not RuleMode.off}
    ordered: list[str] = []
    if isinstance(rule, MissingDataRule):
        for entry in rule.first_when:
            if listed.intersection(entry.rules):
                ordered += [t for t in entry.types if t in wanted and t not in ordered]
    scheduled = list(dict.fromkeys(str(entry.type) for entry in plan.schedule))
    rest = [t for t in wanted if t not in ordered]
    rest.sort(key=lambda t: (scheduled.index(t) if t in scheduled else len(scheduled), t))
    return ordered + rest


@dataclass
class MissingRun(TimeRun):
    """missing_data: at a local day start, the scheduled types without recent readings."""

    def _days(self, interval: int) -> tuple[int, int]:
        """Return (days before the advice, days before the flag) for a schedule interval."""
        rule = self.rule
        assert isinstance(rule, MissingDataRule)
        advice_days = int(number_param(self.params, rule.intervals)) * interval
        flag_days = advice_days
        if rule.flag_after_days is not None:
            flag_days += int(number_param(self.params, rule.flag_after_days))
        return advice_days, flag_days

    def reach(self, plan: PlanSpec) -> timedelta:
        """Return how far back a day start is checked: the longest silence looked for, plus DST."""
        longest = 0
        for type_name, interval in _schedule_days(plan).items():
            if type_name in self.rule.types:
                longest = max(longest, max(self._days(interval)))
        return timedelta(days=longest) + DST_MARGIN

    def evaluate_at(
        self, day: datetime, plan: PlanSpec, history: History
    ) -> tuple[list[tuple[str, str]], list[Finding]]:
        """Return the anchors evaluated at a local day start and what missing readings found."""
        keys: list[tuple[str, str]] = []
        findings: list[Finding] = []
        for type_name, interval in sorted(_schedule_days(plan).items()):
            if type_name not in self.rule.types:
                continue
            advice_days, flag_days = self._days(interval)
            since = local_day_start(day, history.tz, advice_days)
            if plan.effective_from is not None and since < plan.effective_from:
                continue  # the plan was not in force for the whole gap
            keys.append((self.rule.id, anchor_key(None, day, type_name)))
            if history.between([type_name], since, day, end_open=True):
                continue
            flag_since = local_day_start(day, history.tz, flag_days)
            flagged = (
                self.rule.flag is not None
                and (plan.effective_from is None or flag_since >= plan.effective_from)
                and not history.between([type_name], flag_since, day, end_open=True)
            )
            names = DISPLAY_NAMES.get(type_name, {"sv": type_name, "en": type_name})
            thresholds: dict[str, Mapping[str, str]] = {
                "days_without": {"value": str(advice_days), "unit": "d"},
                "interval": {"value": str(interval), "unit": "d"},
            }
            if flag_days != advice_days:
                thresholds["days_before_flag"] = {"value": str(flag_days), "unit": "d"}
            findings.append(
                self._time_finding(
                    day,
                    scope=type_name,
                    used=(),
                    computed={
                        "type": type_name,
                        "window_start": since.isoformat(),
                        "window_end": day.isoformat(),
                        "readings_in_window": "0",
                    },
                    thresholds=thresholds,
                    severity=self.rule.flag.severity if flagged and self.rule.flag else None,
                    values=names,
                    reasons={
                        "sv": f"ingen mätning på {advice_days} dygn",
                        "en": f"no reading for {advice_days} days",
                    },
                )
            )
        if findings and self.rule.advice is not None:
            findings = self._one_reminder(findings, plan)
        return keys, findings

    def _one_reminder(self, findings: list[Finding], plan: PlanSpec) -> list[Finding]:
        """One reminder naming every missing type, carried by the first type's finding."""
        order = reminder_order(plan, self.rule, [f.scope or "" for f in findings])
        first = min(findings, key=lambda f: order.index(f.scope or ""))
        names = {
            lang: spoken_list([display_name(t, lang) for t in order], lang) for lang in LANGUAGES
        }
        advice = self._advice(self.rule.advice, names)
        return [replace(f, advice=advice if f is first else None) for f in findings]


__all__ = ["MissingRun", "SCHEDULE_INTERVAL_DAYS", "reminder_order"]
