"""The sample personas' stories, evaluated with their own plans (sample_data/README.md)."""

from __future__ import annotations

import csv
import json
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

from rules.catalogue import CATALOGUE, MeasurementType, to_canonical
from rules.engine import Finding, evaluate
from rules.facts import ReadingFact
from rules.language import load_library
from rules.plan import PlanSpec
from tests.rules.factories import STOCKHOLM

SAMPLE = Path(__file__).parents[2] / "sample_data"
ANCHOR = date(2026, 11, 1)  # the loader's anchor day; any day will do
LIBRARY = load_library()


def sample_readings(handle: str, types: set[str] | None = None) -> list[ReadingFact]:
    """Return a persona's readings as the app would hand them to the evaluator."""
    readings: list[ReadingFact] = []
    with (SAMPLE / "readings" / f"{handle}.csv").open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            if types is not None and row["type"] not in types:
                continue
            at = datetime.combine(
                ANCHOR + timedelta(days=int(row["day"])),
                time.fromisoformat(row["local_time"]),
                STOCKHOLM,
            )
            if row["type"] == "blood_pressure":
                original = {k: Decimal(row[k]) for k in ("systolic", "diastolic")}
            else:
                original = {"value": Decimal(row["value"])}
            readings.append(
                ReadingFact(
                    id=row["client_id"],
                    type=row["type"],
                    time=at.astimezone(UTC),
                    values={
                        k: to_canonical(row["type"], v, row["unit"]) for k, v in original.items()
                    },
                    unit=CATALOGUE[MeasurementType(row["type"])].canonical_unit,
                    original_values=original,
                    original_unit=row["unit"],
                    context=json.loads(row["context"]) if row["context"] else {},
                )
            )
    return readings


def sample_plan(handle: str) -> PlanSpec:
    body = json.loads((SAMPLE / "plans" / f"{handle}.json").read_text(encoding="utf-8"))
    return PlanSpec.model_validate({**body, "version": 1})


def findings(handle: str, types: set[str] | None = None) -> list[Finding]:
    readings = sample_readings(handle, types)
    return evaluate(
        sample_plan(handle),
        readings,
        new_reading_ids={r.id for r in readings},
        now=datetime.combine(ANCHOR, time(12), STOCKHOLM),
        library=LIBRARY,
    )


def day_of(finding: Finding) -> int:
    return (finding.anchor_time.astimezone(STOCKHOLM).date() - ANCHOR).days


def test_asta_day_minus_10_gives_one_copd_flag_naming_all_three() -> None:
    flagged = [
        f
        for f in findings("asta")
        if f.rule_id == "copd-deterioration" and f.flag_severity is not None and day_of(f) == -10
    ]
    assert len(flagged) == 1
    (finding,) = flagged
    c = finding.computed
    assert (c["spo2.baseline"], c["spo2.value"]) == ("92", "88")
    assert (c["pulse.baseline"], c["pulse.value"]) == ("72", "87")
    assert (c["cat.baseline"], c["cat.value"]) == ("17", "22")
    summary = finding.summary["sv"]
    for named in (
        "syremättnad 88 % (baslinje 92 %",
        "puls 87 slag per minut (baslinje 72 slag per minut",
        "CAT 22 (baslinje 17",
    ):
        assert named in summary
    assert finding.explanation()["computed"]["cat.change"] == "5"


def test_asta_day_minus_10_weight_speaks_once_per_reading() -> None:
    day = [f for f in findings("asta", {"weight"}) if day_of(f) == -10]
    speaking = [f for f in day if f.flag_severity is not None]
    # The tablet's weight and the scale app's duplicate (the app deduplicates them).
    assert {f.rule_id for f in speaking} == {"hf-weight-gain-week"} and len(speaking) == 2
    assert {f.superseded_by for f in day if f.rule_id == "weight-gain-hf"} == {
        "hf-weight-gain-week"
    }


def test_gunilla_missed_bolus_evening_asks_for_ketones() -> None:
    fired = [
        f
        for f in findings("gunilla", {"glucose", "cgm_glucose"})
        if f.rule_id == "glucose-sustained-high"
    ]
    # The missed dinner bolus (day -14) and one long meal peak (day -23) stay ≥ 14 for 2 h.
    assert {day_of(f) for f in fired} == {-23, -14}
    assert len([f for f in fired if day_of(f) == -14]) == 4
    assert all(f.advice is not None and "ketoner" in f.advice.body["sv"] for f in fired)
