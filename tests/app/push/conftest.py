"""Fixtures of the push tests: the local push service, a job-style session factory, settings."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.config import Settings
from tests.app.push.push_service import LocalPushService


@pytest.fixture
def push_service() -> Iterator[LocalPushService]:
    """A local push service on a free loopback port; it hangs up 2.5 s into a timeout."""
    service = LocalPushService(hang_seconds=2.5)
    yield service
    service.stop()


@pytest.fixture
def push_settings(settings: Settings) -> Settings:
    """Test settings with short timeouts and few attempts."""
    return settings.model_copy(
        update={
            # Long enough that a loaded CI machine answers a good push in time (0.3 s was
            # not: a 201 timed out now and then, and the row was sent a third time).
            "push_timeout_seconds": 1.5,
            "push_max_attempts": 4,
            "push_backoff_base_seconds": 10.0,
            "push_backoff_max_seconds": 60.0,
            "push_batch_size": 20,
        }
    )
