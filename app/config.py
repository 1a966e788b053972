"""Configuration: the one place that reads the environment (prefix ``SELFCARE_``)."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Every setting of the service; each can be given as ``SELFCARE_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="SELFCARE_", extra="ignore")

    var_dir: Path = PROJECT_ROOT / "var"
    database_url: str = ""  # default: SQLite file var/selfcare.db
    host: str = "127.0.0.1"
    port: int = 8000
    scheduler_enabled: bool = True
    # How many API processes share the load (`selfcare serve --workers N` sets it): each
    # process keeps 1/N of the sync flood limit, so the limit holds across them.
    api_workers: int = Field(default=1, ge=1, le=64)
    # "development" turns on the development issuer, generated secrets, /docs and loopback push
    # endpoints; anything else is production (the default: a forgotten setting fails closed).
    environment: str = "production"
    # The base URL of links the service hands out (calendar feeds), never the request's Host.
    public_url: str = "http://127.0.0.1:8000"

    # Auth. In development the service is its own issuer: an ES256 key in var/.
    # In production set the issuer (an http(s) URL: its OpenID Connect discovery document names
    # the JWKS) and the audience; or a JWKS file for offline setups (it wins over discovery).
    auth_issuer: str = "selfcare-dev"
    auth_audience: str = "selfcare"
    auth_jwks_file: Path | None = None
    # An unknown `kid` refetches the issuer's JWKS at most this often (a flood of made-up kids
    # costs the issuer one request per interval); fetched keys are refetched when older than
    # the max age, and kept while the issuer cannot be reached.
    auth_jwks_refresh_seconds: float = Field(default=60.0, gt=0)
    auth_jwks_max_age_seconds: float = Field(default=3600.0, gt=0)
    auth_http_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    # Leeway for exp, nbf and iat against the service clock.
    auth_leeway_seconds: int = Field(default=30, ge=0, le=300)
    # The claims that find a known person at their first login (their `sub` is linked then).
    auth_personnummer_claim: str = Field(default="personnummer", min_length=1)
    auth_hsa_id_claim: str = Field(default="hsa_id", min_length=1)
    # Login to the pages with OpenID Connect at auth_issuer (authorization code with PKCE S256):
    # the service's client id there (empty: no such login), its secret (empty: a public client,
    # PKCE alone), the callback URL registered at the issuer (default: public_url +
    # /login/callback, never the request's Host), the scopes, and how long a login may take.
    oidc_client_id: str = ""
    oidc_client_secret: str = ""
    oidc_redirect_url: str = ""
    oidc_scopes: str = "openid profile"
    oidc_login_minutes: int = Field(default=10, ge=1, le=60)
    token_ttl_minutes: int = Field(default=12 * 60, ge=1)
    # Tokens living longer than this (from iat to exp) are refused, whoever issued them;
    # an iat further in the future than the clock skew leeway is refused too.
    token_max_lifetime_minutes: int = Field(default=12 * 60, ge=1)

    # The care team's web pages (app/web): the session cookie's signing key (generated into
    # var/session-key when empty; the same for every process), how long a session may sit idle
    # before it ends, and how long it may live at most.
    session_secret: str = ""
    session_idle_minutes: int = Field(default=30, ge=1, le=24 * 60)
    session_max_hours: int = Field(default=12, ge=1, le=24)

    # Secret for signing change-feed cursors; generated into var/ when empty.
    cursor_secret: str = ""

    # The audit chain's HMAC key; generated into var/audit-key when empty. Keep it outside
    # the database (and give the same one to every process that writes audit rows).
    audit_key: str = ""
    # Where the chain's head is anchored outside the database (default var/audit-anchors.log),
    # how often it is anchored, and how often the whole chain is verified (an ERROR log line
    # "AUDIT CHAIN BROKEN" is the alert).
    audit_anchor_file: Path | None = None
    audit_anchor_interval_seconds: float = Field(default=300.0, gt=0)
    audit_verify_interval_seconds: float = Field(default=6 * 3600.0, gt=0)

    # How long the team has to acknowledge a flag before it is overdue, per severity.
    flag_deadline_hours_high: int = Field(default=4, ge=1)
    flag_deadline_hours_moderate: int = Field(default=24, ge=1)
    flag_deadline_hours_low: int = Field(default=72, ge=1)

    # Web Push and the scheduled jobs (issue 5). The VAPID key: base64url of the raw 32-byte
    # P-256 private key, or a PEM; generated into var/ when empty (give it when several hosts
    # send). http:// push endpoints on loopback are accepted only in development.
    vapid_private_key: str = ""
    vapid_subject: str = "mailto:drift@egenvard.example"
    push_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    push_batch_size: int = Field(default=50, ge=1, le=1000)
    push_drain_batches: int = Field(default=20, ge=1)  # batches per dispatcher run at most
    # Subscriptions sent to at once within a batch (each one's messages stay in order).
    push_concurrency: int = Field(default=8, ge=1, le=64)
    push_max_attempts: int = Field(default=8, ge=1)
    push_backoff_base_seconds: float = Field(default=30.0, gt=0)
    push_backoff_max_seconds: float = Field(default=3600.0, gt=0)
    push_retry_after_max_seconds: int = Field(default=6 * 3600, ge=1)
    # Push endpoints (app/push/endpoints.py): https to public addresses only. The known push
    # services of the browsers; only they are accepted when the allow-list is enforced (by
    # default outside development). A fixed host → addresses table replaces DNS (tests, demos).
    push_allowed_hosts: tuple[str, ...] = (
        "fcm.googleapis.com",
        "android.googleapis.com",
        "updates.push.services.mozilla.com",
        "web.push.apple.com",
        "notify.windows.com",
    )
    push_enforce_allowlist: bool | None = None
    # Quiet hours for users who have set none (local time of the patient): routine pushes wait
    # until they end, urgent ones never wait. "" turns the default off.
    push_default_quiet_hours: str = Field(
        default="22:00-07:00", pattern=r"^(\d\d:\d\d-\d\d:\d\d)?$"
    )
    push_host_table: dict[str, list[str]] | None = None
    push_dispatch_interval_seconds: float = Field(default=5.0, gt=0)
    reminder_interval_seconds: float = Field(default=60.0, gt=0)
    reminder_window_minutes: int = Field(default=90, ge=1)  # later than this: no reminder
    escalation_interval_seconds: float = Field(default=60.0, gt=0)
    retention_interval_seconds: float = Field(default=3600.0, gt=0)
    retention_days: int = Field(default=30, ge=1)  # finished outbox rows, ended subscriptions
    rules_due_interval_seconds: float = Field(default=300.0, gt=0)
    # Goal progress is recomputed in full once a day per patient (syncs keep it current).
    goals_recompute_interval_seconds: float = Field(default=3600.0, gt=0)

    # Flood protection per (caller, patient) on sync: a token bucket, per API process.
    # 0 turns it off. A phone syncs about once a minute; this allows bursts after offline days.
    sync_rate_per_minute: int = Field(default=600, ge=0)
    sync_burst: int = Field(default=120, ge=1)

    # Probing limits (app/probing.py), a token bucket each, per API process; 0 turns one off.
    # Failed bearer tokens per client address and per claimed subject: past the burst a
    # failing request answers 429 instead of 401 (a valid token is never refused).
    auth_failures_per_minute: int = Field(default=10, ge=0)
    auth_failure_burst: int = Field(default=20, ge=1)
    # Enrolments refused with 404/409/422 per caller: past the burst every enrolment by that
    # caller answers 429 before the register is looked at (personnummer probing).
    enrol_failures_per_minute: int = Field(default=5, ge=0)
    enrol_failure_burst: int = Field(default=10, ge=1)
    invitation_failures_per_minute: int = Field(default=5, ge=0)
    invitation_failure_burst: int = Field(default=10, ge=1)
    # The .ics feed (no bearer token): unknown or ended tokens per client address, and
    # fetches per calendar link (a calendar app polls every few minutes at most).
    calendar_failures_per_minute: int = Field(default=10, ge=0)
    calendar_failure_burst: int = Field(default=20, ge=1)
    calendar_fetches_per_minute: int = Field(default=4, ge=0)
    calendar_fetch_burst: int = Field(default=20, ge=1)
    # Activity reminders go out this long before a planned activity starts.
    activity_reminder_minutes: int = Field(default=60, ge=1, le=24 * 60)
    activity_reminder_interval_seconds: float = Field(default=60.0, gt=0)

    # Security headers (app/headers.py) and the API docs. /docs (Swagger UI, served from
    # app/web/static, no CDN) is on by default in development only; /openapi.json always is.
    docs_enabled: bool | None = None
    # Strict-Transport-Security on every answer to a host that is not loopback (127.0.0.0/8,
    # localhost, ::1: plain-HTTP development); 0 sends none.
    hsts_max_age_seconds: int = Field(default=63_072_000, ge=0)  # two years; 0: no HSTS
    # Browser apps allowed to call /v1 (app/cors.py): exact origins, comma-separated
    # ("https://app.example.se,https://vard.example.se"); none by default.
    cors_origins: Annotated[tuple[str, ...], NoDecode] = ()
    # /metrics in Prometheus' format (app/metrics.py); no patient identifiers in any label.
    metrics_enabled: bool = True

    # Requests served at once per process; keep it below the worker thread pool (40) and at
    # most the database connection pool (db_pool_size + db_max_overflow).
    max_in_flight: int = Field(default=16, ge=1, le=32)
    # SQLite has one writer; more than two requests waiting in its busy handler starve the
    # oldest waiter past the busy timeout. So on SQLite at most this many are in flight.
    sqlite_max_in_flight: int = Field(default=2, ge=1, le=32)
    db_pool_size: int = Field(default=8, ge=1)
    db_max_overflow: int = Field(default=8, ge=0)

    sqlite_busy_timeout_ms: int = Field(default=10_000, ge=5_000)
    # A request's database time is bounded: on PostgreSQL each statement (statement_timeout)
    # and each lock wait (lock_timeout); on SQLite each statement (an interrupt), while lock
    # waits are bounded by the busy timeout. Past it the request answers 503 Retry-After.
    db_statement_timeout_ms: int = Field(default=15_000, ge=100)

    # Slow clients (app/limits.py, app/server.py): the request line and headers must arrive
    # within the header timeout and the whole body within the body timeout, else 408.
    request_header_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    request_body_timeout_seconds: float = Field(default=60.0, gt=0, le=3600)
    # Every body is capped at 5 MiB except an import's (a Dexcom or Open mHealth export).
    import_max_bytes: int = Field(default=50 * 1024 * 1024, ge=1024 * 1024)
    # An Apple Health export (export.xml, or its export.zip) is streamed to a temporary file,
    # never held in memory: years of a watch's heart rate are hundreds of MB, so it has a cap
    # of its own, bounded by disk rather than memory.
    apple_health_max_bytes: int = Field(default=2 * 1024**3, ge=1024)
    # An import is stored in chunks of this many readings, each its own transaction.
    import_chunk_readings: int = Field(default=5000, ge=1, le=5000)
    sample_data_dir: Path = PROJECT_ROOT / "sample_data"

    # Needed only by the test suite to start its throwaway PostgreSQL cluster.
    require_postgres: bool = False
    postgres_bin: Path | None = None

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _origins(cls, value: object) -> object:
        """Comma-separated origins; each exactly scheme://host[:port], or "*"."""
        if isinstance(value, str):
            value = [o.strip() for o in value.split(",") if o.strip()]
        for origin in value if isinstance(value, (list, tuple)) else ():
            if origin != "*" and not re.fullmatch(r"https?://[A-Za-z0-9.-]+(:\d{1,5})?", origin):
                raise ValueError(f"not an origin (scheme://host[:port], no path): {origin!r}")
        return value

    @property
    def effective_database_url(self) -> str:
        """The configured database URL, or the default SQLite file under ``var/``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.var_dir / 'selfcare.db'}"

    @property
    def auth_discovery_enabled(self) -> bool:
        """Whether keys come from the issuer's OpenID Connect discovery (a URL, no JWKS file)."""
        return self.auth_jwks_file is None and self.auth_issuer.startswith(("https://", "http://"))

    @property
    def issuer_configured(self) -> bool:
        """Whether a real token issuer is configured: a JWKS file or a discoverable issuer."""
        return self.auth_jwks_file is not None or self.auth_discovery_enabled

    @property
    def oidc_login_enabled(self) -> bool:
        """Whether the pages log in with OpenID Connect: a discoverable issuer and a client id."""
        return self.auth_discovery_enabled and bool(self.oidc_client_id)

    @property
    def oidc_callback_url(self) -> str:
        """Where the issuer sends the browser back after login (registered at the issuer)."""
        return self.oidc_redirect_url or self.public_url.rstrip("/") + "/login/callback"

    @property
    def dev_issuer_enabled(self) -> bool:
        """Whether the development issuer signs and verifies: in development, without a real one."""
        return self.is_development and not self.issuer_configured

    @property
    def default_quiet_hours(self) -> dict[str, str] | None:
        """The default quiet hours as ``{"start", "end"}``, or None when turned off."""
        if not self.push_default_quiet_hours:
            return None
        start, end = self.push_default_quiet_hours.split("-")
        return {"start": start, "end": end}

    @property
    def is_development(self) -> bool:
        """Whether the development issuer and generated secrets are allowed."""
        return self.environment == "development"

    @property
    def docs_on(self) -> bool:
        """Whether ``/docs`` is served: as configured, else in development only."""
        return self.is_development if self.docs_enabled is None else self.docs_enabled


@cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
