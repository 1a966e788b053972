"""Range queries over the sorted readings of one evaluation, each answered without a scan.

The evaluator re-evaluates every anchor whose window a late or removed reading touches. For
a dense stream (CGM, a wearable's pulse) that is every reading of a window, and each of
them reads a window of its own: scanning it per anchor makes one delete quadratic. These
structures are built once per evaluation (in linear or ``n log n`` time) and then answer
for one window in ``O(log n)`` with exactly what the plain scan gives, down to which of two
equal Decimals (``3.0`` or ``3.00``) is returned and the exponent of a sum:

* :class:`RangeBest`: the first index of the smallest key in a range (``min()`` of a slice).
* :class:`ExactSums`: ``sum(values[a:b], Decimal(0))`` from prefix sums, with the same digits.
* :class:`SlidingOrder`: the k-th smallest value of a window that moves (a moving median).
* :class:`LatestTrue`: the last index in a range where a costly predicate holds.

Each counts the values it touches in ``visits``, so that tests can bound the work done.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal, getcontext
from itertools import accumulate
from typing import Any, Generic, TypeVar

K = TypeVar("K")


class RangeBest(Generic[K]):
    """The index of the smallest key in any index range, the first among equals.

    A sparse table: ``n log n`` to build, two lookups per query. ``min()`` over a list also
    returns the first of equal values, so the answer is the element ``min()`` would give.
    """

    def __init__(self, keys: Sequence[K]) -> None:
        self.keys = keys
        level = list(range(len(keys)))
        self._levels = [level]
        width = 1
        while 2 * width <= len(keys):
            previous = level
            level = [
                self._better(previous[i], previous[i + width])
                for i in range(len(keys) - 2 * width + 1)
            ]
            self._levels.append(level)
            width *= 2
        self.visits = len(keys)

    def _better(self, left: int, right: int) -> int:
        """Return the index with the smaller key; the left (earlier) one among equals."""
        keys: Any = self.keys  # K only needs <, which a TypeVar cannot say without a protocol
        return right if keys[right] < keys[left] else left

    def best(self, start: int, end: int) -> int:
        """Return the first index of the smallest key in ``[start, end)`` (not empty)."""
        if end <= start:
            raise ValueError("empty range")
        level = (end - start).bit_length() - 1
        row = self._levels[level]
        return self._better(row[start], row[end - (1 << level)])


def _power_of_ten(exponent: int) -> int:
    """Return ``10 ** exponent`` for an exponent that is not negative."""
    if exponent < 0:
        raise ValueError("negative exponent")
    return int(10**exponent)


# Wide enough that moving a reading's decimal point never rounds it.
_EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)


def _exponent(value: Decimal | None) -> int:
    """Return a value's exponent, at most 0 (0 for None, an infinity or a NaN)."""
    if value is None:
        return 0
    text = str(value)  # "135", "5.40", "-0.5", "NaN"; an exponent written out: below
    if "E" in text or "e" in text:
        exponent = value.as_tuple().exponent
        return min(exponent, 0) if isinstance(exponent, int) else 0
    point = text.find(".")
    return 0 if point < 0 else point + 1 - len(text)


def coefficient(value: Decimal, exponent: int) -> int:
    """Return ``value / 10**exponent`` as an exact integer (the exponent is not above value's)."""
    return int(value.scaleb(-exponent, _EXACT))


class ExactSums:
    """``sum(values[a:b], Decimal(0))`` for any range, with the digits a plain sum has.

    Prefix sums in exact integers (every value scaled to the smallest exponent). A plain
    Decimal sum of non-negative values is exact while the total fits the context's
    precision, and then has the smallest exponent of its terms (and of ``Decimal(0)``); so
    the range's total is rescaled to that exponent. A range with a negative (or signed zero)
    value, or a total too long for the context, is summed plainly, as before.

    Readings are written with few exponents (``135``, ``5.4``, ``37.25``): the smallest
    exponent of a range is found from a prefix count per exponent, cheaper to build than a
    sparse table over all of them.
    """

    def __init__(self, values: Sequence[Decimal | None]) -> None:
        self.values = values
        # Built for every evaluation of a dense week (two components of ten thousand blood
        # pressures): the exponents are read from the text (``as_tuple`` builds a tuple of
        # digits for each), integers are scaled by ``int``, and the prefixes accumulated in C.
        exponents = [_exponent(value) for value in values]
        distinct = sorted(set(exponents)) or [0]
        self._floor = floor = distinct[0]
        if floor == 0:  # every value a whole number (exponent ≥ 0): int() is exact
            scaled = [int(value) if value is not None else 0 for value in values]
        else:
            scaled = [coefficient(value, floor) if value is not None else 0 for value in values]
        self._prefix = list(accumulate(scaled, initial=0))
        self._signed = list(
            accumulate((value is not None and value.is_signed() for value in values), initial=0)
        )
        # exponent -> how many values before each index have it (all but the largest one:
        # a range without any of the smaller exponents has the largest).
        self._counts: list[tuple[int, list[int]]] = [
            (candidate, list(accumulate((e == candidate for e in exponents), initial=0)))
            for candidate in distinct[:-1]
        ]
        self._largest = distinct[-1]
        self.visits = len(values) * len(distinct)

    def scaled_prefix(self) -> tuple[list[int], int]:
        """Return the prefix sums as exact integers and their exponent: ``prefix[b] −
        prefix[a]`` is the range's total times ``10**−exponent``, whatever its signs."""
        return self._prefix, self._floor

    def _smallest_exponent(self, start: int, end: int) -> int:
        for exponent, counts in self._counts:
            if counts[end] > counts[start]:
                return exponent
        return self._largest

    def total(self, start: int, end: int) -> Decimal:
        """Return the sum of ``values[start:end]`` (no None among them) as ``sum()`` has it."""
        if start >= end:
            return Decimal(0)
        if self._signed[end] - self._signed[start]:
            return self._plain(start, end)
        exponent = self._smallest_exponent(start, end)
        scale = _power_of_ten(exponent - self._floor)
        coefficient = (self._prefix[end] - self._prefix[start]) // scale
        if len(str(coefficient)) > getcontext().prec:
            return self._plain(start, end)  # the plain sum rounds: let it
        return Decimal(coefficient).scaleb(exponent)

    def _plain(self, start: int, end: int) -> Decimal:
        self.visits += end - start
        terms = [v for v in self.values[start:end] if v is not None]
        return sum(terms, Decimal(0))


