"""A patient's CGM summary for the care team: time in ranges, mean, GMI, CV, wear and the AGP.

Built from the same service call as ``GET /v1/patients/{pid}/summary?type=cgm_glucose&days=``
(``summaries_service.summary``: CLINICAL §3 through ``rules.cgm``), over the last ``days`` ×
24 h, through the same policy, audited as a read of the patient. The AGP rows are the
summary's, as the weekly report draws them (``goals.charts.cgm_picture``); this page only
places them (``charts_svg``) and writes the numbers as measured: mmol/L with one decimal,
percentages whole, GMI in mmol/mol (Sweden) and in %.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.auth.policy import Action
from app.clock import utcnow
from app.deps import SessionDep
from app.goals import charts
from app.summaries import service as summaries_service
from app.web import charts_svg, words
from app.web.pages import PageActor, lang_of, render
from app.web.patients import authorised_patient
from rules.catalogue import MeasurementType

router = APIRouter(include_in_schema=False)

DAYS = (7, 14, 30, 90)
DEFAULT_DAYS = 14
ENOUGH_DAYS = 14  # CLINICAL §3: data sufficiency is ≥ 14 days with the sensor worn > 70 %
ENOUGH_WEAR = 70.0


def shown(value: float | None, places: int, lang: str) -> str:
    """A number rounded half up to ``places``, a decimal comma in Swedish; "–" when missing."""
    if value is None:
        return "–"
    number = Decimal(str(value)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    text = f"{number:.{places}f}"
    return text.replace(".", ",") if lang == "sv" else text


def share(value: float | None, lang: str) -> str:
    """A share of time as a whole percent; a share under 0.5 % but above none is "< 1"."""
    if value is not None and 0 < value < 0.5:
        return "< 1"
    return shown(value, 0, lang)


def days_of(asked: str | None) -> int:
    """The window asked for, when it is one of ``DAYS``; else the default (14)."""
    try:
        days = int(asked or DEFAULT_DAYS)
    except ValueError:
        return DEFAULT_DAYS
    return days if days in DAYS else DEFAULT_DAYS


def cgm_view(summary: Mapping[str, Any], days: int, lang: str) -> dict[str, Any]:
    """What the page shows of a summary: the figures in words, the ranges and the AGP."""
    t = words.for_lang(lang)
    picture = charts.cgm_picture(summary)
    if picture is None:
        return {"has_data": False}
    parts = charts_svg.range_parts(*picture.ranges)
    labels = {
        "very_low": f"< {shown(3.0, 1, lang)}",
        "low": f"{shown(3.0, 1, lang)}–{shown(3.8, 1, lang)}",
        "in_range": f"{shown(3.9, 1, lang)}–{shown(10.0, 1, lang)}",
        "high": f"{shown(10.1, 1, lang)}–{shown(13.9, 1, lang)}",
        "very_high": f"> {shown(13.9, 1, lang)}",
    }
    ranges = [
        {
            "key": p.key,
            "name": t(f"range_{p.key}"),
            "limits": labels[p.key],
            "percent": p.percent,
            "shown": share(p.percent, lang),
            "start": p.start,
            "minutes": p.minutes,
            "duration": _duration(p.minutes, p.percent, lang),
        }
        for p in reversed(parts)  # highest first, as the AGP report lists them
    ]
    wear = summary["wear_percent"]
    names = ("p5", "p25", "p50", "p75", "p95")
    agp_rows = [
        {
            "h": r[0],
            "hour": f"{r[0]:02d}–{r[0] + 1:02d}",
            **{name: shown(v, 1, lang) for name, v in zip(names, r[1:], strict=True)},
        }
        for r in picture.agp
    ]
    in_range = next(r for r in ranges if r["key"] == "in_range")
    medians = [(r[0], r[3]) for r in picture.agp if r[3] is not None]
    extremes = ""
    if medians:
        low, high = min(medians, key=lambda m: m[1]), max(medians, key=lambda m: m[1])
        extremes = t("agp_extremes").format(
            low_hours=f"{low[0]:02d}–{low[0] + 1:02d}", low=shown(low[1], 1, lang),
            high_hours=f"{high[0]:02d}–{high[0] + 1:02d}", high=shown(high[1], 1, lang),
        )  # fmt: skip
    return {
        "has_data": True,
        "n": summary["n"],
        "ranges": ranges,
        "in_range": in_range,
        "mean": shown(summary["mean"], 1, lang),
        "sd": shown(summary["sd"], 1, lang),
        "cv": shown(summary["cv"], 0, lang),
        "gmi_mmol_mol": shown(summary["gmi_mmol_mol"], 0, lang),
        "gmi_percent": shown(summary["gmi_percent"], 1, lang),
        "wear": shown(wear, 0, lang),
        "raw": summary,
        "enough": days >= ENOUGH_DAYS and wear is not None and wear > ENOUGH_WEAR,
        "agp": charts_svg.agp(picture.agp),
        "agp_rows": agp_rows,
        "agp_extremes": extremes,
        "axis": lambda value: shown(value, 0, lang),
    }


def _duration(minutes: int, percent: float, lang: str) -> str:
    """Minutes a day as "1 tim 5 min" or "25 min"; a share too small for a minute "< 1 min"."""
    t = words.for_lang(lang)
    if minutes == 0 and percent > 0:
        return f"< 1 {t('minutes')}"
    hours, rest = divmod(minutes, 60)
    if hours:
        return f"{hours} {t('hours')} {rest} {t('minutes')}"
    return f"{rest} {t('minutes')}"


@router.get("/vard/patients/{pid}/cgm")
def cgm_page(pid: str, request: Request, actor: PageActor, session: SessionDep) -> Response:
    """The CGM summary of the last 7, 14, 30 or 90 days, with the AGP and its tables."""
    access = authorised_patient(session, actor, pid, Action.READ, "GET /vard/patients/{pid}/cgm")
    lang = lang_of(request)
    days = days_of(request.query_params.get("days"))
    summary = summaries_service.summary(
        session, patient=access.patient, type_=MeasurementType.cgm_glucose, days=days,
        now=utcnow(),
    )  # fmt: skip
    context = {
        "user": actor.user,
        "t": words.for_lang(lang),
        "patient": access.patient,
        "days": days,
        "choices": DAYS,
        "start": summary["from"],
        "end": summary["to"],
        "cgm": cgm_view(summary, days, lang),
        "enough_days": ENOUGH_DAYS,
    }
    return render(request, "cgm.html", context)
