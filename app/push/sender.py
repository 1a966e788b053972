"""Sending one push: the ``PushSender`` interface, pywebpush behind it, and a recording fake.

A sender only talks to the push service; what an answer means for the outbox (sent, gone,
retry, dead letter) is the dispatcher's business.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

import certifi
import requests
import urllib3
from pywebpush import WebPusher, WebPushException

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

    def send(self, message: PushMessage) -> SendResult:
        """Send one message and report the answer; never raise for network trouble."""
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
    with urllib3 on kept-alive connections with a timeout.

    pywebpush encrypts; the POST goes straight through urllib3 (requests' per-call
    preparation of cookies, hooks and environment was a third of a push's Python time).
    """

    def __init__(
        self,
        key: VapidKey,
        *,
        subject: str,
        timeout: float,
        clock: Callable[[], float] = time.time,
        connections: int = 8,
    ) -> None:
        self._signer = key.signer()
        self._subject = subject
        self._timeout = urllib3.Timeout(connect=timeout, read=timeout)
        self._timeout_seconds = timeout
        self._clock = clock  # the VAPID exp is checked by the push service against real time
        self._connections = connections
        self._lock = threading.Lock()
        # Connection pools by proxy (None: direct), each keeping connections per origin; and
        # each origin's pool, the environment read once per origin.
        self._pools: dict[str | None, urllib3.PoolManager] = {}
        self._origins: dict[str, urllib3.PoolManager] = {}
        # One signed VAPID header per push-service origin: (its exp, the headers).
        self._vapid: dict[str, tuple[int, dict[str, str]]] = {}

    def _pool(self, origin: str) -> urllib3.PoolManager:
        """The connection pool for an origin: direct, or through the environment's proxy."""
        pool = self._origins.get(origin)
        if pool is not None:
            return pool
        proxy = _environment_proxy(origin)
        with self._lock:
            pool = self._pools.get(proxy)
            if pool is None:
                options: dict[str, Any] = {
                    "maxsize": self._connections,
                    "ca_certs": os.environ.get("REQUESTS_CA_BUNDLE")
                    or os.environ.get("CURL_CA_BUNDLE")
                    or certifi.where(),
                }
                pool = (
                    urllib3.ProxyManager(proxy, **options)
                    if proxy
                    else urllib3.PoolManager(**options)
                )
                self._pools[proxy] = pool
            self._origins[origin] = pool
            return pool

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
        """Encrypt and POST one message with its origin's VAPID header."""
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
        try:
            response = self._pool(origin).request(
                "POST",
                message.endpoint,
                body=body,
                headers=headers,
                timeout=self._timeout,
                retries=False,
                redirect=False,
            )
        except urllib3.exceptions.NewConnectionError as exc:  # a TimeoutError by descent
            return SendResult(None, error=f"no connection: {exc}"[:300])
        except urllib3.exceptions.TimeoutError:
            return SendResult(None, error=f"timeout after {self._timeout_seconds:g} s")
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            return SendResult(None, error=f"{type(exc).__name__}: {exc}"[:300])
        status = int(response.status)
        error = "" if status < 300 else str(response.reason or "")[:300]
        return SendResult(status, response.headers.get("Retry-After"), error)


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

    def send(self, message: PushMessage) -> SendResult:
        """Record the message and give the next scripted answer (from any thread)."""
        with self._lock:
            self.sent.append(message)
            answers = self.script.get(message.endpoint)
            if not answers:
                return SendResult(201)
            return answers.pop(0) if len(answers) > 1 else answers[0]
