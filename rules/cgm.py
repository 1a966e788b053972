"""CGM metrics (CLINICAL.md §3: Battelino 2019; GMI: Bergenstal 2018) and the AGP profile.

numpy and pandas work inside; plain types go in and out. Conventions:

* Samples keep the value and unit they were measured in. Each sample is put in a band in
  its OWN unit, against the published pair: 3.0 / 3.9 / 10.0 / 13.9 mmol/L and
  54 / 70 / 180 / 250 mg/dL (they are rounded pairs, not conversions; CLINICAL §1). Time in
  range is inclusive at both ends (3.9 ≤ g ≤ 10.0); below is strict (< 3.9, < 3.0); above
  is strict (> 10.0, > 13.9). Percentages are of samples, 0–100.
* Mean, SD and the AGP are in the unit asked for (default mmol/L); a sample in the other
  unit is converted with 18.0156 mg/dL per mmol/L. SD is the sample SD (n − 1); CV is
  SD / mean × 100.
* GMI (%) = 3.31 + 0.02392 × mean (mg/dL); GMI (mmol/mol) = 12.71 + 4.70587 × mean
  (mmol/L); both computed in Decimal from the Decimal mean and rounded half up to
  :data:`GMI_PLACES` places (:func:`round_half_up` gives the shown 0.1 % and 1 mmol/mol).
* GRI = 3.0 × %<54 + 2.4 × %54–69 + 1.6 × %>250 + 0.8 × %181–250 (so "54–69" is
  54 ≤ g < 70 and "181–250" is 180 < g ≤ 250, in each sample's own unit), capped at 100.
* Wear. The sampling interval ``dt0`` is the median gap between samples in whole minutes
  (Python ``round``, as iglu), at most :data:`MAX_INTERVAL_MINUTES` so that sparse data
  cannot look fully worn. Without a window, wear is iglu's ``active_percent`` in its
  "automatic" range: the expected samples from the first to the last one,
  ``round((last − first) / dt0) + 1``, less the samples missing in gaps longer than dt0,
  ``round((Σ gaps − n_gaps × dt0) / dt0)``. With a window ``[start, end)`` (what the rules
  use), wear is the share of the window's ``dt0`` slots that hold at least one sample, so a
  duplicate never counts twice and time outside the window never counts.

iglu (R) and iglu_python take ``gl`` in mg/dL and naive times; their CGM example data
(Dexcom G4, 5-minute samples) matches these conventions within 0.001 (tests/rules/test_cgm.py
reads it from ``../shared/data/iglu`` at test time).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction

import numpy as np
import numpy.typing as npt
import pandas as pd

from rules.catalogue import GLUCOSE_MG_DL_PER_MMOL_L, same_unit
from rules.facts import ReadingFact

MG_DL = "mg/dL"
MMOL_L = "mmol/L"

GMI_PLACES = 4
"""Decimal places kept in :attr:`CgmMetrics.gmi_percent` and ``gmi_mmol_mol``."""

MAX_INTERVAL_MINUTES = 15
"""The longest sampling interval a CGM sensor has (FreeStyle Libre: 15 minutes)."""

DEFAULT_INTERVAL_MINUTES = 5
"""The sampling interval assumed when fewer than two samples show one."""

AGP_PERCENTILES = (5, 25, 50, 75, 95)
"""The percentiles of the ambulatory glucose profile."""

# (below 3.0, below 3.9, above 10.0, above 13.9) in each unit, as published.
_EDGES = {
    MMOL_L: (Decimal("3.0"), Decimal("3.9"), Decimal("10.0"), Decimal("13.9")),
    MG_DL: (Decimal(54), Decimal(70), Decimal(180), Decimal(250)),
}
_FACTOR = float(GLUCOSE_MG_DL_PER_MMOL_L)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)


@dataclass(frozen=True)
class GlucoseSample:
    """One glucose value as measured: an aware time, the value and its unit."""

    time: datetime
    value: Decimal
    unit: str


@dataclass(frozen=True)
class BandCounts:
    """How many samples lie in each band (each in its own unit's published edges)."""

    n: int
    below_3_0: int
    below_3_9: int
    in_range: int
    above_10_0: int
    above_13_9: int


@dataclass(frozen=True)
class AgpHour:
    """The glucose percentiles of one local hour of the day over the whole series."""

    hour: int
    n: int
    p5: float
    p25: float
    p50: float
    p75: float
    p95: float


@dataclass(frozen=True)
class CgmMetrics:
    """The consensus metrics of a CGM series (percentages 0–100; None without data)."""

    unit: str  # of mean and sd
    n: int
    counts: BandCounts
    interval_minutes: int
    wear_slots: int
    expected_slots: int
    mean: float | None
    sd: float | None
    cv: float | None
    gmi_percent: Decimal | None
    gmi_mmol_mol: Decimal | None

    def exact(self, metric: str) -> Fraction | None:
        """Return a percentage exactly (``tir``, ``tbr_3_9``, …, ``gri``, ``wear``)."""
        c = self.counts
        if metric == "wear":
            if self.expected_slots == 0:
                return None
            return Fraction(100 * self.wear_slots, self.expected_slots)
        if c.n == 0:
            return None
        counts = {
            "tir": c.in_range,
            "tbr_3_9": c.below_3_9,
            "tbr_3_0": c.below_3_0,
            "tar_10_0": c.above_10_0,
            "tar_13_9": c.above_13_9,
        }
        if metric in counts:
            return Fraction(100 * counts[metric], c.n)
        if metric == "gri":
            score = (
                (
                    Fraction(30) * c.below_3_0
                    + Fraction(24) * (c.below_3_9 - c.below_3_0)
                    + Fraction(16) * c.above_13_9
                    + Fraction(8) * (c.above_10_0 - c.above_13_9)
                )
                * 10
                / c.n
            )
            return min(score, Fraction(100))
        if metric == "cv":
            return None if self.cv is None else Fraction(self.cv)
        raise KeyError(metric)

    def _percent(self, metric: str) -> float | None:
        value = self.exact(metric)
        return None if value is None else float(value)

    @property
    def wear_percent(self) -> float | None:
        """Return the share of time with sensor data, 0–100."""
        return self._percent("wear")

    @property
    def tir(self) -> float | None:
        """Return the time in range 3.9–10.0 mmol/L (70–180 mg/dL), inclusive."""
        return self._percent("tir")

    @property
    def tbr_3_9(self) -> float | None:
        """Return the time below 3.9 mmol/L (70 mg/dL)."""
        return self._percent("tbr_3_9")

    @property
    def tbr_3_0(self) -> float | None:
        """Return the time below 3.0 mmol/L (54 mg/dL)."""
        return self._percent("tbr_3_0")

    @property
    def tar_10_0(self) -> float | None:
        """Return the time above 10.0 mmol/L (180 mg/dL)."""
        return self._percent("tar_10_0")

    @property
    def tar_13_9(self) -> float | None:
        """Return the time above 13.9 mmol/L (250 mg/dL)."""
        return self._percent("tar_13_9")

    @property
    def gri(self) -> float | None:
        """Return the glycaemia risk index, capped at 100."""
        return self._percent("gri")


def glucose_target_range(unit: str) -> tuple[Decimal, Decimal] | None:
    """The consensus time-in-range target, 3.9–10.0 mmol/L (70–180 mg/dL), in a unit."""
    known = _unit_of(unit)
    if known is None:
        return None
    edges = _EDGES[known]
    return edges[1], edges[2]


def round_half_up(value: Decimal, places: int) -> Decimal:
    """Round a Decimal half up to a number of places (6.25 → 6.3, never 6.2)."""
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def samples_from_readings(readings: Iterable[ReadingFact]) -> list[GlucoseSample]:
    """Return the glucose samples of readings, as measured (original value and unit)."""
    samples: list[GlucoseSample] = []
    for reading in readings:
        value = reading.original_values.get("value")
        if value is not None and _unit_of(reading.original_unit) is not None:
            samples.append(GlucoseSample(reading.time, value, reading.original_unit))
        elif "value" in reading.values:
            samples.append(GlucoseSample(reading.time, reading.values["value"], reading.unit))
    return samples


def _unit_of(unit: str) -> str | None:
    for known in (MMOL_L, MG_DL):
        if same_unit("cgm_glucose", unit, known):
            return known
    return None


@dataclass(frozen=True)
class _Series:
    """Samples as arrays, sorted by time: microseconds, floats, units and the Decimals."""

    times: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]
    mg_dl: npt.NDArray[np.bool_]  # True: the sample is in mg/dL, else mmol/L
    decimals: list[Decimal]

    def __len__(self) -> int:
        return len(self.values)

    def inside(self, start: int, end: int) -> _Series:
        low, high = np.searchsorted(self.times, [start, end], "left")
        return _Series(
            self.times[low:high],
            self.values[low:high],
            self.mg_dl[low:high],
            self.decimals[low:high],
        )

    def in_unit(self, unit: str) -> npt.NDArray[np.float64]:
        """Return the values in a unit (the other unit's converted with 18.0156)."""
        if unit == MG_DL:
            return np.where(self.mg_dl, self.values, self.values * _FACTOR)
        return np.where(self.mg_dl, self.values / _FACTOR, self.values)


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICRO


