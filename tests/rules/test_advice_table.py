"""docs/advice-texts.md is current, and no filled advice text is one a nurse would refuse."""

from __future__ import annotations

from pathlib import Path

import pytest

from rules.advice import PATIENT, PROXY
from rules.advice_table import FilledText, advice_table, filled_texts, problems

DOC = Path(__file__).parents[2] / "docs" / "advice-texts.md"
TEXTS = filled_texts()


def test_the_committed_table_is_current() -> None:
    assert DOC.read_text(encoding="utf-8") == advice_table(), (
        "run `.venv/bin/selfcare rules texts` and commit docs/advice-texts.md"
    )


def test_every_advice_is_in_both_languages_and_to_both_readers() -> None:
    keys = {(t.rule_id, t.variant) for t in TEXTS}
    for key in keys:
        got = {(t.lang, t.audience) for t in TEXTS if (t.rule_id, t.variant) == key}
        assert got == {(lang, a) for lang in ("sv", "en") for a in (PATIENT, PROXY)}, key
    assert ("temperature-fever", "escalated") in keys


@pytest.mark.parametrize(
    "text", TEXTS, ids=lambda t: f"{t.rule_id}-{t.variant}-{t.lang}-{t.audience}"
)
def test_no_forbidden_pattern(text: FilledText) -> None:
    assert problems(text) == []


@pytest.mark.parametrize(
    ("title", "body", "lang", "audience", "problem"),
    [
        ("x", "Ring 1177 eller 112.", "sv", PATIENT, "1177 or 112 without saying when"),
        (
            "x",
            "Din sjuksköterska kommer att kontakta dig.",
            "sv",
            PATIENT,
            "a promise the service cannot keep",
        ),
        ("x", "Your nurse will contact you.", "en", PATIENT, "a promise the service cannot keep"),
        ("x", "Vikten ökade 2,075828 kg.", "sv", PATIENT, "more than one decimal on kg"),
        ("x", "Vikt 180 lb (81,6 kg).", "sv", PATIENT, "pounds beside kilograms"),
        ("x", "Puls 128 bpm.", "sv", PATIENT, "bpm or slag/min in Swedish"),
        ("x", "Ring $contact.", "sv", PATIENT, "an unfilled placeholder"),
        ("x", "Ditt blodtryck var högt.", "sv", PROXY, "a proxy's text speaks to the patient"),
        ("x", "Your pulse was 128.", "en", PROXY, "a proxy's text speaks to the patient"),
        ("x", "Vid ont i bröstet: ring 1177.", "sv", PATIENT, "chest pain without 112"),
    ],
)
def test_the_patterns_catch_what_they_name(
    title: str, body: str, lang: str, audience: str, problem: str
) -> None:
    text = FilledText("r", "advice", lang, audience, title, body)  # type: ignore[arg-type]
    assert problem in problems(text)
