"""Configuration: the one place that reads the environment (prefix ``SELFCARE_``)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Every setting of the service; each can be given as ``SELFCARE_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="SELFCARE_", extra="ignore")

    var_dir: Path = PROJECT_ROOT / "var"
    database_url: str = ""  # default: SQLite file var/selfcare.db
    host: str = "127.0.0.1"
    port: int = 8000
    scheduler_enabled: bool = True
    environment: str = "development"

    # Auth. In development the service is its own issuer: an ES256 key in var/.
    # In production set the issuer, audience and a JWKS file of the identity provider.
    auth_issuer: str = "selfcare-dev"
    auth_audience: str = "selfcare"
    auth_jwks_file: Path | None = None
    auth_dev_issuer: bool = True
    token_ttl_minutes: int = Field(default=12 * 60, ge=1)

    # Secret for signing change-feed cursors; generated into var/ when empty.
    cursor_secret: str = ""

    # How long the team has to acknowledge a flag before it is overdue, per severity.
    flag_deadline_hours_high: int = Field(default=4, ge=1)
    flag_deadline_hours_moderate: int = Field(default=24, ge=1)
    flag_deadline_hours_low: int = Field(default=72, ge=1)
    # Advice about readings older than this at arrival is recorded but not pushed.
    advice_stale_hours: int = Field(default=24, ge=1)

    sqlite_busy_timeout_ms: int = Field(default=10_000, ge=5_000)
    sample_data_dir: Path = PROJECT_ROOT / "sample_data"

    # Needed only by the test suite to start its throwaway PostgreSQL cluster.
    require_postgres: bool = False
    postgres_bin: Path | None = None

    @property
    def effective_database_url(self) -> str:
        """The configured database URL, or the default SQLite file under ``var/``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.var_dir / 'selfcare.db'}"

    @property
    def is_development(self) -> bool:
        """Whether the development issuer and generated secrets are allowed."""
        return self.environment == "development"


@cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
