"""missing-readings: ONE reminder a day naming every missing type (weight first in a
heart-failure plan, then the schedule's order); each type keeps its own finding and flag."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from rules.engine import Finding, evaluate_due, reminder_order
from rules.facts import ReadingFact
from rules.language import load_library
from rules.plan import PlanSpec
from tests.rules.factories import local, reading

LIBRARY = load_library()
SCHEDULE = ("blood_pressure", "weight", "pulse")
NOW = local(10, "09:00")  # anchored at day 10 00:00; intervals 2: days 8 and 9 must hold one


def _plan(*rules: dict[str, Any], schedule: Sequence[str] = SCHEDULE) -> PlanSpec:
    return PlanSpec.model_validate(
        {
            "version": 1,
            "rules": [{"rule": "missing-readings"}, *rules],
            "schedule": [{"type": t, "times": ["07:30"], "days": "daily"} for t in schedule],
        }
    )


def _due(plan: PlanSpec, readings: Sequence[ReadingFact] = ()) -> list[Finding]:
    return evaluate_due(plan, readings, now=NOW, tz="Europe/Stockholm", library=LIBRARY)


def _reminder(findings: Sequence[Finding], lang: str = "sv") -> str:
    carried = [f for f in findings if f.advice is not None]
    assert len(carried) == 1, "one reminder a day"
    return carried[0].advice.body[lang] if carried[0].advice else ""


HF = {"rule": "weight-gain-hf"}
HF_COMPOSITE = {"rule": "hf-weight-and-breathlessness"}


@pytest.mark.parametrize(
    ("rules", "sv", "en"),
    [
        ((), "blodtryck, vikt och puls", "blood pressure, weight and pulse"),
        ((HF,), "vikt, blodtryck och puls", "weight, blood pressure and pulse"),
        ((HF_COMPOSITE,), "vikt, blodtryck och puls", "weight, blood pressure and pulse"),
        (({**HF, "mode": "off"},), "blodtryck, vikt och puls", "blood pressure, weight and pulse"),
        (
            ({**HF, "mode": "monitor"},),
            "vikt, blodtryck och puls",
            "weight, blood pressure and pulse",
        ),
    ],
)
def test_one_reminder_names_every_missing_type(
    rules: tuple[dict[str, Any], ...], sv: str, en: str
) -> None:
    findings = _due(_plan(*rules))
    assert sorted(f.scope or "" for f in findings) == sorted(SCHEDULE)  # each type its own
    assert f"mätning av {sv} på ett tag" in _reminder(findings)
    assert f"reading of your {en} for a while" in _reminder(findings, "en")


@pytest.mark.parametrize(
    ("measured", "named"),
    [
        ({"weight": 8}, "blodtryck och puls"),  # two days ago: not missing (the edge)
        ({"weight": 7}, "vikt, blodtryck och puls"),  # three days ago: missing
        ({"weight": 9, "pulse": 9}, "blodtryck"),  # one left: no list
        ({"blood_pressure": 9, "weight": 9, "pulse": 9}, None),  # nothing missing
    ],
)
def test_the_reminder_lists_only_what_is_missing(
    measured: dict[str, int], named: str | None
) -> None:
    values = {"blood_pressure": ("130", "80"), "weight": "80", "pulse": "70"}
    readings = [reading(t, values[t], at=local(day, "07:30")) for t, day in measured.items()]
    findings = _due(_plan(HF), readings)
    if named is None:
        assert findings == []
    else:
        assert f"mätning av {named} på ett tag" in _reminder(findings)


def test_the_order_rule() -> None:
    rule = LIBRARY.get("missing-readings")
    assert rule is not None
    plan = _plan(HF, schedule=("spo2", "pulse", "weight"))
    assert reminder_order(plan, rule, ["weight", "spo2", "pulse", "temperature"]) == [
        "weight", "spo2", "pulse", "temperature"  # unscheduled last
    ]  # fmt: skip
    assert reminder_order(_plan(schedule=("spo2", "pulse", "weight")), rule,
                          ["weight", "pulse", "spo2"]) == ["spo2", "pulse", "weight"]  # fmt: skip
