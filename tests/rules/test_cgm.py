"""CGM metrics against iglu (read from ../shared at test time, never copied) and at the edges.

iglu's conventions, worked out from its data and SOURCE.txt: ``gl`` is in mg/dL (Dexcom
G4 and G6, 5-minute samples), times are naive (read here as UTC: only differences
matter); TIR is 70–180 inclusive, below/above strict; CV uses the sample SD; GMI uses
the mg/dL mean; ``active_percent`` is the "automatic" range (first to last sample, dt0 =
the median gap). ``crosscheck_expected_metrics.csv`` rounds the metrics to 3 places (GMI
to 4) and active percent to 2, so we compare within 0.001 — and active percent at its
2 places.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from rules.cgm import (
    GlucoseSample,
    agp_profile,
    cgm_metrics,
    round_half_up,
    samples_from_readings,
)
from tests.rules.factories import STOCKHOLM, reading
from tests.shared_data import SHARED_DATA, needs

SHARED = SHARED_DATA
EXPECTED = SHARED / "iglu" / "crosscheck_expected_metrics.csv"
T = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)

needs_shared = needs("iglu/crosscheck_expected_metrics.csv", "cgmquantify/dexcom_g6_test_file.csv")


def _iglu_series(dataset: str, subject: str) -> list[GlucoseSample]:
    samples: list[GlucoseSample] = []
    if dataset == "dexcom_g6_test_file":
        path = SHARED / "cgmquantify" / "dexcom_g6_test_file.csv"
        with path.open(encoding="utf-8-sig", newline="") as handle:
            for row in csv.DictReader(handle):
                if row["Event Type"] != "EGV":
                    continue
                at = datetime.fromisoformat(row["Timestamp (YYYY-MM-DDThh:mm:ss)"])
                value = Decimal(row["Glucose Value (mg/dL)"])
                samples.append(GlucoseSample(at.replace(tzinfo=UTC), value, "mg/dL"))
        return samples
    with (SHARED / "iglu" / f"{dataset}.csv").open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["id"] != subject or row["gl"] in ("", "NA"):
                continue
            at = datetime.fromisoformat(row["time"]).replace(tzinfo=UTC)
            samples.append(GlucoseSample(at, Decimal(row["gl"]), "mg/dL"))
    return samples


def _expected_rows() -> list[dict[str, str]]:
    if not EXPECTED.exists():
        return []
    with EXPECTED.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@needs_shared
@pytest.mark.parametrize("row", _expected_rows(), ids=lambda r: f"{r['dataset']}|{r['id']}")
def test_iglu_crosscheck(row: dict[str, str]) -> None:
    samples = _iglu_series(row["dataset"], row["id"])
    metrics = cgm_metrics(samples, unit="mg/dL")
    assert metrics.n == int(row["n"]) == len(samples)
    got = {
        "mean": metrics.mean,
        "gmi": float(metrics.gmi_percent or 0),
        "cv": metrics.cv,
        "tir": metrics.tir,
        "tbr70": metrics.tbr_3_9,
        "tbr54": metrics.tbr_3_0,
        "tar180": metrics.tar_10_0,
        "tar250": metrics.tar_13_9,
    }
    for name, value in got.items():
        assert value is not None
        assert abs(value - float(row[f"{name}_iglu"])) <= 0.001, name
        assert abs(value - float(row[f"{name}_hand"])) <= 0.001, name
    assert metrics.wear_percent is not None
    assert round(metrics.wear_percent, 2) == pytest.approx(float(row["active_pct_iglu"]), abs=1e-9)


@needs_shared
def test_iglu_in_mmol_per_litre_gives_the_same_bands() -> None:
    """The same series sent in mmol/L (rounded to 0.1) keeps mean and GMI close."""
    samples = _iglu_series("example_data_1_subject", "Subject 1")
    in_mg = cgm_metrics(samples, unit="mg/dL")
    in_mmol = cgm_metrics(samples, unit="mmol/L")
    assert in_mg.mean is not None and in_mmol.mean is not None
    assert in_mmol.mean == pytest.approx(in_mg.mean / 18.0156)
    assert in_mmol.counts == in_mg.counts  # bands are decided in each sample's own unit
    assert in_mmol.cv == pytest.approx(in_mg.cv)


def _samples(*values: str, unit: str = "mmol/L", step: int = 5) -> list[GlucoseSample]:
    return [
        GlucoseSample(T + timedelta(minutes=step * i), Decimal(v), unit)
        for i, v in enumerate(values)
    ]


@pytest.mark.parametrize(
    ("value", "unit", "band"),
    [
        ("2.9", "mmol/L", "below_3_0"),
        ("3.0", "mmol/L", "below_3_9"),
        ("3.8", "mmol/L", "below_3_9"),
        ("3.9", "mmol/L", "in_range"),
        ("10.0", "mmol/L", "in_range"),
        ("10.1", "mmol/L", "above_10_0"),
        ("13.9", "mmol/L", "above_10_0"),
        ("14.0", "mmol/L", "above_13_9"),
        ("53", "mg/dL", "below_3_0"),
        ("54", "mg/dL", "below_3_9"),
        ("69", "mg/dL", "below_3_9"),
        ("70", "mg/dL", "in_range"),  # 3.8855 mmol/L, but 70 is published as in range
        ("180", "mg/dL", "in_range"),
        ("180.5", "mg/dL", "above_10_0"),
        ("250", "mg/dL", "above_10_0"),
        ("251", "mg/dL", "above_13_9"),
        ("70", "mg/dl", "in_range"),
    ],
)
def test_band_edges_in_both_units(value: str, unit: str, band: str) -> None:
    counts = cgm_metrics(_samples(value, unit=unit)).counts
    found = {
        "below_3_0": counts.below_3_0,
        "below_3_9": counts.below_3_9 - counts.below_3_0,
        "in_range": counts.in_range,
        "above_10_0": counts.above_10_0 - counts.above_13_9,
        "above_13_9": counts.above_13_9,
    }
    assert found == {name: int(name == band) for name in found}


def test_metrics_by_hand() -> None:
    # 10 samples: 1 < 3.0, 1 in 3.0..3.9, 6 in range, 1 in 10..13.9, 1 > 13.9.
    metrics = cgm_metrics(
        _samples("2.8", "3.5", "5", "6", "7", "8", "9", "10", "12", "15"), unit="mmol/L"
    )
    assert metrics.n == 10
    assert (metrics.tir, metrics.tbr_3_9, metrics.tbr_3_0) == (60.0, 20.0, 10.0)
    assert (metrics.tar_10_0, metrics.tar_13_9) == (20.0, 10.0)
    assert metrics.mean == pytest.approx(7.83)
    assert metrics.sd == pytest.approx(3.815189, abs=1e-6)  # sample SD (statistics.stdev)
    assert metrics.cv == pytest.approx(3.815189 / 7.83 * 100, abs=1e-4)
    # GRI = 3.0×10 + 2.4×10 + 1.6×10 + 0.8×10
    assert metrics.gri == pytest.approx(78.0)
    assert metrics.gmi_mmol_mol == round_half_up(
        Decimal("12.71") + Decimal("4.70587") * Decimal("7.83"), 4
    )
    assert metrics.gmi_percent == round_half_up(
        Decimal("3.31") + Decimal("0.02392") * Decimal("7.83") * Decimal("18.0156"), 4
    )


def test_gri_is_capped_at_100() -> None:
    assert cgm_metrics(_samples("2.0", "2.1", "2.2")).gri == 100.0


def test_gmi_rounds_half_up_with_decimal() -> None:
    assert round_half_up(Decimal("6.25"), 1) == Decimal("6.3")
    assert round_half_up(Decimal("6.35"), 1) == Decimal("6.4")  # float round() gives 6.3
    assert round_half_up(Decimal("48.5"), 0) == Decimal("49")
    # A mean of 150 mg/dL: 3.31 + 3.588 = 6.898 %.
    assert cgm_metrics(_samples("150", "150", unit="mg/dL")).gmi_percent == Decimal("6.8980")


def test_empty_and_single_sample() -> None:
    empty = cgm_metrics([])
    assert empty.n == 0 and empty.mean is None and empty.tir is None and empty.gri is None
    single = cgm_metrics(_samples("5.5"))
    assert single.sd is None and single.cv is None and single.tir == 100.0


def test_wear_in_a_window_counts_slots() -> None:
    start, end = T, T + timedelta(hours=1)  # 12 slots of 5 minutes
    samples = _samples(*["6"] * 6)  # 00:00..00:25
    twins = [GlucoseSample(s.time + timedelta(seconds=1), s.value, s.unit) for s in samples]
    outside = _samples("6", "6") + []
    outside = [GlucoseSample(s.time + timedelta(hours=2), s.value, s.unit) for s in outside]
    metrics = cgm_metrics([*samples, *twins, *outside], start=start, end=end, interval_minutes=5)
    assert (metrics.wear_slots, metrics.expected_slots) == (6, 12)
    assert metrics.wear_percent == 50.0
    assert metrics.n == 12  # near-duplicates are samples; deduplication is the sync's job


def test_sparse_data_does_not_look_worn() -> None:
    daily = [GlucoseSample(T + timedelta(days=d), Decimal(6), "mmol/L") for d in range(14)]
    metrics = cgm_metrics(daily, start=T, end=T + timedelta(days=14))
    assert metrics.interval_minutes == 15
    assert metrics.wear_percent is not None and metrics.wear_percent < 1.1


def test_iglu_automatic_wear_by_hand() -> None:
    # 0, 5, 10, (gap) 25: theoretical 6, missing 2 → 66.67 % (iglu's docstring example, reshaped).
    samples = [
        GlucoseSample(T + timedelta(minutes=m), Decimal(6), "mmol/L") for m in (0, 5, 10, 25)
    ]
    metrics = cgm_metrics(samples)
    assert metrics.interval_minutes == 5
    assert (metrics.wear_slots, metrics.expected_slots) == (4, 6)


def test_agp_profile_by_local_hour() -> None:
    # 01:00 UTC is 02:00 in Stockholm in January.
    samples = [
        GlucoseSample(T + timedelta(hours=1, minutes=m), Decimal(v), "mmol/L")
        for m, v in zip(
            range(0, 55, 5),
            ["4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14"],
            strict=True,
        )
    ]
    (hour,) = agp_profile(samples, tz=STOCKHOLM)
    assert hour.hour == 2 and hour.n == 11
    assert (hour.p5, hour.p25, hour.p50, hour.p75, hour.p95) == pytest.approx(
        (4.5, 6.5, 9.0, 11.5, 13.5)
    )
    mg = agp_profile(samples, tz=STOCKHOLM, unit="mg/dL")[0]
    assert mg.p50 == pytest.approx(9.0 * 18.0156)
    assert agp_profile([], tz=STOCKHOLM) == ()


def test_samples_keep_the_unit_measured() -> None:
    readings = [reading("cgm_glucose", "70", "mg/dL"), reading("cgm_glucose", "3.9")]
    samples = samples_from_readings(readings)
    assert [(s.value, s.unit) for s in samples] == [
        (Decimal(70), "mg/dL"),
        (Decimal("3.9"), "mmol/L"),
    ]
    with pytest.raises(ValueError, match="not a glucose unit"):
        cgm_metrics([GlucoseSample(T, Decimal(1), "kg")])
