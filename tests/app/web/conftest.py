"""Fixtures of the page tests: browsers (cookie jars) on loopback, signed in as a persona."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response

CHROMIUM = Path("/usr/bin/chromium")
# The marks of every test in Chromium: e2e (not in the fast lane), and skipped without it.
IN_CHROMIUM = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="Chromium is not installed (/usr/bin/chromium; apt-get install chromium)",
    ),
]
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Browser:
    """One browser: its own cookie jar, on a loopback address (so the cookie is not Secure)."""

    def __init__(self, app: Any) -> None:
        self.client = TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False)

    def csrf(self, path: str = "/login") -> str:
        """The CSRF token on a page of this browser's session."""
        page = self.client.get(path)
        found = CSRF.search(page.text)
        assert found, f"no CSRF token on {path}: {page.status_code} {page.text[:300]}"
        return found.group(1)

    def login(self, handle: str) -> Response:
        """Sign in as a seeded person through the login form."""
        token = self.csrf("/login")
        answer = self.client.post("/login", data={"handle": handle, "csrf_token": token})
        assert answer.status_code == 200, answer.text[:500]
        return answer

    def post(self, path: str, data: dict[str, str], *, token_from: str | None = None) -> Response:
        """Post a form with this session's CSRF token (taken from ``token_from`` or ``path``)."""
        token = self.csrf(token_from or path)
        return self.client.post(path, data={**data, "csrf_token": token})

    def close(self) -> None:
        self.client.close()


@pytest.fixture
def browser(app: Any) -> Iterator[Callable[[], Browser]]:
    """Open browsers on the test's app (each with its own cookies)."""
    opened: list[Browser] = []

    def open_one() -> Browser:
        one = Browser(app)
        one.client.__enter__()
        opened.append(one)
        return one

    yield open_one
    for one in opened:
        one.client.__exit__(None, None, None)


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where the screenshots go."""
    configured = os.environ.get("SELFCARE_SCREENSHOTS")
    target = Path(configured) if configured else tmp_path / "screenshots"
    target.mkdir(parents=True, exist_ok=True)
    return target


@pytest.fixture
def chromium() -> Iterator[Any]:
    """Debian's Chromium driven by Playwright (headless)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            yield browser
        finally:
            browser.close()