def _series(samples: Iterable[GlucoseSample]) -> _Series:
    rows = []
    for sample in samples:
        unit = _unit_of(sample.unit)
        if unit is None:
            raise ValueError(f"unit {sample.unit!r} is not a glucose unit")
        rows.append((_micros(sample.time), sample.value, unit == MG_DL))
    rows.sort(key=lambda row: row[0])
    return _Series(
        np.array([row[0] for row in rows], dtype=np.int64),
        np.array([float(row[1]) for row in rows], dtype=np.float64),
        np.array([row[2] for row in rows], dtype=bool),
        [row[1] for row in rows],
    )


def _band_counts(series: _Series) -> BandCounts:
    counts = np.zeros(5, dtype=np.int64)
    for unit, (very_low, low, high, very_high) in _EDGES.items():
        values = series.values[series.mg_dl == (unit == MG_DL)]
        counts += [
            int((values < float(very_low)).sum()),
            int((values < float(low)).sum()),
            int(((values >= float(low)) & (values <= float(high))).sum()),
            int((values > float(high)).sum()),
            int((values > float(very_high)).sum()),
        ]
    return BandCounts(len(series), *(int(c) for c in counts))


def _interval(times: npt.NDArray[np.int64], interval_minutes: int | None) -> int:
    if interval_minutes is not None:
        return interval_minutes
    if len(times) < 2:
        return DEFAULT_INTERVAL_MINUTES
    gaps = np.diff(times) / 60_000_000
    return max(1, min(MAX_INTERVAL_MINUTES, round(float(np.median(gaps)))))


