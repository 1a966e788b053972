"""Prometheus metrics at ``/metrics``: requests, sync results, push, flags and jobs.

This module holds what the processes count (any domain may count here; it imports none);
:mod:`app.scrape` answers ``/metrics`` with these and the gauges read from the database.

No label ever carries a patient, a user or an id: routes are labelled by their template
(``/v1/patients/{pid}/sync``), never by the path asked for. Counters and histograms live in
the process that counts them; with several API processes (``selfcare serve --workers N``)
``serve`` points ``PROMETHEUS_MULTIPROC_DIR`` at ``var/metrics`` so that any process answers
for all of them (prometheus-client's multiprocess mode). What the database knows — the push
outbox by status, open flags by severity — is read at scrape time, so it is the same from
every process and from ``selfcare worker``'s work too.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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
JOB_ITEM_FAILURES = Counter(
    "selfcare_job_item_failures_total",
    "Patients (or activities) a scheduled job failed on and went past, by job",
    ["job"],
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
        """Pass the request on, counting and timing its answer."""
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
