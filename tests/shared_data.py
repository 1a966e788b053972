"""Where the external fixtures live: ``../shared/data`` beside the project, never copied in.

A test that reads them is marked with :func:`needs`, so that a checkout without the folder
skips it with a reason that names the missing file instead of failing with an error.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SELFCARE_SHARED_DATA", PROJECT_ROOT.parent / "shared" / "data"))
"""The shared fixture folder (``SELFCARE_SHARED_DATA`` overrides it)."""


def needs(*relative: str) -> pytest.MarkDecorator:
    """Skip the test when any of these paths under the shared folder is absent."""
    missing = [path for path in relative if not (SHARED_DATA / path).exists()]
    reason = f"the shared fixture {SHARED_DATA / missing[0]} is not there" if missing else ""
    return pytest.mark.skipif(bool(missing), reason=reason)
