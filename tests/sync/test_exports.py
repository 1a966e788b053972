"""The public surface of ``sync`` is explicit, and the core never reads the clock.

Every module of ``sync`` (the packages' too) says what it exports in ``__all__``, and no
module imports another's private (``_x``) names: what a module shares, it makes public.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

import sync

CLOCK = re.compile(r"\b(datetime\.now|datetime\.utcnow|date\.today|time\.time)\b")
SYNC_DIR = Path(sync.__file__).parent
SOURCES = sorted(SYNC_DIR.rglob("*.py"))
# The reference client is the app side of the protocol: it may read the clock (injectable).
PURE_SOURCES = [p for p in SOURCES if p.name != "client.py"]


def _module_name(source: Path) -> str:
    parts = source.relative_to(SYNC_DIR).with_suffix("").parts
    return ".".join(("sync", *parts)).removesuffix(".__init__")


MODULES = [_module_name(source) for source in SOURCES]


def test_the_packages_are_there() -> None:
    for name in ("sync.wire", "sync.normalise", "sync.imports", "sync.imports.omh"):
        assert name in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_all_names_exist(name: str) -> None:
    module = importlib.import_module(name)
    exported = module.__all__
    assert len(exported) == len(set(exported))
    for attribute in exported:
        assert hasattr(module, attribute), f"{name}.{attribute}"


@pytest.mark.parametrize("source", PURE_SOURCES, ids=_module_name)
def test_no_clock_reads(source: Path) -> None:
    assert not CLOCK.search(source.read_text(encoding="utf-8"))


@pytest.mark.parametrize("source", SOURCES, ids=_module_name)
def test_no_private_imports(source: Path) -> None:
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sync"):
            private = [alias.name for alias in node.names if alias.name.startswith("_")]
            assert not private, f"{_module_name(source)} imports {private} from {node.module}"
