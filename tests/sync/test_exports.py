"""The public surface of ``sync`` is explicit, and the core never reads the clock."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

import sync

CLOCK = re.compile(r"\b(datetime\.now|datetime\.utcnow|date\.today|time\.time)\b")
# The reference client is the app side of the protocol: it may read the clock (injectable).
PURE_SOURCES = sorted(
    p for p in Path(sync.__file__).parent.rglob("*.py") if p.name != "client.py"
)
MODULES = ["sync", "sync.wire", "sync.normalise", "sync.dedup", "sync.cursor"]


@pytest.mark.parametrize("name", MODULES)
def test_all_names_exist(name: str) -> None:
    module = importlib.import_module(name)
    exported = module.__all__
    assert len(exported) == len(set(exported))
    for attribute in exported:
        assert hasattr(module, attribute), f"{name}.{attribute}"


@pytest.mark.parametrize("source", PURE_SOURCES, ids=lambda p: p.name)
def test_no_clock_reads(source: Path) -> None:
    assert not CLOCK.search(source.read_text(encoding="utf-8"))
