"""Whom advice speaks to: the care contact phrase, names, the proxy variant."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

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
from rules.engine import evaluate, plan_addressee
from rules.engine.selection import plan_runs
from rules.language import load_library
from rules.plan import Contact, PlanSpec
from tests.rules.factories import T0, bp, plan, reading

SAMPLE_PLANS = Path(__file__).parents[2] / "sample_data" / "plans"

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


def test_astas_weight_gain_names_her_own_contact_from_the_plan() -> None:
    """Acceptance (issue 9, item 5): the advice names hemsjukvården and its phone number."""
    body = json.loads((SAMPLE_PLANS / "asta.json").read_text(encoding="utf-8"))
    plan_spec = PlanSpec.model_validate({**body, "version": 3})
    first = reading("weight", "68.4", at=T0, reading_id="w1")
    latest = reading("weight", "70.6", at=T0 + timedelta(days=2), reading_id="w2")
    findings = evaluate(
        plan_spec,
        [first, latest],
        new_reading_ids={"w2"},
        now=T0,
        addressee=plan_addressee(plan_spec, first_name("Asta Berglund")),
    )
    (finding,) = [f for f in findings if f.rule_id == "weight-gain-hf"]
    advice = finding.advice
    assert advice is not None
    assert advice.body["sv"].startswith("Din vikt är nu 70,6 kg. Det är 2,2 kg mer")
    for text in (advice.body["sv"], advice.proxy_body["sv"]):
        assert (
            "Ring Karin Holm (sjuksköterska, Hemsjukvården Exempels kommun) "
            "på telefon 08-465 004 20 i dag." in text
        )
    assert advice.proxy_title == {
        "sv": "Astas vikt har ökat snabbt",
        "en": "Asta's weight has risen quickly",
    }
    assert advice.proxy_body["en"].startswith("Asta's weight is now 70.6 kg.")


def test_without_an_addressee_the_plan_contact_is_named() -> None:
    plan_spec = plan("bp-very-high")
    with_contact = plan_spec.model_copy(
        update={"contact": Contact(name="Eva Ek", role="Sjuksköterska", phone="08-465 004 10")}
    )
    r = bp("185", "100")
    (finding,) = evaluate(with_contact, [r], new_reading_ids={r.id}, now=T0)
    assert finding.advice is not None
    assert "ring Eva Ek (sjuksköterska) på telefon 08-465 004 10 i dag" in finding.advice.body["sv"]
    (bare,) = evaluate(plan_spec, [r], new_reading_ids={r.id}, now=T0)
    assert bare.advice is not None
    assert "ring din vårdcentral eller ditt vårdteam i dag" in bare.advice.body["sv"]
    assert "Patientens blodtryck var 185/100 mmHg." in bare.advice.proxy_body["sv"]


def test_a_run_fills_each_advice_once_per_value_and_change() -> None:
    """Within one run (one evaluation), advice is filled once per (value, change): the same
    pair gives the same texts, another value or another change its own."""
    (run,) = plan_runs(plan("weight-gain-hf"), load_library())
    spec = run.rule.advice
    assert spec is not None
    value = {"sv": "84,0 kg", "en": "84.0 kg"}
    first = run._advice(spec, value, {"sv": "2,1 kg", "en": "2.1 kg"})
    again = run._advice(spec, dict(value), {"sv": "2,1 kg", "en": "2.1 kg"})
    other_change = run._advice(spec, value, {"sv": "3,0 kg", "en": "3.0 kg"})
    other_value = run._advice(
        spec, {"sv": "85,0 kg", "en": "85.0 kg"}, {"sv": "2,1 kg", "en": "2.1 kg"}
    )
    assert first is again
    assert first is not None and other_change is not None and other_value is not None
    assert "2,1 kg" in first.body["sv"] and "3,0 kg" in other_change.body["sv"]
    assert "84,0 kg" in first.body["sv"] and "85,0 kg" in other_value.body["sv"]
    assert "2.1 kg" in first.body["en"] and "3.0 kg" in other_change.proxy_body["en"]
