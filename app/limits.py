"""Request intake: who may send a body, how big and how slow it may be, and how many at once.

The order matters (outermost first):

1. ``RequestIntakeMiddleware`` refuses an address (path or query) with control characters
   (400: ids and filters reach the database, and PostgreSQL cannot hold a NUL), refuses a
   body from a caller without a valid bearer token (401, or 429 for a prober) before a byte
   of it is read, refuses a body over its cap (413, from Content-Length at once or while
   streaming) and a body that arrives too slowly (408), and otherwise reads it whole;
2. only then does ``InFlightLimitMiddleware`` give the request one of the few slots that
   guard database work, and the route replays the buffered body.

So a slow or hostile upload holds a socket and at most its capped bytes of memory, never a
slot, a database connection or SQLite's write lock: ``/healthz`` and other users' requests
keep answering while it trickles. A streamed import (``format=apple-health``, hundreds of MB)
is read the same way before it gets a slot, but into a temporary file instead of memory, and
replayed from it in pieces.
"""

from __future__ import annotations

import json
import math
import re
import tempfile
from collections.abc import Callable
from typing import IO
from urllib.parse import parse_qsl

import anyio
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.auth.issuer import KeysNotCached
from app.auth.tokens import SigningKeys, verify_token
from app.clock import utcnow
from app.config import Settings
from app.errors import (
    PROBLEM_JSON,
    AppError,
    BadRequest,
    PayloadTooLarge,
    RequestTimeout,
    Unauthorized,
)
from app.probing import ProbingLimits
from rules.text import text_problem

MAX_BODY_BYTES = 5 * 1024 * 1024
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Imports carry whole export files: they have a cap of their own (Settings.import_max_bytes).
_IMPORT_PATH = re.compile(r"^/v1/patients/[^/]+/import$")
# Import formats whose files go to disk, not memory (see app.ingest.streamed).
STREAMED_FORMATS = frozenset({"apple-health"})
SPOOL_MEMORY_BYTES = 1024 * 1024
"""A streamed body stays in memory up to this size, then moves to a temporary file."""
REPLAY_PIECE_BYTES = 256 * 1024


class RequestIntakeMiddleware:
    """Check the address; authenticate, then read the whole body within its cap and time."""

    def __init__(
        self,
        app: ASGIApp,
        settings: Settings,
        probing: ProbingLimits,
        signing_keys: SigningKeys | None = None,
        max_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self.app = app
        self.settings = settings
        self.signing_keys = signing_keys or SigningKeys(settings)
        self.probing = probing
        self.max_bytes = max_bytes

    def _cap(self, scope: Scope) -> int:
        if _IMPORT_PATH.match(scope["path"]):
            if _streamed(scope):  # a file streamed to disk, not held in memory
                return self.settings.apple_health_max_bytes
            return self.settings.import_max_bytes
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse a bad address or token, read the body within its cap and time, then pass it on."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            _check_address(scope)
        except AppError as refused:
            await send_problem(send, refused)
            return
        if not _may_have_body(scope):
            await self.app(scope, receive, send)
            return
        # A streamed import's body goes to a temporary file (on disk past a megabyte).
        streamed = _IMPORT_PATH.match(scope["path"]) is not None and _streamed(scope)
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES) as spool:
            chunks: list[bytes] = []
            try:
                if scope["path"].startswith("/v1/"):
                    self._authenticate(scope)
                cap = self._cap(scope)
                declared = dict(scope.get("headers", [])).get(b"content-length")
                if declared is not None and declared.isdigit() and int(declared) > cap:
                    raise PayloadTooLarge(f"The body is larger than {cap} bytes.")
                more = await self._read(receive, cap, spool.write if streamed else chunks.append)
            except AppError as refused:
                await send_problem(send, refused, close=True)
                return
            if streamed:
                await self.app(scope, _replay_file(spool, more, receive), send)
            else:
                await self.app(scope, _replay(b"".join(chunks), more, receive), send)

    def _authenticate(self, scope: Scope) -> None:
        """Refuse (401, or 429 for a prober) a body from a caller without a valid token.

        Only the signature and claims are checked here (no database): the route's own
        dependencies still decide who the caller is and what they may do.
        """
        header = dict(scope.get("headers", [])).get(b"authorization", b"").decode("latin-1")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        try:
            if not token:
                raise Unauthorized()
            # On the event loop: never wait for the issuer here. A token whose key needs a
            # fetch goes on to the route, whose dependencies fetch it (in a worker thread).
            verify_token(self.settings, token, now=utcnow(), keys=self.signing_keys, fetch=False)
        except KeysNotCached:
            return
        except Unauthorized as exc:
            raise self.probing.auth_failed(HTTPConnection(scope), token, exc) from None

    async def _read(self, receive: Receive, cap: int, keep: Callable[[bytes], object]) -> bool:
        """Read the body into ``keep``; answer whether the client's stream goes on after it."""
        size = 0
        timeout = self.settings.request_body_timeout_seconds
        with anyio.move_on_after(timeout) as deadline:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return False
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > cap:
                    raise PayloadTooLarge(f"The body is larger than {cap} bytes.")
                # A spooled file's write blocks the loop only for a page-cache copy of one piece.
                keep(chunk)
                if not message.get("more_body", False):
                    return True
        assert deadline.cancelled_caught
        raise RequestTimeout(
            f"The body did not arrive within {math.ceil(timeout)} seconds; send it again."
        )


