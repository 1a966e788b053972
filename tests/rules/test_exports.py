"""The public surface of ``rules`` is explicit, and the core never reads the clock.

Every module of ``rules`` (the packages' too) says what it exports in ``__all__``, and no
module imports another's private (``_x``) names: what a module shares, it makes public.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

import rules

CLOCK = re.compile(r"\b(datetime\.now|datetime\.utcnow|date\.today|time\.time)\s*\(")
RULES_DIR = Path(rules.__file__).parent
SOURCES = sorted(RULES_DIR.rglob("*.py"))


def _module_name(source: Path) -> str:
    parts = source.relative_to(RULES_DIR).with_suffix("").parts
    return ".".join(("rules", *parts)).removesuffix(".__init__")


MODULES = [_module_name(source) for source in SOURCES]


def test_the_packages_are_there() -> None:
    for name in ("rules.engine", "rules.language", "rules.backtest", "rules.progress"):
        assert name in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_all_names_exist(name: str) -> None:
    module = importlib.import_module(name)
    exported = module.__all__
    assert len(exported) == len(set(exported))
    for attribute in exported:
        assert hasattr(module, attribute), f"{name}.{attribute}"


@pytest.mark.parametrize("source", SOURCES, ids=_module_name)
def test_no_clock_reads(source: Path) -> None:
    assert not CLOCK.search(source.read_text(encoding="utf-8"))


@pytest.mark.parametrize("source", SOURCES, ids=_module_name)
def test_no_private_imports(source: Path) -> None:
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("rules"):
            private = [alias.name for alias in node.names if alias.name.startswith("_")]
            assert not private, f"{_module_name(source)} imports {private} from {node.module}"
