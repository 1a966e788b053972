"""Where pushes travel: one asyncio loop in a daemon thread per process, with one aiohttp
session on it that keeps connections to each push service alive.

Why a loop and not a thread per request: a worker is CPU-bound while it pushes (the
encryption, the HTTP), and with urllib3 in eight threads half of a push's CPU went to the
standard library's HTTP parsing and to handing work between threads. aiohttp parses with its C
parser and keeps many requests in flight from one thread (issue 17 §4, ``bench/push.py``).

Callers in ordinary threads hand a coroutine to :func:`run` and wait for its result. The
session is made on first use and closed when the process exits.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import ssl
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

import aiohttp
import certifi

T = TypeVar("T")


class _Loop:
    """The process's push loop and session, started on first use (again after a fork)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._session: aiohttp.ClientSession | None = None

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the loop and wait for its result (from any other thread)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._started()).result()

    def session(self) -> aiohttp.ClientSession:
        """The process's session (call on the loop): kept-alive connections per origin."""
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=0, ssl=_tls_context())
            self._session = aiohttp.ClientSession(connector=connector, trust_env=False)
        return self._session

    def close(self) -> None:
        """Close the session and stop the loop (at exit; the next :func:`run` starts anew)."""
        with self._lock:
            loop, session = self._loop, self._session
            self._loop = self._session = None
        if loop is None or self._pid != os.getpid():
            return
        if session is not None and not session.closed:
            asyncio.run_coroutine_threadsafe(session.close(), loop).result(timeout=5)
        loop.call_soon_threadsafe(loop.stop)

    def _started(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._pid != os.getpid():
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="push-io", daemon=True)
                thread.start()
                self._loop, self._session, self._pid = loop, None, os.getpid()
            return self._loop


def _tls_context() -> ssl.SSLContext:
    """Verify push services against the bundle the environment names, else certifi's."""
    bundle = (
        os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or certifi.where()
    )
    return ssl.create_default_context(cafile=bundle)


LOOP = _Loop()
atexit.register(LOOP.close)


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on the process's push loop and wait for its result."""
    return LOOP.run(coroutine)


def session() -> aiohttp.ClientSession:
    """The process's aiohttp session (call on the push loop)."""
    return LOOP.session()


__all__ = ["LOOP", "run", "session"]
