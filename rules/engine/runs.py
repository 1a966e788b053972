"""Runs: one rule of one plan, its parameters resolved, ready to evaluate (reading-anchored
or time-based); a run turns an outcome into a finding with its advice.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType

from rules.advice import PATIENT, PROXY, Addressee, Audience, contact_text, fill, patient_fields
from rules.engine.episodes import Episode
from rules.engine.findings import MAX_EXPLAINED_READINGS, AdviceText, Finding
from rules.engine.history import History, Window, latest_used
from rules.engine.kinds.base import Check, Outcome
from rules.engine.kinds.dispatch import check_for
from rules.engine.texts import LANGUAGES, reading_text
from rules.facts import ReadingFact
from rules.language import (
    PUSH_WITHIN,
    AdviceSpec,
    LocalText,
    ResolvedParam,
    Rule,
    RuleMode,
    Severity,
)
from rules.plan import PlanSpec


@dataclass
class Run:
    """One rule of one plan with its parameters resolved."""

    rule: Rule
    mode: RuleMode
    params: Mapping[str, ResolvedParam]
    plan_version: int
    addressee: Addressee = field(default_factory=Addressee)
    # The advice filled in per (advice, values, change), for this run (one evaluation): a
    # late week fires hundreds of anchors whose means round to a handful of values.
    _filled: dict[tuple[int, tuple[str, ...], tuple[str, ...] | None], AdviceText] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def _advice(
        self,
        spec: AdviceSpec | None,
        values: Mapping[str, str],
        change: Mapping[str, str] | None = None,
    ) -> AdviceText | None:
        if spec is None:
            return None
        # By the spec's identity: the run's rule holds it (and its bands') for the run's life.
        key = (
            id(spec),
            tuple(values[lang] for lang in LANGUAGES),
            tuple(change[lang] for lang in LANGUAGES) if change else None,
        )
        found = self._filled.get(key)
        if found is None:
            found = self._filled[key] = self._fill(spec, values, change)
        return found

    def _fill(
        self, spec: AdviceSpec, values: Mapping[str, str], change: Mapping[str, str] | None
    ) -> AdviceText:

        def texts(
            audience: Audience, patient: LocalText, proxy: LocalText | None
        ) -> Mapping[str, str]:
            filled = {}
            for lang in LANGUAGES:
                fields = {
                    "value": values[lang],
                    "change": change[lang] if change else values[lang],
                    "contact": contact_text(self.addressee, lang, audience),
                }
                if audience == PROXY:
                    fields.update(patient_fields(self.addressee, lang))
                filled[lang] = fill((proxy or patient).get(lang), fields)
            return MappingProxyType(filled)

        return AdviceText(
            priority=spec.priority,
            title=texts(PATIENT, spec.title, None),
            body=texts(PATIENT, spec.body, None),
            proxy_title=texts(PROXY, spec.title, spec.proxy_title),
            proxy_body=texts(PROXY, spec.body, spec.proxy_body),
        )


@dataclass
class ReadingRun(Run):
    """A reading-anchored rule."""

    check: Check = field(init=False)
    # How soon a finding's push must go, read once: a late week fires a thousand anchors.
    push_within: timedelta | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.check = check_for(self.rule, self.params)
        self.push_within = (
            Window.of(self.params, PUSH_WITHIN).duration if PUSH_WITHIN in self.params else None
        )

    def reach(self) -> tuple[timedelta, timedelta]:
        """Return how far before and after an anchor the rule reads."""
        return self.check.reach()

    def reach_of(self, changed: ReadingFact, history: History) -> tuple[timedelta, timedelta]:
        """Return how far after and before a new (or removed) reading the anchors lie whose
        outcome it can change: by default the rule's whole reach, as :meth:`reach`."""
        return self.reach()

    def read_reach(
        self, anchor: ReadingFact, history: History, *, explained: bool
    ) -> tuple[timedelta, timedelta]:
        """Return how far before and after an anchor evaluating it reads: checking whether
        it holds, or (``explained``) making its finding. By default the whole reach."""
        return self.reach()

    def anchors(self, reading: ReadingFact) -> bool:
        """Tell whether the rule is anchored at the reading."""
        return self.check.selects(reading)

    def may_fire(self, reading: ReadingFact, history: History) -> bool:
        """Tell whether re-evaluating an old anchor could find a firing there."""
        return True

    def prepare(self, anchors: Sequence[ReadingFact], history: History) -> None:
        """Get ready to be asked of these anchors, in time order, in this evaluation."""
        self.check.prepare(anchors, history)

    def holds(self, anchor: ReadingFact, history: History) -> bool:
        """Tell whether the rule fires at an anchor (a finding there), explaining nothing."""
        return self.check.holds(anchor, history)

    def finding(self, anchor: ReadingFact, history: History) -> Finding | None:
        """Return the finding at an anchor, or None when the rule does not hold there."""
        if not self.holds(anchor, history):
            return None
        outcome = self.check.outcome(anchor, history)
        assert outcome is not None and outcome.held
        rule = self.rule
        severity: Severity | None = rule.flag.severity if rule.flag is not None else None
        advice_spec = rule.advice
        if outcome.band is not None:
            severity = outcome.band.severity
            advice_spec = outcome.band.advice or rule.advice
        values = outcome.value or {lang: reading_text(anchor, lang) for lang in LANGUAGES}
        advice = self._advice(advice_spec, values, outcome.change)
        return self._finding(anchor, outcome, severity, advice, values)

    def _finding(
        self,
        anchor: ReadingFact,
        outcome: Outcome,
        severity: str | None,
        advice: AdviceText | None,
        values: Mapping[str, str],
        extra: Mapping[str, str] | None = None,
        episode: Episode | None = None,
    ) -> Finding:
        used, total = latest_used(outcome.used, MAX_EXPLAINED_READINGS)
        summary = {}
        for lang in LANGUAGES:
            text = (
                f"{self.rule.title.get(lang)}: {values[lang]} ({'; '.join(outcome.reasons[lang])})."
            )
            if extra:
                text += extra[lang]
            if episode is not None:
                text += episode.text[lang]
            summary[lang] = text
        return Finding(
            push_within=self.push_within,
            episode=MappingProxyType(episode.json) if episode is not None else None,
            advice_repeat=episode is not None and not episode.first_at_level,
            push_muted=episode is not None and episode.muted,
            rule_id=self.rule.id,
            rule_version=self.rule.version,
            plan_version=self.plan_version,
            mode=self.mode,
            anchor_reading_id=anchor.id,
            anchor_time=anchor.time,
            reading_ids=tuple(r.id for r in used),
            computed=MappingProxyType(dict(outcome.computed)),
            thresholds=MappingProxyType(dict(outcome.thresholds)),
            advice=advice,
            flag_severity=severity,
            cooldown_minutes=self.rule.cooldown_minutes,
            readings=used,
            readings_total=total,
            summary=MappingProxyType(summary),
        )


