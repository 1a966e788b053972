"""The default rule library: every file loads, cites its source, speaks Swedish and English."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rules.model import LIBRARY_DIR, ThresholdRule, load_library

FILES = sorted(LIBRARY_DIR.glob("*.yaml"))
V1_RULES = {
    "bp-very-high",
    "bp-low",
    "glucose-low",
    "glucose-very-low",
    "spo2-low",
    "pulse-abnormal",
    "temperature-fever",
}


def test_the_v1_rules_are_there() -> None:
    assert {rule.id for rule in load_library().rules} == V1_RULES
    assert {file.stem for file in FILES} == V1_RULES


def test_the_default_library_is_loaded_once() -> None:
    assert load_library() is load_library()


@pytest.mark.parametrize("file", FILES, ids=lambda f: f.stem)
def test_rule_file(file: Path) -> None:
    rule = load_library().get(file.stem)
    assert rule is not None
    # Every kind shipped must be one the evaluator evaluates.
    assert isinstance(rule, ThresholdRule)
    assert rule.source.strip()
    texts = [rule.title, rule.description]
    texts += [p.description for p in rule.params.values()]
    if rule.advice is not None:
        texts += [rule.advice.title, rule.advice.body]
    for text in texts:
        assert text.sv.strip() and text.en.strip()
    assert rule.advice is not None or rule.flag is not None
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
    ],
)
def test_advice_and_flag_as_clinical_table(rule_id: str, priority: str, severity: str) -> None:
    rule = load_library().get(rule_id)
    assert rule is not None and rule.advice is not None and rule.flag is not None
    assert rule.advice.priority == priority
    assert rule.flag.severity == severity


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
