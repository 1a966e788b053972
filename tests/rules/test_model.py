"""The rule language: rule validation, plan validation and parameter resolution."""

from __future__ import annotations

import copy
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from rules.language import (
    LibraryError,
    Op,
    PlanError,
    PlanParamError,
    ResolvedParam,
    RuleLibrary,
    load_library,
    parse_rule,
    resolve_params,
    validate_plan,
)
from rules.plan import PlanBody, PlanRule, Quantity
from tests.rules.factories import qty

LIBRARY = load_library()


def _rule_data(rule_id: str = "glucose-low") -> dict[str, Any]:
    rule = LIBRARY.get(rule_id)
    assert rule is not None
    return rule.model_dump(mode="json", exclude_none=True)


# --- rules ------------------------------------------------------------------------------


def test_a_rule_round_trips_through_json() -> None:
    for rule in LIBRARY.rules:
        assert parse_rule(rule.model_dump(mode="json")) == rule


def _broken(change: str) -> dict[str, Any]:
    data = copy.deepcopy(_rule_data("temperature-fever"))
    match change:
        case "unknown kind":
            data["kind"] = "window_mean"
        case "no source":
            data["source"] = "  "
        case "no english title":
            del data["title"]["en"]
        case "unknown field":
            data["expression"] = "value < 3"
        case "missing param":
            data["conditions"][0]["param"] = "nope"
        case "flag param in condition":
            data["conditions"][0]["param"] = "high_risk"
        case "wrong component":
            data["conditions"][0]["component"] = "systolic"
        case "unit of another type":
            data["params"]["threshold"]["unit"] = "mmol/L"
        case "default out of range":
            data["params"]["threshold"]["default"] = "36"
        case "min above max":
            data["params"]["threshold"]["min"] = "40"
        case "unit on a flag":
            data["params"]["high_risk"]["unit"] = "Cel"
        case "integer flag default":
            data["params"]["high_risk"]["default"] = 1
        case "unknown placeholder":
            data["advice"]["body"]["sv"] = "Temperatur $temp"
        case "bad placeholder":
            data["advice"]["body"]["en"] = "costs $ 5"
        case "escalation requires a number":
            data["flag"]["escalate"]["requires"] = ["threshold"]
        case "neither advice nor flag":
            del data["advice"]
            del data["flag"]
        case "min_count without window":
            data["flag"]["min_count"] = 2
        case "supersedes itself":
            data["supersedes"] = ["temperature-fever"]
        case "NaN default":
            data["params"]["threshold"]["default"] = "NaN"
        case "unknown type":
            data["types"] = ["core_temperature"]
    return data


@pytest.mark.parametrize(
    "change",
    [
        "unknown kind",
        "no source",
        "no english title",
        "unknown field",
        "missing param",
        "flag param in condition",
        "wrong component",
        "unit of another type",
        "default out of range",
        "min above max",
        "unit on a flag",
        "integer flag default",
        "unknown placeholder",
        "bad placeholder",
        "escalation requires a number",
        "neither advice nor flag",
        "min_count without window",
        "supersedes itself",
        "NaN default",
        "unknown type",
    ],
)
def test_invalid_rules_are_refused(change: str) -> None:
    assert parse_rule(_broken("none")) is not None
    with pytest.raises(ValidationError):
        parse_rule(_broken(change))


def _write(folder: Path, name: str, data: Any) -> None:
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))


def test_load_library_from_a_folder(tmp_path: Path) -> None:
    _write(tmp_path, "glucose-low", _rule_data("glucose-low"))
    library = load_library(tmp_path)
    assert [rule.id for rule in library.rules] == ["glucose-low"]
    assert library.get("glucose-low") == LIBRARY.get("glucose-low")
    assert library.get("bp-low") is None


def test_library_errors_name_the_file(tmp_path: Path) -> None:
    _write(tmp_path, "other-name", _rule_data("glucose-low"))
    with pytest.raises(LibraryError, match="other-name.yaml: the id"):
        load_library(tmp_path)
    (tmp_path / "other-name.yaml").write_text("id: [unclosed")
    with pytest.raises(LibraryError, match="other-name.yaml"):
        load_library(tmp_path)
    _write(tmp_path, "other-name", {"id": "other-name"})
    with pytest.raises(LibraryError, match="other-name.yaml"):
        load_library(tmp_path)


