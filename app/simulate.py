"""Simulated patient devices: the personas' apps syncing over HTTP through the reference client.

Each device is a ``sync.client.SyncClient`` with its own offline queue under ``var/simulate/``.
Every simulated "tick" is a few hours of the personas' lives: Allan's morning and evening
blood pressure, Asta's weight and SpO2 (and the same weight again from her scale's own app, a
cross-source duplicate), Gunilla's CGM every five minutes. Devices go offline for a while and
then upload everything at once, exactly as phones do. Run it beside ``make run`` and watch
readings, advice and flags arrive.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from app.auth.tokens import mint_token
from app.config import Settings
from rules.engine import DEFAULT_TZ
from sync.client import SyncClient, SyncReport, SyncUnavailable

STOCKHOLM = ZoneInfo(DEFAULT_TZ)
Generator = Callable[[random.Random, datetime, datetime], Iterator[dict[str, Any]]]


def _reading(type_: str, time: datetime, value: Any, unit: str, **context: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "client_id": str(uuid.uuid4()),
        "type": type_,
        "time": time.astimezone(STOCKHOLM).isoformat(timespec="seconds"),
        "value": value,
        "unit": unit,
    }
    if context:
        item["context"] = context
    return item


def _at_local_times(start: datetime, end: datetime, hours: tuple[float, ...]) -> Iterator[datetime]:
    day = start.astimezone(STOCKHOLM).date()
    while True:
        for hour in hours:
            moment = datetime(day.year, day.month, day.day, tzinfo=STOCKHOLM) + timedelta(
                hours=hour
            )
            if moment > end:
                return
            if moment > start:
                yield moment
        day += timedelta(days=1)


def allan_phone(rng: random.Random, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
    """Home blood pressure twice a day, fasting glucose in the morning."""
    for moment in _at_local_times(start, end, (7.0, 21.0)):
        systolic = round(rng.gauss(140, 8))
        if rng.random() < 0.03:
            systolic = 182  # now and then a worrying value, to see the whole chain work
        yield _reading(
            "blood_pressure",
            moment,
            {"systolic": systolic, "diastolic": round(rng.gauss(88, 5))},
            "mm[Hg]",
            position="sitting",
            arm="left",
        )
        if moment.astimezone(STOCKHOLM).hour == 7:
            yield _reading(
                "glucose",
                moment + timedelta(minutes=2),
                round(rng.gauss(7.2, 0.6), 1),
                "mmol/L",
                meal="fasting",
            )


def asta_tablet(rng: random.Random, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
    """Morning weight, SpO2 and pulse."""
    for moment in _at_local_times(start, end, (7.5,)):
        yield _reading("weight", moment, round(rng.gauss(71.2, 0.4), 1), "kg")
        yield _reading("spo2", moment + timedelta(minutes=30), round(rng.gauss(91, 1.5)), "%")
        yield _reading("pulse", moment + timedelta(minutes=30), round(rng.gauss(78, 6)), "/min")


def gunilla_cgm(rng: random.Random, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
    """A CGM value every five minutes."""
    moment = start + timedelta(minutes=5)
    level = 7.0
    while moment <= end:
        level = min(18.0, max(2.8, level + rng.gauss(0, 0.25) + (7.0 - level) * 0.05))
        yield _reading("cgm_glucose", moment, round(level, 1), "mmol/L")
        moment += timedelta(minutes=5)


@dataclass
class Device:
    """One simulated app: whose, which source, what it measures, how often it is offline."""

    handle: str
    source: dict[str, Any]
    generate: Generator
    offline_chance: float = 0.2
    twin: Device | None = None  # a second source that sends the same weights (the scale app)
    client: SyncClient | None = field(default=None, repr=False)


DEVICES = [
    Device("allan", {"id": "allan-phone-sim", "kind": "app", "name": "Min hälsa"}, allan_phone),
    Device(
        "asta",
        {"id": "asta-tablet-sim", "kind": "app", "name": "Min hälsa"},
        asta_tablet,
        offline_chance=0.35,
        twin=Device(
            "asta", {"id": "asta-scale-sim", "kind": "device", "name": "Vågens app"}, asta_tablet
        ),
    ),
    Device(
        "gunilla",
        {"id": "gunilla-cgm-sim", "kind": "device", "name": "CGM"},
        gunilla_cgm,
        offline_chance=0.1,
    ),
]


def run(
    settings: Settings,
    *,
    base_url: str,
    days: float,
    tick_hours: float,
    seed: int,
    say: Callable[[str], None],
    sleep: Callable[[float], None],
    pause: float,
    until: datetime | None = None,
) -> dict[str, int]:
    """Drive the devices through ``days`` of readings ending ``until`` (default now)."""
    rng = random.Random(seed)
    now = datetime.now(UTC)  # tokens are minted for the real clock
    end = until or now  # the simulated lives may end at a fixed moment (a frozen clock)
    folder = settings.var_dir / "simulate"
    folder.mkdir(parents=True, exist_ok=True)
    totals = {"created": 0, "duplicates": 0, "rejected": 0, "advice": 0}
    devices = [d for base in DEVICES for d in ([base, base.twin] if base.twin else [base])]
    for device in devices:
        token = mint_token(settings, device.handle, now=now)
        device.client = SyncClient(
            base_url,
            token,
            source=device.source,
            queue_path=Path(folder / f"{device.source['id']}.db"),
            batch_size=500,
        )
    clock = end - timedelta(days=days)
    try:
        while clock < end:
            tick_end = min(end, clock + timedelta(hours=tick_hours))
            for base in DEVICES:
                assert base.client is not None
                readings = list(base.generate(rng, clock, tick_end))
                base.client.enqueue_many(readings)
                if base.twin is not None and base.twin.client is not None:
                    # The scale's own app uploads the same weights a few seconds later.
                    base.twin.client.enqueue_many(
                        [
                            {
                                **r,
                                "client_id": str(uuid.uuid4()),
                                "time": (
                                    datetime.fromisoformat(r["time"]) + timedelta(seconds=8)
                                ).isoformat(),
                            }
                            for r in readings
                            if r["type"] == "weight"
                        ]
                    )
            for device in devices:
                assert device.client is not None
                if rng.random() < device.offline_chance and tick_end < end:
                    say(
                        f"{tick_end:%Y-%m-%d %H:%M} {device.source['id']:<18} offline, "
                        f"{device.client.pending()} readings waiting"
                    )
                    continue
                try:
                    report: SyncReport = device.client.sync_once()
                except SyncUnavailable as exc:
                    say(f"{device.source['id']}: server unavailable ({exc}); will retry")
                    continue
                totals["created"] += report.created
                totals["duplicates"] += report.duplicates
                totals["rejected"] += report.rejected
                totals["advice"] += len(report.advice)
                if report.created or report.duplicates or report.advice:
                    titles = "; ".join(a.get("title", "") for a in report.advice)
                    say(
                        f"{tick_end:%Y-%m-%d %H:%M} {device.source['id']:<18} "
                        f"created {report.created}, duplicates {report.duplicates}"
                        + (f", advice: {titles}" if titles else "")
                    )
            clock = tick_end
            sleep(pause)
    finally:
        for device in devices:
            if device.client is not None:
                device.client.close()
    return totals
