"""Fixtures of the push tests: the local push service, a job-style session factory, settings."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.config import Settings
from tests.app.push.push_service import LocalPushService


@pytest.fixture
def push_service() -> Iterator[LocalPushService]:
    """A local push service on a free loopback port; it hangs up 0.6 s into a timeout."""
    service = LocalPushService(hang_seconds=0.6)
    yield service
    service.stop()


@pytest.fixture
def push_settings(settings: Settings) -> Settings:
    """Test settings with short timeouts and few attempts."""
    return settings.model_copy(
        update={
            "push_timeout_seconds": 0.3,
            "push_max_attempts": 4,
            "push_backoff_base_seconds": 10.0,
            "push_backoff_max_seconds": 60.0,
            "push_batch_size": 20,
        }
    )
