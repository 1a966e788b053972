"""AT-19 long run: schemathesis over every operation, per role, ≥ 100 examples each.

In process against the ASGI app (no network), on a fresh seeded database, with the default
limits on (their 429s are documented answers too), except the failed-token limit. Prints
``AT-19 operations= cases= 5xx= failures=`` and the first failures; exits 1 on any.

    .venv/bin/python bench/schemathesis_roles.py [--examples 100] [--backends sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.auth.tokens import mint_token  # noqa: E402
from app.config import Settings  # noqa: E402
from app.db import normalise_url  # noqa: E402
from app.main import create_app  # noqa: E402
from app.patients.models import Patient  # noqa: E402
from bench.ingest import fresh_database, seed_people  # noqa: E402
from tests import pg  # noqa: E402
from tests.app.fuzz_roles import ROLES, Tally, fuzz  # noqa: E402


def run(backend: str, cluster: pg.Cluster | None, workdir: Path, examples: int) -> Tally:
    """One backend: a fresh seeded database, the app in process, every role."""
    url = fresh_database(backend, cluster, workdir)
    seed_people(url, workdir)
    settings = Settings(
        var_dir=workdir,
        database_url=url,
        scheduler_enabled=False,
        environment="development",
        cursor_secret="bench-cursor-secret",
        audit_key="bench-audit-key",
        # ignored_auth sends thousands of bad tokens from one client: past the probing burst
        # they rightly answer 429, which that check counts as a failure. Tested on its own in
        # tests/app/test_probing.py.
        auth_failures_per_minute=0,
    )
    engine = create_engine(normalise_url(url))
    with engine.connect() as conn:
        patient_ids = [str(pid) for pid in conn.execute(select(Patient.id)).scalars()]
    engine.dispose()
    app = create_app(settings)
    now = datetime.now(UTC)
    tokens = {role: mint_token(settings, handle, now=now) for role, handle in ROLES.items()}
    began = time.perf_counter()
    tally = fuzz(app, tokens, patient_ids, max_examples=examples)
    app.state.engine.dispose()
    print(f"{backend}: {tally.line()} seconds={time.perf_counter() - began:.0f}", flush=True)
    for failure in tally.failures[:10]:
        print("  " + failure.replace("\n", "\n    "))
    return tally


def main() -> None:
    """Fuzz every operation per role on each backend; exit 1 on any failure."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--examples", type=int, default=100)
    parser.add_argument("--backends", default="sqlite")
    args = parser.parse_args()
    total = Tally()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        backends = args.backends.split(",")
        cluster = None
        if "postgresql" in backends:
            bin_dir = pg.find_bin_dir(None)
            assert bin_dir is not None, "no PostgreSQL binaries found"
            cluster = pg.start(bin_dir)
        try:
            for backend in backends:
                tally = run(backend, cluster, workdir, args.examples)
                total.operations = tally.operations
                total.cases += tally.cases
                total.server_errors += tally.server_errors
                total.failures += tally.failures
        finally:
            if cluster is not None:
                cluster.stop()
    print(total.line())
    sys.exit(1 if total.server_errors or total.failures else 0)


if __name__ == "__main__":
    main()
