"""Issue 13's story end to end: the real CLI seeds, a real uvicorn serves, HTTP drives it.

Asta gives, narrows and revokes Maria's consent (tests/app/test_consent.py tells the steps);
Allan and Eva write to each other; Eva and Karin each add a note to Asta's flag.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import httpx
import pytest

from tests.app.test_consent import consent_story
from tests.live import LiveServer

pytestmark = pytest.mark.e2e


@pytest.fixture
def server(migrated_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    live = LiveServer(migrated_url, tmp_path)
    live.cli("seed")  # the sample personas, as `make run` does
    live.start()
    try:
        yield live
    finally:
        live.stop()


def test_issue_13_story(server: LiveServer) -> None:
    auth = cache(server.token)
    with httpx.Client(base_url=server.base, timeout=30) as http:
        figures = consent_story(http, auth, datetime.now(UTC))
        assert figures["grant_changes"] >= 4
