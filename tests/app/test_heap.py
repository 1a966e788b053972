"""The server sets startup's objects aside from the garbage collector and makes its full
collections rarer (``app.heap``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from app.heap import GC_THRESHOLDS

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import gc
before = gc.get_freeze_count()
import app.asgi
print(before, gc.get_freeze_count(), type(app.asgi.app).__name__, *gc.get_threshold())
"""


def test_the_served_app_freezes_what_startup_made(tmp_path: Path) -> None:
    """Importing the ASGI entry point (what uvicorn serves) freezes the startup heap: the
    app and everything it imported are out of every later full collection's walk; and the
    full collections come after 40 middle ones."""
    env = {
        **os.environ,
        "SELFCARE_ENVIRONMENT": "development",
        "SELFCARE_VAR_DIR": str(tmp_path),
        "SELFCARE_DATABASE_URL": f"sqlite:///{tmp_path}/heap.db",
    }
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=120, check=True,
    )  # fmt: skip
    before, after, kind, *thresholds = done.stdout.split()
    assert int(before) == 0
    assert int(after) > 50_000  # modules, models, schemas: a few hundred thousand objects
    assert kind  # the app itself (its outermost ASGI layer)
    # Full collections every 40 middle ones, not Python's 10: a large sync no longer pays
    # for walking its own working set several times over.
    assert tuple(map(int, thresholds)) == GC_THRESHOLDS == (700, 10, 40)
