"""Clinical core, pure: the measurement vocabulary, the rule language and the evaluator.

Nothing here does I/O or reads the clock; ``now`` is always a parameter.
"""

from rules.catalogue import (
    CATALOGUE,
    MeasurementType,
    TypeSpec,
    UnknownType,
    UnknownUnit,
    convert,
    spec_for,
    to_canonical,
)
from rules.evaluate import AdviceText, Finding, evaluate, lookback
from rules.facts import ReadingFact
from rules.model import (
    LibraryError,
    PlanError,
    PlanErrorCode,
    Priority,
    ResolvedParam,
    Rule,
    RuleLibrary,
    RuleMode,
    Severity,
    load_library,
    resolve_params,
    validate_plan,
)
from rules.plan import PlanBody, PlanRule, PlanSpec, Quantity

__all__ = [
    "CATALOGUE",
    "AdviceText",
    "Finding",
    "LibraryError",
    "MeasurementType",
    "PlanBody",
    "PlanError",
    "PlanErrorCode",
    "PlanRule",
    "PlanSpec",
    "Priority",
    "Quantity",
    "ReadingFact",
    "ResolvedParam",
    "Rule",
    "RuleLibrary",
    "RuleMode",
    "Severity",
    "TypeSpec",
    "UnknownType",
    "UnknownUnit",
    "convert",
    "evaluate",
    "load_library",
    "lookback",
    "resolve_params",
    "spec_for",
    "to_canonical",
    "validate_plan",
]
