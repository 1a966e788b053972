"""Every advice text of the library filled in, for review: ``docs/advice-texts.md``.

Each rule's advice (its own, its escalation's, each band's) in Swedish and English, to the
patient and to a proxy, filled with a realistic reading of the rule, Asta's first name and
her care contact from the sample plan. ``selfcare rules texts`` writes the file; a test
regenerates it, compares it with the committed one and scans every text for what a nurse
would not sign (:data:`FORBIDDEN`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from rules.advice import PATIENT, PROXY, Addressee, Audience, CareContact, contact_text, fill
from rules.advice import patient_fields as _patient_fields
from rules.catalogue import CATALOGUE, MeasurementType, shown, to_canonical
from rules.engine import LANGUAGES, number_text, reading_text
from rules.facts import ReadingFact
from rules.language import AdviceSpec, LocalText, RuleLibrary, load_library

ASTA = Addressee(
    patient_name="Asta",
    contact=CareContact(
        name="Karin Holm",
        role="Sjuksköterska, Hemsjukvården Exempels kommun",
        phone="08-465 004 20",
    ),
)
"""The addressee of the table: Asta and her contact in ``sample_data/plans/asta.json``."""

# A reading that makes each rule fire (value, unit); the change of a delta rule.
_SAMPLES: Mapping[str, tuple[str, object, str]] = {
    "bp-very-high": ("blood_pressure", ("186", "104"), "mm[Hg]"),
    "bp-home-mean-high": ("blood_pressure", ("141", "87"), "mm[Hg]"),
    "bp-low": ("blood_pressure", ("86", "54"), "mm[Hg]"),
    "glucose-low": ("glucose", "3.4", "mmol/L"),
    "glucose-very-low": ("glucose", "49", "mg/dL"),
    "glucose-high": ("glucose", "16.8", "mmol/L"),
    "weight-gain-hf": ("weight", "70.647", "kg"),
    "hf-weight-and-breathlessness": ("weight", "70.6", "kg"),
    "spo2-low": ("spo2", "0.86", "1"),
    "pulse-abnormal": ("pulse", "128", "bpm"),
    "temperature-fever": ("temperature", "39.4", "Cel"),
    "peak-flow-zone": ("peak_flow", "190", "L/min"),
}
_CHANGE = {"weight-gain-hf": Decimal("2.075828")}  # kg, as a conversion from pounds leaves it
_AT = datetime(2026, 12, 3, 7, 30, tzinfo=UTC)

FORBIDDEN: Mapping[str, re.Pattern[str]] = {
    "1177 or 112 without saying when": re.compile(r"1177,? (eller|or) 112"),
    "a promise the service cannot keep": re.compile(
        r"kommer att (kontakta|ringa|höra av sig)|will (contact|call|get in touch with) you"
    ),
    "more than one decimal on kg": re.compile(r"\d[.,]\d{2,} ?kg"),
    "an unfilled placeholder": re.compile(r"\$"),
    "'ring 1177 eller din vårdcentral' with no order": re.compile(r"1177 eller din"),
}
"""Patterns no filled text may match, in any language or variant."""

FORBIDDEN_SV = re.compile(r"slag/min|\bbpm\b")
"""Rates in Swedish are 'slag per minut'."""

FORBIDDEN_PROXY: Mapping[str, re.Pattern[str]] = {
    "sv": re.compile(r"\b(din|ditt|dina|du|dig)\b", re.IGNORECASE),
    "en": re.compile(r"\b(your|you)\b", re.IGNORECASE),
}
"""A proxy's text speaks about the patient, never to them."""


@dataclass(frozen=True)
class FilledText:
    """One advice filled in: which rule and variant, language, audience, title and body."""

    rule_id: str
    variant: str  # "advice", "escalated", or a band's name
    lang: str
    audience: Audience
    title: str
    body: str


def _reading(rule_id: str) -> ReadingFact | None:
    sample = _SAMPLES.get(rule_id)
    if sample is None:
        return None
    type_name, value, unit = sample
    if isinstance(value, tuple):
        original = {"systolic": Decimal(value[0]), "diastolic": Decimal(value[1])}
    else:
        original = {"value": Decimal(str(value))}
    canonical = CATALOGUE[MeasurementType(type_name)].canonical_unit
    return ReadingFact(
        id=f"sample-{rule_id}",
        type=type_name,
        time=_AT,
        values={k: to_canonical(type_name, v, unit) for k, v in original.items()},
        unit=canonical,
        original_values=original,
        original_unit=unit,
    )


