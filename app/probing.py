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

Peer address: behind a reverse proxy, run uvicorn with ``--proxy-headers`` and the proxy in
``--forwarded-allow-ips`` so the address is the client's, not the proxy's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import jwt
from starlette.requests import HTTPConnection

from app.config import Settings
from app.errors import AppError, Unauthorized
from app.readings.ratelimit import RateLimiter

ENROLMENT_FAILURES = frozenset({404, 409, 422})


@dataclass
class ProbingLimits:
    """The buckets of failed attempts of one app; ``monotonic`` is replaceable in tests."""

    auth: RateLimiter
    enrolment: RateLimiter
    invitation: RateLimiter
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

    def before_enrolment(self, caller_id: str) -> None:
        """Refuse (429) an enrolment by a caller whose failed attempts used up the bucket."""
        self.enrolment.refuse_if_spent(("enrol", caller_id), self.monotonic())

    def enrolment_failed(self, caller_id: str, exc: AppError) -> None:
        """Charge a refused enrolment to its caller, when the refusal could tell them something."""
        if exc.status in ENROLMENT_FAILURES:
            self.enrolment.spend(("enrol", caller_id), self.monotonic())

    def before_invitation(self, caller_id: str) -> None:
        """Refuse (429) a caller whose wrong invitation codes used up their bucket."""
        self.invitation.refuse_if_spent(("invitation", caller_id), self.monotonic())

    def invitation_failed(self, caller_id: str, exc: AppError) -> None:
        """Charge a wrong, used or expired code (404) to its caller."""
        if exc.status == 404:
            self.invitation.spend(("invitation", caller_id), self.monotonic())


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