def _wear(
    times: npt.NDArray[np.int64], dt0: int, start: datetime | None, end: datetime | None
) -> tuple[int, int]:
    """Return (slots with data, slots expected); see the module docstring."""
    slot = dt0 * 60_000_000
    if start is not None and end is not None:
        expected = max(0, round((_micros(end) - _micros(start)) / slot))
        slots = (times - _micros(start)) // slot
        worn = int(np.unique(slots[(slots >= 0) & (slots < expected)]).size)
        return worn, expected
    if len(times) == 0:
        return 0, 0
    minutes = np.diff(times) / 60_000_000
    total = (int(times[-1]) - int(times[0])) / 60_000_000
    theoretical = round(total / dt0) + 1
    gaps = minutes[minutes > dt0]
    missing = round((float(gaps.sum()) - len(gaps) * dt0) / dt0)
    return theoretical - missing, theoretical


def _decimal_mean(series: _Series, unit: str) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 40
        total = Decimal(0)
        for value, mg in zip(series.decimals, series.mg_dl, strict=True):
            if mg == (unit == MG_DL):
                total += value
            elif unit == MG_DL:
                total += value * GLUCOSE_MG_DL_PER_MMOL_L
            else:
                total += value / GLUCOSE_MG_DL_PER_MMOL_L
        return total / len(series.decimals)


