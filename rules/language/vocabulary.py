"""The words of the rule language: modes, priorities, severities, comparisons, and the
fixed names (template fields, window units, the push freshness parameter).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from typing import Any, Final, Literal

TEMPLATE_FIELDS = frozenset({"value", "change", "contact"})
"""The placeholders an advice text may use.

``$value`` is the anchor reading as measured, rounded to its precision; for a window
aggregate it is the aggregate (``138/86 mmHg``), for a delta the anchor in the unit of the
change, for missing data the measurement's name, for a CGM rule the metric that fired
(``62 %``). ``$change`` (delta rules only) is the change (``2,1 kg``). ``$contact`` is whom
to call (:func:`rules.advice.contact_text`): the patient's care contact with a phone number,
else a generic "din vårdcentral eller ditt vårdteam".
"""

PROXY_TEMPLATE_FIELDS = TEMPLATE_FIELDS | {"patient", "patient_gen"}
"""The placeholders of a proxy text: also the patient's first name and its genitive."""

WINDOW_UNITS = {"min": 60, "h": 3600, "d": 86400}
"""Units a window parameter may have, in seconds. ``d`` windows are local calendar days."""

PERCENT = "%"
"""The unit of percentages of a reference and of CGM metrics."""

UNITLESS = "1"
"""The unit a plan may give to a parameter that has none."""


class RuleMode(StrEnum):
    """Whether a rule acts (advice and flags), only records, or is switched off."""

    active = "active"
    monitor = "monitor"
    off = "off"


class Priority(StrEnum):
    """How urgent an advice to the patient is."""

    routine = "routine"
    urgent = "urgent"


class Severity(StrEnum):
    """How severe a flag to the care team is."""

    high = "high"
    moderate = "moderate"
    low = "low"


SEVERITY_RANK: Final[Mapping[Severity, int]] = {
    Severity.high: 3,
    Severity.moderate: 2,
    Severity.low: 1,
}
"""The order of severities: a flag's episode keeps the highest; worklists sort by it."""


class Op(StrEnum):
    """A comparison of a reading's value (left) with a threshold (right)."""

    lt = "lt"
    le = "le"
    gt = "gt"
    ge = "ge"

    def holds(self, value: Decimal | Fraction, threshold: Decimal | Fraction) -> bool:
        """Tell whether ``value <op> threshold`` holds."""
        # A lookup, not a match on self: asked for every condition of every anchor.
        return bool(_COMPARE[self](value, threshold))

    @property
    def function(self) -> Callable[[Any, Any], Any]:
        """Return the comparison as a plain function of (value, threshold)."""
        return _COMPARE[self]

    def each(self, values: Any, thresholds: Any) -> Any:
        """Compare element by element (numpy arrays): an array of ``value <op> threshold``."""
        return _COMPARE[self](values, thresholds)

    @property
    def symbol(self) -> str:
        """Return the mathematical symbol of the comparison."""
        return {"lt": "<", "le": "≤", "gt": ">", "ge": "≥"}[self.value]


_COMPARE: Final[Mapping[str, Callable[[Any, Any], Any]]] = {
    Op.lt: operator.lt,
    Op.le: operator.le,
    Op.gt: operator.gt,
    Op.ge: operator.ge,
}


class Match(StrEnum):
    """Whether any or all of a rule's conditions must hold."""

    any = "any"
    all = "all"


PUSH_WITHIN = "push_within"
"""The parameter that says how old a reading may be for its advice to be pushed.

Every reading-anchored rule with advice has it, in ``min`` or ``h`` (CLINICAL §7): older
readings still evaluate and flag, and their advice is recorded as stale, never pushed.
"""


class MetricName(StrEnum):
    """A CGM metric a ``cgm_metric`` rule can compare (percentages, 0–100; see rules.cgm)."""

    tir = "tir"
    tbr_3_9 = "tbr_3_9"
    tbr_3_0 = "tbr_3_0"
    tar_10_0 = "tar_10_0"
    tar_13_9 = "tar_13_9"
    cv = "cv"
    gri = "gri"


Aggregate = Literal["mean", "min", "max", "count"]
"""How a window of readings is summarised."""


class Reference(StrEnum):
    """What a delta subtracts from the anchor: the min or the max of the preceding window."""

    min = "min"
    max = "max"


class Direction(StrEnum):
    """Which way a baseline change counts: rise (value − baseline) or fall (baseline − value)."""

    rise = "rise"
    fall = "fall"


__all__ = [
    "Aggregate",
    "Direction",
    "Match",
    "MetricName",
    "Op",
    "PERCENT",
    "PROXY_TEMPLATE_FIELDS",
    "PUSH_WITHIN",
    "Priority",
    "Reference",
    "RuleMode",
    "Severity",
    "TEMPLATE_FIELDS",
    "UNITLESS",
    "WINDOW_UNITS",
]
