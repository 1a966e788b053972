"""Advice per CGM episode, push freshness and the resting pulse (CLINICAL §7), at the edges.

An episode of sensor glucose below 3.9 mmol/L (70 mg/dL) ends after 15 consecutive minutes at
or above it, or after a gap of more than 30 minutes in the stream. Advice is given at the first
reading of an episode where a rule fires; glucose-very-low speaks once more when it deepens.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from rules.engine import Finding, evaluate
from rules.facts import ReadingFact
from rules.language import load_library, parse_rule
from rules.plan import PlanSpec
from tests.rules.factories import T0, plan, reading

LIBRARY = load_library()
LOWS = plan("glucose-low", "glucose-very-low")
MG_PER_MMOL = Decimal("18.0156")


def stream(
    values: list[str],
    *,
    unit: str = "mmol/L",
    minutes: list[int] | None = None,
    type_name: str = "cgm_glucose",
) -> list[ReadingFact]:
    """CGM readings every five minutes from T0 (or at the given minutes)."""
    at = minutes if minutes is not None else [5 * i for i in range(len(values))]
    out = []
    for value, minute in zip(values, at, strict=True):
        shown = value
        if unit == "mg/dL":
            shown = str((Decimal(value) * MG_PER_MMOL).quantize(Decimal(1)))
        out.append(
            reading(
                type_name,
                shown,
                unit,
                at=T0 + timedelta(minutes=minute),
                reading_id=f"r{minute:04d}",
            )
        )
    return out


def advised(readings: list[ReadingFact], plan_spec: PlanSpec = LOWS) -> list[tuple[str, str]]:
    """(rule, reading id) of every finding that gives advice (not a repeat in its episode)."""
    findings = evaluate(
        plan_spec, readings, new_reading_ids={r.id for r in readings}, now=T0, library=LIBRARY
    )
    return [
        (f.rule_id, f.anchor_reading_id or "")
        for f in findings
        if f.advice is not None and not f.advice_repeat
    ]


@pytest.mark.parametrize("unit", ["mmol/L", "mg/dL"])
def test_one_advice_per_episode_and_level(unit: str) -> None:
    night = stream(["6.0", "3.8", "3.6", "3.4", "2.9", "2.7", "3.3", "3.6"], unit=unit)
    assert advised(night) == [("glucose-low", "r0005"), ("glucose-very-low", "r0020")]


@pytest.mark.parametrize("unit", ["mmol/L", "mg/dL"])
@pytest.mark.parametrize(
    ("recovery_minutes", "new_episode"),
    [(10, False), (14, False), (15, True), (20, True)],
)
def test_an_episode_ends_after_15_minutes_at_or_above_3_9(
    unit: str, recovery_minutes: int, new_episode: bool
) -> None:
    # A low, readings at exactly 3.9 (not low) spanning the recovery, then a low again.
    values = ["3.5"] + ["3.9"] * 2 + ["3.6"]
    minutes = [0, 5, 5 + recovery_minutes, 10 + recovery_minutes]
    lows = advised(stream(values, unit=unit, minutes=minutes))
    assert len(lows) == (2 if new_episode else 1)


@pytest.mark.parametrize(("gap", "new_episode"), [(30, False), (31, True), (120, True)])
def test_a_silent_stream_ends_the_episode(gap: int, new_episode: bool) -> None:
    lows = advised(stream(["3.5", "3.5"], minutes=[0, gap]))
    assert len(lows) == (2 if new_episode else 1)


def test_fingersticks_are_not_episodes() -> None:
    sticks = stream(["3.5", "3.4"], minutes=[0, 20], type_name="glucose")
    assert advised(sticks) == [("glucose-low", "r0000"), ("glucose-low", "r0020")]


def test_the_explanation_carries_the_episodes_duration_and_nadir() -> None:
    night = stream(["4.4", "3.7", "3.2", "2.6", "2.8", "3.1"])
    findings = evaluate(LOWS, night, new_reading_ids={r.id for r in night}, now=T0, library=LIBRARY)
    last = [f for f in findings if f.anchor_reading_id == "r0025"]
    assert [f.rule_id for f in last] == ["glucose-low"]
    episode = last[0].explanation()["episode"]
    assert episode == {
        "start": (T0 + timedelta(minutes=5)).isoformat(),
        "minutes": "20",
        "nadir": "2.6",
        "unit": "mmol/L",
        "nadir_reading_id": "r0015",
        "first_at_level": "false",
    }
    assert "(20 min), lägsta 2,6 mmol/L." in last[0].summary["sv"]


def test_sensor_alarms_mute_only_sensor_advice() -> None:
    muted = plan("glucose-low", params={"glucose-low": {"sensor_alarms": True}})
    readings = stream(["3.5"]) + stream(["3.5"], minutes=[60], type_name="glucose")
    findings = evaluate(
        muted, readings, new_reading_ids={r.id for r in readings}, now=T0, library=LIBRARY
    )
    assert [(f.anchor_reading_id, f.push_muted) for f in findings] == [
        ("r0000", True),
        ("r0060", False),
    ]


@given(
    st.lists(st.sampled_from(["2.8", "3.5", "3.9", "4.5", "6.0"]), min_size=1, max_size=40),
    st.integers(min_value=1, max_value=6),
)
def test_episodes_do_not_depend_on_chunking(values: list[str], chunks: int) -> None:
    """Evaluating chunk by chunk (with history) gives the same advice as all at once."""
    readings = stream(values)
    whole = advised(readings)
    size = -(-len(readings) // chunks)
    pieces: list[tuple[str, str]] = []
    for start in range(0, len(readings), size):
        new = {r.id for r in readings[start : start + size]}
        findings = evaluate(
            LOWS, readings[: start + size], new_reading_ids=new, now=T0, library=LIBRARY
        )
        pieces += [
            (f.rule_id, f.anchor_reading_id or "")
            for f in findings
            if f.advice is not None and not f.advice_repeat
        ]
    assert sorted(pieces) == sorted(whole)


# --- how old a reading may be for its advice to be pushed ------------------------------------


@pytest.mark.parametrize(
    ("rule_id", "r", "within"),
    [
        ("glucose-low", reading("glucose", "3.5"), timedelta(minutes=30)),
        ("bp-very-high", reading("blood_pressure", ("185", "100")), timedelta(minutes=60)),
        ("spo2-low", reading("spo2", "85"), timedelta(minutes=60)),
        ("temperature-fever", reading("temperature", "38.5"), timedelta(hours=6)),
    ],
)
def test_advice_is_fresh_for_the_rules_push_within(
    rule_id: str, r: ReadingFact, within: timedelta
) -> None:
    (finding,) = evaluate(plan(rule_id), [r], new_reading_ids={r.id}, now=T0, library=LIBRARY)
    assert isinstance(finding, Finding) and finding.fresh_until == r.time + within


def test_push_within_is_a_plan_parameter() -> None:
    r = reading("glucose", "3.5")
    quick = plan("glucose-low", params={"glucose-low": {"push_within": Decimal(10)}})
    (finding,) = evaluate(quick, [r], new_reading_ids={r.id}, now=T0, library=LIBRARY)
    assert finding.fresh_until == r.time + timedelta(minutes=10)


def test_a_rule_with_advice_must_say_how_fresh_it_is() -> None:
    rule = LIBRARY.get("bp-low")
    assert rule is not None
    data = rule.model_dump(mode="json")
    del data["params"]["push_within"]
    with pytest.raises(ValidationError, match="push_within"):
        parse_rule(data)


# --- pulse at rest and during activity ------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "activity", "flags"),
    [
        ("120", None, False),
        ("121", None, True),
        ("40", None, False),
        ("39", None, True),
        ("121", "rest", True),
        ("121", "at rest", True),
        ("121", "sleeping", True),
        ("121", "active", False),
        ("130", "active", False),
        ("131", "active", True),
        ("39", "active", False),
        ("130", "during exercise", False),
        ("131", "during exercise", True),
        ("125", "after exercise", False),
        ("140", "after exercise", True),
    ],
)
def test_pulse_limits_depend_on_activity(value: str, activity: str | None, flags: bool) -> None:
    context = {"activity": activity} if activity else None
    r = reading("pulse", value, "/min", context=context)
    r_bpm = reading("pulse", value, "bpm", context=context, reading_id="bpm")
    for each in (r, r_bpm):
        findings = evaluate(
            plan("pulse-abnormal"), [each], new_reading_ids={each.id}, now=T0, library=LIBRARY
        )
        assert bool(findings) is flags, (value, activity, each.original_unit)


def test_the_backtest_counts_advice_per_episode_and_night_pushes() -> None:
    from rules.backtest import backtest

    # T0 is 12:00 UTC; this night starts at 02:00 Stockholm the next day.
    night = list(
        stream(
            ["6.0", "3.8", "3.6", "3.4", "2.9", "2.7", "3.3", "3.6"],
            minutes=[5 * i + 14 * 60 for i in range(8)],
        )
    )
    report = backtest(LOWS, night)
    low, very_low = report.rule("glucose-low"), report.rule("glucose-very-low")
    assert low is not None and very_low is not None
    assert (low.firings, low.advice, low.pushes, low.night_pushes) == (7, 1, 1, 1)
    assert (very_low.advice, very_low.night_pushes) == (1, 1)
    muted = plan(
        "glucose-low",
        "glucose-very-low",
        params={
            "glucose-low": {"sensor_alarms": True},
            "glucose-very-low": {"sensor_alarms": True},
        },
    )
    quiet = backtest(muted, night)
    assert [(r.advice, r.pushes) for r in quiet.rules] == [(1, 0), (1, 0)]