class SlidingOrder:
    """The k-th smallest of the values in a window ``[lo, hi)`` that moves along a list.

    Values are ranked once by (value, index), the order a stable sort gives, and a Fenwick
    tree counts the ranks inside the window: ``O(log n)`` per value entering or leaving and
    per query. Windows that move forward in time cost linear time in all.
    """

    def __init__(self, values: Sequence[Decimal | None]) -> None:
        self.values = values
        order = sorted(
            (i for i, value in enumerate(values) if value is not None),
            key=lambda i: (values[i], i),
        )
        self._by_rank = order
        self._rank = [-1] * len(values)
        for rank, index in enumerate(order):
            self._rank[index] = rank
        self._tree = [0] * (len(order) + 1)
        self._top = 1 << max(len(order).bit_length() - 1, 0)
        self._lo = self._hi = 0
        self.visits = len(values)

    def _add(self, index: int, delta: int) -> None:
        self.visits += 1
        position = self._rank[index] + 1
        if position == 0:
            return  # no value: never counted
        while position < len(self._tree):
            self._tree[position] += delta
            position += position & -position

    def _move(self, lo: int, hi: int) -> None:
        """Move the window to ``[lo, hi)``: grow it first, so counts never go negative."""
        while self._hi < hi:
            self._add(self._hi, 1)
            self._hi += 1
        while self._lo > lo:
            self._lo -= 1
            self._add(self._lo, 1)
        while self._hi > hi:
            self._hi -= 1
            self._add(self._hi, -1)
        while self._lo < lo:
            self._add(self._lo, -1)
            self._lo += 1

    def kth(self, lo: int, hi: int, k: int) -> Decimal:
        """Return the k-th smallest (from 0) of the values in ``[lo, hi)``."""
        self._move(lo, hi)
        position, remaining, step = 0, k + 1, self._top
        while step:
            nxt = position + step
            if nxt < len(self._tree) and self._tree[nxt] < remaining:
                position = nxt
                remaining -= self._tree[nxt]
            step >>= 1
        value = self.values[self._by_rank[position]]
        assert value is not None
        return value

    def median(self, lo: int, hi: int) -> Decimal:
        """Return the median of ``values[lo:hi]`` (no None among them), as a sort gives it:
        the middle value, or the mean of the middle two (the earlier of equal values first)."""
        count = hi - lo
        middle = count // 2
        if count % 2:
            return self.kth(lo, hi, middle)
        return (self.kth(lo, hi, middle - 1) + self.kth(lo, hi, middle)) / 2


class LatestTrue:
    """The last index in a range where a predicate holds, each index tested at most once.

    The indices found not to hold are linked to the next one down (with path compression,
    as in union-find), so a run of them is crossed in one step the next time.
    """

    def __init__(self, holds: Callable[[int], bool]) -> None:
        self._holds = holds
        self._below: dict[int, int] = {}  # i -> j < i: nothing in (j, i] holds
        self._true: set[int] = set()
        self.visits = 0

    def latest(self, start: int, end: int) -> int | None:
        """Return the largest index in ``[start, end)`` where the predicate holds, or None."""
        index = end - 1
        crossed: list[int] = []
        while index >= start:
            self.visits += 1
            if index in self._below:
                crossed.append(index)
                index = self._below[index]
            elif index in self._true:
                break
            elif self._holds(index):
                self._true.add(index)
                break
            else:
                crossed.append(index)
                self._below[index] = index - 1
                index -= 1
        for seen in crossed:
            self._below[seen] = index
        return index if index >= start else None


__all__ = ["ExactSums", "LatestTrue", "RangeBest", "SlidingOrder"]
