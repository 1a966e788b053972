"""What an evaluation returns: findings (one firing each), their advice texts, and a run."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from rules.catalogue import is_decimal_text, json_number, json_value
from rules.facts import ReadingFact

# A finding lists at most this many of the readings it used, the latest (a mean over a
# dense week uses thousands); ``readings_total`` says how many it used in all. 30 holds a
# whole ESH home blood-pressure week (7 days × morning and evening × 2 readings = 28,
# CLINICAL.md §4): what a flag's table is read for. More is what the timeline is for: each
# firing stores its explanation, and at 100 a dense week's late sync wrote 26 MB of them.
MAX_EXPLAINED_READINGS = 30


@dataclass(frozen=True)
class AdviceText:
    """Advice filled in for one anchor, in every language: to the patient and to a proxy."""

    priority: str
    title: Mapping[str, str]
    body: Mapping[str, str]
    proxy_title: Mapping[str, str] = field(default_factory=dict)
    proxy_body: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Finding:
    """One firing of one rule at one anchor, with everything needed to explain it.

    A reading-anchored finding has ``anchor_reading_id`` and the reading's time as
    ``anchor_time``; a time-based one has no anchor reading, its anchor time (a local day
    start) and, for missing data, the type as ``scope``.
    """

    rule_id: str
    rule_version: int
    plan_version: int
    mode: str
    anchor_reading_id: str | None
    reading_ids: tuple[str, ...]
    computed: Mapping[str, str]
    thresholds: Mapping[str, Mapping[str, str]]
    advice: AdviceText | None
    flag_severity: str | None
    cooldown_minutes: int
    anchor_time: datetime
    readings: tuple[ReadingFact, ...] = field(default=(), compare=False, repr=False)
    readings_total: int = 0  # how many readings it used (``readings`` lists the latest)
    summary: Mapping[str, str] = field(default_factory=dict)
    superseded_by: str | None = None
    scope: str | None = None
    # How long after the anchor its advice may still be pushed (None: a time-based rule,
    # whose advice is as fresh as the moment it is made).
    push_within: timedelta | None = None
    # An advice episode (CGM): its start, minutes so far and nadir; advice is per episode.
    episode: Mapping[str, str] | None = None
    push_muted: bool = False  # the plan records this advice without pushing it
    # The advice repeats one already given in this episode: not given again, unless the
    # earlier one could not be pushed (it was stale) and this reading is fresh.
    advice_repeat: bool = False

    @property
    def fresh_until(self) -> datetime | None:
        """Return until when this finding's advice may be pushed (None: no limit here)."""
        if self.push_within is None or self.anchor_reading_id is None:
            return None
        return self.anchor_time + self.push_within

    @property
    def key(self) -> tuple[str, str]:
        """Return (rule id, anchor): what identifies the evaluation across runs."""
        return (self.rule_id, anchor_key(self.anchor_reading_id, self.anchor_time, self.scope))

    def explanation(self, *, written: bool = False) -> dict[str, Any]:
        """Return why the rule fired, as JSON-able data for the flag and the audit.

        Its readings are each fact's :attr:`~rules.facts.ReadingFact.listed`; ``written``:
        their JSON text kept with the fact instead (:attr:`~rules.facts.ReadingFact.listed_json`,
        shared between explanations), the same once orjson writes it (the standard library
        cannot), for storing: a late sync in a dense week stores a thousand explanations.
        """
        if written:
            readings: list[Any] = [reading.listed_json for reading in self.readings]
        else:
            readings = [reading.listed for reading in self.readings]
        explanation: dict[str, Any] = {
            "rule": {"id": self.rule_id, "version": self.rule_version},
            "plan_version": self.plan_version,
            "mode": self.mode,
            "anchor_reading_id": self.anchor_reading_id,
            "anchor_time": self.anchor_time.isoformat(),
            "readings": readings,
            "computed": dict(self.computed),
            "thresholds": {name: dict(value) for name, value in self.thresholds.items()},
            "flag_severity": self.flag_severity,
            "summary": dict(self.summary),
        }
        if self.readings_total > len(self.readings):
            explanation["readings_total"] = self.readings_total
        if self.scope is not None:
            explanation["scope"] = self.scope
        if self.episode is not None:
            explanation["episode"] = dict(self.episode)
        if self.superseded_by is not None:
            explanation["superseded_by"] = self.superseded_by
        return explanation


