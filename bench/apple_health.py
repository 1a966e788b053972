"""Apple Health import bench: a ~300 MB export.xml through the CLI, in bounded memory.

Generates an export.xml of the requested size into a temporary folder (years of a watch's
heart rate with its device and metadata, the phone's step counts every 10 minutes, a morning
blood pressure as Apple lays it out: two standalone records and the correlation, SpO2, weight,
temperature, and workouts and activity summaries that are skipped), then per database:

- baseline: the pure reader alone (``sync.imports.apple_health``, no database) in a
  subprocess: records/s and peak RSS of parsing only;
- the import: ``python -m app import FILE --format apple-health`` in a subprocess against a
  fresh database with the personas: records/s, created, and the subprocess's peak RSS
  (``getrusage(RUSAGE_CHILDREN).ru_maxrss`` of a wrapper that runs only it) against a bound;
- again (``--again``, always with ``--quick``): the same file a second time creates nothing;

and once: the oversize case, the file posted to a server whose cap is half its size, with and
without a Content-Length: 413 both times, and how fast.

    .venv/bin/python bench/apple_health.py [--size-mb 300] [--quick] [--again]
        [--backends sqlite,postgresql]

Not part of ``make test``. ``--quick`` makes a 5 MB file.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.auth.tokens import mint_token  # noqa: E402
from app.config import Settings  # noqa: E402
from bench import cluster_for  # noqa: E402
from bench.ingest import count_readings, fresh_database, seed_people, serve  # noqa: E402
from tests.apple_health_export import HEAD, TAIL, WATCH_DEVICE, blood_pressure, record  # noqa: E402

RSS_BOUND_MIB = 300
"""The import's peak RSS must stay under this, whatever the file's size."""

# Runs a command as its only child and prints that child's peak RSS (KiB on Linux).
_MEASURE = (
    "import resource, subprocess, sys\n"
    "done = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
    "sys.stdout.write(done.stdout[-4000:])\n"
    "sys.stderr.write(done.stderr[-4000:])\n"
    "print('MAXRSS', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    "sys.exit(done.returncode)\n"
)
_BASELINE = (
    "import sys, time\n"
    f"sys.path.insert(0, {str(ROOT)!r})\n"
    "from sync.imports.apple_health import ExportReader\n"
    "with open(sys.argv[1], 'rb') as f:\n"
    "    reader = ExportReader(f)\n"
    "    items = sum(1 for _ in reader.items())\n"
    "print('RECORDS', reader.records_read, 'ITEMS', items)\n"
)


def _day(day: datetime, rng: random.Random) -> Iterator[str]:
    """One day of an iPhone + Apple Watch wearer's records, in Apple's text."""
    zone = "+0100"

    def at(minutes: int) -> str:
        return (day + timedelta(minutes=minutes)).strftime(f"%Y-%m-%d %H:%M:%S {zone}")

    for minute in range(0, 24 * 60, 3):  # the watch's heart rate, with its motion context
        line = record(
            "HeartRate",
            str(rng.randint(52, 110)),
            "count/min",
            at(minute),
            source="Allans Apple Watch",
            device=WATCH_DEVICE,
        )
        yield line.replace(
            "/>\n",
            '>\n  <MetadataEntry key="HKMetadataKeyHeartRateMotionContext" value="1"/>\n'
            " </Record>\n",
        )
    for minute in range(6 * 60, 22 * 60, 10):
        yield record("StepCount", str(rng.randint(0, 900)), "count", at(minute), at(minute + 10))
    systolic = rng.randint(118, 165)
    yield blood_pressure(str(systolic), str(systolic - rng.randint(35, 60)), at(7 * 60 + 5))
    for minute in (7 * 60 + 10, 13 * 60, 21 * 60):
        yield record("OxygenSaturation", f"0.{rng.randint(93, 99)}", "%", at(minute))
    yield record("BodyMass", f"{rng.uniform(176, 184):.1f}", "lb", at(7 * 60 + 15))
    yield record("BodyTemperature", f"{rng.uniform(97.5, 99.5):.1f}", "degF", at(7 * 60 + 20))
    yield record("BodyMassIndex", "24.1", "count", at(7 * 60 + 15))
    yield (
        f' <Workout workoutActivityType="HKWorkoutActivityTypeWalking" duration="31.2" '
        f'durationUnit="min" sourceName="Allans Apple Watch" startDate="{at(17 * 60)}" '
        f'endDate="{at(17 * 60 + 31)}">\n'
        '  <MetadataEntry key="HKTimeZone" value="Europe/Stockholm"/>\n </Workout>\n'
    )
    yield (
        f' <ActivitySummary dateComponents="{day:%Y-%m-%d}" activeEnergyBurned="410" '
        'activeEnergyBurnedGoal="500" activeEnergyBurnedUnit="kcal"/>\n'
    )


def generate(path: Path, size_bytes: int) -> int:
    """Write an export.xml of about ``size_bytes`` ending yesterday; return its days."""
    rng = random.Random(18)
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    days = 0
    with path.open("w", encoding="utf-8") as out:
        out.write(HEAD)
        written = len(HEAD)
        while written < size_bytes:
            days += 1  # backwards from yesterday; the order of days does not matter
            for text in _day(midnight - timedelta(days=days), rng):
                out.write(text)
                written += len(text)
        out.write(TAIL)
    return days


def _measured(command: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    """Run ``command`` as the only child of a wrapper: (seconds, peak RSS in KiB, stdout)."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, *command],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise RuntimeError(f"{command[:4]} failed:\n{done.stdout}\n{done.stderr}")
    match = re.search(r"MAXRSS (\d+)", done.stdout)
    assert match is not None
    return seconds, int(match.group(1)), done.stdout