def test_library_refuses_duplicates_and_dangling_supersedes() -> None:
    rule = LIBRARY.get("glucose-low")
    very_low = LIBRARY.get("glucose-very-low")
    assert rule is not None and very_low is not None
    with pytest.raises(LibraryError, match="duplicate"):
        RuleLibrary(rules=(rule, rule))
    with pytest.raises(LibraryError, match="supersedes unknown rule"):
        RuleLibrary(rules=(very_low,))


@pytest.mark.parametrize(
    ("op", "value", "holds"),
    [
        (Op.lt, "2", True),
        (Op.lt, "3", False),
        (Op.le, "3", True),
        (Op.le, "4", False),
        (Op.gt, "4", True),
        (Op.gt, "3", False),
        (Op.ge, "3", True),
        (Op.ge, "2", False),
    ],
)
def test_op_edges(op: Op, value: str, holds: bool) -> None:
    assert op.holds(Decimal(value), Decimal(3)) is holds


# --- plans ------------------------------------------------------------------------------


def _errors(body: dict[str, Any]) -> list[tuple[str, str]]:
    errors = validate_plan(PlanBody.model_validate(body), LIBRARY)
    assert all(isinstance(e, PlanError) and e.message for e in errors)
    return [(e.loc, e.code) for e in errors]


