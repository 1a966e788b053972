"""The evaluator: findings from a plan, the new readings and their history.

Semantics of anchors, units, edges, windows, ties and late data:

* Rules. Only the rules a plan lists are evaluated; the plan's ``mode`` overrides the
  rule's own, and ``off`` skips the rule. A plan rule missing from the library is skipped;
  a plan parameter the rule does not know is ignored (:func:`rules.language.resolve_params`).
  A parameter the rule marks ``required`` has no silent default: a stored plan that lacks
  it (saved before the rule required it) does not run that rule, every other rule runs,
  and :func:`unrunnable_rules` names the rule and what it lacks so the team can be told.
* Anchors. A reading-anchored rule (threshold, window_aggregate, delta, count, bands,
  baseline, composite) is evaluated AT a reading of its ``types`` (and ``context``, e.g. the
  instrument of a symptom score): the anchor. An evaluation is a pure function of the
  anchor and the readings in its window, never of the order or the call in which they
  arrived, nor of ``now``. A finding is one firing; its key is (rule id, anchor reading
  id). Time-based rules (missing_data, cgm_metric) are anchored at the start of a local
  day instead (:func:`evaluate_due`); their key is (rule id, the anchor time in ISO 8601,
  and for missing data ``/`` and the type).
* Units. A threshold is compared in the unit it is given in. When the reading's original
  unit is a unit for which the parameter has a value — its own unit or, while the value is
  the published one, a published equivalent — the ORIGINAL value is compared with that
  number. Otherwise the original value is converted to the parameter's unit (through the
  canonical unit, 6 decimal places) and compared. Synonyms count as the same unit
  (``mmHg``/``mm[Hg]``, ``mg/dl``/``mg/dL``). So 70 mg/dL is not < 70 mg/dL and
  3.9 mmol/L is not < 3.9 mmol/L, though 70 mg/dL converts to 3.8855 mmol/L. A plan
  override replaces the published pair: only its own number and unit remain. An
  aggregate or a delta over several readings uses their original values when all of them
  are in one unit the parameter is published in, else every value converted to the
  parameter's unit. Means are compared exactly (sum against threshold × count); CGM
  percentages are compared exactly as fractions of counts.
* Edges. ``lt``/``gt`` are strict, ``le``/``ge`` include the threshold. A reading that
  lacks a component a condition names does not satisfy that condition. Weight gain
  "> 2.0 kg" is ``gt``: exactly 2.0 does not fire.
* Windows. A window parameter in ``h`` (or ``min``) is rolling: ``[t − W, t]`` for an
  anchor at ``t``, closed at both ends. A window in ``d`` counts the patient's LOCAL
  calendar days (zone ``tz``, default Europe/Stockholm; DST-safe): the anchor's local day
  and the ``W − 1`` days before it, from local midnight up to ``t`` inclusive. Readings at
  exactly ``t`` (ties) are inside; readings after ``t`` never are.
  - window_aggregate: the aggregate of the readings in the window (the anchor included),
    after discarding the readings of the first ``discard_first_days`` local days that hold
    readings in the window; with fewer than ``min_readings`` readings left it never fires.
  - delta: the anchor minus the min (or max) of the readings BEFORE it in the window,
    ``[t − W, t)``: the near edge is open, so readings at the anchor's own time (ties)
    are not "preceding"; the far edge is closed (a weight exactly 72 h earlier counts).
    Without a preceding reading it does not fire.
  - count: fires at an event (the conditions hold) when the events in ``[t − W, t]``
    number at least ``min_count``.
  - bands: each band compares the reading (or ``100 × value / reference``, exactly) with
    its parameter; when bands overlap the most severe one that holds speaks, the first
    listed among equals.
  - baseline: the anchor against the patient's own baseline, the MEDIAN of the readings
    (of the rule's types and context, with the component) in a past window that ends a
    ``gap`` before the anchor. Rolling (``h``/``min`` window and gap): ``[t − W − G, t − G)``,
    closed at the far end and open at the near end. Local days (``d`` window and gap): the
    ``W`` whole local days that end ``G`` whole days before the anchor's local day,
    ``[midnight(D − G − W), midnight(D − G))`` for an anchor on local day ``D``; the anchor's
    own day is never in the baseline, so ``G = 2`` also leaves out yesterday and the day
    before. The median of an even number of readings is the mean of the two middle ones,
    exact. With fewer than ``min_readings`` readings in the baseline window it never fires
    (a new patient has no baseline). The change is ``value − baseline`` for
    ``direction: rise`` and ``baseline − value`` for ``fall``, compared exactly with the
    parameter (in its unit, as for a delta: the original values when the anchor and the
    baseline readings share a published unit, else all converted).
  - composite: a part holds at ``t`` when it holds at some reading of its types timed in
    ``[t − within, t]`` (``within`` absent: exactly ``t``), evaluated at that reading with
    the part's own window; the rule fires when all (or any) parts hold.
  - threshold occurrences (``flag.min_count`` > 1). The readings of the rule's types
    within ``window_hours`` before or after the anchor (inclusive) on which the rule fires
    are chained into occurrences: a reading at most ``episode_minutes`` after the previous
    one belongs to the same occurrence. An occurrence's time is its first reading's. The
    flag is raised when some span of ``window_hours`` (inclusive at both ends) that
    contains the anchor's occurrence holds at least ``min_count`` occurrences. The
    finding's readings are the first reading of each occurrence of the span that holds
    the most (the earliest such span), and the anchor: one reading per occurrence, not
    every reading of a CGM low, whose list would grow with the square of the stream.
* Late data. Each rule has a reach ``(back, fwd)``: an anchor at ``t`` reads only
  readings in ``[t − back, t + fwd]`` (``fwd`` is 0 except for threshold occurrences). A
  new (or removed) reading at ``s`` therefore changes only anchors in
  ``[s − fwd, s + back]``; :func:`evaluate_run` re-evaluates them all and reports every
  (rule, anchor) it evaluated, fired or not, so the app can retract an earlier firing that
  no longer holds (a late low reading that pulls a 7-day mean under the threshold). The
  readings given must cover ``[earliest new − lookback, latest new + lookback]``
  (:func:`lookback`). :func:`evaluate` returns only the findings anchored at new readings.
* Work. Besides the readings its findings list (a window rule's finding lists its
  window), one evaluation costs time linear in the readings given (up to log factors, and
  for occurrence counts a factor of at most ``window_hours / episode_minutes``), however
  many anchors a late or removed reading touches: what an anchor reads of its window (a
  minimum, a sum, a median, a count, the episode walked back) comes from indexes built
  once per evaluation (:mod:`rules.ranges`), never from a scan of each anchor's window,
  and an anchor that does not fire lists nothing. ``EvaluationRun.visits`` counts the
  readings looked at, so that tests can hold this.
* Advice episodes (a threshold rule's ``advice_episode``, CGM lows; CLINICAL §7). At an
  anchor of the episode's types, walk back over the readings of those types in
  ``[t − 12 h, t]`` (:data:`EPISODE_LOOKBACK`): the anchor's episode holds every earlier
  reading where the episode condition holds (glucose < 3.9) until a run of readings where
  it does not spans at least ``end_after`` (15 min, first to last reading of the run), or
  two neighbouring readings lie more than ``max_gap`` apart (a silent sensor: recovery is
  unknown, so a new episode — and new advice — is the safer error). The anchor is always in
  its episode. The finding is a repeat (``advice_repeat``) when an earlier reading of the
  episode also fired this rule; a rule for a deeper level (very low) has its own first
  firing. The explanation carries the episode's start, its minutes up to the anchor and
  its nadir as measured. Other readings of the rule's types (fingersticks) have no episode.
* Freshness. A reading-anchored finding's advice may be pushed until ``anchor time +
  push_within`` (a parameter of every such rule with advice); the app records older advice
  as stale. Freshness never changes whether a rule fires or flags.
* Context. A condition with ``context`` holds only for readings with that context; a
  reading without ``activity`` is at rest (``rules.catalogue.activity_state``).
* Escalation. A raised flag takes the escalation's severity when every ``requires`` flag
  parameter is true and its conditions hold (``match``, default all).
* Supersession. When an active rule that ``supersedes`` another fires on the same reading,
  the other rule's finding keeps its record but loses its advice and flag.
* Monitor mode. Findings carry ``mode``; the app records monitor findings but sends no
  advice and raises no flag for them.
* Ties and order. Readings are unique by id. Findings come ordered by the anchor's time,
  then its id (or scope), then the rule id.
* Time. ``now`` is a parameter, never the clock; reading-anchored rules do not use it;
  time-based rules evaluate the day starts that are due at ``now`` (:func:`evaluate_due`).
* Zone. ``tz`` (an IANA name or a tzinfo, default Europe/Stockholm) is a parameter of each
  call, not part of the plan: the zone belongs to the patient (DESIGN §5), and moving
  house must not make a new plan version. It decides local days (``d`` windows, the
  discarded first measuring days, day anchors) and nothing else.
* Time-based rules. Anchored at local day starts ``d``; an anchor reads only readings
  before ``d``. missing_data: for each type in the plan's schedule, with interval ``i``
  days (daily 1, weekdays 3, weekly 7), it fires when no reading of the type lies in the
  ``intervals × i`` whole local days before ``d`` (advice), and flags when none lies in
  the ``intervals × i + flag_after_days`` days before it; days before the plan's
  ``effective_from`` are not counted as missing. One finding per missing type (its own
  key and flag), but ONE reminder per day: the advice names every missing type, in
  :func:`reminder_order` (weight first in a heart-failure plan), and rides on the finding
  of the first of them; the others carry none. cgm_metric: the CGM metrics of the
  ``window`` whole local days before ``d`` (:mod:`rules.cgm`); with less than
  ``min_wear`` % of the window's sampling slots worn it does not fire.

Modules, each one job: :mod:`~rules.engine.evaluation` and :mod:`~rules.engine.due` (the
entry points, reading-anchored and time-based), :mod:`~rules.engine.selection` (which rules
of a plan run, how far they read), :mod:`~rules.engine.runs` (one rule of one plan, ready to
evaluate), :mod:`~rules.engine.kinds` (one check per reading-anchored kind),
:mod:`~rules.engine.occurrences` (a threshold rule's occurrences, escalation and advice
episodes, with :mod:`~rules.engine.episodes`), :mod:`~rules.engine.missing_data` and
:mod:`~rules.engine.cgm_metric` (the time-based kinds), :mod:`~rules.engine.history`
(windows and the indexed readings of one evaluation), :mod:`~rules.engine.comparison` (one
reading against one parameter), :mod:`~rules.engine.days` (zones, local days),
:mod:`~rules.engine.findings` (what an evaluation returns) and :mod:`~rules.engine.texts`
(languages, names, numbers and readings as text).
"""

