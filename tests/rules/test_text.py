"""The one text type (rules/text.py): what it refuses, what it keeps, and where it points."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules.text import multi_line, single_line, text_problem

FORBIDDEN_ANYWHERE = ["\x00", "\x1b", "\x7f", "\x85", "\r", "\u202e", "\u2066", "\ud800"]


def _allowed(char: str, *, multi: bool) -> bool:
    if multi and char in "\n\t":
        return True
    return (
        unicodedata.category(char) not in ("Cc", "Cs")
        and char not in ("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
        and (multi or char not in "\u2028\u2029")
    )


@given(st.text())
def test_text_is_refused_exactly_when_it_holds_a_forbidden_character(value: str) -> None:
    for multi in (False, True):
        bad = [i for i, c in enumerate(value) if not _allowed(c, multi=multi)]
        problem = text_problem(value, multi_line=multi)
        if bad:
            assert problem is not None and problem.endswith(f"at position {bad[0]}")
        else:
            assert problem is None


@pytest.mark.parametrize("char", FORBIDDEN_ANYWHERE)
def test_controls_are_refused_in_both_kinds(char: str) -> None:
    with pytest.raises(ValueError, match=f"U\\+{ord(char):04X}"):
        single_line(f"a{char}b")
    if char != "\r":  # a CR alone is refused; CRLF becomes LF
        with pytest.raises(ValueError, match=f"U\\+{ord(char):04X}"):
            multi_line(f"a{char}b")


def test_line_breaks_and_tabs_belong_to_multi_line_text_only() -> None:
    assert multi_line("Ringde.\r\nMäter igen.\tEva") == "Ringde.\nMäter igen.\tEva"
    for char in "\n\t\u2028":
        with pytest.raises(ValueError):
            single_line(f"Allan{char}Andersson")
    assert single_line("Åsa Öberg-Ek, 84 år ✓") == "Åsa Öberg-Ek, 84 år ✓"