def _one_rule(rule: str, **params: Any) -> dict[str, Any]:
    return {"rules": [{"rule": rule, "params": params}]}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"rules": [{"rule": "glucose-low"}, {"rule": "spo2-low"}]}, []),
        (_one_rule("spo2-low", target_low=88), []),
        (_one_rule("spo2-low", target_low={"value": "0.88", "unit": "1"}), []),
        (_one_rule("glucose-low", threshold={"value": 72, "unit": "mg/dL"}), []),
        (_one_rule("glucose-low", threshold={"value": 72, "unit": "mg/dl"}), []),
        (_one_rule("temperature-fever", high_risk=True), []),
        (_one_rule("temperature-fever", threshold={"value": "100.4", "unit": "[degF]"}), []),
        (_one_rule("bp-very-high", systolic_high={"value": 170, "unit": "mmHg"}), []),
        (_one_rule("no-such-rule"), [("rules.0.rule", "unknown_rule")]),
        (_one_rule("spo2-low", target=88), [("rules.0.params.target", "unknown_param")]),
        (
            _one_rule("spo2-low", target_low={"value": 88, "unit": "mmol/L"}),
            [("rules.0.params.target_low", "unknown_unit")],
        ),
        (
            _one_rule("temperature-fever", high_risk={"value": 1, "unit": "1"}),
            [("rules.0.params.high_risk", "invalid")],
        ),
        (_one_rule("spo2-low", target_low=79), [("rules.0.params.target_low", "out_of_range")]),
        (_one_rule("spo2-low", target_low=97), [("rules.0.params.target_low", "out_of_range")]),
        (_one_rule("spo2-low", target_low=96), []),
        (_one_rule("spo2-low", target_low=80), []),
        (
            _one_rule("glucose-low", threshold={"value": 120, "unit": "mg/dL"}),
            [("rules.0.params.threshold", "out_of_range")],
        ),
        (
            _one_rule("spo2-low", target_low={"value": "0.97", "unit": "1"}),
            [("rules.0.params.target_low", "out_of_range")],
        ),
        (_one_rule("spo2-low", target_low=True), [("rules.0.params.target_low", "invalid")]),
        (
            _one_rule("temperature-fever", high_risk="2"),
            [("rules.0.params.high_risk", "invalid")],
        ),
        (
            {"rules": [{"rule": "bp-low"}, {"rule": "bp-low"}]},
            [("rules.1.rule", "duplicate_rule")],
        ),
        (
            {"schedule": [{"type": "weight"}, {"type": "mood", "times": ["08:00"]}]},
            [("schedule.1.type", "unknown_type")],
        ),
    ],
)
def test_validate_plan(body: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert _errors(body) == expected


def test_validate_plan_returns_every_error_together() -> None:
    body = {
        "rules": [
            {"rule": "spo2-low", "params": {"target_low": 50, "target": 1}},
            {"rule": "unknown"},
            {"rule": "spo2-low"},
            {
                "rule": "temperature-fever",
                "params": {
                    "threshold": {"value": 38, "unit": "K"},
                    "high_risk": {"value": 1, "unit": "1"},
                },
            },
        ],
        "schedule": [{"type": "glucose"}, {"type": "blood-pressure"}],
    }
    assert _errors(body) == [
        ("rules.0.params.target_low", "out_of_range"),
        ("rules.0.params.target", "unknown_param"),
        ("rules.1.rule", "unknown_rule"),
        ("rules.2.rule", "duplicate_rule"),
        ("rules.3.params.threshold", "unknown_unit"),
        ("rules.3.params.high_risk", "invalid"),
        ("schedule.1.type", "unknown_type"),
    ]


# --- resolve_params ---------------------------------------------------------------------


def _resolve(rule_id: str, **params: Any) -> dict[str, ResolvedParam]:
    rule = LIBRARY.get(rule_id)
    assert rule is not None
    return resolve_params(PlanRule.model_validate({"rule": rule_id, "params": params}), rule)


def test_defaults_carry_their_published_equivalents() -> None:
    resolved = _resolve("glucose-low")["threshold"]
    assert (resolved.value, resolved.unit) == (Decimal("3.9"), "mmol/L")
    assert resolved.equivalents == {"mg/dL": 70} and not resolved.overridden
    assert resolved.number_in("glucose", "mg/dL") == 70
    assert resolved.number_in("glucose", "mg/dl") == 70
    assert resolved.number_in("glucose", "mmol/L") == Decimal("3.9")


def test_an_override_drops_the_published_pair() -> None:
    resolved = _resolve("glucose-low", threshold=qty("72", "mg/dL"))["threshold"]
    assert (resolved.value, resolved.unit, dict(resolved.equivalents)) == (72, "mg/dL", {})
    assert resolved.overridden
    assert resolved.number_in("glucose", "mmol/L") == Decimal("3.996536")


@pytest.mark.parametrize("override", [Decimal("3.9"), Quantity(value=Decimal(70), unit="mg/dL")])
def test_restating_the_published_value_keeps_the_pair(override: Any) -> None:
    resolved = _resolve("glucose-low", threshold=override)["threshold"]
    assert resolved.equivalents == {"mg/dL": 70} and not resolved.overridden


def test_flags_and_ignored_params() -> None:
    resolved = _resolve("temperature-fever", high_risk=True, retired_param=5)
    assert resolved["high_risk"].value is True
    assert resolved["threshold"].value == Decimal("38.0")
    assert "retired_param" not in resolved


def test_an_unfit_override_is_refused() -> None:
    with pytest.raises(PlanParamError):
        _resolve("spo2-low", target_low=qty("3", "mmol/L"))
    with pytest.raises(PlanParamError):
        _resolve("temperature-fever", high_risk=Decimal(2))


# --- the kinds beyond threshold ---------------------------------------------------------


def _kind_broken(rule_id: str, change: str) -> dict[str, Any]:
    data = copy.deepcopy(_rule_data(rule_id))
    match change:
        case "window in mmHg":
            data["params"]["window_days"]["unit"] = "mm[Hg]"
        case "local-day window not whole":
            data["params"]["window_days"]["integer"] = False
        case "window without max":
            del data["params"]["window_days"]["max"]
        case "min_readings with a unit":
            data["params"]["min_readings"]["unit"] = "d"
        case "unknown window param":
            data["window"] = "weeks"
        case "count aggregate with a unit":
            data["aggregate"] = "count"
        case "min_count on a window rule":
            data["flag"]["min_count"] = 2
            data["flag"]["window_hours"] = 24
        case "delta on temperature":
            data["types"] = ["temperature"]
            data["params"]["gain"]["unit"] = "Cel"
        case "delta in a unit of another type":
            data["params"]["gain"]["unit"] = "mmol/L"
        case "cgm rule on finger pricks":
            data["types"] = ["glucose"]
        case "cgm window in hours":
            data["params"]["window_days"]["unit"] = "h"
            data["params"]["window_days"]["integer"] = False
        case "metric param not a percentage":
            data["params"]["tir_below"]["unit"] = "mmol/L"
        case "unknown metric":
            data["conditions"][0]["metric"] = "mage"
        case "band param not a percentage":
            data["params"]["yellow_below"]["unit"] = "L/min"
        case "duplicate band names":
            data["bands"][1]["name"] = "yellow"
        case "reference without a positive min":
            data["params"]["personal_best"]["min"] = 0
        case "composite types not the parts'":
            data["types"] = ["weight"]
        case "part within in local days":
            data["params"]["within_hours"]["unit"] = "d"
            data["params"]["within_hours"]["integer"] = True
        case "one part only":
            data["parts"] = data["parts"][:1]
            data["types"] = ["weight"]
        case "instrument on a weight part":
            data["parts"][0]["context"] = {"instrument": "breathlessness"}
        case "unknown instrument":
            data["parts"][1]["context"] = {"instrument": "borg"}
        case "param typed to another type's unit":
            data["params"]["gain"]["type"] = "symptom_score"
        case "missing data intervals with a unit":
            data["params"]["intervals"]["unit"] = "d"
        case "integer param with a fractional default":
            data["params"]["intervals"]["default"] = "2.5"
        case _:
            raise AssertionError(change)
    return data


@pytest.mark.parametrize(
    ("rule_id", "change"),
    [
        ("bp-home-mean-high", "window in mmHg"),
        ("bp-home-mean-high", "local-day window not whole"),
        ("bp-home-mean-high", "window without max"),
        ("bp-home-mean-high", "min_readings with a unit"),
        ("bp-home-mean-high", "unknown window param"),
        ("bp-home-mean-high", "count aggregate with a unit"),
        ("bp-home-mean-high", "min_count on a window rule"),
        ("weight-gain-hf", "delta on temperature"),
        ("weight-gain-hf", "delta in a unit of another type"),
        ("cgm-tir-low", "cgm rule on finger pricks"),
        ("cgm-tir-low", "cgm window in hours"),
        ("cgm-tir-low", "metric param not a percentage"),
        ("cgm-tir-low", "unknown metric"),
        ("peak-flow-zone", "band param not a percentage"),
        ("peak-flow-zone", "duplicate band names"),
        ("peak-flow-zone", "reference without a positive min"),
        ("hf-weight-and-breathlessness", "composite types not the parts'"),
        ("hf-weight-and-breathlessness", "part within in local days"),
        ("hf-weight-and-breathlessness", "one part only"),
        ("hf-weight-and-breathlessness", "instrument on a weight part"),
        ("hf-weight-and-breathlessness", "unknown instrument"),
        ("hf-weight-and-breathlessness", "param typed to another type's unit"),
        ("missing-readings", "missing data intervals with a unit"),
        ("missing-readings", "integer param with a fractional default"),
    ],
)
def test_invalid_rules_of_every_kind_are_refused(rule_id: str, change: str) -> None:
    assert parse_rule(_rule_data(rule_id)) is not None
    with pytest.raises(ValidationError):
        parse_rule(_kind_broken(rule_id, change))


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (_one_rule("weight-gain-hf", gain={"value": "4.4", "unit": "[lb_av]"}), []),
        (_one_rule("weight-gain-hf", gain={"value": 9, "unit": "[lb_av]"}), []),
        (
            _one_rule("weight-gain-hf", gain={"value": 12, "unit": "[lb_av]"}),
            [("rules.0.params.gain", "out_of_range")],
        ),
        (_one_rule("weight-gain-hf", window_hours=48), []),
        (
            _one_rule("weight-gain-hf", window_hours={"value": 2, "unit": "d"}),
            [("rules.0.params.window_hours", "unknown_unit")],
        ),
        (_one_rule("bp-home-mean-high", window_days=5, discard_first_days=2), []),
        (
            _one_rule("bp-home-mean-high", min_readings="11.5"),
            [("rules.0.params.min_readings", "invalid")],
        ),
        (_one_rule("cgm-tir-low", tir_below={"value": 50, "unit": "%"}), []),
        (
            _one_rule("hf-weight-and-breathlessness", gain={"value": 5, "unit": "[lb_av]"}),
            [],
        ),
        (
            _one_rule("hf-weight-and-breathlessness", breathlessness={"value": 3, "unit": "kg"}),
            [("rules.0.params.breathlessness", "unknown_unit")],
        ),
        (_one_rule("peak-flow-zone", personal_best=520, red_below=40), []),
    ],
)
def test_validate_plan_for_the_new_kinds(
    body: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    assert _errors(body) == expected


def test_a_pound_override_resolves_in_pounds() -> None:
    resolved = _resolve("weight-gain-hf", gain=qty("5", "[lb_av]"))["gain"]
    assert (resolved.value, resolved.unit) == (Decimal(5), "[lb_av]")
    assert resolved.number_in("weight", "kg") == Decimal("2.267962")
