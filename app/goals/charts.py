"""Pictures of goals and of the weekly report: PNG from matplotlib's Agg renderer.

No pyplot and no global figure state: every picture is its own ``Figure`` rendered by the
Agg canvas, so requests on several threads never share anything. No network, no fonts beyond
matplotlib's own (DejaVu Sans has å, ä and ö).

Every text follows the caller's language (``lang``, sv or en; sv when unknown): titles, axis
labels, the legend, day names ("23 nov" / "23 Nov"), the report's week, and numbers, which
Swedish writes with a decimal comma (94,5 kg; 3,9–10,0). No locale is set: that is process
state, and threads must not share it.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from rules.catalogue import display_unit

if TYPE_CHECKING:  # matplotlib is imported when a picture is drawn, not when the app starts
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

MAX_AHEAD_DAYS = 365
"""A projection or due date further than this after the data is not drawn."""

_COLOURS = ("#1f5fa8", "#b5442c", "#2e7d32")
_WORDS = {
    "sv": {
        "target": "mål",
        "due": "slutdatum",
        "projection": "prognos",
        "on_track": "i fas",
        "at_risk": "risk att inte nå målet",
        "achieved": "uppnått",
        "not_achieved": "inte uppnått",
        "insufficient_data": "för lite data",
        "no_data": "Inga mål och inga sensorvärden denna vecka.",
        "agp": "Glukosprofil per timme (AGP), mmol/L",
        "hour": "timme",
        "ranges": "Tid i intervall",
        "value": "värde",
        "day": "dagsvärde",
        "systolic": "systoliskt",
        "diastolic": "diastoliskt",
        "months": "jan feb mar apr maj jun jul aug sep okt nov dec",
        "week": "vecka {week}, {year}",
    },
    "en": {
        "target": "target",
        "due": "due",
        "projection": "projection",
        "on_track": "on track",
        "at_risk": "at risk",
        "achieved": "achieved",
        "not_achieved": "not achieved",
        "insufficient_data": "insufficient data",
        "no_data": "No goals and no sensor glucose this week.",
        "agp": "Glucose profile by hour (AGP), mmol/L",
        "hour": "hour",
        "ranges": "Time in ranges",
        "value": "value",
        "day": "day value",
        "systolic": "systolic",
        "diastolic": "diastolic",
        "months": "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec",
        "week": "week {week}, {year}",
    },
}


@dataclass(frozen=True)
class ChartMilestone:
    """A milestone to mark: its target values, due date, and whether it is reached."""

    title: str
    values: Mapping[str, float]
    due: date | None
    achieved: bool


@dataclass(frozen=True)
class GoalChart:
    """Everything a goal's picture shows, as plain values."""

    title: str
    unit: str
    components: tuple[str, ...]
    days: Sequence[date]
    values: Sequence[Mapping[str, float] | None]  # the measure (windowed) per day
    daily: Sequence[Mapping[str, float] | None]  # each day's own value
    target: Mapping[str, float]
    milestones: Sequence[ChartMilestone]
    as_of: date
    current: Mapping[str, float] | None
    projected_date: date | None
    due: date | None
    status: str
    percent: float | None


@dataclass(frozen=True)
class CgmPicture:
    """The AGP rows (hour, p5, p25, p50, p75, p95) and the five range percentages."""

    agp: Sequence[tuple[int, float | None, float | None, float | None, float | None, float | None]]
    ranges: tuple[float | None, float | None, float | None, float | None, float | None]


def cgm_picture(cgm: Mapping[str, Any] | None) -> CgmPicture | None:
    """The picture of a CGM summary (``summaries.service.cgm_summary``); None without samples.

    The ranges are the summary's cumulative shares: below 3.0, below 3.9, in range, above
    10.0, above 13.9 (percent of samples).
    """
    if not cgm or not cgm["n"]:
        return None
    return CgmPicture(
        agp=[(h["hour"], h["p5"], h["p25"], h["p50"], h["p75"], h["p95"]) for h in cgm["agp"]],
        ranges=(cgm["tbr_3_0"], cgm["tbr_3_9"], cgm["tir"], cgm["tar_10_0"], cgm["tar_13_9"]),
    )


def _words(lang: str) -> dict[str, str]:
    return _WORDS.get(lang, _WORDS["sv"])


def number(value: float, lang: str, places: int | None = None) -> str:
    """A number as the language writes it: a decimal comma in Swedish (94,5), else a point."""
    text = f"{value:g}" if places is None else f"{value:.{places}f}"
    return text.replace(".", ",") if _words(lang) is _WORDS["sv"] else text