def explanation_json(explanation: Mapping[str, Any]) -> dict[str, Any]:
    """Return an explanation as answers show it: its numbers as JSON numbers, as recorded.

    Findings record numbers as decimal text (:meth:`Finding.explanation`), and flags keep
    that form; an answer turns the readings' values and every decimal text of ``computed``,
    ``thresholds`` and ``episode`` into numbers. Times, names and ids are not decimal text,
    and "true"/"false" stay as they are. Numbers already (a later format) pass unchanged.
    """
    shown = dict(explanation)
    for section in ("computed", "thresholds", "episode"):
        if isinstance(shown.get(section), Mapping):
            shown[section] = _numbers(shown[section])
    if isinstance(shown.get("readings"), list):
        shown["readings"] = [_reading_numbers(r) for r in shown["readings"]]
    return shown


def _numbers(data: Any) -> Any:
    if isinstance(data, Mapping):
        return {name: _numbers(value) for name, value in data.items()}
    return json_number(data) if is_decimal_text(data) else data


def _reading_numbers(reading: Any) -> Any:
    if not isinstance(reading, Mapping):
        return reading
    shown = dict(reading)
    if "values" in shown:
        shown["values"] = json_value(shown["values"])
    original = shown.get("original")
    if isinstance(original, Mapping) and "values" in original:
        shown["original"] = {**original, "values": json_value(original["values"])}
    return shown


def anchor_key(reading_id: str | None, anchor_time: datetime, scope: str | None = None) -> str:
    """Return the anchor part of a finding's key: the reading id, else time (and scope)."""
    if reading_id is not None:
        return reading_id
    text = anchor_time.astimezone(UTC).isoformat()
    return f"{text}/{scope}" if scope is not None else text


@dataclass(frozen=True)
class EvaluationRun:
    """What one evaluation did: the firings, and every (rule, anchor) it evaluated.

    ``evaluated`` holds the key of every evaluation, fired or not: an earlier firing whose
    key is evaluated here but is not among ``findings`` no longer holds (retract it).
    """

    findings: tuple[Finding, ...]
    evaluated: frozenset[tuple[str, str]]
    # Evaluated keys whose firing was recorded before and still holds: checked, not explained
    # again (see ``recorded`` of evaluate_run). They fire, so they are not retracted.
    still_firing: frozenset[tuple[str, str]] = frozenset()
    # Evaluated keys the same lookup found not fired before: not firing now, nothing to retract.
    unfired_before: frozenset[tuple[str, str]] = frozenset()
    # The readings the evaluation looked at (not counting those its findings list): its
    # work, which tests keep linear in the readings given (a removed CGM reading must not
    # cost a scan of each anchor's window).
    visits: int = field(default=0, compare=False)
    # The span of reading times the evaluation read (None: none): the readings given must
    # cover it for the run to be what the whole history gives (see ``narrow_span``).
    needed: tuple[datetime, datetime] | None = field(default=None, compare=False)

    def retracted(self, fired_before: Iterable[tuple[str, str]]) -> frozenset[tuple[str, str]]:
        """Return the earlier firings (keys) this run evaluated and found no longer firing."""
        fired = {f.key for f in self.findings} | self.still_firing
        return frozenset(k for k in fired_before if k in self.evaluated and k not in fired)


__all__ = ["AdviceText", "EvaluationRun", "Finding", "anchor_key", "explanation_json"]
