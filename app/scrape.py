"""What ``/metrics`` answers: every process's counters, then the gauges the database knows.

The counters are :mod:`app.metrics`'; the push outbox by status and the open flags by
severity are read at scrape time, so they are the same from every process.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import Request
from starlette.responses import Response

from app.db import transaction
from app.findings.models import Flag, FlagStatus
from app.push.models import FINISHED, WAITING, OutboxMessage

# The outbox by status in its two halves, each counted off its own partial index: counting the
# whole table in one statement read every row (a long read under SQLite's write lock).
OUTBOX_BY_STATUS = tuple(
    select(OutboxMessage.status, func.count()).where(text(half)).group_by(OutboxMessage.status)
    for half in (WAITING, FINISHED)
)


class DatabaseCollector(Collector):
    """Gauges read from the database at scrape time: the outbox and the open flags."""

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self.factory = factory

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """The push outbox by status and the unresolved flags by severity."""
        outbox = GaugeMetricFamily(
            "selfcare_push_outbox_messages",
            "Push messages in the outbox, by status",
            labels=["status"],
        )
        flags = GaugeMetricFamily(
            "selfcare_open_flags", "Flags not yet resolved, by severity", labels=["severity"]
        )
        with transaction(self.factory) as session:
            for half in OUTBOX_BY_STATUS:
                for status, count in session.execute(half):
                    outbox.add_metric([status], count)
            for severity, count in session.execute(
                select(Flag.severity, func.count())
                .where(Flag.status != FlagStatus.RESOLVED)
                .group_by(Flag.severity)
            ):
                flags.add_metric([severity], count)
        yield outbox
        yield flags


def render(factory: sessionmaker[Session]) -> bytes:
    """Every metric in Prometheus' text format: the processes' own, then the database's."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        counted = CollectorRegistry()
        # Every process's counters, summed (the library has no type hints here).
        multiprocess.MultiProcessCollector(counted)  # type: ignore[no-untyped-call]
    else:
        counted = REGISTRY
    database = CollectorRegistry()
    database.register(DatabaseCollector(factory))
    return generate_latest(counted) + generate_latest(database)


def metrics_endpoint(request: Request) -> Response:
    """The metrics in Prometheus' text format."""
    return Response(render(request.app.state.sessionmaker), media_type=CONTENT_TYPE_LATEST)
