"""The default rule library: every file loads, cites its source, speaks Swedish and English."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from rules.language import (
    LIBRARY_DIR,
    READING_KINDS,
    TIME_KINDS,
    AdviceSpec,
    load_library,
    validate_plan,
)
from rules.plan import PlanBody

FILES = sorted(LIBRARY_DIR.glob("*.yaml"))
CLINICAL_RULES = {  # CLINICAL.md §2: rule ids are part of the product
    "bp-very-high",
    "bp-home-mean-high",
    "bp-low",
    "glucose-low",
    "glucose-very-low",
    "glucose-high",
    "weight-gain-hf",
    "spo2-low",
    "pulse-abnormal",
    "temperature-fever",
    "peak-flow-zone",
    "missing-readings",
    "cgm-tir-low",
    "cgm-tbr-high",
}
EXTRA_RULES = {
    "hf-weight-and-breathlessness",
    # Issue 9, clinical safety v2 (CLINICAL.md §7).
    "glucose-sustained-high",
    "ketones-high",
    "copd-deterioration",
    "hf-weight-gain-week",
}
SAMPLE_PLANS = sorted((Path(__file__).parents[2] / "sample_data" / "plans").glob("*.json"))


def test_the_clinical_rules_are_there() -> None:
    assert {rule.id for rule in load_library().rules} == CLINICAL_RULES | EXTRA_RULES
    assert {file.stem for file in FILES} == CLINICAL_RULES | EXTRA_RULES


def test_every_kind_is_shipped() -> None:
    assert {rule.kind for rule in load_library().rules} == set(READING_KINDS) | set(TIME_KINDS)


@pytest.mark.parametrize("file", SAMPLE_PLANS, ids=lambda f: f.name)
def test_sample_plans_are_valid_with_the_whole_library(file: Path) -> None:
    body = PlanBody.model_validate(json.loads(file.read_text(encoding="utf-8")))
    assert validate_plan(body, load_library()) == []
    assert all(load_library().get(r.rule) is not None for r in body.rules)


def test_the_default_library_is_loaded_once() -> None:
    assert load_library() is load_library()


@pytest.mark.parametrize("file", FILES, ids=lambda f: f.stem)
def test_rule_file(file: Path) -> None:
    rule = load_library().get(file.stem)
    assert rule is not None
    # Every kind shipped must be one the evaluator evaluates.
    assert rule.kind in READING_KINDS + TIME_KINDS
    assert rule.time_based is (rule.kind in TIME_KINDS)
    assert rule.source.strip()
    for text in rule.texts():
        assert text.sv.strip() and text.en.strip()
        assert text.sv != text.en or len(text.sv) < 12  # translated, not copied
    assert rule.advice is not None or rule.flag is not None or rule.kind == "bands"
    for name, spec in rule.params.items():
        assert spec.is_flag or spec.min is not None and spec.max is not None, name
    # The raw file holds no field the model would silently drop.
    raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    assert raw["id"] == file.stem


@pytest.mark.parametrize(
    ("rule_id", "priority", "severity"),
    [
        ("bp-very-high", "urgent", "high"),
        ("bp-low", "routine", "moderate"),
        ("glucose-low", "urgent", "low"),
        ("glucose-very-low", "urgent", "high"),
        ("spo2-low", "urgent", "high"),
        ("pulse-abnormal", "routine", "moderate"),
        ("temperature-fever", "routine", "low"),
        ("bp-home-mean-high", "routine", "moderate"),
        ("glucose-high", "routine", "moderate"),
        ("weight-gain-hf", "urgent", "moderate"),
        ("missing-readings", "routine", "low"),
        ("cgm-tir-low", None, "moderate"),
        ("cgm-tbr-high", "routine", "high"),
        ("glucose-sustained-high", "urgent", "moderate"),
        ("copd-deterioration", "urgent", "high"),
        ("hf-weight-gain-week", "urgent", "moderate"),
    ],
)
def test_advice_and_flag_as_clinical_table(
    rule_id: str, priority: str | None, severity: str
) -> None:
    rule = load_library().get(rule_id)
    assert rule is not None and rule.flag is not None
    assert (rule.advice.priority if rule.advice is not None else None) == priority
    assert rule.flag.severity == severity


def test_peak_flow_bands_as_clinical_table() -> None:
    rule = load_library().get("peak-flow-zone")
    assert rule is not None and rule.kind == "bands"
    bands = {b.name: (b.severity, b.advice.priority if b.advice else None) for b in rule.bands}
    assert bands == {"yellow": ("moderate", "routine"), "red": ("high", "urgent")}


def test_ketone_bands_as_clinical_table() -> None:
    rule = load_library().get("ketones-high")
    assert rule is not None and rule.kind == "bands"
    bands = {
        b.name: (
            b.severity,
            b.advice.priority if b.advice else None,
            str(rule.params[b.param].default),
        )
        for b in rule.bands
    }
    assert bands == {
        "raised": ("low", "urgent", "0.6"),
        "risk": ("moderate", "urgent", "1.5"),
        "emergency": ("high", "urgent", "3.0"),
    }
    emergency = rule.bands[-1].advice
    assert emergency is not None
    assert "112" in emergency.title.sv and "112" in emergency.body.en
    assert rule.cooldown_minutes == 0  # a rise to the next band is never silenced


def test_glucose_thresholds_keep_their_published_pairs() -> None:
    library = load_library()
    low, very_low = library.get("glucose-low"), library.get("glucose-very-low")
    assert low is not None and very_low is not None
    assert str(low.params["threshold"].default) == "3.9"
    assert low.params["threshold"].equivalents == {"mg/dL": 70}
    assert str(very_low.params["threshold"].default) == "3.0"
    assert very_low.params["threshold"].equivalents == {"mg/dL": 54}
    assert low.flag is not None and (low.flag.min_count, low.flag.window_hours) == (2, 168)


def test_urgent_advice_names_where_to_call() -> None:
    for rule in load_library().rules:
        if rule.advice is not None and rule.id.startswith(("bp-", "spo2", "pulse", "temp")):
            assert "1177" in rule.advice.body.sv and "1177" in rule.advice.body.en


def _advice_specs() -> list[tuple[str, AdviceSpec]]:
    return [(rule.id, spec) for rule in load_library().rules for spec in rule.advice_specs()]


@pytest.mark.parametrize(("rule_id", "spec"), _advice_specs(), ids=lambda v: str(v)[:20])
def test_every_advice_speaks_to_proxies_about_the_patient(rule_id: str, spec: AdviceSpec) -> None:
    assert spec.proxy_title is not None and spec.proxy_body is not None, rule_id
    for lang in ("sv", "en"):
        assert "$patient" in spec.proxy_title.get(lang) + spec.proxy_body.get(lang)


@pytest.mark.parametrize(("rule_id", "spec"), _advice_specs(), ids=lambda v: str(v)[:20])
def test_advice_that_tells_the_patient_to_call_names_the_contact(
    rule_id: str, spec: AdviceSpec
) -> None:
    for text in (spec.body, spec.proxy_body):
        assert text is not None
        for lang in ("sv", "en"):
            assert "$contact" in text.get(lang), (rule_id, lang)


def test_a_high_risk_fever_has_advice_that_matches_its_flag() -> None:
    rule = load_library().get("temperature-fever")
    assert rule is not None and rule.flag is not None and rule.flag.escalate is not None
    escalated = rule.flag.escalate.advice
    assert escalated is not None and escalated.priority == "urgent"
    assert "i dag" in escalated.body.sv and "today" in escalated.body.en
    assert "sepsis" in escalated.body.sv and "sepsis" in escalated.body.en
    assert "Sepsis" in rule.source and "1177" in rule.source