def cgm_metrics(
    samples: Iterable[GlucoseSample],
    *,
    unit: str = MMOL_L,
    start: datetime | None = None,
    end: datetime | None = None,
    interval_minutes: int | None = None,
) -> CgmMetrics:
    """Compute the consensus CGM metrics of samples, within ``[start, end)`` when given."""
    own = _unit_of(unit)
    if own is None:
        raise ValueError(f"unit {unit!r} is not a glucose unit")
    if (start is None) != (end is None):
        raise ValueError("give both start and end, or neither")
    series = _series(samples)
    if start is not None and end is not None:
        series = series.inside(_micros(start), _micros(end))
    dt0 = _interval(series.times, interval_minutes)
    worn, expected = _wear(series.times, dt0, start, end)
    counts = _band_counts(series)
    mean = sd = cv = None
    gmi_percent = gmi_mmol_mol = None
    if len(series):
        values = series.in_unit(own)
        mean = float(values.mean())
        if len(series) > 1:
            sd = float(values.std(ddof=1))
            cv = sd / mean * 100
        mean_mg = _decimal_mean(series, MG_DL)
        mean_mmol = _decimal_mean(series, MMOL_L)
        with localcontext() as ctx:
            ctx.prec = 40
            gmi_percent = round_half_up(Decimal("3.31") + Decimal("0.02392") * mean_mg, GMI_PLACES)
            gmi_mmol_mol = round_half_up(
                Decimal("12.71") + Decimal("4.70587") * mean_mmol, GMI_PLACES
            )
    return CgmMetrics(
        unit=own,
        n=len(series),
        counts=counts,
        interval_minutes=dt0,
        wear_slots=worn,
        expected_slots=expected,
        mean=mean,
        sd=sd,
        cv=cv,
        gmi_percent=gmi_percent,
        gmi_mmol_mol=gmi_mmol_mol,
    )


def agp_profile(
    samples: Iterable[GlucoseSample], *, tz: tzinfo, unit: str = MMOL_L
) -> tuple[AgpHour, ...]:
    """Return the 5/25/50/75/95th percentiles per local hour (hours without data left out)."""
    own = _unit_of(unit)
    if own is None:
        raise ValueError(f"unit {unit!r} is not a glucose unit")
    series = _series(samples)
    if not len(series):
        return ()
    frame = pd.DataFrame(
        {
            "time": pd.to_datetime(series.times, unit="us", utc=True),
            "in_unit": series.in_unit(own),
        }
    )
    frame["hour"] = frame["time"].dt.tz_convert(tz).dt.hour
    profile: list[AgpHour] = []
    for hour, group in frame.groupby("hour", sort=True):
        q = group["in_unit"].quantile([p / 100 for p in AGP_PERCENTILES]).to_numpy()
        profile.append(
            AgpHour(
                int(str(hour)),
                len(group),
                float(q[0]),
                float(q[1]),
                float(q[2]),
                float(q[3]),
                float(q[4]),
            )
        )
    return tuple(profile)


__all__ = [
    "AGP_PERCENTILES",
    "DEFAULT_INTERVAL_MINUTES",
    "GMI_PLACES",
    "MAX_INTERVAL_MINUTES",
    "MG_DL",
    "MMOL_L",
    "AgpHour",
    "BandCounts",
    "CgmMetrics",
    "GlucoseSample",
    "agp_profile",
    "cgm_metrics",
    "round_half_up",
    "samples_from_readings",
]