from rules.engine.days import DEFAULT_TZ, local_day_start
from rules.engine.due import due_anchors, due_lookback, evaluate_due, evaluate_due_run
from rules.engine.episodes import EPISODE_LOOKBACK
from rules.engine.evaluation import Recorded, evaluate, evaluate_run
from rules.engine.findings import AdviceText, EvaluationRun, Finding, anchor_key, explanation_json
from rules.engine.missing_data import SCHEDULE_INTERVAL_DAYS, reminder_order
from rules.engine.selection import (
    UnrunnableRule,
    history_types,
    lookback,
    narrow_span,
    plan_addressee,
    reading_types,
    unrunnable_rules,
)
from rules.engine.texts import LANGUAGES, number_text, reading_text

__all__ = [
    "DEFAULT_TZ",
    "LANGUAGES",
    "SCHEDULE_INTERVAL_DAYS",
    "AdviceText",
    "EvaluationRun",
    "Finding",
    "UnrunnableRule",
    "anchor_key",
    "due_anchors",
    "due_lookback",
    "evaluate",
    "evaluate_due",
    "evaluate_due_run",
    "evaluate_run",
    "Recorded",
    "explanation_json",
    "history_types",
    "local_day_start",
    "lookback",
    "narrow_span",
    "plan_addressee",
    "reading_types",
    "reminder_order",
    "number_text",
    "reading_text",
    "unrunnable_rules",
    "EPISODE_LOOKBACK",
]
