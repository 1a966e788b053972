"""Clinical core, pure: the measurement vocabulary, the rule language and the evaluator.

Nothing here does I/O (beyond reading the rule library) or reads the clock; ``now`` is
always a parameter. Modules: :mod:`rules.catalogue` (types, units), :mod:`rules.language`
(the rule language, plan validation), :mod:`rules.engine` (the evaluator: reading
anchored and time-based), :mod:`rules.cgm` (CGM metrics), :mod:`rules.lint` (rule
checks), :mod:`rules.backtest` (the alert burden of a plan over a history),
:mod:`rules.progress` (goal progress). The language, the engine, the backtest and progress
are packages, one job per module.
"""

from rules.backtest import BacktestReport, RuleBurden, backtest
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
from rules.cgm import CgmMetrics, GlucoseSample, agp_profile, cgm_metrics
from rules.engine import (
    AdviceText,
    EvaluationRun,
    Finding,
    due_lookback,
    evaluate,
    evaluate_due,
    evaluate_due_run,
    evaluate_run,
    history_types,
    lookback,
)
from rules.facts import ReadingFact
from rules.language import (
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
from rules.lint import LintIssue, lint
from rules.plan import PlanBody, PlanRule, PlanSpec, Quantity

__all__ = [
    "CATALOGUE",
    "AdviceText",
    "BacktestReport",
    "CgmMetrics",
    "EvaluationRun",
    "Finding",
    "GlucoseSample",
    "LintIssue",
    "RuleBurden",
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
    "agp_profile",
    "backtest",
    "cgm_metrics",
    "convert",
    "due_lookback",
    "evaluate",
    "evaluate_due",
    "evaluate_due_run",
    "evaluate_run",
    "history_types",
    "lint",
    "load_library",
    "lookback",
    "resolve_params",
    "spec_for",
    "to_canonical",
    "validate_plan",
]
