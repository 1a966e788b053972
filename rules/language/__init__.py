"""The rule language: one YAML file per rule in ``rules/library/``, validated by pydantic.

A rule is data, never code: conditions name a component (or a CGM metric), a comparison
and a parameter; texts may hold ``string.Template`` placeholders (:data:`TEMPLATE_FIELDS`,
filled by :func:`rules.advice.fill`). Advice is written to the patient and, in
``proxy_title``/``proxy_body``, to a proxy about the patient (:mod:`rules.advice`). Rules form a
discriminated union on ``kind``:

* ``threshold``: one reading against parameters;
* ``window_aggregate``: mean / min / max / count of a component over a window ending at the
  reading, with protocol options (discard the first measuring days, a minimum number of
  readings);
* ``delta``: the reading minus the min (or max) of a preceding window;
* ``count``: how many readings are events (conditions hold) within a window;
* ``bands``: the reading (or its percentage of a reference parameter) against ordered
  bands, each with its own severity and advice; the most severe band that holds wins;
* ``missing_data``: a scheduled type without readings for a number of schedule intervals;
* ``cgm_metric``: CGM metrics (:mod:`rules.cgm`) over whole local days, with a wear
  requirement;
* ``baseline``: the reading against the patient's own baseline, the median of the readings
  of a past window that ends a gap before the anchor (a rise or a fall of at least so much);
* ``composite``: all or any of inline parts (threshold, window aggregate, delta, count,
  baseline), each holding within a time before the anchor.

Windows, counts and protocol options are parameters, so a plan can change them. The
meaning of windows, edges and ties is written at the top of :mod:`rules.engine`.

A plan (:mod:`rules.plan`) switches rules on and overrides their parameters;
:func:`validate_plan` checks a plan body against the library and :func:`resolve_params`
gives the parameter values an evaluation uses.

Modules, each one job: :mod:`~rules.language.vocabulary` (modes, severities, comparisons,
fixed names), :mod:`~rules.language.specs` (parameters, conditions, advice, flags and their
checks), :mod:`~rules.language.fields` (the logic of each reading-anchored kind),
:mod:`~rules.language.kinds` (one model per rule kind, composite parts),
:mod:`~rules.language.library` (parsing and loading the library) and
:mod:`~rules.language.plans` (plan validation, parameter resolution).
"""

from rules.language.fields import (
    Band,
    BandsFields,
    BaselineFields,
    CountFields,
    DeltaFields,
    ThresholdFields,
    WindowAggregateFields,
)
from rules.language.kinds import (
    READING_KINDS,
    TIME_KINDS,
    BandsRule,
    BaselinePart,
    BaselineRule,
    CgmMetricRule,
    CompositeRule,
    CountPart,
    CountRule,
    DeltaPart,
    DeltaRule,
    FirstWhen,
    MissingDataRule,
    Part,
    Rule,
    RuleBase,
    ThresholdPart,
    ThresholdRule,
    WindowAggregatePart,
    WindowAggregateRule,
)
from rules.language.library import LIBRARY_DIR, LibraryError, RuleLibrary, load_library, parse_rule
from rules.language.plans import (
    PlanError,
    PlanErrorCode,
    PlanParamError,
    ResolvedParam,
    resolve_params,
    validate_plan,
)
from rules.language.specs import (
    AdviceEpisode,
    AdviceSpec,
    Condition,
    Escalation,
    FlagSpec,
    LocalText,
    MetricCondition,
    ParamSpec,
)
from rules.language.vocabulary import (
    PERCENT,
    PROXY_TEMPLATE_FIELDS,
    PUSH_WITHIN,
    SEVERITY_RANK,
    TEMPLATE_FIELDS,
    WINDOW_UNITS,
    Aggregate,
    Direction,
    Match,
    MetricName,
    Op,
    Priority,
    Reference,
    RuleMode,
    Severity,
)

__all__ = [
    "LIBRARY_DIR",
    "PERCENT",
    "PROXY_TEMPLATE_FIELDS",
    "READING_KINDS",
    "TIME_KINDS",
    "WINDOW_UNITS",
    "PUSH_WITHIN",
    "AdviceEpisode",
    "AdviceSpec",
    "Aggregate",
    "Band",
    "BandsRule",
    "BaselinePart",
    "BaselineRule",
    "CgmMetricRule",
    "CompositeRule",
    "Condition",
    "CountPart",
    "CountRule",
    "DeltaPart",
    "DeltaRule",
    "Direction",
    "Escalation",
    "FirstWhen",
    "FlagSpec",
    "LibraryError",
    "LocalText",
    "Match",
    "MetricCondition",
    "MetricName",
    "MissingDataRule",
    "Op",
    "ParamSpec",
    "Part",
    "PlanError",
    "PlanErrorCode",
    "PlanParamError",
    "Priority",
    "Reference",
    "ResolvedParam",
    "Rule",
    "RuleBase",
    "RuleLibrary",
    "RuleMode",
    "SEVERITY_RANK",
    "Severity",
    "TEMPLATE_FIELDS",
    "ThresholdPart",
    "ThresholdRule",
    "WindowAggregatePart",
    "WindowAggregateRule",
    "load_library",
    "parse_rule",
    "resolve_params",
    "validate_plan",
    "BandsFields",
    "BaselineFields",
    "CountFields",
    "DeltaFields",
    "ThresholdFields",
    "WindowAggregateFields",
]
