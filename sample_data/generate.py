"""Generate the sample personas of Egenvård sync: personas, plans and 35 days of readings.

Run from the repository root (it rewrites every file it owns, byte for byte the same each time):

    .venv/bin/python sample_data/generate.py

Everything is deterministic: one fixed seed, one random stream per patient (so changing one
persona does not change the others), and client ids derived with uuid5 from the row's key.

Readings are written relative to an *anchor day* (``day`` = 0 is the anchor, -34 the first
day) in the patient's local time; the loader picks the anchor (the patient's local
"yesterday") and turns ``day`` + ``local_time`` into aware timestamps. See README.md.
"""

from __future__ import annotations

import csv
import json
import math
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

SEED = 20260101
DAYS = 35
FIRST_DAY = -(DAYS - 1)  # -34
ZONE = "Europe/Stockholm"
MG_PER_MMOL = 18.0156  # CLINICAL §1: molar mass of glucose 180.156 g/mol

# uuid5 namespace of the sample data; changing it changes every client_id.
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://egenvard.example/sample_data/readings")

HERE = Path(__file__).resolve().parent
SKATTEVERKET = (
    HERE.parent.parent / "shared" / "data" / "skatteverket" / "testpersonnummer_sample.txt"
)

COLUMNS = [
    "client_id",
    "source_id",
    "type",
    "day",
    "local_time",
    "end_day",
    "end_local_time",
    "value",
    "systolic",
    "diastolic",
    "unit",
    "context",
]

# Rule ids of CLINICAL §2 that the v1 rule library implements (single-reading rules).
V1_RULES = (
    "bp-very-high",
    "bp-low",
    "glucose-low",
    "glucose-very-low",
    "spo2-low",
    "pulse-abnormal",
    "temperature-fever",
)


# --------------------------------------------------------------------------------------
# Personas
# --------------------------------------------------------------------------------------

# Personnummer come only from Skatteverket's test numbers (CLINICAL §5). The sample holds
# birth years 1977, 1979, 1984 and 1988 only, so the closest year to the persona's age is
# used (Allan 58 → 1968 and Asta 84 → 1942 both get 1977, Gunilla 45 → 1981 gets 1979);
# the penultimate digit matches the persona's sex (odd: man, even: woman).
PERSONNUMMER = {
    "allan": "197701172392",
    "asta": "197701182383",
    "gunilla": "197909212388",
}

# Fictional phone numbers from the series PTS reserves for use in examples and fiction.
PHONE_VC_NORRA = "08-465 004 10"
PHONE_HEMSJUKVARD = "08-465 004 20"
PHONE_HEMSJUKVARD_JOUR = "08-465 004 21"
PHONE_DIABETES = "08-465 004 30"


