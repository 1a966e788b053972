"""normalise_reading never raises, whatever JSON arrives (hypothesis)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from rules.catalogue import plausible_range
from sync.normalise import FIELDS, ItemErrorCode, NormalisedReading, normalise_reading
from tests.sync.factories import BASE, NOW, raw

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.decimals() | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
CODES = {code.value for code in ItemErrorCode}


def _check(item: Any) -> None:
    result = normalise_reading(item, now=NOW)
    if isinstance(result, NormalisedReading):
        for name, value in result.values.items():
            bounds = plausible_range(result.type, name, context=result.context, interval=None)
            assert bounds is not None
            if result.type != "steps":
                assert bounds[0] <= value <= bounds[1]
    else:
        assert result, "a rejection carries at least one error"
        for error in result:
            assert error.code in CODES and error.message


@settings(max_examples=200, deadline=None)
@given(item=JSON)
def test_any_json_is_answered(item: Any) -> None:
    _check(item)


@settings(max_examples=300, deadline=None)
@given(
    type_name=st.sampled_from(sorted(BASE)),
    field=st.sampled_from(sorted(FIELDS)),
    value=JSON,
)
def test_any_field_value_is_answered(type_name: str, field: str, value: Any) -> None:
    _check(raw(type_name, **{field: value}))
