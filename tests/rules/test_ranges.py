"""The range structures answer exactly as a scan of the range would (hypothesis).

Exactly means the very Decimal a scan returns: ``min()`` of ``3.0`` and ``3.00`` is the
first of them, and a sum keeps the exponent a plain ``sum()`` gives it, because both show
in the texts of a finding (``135`` is not ``135.0``).
"""

from __future__ import annotations

from datetime import UTC
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from rules.engine.history import SCAN_BUDGET, Column, History
from rules.ranges import ExactSums, LatestTrue, RangeBest, SlidingOrder, _exponent

# Values with few and many digits, equal values spelled differently, and some big ones.
_VALUES = st.one_of(
    st.integers(0, 40).map(lambda n: Decimal(n) / 10),
    st.sampled_from(["3", "3.0", "3.00", "1E+1", "10", "0", "0.0", "135", "135.0"]).map(Decimal),
    st.decimals(min_value=0, max_value=10**6, allow_nan=False, places=6),
)
_SIGNED = st.one_of(_VALUES, st.sampled_from(["-1.5", "-0", "-0.00", "2"]).map(Decimal))


def _ranges(n: int) -> st.SearchStrategy[tuple[int, int]]:
    return st.tuples(st.integers(0, n - 1), st.integers(1, n)).filter(lambda r: r[0] < r[1])


def _same(a: Decimal, b: Decimal) -> bool:
    """Tell whether two Decimals are the same digits, not only the same number."""
    return a.as_tuple() == b.as_tuple()


@settings(max_examples=100, deadline=None)
@given(values=st.lists(_VALUES, min_size=1, max_size=40), data=st.data())
def test_range_best_is_min_of_the_slice(values: list[Decimal], data: st.DataObject) -> None:
    lowest = RangeBest(values)
    highest = RangeBest([v.copy_negate() for v in values])
    for _ in range(10):
        start, end = data.draw(_ranges(len(values)))
        assert lowest.best(start, end) == min(range(start, end), key=lambda i: values[i])
        assert _same(values[lowest.best(start, end)], min(values[start:end]))
        assert _same(values[highest.best(start, end)], max(values[start:end]))


@settings(max_examples=100, deadline=None)
@given(values=st.lists(_SIGNED, min_size=1, max_size=40), data=st.data())
def test_exact_sums_are_plain_sums_digit_for_digit(
    values: list[Decimal], data: st.DataObject
) -> None:
    sums = ExactSums(values)
    for _ in range(10):
        start, end = data.draw(_ranges(len(values)))
        assert _same(sums.total(start, end), sum(values[start:end], Decimal(0)))


@settings(max_examples=300, deadline=None)
@given(
    value=st.one_of(
        st.decimals(allow_nan=True, allow_infinity=True),
        st.sampled_from(["1E+1", "0E-7", "1.5E-9", "-0.00", "12.340", "-7"]).map(Decimal),
    )
)
def test_an_exponent_read_from_the_text_is_the_tuple_s(value: Decimal) -> None:
    exponent = value.as_tuple().exponent
    assert _exponent(value) == (min(exponent, 0) if isinstance(exponent, int) else 0)


def test_a_sum_longer_than_the_context_rounds_as_a_plain_sum_does() -> None:
    values = [Decimal("1234567890.123456789"), Decimal("9876543210.987654321"), Decimal(1)]
    for start, end in [(0, 2), (0, 3), (1, 3)]:
        assert _same(ExactSums(values).total(start, end), sum(values[start:end], Decimal(0)))


def _median(values: list[Decimal]) -> Decimal:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


@settings(max_examples=100, deadline=None)
@given(values=st.lists(_VALUES, min_size=1, max_size=40), data=st.data())
def test_sliding_order_gives_the_median_of_any_window(
    values: list[Decimal], data: st.DataObject
) -> None:
    order = SlidingOrder(values)
    for _ in range(10):  # windows in any order: forward, back, apart
        start, end = data.draw(_ranges(len(values)))
        assert _same(order.median(start, end), _median(values[start:end]))


@settings(max_examples=100, deadline=None)
@given(flags=st.lists(st.booleans(), min_size=1, max_size=60), data=st.data())
def test_latest_true_tests_each_index_once(flags: list[bool], data: st.DataObject) -> None:
    tested: list[int] = []

    def holds(index: int) -> bool:
        tested.append(index)
        return flags[index]

    latest = LatestTrue(holds)
    for _ in range(15):
        start, end = data.draw(_ranges(len(flags)))
        expected = next((i for i in range(end - 1, start - 1, -1) if flags[i]), None)
        assert latest.latest(start, end) == expected
    assert len(tested) == len(set(tested))


@settings(max_examples=100, deadline=None)
@given(
    values=st.lists(st.one_of(st.none(), _VALUES), min_size=1, max_size=30).filter(
        lambda vs: any(v is not None for v in vs)
    ),
    data=st.data(),
)
def test_a_column_gives_min_and_max_read_or_indexed(
    values: list[Decimal | None], data: st.DataObject
) -> None:
    """A column reads its first ranges and indexes once they add up: the same Decimal either
    way, and its reads stay within the budget (linear work)."""
    history = History([], UTC)
    column = Column(values, history)
    for _ in range(3 * SCAN_BUDGET):  # enough ranges to pass the budget
        start, end = data.draw(_ranges(len(values)))
        present = [v for v in values[start:end] if v is not None]
        if not present:
            continue
        assert _same(column.lowest(start, end), min(present))
        assert _same(column.highest(start, end), max(present))
    assert column._scanned <= SCAN_BUDGET * len(values)


def test_a_column_builds_its_index_once_reads_pass_the_budget() -> None:
    """Small batches read; a re-evaluation of every anchor uses the index."""
    values: list[Decimal | None] = [Decimal(n % 7) for n in range(100)]
    column = Column(values, History([], UTC))
    column.lowest(0, 10)
    assert column._lowest is None  # a read of 10 values, no index built
    for start in range(90):
        column.lowest(start, start + 10)
    assert column._lowest is not None
