"""Sending one push: the ``PushSender`` interface, pywebpush and aiohttp behind it, and a
recording fake.

A sender only talks to the push service; what an answer means for the outbox (sent, gone,
retry, dead letter) is the dispatcher's business.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiohttp
import requests
from pywebpush import WebPusher, WebPushException

from app.push import transport
from app.push.vapid import VapidKey

# RFC 8292 allows at most 24 h; we sign for 12 h and sign again once half of that is used, so
# a token the push service sees has at least 6 h left and one signature serves many messages.
VAPID_EXP_SECONDS = 12 * 3600
VAPID_RESIGN_SECONDS = VAPID_EXP_SECONDS // 2
# An aes128gcm body of one record: 86 bytes of header, 1 padding delimiter, 16 bytes of tag.
# Push services accept at most 4096 bytes of body, so the JSON may be 3993 bytes.
MAX_BODY_BYTES = 4096
MAX_PLAINTEXT_BYTES = MAX_BODY_BYTES - 86 - 1 - 16


@dataclass(frozen=True)
class PushMessage:
    """What to send, to which subscription, with which Web Push headers."""

    endpoint: str
    p256dh: str
    auth: str
    payload: bytes  # JSON, at most MAX_PLAINTEXT_BYTES
    ttl: int
    urgency: str  # very-low | low | normal | high
    topic: str | None = None


@dataclass(frozen=True)
class SendResult:
    """The push service's answer; ``status`` None means no answer (timeout, connection)."""

    status: int | None
    retry_after: str | None = None
    error: str = ""
    final: bool = False  # not sent and never to be retried (a refused endpoint, a bug)


class PushSender(Protocol):
    """Delivers one message to a push service."""

    async def send_async(self, message: PushMessage) -> SendResult:
        """Send one message and report the answer; never raise for network trouble.

        Awaited on the push loop (:mod:`app.push.transport`), many at once.
        """
        ...


def endpoint_origin(endpoint: str) -> str:
    """The origin of a push endpoint (scheme, host, port): the VAPID ``aud``."""
    parts = urlsplit(endpoint)
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}"


def encode_payload(payload: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON of a push payload."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


class WebPushSender:
    """The real sender: pywebpush's aes128gcm encryption, VAPID, TTL, Urgency, Topic, sent
    with aiohttp on the process's push loop, on kept-alive connections, with a timeout.

    pywebpush encrypts; the POST goes through the push loop's aiohttp session (see
    :mod:`app.push.transport` for why not a thread per request).
    """

    def __init__(
        self,
        key: VapidKey,
        *,
        subject: str,
        timeout: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._signer = key.signer()
        self._subject = subject
        # Connecting, and each wait for the answer, within the timeout; the whole push within
        # twice it, so a push service that trickles its answer cannot hold the batch.
        self._timeout = aiohttp.ClientTimeout(
            total=2 * timeout, sock_connect=timeout, sock_read=timeout
        )
        self._timeout_seconds = timeout
        self._clock = clock  # the VAPID exp is checked by the push service against real time
        # The environment's proxy for each origin, read once per origin (None: direct).
        self._proxies: dict[str, str | None] = {}
        # One signed VAPID header per push-service origin: (its exp, the headers).
        self._vapid: dict[str, tuple[int, dict[str, str]]] = {}

    def vapid_headers(self, origin: str) -> dict[str, str]:
        """The VAPID ``Authorization`` for a push-service origin, signed once per half-life."""
        now = int(self._clock())
        cached = self._vapid.get(origin)
        if cached is None or cached[0] - now < VAPID_RESIGN_SECONDS:
            # Another thread may sign the same origin at once: both tokens are valid.
            claims = {"sub": self._subject, "aud": origin, "exp": now + VAPID_EXP_SECONDS}
            cached = (now + VAPID_EXP_SECONDS, dict(self._signer.sign(claims)))
            self._vapid[origin] = cached
        return dict(cached[1])

    def send(self, message: PushMessage) -> SendResult:
        """Send one message from an ordinary thread (waits for the answer)."""
        return transport.run(self.send_async(message))

    async def send_async(self, message: PushMessage) -> SendResult:
        """Encrypt and POST one message with its origin's VAPID header (on the push loop)."""
        try:
            body = WebPusher(
                {
                    "endpoint": message.endpoint,
                    "keys": {"p256dh": message.p256dh, "auth": message.auth},
                }
            ).encode(message.payload, "aes128gcm")["body"]
        except WebPushException as exc:
            return SendResult(None, error=f"encryption: {exc.message}"[:300], final=True)
        origin = endpoint_origin(message.endpoint)
        headers = {
            **self.vapid_headers(origin),
            "TTL": str(message.ttl),
            "Urgency": message.urgency,
            "Content-Encoding": "aes128gcm",
        }
        if message.topic:
            headers["Topic"] = message.topic
        if origin not in self._proxies:
            self._proxies[origin] = _environment_proxy(origin)
        try:
            async with transport.session().post(
                message.endpoint,
                data=body,
                headers=headers,
                proxy=self._proxies[origin],
                timeout=self._timeout,
                allow_redirects=False,
            ) as response:
                await response.read()  # the whole answer, so the connection serves the next
                status, reason = response.status, response.reason
                retry_after = response.headers.get("Retry-After")
        except aiohttp.ClientProxyConnectionError as exc:
            return SendResult(None, error=f"{type(exc).__name__}: {exc}"[:300])
        except aiohttp.ClientConnectorError as exc:  # refused, unreachable, no such host
            return SendResult(None, error=f"no connection: {exc}"[:300])
        except TimeoutError:  # connecting or waiting for the answer took too long
            return SendResult(None, error=f"timeout after {self._timeout_seconds:g} s")
        except (aiohttp.ClientError, OSError) as exc:
            return SendResult(None, error=f"{type(exc).__name__}: {exc}"[:300])
        error = "" if status < 300 else str(reason or "")[:300]
        return SendResult(status, retry_after, error)


def _environment_proxy(origin: str) -> str | None:
    """The proxy the environment names for an origin (``HTTPS_PROXY``, ``NO_PROXY``...)."""
    proxies = requests.utils.get_environ_proxies(origin)
    return proxies.get(urlsplit(origin).scheme) or proxies.get("all")


@dataclass
class RecordingSender:
    """A fake sender for unit tests: records every message, answers from a script.

    ``script`` maps an endpoint to the answers it gives in turn; the last one repeats.
    Endpoints not in the script answer 201.
    """

    script: dict[str, list[SendResult]] = field(default_factory=dict)
    sent: list[PushMessage] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    async def send_async(self, message: PushMessage) -> SendResult:
        """As :meth:`send`, on the push loop."""
        return self.send(message)

    def send(self, message: PushMessage) -> SendResult:
        """Record the message and give the next scripted answer (from any thread)."""
        with self._lock:
            self.sent.append(message)
            answers = self.script.get(message.endpoint)
            if not answers:
                return SendResult(201)
            return answers.pop(0) if len(answers) > 1 else answers[0]