def personas() -> dict[str, Any]:
    """Return the organisations, care units, teams, users, patients, grants and sources."""
    return {
        "organisations": [
            {"key": "region", "name": "Region Exempel", "kind": "region"},
            {"key": "kommun", "name": "Exempels kommun", "kind": "municipality"},
        ],
        "care_units": [
            {
                "key": "vc-norra",
                "organisation": "region",
                "name": "Vårdcentralen Norra",
            },
            {
                "key": "diabetes",
                "organisation": "region",
                "name": "Diabetesmottagningen",
            },
            {
                "key": "hemsjukvard",
                "organisation": "kommun",
                "name": "Hemsjukvården Exempels kommun",
            },
        ],
        # A team's phone is what advice names when a plan gives no contact.
        "teams": [
            {
                "key": "vc-norra-team",
                "care_unit": "vc-norra",
                "name": "Sjuksköterskemottagningen, Vårdcentralen Norra",
                "phone": PHONE_VC_NORRA,
            },
            {
                "key": "diabetes-team",
                "care_unit": "diabetes",
                "name": "Diabetesteamet",
                "phone": PHONE_DIABETES,
            },
            {
                "key": "hemsjukvard-team",
                "care_unit": "hemsjukvard",
                "name": "Hemsjukvården, team Norr",
                "phone": PHONE_HEMSJUKVARD,
            },
        ],
        "users": [
            {
                "handle": "allan",
                "display_name": "Allan Andersson",
                "role": "patient",
                "language": "sv",
            },
            {
                "handle": "asta",
                "display_name": "Asta Berglund",
                "role": "patient",
                "language": "sv",
            },
            {
                "handle": "gunilla",
                "display_name": "Gunilla Lindqvist",
                "role": "patient",
                "language": "sv",
            },
            {
                "handle": "maria",
                "display_name": "Maria Berglund",
                "role": "proxy",
                "language": "sv",
            },
            {
                "handle": "eva",
                "display_name": "Eva Ek",
                "role": "clinician",
                "language": "sv",
                "title": "Sjuksköterska",
                "teams": ["vc-norra-team"],
            },
            {
                "handle": "karin",
                "display_name": "Karin Holm",
                "role": "clinician",
                "language": "sv",
                "title": "Sjuksköterska",
                "teams": ["hemsjukvard-team"],
            },
            {
                "handle": "olof",
                "display_name": "Olof Nyström",
                "role": "clinician",
                "language": "sv",
                "title": "Läkare",
                "teams": ["diabetes-team"],
            },
            {
                "handle": "admin",
                "display_name": "Administratör",
                "role": "admin",
                "language": "sv",
            },
        ],
        "patients": [
            {
                "handle": "allan",
                "personnummer": PERSONNUMMER["allan"],
                "display_name": "Allan Andersson",
                "timezone": ZONE,
                "language": "sv",
                "teams": ["vc-norra-team"],
            },
            {
                "handle": "asta",
                "personnummer": PERSONNUMMER["asta"],
                "display_name": "Asta Berglund",
                "timezone": ZONE,
                "language": "sv",
                "teams": ["vc-norra-team", "hemsjukvard-team"],
            },
            {
                "handle": "gunilla",
                "personnummer": PERSONNUMMER["gunilla"],
                "display_name": "Gunilla Lindqvist",
                "timezone": ZONE,
                "language": "sv",
                "teams": ["diabetes-team"],
            },
        ],
        "grants": [
            {
                "grantee": "maria",
                "patient": "asta",
                "scopes": ["read", "receive_advice", "enter_readings"],
                "valid_from": "2026-01-01T00:00:00+01:00",
                "valid_to": None,
            }
        ],
        "sources": [
            {
                "patient": "allan",
                "id": "allan-phone",
                "kind": "app",
                "name": "Min hälsa",
                "version": "2.3.1",
                "device": {"manufacturer": "Omron", "model": "M7"},
            },
            {
                "patient": "allan",
                "id": "allan-meter",
                "kind": "device",
                "name": "Contour Next ONE",
                "version": "1.4.2",
                "device": {"manufacturer": "Ascensia", "model": "Contour Next ONE"},
            },
            {
                "patient": "asta",
                "id": "asta-tablet",
                "kind": "app",
                "name": "Min hälsa",
                "version": "2.3.1",
                "device": {"manufacturer": "Samsung", "model": "Galaxy Tab A9"},
            },
            {
                "patient": "asta",
                "id": "asta-scale-app",
                "kind": "device",
                "name": "Withings Health Mate",
                "version": "6.4.0",
                "device": {"manufacturer": "Withings", "model": "Body+"},
            },
            {
                "patient": "gunilla",
                "id": "gunilla-cgm",
                "kind": "device",
                "name": "Dexcom G7",
                "version": "2.2.0",
                "device": {"manufacturer": "Dexcom", "model": "G7"},
            },
            {
                "patient": "gunilla",
                "id": "gunilla-meter",
                "kind": "device",
                "name": "Accu-Chek Guide",
                "version": "1.0.3",
                "device": {"manufacturer": "Roche", "model": "Accu-Chek Guide"},
            },
        ],
    }


