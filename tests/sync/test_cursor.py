"""Change-feed cursors: opaque, signed, bound to one patient."""

from __future__ import annotations

import re

import pytest

from sync.cursor import MAX_POSITION, InvalidCursor, decode_cursor, encode_cursor

KEY = b"k" * 32
PATIENT = "3f2c6a1e-0000-4000-8000-000000000001"


@pytest.mark.parametrize("position", [0, 1, 500, 2**32, MAX_POSITION])
def test_round_trip(position: int) -> None:
    token = encode_cursor(PATIENT, position, key=KEY)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", token)
    assert str(position) not in token or position < 10
    assert decode_cursor(token, PATIENT, key=KEY) == position


def test_another_patient_or_key_is_refused() -> None:
    token = encode_cursor(PATIENT, 42, key=KEY)
    with pytest.raises(InvalidCursor):
        decode_cursor(token, "3f2c6a1e-0000-4000-8000-000000000002", key=KEY)
    with pytest.raises(InvalidCursor):
        decode_cursor(token, PATIENT, key=b"other key")


def test_every_single_character_change_is_refused() -> None:
    token = encode_cursor(PATIENT, 42, key=KEY)
    for index, char in enumerate(token):
        for replacement in sorted({"A", "B", "_", "+", "/"} - {char}):
            tampered = token[:index] + replacement + token[index + 1 :]
            with pytest.raises(InvalidCursor):
                decode_cursor(tampered, PATIENT, key=KEY)


@pytest.mark.parametrize(
    "token", ["", "!!!!", "not a cursor", "åäö", "A" * 10, "A" * 200, "AAAA====AAAA"]
)
def test_malformed_tokens_are_refused(token: str) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(token, PATIENT, key=KEY)


def test_truncated_and_extended_tokens_are_refused() -> None:
    token = encode_cursor(PATIENT, 42, key=KEY)
    for bad in (token[:-4], token + "AAAA", token[4:]):
        with pytest.raises(InvalidCursor):
            decode_cursor(bad, PATIENT, key=KEY)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        encode_cursor(PATIENT, -1, key=KEY)
    with pytest.raises(ValueError):
        encode_cursor(PATIENT, MAX_POSITION + 1, key=KEY)
    with pytest.raises(ValueError):
        encode_cursor(PATIENT, 1, key=b"")
    assert issubclass(InvalidCursor, ValueError)
