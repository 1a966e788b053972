"""Checks of a rule library beyond its schema: what a reviewer of a rule would look for.

Each :class:`LintIssue` names the rule, a code and a message. ``error`` issues make a rule
wrong or unusable; ``warning`` issues are what a plan can make wrong (a band that a plan's
parameters can make unreachable) or what reads badly (an unused parameter).

Codes: ``schema`` (the rule does not validate, or a file does not load),
``missing_source``, ``missing_translation``, ``overlapping_bands`` (two bands of one
severity overlap: which speaks is an accident of order), ``unreachable_band`` (a more
severe band always holds where it does), ``unreachable_conditions`` (``match: all`` over
one component with disjoint conditions), ``unused_param``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from string import Template
from typing import Any, Literal

import yaml
from pydantic import ValidationError

from rules.language import (
    PUSH_WITHIN,
    BandsRule,
    Condition,
    Match,
    Op,
    ParamSpec,
    Rule,
    RuleLibrary,
    parse_rule,
)
from rules.language import SEVERITY_RANK as _RANK

_MIN_SOURCE = 20  # characters: "plan parameter" alone is not a source
_WORD = re.compile(r"[A-Za-zÅÄÖåäö]{3,}")


@dataclass(frozen=True)
class LintIssue:
    """One problem of one rule."""

    rule_id: str
    code: str
    message: str
    severity: Literal["error", "warning"] = "error"


@dataclass(frozen=True)
class _HalfLine:
    """``value <op> bound``: the set of numbers a comparison holds for."""

    op: Op
    bound: Decimal

    @property
    def below(self) -> bool:
        return self.op in (Op.lt, Op.le)

    def contains(self, other: _HalfLine) -> bool:
        """Tell whether every number in ``other`` is in this half-line."""
        if self.below != other.below:
            return False
        if self.below:
            if other.bound != self.bound:
                return other.bound < self.bound
            return self.op is Op.le or other.op is Op.lt
        if other.bound != self.bound:
            return other.bound > self.bound
        return self.op is Op.ge or other.op is Op.gt

    def meets(self, other: _HalfLine) -> bool:
        """Tell whether some number is in both half-lines."""
        if self.below == other.below:
            return True
        low, high = (other, self) if self.below else (self, other)  # low: x > .., high: x < ..
        if low.bound != high.bound:
            return low.bound < high.bound
        return low.op is Op.ge and high.op is Op.le


def _number(spec: ParamSpec, which: str) -> Decimal | None:
    value = {"default": spec.default, "min": spec.min, "max": spec.max}[which]
    return None if isinstance(value, bool) else value


def _texts_problems(rule: Rule) -> Iterable[str]:
    for text in rule.texts():
        for lang in ("sv", "en"):
            if not text.get(lang).strip() or not _WORD.search(text.get(lang)):
                yield f"{lang} text is empty: {text.get('sv' if lang == 'en' else 'en')[:60]!r}"
        if text.sv == text.en and len(text.sv) > 30:
            yield f"sv and en are the same text: {text.sv[:60]!r}"
        if _placeholders(text.sv) != _placeholders(text.en):
            yield f"sv and en use different placeholders: {text.sv[:40]!r}"


def _placeholders(text: str) -> frozenset[str]:
    template = Template(text)
    return frozenset(template.get_identifiers()) if template.is_valid() else frozenset()


def _param_names(data: Any) -> set[str]:
    """Collect every string a rule uses to name a parameter (fields, conditions, parts)."""
    names: set[str] = set()
    if isinstance(data, dict):
        for key, value in data.items():
            if key in {"params", "title", "description", "advice", "body", "source"}:
                continue
            if key in {
                "param",
                "window",
                "gap",
                "min_readings",
                "discard_first_days",
                "min_count",
                "reference",
                "within",
                "intervals",
                "flag_after_days",
                "min_wear",
                "end_after",
                "max_gap",
                "muted_by",
            } and isinstance(value, str):
                names.add(value)
            elif key == "requires" and isinstance(value, list):
                names.update(str(v) for v in value)
            else:
                names |= _param_names(value)
    elif isinstance(data, list):
        for item in data:
            names |= _param_names(item)
    return names


def _band_lines(rule: BandsRule, which: str) -> list[_HalfLine | None]:
    lines: list[_HalfLine | None] = []
    for band in rule.bands:
        bound = _number(rule.params[band.param], which)
        lines.append(None if bound is None else _HalfLine(band.op, bound))
    return lines


def _bands_problems(rule: BandsRule) -> Iterable[LintIssue]:
    bands = rule.bands
    at_default = _band_lines(rule, "default")
    for i, band in enumerate(bands):
        line = at_default[i]
        if line is None:
            continue
        for j, other in enumerate(bands):
            other_line = at_default[j]
            if j == i or other_line is None:
                continue
            if _RANK[other.severity] > _RANK[band.severity] and other_line.contains(line):
                yield LintIssue(
                    rule.id,
                    "unreachable_band",
                    f"band {band.name!r} never speaks: the more severe band {other.name!r} "
                    "holds wherever it does",
                )
            elif j > i and _RANK[other.severity] == _RANK[band.severity] and line.meets(other_line):
                yield LintIssue(
                    rule.id,
                    "overlapping_bands",
                    f"bands {band.name!r} and {other.name!r} overlap with the same severity",
                )
    # What a plan can do within the allowed ranges: the most severe a band's bound can go
    # against the least severe its rival's can.
    for i, band in enumerate(bands):
        for j, other in enumerate(bands):
            if j == i or _RANK[other.severity] <= _RANK[band.severity]:
                continue
            own, rival = rule.params[band.param], rule.params[other.param]
            if band.op in (Op.lt, Op.le) and other.op in (Op.lt, Op.le):
                a, b = _number(own, "min"), _number(rival, "max")
            elif band.op in (Op.gt, Op.ge) and other.op in (Op.gt, Op.ge):
                a, b = _number(rival, "min"), _number(own, "max")
            else:
                continue
            if a is not None and b is not None and b >= a:
                yield LintIssue(
                    rule.id,
                    "unreachable_band",
                    f"a plan can make band {band.name!r} unreachable: {other.param} may go "
                    f"to {b}, {band.param} down to {a}",
                    "warning",
                )


def _conditions_problems(
    rule_id: str, params: dict[str, ParamSpec], conditions: Sequence[Condition], match: Match
) -> Iterable[LintIssue]:
    if match is not Match.all:
        return
    for i, first in enumerate(conditions):
        for second in conditions[i + 1 :]:
            if first.component != second.component:
                continue
            a = _number(params[first.param], "default")
            b = _number(params[second.param], "default")
            if a is None or b is None:
                continue
            if not _HalfLine(first.op, a).meets(_HalfLine(second.op, b)):
                yield LintIssue(
                    rule_id,
                    "unreachable_conditions",
                    f"{first.component} {first.op.symbol} {first.param} and "
                    f"{second.op.symbol} {second.param} never hold together",
                )


def lint_rule(rule: Rule) -> list[LintIssue]:
    """Return the problems of one rule."""
    issues: list[LintIssue] = []
    try:
        parse_rule(rule.model_dump(mode="json"))
    except ValidationError as exc:
        issues.append(LintIssue(rule.id, "schema", str(exc).splitlines()[0]))
    if len(rule.source.strip()) < _MIN_SOURCE or not _WORD.search(rule.source):
        issues.append(LintIssue(rule.id, "missing_source", "the rule does not cite its source"))
    issues.extend(
        LintIssue(rule.id, "missing_translation", problem) for problem in _texts_problems(rule)
    )
    if isinstance(rule, BandsRule):
        issues.extend(_bands_problems(rule))
    conditions = getattr(rule, "conditions", ())
    match = getattr(rule, "match", Match.any)
    if conditions and all(isinstance(c, Condition) for c in conditions):
        issues.extend(_conditions_problems(rule.id, rule.params, conditions, match))
    used = _param_names(rule.model_dump(mode="json")) | {PUSH_WITHIN}  # read by the engine
    issues.extend(
        LintIssue(rule.id, "unused_param", f"parameter {name!r} is never used", "warning")
        for name in sorted(set(rule.params) - used)
    )
    return issues


def lint(library: RuleLibrary) -> list[LintIssue]:
    """Return every problem of every rule of a library (empty: clean)."""
    return [issue for rule in library.rules for issue in lint_rule(rule)]


def lint_files(path: Path) -> list[LintIssue]:
    """Lint every ``*.yaml`` rule file of a folder; a file that does not load is a schema issue."""
    issues: list[LintIssue] = []
    rules: list[Rule] = []
    for file in sorted(path.glob("*.yaml")):
        try:
            rule = parse_rule(yaml.safe_load(file.read_text(encoding="utf-8")))
        except (yaml.YAMLError, ValidationError) as exc:
            issues.append(LintIssue(file.stem, "schema", f"{file.name}: {exc}"))
            continue
        if rule.id != file.stem:
            issues.append(
                LintIssue(file.stem, "schema", f"{file.name}: the id {rule.id!r} differs")
            )
        rules.append(rule)
    seen: set[str] = set()
    for rule in rules:
        if rule.id in seen:
            issues.append(LintIssue(rule.id, "schema", "duplicate rule id"))
        seen.add(rule.id)
        issues.extend(lint_rule(rule))
    known = {rule.id for rule in rules}
    for rule in rules:
        issues.extend(
            LintIssue(rule.id, "schema", f"supersedes unknown rule {other!r}")
            for other in rule.supersedes
            if other not in known
        )
    return issues


__all__ = ["LintIssue", "lint", "lint_files", "lint_rule"]