def check_personnummer(numbers: Iterable[str]) -> None:
    """Refuse any personnummer that is not in Skatteverket's test-number file."""
    if not SKATTEVERKET.exists():  # a checkout without ../shared: trust the constants
        return
    allowed = {
        line.strip()
        for line in SKATTEVERKET.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    for number in numbers:
        if number not in allowed:
            raise SystemExit(f"{number} is not a Skatteverket test personnummer")


# --------------------------------------------------------------------------------------
# Plans (DESIGN §4.3 plan body)
# --------------------------------------------------------------------------------------


def _rule(rule: str, **params: Any) -> dict[str, Any]:
    return {"rule": rule, "params": params}


def _q(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit}


def plans() -> dict[str, dict[str, Any]]:
    """Return the full plan body of each patient, keyed by handle."""
    allan = {
        "rules": [
            _rule("bp-very-high"),
            _rule("bp-home-mean-high"),
            _rule("bp-low"),
            _rule("glucose-low"),
            _rule("glucose-very-low"),
            _rule("glucose-high"),
        ],
        "schedule": [
            {"type": "blood_pressure", "times": ["07:00", "21:00"], "days": "daily"},
            {"type": "glucose", "times": ["07:00"], "days": "daily"},
            {"type": "weight", "times": ["07:15"], "days": "weekly"},
        ],
        "agreements": [
            {
                "text": "Mät blodtrycket morgon (kl. 07) och kväll (kl. 21): sitt still i 5 minuter, "
                "mät två gånger med 1–2 minuters mellanrum, på vänster arm."
            },
            {"text": "Mät fasteblodsockret varje morgon innan frukost."},
            {"text": "Väg dig en gång i veckan, på morgonen efter toalettbesök, före frukost."},
            {
                "text": "Promenera minst 30 minuter om dagen. Målet är 8 000 steg per dag och "
                "blodtryck under 135/85 i hemmamätning."
            },
            {
                "text": "Är blodtrycket 180/110 eller högre: vila 5 minuter och mät igen. Är det "
                "fortfarande högt, eller har du bröstsmärta, svår huvudvärk eller synpåverkan, ring "
                "vårdcentralen eller 1177 samma dag. Vid akuta symtom ring 112."
            },
            {
                "text": "Vid blodsocker under 3,9: ät eller drick 15 g snabbt socker och mät igen "
                "efter 15 minuter."
            },
        ],
        "contact": {
            "name": "Eva Ek",
            "role": "Sjuksköterska, Vårdcentralen Norra",
            "phone": PHONE_VC_NORRA,
        },
    }
    asta = {
        "rules": [
            _rule("weight-gain-hf"),
            _rule("hf-weight-gain-week"),
            _rule("copd-deterioration"),
            _rule("spo2-low", target_low=_q(88, "%")),
            _rule("pulse-abnormal"),
            _rule("temperature-fever", high_risk=True),
            _rule("bp-very-high"),
            _rule("bp-low"),
            _rule("missing-readings"),
        ],
        "schedule": [
            {"type": "weight", "times": ["07:30"], "days": "daily"},
            {"type": "blood_pressure", "times": ["08:00"], "days": "daily"},
            {"type": "pulse", "times": ["08:00"], "days": "daily"},
            {"type": "spo2", "times": ["08:00"], "days": "daily"},
            {"type": "symptom_score", "times": ["08:00"], "days": "daily"},
        ],
        "agreements": [
            {"text": "Väg dig varje morgon efter toalettbesök, före frukost, i samma kläder."},
            {
                "text": "Ökar vikten mer än 2 kg på 3 dagar: ta en extra tablett vätskedrivande "
                "(furosemid 40 mg) enligt ordinationen och ring hemsjukvården samma dag."
            },
            {
                "text": "Mät blodtryck, puls och syremättnad kl. 08 när du har suttit och vilat i "
                "5 minuter."
            },
            {
                "text": "Syremättnaden ska ligga mellan 88 och 92 %. Är den under 88 %: vila och mät "
                "igen efter 10 minuter. Är den fortfarande låg, ring hemsjukvården."
            },
            {"text": "Fyll i CAT-formuläret om andning och ork varje morgon."},
            {
                "text": "Vid feber, 38 grader eller mer: vila och drick ordentligt. Hör av dig till "
                "hemsjukvården om du blir sämre."
            },
            {"text": "Dottern Maria får se dina värden och råd och får lägga in mätvärden åt dig."},
            {
                "text": "Hjärtsviktsmottagningen på Vårdcentralen Norra (sjuksköterska Eva Ek, "
                f"{PHONE_VC_NORRA}) går igenom vikten och medicinerna varje månad."
            },
            {
                "text": "Kvällar och helger: ring hemsjukvårdens jour, "
                f"{PHONE_HEMSJUKVARD_JOUR}. Vid svår andnöd eller bröstsmärta: ring 112."
            },
        ],
        "contact": {
            "name": "Karin Holm",
            "role": "Sjuksköterska, Hemsjukvården Exempels kommun",
            "phone": PHONE_HEMSJUKVARD,
        },
    }
    gunilla = {
        "rules": [
            _rule("glucose-low"),
            _rule("glucose-very-low"),
            _rule("glucose-high"),
            _rule("glucose-sustained-high"),
            _rule("ketones-high"),
            _rule("cgm-tir-low"),
            _rule("cgm-tbr-high"),
        ],
        "schedule": [
            {"type": "glucose", "times": ["07:00"], "days": "daily"},
        ],
        "agreements": [
            {"text": "Bär sensorn dygnet runt och byt den var 10:e dag."},
            {
                "text": "Kontrollera blodsockret i fingret varje morgon kl. 07 och när sensorvärdet "
                "inte stämmer med hur du mår."
            },
            {
                "text": "Vid värde under 3,9: ta 15 g snabba kolhydrater, till exempel 4 druvsockertabletter, "
                "och mät igen efter 15 minuter."
            },
            {
                "text": "Vid värde under 3,0: gör som ovan och säg till någon i närheten. Ha alltid "
                "glukagon hemma och på jobbet."
            },
            {
                "text": "Två värden över 15 inom ett dygn: drick vatten, mät ketoner och ta "
                "korrektionsdos enligt din plan."
            },
            {
                "text": "Blodsocker 14 mmol/L eller mer i två timmar: mät ketoner i blodet. "
                "Ketoner 0,6–1,4 mmol/L: följ planen för sjukdagar och mät igen om två timmar. "
                "Ketoner 1,5–2,9 mmol/L: ring diabetesmottagningen direkt. "
                "Ketoner 3,0 mmol/L eller mer: ring 112."
            },
            {
                "text": "Mål: mer än 70 % av tiden mellan 3,9 och 10 mmol/L, mindre än 4 % under 3,9 "
                "och mindre än 1 % under 3,0."
            },
            {
                "text": "Diabetessjuksköterskan går igenom kurvorna med dig varannan vecka via "
                "meddelanden i appen."
            },
        ],
        "contact": {
            "name": "Diabetesmottagningen",
            "role": "Diabetessjuksköterska (telefontid 08–09)",
            "phone": PHONE_DIABETES,
        },
    }
    return {"allan": allan, "asta": asta, "gunilla": gunilla}


def v1_plan(plan: dict[str, Any]) -> dict[str, Any]:
    """Return the plan with only the rules the v1 rule library has."""
    return {**plan, "rules": [r for r in plan["rules"] if r["rule"] in V1_RULES]}


def plans_readme(full: dict[str, dict[str, Any]]) -> str:
    """Return plans/README.md: which rule of each plan exists in v1."""
    lines = [
        "# Sample plans",
        "",
        "Generated by `sample_data/generate.py`; edit the generator, not these files.",
        "",
        "Each file is a plan body exactly as `PUT /v1/patients/{pid}/plan` takes it (DESIGN §4.3):",
        '`rules` (rule id + `params`, where a parameter is a `{"value", "unit"}` quantity or a',
        "boolean; empty `params` means the rule's defaults), `schedule` (local times in the",
        "patient's zone), `agreements` and `contact`.",
        "",
        "- `<handle>.json`: the whole plan, with every rule id of CLINICAL §2 the persona needs.",
        "- `<handle>.v1.json`: the same plan with only the rules that exist in v1. The loader uses",
        "  the v1 file until the rule library has every rule of the whole plan.",
        "",
        "Rules in v1 (single-reading rules only): " + ", ".join(f"`{r}`" for r in V1_RULES) + ".",
        "",
        "| patient | rule | in v1 |",
        "|---|---|---|",
    ]
    for handle, plan in full.items():
        for r in plan["rules"]:
            params = f" {json.dumps(r['params'], ensure_ascii=False)}" if r["params"] else ""
            lines.append(
                f"| {handle} | `{r['rule']}`{params} | {'yes' if r['rule'] in V1_RULES else 'no'} |"
            )
    lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------
# Readings
# --------------------------------------------------------------------------------------


@dataclass
class Row:
    """One CSV row before its client id is derived."""

    source_id: str
    type: str
    day: int
    seconds: int  # seconds after local midnight of `day`
    unit: str
    value: str = ""
    systolic: str = ""
    diastolic: str = ""
    end_day: int | None = None
    end_seconds: int | None = None
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def local_time(self) -> str:
        """Return the row's local time of day, ``HH:MM:SS``."""
        return hhmmss(self.seconds)


def hhmmss(seconds: int) -> str:
    """Return seconds after local midnight as ``HH:MM:SS``."""
    if not 0 <= seconds < 86400:
        raise ValueError(f"local time out of the day: {seconds}")
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def at(hour: int, minute: int, second: int = 0) -> int:
    """Return the seconds after local midnight of a time of day."""
    return hour * 3600 + minute * 60 + second


def fmt1(x: float) -> str:
    """Return a number with one decimal, as the CSV has it."""
    return f"{round(x, 1):.1f}"


def days() -> range:
    """Return the sample's day numbers, relative to today (0)."""
    return range(FIRST_DAY, 1)


def rng_for(handle: str) -> np.random.Generator:
    """One independent, fixed stream per patient."""
    return np.random.default_rng([SEED, sum(ord(c) * 31**i for i, c in enumerate(handle)) % 2**32])


def allan_rows(rng: np.random.Generator) -> list[Row]:
    """Allan: home BP (ESH duplicates morning and evening), fasting glucose, weekly weight, steps."""
    rows: list[Row] = []
    bp_ctx = {"position": "sitting", "arm": "left"}
    # Sessions he skipped (an evening out, a rushed morning): few enough that every 7-day
    # window keeps well over the 12 readings of the home-mean rule.
    skipped = {(-29, "evening"), (-18, "morning"), (-9, "evening")}
    for d in days():
        f = (d - FIRST_DAY) / (DAYS - 1)  # 0 on the first day, 1 on the anchor day
        sys_trend = 148.0 - 10.0 * f
        dia_trend = 92.0 - 5.0 * f
        for session, (h, m), shift in (
            ("morning", (7, 0), 2.0),
            ("evening", (21, 0), -2.0),
        ):
            if (d, session) in skipped:
                continue
            # Session level (day-to-day SD ~5/3) plus reading noise (SD ~3/2): total ~6/4.
            s_level = sys_trend + shift + rng.normal(0, 5.0)
            d_level = dia_trend + shift / 2 + rng.normal(0, 3.0)
            t = at(h, m) + int(rng.integers(60, 9 * 60))
            for k in range(2):
                s = s_level + rng.normal(0, 3.0) - 1.5 * k  # the second reading is often lower
                di = d_level + rng.normal(0, 2.0) - 0.8 * k
                s_i = int(np.clip(round(s), 118, 172))
                d_i = int(np.clip(round(di), 72, 104))
                rows.append(
                    Row(
                        "allan-phone",
                        "blood_pressure",
                        d,
                        t,
                        "mm[Hg]",
                        systolic=str(s_i),
                        diastolic=str(d_i),
                        context=bp_ctx,
                    )
                )
                t += int(rng.integers(60, 121))  # 1–2 min apart
        # Fasting glucose, 7.8 → 7.1 mmol/L; every 5th day (day % 5 == 0) from his meter in mg/dL.
        mmol = float(np.clip(7.8 - 0.7 * f + rng.normal(0, 0.4), 6.5, 8.5))
        t = at(7, 12) + int(rng.integers(0, 10 * 60))
        if d % 5 == 0:
            mgdl = int(np.clip(round(mmol * MG_PER_MMOL), 120, 150))
            rows.append(
                Row(
                    "allan-meter",
                    "glucose",
                    d,
                    t,
                    "mg/dL",
                    value=str(mgdl),
                    context={"meal": "fasting"},
                )
            )
        else:
            rows.append(
                Row(
                    "allan-phone",
                    "glucose",
                    d,
                    t,
                    "mmol/L",
                    value=fmt1(mmol),
                    context={"meal": "fasting"},
                )
            )
        # Steps for the whole local day, 4,500 → 7,500 with day-to-day variation.
        steps = int(np.clip(round(4500 + 3000 * f + rng.normal(0, 900)), 4000, 9000))
        rows.append(
            Row(
                "allan-phone",
                "steps",
                d,
                0,
                "{steps}",
                value=str(steps),
                end_day=d + 1,
                end_seconds=0,
            )
        )
    # Weekly weight, 96.0 → 94.5 kg.
    for d, kg in zip(range(FIRST_DAY, 1, 7), (96.0, 95.7, 95.3, 94.8, 94.5), strict=True):
        t = at(7, 15) + int(rng.integers(0, 6 * 60))
        rows.append(Row("allan-phone", "weight", d, t, "kg", value=fmt1(kg)))
    return rows


# Asta's heart-failure episode: weight (kg) on the days around it. +2.3 kg within 2 days
# (day -12 → -10), then diuretics bring it back over a week. Only day -10 is more than
# 2.0 kg above the minimum of the preceding 72 h, whether or not exactly 72 h counts.
ASTA_EPISODE = {
    -12: 71.0,
    -11: 72.1,
    -10: 73.3,
    -9: 72.9,
    -8: 72.5,
    -7: 72.0,
    -6: 71.7,
    -5: 71.4,
    -4: 71.2,
    -3: 71.1,
}
ASTA_FORGOT = {-22, -21}  # she forgets everything two days in a row
ASTA_FEVER = {-27: 37.6, -26: 38.2, -25: 37.8, -24: 37.2}  # a cold, one reading ≥ 38.0
ASTA_ROUTINE_TEMPERATURE = {-32: 36.8, -17: 36.9, -10: 37.0, -2: 36.7}
ASTA_SCALE_DUPLICATES = {
    -30: 12,
    -17: -9,
    -10: 17,
    -2: -15,
}  # day → seconds after the tablet


def asta_rows(rng: np.random.Generator) -> list[Row]:
    """Asta: daily weight, BP, pulse, SpO2 and CAT; a cold; a heart-failure episode."""
    rows: list[Row] = []
    # Baseline weight: a slow, small wander around 71 kg (day-to-day SD ~0.2 kg).
    drift = 0.0
    for d in days():
        drift = 0.6 * drift + rng.normal(0, 0.12)
        baseline = 71.0 + drift + rng.normal(0, 0.15)
        if d in ASTA_FORGOT:
            continue
        episode = -10 <= d <= -5
        cold = d in ASTA_FEVER

        kg = ASTA_EPISODE.get(d, baseline)
        t_weight = at(7, 26) + int(rng.integers(0, 14 * 60))
        rows.append(Row("asta-tablet", "weight", d, t_weight, "kg", value=fmt1(kg)))
        if d in ASTA_SCALE_DUPLICATES:
            rows.append(
                Row(
                    "asta-scale-app",
                    "weight",
                    d,
                    t_weight + ASTA_SCALE_DUPLICATES[d],
                    "kg",
                    value=fmt1(kg),
                )
            )

        t_bp = at(8, 0) + int(rng.integers(0, 8 * 60))
        s = int(np.clip(round(128 + rng.normal(0, 8)), 104, 162))
        di = int(np.clip(round(74 + rng.normal(0, 5)), 58, 92))
        rows.append(
            Row(
                "asta-tablet",
                "blood_pressure",
                d,
                t_bp,
                "mm[Hg]",
                systolic=str(s),
                diastolic=str(di),
                context={"position": "sitting", "arm": "left"},
            )
        )

        t_ox = t_bp + int(rng.integers(120, 300))
        # Her own 14-day baseline before day -10 (medians, the cold included) is 92 %,
        # 72 /min and CAT 17; day -10 is the story of issue 9: SpO2 92 -> 88, pulse 72 -> 87,
        # CAT 17 -> 22, and copd-deterioration names all three.
        pulse_mean = 86 if episode or cold else 69
        pulse = int(np.clip(round(pulse_mean + rng.normal(0, 2)), 60, 95))
        if d == -10:
            pulse = 87
        rows.append(Row("asta-tablet", "pulse", d, t_ox, "/min", value=str(pulse)))
        if d == -10:
            spo2 = 88  # the lowest she reaches: at her COPD target, so no spo2-low advice
        else:
            spo2_mean = 90.0 if episode or cold else 92.2
            spo2 = int(np.clip(round(spo2_mean + rng.normal(0, 0.6)), 89, 94))
        rows.append(Row("asta-tablet", "spo2", d, t_ox, "%", value=str(spo2)))

        temperature = ASTA_FEVER.get(d, ASTA_ROUTINE_TEMPERATURE.get(d))
        if temperature is not None:
            rows.append(
                Row(
                    "asta-tablet",
                    "temperature",
                    d,
                    t_ox + int(rng.integers(60, 180)),
                    "Cel",
                    value=fmt1(temperature),
                )
            )

        if d != -15:  # one morning she skips the questionnaire
            cat_mean = 20.5 if episode or cold else 16.5
            cat = int(np.clip(round(cat_mean + rng.normal(0, 0.8)), 14, 22))
            if d == -10:
                cat = 22
            rows.append(
                Row(
                    "asta-tablet",
                    "symptom_score",
                    d,
                    t_ox + int(rng.integers(4 * 60, 12 * 60)),
                    "{score}",
                    value=str(cat),
                    context={"instrument": "CAT"},
                )
            )
    return rows


# Gunilla's CGM: sensor sessions (start minute from day -34 00:00, phase in seconds) and gaps.
MIN_PER_DAY = 1440
TOTAL_MIN = DAYS * MIN_PER_DAY


def m(day: int, hour: int, minute: int = 0) -> int:
    """Minutes since local midnight of the first day."""
    return (day - FIRST_DAY) * MIN_PER_DAY + hour * 60 + minute


# G7 sensors: 10 days each (the 12-hour grace period unused); a new one starts reading after
# a 30-minute warm-up; sensor 3 fails early and she changes it the next morning.
CGM_SENSORS = [
    (m(-37, 19, 40), 157),  # started before the data window
    (m(-27, 20, 5) + 30, 41),
    (m(-17, 19, 50) + 30, 223),
    (m(-12, 7, 55) + 30, 98),  # replaces the failed sensor
    (m(-2, 7, 40) + 30, 12),
]
CGM_SENSOR_FAILED = (
    m(-13, 14, 10),
    m(-12, 8, 25),
)  # "sensor error" until the replacement
CGM_GAPS = [  # (start, end) minutes without readings: phone away, signal loss
    (m(-29, 1, 10), m(-29, 5, 40)),
    (m(-23, 13, 5), m(-23, 17, 20)),
    (m(-8, 22, 30), m(-7, 6, 10)),
    (m(-3, 9, 0), m(-3, 12, 15)),
]
# Lows: (day, hour, minute, nadir mmol/L, width in minutes). Nocturnal unless noted.
CGM_LOWS = [
    (-33, 3, 50, 3.5, 140),
    (-31, 3, 20, 3.4, 150),
    (-28, 15, 40, 3.6, 100),  # after cycling home from work
    (-26, 2, 40, 2.8, 110),  # level 2, brief
    (-20, 4, 10, 3.5, 150),
    (-16, 16, 30, 3.6, 100),  # after a walk
    (-11, 3, 0, 3.3, 150),
    (-9, 1, 30, 3.5, 140),
    (-6, 2, 20, 2.9, 110),  # level 2, brief
    (-4, 23, 40, 3.6, 120),
    (-1, 4, 30, 3.6, 140),
]
CGM_MISSED_BOLUS = (-14, "dinner")  # the one evening above 15 mmol/L


def _meal_kernel(t: np.ndarray, tp: float) -> np.ndarray:
    """Glucose rise after a meal, 1 at `tp` minutes; shape-3 gamma (back near 0 by ~4 tp)."""
    x = np.clip(t, 0, None) / tp
    return np.where(t > 0, x**2 * np.exp(2 * (1 - x)), 0.0)


def _bump(t: np.ndarray, center: float, width: float) -> np.ndarray:
    """A raised cosine of height 1 at `center`, zero outside ±width/2."""
    z = (t - center) / (width / 2)
    return np.where(np.abs(z) < 1, 0.5 * (1 + np.cos(np.pi * z)), 0.0)


# Meals: (name, mean start in minutes after midnight, start SD, rise mean, rise SD, minutes
# to peak). Breakfast never starts before 07:12, after the 06:55–07:10 fingerstick.
CGM_MEALS = [
    ("breakfast", 7 * 60 + 30, 15, 7.5, 1.8, 80),
    ("lunch", 12 * 60 + 15, 30, 6.0, 1.8, 85),
    ("dinner", 18 * 60 + 15, 40, 7.0, 1.9, 90),
    ("snack", 21 * 60 + 30, 30, 2.5, 0.8, 55),
]
CGM_SNACK_PROBABILITY = 0.4
CGM_WANDER_SD = 1.3  # stationary SD of the slow AR(1) wander, mmol/L
CGM_SOFT_CAP = (12.0, 2.5)  # correction boluses: above 12.0, approach 14.5 smoothly
CGM_NIGHT = (5.0, 8.0)  # range of the nightly baseline, mmol/L


def gunilla_glucose_curve(rng: np.random.Generator) -> np.ndarray:
    """Interstitial glucose (mmol/L) for every minute of the 35 days."""
    t = np.arange(TOTAL_MIN, dtype=float)
    minute_of_day = t % MIN_PER_DAY
    # Night baseline per day (5.5–8.0), joined smoothly; a dawn rise around 06:00.
    night = rng.uniform(*CGM_NIGHT, DAYS + 2)
    day_pos = t / MIN_PER_DAY
    i = np.floor(day_pos).astype(int)
    frac = day_pos - i
    w = 0.5 - 0.5 * np.cos(np.pi * frac)
    g = night[i] * (1 - w) + night[i + 1] * w
    g += 0.9 * _bump(minute_of_day, 6 * 60, 240)
    # Slow physiological wander: AR(1) per minute (time constant ~3 h).
    phi = 0.995
    eps = rng.normal(0, CGM_WANDER_SD * math.sqrt(1 - phi**2), TOTAL_MIN)
    ar = np.empty(TOTAL_MIN)
    acc = 0.0
    for k in range(TOTAL_MIN):
        acc = phi * acc + eps[k]
        ar[k] = acc
    g += ar
    missed: tuple[float, float, float] | None = None
    for d in range(DAYS):
        for name, start, sd, rise, rise_sd, tp in CGM_MEALS:
            take_snack = rng.random() < CGM_SNACK_PROBABILITY
            t0 = start + rng.normal(0, sd)
            a = max(1.0, rng.normal(rise, rise_sd))
            tp_day = tp + rng.normal(0, 8)
            if name == "snack" and not take_snack:
                continue
            if name == "breakfast":
                t0 = max(t0, 7 * 60 + 12)
            t0 += d * MIN_PER_DAY
            if (FIRST_DAY + d, name) == CGM_MISSED_BOLUS:
                missed = (t0, 8.5, tp_day)
                continue
            lo, hi = int(max(0, t0)), int(min(TOTAL_MIN, t0 + 5 * tp))
            g[lo:hi] += a * _meal_kernel(t[lo:hi] - t0, tp_day)
    # Correction boluses keep ordinary peaks below ~14.5.
    knee, span = CGM_SOFT_CAP
    g = np.where(g > knee, knee + span * np.tanh((g - knee) / span), g)
    if missed is not None:  # the evening she forgot the dinner bolus
        t0, a, tp_day = missed
        g += a * _meal_kernel(t - t0, tp_day * 1.6)
    # Lows: pull the curve down to the nadir, then the fast sugar makes it rebound.
    for day, hour, minute, nadir, width in CGM_LOWS:
        c = m(day, hour, minute)
        b = _bump(t, c, width)
        g = g * (1 - b) + nadir * b  # never below the nadir, exactly the nadir at `c`
        g += 2.4 * _meal_kernel(t - (c + 10), 30)
    clipped: np.ndarray = np.clip(g, 2.2, 22.0)
    return clipped


def gunilla_rows(rng: np.random.Generator) -> list[Row]:
    """Gunilla: CGM every 5 minutes with realistic gaps; a fingerstick every morning."""
    curve = gunilla_glucose_curve(rng)
    rows: list[Row] = []

    def glucose_at(minute: float) -> float:
        k = int(minute)
        frac = minute - k
        return float(curve[k] * (1 - frac) + curve[min(k + 1, TOTAL_MIN - 1)] * frac)

    gaps = [*CGM_GAPS, CGM_SENSOR_FAILED]
    # Sensor changes: the old sensor's last reading is a few minutes before the change.
    sensor_ends = [s for s, _ in CGM_SENSORS[1:]] + [TOTAL_MIN + 10_000]
    sensor_ends = [e - 35 for e in sensor_ends]  # stop 5 min before removal + 30 min warm-up
    dropout_left = 0
    for (start, phase), end in zip(CGM_SENSORS, sensor_ends, strict=True):
        first = start if start >= 0 else start + math.ceil(-start / 5) * 5
        k_minutes = first
        while (minute := k_minutes + phase / 60) < min(end, TOTAL_MIN - 1):
            k_minutes += 5
            if any(a <= minute < b for a, b in gaps):
                continue
            # Short dropouts (Bluetooth, compression): runs of 1–4 readings.
            if dropout_left > 0:
                dropout_left -= 1
                continue
            if rng.random() < 0.013:
                dropout_left = int(rng.integers(0, 4))
                continue
            value = glucose_at(minute) + rng.normal(0, 0.15)
            value = min(22.0, max(2.2, value))
            sec = round(minute * 60)
            day, s = FIRST_DAY + sec // 86400, sec % 86400
            rows.append(Row("gunilla-cgm", "cgm_glucose", day, s, "mmol/L", value=fmt1(value)))
    # Fingerstick at about 07:00, fasting; meter error ~5 %.
    for d in days():
        sec = at(6, 55) + int(rng.integers(0, 15 * 60))
        minute = (d - FIRST_DAY) * MIN_PER_DAY + sec / 60
        value = glucose_at(minute) * (1 + rng.normal(0, 0.05))
        rows.append(
            Row(
                "gunilla-meter",
                "glucose",
                d,
                sec,
                "mmol/L",
                value=fmt1(value),
                context={"meal": "fasting"},
            )
        )
    return rows


def client_id(handle: str, row: Row) -> str:
    """A stable id: the same row gets the same client_id on every run."""
    key = f"{handle}/{row.source_id}/{row.type}/{row.day}/{row.local_time}"
    return str(uuid.uuid5(NAMESPACE, key))


def write_readings(path: Path, handle: str, rows: Sequence[Row]) -> None:
    """Write rows sorted by time, then source and type, with derived client ids."""
    ordered = sorted(rows, key=lambda r: (r.day, r.seconds, r.source_id, r.type))
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(COLUMNS)
        seen: set[str] = set()
        for r in ordered:
            cid = client_id(handle, r)
            if cid in seen:
                raise SystemExit(f"duplicate row key in {path.name}: {r}")
            seen.add(cid)
            writer.writerow(
                [
                    cid,
                    r.source_id,
                    r.type,
                    r.day,
                    r.local_time,
                    "" if r.end_day is None else r.end_day,
                    "" if r.end_seconds is None else hhmmss(r.end_seconds),
                    r.value,
                    r.systolic,
                    r.diastolic,
                    r.unit,
                    json.dumps(r.context, ensure_ascii=False, separators=(",", ":"))
                    if r.context
                    else "",
                ]
            )


def write_json(path: Path, data: Any) -> None:
    """Write data as indented UTF-8 JSON."""
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def main() -> None:
    """Rewrite personas.json, plans/ and readings/ under sample_data/."""
    check_personnummer(PERSONNUMMER.values())
    write_json(HERE / "personas.json", personas())

    plan_dir = HERE / "plans"
    plan_dir.mkdir(exist_ok=True)
    full = plans()
    for handle, plan in full.items():
        write_json(plan_dir / f"{handle}.json", plan)
        write_json(plan_dir / f"{handle}.v1.json", v1_plan(plan))
    (plan_dir / "README.md").write_text(plans_readme(full), encoding="utf-8")

    reading_dir = HERE / "readings"
    reading_dir.mkdir(exist_ok=True)
    for handle, make in (
        ("allan", allan_rows),
        ("asta", asta_rows),
        ("gunilla", gunilla_rows),
    ):
        write_readings(reading_dir / f"{handle}.csv", handle, make(rng_for(handle)))


if __name__ == "__main__":
    main()
