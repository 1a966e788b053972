"""The check of a reading-anchored rule, by its kind."""

from __future__ import annotations

from collections.abc import Mapping

from rules.engine.kinds.aggregate import AggregateCheck
from rules.engine.kinds.bands import BandsCheck
from rules.engine.kinds.base import Check
from rules.engine.kinds.baseline import BaselineCheck
from rules.engine.kinds.composite import CompositeCheck
from rules.engine.kinds.count import CountCheck
from rules.engine.kinds.delta import DeltaCheck
from rules.engine.kinds.threshold import ThresholdCheck
from rules.language import (
    BandsRule,
    BaselineRule,
    CompositeRule,
    CountRule,
    DeltaRule,
    ResolvedParam,
    Rule,
    ThresholdRule,
    WindowAggregateRule,
)


def check_for(rule: Rule, params: Mapping[str, ResolvedParam]) -> Check:
    """Return the check of a reading-anchored rule with its parameters resolved."""
    match rule:
        case ThresholdRule():
            return ThresholdCheck(rule.id, rule.types, rule, params)
        case WindowAggregateRule():
            return AggregateCheck(rule.id, rule.types, rule, params)
        case DeltaRule():
            return DeltaCheck(rule.id, rule.types, rule, params)
        case CountRule():
            return CountCheck(rule.id, rule.types, rule, params)
        case BandsRule():
            return BandsCheck(rule.id, rule.types, rule, params)
        case BaselineRule():
            return BaselineCheck(rule.id, rule.types, rule, params)
        case CompositeRule():
            return CompositeCheck(rule.id, rule, params)
    raise TypeError(f"{rule.id} is not anchored at readings")


__all__ = ["check_for"]
