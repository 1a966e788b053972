"""Pictures follow the caller's language: every text of chart.png and report.png, numbers
with a decimal comma in Swedish; over HTTP Accept-Language, else the patient's language."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from matplotlib.figure import Figure
from matplotlib.text import Text
from sqlalchemy.orm import Session

from app.goals import charts
from tests.app.factories import patient_id
from tests.app.goals.test_goals_api import weight_goal, weights

Auth = Callable[[str], dict[str, str]]
DAY0 = date(2026, 11, 2)


def _chart() -> charts.GoalChart:
    days = [DAY0 + timedelta(days=k) for k in range(21)]
    values = [{"value": 94.0 - 0.04 * k} for k in range(21)]
    return charts.GoalChart(
        title="Gå ner 5 kilo",
        unit="kg",
        components=("value",),
        days=days,
        values=values,
        daily=values,
        target={"value": 93.0},
        milestones=[charts.ChartMilestone("1 kilo", {"value": 93.5}, days[15], True)],
        as_of=days[-1],
        current=values[-1],
        projected_date=days[-1] + timedelta(days=30),
        due=days[-1] + timedelta(days=60),
        status="on_track",
        percent=62.5,
    )


def _texts(figure: Figure) -> list[str]:
    """Every text drawn, tick labels included (they exist once the figure is drawn)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure).draw()
    return [t.get_text() for t in figure.findobj(Text) if t.get_text()]


def _cgm() -> charts.CgmPicture:
    agp = [(h, 4.5, 5.5, 6.5, 8.5, 11.5) for h in range(24)]
    return charts.CgmPicture(agp=agp, ranges=(0.5, 2.5, 72.5, 25.0, 5.5))


@pytest.mark.parametrize(
    ("lang", "present", "absent"),
    [
        ("sv", ["mål", "prognos", "i fas · 62 %", "slutdatum", "11 nov", "93,2"], ["target"]),
        ("en", ["target", "projection", "on track", "due", "11 Nov", "93.2"], ["mål", "93,2"]),
    ],
)
def test_a_goal_chart_speaks_the_language(lang: str, present: list[str], absent: list[str]) -> None:
    texts = _texts(charts.goal_figure(_chart(), lang=lang))
    joined = "\n".join(texts)
    for word in present:
        assert word in joined, word
    for word in absent:
        assert word not in joined, word


def test_swedish_numbers_have_a_decimal_comma_everywhere() -> None:
    figure = charts.report_figure(
        title=charts.week_title("Allan", 2026, 47, "sv"), goals=[_chart()], cgm=_cgm(), lang="sv"
    )
    texts = _texts(figure)
    assert "Allan · vecka 47, 2026" in texts
    assert "3,9–10,0: 72,5 %" in texts and "Tid i intervall" in texts
    assert not [t for t in texts if any(c.isdigit() for c in t) and "." in t]
    english = _texts(charts.report_figure(
        title=charts.week_title("Allan", 2026, 47, "en"), goals=[_chart()], cgm=_cgm(), lang="en"
    ))  # fmt: skip
    assert "Allan · week 47, 2026" in english and "3.9–10.0: 72.5 %" in english


@pytest.mark.parametrize(
    ("value", "lang", "places", "text"),
    [
        (94.5, "sv", None, "94,5"),
        (94.5, "en", None, "94.5"),
        (94.0, "sv", None, "94"),
        (62.5, "sv", 0, "62"),  # half-even, as Python formats
        (3.0, "sv", 1, "3,0"),
        (3.0, "de", 1, "3,0"),  # an unknown language is Swedish
    ],
)
def test_number(value: float, lang: str, places: int | None, text: str) -> None:
    assert charts.number(value, lang, places) == text


def test_the_pictures_follow_accept_language_else_the_patients(
    client: TestClient, auth: Auth, session: Session
) -> None:
    allan = patient_id(session, "allan")
    made = client.post(f"/v1/patients/{allan}/goals", json=weight_goal(), headers=auth("eva"))
    goal_id = made.json()["id"]
    client.post("/v1/patients/me/sync", json=weights((20, 96.0), (9, 94.5), (2, 93.5)),
                headers=auth("allan"))  # fmt: skip
    url = f"/v1/patients/{allan}/goals/{goal_id}/chart.png"
    default = client.get(url, headers=auth("eva"))
    swedish = client.get(url, headers={**auth("eva"), "accept-language": "sv-SE,sv;q=0.9"})
    english = client.get(url, headers={**auth("eva"), "accept-language": "en-GB,en;q=0.8"})
    assert default.status_code == swedish.status_code == english.status_code == 200
    assert default.headers["content-language"] == "sv"  # Allan's language
    assert english.headers["content-language"] == "en"
    assert "accept-language" in english.headers["vary"].lower()
    assert default.content == swedish.content != english.content

    week = (date.today() - timedelta(days=7)).isocalendar()
    report = f"/v1/patients/me/report.png?week={week[0]}-W{week[1]:02d}"
    sv = client.get(report, headers=auth("allan"))
    en = client.get(report, headers={**auth("allan"), "accept-language": "en"})
    assert sv.headers["content-language"] == "sv" and en.headers["content-language"] == "en"
    assert sv.content != en.content


@pytest.mark.parametrize("title", ["$x^{$", "Spara 50 $ i månaden", r"\frac{1}{$", "$$"])
def test_a_title_with_dollars_is_drawn_as_written(title: str) -> None:
    """A goal titled like TeX broke the chart and the weekly report (issue 10 §4)."""
    chart = _chart()
    chart = charts.GoalChart(
        **{
            **chart.__dict__,
            "title": title,
            "milestones": [charts.ChartMilestone(title, {"value": 93.5}, DAY0, False)],
        }
    )
    png = charts.goal_png(chart, lang="sv")
    assert png.startswith(b"\x89PNG")
    assert title in "\n".join(_texts(charts.goal_figure(chart, lang="sv")))
    report = charts.report_png(title=title, goals=[chart], cgm=None, lang="sv")
    assert report.startswith(b"\x89PNG")
