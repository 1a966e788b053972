"""Request limits: body size (before buffering) and the number of requests in flight."""

from __future__ import annotations

import json

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import PROBLEM_JSON, PayloadTooLarge

MAX_BODY_BYTES = 5 * 1024 * 1024


class _TooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """Answer 413 to a body over the limit: at once from Content-Length, or while streaming."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > self.max_bytes
            except ValueError:
                too_big = False
            if too_big:
                await _send_413(send, self.max_bytes)
                return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await _send_413(send, self.max_bytes)


async def _send_413(send: Send, max_bytes: int) -> None:
    body = json.dumps(
        PayloadTooLarge(f"The body is larger than {max_bytes} bytes.").problem()
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", PROBLEM_JSON.encode()),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class InFlightLimitMiddleware:
    """Admit at most ``limit`` requests at once; the rest wait (asynchronously) their turn.

    Why: a request's transaction begins in one worker thread and continues in others (each
    sync dependency and the endpoint take a thread of their own). If every thread of the pool
    were taken by requests waiting for a lock that an admitted request holds, that request
    could never get a thread to finish: SQLite would time out with "database is locked",
    PostgreSQL would wait for ever. Keeping ``limit`` below the thread pool's size (and at
    most the database pool's) rules that out.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limiter = anyio.CapacityLimiter(limit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        async with self.limiter:
            await self.app(scope, receive, send)