def _number(pattern: str, text: str) -> int:
    match = re.search(pattern, text)
    return int(match.group(1)) if match else -1


def import_once(path: Path, url: str, workdir: Path) -> tuple[float, int, str]:
    """``selfcare import`` of the file for Allan: (seconds, peak RSS KiB, the summary line)."""
    env = {
        **os.environ,
        "SELFCARE_DATABASE_URL": url,
        "SELFCARE_VAR_DIR": str(workdir),
        "SELFCARE_SCHEDULER_ENABLED": "0",
        "SELFCARE_ENVIRONMENT": "development",
        "COLUMNS": "200",
    }
    command = [sys.executable, "-m", "app", "import", str(path)]
    command += ["--patient", "allan", "--format", "apple-health"]
    seconds, rss, out = _measured(command, env)
    summary = next((line for line in out.splitlines() if "imported" in line), out[-300:])
    return seconds, rss, summary


def oversize(path: Path, url: str, workdir: Path) -> None:
    """Post the file to a server capped at half its size: 413 with and without a length."""
    cap = path.stat().st_size // 2
    os.environ["SELFCARE_APPLE_HEALTH_MAX_BYTES"] = str(cap)
    try:
        process, base, _env = serve(url, workdir)
    finally:
        del os.environ["SELFCARE_APPLE_HEALTH_MAX_BYTES"]
    settings = Settings(var_dir=workdir, database_url=url, environment="development")
    headers = {"Authorization": f"Bearer {mint_token(settings, 'allan', now=datetime.now(UTC))}"}
    target = f"{base}/v1/patients/me/import?format=apple-health"

    def pieces() -> Iterator[bytes]:
        with path.open("rb") as f:
            while piece := f.read(1024 * 1024):
                yield piece

    try:
        for label, content in (("content-length", path.read_bytes), ("chunked", pieces)):
            started = time.monotonic()
            try:
                with httpx.Client(timeout=120) as client:
                    status = client.post(target, content=content(), headers=headers).status_code
            except httpx.HTTPError as exc:  # the server may close while the client still sends
                status = f"connection closed ({type(exc).__name__})"  # type: ignore[assignment]
            print(
                f"  oversize ({label}): cap {cap / 2**20:.1f} MiB, file "
                f"{path.stat().st_size / 2**20:.1f} MiB -> {status} "
                f"in {time.monotonic() - started:.2f} s"
            )
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def main() -> None:
    """Generate the export, import it per backend, print rates, RSS and the oversize case."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=300)
    parser.add_argument("--quick", action="store_true", help="a 5 MB file")
    parser.add_argument("--backends", default="sqlite")
    parser.add_argument("--rss-bound-mib", type=int, default=RSS_BOUND_MIB)
    parser.add_argument(
        "--again", action="store_true", help="import the file a second time (always with --quick)"
    )
    args = parser.parse_args()
    size_mb = 5 if args.quick else args.size_mb

    workdir = Path(tempfile.mkdtemp(prefix="selfcare-bench-ah-"))
    path = workdir / "export.xml"
    started = time.monotonic()
    days = generate(path, int(size_mb * 2**20))
    print(
        f"generated {path} ({path.stat().st_size / 2**20:.1f} MiB, {days} days) "
        f"in {time.monotonic() - started:.1f} s"
    )
    seconds, rss, out = _measured([sys.executable, "-c", _BASELINE, str(path)], dict(os.environ))
    records = _number(r"RECORDS (\d+)", out)
    print(
        f"baseline (reader only): {records:,} records in {seconds:.1f} s = "
        f"{records / seconds:,.0f} records/s, peak RSS {rss / 1024:.0f} MiB"
    )

    backends = args.backends.split(",")
    cluster = cluster_for(backends)
    failed = False
    try:
        for backend in backends:
            url = fresh_database(backend, cluster, workdir)
            seed_people(url, workdir)
            for attempt in ("first", "again") if args.quick or args.again else ("first",):
                seconds, rss, summary = import_once(path, url, workdir)
                within = rss / 1024 <= args.rss_bound_mib
                failed |= not within
                print(
                    f"{backend:<10} {attempt:<5} {records:,} records in {seconds:.1f} s = "
                    f"{records / seconds:,.0f} records/s; peak RSS {rss / 1024:.0f} MiB "
                    f"(bound {args.rss_bound_mib} MiB: {'ok' if within else 'OVER'})"
                )
                print(f"           {summary.strip()}")
            print(f"           readings stored: {count_readings(url):,}")
        oversize(path, fresh_database("sqlite", None, workdir), workdir)
    finally:
        if cluster is not None:
            cluster.stop()
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
