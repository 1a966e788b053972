"""Free text from outside: one rule for every field a person or a device writes.

Text is stored, shown to a nurse, drawn in a chart and written to an audit log, so what
cannot be shown or stored faithfully is refused at the door, with a reason: control
characters (NUL included; PostgreSQL cannot even store it), lone surrogates, and the bidi
controls that can make a note read differently from what it says. A multi-line field
(messages, notes, agreements) keeps its line breaks and tabs; CRLF becomes LF.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated

from pydantic import AfterValidator

# Embedding, override and isolate controls (Unicode bidi): "Trojan source" in a note.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_LINE_BREAKS = frozenset("\n\u2028\u2029")
_MULTI_LINE_ALLOWED = frozenset("\n\t")


def text_problem(value: str, *, multi_line: bool = False) -> str | None:
    """Return why this text is refused (naming the first bad character), or None."""
    allowed = _MULTI_LINE_ALLOWED if multi_line else frozenset()
    for position, char in enumerate(value):
        if char in allowed:
            continue
        category = unicodedata.category(char)
        if (
            category == "Cc"
            or category == "Cs"
            or char in _BIDI_CONTROLS
            or (not multi_line and char in _LINE_BREAKS)
        ):
            what = "a line break" if char in _LINE_BREAKS or char == "\r" else "a control character"
            return f"contains {what} (U+{ord(char):04X}) at position {position}"
    return None


def single_line(value: str) -> str:
    """Validate one line of text (a name, a title, a unit)."""
    problem = text_problem(value)
    if problem is not None:
        raise ValueError(f"The text {problem}.")
    return value


def multi_line(value: str) -> str:
    """Validate text that may hold line breaks and tabs (a note, a message); CRLF → LF."""
    value = value.replace("\r\n", "\n")
    problem = text_problem(value, multi_line=True)
    if problem is not None:
        raise ValueError(f"The text {problem}.")
    return value


SingleLine = Annotated[str, AfterValidator(single_line)]
"""A line of free text: no control characters, no line breaks."""

MultiLine = Annotated[str, AfterValidator(multi_line)]
"""Free text over several lines: line breaks and tabs allowed, other controls not."""

__all__ = ["MultiLine", "SingleLine", "multi_line", "single_line", "text_problem"]