def _value(rule_id: str, lang: str) -> str:
    reading = _reading(rule_id)
    if reading is not None:
        return reading_text(reading, lang)
    if rule_id == "missing-readings":
        return "vikt" if lang == "sv" else "weight"
    return f"{number_text(Decimal('6.2'), lang)} %"  # a CGM metric


def _specs(library: RuleLibrary) -> Iterator[tuple[str, str, AdviceSpec]]:
    for rule in sorted(library.rules, key=lambda r: r.id):
        if rule.advice is not None:
            yield rule.id, "advice", rule.advice
        escalation = rule.flag.escalate if rule.flag is not None else None
        if escalation is not None and escalation.advice is not None:
            yield rule.id, "escalated", escalation.advice
        for band in getattr(rule, "bands", ()):
            if band.advice is not None:
                yield rule.id, band.name, band.advice


def filled_texts(library: RuleLibrary | None = None) -> list[FilledText]:
    """Return every advice of the library filled in, per language and audience."""
    library = load_library() if library is None else library
    texts: list[FilledText] = []
    for rule_id, variant, spec in _specs(library):
        for lang in LANGUAGES:
            fields = {"value": _value(rule_id, lang)}
            if rule_id in _CHANGE:
                change = shown("weight", "kg", _CHANGE[rule_id])
                fields["change"] = f"{number_text(change, lang)} kg"
            for audience in (PATIENT, PROXY):
                own = dict(fields, contact=contact_text(ASTA, lang, audience))
                title: LocalText = spec.title
                body: LocalText = spec.body
                if audience == PROXY:
                    own.update(_patient_fields(ASTA, lang))
                    title = spec.proxy_title or spec.title
                    body = spec.proxy_body or spec.body
                texts.append(
                    FilledText(
                        rule_id=rule_id,
                        variant=variant,
                        lang=lang,
                        audience=audience,
                        title=fill(title.get(lang), own),
                        body=fill(body.get(lang), own),
                    )
                )
    return texts


def problems(text: FilledText) -> list[str]:
    """Return what a reviewer would refuse in one filled text (empty: none)."""
    found: list[str] = []
    whole = f"{text.title}\n{text.body}"
    for name, pattern in FORBIDDEN.items():
        if pattern.search(whole):
            found.append(name)
    if text.lang == "sv" and FORBIDDEN_SV.search(whole):
        found.append("bpm or slag/min in Swedish")
    if re.search(r"\blb\b", whole) and "kg" in whole:
        found.append("pounds beside kilograms")
    if text.audience == PROXY and FORBIDDEN_PROXY[text.lang].search(whole):
        found.append("a proxy's text speaks to the patient")
    chest = "bröstet" if text.lang == "sv" else "chest pain"
    if chest in whole and "112" not in whole:
        found.append("chest pain without 112")
    return found


def advice_table(library: RuleLibrary | None = None) -> str:
    """Return the Markdown review table of every advice text."""
    lines = [
        "# Every advice text, filled in",
        "",
        "Generated by `selfcare rules texts` from `rules/library/*.yaml` "
        "(`rules/advice_table.py`); do not edit by hand. Each advice of each rule (its own, "
        "the escalated one, each band's) in Swedish and English, to the patient and to a "
        "proxy, filled with a realistic reading, Asta's first name and her care contact "
        "(`sample_data/plans/asta.json`). `tests/rules/test_advice_table.py` checks that "
        "this file is current and that no text matches a forbidden pattern.",
        "",
    ]
    current = ""
    for text in filled_texts(library):
        if text.rule_id != current:
            current = text.rule_id
            lines += [f"## {current}", ""]
            lines += ["| variant | lang | to | title | body |", "|---|---|---|---|---|"]
        cells = [text.variant, text.lang, text.audience, text.title, text.body]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    out: list[str] = []
    for line in lines:
        if line.startswith("## ") and out and out[-1] != "":
            out.append("")
        out.append(line)
    return "\n".join(out) + "\n"


__all__ = ["ASTA", "FORBIDDEN", "FilledText", "advice_table", "filled_texts", "problems"]
