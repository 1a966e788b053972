"""Fixtures: both databases, built by migrating; the app; tokens for the seeded personas.

Every database-facing test takes ``db_url`` (or something built on it) and so runs twice:
on SQLite and on a throwaway PostgreSQL cluster. Each test gets a fresh database cloned from
a template that was built by running the Alembic migrations (and, for ``people``, loading the
sample personas and plans without readings).
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from app import migrate
from app.auth.tokens import mint_token
from app.clock import clock, utcnow
from app.config import PROJECT_ROOT, Settings
from app.db import make_engine, make_sessionmaker, normalise_url, transaction
from app.main import create_app
from app.seed import load_people, load_plan
from tests import pg
from tests.live import LiveServer

# Property tests state invariants, not speed (that is bench/'s job): on a loaded 2-core CI
# machine running the suite in parallel, an example may take longer than Hypothesis' 200 ms
# deadline, or data generation may look slow; neither is a failure of the invariant.
hypothesis_settings.register_profile(
    "suite", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
hypothesis_settings.load_profile("suite")

# `make test-fast` sets SELFCARE_TEST_BACKENDS=sqlite for the inner loop; CI runs both.
BACKENDS = os.environ.get("SELFCARE_TEST_BACKENDS", "sqlite,postgresql").split(",")


def _postgres_bin() -> str | None:
    configured = Settings().postgres_bin  # SELFCARE_POSTGRES_BIN, via the one config class
    return str(configured) if configured else None


def pytest_report_header() -> list[str]:
    bin_dir = pg.find_bin_dir(_postgres_bin())
    return [f"postgresql binaries: {bin_dir or 'NOT FOUND'}"]


@pytest.fixture(scope="session")
def session_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("selfcare")


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[pg.Cluster | None]:
    bin_dir = pg.find_bin_dir(_postgres_bin())
    if bin_dir is None:
        if Settings().require_postgres:
            pytest.fail("SELFCARE_REQUIRE_POSTGRES=1 but no PostgreSQL binaries were found")
        yield None
        return
    cluster = pg.start(bin_dir)
    try:
        yield cluster
    finally:
        cluster.stop(detach_removal=True)


class DatabaseFactory:
    """Clones fresh databases from templates built by migrating."""

    def __init__(self, backend: str, root: Path, cluster: pg.Cluster | None) -> None:
        self.backend = backend
        self.root = root
        self.cluster = cluster
        self.templates: dict[str, str] = {}

    def _new_name(self) -> str:
        return "t_" + uuid.uuid4().hex[:12]

    def empty(self) -> str:
        """A URL of a new database with no schema."""
        name = self._new_name()
        if self.backend == "sqlite":
            return f"sqlite:///{self.root / (name + '.db')}"
        assert self.cluster is not None
        admin = create_engine(self.cluster.admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        return self.cluster.url(name)

    def clone(self, template_url: str) -> str:
        """A URL of a new database copied from a template database."""
        name = self._new_name()
        if self.backend == "sqlite":
            target = self.root / (name + ".db")
            shutil.copyfile(template_url.removeprefix("sqlite:///"), target)
            return f"sqlite:///{target}"
        assert self.cluster is not None
        template = template_url.rsplit("/", 1)[1]
        admin = create_engine(self.cluster.admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
        admin.dispose()
        return self.cluster.url(name)

    def template(self, kind: str, build: Callable[[str], None]) -> str:
        if kind not in self.templates:
            url = self.empty()
            build(url)
            if self.backend == "sqlite":
                # Fold the WAL into the main file so a plain file copy is complete.
                engine = create_engine(url)
                with engine.connect() as conn:
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
                engine.dispose()
            self.templates[kind] = url
        return self.templates[kind]


@pytest.fixture(scope="session")
def db_factories(session_dir: Path, pg_cluster: pg.Cluster | None) -> dict[str, DatabaseFactory]:
    return {b: DatabaseFactory(b, session_dir, pg_cluster) for b in BACKENDS}


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, pg_cluster: pg.Cluster | None) -> str:
    name: str = request.param
    if name not in BACKENDS:  # a test asking for one backend, outside the fast lane's
        pytest.skip(f"{name} is not in SELFCARE_TEST_BACKENDS (the fast lane runs SQLite only)")
    if name == "postgresql" and pg_cluster is None:
        pytest.skip(
            "NO POSTGRESQL BINARIES FOUND: the PostgreSQL half of this test did not run "
            "(install the Debian package `postgresql`; CI requires it)"
        )
    return name


TEST_PUSH_HOSTS = {
    "push.example.test": ["93.184.216.34"],
    "push.example.com": ["93.184.216.34"],
    "p.example": ["93.184.216.34"],
    "fcm.googleapis.com": ["142.250.74.74", "2a00:1450:400f:80d::200a"],
}
"""Public addresses for the push hosts the tests subscribe to."""


def make_settings(root: Path, url: str) -> Settings:
    """Settings for a test: its own var/ and database, the sample data of the repo."""
    return Settings(
        environment="development",  # the development issuer mints the tests' tokens
        var_dir=root,
        database_url=url,
        sample_data_dir=PROJECT_ROOT / "sample_data",
        scheduler_enabled=False,
        cursor_secret="test-cursor-secret",
        audit_key="test-audit-key",
        sync_rate_per_minute=0,  # flood protection has its own test (AT-23)
        auth_failures_per_minute=0,  # so do the probing limits (tests/app/test_probing.py)
        enrol_failures_per_minute=0,
        calendar_failures_per_minute=0,  # .ics feed limits: tests/app/activities/test_activities.py
        calendar_fetches_per_minute=0,
        # Push endpoint hosts resolve from this table, never from DNS (no network in tests).
        push_host_table=TEST_PUSH_HOSTS,
    )


def _build_people(settings_root: Path) -> Callable[[str], None]:
    def build(url: str) -> None:
        migrate.upgrade(url)
        settings = make_settings(settings_root, url)
        engine = make_engine(url)
        with transaction(make_sessionmaker(engine)) as session:
            seed_people_and_plans(session, settings, utcnow())
        engine.dispose()

    return build


def seed_people_and_plans(session: Session, settings: Settings, now: datetime) -> None:
    """The personas and their plans, without readings."""
    import json

    personas = json.loads((settings.sample_data_dir / "personas.json").read_text())
    loaded = load_people(session, personas, now)
    for handle, patient in loaded["patients"].items():
        load_plan(
            session, patient, settings.sample_data_dir / "plans" / f"{handle}.json", None, now
        )


@pytest.fixture
def migrated_url(backend: str, db_factories: dict[str, DatabaseFactory]) -> str:
    """A fresh database with the schema and nothing else."""
    factory = db_factories[backend]
    return factory.clone(factory.template("migrated", migrate.upgrade))


@pytest.fixture
def database_at(
    backend: str, db_factories: dict[str, DatabaseFactory]
) -> Iterator[Callable[[str], tuple[str, Engine]]]:
    """A new database migrated up to an old revision: to test a migration on rows written then."""
    from alembic import command

    engines: list[Engine] = []

    def make(revision: str) -> tuple[str, Engine]:
        url = db_factories[backend].empty()
        command.upgrade(migrate.alembic_config(url), revision)
        engines.append(create_engine(normalise_url(url)))
        return url, engines[-1]

    yield make
    for engine in engines:
        engine.dispose()


@pytest.fixture
def db_url(backend: str, db_factories: dict[str, DatabaseFactory], session_dir: Path) -> str:
    """A fresh database with the schema, the personas and their plans (no readings)."""
    factory = db_factories[backend]
    return factory.clone(factory.template("people", _build_people(session_dir)))


@pytest.fixture
def settings(db_url: str, session_dir: Path) -> Settings:
    return make_settings(session_dir, db_url)


@pytest.fixture
def app(settings: Settings) -> Iterator[Any]:
    application = create_app(settings)
    yield application
    application.state.engine.dispose()


@pytest.fixture
def client(app: Any) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def factory(db_url: str) -> Iterator[sessionmaker[Session]]:
    """Sessions as jobs get them (SQLite: BEGIN IMMEDIATE)."""
    engine = make_engine(db_url)
    yield make_sessionmaker(engine)
    engine.dispose()


@pytest.fixture
def session(db_url: str) -> Iterator[Session]:
    """A session for looking behind the API.

    Its engine has no BEGIN IMMEDIATE, so it never holds SQLite's write lock; it reads in
    autocommit mode, so each query sees what the API has committed so far.
    """
    engine = create_engine(normalise_url(db_url), isolation_level="AUTOCOMMIT")
    with Session(engine, expire_on_commit=False) as db_session:
        yield db_session
    engine.dispose()


@pytest.fixture(autouse=True)
def _unfreeze_clock() -> Iterator[None]:
    yield
    clock.fixed = None


@pytest.fixture
def token(settings: Settings) -> Callable[[str], str]:
    """Mint a bearer token for a seeded handle."""

    def mint(handle: str) -> str:
        return mint_token(settings, handle, now=utcnow())

    return mint


@pytest.fixture
def auth(token: Callable[[str], str]) -> Callable[[str], dict[str, str]]:
    """Authorization headers for a seeded handle."""

    def headers(handle: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token(handle)}"}

    return headers


# `selfcare seed` takes half a minute (Gunilla's 9,300 CGM values go through the ingest), and
# a score of live-server tests want the personas: each worker seeds once per backend and
# copies the database. The seed places readings relative to its own now, so a copy older
# than this is seeded anew, keeping "the last reading was minutes ago" true for the tests.
SEEDED_TEMPLATE_MAX_AGE = 20 * 60.0  # seconds
_seeded_at: dict[str, tuple[str, float]] = {}  # backend -> (template kind, when it was seeded)


def seeded_copy(backend: str, factory: DatabaseFactory, var_dir: Path) -> str:
    """A new database as `selfcare seed` leaves it, with the seed's audit key in ``var_dir``."""
    kind, seeded_at = _seeded_at.get(backend, ("", 0.0))
    if time.monotonic() - seeded_at > SEEDED_TEMPLATE_MAX_AGE:
        kind = f"seeded-{uuid.uuid4().hex[:8]}"
        _seeded_at[backend] = (kind, time.monotonic())
    seed_var = factory.root / f"{kind}-{backend}-var"

    def build(url: str) -> None:
        migrate.upgrade(url)
        LiveServer(url, seed_var).cli("seed")

    template = factory.template(kind, build)
    var_dir.mkdir(parents=True, exist_ok=True)
    # The audit chain's HMAC key is written beside the database: the copy needs the same one.
    shutil.copyfile(seed_var / "audit-key", var_dir / "audit-key")
    return factory.clone(template)


@pytest.fixture
def seeded_server(
    backend: str, db_factories: dict[str, DatabaseFactory], tmp_path: Path
) -> Iterator[LiveServer]:
    """A real uvicorn over a database the real CLI seeded with the personas, as `make run` does."""
    live = LiveServer(seeded_copy(backend, db_factories[backend], tmp_path), tmp_path)
    live.start()
    try:
        yield live
    finally:
        live.stop()
