"""Probing limits: failed authentications per client and per subject, failed enrolments.

What counts, and what is refused:

- Authentication: a bearer token that fails (bad signature, expired, unknown issuer, a
  subject that is no user) takes a token from two buckets: the client's (its peer address)
  and, when the token's payload decodes, its claimed subject's. Once either is empty, a
  failing request answers 429 with ``Retry-After`` instead of 401 (it says nothing about why
  it failed). A request whose token verifies is never refused here: a token is an ES256
  signature, nothing to guess, and refusing good tokens would let anyone lock a care unit
  out (one NAT address) or a person out (a forged token naming their subject). A request
  without any bearer token is not an attempt and is not counted.
- Enrolment (``POST /v1/patients``, where a personnummer could be probed): a 404, 409 or
  422 from the enrolment service takes a token from the caller's bucket; once it is empty,
  every enrolment by that caller answers 429 before the register is looked at, so what a
  prober can learn is capped. A request body that fails schema validation reveals nothing
  about the register and is not counted.
- Invitation codes (``POST /v1/proxy-invitations/accept``): a wrong, used or expired code
  (404) takes a token from the caller's bucket; once it is empty, every acceptance by that
  caller answers 429. A code has 160 random bits, so this caps noise, not guessing odds.
- Calendar feeds (``GET /calendar/{token}.ics``, no bearer token): an unknown, ended or
  malformed token (404) takes a token from the client's bucket (its peer address); once it
  is empty, a failing lookup answers 429 instead of 404. As with bearer tokens, a feed whose
  token is good is never refused for its address (a calendar service fetches many people's
  feeds from a few addresses); it has a bucket of its own per link instead, so a runaway
  calendar app cannot fill the audit log.

Peer address: behind a reverse proxy, run uvicorn with ``--proxy-headers`` and the proxy in
``--forwarded-allow-ips`` so the address is the client's, not the proxy's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import jwt
from starlette.requests import HTTPConnection

from app.config import Settings
from app.errors import AppError, Unauthorized
from app.readings.ratelimit import RateLimiter

Attempt = Literal["enrolment", "invitation"]
"""The kinds of attempt whose failures are counted per caller."""

# The refusals that tell a prober something: an enrolled or unknown personnummer, a wrong code.
_TELLING_FAILURES: dict[str, frozenset[int]] = {
    "enrolment": frozenset({404, 409, 422}),
    "invitation": frozenset({404}),
}


@dataclass
class ProbingLimits:
    """The buckets of failed attempts of one app; ``monotonic`` is replaceable in tests."""

    auth: RateLimiter
    enrolment: RateLimiter
    invitation: RateLimiter
    calendar: RateLimiter
    calendar_fetches: RateLimiter
    monotonic: Callable[[], float] = field(default=time.monotonic)

    @classmethod
    def from_settings(cls, settings: Settings) -> ProbingLimits:
        """The limits the settings ask for."""
        return cls(
            auth=RateLimiter(
                settings.auth_failures_per_minute,
                settings.auth_failure_burst,
                detail="Too many failed sign-in attempts; try again later.",
            ),
            enrolment=RateLimiter(
                settings.enrol_failures_per_minute,
                settings.enrol_failure_burst,
                detail="Too many failed enrolment attempts; try again later.",
            ),
            invitation=RateLimiter(
                settings.invitation_failures_per_minute,
                settings.invitation_failure_burst,
                detail="Too many wrong invitation codes; try again later.",
            ),
            calendar=RateLimiter(
                settings.calendar_failures_per_minute,
                settings.calendar_failure_burst,
                detail="Too many unknown calendar links; try again later.",
            ),
            calendar_fetches=RateLimiter(
                settings.calendar_fetches_per_minute,
                settings.calendar_fetch_burst,
                detail="This calendar is fetched too often; try again later.",
            ),
        )

    def auth_failed(self, connection: HTTPConnection, token: str, exc: Unauthorized) -> AppError:
        """Charge a failed token to its client and subject: the error to raise (429 or 401)."""
        now = self.monotonic()
        keys = [("client", client_address(connection))]
        subject = claimed_subject(token)
        if subject is not None:
            keys.append(("subject", subject))
        for key in keys:
            try:
                self.auth.refuse_if_spent(key, now)
            except AppError as refused:
                return refused
        for key in keys:
            self.auth.spend(key, now)
        return exc

    def before_attempt(self, kind: Attempt, caller_id: str) -> None:
        """Refuse (429) a caller whose failed attempts of this kind used up their bucket."""
        getattr(self, kind).refuse_if_spent((kind, caller_id), self.monotonic())

    def attempt_failed(self, kind: Attempt, caller_id: str, exc: AppError) -> None:
        """Charge a refusal that could tell the caller something to their bucket."""
        if exc.status in _TELLING_FAILURES[kind]:
            getattr(self, kind).spend((kind, caller_id), self.monotonic())

    def calendar_lookup_failed(self, connection: HTTPConnection, exc: AppError) -> AppError:
        """Charge an unknown calendar token to its client: the error to raise (429 or 404)."""
        now, key = self.monotonic(), ("calendar", client_address(connection))
        try:
            self.calendar.refuse_if_spent(key, now)
        except AppError as refused:
            return refused
        self.calendar.spend(key, now)
        return exc

    def calendar_fetched(self, link_id: str) -> None:
        """Take one fetch from a calendar link's bucket, or refuse (429)."""
        self.calendar_fetches.check(("calendar-link", link_id), self.monotonic())


def client_address(connection: HTTPConnection) -> str:
    """The peer's address (the client's, when the proxy headers are trusted)."""
    return connection.client.host if connection.client is not None else "unknown"


def claimed_subject(token: str) -> str | None:
    """The ``sub`` a token claims, unverified (only ever a bucket key), or None."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    subject = claims.get("sub")
    return subject[:256] if isinstance(subject, str) else None
