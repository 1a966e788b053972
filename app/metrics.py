"""Prometheus metrics at ``/metrics``: requests, sync results, push, flags and jobs.

No label ever carries a patient, a user or an id: routes are labelled by their template
(``/v1/patients/{pid}/sync``), never by the path asked for. Counters and histograms live in
the process that counts them; with several API processes (``selfcare serve --workers N``)
``serve`` points ``PROMETHEUS_MULTIPROC_DIR`` at ``var/metrics`` so that any process answers
for all of them (prometheus-client's multiprocess mode). What the database knows — the push
outbox by status, open flags by severity — is read at scrape time, so it is the same from
every process and from ``selfcare worker``'s work too.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.db import transaction
from app.findings.models import Flag, FlagStatus
from app.push.models import OutboxMessage

REQUESTS = Counter(
    "selfcare_http_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
LATENCY = Histogram(
    "selfcare_http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
SYNC_READINGS = Counter(
    "selfcare_sync_readings_total", "Readings received by sync and import, by result", ["result"]
)
PUSH_OUTCOMES = Counter(
    "selfcare_push_attempts_total", "Push deliveries tried, by outcome", ["outcome"]
)
JOB_RUNS = Counter(
    "selfcare_job_runs_total", "Scheduled job runs, by job and outcome", ["job", "outcome"]
)

UNMATCHED = "unmatched"  # a path no route has: never the path itself (it may hold an id)


def count_sync_results(results: Sequence[dict[str, Any]]) -> None:
    """Count the per-item results of one sync or import batch."""
    for item in results:
        SYNC_READINGS.labels(result=str(item.get("status", "unknown"))).inc()


class MetricsMiddleware:
    """Count and time every HTTP request by method, route template and status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        method = str(scope.get("method", ""))
        answered = False

        def template() -> str:
            return getattr(scope.get("route"), "path", None) or UNMATCHED

        async def counting_send(message: Message) -> None:
            nonlocal answered
            if message["type"] == "http.response.start" and not answered:
                # Counted before the answer leaves: a client that reads it sees it counted.
                answered = True
                status = str(message["status"])
                REQUESTS.labels(method=method, route=template(), status=status).inc()
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            if not answered:  # the connection went before any answer
                REQUESTS.labels(method=method, route=template(), status="none").inc()
            LATENCY.labels(method=method, route=template()).observe(time.perf_counter() - started)


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
            for status, count in session.execute(
                select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
            ):
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
