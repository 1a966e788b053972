"""normalise_reading never raises, whatever JSON arrives (hypothesis)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from rules.catalogue import plausible_range
from rules.text import text_problem
from sync.normalise import (
    FIELDS,
    ItemErrorCode,
    NormalisedReading,
    canonical_json,
    normalise_reading,
)
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


LINE_TEXT = st.text(max_size=30).filter(lambda t: text_problem(t) is None)
CONTEXT_VALUES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**15) + 1, max_value=10**15 - 1)
    | st.floats(allow_nan=False, allow_infinity=False, min_value=-1e15, max_value=1e15)
    # Where the two writers part: repr's 5e-05 and 1e-07, orjson's 0.00005 and 1e-7.
    | st.floats(min_value=1e-9, max_value=1e-4)
    | LINE_TEXT
)


@settings(max_examples=300, deadline=None)
@given(
    values=st.dictionaries(LINE_TEXT, st.decimals(allow_nan=False, allow_infinity=False).map(str)),
    context=st.dictionaries(LINE_TEXT.filter(bool), CONTEXT_VALUES, max_size=6),
    unit=LINE_TEXT,
    offset=st.integers(min_value=-1080, max_value=1080),
)
def test_the_canonical_json_is_the_standard_library_s_byte_for_byte(
    values: dict[str, str], context: dict[str, Any], unit: str, offset: int
) -> None:
    """Fingerprints stored before orjson wrote the canonical text stay valid: for any content a
    reading can have (text, integers, floats of every size, true/false, null, any Unicode), the
    text is the standard library's with sorted keys, no spaces and UTF-8 as it is."""
    content = {
        "type": "glucose",
        "time": "2026-12-01T10:00:00+00:00",
        "utc_offset_minutes": offset,
        "end_time": None,
        "values": values,
        "unit": unit,
        "context": context,
    }
    expected = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert canonical_json(content) == expected.encode()
    assert (
        canonical_json(context)
        == json.dumps(context, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    )
