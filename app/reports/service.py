"""The weekly report: each goal as of the week's end and the CGM picture, as data and PNG."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from app.bounds import EARLIEST_DAY, LATEST_DAY
from app.errors import ErrorItem, Unprocessable
from app.goals import charts
from app.goals.forms import progress_json
from app.goals.repository import list_goals
from app.goals.schemas import Lifecycle
from app.goals.views import GoalView, chart_goal, goal_view, view_dict
from app.localtime import local_midnight, local_today, zone_of
from app.patients.models import Patient
from app.readings.repository import counted_facts, counts_by_type
from app.summaries.service import cgm_summary
from rules.cgm import GlucoseSample, samples_from_readings


def parse_week(week: str) -> tuple[date, date]:
    """Monday and Sunday of an ISO week such as ``2026-W47`` (422 when it is no week)."""
    try:
        year, number = week.split("-W")
        monday = date.fromisocalendar(int(year), int(number), 1)
        if not EARLIEST_DAY <= monday <= LATEST_DAY - timedelta(days=6):
            raise ValueError(week)  # the week's Sunday and its series stay within the bounds
    except ValueError as exc:
        raise Unprocessable(
            "The week is not valid.",
            errors=[
                ErrorItem(
                    loc="week", code="invalid", message="an ISO week like 2026-W47, in 1901–2100"
                )
            ],
        ) from exc
    return monday, monday + timedelta(days=6)


def last_week(patient: Patient, now: datetime) -> str:
    """The patient's last complete ISO week (the report's default)."""
    year, number, _ = (local_today(patient, now) - timedelta(days=7)).isocalendar()
    return f"{year}-W{number:02d}"


@dataclass(frozen=True)
class Report:
    """The weekly report as data, and what the picture needs."""

    body: dict[str, Any]
    goals: list[GoalView]
    cgm_samples: list[GlucoseSample]


def _report(session: Session, patient: Patient, week: str | None, now: datetime) -> Report:
    week = week or last_week(patient, now)
    monday, sunday = parse_week(week)
    today = local_today(patient, now)
    if monday > today:
        raise Unprocessable(
            "The week has not begun.",
            errors=[ErrorItem(loc="week", code="future", message="a week not in the future")],
        )
    as_of = min(sunday, today)
    tz = zone_of(patient)
    goals = [
        g for g in list_goals(session, patient.id)
        if g.lifecycle != Lifecycle.CANCELLED and g.start <= sunday
    ]  # fmt: skip
    views = [goal_view(session, patient, g, monday, as_of, as_of, now) for g in goals]
    start = local_midnight(monday, tz)
    end = min(local_midnight(sunday + timedelta(days=1), tz), now)
    cgm_facts = counted_facts(session, patient.id, {"cgm_glucose"}, start, end)
    samples = samples_from_readings([f for f in cgm_facts if f.time < end])
    counts = counts_by_type(session, patient.id, start, end)
    body = {
        "patient": {"id": patient.id, "display_name": patient.display_name},
        "week": f"{monday.isocalendar()[0]}-W{monday.isocalendar()[1]:02d}",
        "from": monday.isoformat(),
        "to": sunday.isoformat(),
        "as_of": as_of.isoformat(),
        "readings": dict(sorted(counts.items())),
        "goals": [
            {
                "id": v.goal.id,
                "title": v.goal.title,
                "lifecycle": v.goal.lifecycle,
                "measure": dict(v.goal.measure),
                "progress": progress_json(v.spec, v.result),
                "series": view_dict(v)["series"],
            }
            for v in views
        ],
        "cgm": (
            {"from": start.isoformat(), "to": end.isoformat(),
             **cgm_summary(samples, tz=tz, start=start, end=end)}
            if samples
            else None
        ),
    }  # fmt: skip
    return Report(body, views, samples)


def weekly_report(
    session: Session, *, patient: Patient, week: str | None, now: datetime
) -> dict[str, Any]:
    """The week's report: each goal as of the week's end, and the CGM picture if there is one."""
    return _report(session, patient, week, now).body


def weekly_report_png(
    session: Session, *, patient: Patient, week: str | None, now: datetime, lang: str
) -> bytes:
    """The week's report drawn in a language: a panel per goal; AGP and time in ranges."""
    report = _report(session, patient, week, now)
    year, number = (int(part) for part in report.body["week"].split("-W"))
    return charts.report_png(
        title=charts.week_title(patient.display_name, year, number, lang),
        goals=[chart_goal(v) for v in report.goals],
        cgm=charts.cgm_picture(report.body["cgm"]),
        lang=lang,
    )
