"""Whom advice speaks to: the care contact phrase, names, the proxy variant."""

from __future__ import annotations

import pytest

from rules.advice import (
    PROXY,
    Addressee,
    CareContact,
    contact_text,
    fill,
    first_name,
    genitive,
    patient_fields,
)

KARIN = CareContact(
    name="Karin Holm", role="Sjuksköterska, Hemsjukvården Exempels kommun", phone="08-465 004 20"
)
TEAM = CareContact(name="Hemsjukvården, team Norr", phone="08-465 004 20", team=True)
ASTA = "Asta"


@pytest.mark.parametrize(
    ("contact", "lang", "audience", "expected"),
    [
        (
            KARIN,
            "sv",
            "patient",
            "Karin Holm (sjuksköterska, Hemsjukvården Exempels kommun) på telefon 08-465 004 20",
        ),
        (
            KARIN,
            "en",
            "patient",
            "Karin Holm (Sjuksköterska, Hemsjukvården Exempels kommun) on 08-465 004 20",
        ),
        (
            KARIN,
            "sv",
            PROXY,
            "Karin Holm (sjuksköterska, Hemsjukvården Exempels kommun) på telefon 08-465 004 20",
        ),
        (
            TEAM,
            "sv",
            "patient",
            "ditt vårdteam (Hemsjukvården, team Norr) på telefon 08-465 004 20",
        ),
        (TEAM, "sv", PROXY, "Astas vårdteam (Hemsjukvården, team Norr) på telefon 08-465 004 20"),
        (TEAM, "en", PROXY, "Asta's care team (Hemsjukvården, team Norr) on 08-465 004 20"),
        (None, "sv", "patient", "din vårdcentral eller ditt vårdteam"),
        (None, "sv", PROXY, "Astas vårdcentral eller vårdteam"),
        (None, "en", "patient", "your health centre or care team"),
        (None, "en", PROXY, "Asta's health centre or care team"),
        (CareContact(name="Karin Holm"), "sv", "patient", "Karin Holm"),
        (
            CareContact(phone="08-465 004 10"),
            "sv",
            "patient",
            "ditt vårdteam på telefon 08-465 004 10",
        ),
    ],
)
def test_contact_text(contact: CareContact | None, lang: str, audience: str, expected: str) -> None:
    addressee = Addressee(patient_name=ASTA, contact=contact)
    assert contact_text(addressee, lang, audience) == expected  # type: ignore[arg-type]


def test_names_and_genitives() -> None:
    assert first_name("Asta Berglund") == "Asta" and first_name("  ") == ""
    assert genitive("Asta", "sv") == "Astas" and genitive("Hans", "sv") == "Hans"
    assert genitive("Asta", "en") == "Asta's" and genitive("Hans", "en") == "Hans'"
    assert patient_fields(Addressee(), "sv") == {
        "patient": "patienten",
        "patient_gen": "patientens",
    }


def test_fill_capitalises_a_value_that_starts_a_sentence() -> None:
    fields = {"contact": "ditt vårdteam", "value": "82,4 kg"}
    assert fill("$contact svarar. Ring $contact. Kostar $$5.", fields) == (
        "Ditt vårdteam svarar. Ring ditt vårdteam. Kostar $5."
    )
    assert fill("Vikt: $value, ${value}!", fields) == "Vikt: 82,4 kg, 82,4 kg!"
    assert fill("$unknown stays", fields) == "$unknown stays"
