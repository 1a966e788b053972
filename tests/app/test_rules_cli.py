"""``selfcare rules backtest --csv``: counts readings as sync does (cross-source duplicates
once, retries skipped) and refuses an invalid plan with every reason, as PUT .../plan does."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app import rules_cli as rules_cli_module
from app.rules_cli import rules_cli

HEADER = "client_id,type,time,value,unit,systolic,diastolic,context,source"


@pytest.fixture(autouse=True)
def _wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    # Rich reads COLUMNS when the module's console is made (at import, whenever that is):
    # set the width itself so the table's rule names are never cut, in any test order.
    monkeypatch.setattr(rules_cli_module.console, "width", 200)


def _run(tmp_path: Path, plan: object, rows: list[str], header: str = HEADER) -> tuple[int, str]:
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    (tmp_path / "readings.csv").write_text("\n".join([header, *rows]) + "\n")
    args = ["backtest", "--plan", str(tmp_path / "plan.json")]
    result = CliRunner().invoke(rules_cli, [*args, "--csv", str(tmp_path / "readings.csv")])
    return result.exit_code, result.output


def _firings(output: str, rule: str) -> int:
    match = re.search(rf"{rule}\s*│\s*\w+\s*│\s*(\d+)", output)
    assert match, output
    return int(match.group(1))


@pytest.mark.parametrize(
    ("rows", "readings", "firings"),
    [
        # The meter's app and the phone send one measurement 30 s apart: counted once.
        (
            [
                "a,blood_pressure,2026-11-20T07:31:00+01:00,,mm[Hg],185,100,,phone",
                "b,blood_pressure,2026-11-20T07:31:30+01:00,,mmHg,185,100,,meter",
            ],
            1,
            1,
        ),
        # 60 s apart is still one; 61 s apart are two.
        (
            [
                "a,blood_pressure,2026-11-20T07:31:00+01:00,,mm[Hg],185,100,,phone",
                "b,blood_pressure,2026-11-20T07:32:00+01:00,,mm[Hg],185,100,,meter",
            ],
            1,
            1,
        ),
        (
            [
                "a,blood_pressure,2026-11-20T07:31:00+01:00,,mm[Hg],185,100,,phone",
                "b,blood_pressure,2026-11-20T07:32:01+01:00,,mm[Hg],185,100,,meter",
            ],
            2,
            2,
        ),
        # Different values, or the same source twice: two measurements.
        (
            [
                "a,blood_pressure,2026-11-20T07:31:00+01:00,,mm[Hg],185,100,,phone",
                "b,blood_pressure,2026-11-20T07:31:10+01:00,,mm[Hg],186,100,,meter",
            ],
            2,
            2,
        ),
        (
            [
                "a,blood_pressure,2026-11-20T07:31:00+01:00,,mm[Hg],185,100,,phone",
                "b,blood_pressure,2026-11-20T07:31:10+01:00,,mm[Hg],185,100,,phone",
            ],
            2,
            2,
        ),
        # A retry (same source and client_id) is skipped.
        (
            [
                "a,blood_pressure,2026-11-20T07:31:00+01:00,,mm[Hg],185,100,,phone",
                "a,blood_pressure,2026-11-20T07:31:00+01:00,,mm[Hg],185,100,,phone",
            ],
            1,
            1,
        ),
    ],
)
def test_cross_source_duplicates_count_once(
    tmp_path: Path, rows: list[str], readings: int, firings: int
) -> None:
    code, output = _run(tmp_path, {"rules": [{"rule": "bp-very-high"}]}, rows)
    assert code == 0, output
    assert f", {readings} readings" in output
    assert _firings(output, "bp-very-high") == firings


def test_glucose_in_two_units_is_one_measurement(tmp_path: Path) -> None:
    rows = ["a,glucose,2026-11-20T07:31:00+01:00,54,mg/dL,,,,meter",
            "b,glucose,2026-11-20T07:31:20+01:00,3.0,mmol/L,,,,phone"]  # fmt: skip
    code, output = _run(tmp_path, {"rules": [{"rule": "glucose-very-low"}]}, rows)
    assert code == 0, output
    assert ", 1 readings" in output and "counted once" in output


def test_an_invalid_plan_is_refused_with_every_reason(tmp_path: Path) -> None:
    plan = {
        "rules": [
            {"rule": "peak-flow-zone"},
            {"rule": "nope"},
            {"rule": "spo2-low", "params": {"target_low": {"value": 88, "unit": "kg"}}},
        ]
    }
    code, output = _run(tmp_path, plan, [])
    assert code == 1
    assert "rules.0.params.personal_best: missing_param" in output
    assert "rules.1.rule: unknown_rule" in output
    assert "rules.2.params.target_low: unknown_unit" in output


def test_a_malformed_plan_is_refused(tmp_path: Path) -> None:
    code, output = _run(tmp_path, {"rules": [{"params": {}}]}, [])
    assert code == 1 and "rules.0.rule: invalid" in output
