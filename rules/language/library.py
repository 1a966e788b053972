"""Parsing rules and loading the rule library (one YAML file per rule in ``rules/library/``)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError

from rules.language.kinds import Rule

LIBRARY_DIR = Path(__file__).parent.parent / "library"
"""Where the default rule library lives."""
_RULE = TypeAdapter(Rule)


def parse_rule(data: Any) -> Rule:
    """Validate one rule from its parsed YAML or JSON."""
    return _RULE.validate_python(data)


class LibraryError(ValueError):
    """A rule file that does not load: bad YAML, an invalid rule, a duplicate id."""


@dataclass(frozen=True)
class RuleLibrary:
    """The rules a plan can switch on, by id."""

    rules: tuple[Rule, ...]
    _by_id: Mapping[str, Rule] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_id: dict[str, Rule] = {}
        for rule in self.rules:
            if rule.id in by_id:
                raise LibraryError(f"duplicate rule id {rule.id!r}")
            by_id[rule.id] = rule
        for rule in self.rules:
            for other in rule.supersedes:
                if other not in by_id:
                    raise LibraryError(f"{rule.id} supersedes unknown rule {other!r}")
        object.__setattr__(self, "_by_id", by_id)

    def get(self, rule_id: str) -> Rule | None:
        """Return the rule with this id, or None."""
        return self._by_id.get(rule_id)


def load_library(path: Path | None = None) -> RuleLibrary:
    """Load every ``*.yaml`` rule of a folder (default: the package's ``library/``)."""
    if path is None:
        return _default_library()
    return _load(path)


@functools.cache
def _default_library() -> RuleLibrary:
    return _load(LIBRARY_DIR)


def _load(path: Path) -> RuleLibrary:
    rules: list[Rule] = []
    for file in sorted(path.glob("*.yaml")):
        try:
            data = yaml.safe_load(file.read_text(encoding="utf-8"))
            rule = parse_rule(data)
        except (yaml.YAMLError, ValidationError) as exc:
            raise LibraryError(f"{file.name}: {exc}") from exc
        if rule.id != file.stem:
            raise LibraryError(f"{file.name}: the id {rule.id!r} differs from the file name")
        rules.append(rule)
    try:
        return RuleLibrary(rules=tuple(rules))
    except LibraryError as exc:
        raise LibraryError(f"{path}: {exc}") from exc


__all__ = ["LIBRARY_DIR", "LibraryError", "RuleLibrary", "load_library", "parse_rule"]
