"""The public surface of ``rules`` is explicit, and the core never reads the clock."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

import rules

CLOCK = re.compile(r"\b(datetime\.now|datetime\.utcnow|date\.today|time\.time)\s*\(")
MODULES = [
    "rules",
    "rules.catalogue",
    "rules.model",
    "rules.plan",
    "rules.advice",
    "rules.advice_table",
    "rules.facts",
    "rules.evaluate",
    "rules.cgm",
    "rules.lint",
    "rules.backtest",
    "rules.ranges",
]


@pytest.mark.parametrize("name", MODULES)
def test_all_names_exist(name: str) -> None:
    module = importlib.import_module(name)
    exported = module.__all__
    assert len(exported) == len(set(exported))
    for attribute in exported:
        assert hasattr(module, attribute), f"{name}.{attribute}"


@pytest.mark.parametrize(
    "source", sorted(Path(rules.__file__).parent.glob("*.py")), ids=lambda p: p.name
)
def test_no_clock_reads(source: Path) -> None:
    assert not CLOCK.search(source.read_text(encoding="utf-8"))
