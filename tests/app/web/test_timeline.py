"""The timeline's lines: every kind of reading rule draws its threshold; round axis labels."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from app.web import timeline
from app.web.words import for_lang
from rules.language import load_library
from rules.plan import PlanRule, PlanSpec

NOW = datetime(2026, 3, 10, 8, 0, tzinfo=UTC)


def _words(lang: str = "sv") -> dict[str, str]:
    t = for_lang(lang)
    return {key: t("limit_" + key) for key in timeline.LIMIT_WORDS}


def _plan(*rules: PlanRule) -> PlanSpec:
    return PlanSpec(version=1, rules=list(rules))


def _row(type_: str, unit: str, hours_ago: float, **values: str) -> dict[str, Any]:
    return {
        "type": type_,
        "unit": unit,
        "time": NOW - timedelta(hours=hours_ago),
        "values": {k: Decimal(v) for k, v in values.items()},
    }


def _limits(type_: str, unit: str, plan: PlanSpec, rows: list[dict[str, Any]], lang: str = "sv"):
    return timeline.limits_for(type_, unit, plan, load_library(), rows, lang, _words(lang))


def test_a_counting_rule_draws_its_per_reading_threshold_and_says_how_often() -> None:
    plan = _plan(PlanRule(rule="glucose-high", params={"threshold": 16}))
    [line] = _limits("glucose", "mmol/L", plan, [_row("glucose", "mmol/L", 1, value="9.1")])
    assert (line.rule_id, line.op, line.value) == ("glucose-high", "gt", Decimal(16))
    assert line.note == "2 gånger inom 24 tim"


def test_bands_of_a_personal_best_draw_each_band_at_its_share_of_the_best() -> None:
    plan = _plan(PlanRule(rule="peak-flow-zone", params={"personal_best": 450}))
    lines = _limits("peak_flow", "L/min", plan, [_row("peak_flow", "L/min", 1, value="400")])
    assert sorted((li.op, li.value) for li in lines) == [
        ("lt", Decimal(225)),  # red: under 50 % of 450
        ("lt", Decimal(360)),  # yellow: under 80 % of 450
    ]
    assert any("80 % av 450" in li.note for li in lines)


def test_a_baseline_rule_draws_the_median_of_its_window_plus_the_change() -> None:
    # Weight a week ago (the 3-day baseline before a 5-day gap) was 80, 81 and 83 kg.
    rows = [_row("weight", "kg", 24 * d, value=v) for d, v in ((7.5, "80"), (7, "83"), (6, "81"))]
    rows += [_row("weight", "kg", 24 * d, value="82") for d in (3, 1)] + [
        _row("weight", "kg", 0, value="82.4")
    ]
    plan = _plan(PlanRule(rule="hf-weight-gain-week"))
    [line] = _limits("weight", "kg", plan, rows)
    assert line.value == Decimal("83.0")  # median 81 + 2.0 kg
    assert line.note == "eget utgångsvärde 81,0 + 2,0 kg"


def test_a_composite_draws_the_parts_that_read_the_chart_s_type() -> None:
    plan = _plan(PlanRule(rule="hf-weight-and-breathlessness"))
    weights = [_row("weight", "kg", 48, value="80.0"), _row("weight", "kg", 0, value="80.5")]
    [weight] = _limits("weight", "kg", plan, weights)
    assert weight.value == Decimal("82.0")  # lowest of 72 h + 2.0 kg
    assert "sammansatt" in weight.note
    [score] = _limits(
        "symptom_score", "{score}", plan, [_row("symptom_score", "{score}", 1, value="2")]
    )
    assert (score.op, score.value) == ("ge", Decimal(3))
    assert "part of a combined rule" in _limits("weight", "kg", plan, weights, "en")[0].note


def test_a_cgm_chart_shades_the_consensus_target_range() -> None:
    rows = [_row("cgm_glucose", "mmol/L", h / 12, value="6.5") for h in range(24)]
    [chart] = timeline.build_charts(
        rows, [], None, load_library(), NOW - timedelta(days=1), NOW, "sv", _words()
    )
    assert chart.band is not None
    top, bottom, low, high = chart.band
    assert (low, high) == (Decimal("3.9"), Decimal("10.0"))
    assert top < bottom  # SVG y grows downwards: 10.0 above 3.9
    assert chart.ticks[0][0] >= 10.0 and chart.ticks[-1][0] <= 3.9


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (71.3, 84.9, [70, 75, 80, 85]),
        (0.0, 9.7, [0, 2.5, 5, 7.5, 10]),
        (88.0, 99.0, [85, 90, 95, 100]),
        (3.1, 15.2, [0, 5, 10, 15, 20]),
    ],
)
def test_axis_labels_are_round_numbers_around_the_data(
    low: float, high: float, expected: list[float]
) -> None:
    ticks = timeline.nice_ticks(low, high)
    assert ticks == expected
    # The page spaces the labels evenly from the top to the bottom of the plot.
    assert len({round(b - a, 9) for a, b in zip(ticks, ticks[1:], strict=False)}) == 1


def test_every_chart_s_labels_are_round_and_cover_its_values() -> None:
    rows = [_row("weight", "kg", h, value=v) for h, v in ((30, "71.3"), (10, "84.9"))]
    [chart] = timeline.build_charts(
        rows, [], None, load_library(), NOW - timedelta(days=2), NOW, "sv", _words()
    )
    values = [v for v, _ in chart.ticks]
    assert values[0] >= 84.9 and values[-1] <= 71.3
    assert all(float(v) % 5 == 0 for v in values)
    assert [timeline.format_tick(v, "sv") for v in (2.5, 80.0, 0.25)] == ["2,5", "80", "0,25"]
