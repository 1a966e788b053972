"""Summary answers: CGM consensus metrics with the AGP profile, or a per-day summary.

Values are JSON numbers: measured ones (min, max, last, a sum) exactly as stored, computed
ones (means, CGM metrics) at four decimals; a value of a type with components (blood
pressure) is an object of them.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

Number = int | float
Value = Number | dict[str, Number]  # one number, or one per component (blood pressure)


class DaySummaryOut(BaseModel):
    """One local day (or the whole period) of a type: count, mean, min, max, last, sum."""

    date: str | None = None  # left out of the period's total
    count: int
    mean: Value | None
    min: Value | None
    max: Value | None
    last: Value | None
    sum: Number | None = None  # for types that add up (steps)


class DailySummaryOut(BaseModel):
    """A per-day summary of one measurement type over the period."""

    model_config = ConfigDict(populate_by_name=True)

    type: str
    unit: str
    from_: str = Field(alias="from")
    to: str
    total: DaySummaryOut
    days: list[DaySummaryOut]


class AgpHourOut(BaseModel):
    """One hour of the ambulatory glucose profile: readings and percentiles."""

    hour: int
    n: int
    p5: Number | None
    p25: Number | None
    p50: Number | None
    p75: Number | None
    p95: Number | None


class CgmSummaryOut(BaseModel):
    """CGM consensus metrics over the period (DESIGN §4.4) and the hourly AGP."""

    model_config = ConfigDict(populate_by_name=True)

    type: str
    days: int
    from_: str = Field(alias="from")
    to: str
    n: int
    wear_percent: Number
    mean: Number | None
    sd: Number | None
    cv: Number | None
    tir: Number | None
    tbr_3_9: Number | None
    tbr_3_0: Number | None
    tar_10_0: Number | None
    tar_13_9: Number | None
    gmi_percent: Number | None
    gmi_mmol_mol: Number | None
    gri: Number | None
    unit: str
    agp: list[AgpHourOut]
