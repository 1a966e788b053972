"""The import package: its public surface, purity, and the client-id helpers."""

from __future__ import annotations

import importlib
import re
from decimal import Decimal
from pathlib import Path

import pytest

import sync.imports
from sync.imports.result import bounded_id, content_id

CLOCK = re.compile(r"\b(datetime\.now|datetime\.utcnow|date\.today|time\.time)\b")
MODULES = [
    "sync.imports",
    "sync.imports.omh",
    "sync.imports.dexcom",
    "sync.imports.result",
    "sync.client",
]


@pytest.mark.parametrize("name", MODULES)
def test_all_names_exist(name: str) -> None:
    module = importlib.import_module(name)
    exported = module.__all__
    assert len(exported) == len(set(exported))
    for attribute in exported:
        assert hasattr(module, attribute), f"{name}.{attribute}"


@pytest.mark.parametrize(
    "source", sorted(Path(sync.imports.__file__).parent.rglob("*.py")), ids=lambda p: p.name
)
def test_importers_never_read_the_clock(source: Path) -> None:
    assert not CLOCK.search(source.read_text(encoding="utf-8"))


def test_content_ids_ignore_how_a_number_is_written() -> None:
    assert content_id("x:", {"v": 50}) == content_id("x:", {"v": 50.0})
    assert content_id("x:", {"v": 50}) == content_id("x:", {"v": Decimal("50.00")})
    assert content_id("x:", {"v": 50}) != content_id("x:", {"v": 51})
    assert content_id("x:", {"a": 1, "b": 2}) == content_id("x:", {"b": 2, "a": 1})


@pytest.mark.parametrize(
    ("natural", "hashed"),
    [("123e4567", False), ("x" * 124, False), ("x" * 125, True), ("tab\there", True)],
)
def test_bounded_ids(natural: str, hashed: bool) -> None:
    client_id = bounded_id("omh:", natural)
    assert len(client_id) <= 128 and client_id.isprintable()
    assert client_id.startswith("omh:sha256:") is hashed