def _check_address(scope: Scope) -> None:
    """Refuse (400) a path or query parameter holding a control character."""
    problem = text_problem(scope["path"])
    if problem is not None:
        raise BadRequest(f"The path {problem}.")
    query = scope.get("query_string", b"").decode("latin-1")
    for name, value in parse_qsl(query, keep_blank_values=True, errors="replace"):
        problem = text_problem(name) or text_problem(value)
        if problem is not None:
            raise BadRequest(f"The query parameter {name[:64]!r} {problem}.")


def _streamed(scope: Scope) -> bool:
    """Whether the request is an import in a format that is streamed to disk."""
    query = scope.get("query_string", b"").decode("latin-1")
    formats = [v for k, v in parse_qsl(query, errors="replace") if k == "format"]
    return bool(formats) and formats[-1] in STREAMED_FORMATS


def _may_have_body(scope: Scope) -> bool:
    if scope["method"] in _BODY_METHODS:
        return True
    headers = dict(scope.get("headers", []))
    return b"transfer-encoding" in headers or headers.get(b"content-length", b"0") != b"0"


def _replay(body: bytes, connected: bool, receive: Receive) -> Receive:
    """A receive that hands the buffered body over once, then waits on the real one."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        if not connected:
            return {"type": "http.disconnect"}
        return await receive()

    return replay


def _replay_file(spool: IO[bytes], connected: bool, receive: Receive) -> Receive:
    """A receive that hands a spooled body over piece by piece, then waits on the real one."""
    total = spool.seek(0, 2)
    spool.seek(0)
    done = False

    async def replay() -> Message:
        nonlocal done
        if not done:
            piece = spool.read(REPLAY_PIECE_BYTES)
            done = spool.tell() >= total
            return {"type": "http.request", "body": piece, "more_body": not done}
        if not connected:
            return {"type": "http.disconnect"}
        return await receive()

    return replay


async def send_problem(send: Send, error: AppError, *, close: bool = False) -> None:
    """Answer with an error's problem+json outside the app (its routes never ran)."""
    body = json.dumps(error.problem()).encode()
    headers = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
        *((name.lower().encode(), value.encode()) for name, value in error.headers.items()),
    ]
    if close:  # the rest of the body is not read: the connection cannot carry another request
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class InFlightLimitMiddleware:
    """Admit at most ``limit`` requests at once; the rest wait (asynchronously) their turn.

    Why: a request's transaction begins in one worker thread and continues in others (each
    sync dependency and the endpoint take a thread of their own). If every thread of the pool
    were taken by requests waiting for a lock that an admitted request holds, that request
    could never get a thread to finish: SQLite would time out with "database is locked",
    PostgreSQL would wait for ever. Keeping ``limit`` below the thread pool's size (and at
    most the database pool's) rules that out. Bodies are read before a slot is taken
    (``RequestIntakeMiddleware``), so a slot is held for database work, not for a slow network.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limiter = anyio.CapacityLimiter(limit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Let the request through once a slot is free."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        async with self.limiter:
            await self.app(scope, receive, send)
