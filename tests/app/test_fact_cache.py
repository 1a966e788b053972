"""The facts kept between batches: bounded, least recently used out, one set per database."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from app.readings.fact_cache import FactCache
from rules.facts import ReadingFact


def _fact(reading_id: str) -> ReadingFact:
    value = {"value": Decimal("5.5")}
    return ReadingFact(
        id=reading_id,
        type="glucose",
        time=datetime(2026, 12, 1, 8, tzinfo=UTC),
        values=value,
        unit="mmol/L",
        original_values=value,
        original_unit="mmol/L",
    )


def test_the_least_recently_used_fact_goes_first_beyond_the_bound() -> None:
    cache = FactCache(size=3)
    cache.put_many("db", [_fact("a"), _fact("b"), _fact("c")])
    assert set(cache.get_many("db", ["a"])) == {"a"}  # a is now the most recently used
    cache.put_many("db", [_fact("d")])
    assert len(cache) == 3
    assert set(cache.get_many("db", ["a", "b", "c", "d"])) == {"a", "c", "d"}


def test_each_database_has_its_own_facts() -> None:
    cache = FactCache(size=10)
    cache.put_many("one", [_fact("a")])
    assert cache.get_many("two", ["a"]) == {}
    assert cache.get_many("one", ["a", "missing"]) == {"a": _fact("a")}