def week_title(name: str, year: int, week: int, lang: str) -> str:
    """The report's heading: the patient and the ISO week, in words ("vecka 47, 2026")."""
    return f"{name} · {_words(lang)['week'].format(week=week, year=year)}"


def _numbers_on_y(ax: Axes, lang: str) -> None:
    """Tick labels on the value axis in the language's way of writing numbers."""
    from matplotlib.ticker import FuncFormatter

    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: number(round(value, 6), lang)))


P = ParamSpec("P")
R = TypeVar("R")


def _plain_text(build: Callable[P, R]) -> Callable[P, R]:
    """Draw every text as written: a goal titled ``$x^{$`` is a title, not mathtext.

    Titles and milestone names come from people; matplotlib would parse ``$…$`` in them as
    TeX and raise on a half-written formula, breaking the chart and the weekly report.
    """

    @functools.wraps(build)
    def plain(*args: P.args, **kwargs: P.kwargs) -> R:
        import matplotlib

        with matplotlib.rc_context({"text.parse_math": False}):
            return build(*args, **kwargs)

    return plain


def _figure(height: float, width: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _png(figure: Figure) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


_EPOCH = date(1970, 1, 1)  # matplotlib's date numbers count days from here


def _when(day: date) -> float:
    """A local day as a matplotlib date number (its noon)."""
    return (day - _EPOCH).days + 0.5


def _date_axis(ax: Axes, first: date, last: date, words: Mapping[str, str]) -> None:
    """Day ticks (at most about ten) labelled "23 nov"; matplotlib's own show hours."""
    months = words["months"].split()
    span = max(1, (last - first).days)
    step = max(1, -(-span // 9))
    if step > 20:
        step = 30 * max(1, round(step / 30))
    ticks = [first + timedelta(days=k) for k in range(0, span + 1, step)]
    ax.set_xticks([_when(d) for d in ticks])
    ax.set_xticklabels([f"{d.day} {months[d.month - 1]}" for d in ticks], fontsize=8)
    ax.set_xlim(_when(first) - 0.6, _when(last) + 0.6)


def _draw_goal(
    ax: Axes,
    chart: GoalChart,
    words: Mapping[str, str],
    lang: str,
    *,
    ahead_days: int = MAX_AHEAD_DAYS,
) -> None:
    days = [_when(d) for d in chart.days]
    last = chart.days[-1] if chart.days else chart.as_of
    first = chart.days[0] if chart.days else chart.as_of

    def _within(day: date | None) -> bool:
        return day is not None and day <= last + timedelta(days=ahead_days)

    ahead = [chart.projected_date, chart.due, *(m.due for m in chart.milestones)]
    shown_last = max([last, *(d for d in ahead if d is not None and _within(d))])
    for index, component in enumerate(chart.components):
        colour = _COLOURS[index % len(_COLOURS)]
        label = "" if component == "value" else f"{words.get(component, component)} "
        points = [
            (d, v[component]) for d, v in zip(days, chart.daily, strict=True) if v is not None
        ]
        if points:
            xs, ys = zip(*points, strict=True)
            ax.scatter(xs, ys, s=10, color=colour, alpha=0.35, label=f"{label}{words['day']}")
        line_x = [d for d, v in zip(days, chart.values, strict=True) if v is not None]
        line_y = [v[component] for v in chart.values if v is not None]
        if line_x:
            ax.plot(line_x, line_y, color=colour, linewidth=2, label=f"{label}{words['value']}")
        ax.axhline(chart.target[component], color=colour, linestyle="--", linewidth=1,
                   label=f"{label}{words['target']}")  # fmt: skip
        if chart.current is not None and _within(chart.projected_date):
            assert chart.projected_date is not None
            ax.plot(
                [_when(chart.as_of), _when(chart.projected_date)],
                [chart.current[component], chart.target[component]],
                color=colour, linestyle=":", linewidth=1.5,
                label=f"{label}{words['projection']}",
            )  # fmt: skip
        for milestone in chart.milestones:
            if not _within(milestone.due):
                continue
            assert milestone.due is not None
            ax.scatter(
                [_when(milestone.due)], [milestone.values[component]], marker="D", s=60,
                facecolor=colour if milestone.achieved else "white", edgecolor=colour, zorder=5,
            )  # fmt: skip
            if index == 0:
                ax.annotate(milestone.title, (_when(milestone.due), milestone.values[component]),
                            textcoords="offset points", xytext=(6, 6), fontsize=8)  # fmt: skip
    if _within(chart.due):
        assert chart.due is not None
        ax.axvline(_when(chart.due), color="#555555", linewidth=1)
        ax.annotate(
            words["due"], (_when(chart.due), 1.0), xycoords=("data", "axes fraction"),
            textcoords="offset points", xytext=(-4, -12), ha="right", fontsize=8,
        )  # fmt: skip
    status = words.get(chart.status, chart.status)
    shown = f" · {number(chart.percent, lang, 0)} %" if chart.percent is not None else ""
    ax.set_title(f"{chart.title}\n{status}{shown}", fontsize=10, loc="left")
    ax.set_ylabel(display_unit(chart.unit))
    _numbers_on_y(ax, lang)
    _date_axis(ax, first, shown_last, words)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best", ncol=2)


@_plain_text
def goal_figure(chart: GoalChart, *, lang: str = "sv") -> Figure:
    """Draw one goal: measure, daily values, target line, milestones, projection, due date."""
    figure = _figure(4.5, 8)
    _draw_goal(figure.add_subplot(), chart, _words(lang), lang)
    return figure


def goal_png(chart: GoalChart, *, lang: str = "sv") -> bytes:
    """One goal drawn, as PNG."""
    return _png(goal_figure(chart, lang=lang))


def _draw_agp(ax: Axes, cgm: CgmPicture, words: Mapping[str, str], lang: str) -> None:
    rows = [r for r in cgm.agp if all(v is not None for v in r[1:])]
    hours = [r[0] for r in rows]
    p5, p25, p50, p75, p95 = ([float(r[i] or 0) for r in rows] for i in range(1, 6))
    ax.axhspan(3.9, 10.0, color="#2e7d32", alpha=0.08)
    ax.fill_between(hours, p5, p95, color="#1f5fa8", alpha=0.15, label="5–95 %")
    ax.fill_between(hours, p25, p75, color="#1f5fa8", alpha=0.35, label="25–75 %")
    ax.plot(hours, p50, color="#1f5fa8", linewidth=2, label="50 %")
    for edge in (3.9, 10.0):
        ax.axhline(edge, color="#2e7d32", linewidth=1, linestyle="--")
    ax.set_xlim(0, 23)
    ax.set_xticks(range(0, 24, 3))
    ax.set_xlabel(words["hour"])
    _numbers_on_y(ax, lang)
    ax.set_title(words["agp"], fontsize=10, loc="left")
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(alpha=0.3)


def _draw_ranges(ax: Axes, cgm: CgmPicture, words: Mapping[str, str], lang: str) -> None:
    very_low, low, in_range, high, very_high = (float(v or 0) for v in cgm.ranges)

    def n(value: float) -> str:
        return number(value, lang, 1)

    parts = [
        (f"< {n(3.0)}", very_low, "#7f0000"),
        (f"{n(3.0)}–{n(3.8)}", low - very_low, "#d32f2f"),
        (f"{n(3.9)}–{n(10.0)}", in_range, "#2e7d32"),
        (f"{n(10.1)}–{n(13.9)}", high - very_high, "#f9a825"),
        (f"> {n(13.9)}", very_high, "#e65100"),
    ]
    bottom = 0.0
    for name, share, colour in parts:
        ax.bar([0], [share], bottom=bottom, color=colour, width=0.6)
        if share >= 2:
            ax.text(0.4, bottom + share / 2, f"{name}: {n(share)} %", va="center", fontsize=8)
        bottom += share
    ax.set_xlim(-0.5, 2.2)
    ax.set_ylim(0, 100)
    ax.set_xticks([])
    ax.set_ylabel("%")
    ax.set_title(words["ranges"], fontsize=10, loc="left")


@_plain_text
def report_figure(
    *, title: str, goals: Sequence[GoalChart], cgm: CgmPicture | None, lang: str = "sv"
) -> Figure:
    """Draw the weekly report: a panel per goal, then the AGP profile and time in ranges."""
    words = _words(lang)
    rows = len(goals) + (1 if cgm is not None else 0)
    figure = _figure(3.2 * max(rows, 1) + 0.6, 9)
    figure.suptitle(title, fontsize=12)
    if rows == 0:
        ax = figure.add_subplot()
        ax.axis("off")
        ax.text(0.5, 0.5, words["no_data"], ha="center", va="center")
        return figure
    grid = figure.add_gridspec(rows, 3)
    for row, chart in enumerate(goals):
        _draw_goal(figure.add_subplot(grid[row, :]), chart, words, lang, ahead_days=0)
    if cgm is not None:
        _draw_agp(figure.add_subplot(grid[rows - 1, :2]), cgm, words, lang)
        _draw_ranges(figure.add_subplot(grid[rows - 1, 2]), cgm, words, lang)
    return figure


def report_png(
    *, title: str, goals: Sequence[GoalChart], cgm: CgmPicture | None, lang: str = "sv"
) -> bytes:
    """The weekly report drawn, as PNG."""
    return _png(report_figure(title=title, goals=goals, cgm=cgm, lang=lang))
