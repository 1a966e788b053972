"""Where the external fixtures live: ``../shared/data`` beside the project, never copied in."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = Path(os.environ.get("SELFCARE_SHARED_DATA", PROJECT_ROOT.parent / "shared" / "data"))
"""The shared fixture folder (``SELFCARE_SHARED_DATA`` overrides it)."""
