"""The patient's values over time (``/mina/varden``): one chart per type against their own limits.

The charts are the care team's timeline charts (``app.web.timeline``: the same readings, the
same limits of the plan, the same SVG coordinates); this page only says them in plain words
for the patient: each limit as "Din gräns: under 88 %", the lowest and highest of the period,
and every chart's readings as a table. Times are in the patient's own time zone, numbers with
a decimal comma in Swedish. Zoom: 24 hours, 7, 30 or 90 days (default 7 days).
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.auth.policy import Action
from app.clock import utcnow
from app.deps import SessionDep
from app.plans import service as plans_service
from app.web import mina, mina_words, patient_data, timeline
from app.web.pages import lang_of, render, see_other
from rules.language import load_library

router = APIRouter(include_in_schema=False)

ZOOMS = ("24h", "7d", "30d", "90d")
TABLE_ROWS = 500  # a chart's table shows at most the latest this many readings
MONTHS = {
    "sv": ["jan", "feb", "mars", "apr", "maj", "juni", "juli", "aug", "sep", "okt", "nov", "dec"],
    "en": ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"],
}


def local_time(value: datetime | str | None, zone: ZoneInfo, lang: str) -> str:
    """A time in the patient's zone as they read it: "4 dec 2026 kl. 07:31"."""
    if value is None:
        return ""
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    local = when.astimezone(zone)
    month = MONTHS.get(lang, MONTHS["sv"])[local.month - 1]
    at = "kl." if lang == "sv" else "at"
    return f"{local.day} {month} {local.year} {at} {local:%H:%M}"


@router.get("/mina/varden")
def values_page(request: Request, actor: mina.PersonActor, session: SessionDep) -> Response:
    """Readings per type over 24 h, 7, 30 or 90 days against the plan's limits, with tables."""
    access = mina.acting(request, session, actor, Action.READ, "GET /mina/varden")
    if access is None:
        return see_other("/mina")
    lang = lang_of(request)
    t = mina_words.for_lang(lang)
    asked = request.query_params.get("range")
    zoom, start, end = timeline.window(asked if asked in ZOOMS else None, utcnow())
    plan = plans_service.current_spec(session, access.patient.id)
    rows = patient_data.window_readings(session, access.patient.id, start, end)
    chart_words = {key: t("limit_" + key) for key in timeline.LIMIT_WORDS}
    scheduled = [e.type for e in plan.schedule] if plan else []
    charts = timeline.build_charts(
        rows, scheduled, plan, load_library(), start, end, lang, chart_words
    )
    charts = [c for c in charts if c.type != "cgm_glucose" or c.readings]
    zone = ZoneInfo(access.patient.timezone)
    sep = "&" if mina._for(access) else "?"
    context = mina._base(request, access, actor) | {
        "zoom": zoom,
        "zooms": ZOOMS,
        "zoom_href": {z: f"/mina/varden{mina._for(access)}{sep}range={z}" for z in ZOOMS},
        "start": start,
        "end": end,
        "axis": [start, start + (end - start) / 2, end],
        "charts": charts,
        "width": timeline.WIDTH,
        "height": timeline.HEIGHT,
        "table_rows": TABLE_ROWS,
        "val": lambda value, type_: timeline.format_value(value, type_, lang),
        "tick": lambda value: timeline.format_tick(value, lang),
        "time": lambda value: local_time(value, zone, lang),
    }
    return render(request, "mina_values.html", context)
