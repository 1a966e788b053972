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

import requests
from pywebpush import WebPushException, webpush

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
    """The real sender: pywebpush with aes128gcm, VAPID, TTL, Urgency, Topic and a timeout."""

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
        self._timeout = timeout
        self._clock = clock  # the VAPID exp is checked by the push service against real time
        self._local = threading.local()
        # One signed VAPID header per push-service origin: (its exp, the headers).
        self._vapid: dict[str, tuple[int, dict[str, str]]] = {}

    def _session(self, origin: str) -> requests.Session:
        """This thread's session for a push-service origin: its connections are kept alive."""
        sessions: dict[str, requests.Session] | None = getattr(self._local, "sessions", None)
        if sessions is None:
            sessions = self._local.sessions = {}
        session = sessions.get(origin)
        if session is None:
            session = sessions[origin] = requests.Session()
            # The environment (proxies, NO_PROXY, CA bundle) read once per origin: with
            # trust_env requests reads the whole environment twice per request, a fifth of
            # a push's time.
            session.trust_env = False
            session.proxies = requests.utils.get_environ_proxies(origin)
            bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
            if bundle:
                session.verify = bundle
        return session

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
        origin = endpoint_origin(message.endpoint)
        headers: dict[str, str | int | float] = {
            **self.vapid_headers(origin),
            "Urgency": message.urgency,
        }
        if message.topic:
            headers["Topic"] = message.topic
        try:
            response = webpush(
                subscription_info={
                    "endpoint": message.endpoint,
                    "keys": {"p256dh": message.p256dh, "auth": message.auth},
                },
                data=message.payload.decode(),
                content_encoding="aes128gcm",
                ttl=message.ttl,
                headers=headers,
                timeout=self._timeout,
                requests_session=self._session(origin),
            )
        except WebPushException as exc:
            status = exc.status_code
            if status is None:
                return SendResult(None, error=str(exc.message)[:300])
            return SendResult(int(status), exc.retry_after, _reason(exc.response))
        except requests.Timeout:
            return SendResult(None, error=f"timeout after {self._timeout:g} s")
        except requests.RequestException as exc:
            return SendResult(None, error=f"{type(exc).__name__}: {exc}"[:300])
        return SendResult(int(response.status_code), response.headers.get("Retry-After"))


def _reason(response: Any) -> str:
    reason = getattr(response, "reason", "") or ""
    return str(reason)[:300]


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
