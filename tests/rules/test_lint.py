"""The rule linter: the library is clean, and each check catches the rule it is for."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from rules.language import LIBRARY_DIR, RuleLibrary, ThresholdRule, load_library, parse_rule
from rules.lint import LintIssue, lint, lint_files, lint_rule

LIBRARY = load_library()


def test_the_library_is_clean() -> None:
    assert lint(LIBRARY) == []
    assert lint_files(LIBRARY_DIR) == []


def _data(rule_id: str) -> dict[str, Any]:
    rule = LIBRARY.get(rule_id)
    assert rule is not None
    return copy.deepcopy(rule.model_dump(mode="json", exclude_none=True))


def _codes(issues: list[LintIssue]) -> set[tuple[str, str]]:
    return {(i.code, i.severity) for i in issues}


def _broken(change: str) -> dict[str, Any]:
    match change:
        case "short source":
            data = _data("bp-low")
            data["source"] = "Plan parameter."
        case "empty english":
            data = _data("bp-low")
            data["advice"]["body"]["en"] = "..."
        case "copied translation":
            data = _data("bp-low")
            data["description"]["en"] = data["description"]["sv"]
        case "placeholder in one language":
            data = _data("bp-low")
            data["advice"]["body"]["en"] = "Your blood pressure was low. Call 1177."
        case "band behind a more severe one":
            data = _data("peak-flow-zone")
            data["params"]["yellow_below"].update(default=40, min=20)
        case "same-severity bands overlap":
            data = _data("peak-flow-zone")
            data["bands"][1]["severity"] = "moderate"
        case "plan can hide a band":
            data = _data("peak-flow-zone")
            data["params"]["red_below"]["max"] = 70
        case "conditions that never hold together":
            data = _data("pulse-abnormal")
            data["match"] = "all"
        case "unused parameter":
            data = _data("bp-low")
            data["params"]["spare"] = copy.deepcopy(data["params"]["systolic_low"])
        case _:
            raise AssertionError(change)
    return data


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ("short source", ("missing_source", "error")),
        ("empty english", ("missing_translation", "error")),
        ("copied translation", ("missing_translation", "error")),
        ("placeholder in one language", ("missing_translation", "error")),
        ("band behind a more severe one", ("unreachable_band", "error")),
        ("same-severity bands overlap", ("overlapping_bands", "error")),
        ("plan can hide a band", ("unreachable_band", "warning")),
        ("conditions that never hold together", ("unreachable_conditions", "error")),
        ("unused parameter", ("unused_param", "warning")),
    ],
)
def test_each_check_catches_its_rule(change: str, expected: tuple[str, str]) -> None:
    issues = lint_rule(parse_rule(_broken(change)))
    assert expected in _codes(issues), issues
    assert {code for code, _ in _codes(issues)} == {expected[0]}
    assert all(i.message for i in issues)


def test_schema_is_checked_even_for_rules_built_around_validation() -> None:
    rule = LIBRARY.get("bp-low")
    assert isinstance(rule, ThresholdRule)
    sneaky = ThresholdRule.model_construct(**{**dict(rule), "cooldown_minutes": -5})
    issues = lint(RuleLibrary(rules=(sneaky,)))
    assert ("schema", "error") in _codes(issues)


def test_lint_files_reports_files_that_do_not_load(tmp_path: Path) -> None:
    (tmp_path / "bp-low.yaml").write_text(yaml.safe_dump(_data("bp-low"), allow_unicode=True))
    (tmp_path / "broken.yaml").write_text("id: [unclosed")
    (tmp_path / "renamed.yaml").write_text(yaml.safe_dump(_data("bp-very-high")))
    bad = _data("glucose-very-low")
    (tmp_path / "glucose-very-low.yaml").write_text(yaml.safe_dump(bad, allow_unicode=True))
    invalid = _data("spo2-low")
    invalid["kind"] = "window_mean"
    (tmp_path / "spo2-low.yaml").write_text(yaml.safe_dump(invalid, allow_unicode=True))
    issues = lint_files(tmp_path)
    assert {(i.rule_id, i.code) for i in issues} == {
        ("broken", "schema"),
        ("renamed", "schema"),
        ("spo2-low", "schema"),
        ("glucose-very-low", "schema"),  # supersedes glucose-low, which is not there
    }
