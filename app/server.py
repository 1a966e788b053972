"""The HTTP server's protocol: uvicorn's httptools, with a deadline for the request's headers.

uvicorn bounds an idle kept-alive connection (``timeout_keep_alive``) but not a request
whose headers trickle in a byte at a time (slowloris): such a connection stays open for
ever, and enough of them exhaust the process's sockets. Here a connection that has started
(or is due to start) a request must deliver its request line and headers within the header
timeout, else it gets 408 and is closed. Bodies have their own limit (app/limits.py).

httptools (llhttp, in C) rather than h11 (pure Python): parsing a sync's request and writing
its answer took 1.5–3 ms of the server's 12–16 ms of CPU per 10-reading sync with h11
(issue 17 §1, measured 2026-12-06).
"""

from __future__ import annotations

import asyncio
import json

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.config import get_settings
from app.errors import PROBLEM_JSON, RequestTimeout

PROTOCOL_PATH = "app.server:HeaderDeadlineProtocol"


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol; headers not complete within ``header_timeout`` get 408."""

    # None: SELFCARE_REQUEST_HEADER_TIMEOUT_SECONDS, read in the serving process (the class is
    # named by its import path when uvicorn spawns several worker processes).
    header_timeout: float | None = None
    _header_timer: asyncio.TimerHandle | None = None
    # From the connection's start, and from each request's first byte, to its headers' end.
    _awaiting_headers = True

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start the clock for the first request's headers."""
        super().connection_made(transport)
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        """Feed the parser; keep the clock running while a request's headers are incomplete."""
        super().data_received(data)
        if self._awaiting_headers and not self.transport.is_closing():
            self._arm_header_timer()
        else:
            self._disarm_header_timer()

    def on_message_begin(self) -> None:
        """A request's first byte: its headers are awaited."""
        self._awaiting_headers = True
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        """The headers are in: the clock stops (the body has its own limit)."""
        self._awaiting_headers = False
        self._disarm_header_timer()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop the clock with the connection."""
        self._disarm_header_timer()
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        if self._header_timer is None:
            timeout = self.header_timeout or get_settings().request_header_timeout_seconds
            self._header_timer = self.loop.call_later(timeout, self._headers_late)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or not self._awaiting_headers:
            return
        # The parser has no request to answer: write the answer ourselves.
        body = json.dumps(
            RequestTimeout("The request's headers did not arrive in time.").problem()
        ).encode()
        head = (
            "HTTP/1.1 408 Request Timeout\r\n"
            f"content-type: {PROBLEM_JSON}\r\n"
            f"content-length: {len(body)}\r\n"
            "connection: close\r\n\r\n"
        ).encode()
        self.transport.write(head + body)
        self.transport.close()