# --- time-based rules ------------------------------------------------------------------------


@dataclass
class TimeRun(Run, ABC):
    """A rule anchored at local day starts."""

    @abstractmethod
    def reach(self, plan: PlanSpec) -> timedelta:
        """How far back the readings of one evaluation reach."""

    @abstractmethod
    def evaluate_at(
        self, day: datetime, plan: PlanSpec, history: History
    ) -> tuple[list[tuple[str, str]], list[Finding]]:
        """The anchors evaluated at one local day start, and what they found."""

    def _time_finding(
        self,
        day: datetime,
        *,
        scope: str | None,
        used: Sequence[ReadingFact],
        computed: Mapping[str, str],
        thresholds: Mapping[str, Mapping[str, str]],
        severity: str | None,
        values: Mapping[str, str],
        reasons: Mapping[str, str],
    ) -> Finding:
        listed, total = latest_used(used, MAX_EXPLAINED_READINGS)
        return Finding(
            rule_id=self.rule.id,
            rule_version=self.rule.version,
            plan_version=self.plan_version,
            mode=self.mode,
            anchor_reading_id=None,
            anchor_time=day,
            scope=scope,
            reading_ids=tuple(r.id for r in listed),
            computed=MappingProxyType(dict(computed)),
            thresholds=MappingProxyType(dict(thresholds)),
            advice=self._advice(self.rule.advice, values),
            flag_severity=severity,
            cooldown_minutes=self.rule.cooldown_minutes,
            readings=listed,
            readings_total=total,
            summary=MappingProxyType(
                {
                    lang: f"{self.rule.title.get(lang)}: {values[lang]} ({reasons[lang]})."
                    for lang in LANGUAGES
                }
            ),
        )


__all__ = ["ReadingRun", "Run", "TimeRun"]
