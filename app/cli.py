"""The ``selfcare`` command: migrate, seed, serve, mint tokens."""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from sqlalchemy import select

from app import migrate as migrations
from app.audit_cli import audit_cli
from app.auth.models import User
from app.auth.tokens import mint_token
from app.clock import utcnow
from app.config import Settings, get_settings
from app.db import make_engine, make_sessionmaker, transaction
from app.directory.cli import admin_cli
from app.errors import AppError
from app.ingest.imports import ImportFormat
from app.rules_cli import rules_cli

if TYPE_CHECKING:
    from app.ingest.streamed import Progress as StreamProgress

cli = typer.Typer(
    help="Egenvård sync: the service and its tools.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console(soft_wrap=True)


@cli.command("migrate")
def migrate_command() -> None:
    """Migrate the configured database to the newest schema."""
    settings = get_settings()
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    migrations.upgrade(settings.effective_database_url)
    console.print(f"[green]database migrated[/green] {_safe_url(settings.effective_database_url)}")


@cli.command("seed")
def seed_command() -> None:
    """Load the sample personas, plans and readings (idempotent)."""
    from app.seed import seed

    settings = get_settings()
    engine = make_engine(settings.effective_database_url)
    with transaction(make_sessionmaker(engine)) as session:
        counts = seed(session, settings, utcnow())
    engine.dispose()
    summary = ", ".join(f"{k}: {v}" for k, v in counts.items())
    console.print(f"[green]sample personas loaded[/green] (new readings — {summary})")


@cli.command("import")
def import_command(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="the file to import")],
    patient: Annotated[str, typer.Option(help="patient handle (e.g. gunilla) or patient id")],
    format: Annotated[ImportFormat, typer.Option(help="omh, dexcom-csv, fhir or apple-health")],
    source_id: Annotated[str | None, typer.Option(help="source id (default per format)")] = None,
) -> None:
    """Import Open mHealth, a Dexcom CSV, FHIR R4 or an Apple Health export via the ingest."""
    from app.audit import service as audit
    from app.ingest import streamed
    from app.ingest.imports import ImportOutcome, import_file
    from app.patients.models import Patient

    settings = get_settings()
    engine = make_engine(settings.effective_database_url)
    now = utcnow()
    with transaction(make_sessionmaker(engine)) as session:
        user = session.scalars(select(User).where(User.handle == patient)).first()
        target = session.scalars(
            select(Patient).where(Patient.user_id == user.id)
            if user
            else select(Patient).where(Patient.id == patient)
        ).first()
        if target is None:
            console.print(f"[red]no patient {patient!r}[/red]")
            raise typer.Exit(1)
        outcome: ImportOutcome
        if format in streamed.STREAMED:
            # Read from disk as it is parsed: an export of hundreds of MB never sits in memory.
            upload = streamed.open_path(path)
            try:
                with upload.file, _ImportProgress(upload.size) as progress:
                    outcome = streamed.import_upload(
                        session,
                        settings,
                        patient=target,
                        fmt=format,
                        upload=upload,
                        source_id=source_id,
                        entered_by=None,
                        now=now,
                        progress=progress.update,
                    )
            except AppError as refused:  # a file that cannot be read: nothing was stored
                console.print(f"[red]not imported[/red] {path.name}: {refused.detail}")
                raise typer.Exit(1) from None
        else:
            outcome = import_file(
                session,
                settings,
                patient=target,
                fmt=format,
                body=path.read_bytes(),
                source_id=source_id,
                entered_by=None,
                now=now,
            )
        audit.record(
            session,
            audit.AuditEntry(
                occurred_at=now,
                actor_id=None,
                actor_handle="cli:import",
                actor_role="system",
                relation="system",
                action="write_readings",
                resource=f"selfcare import {format}",
                patient_ids=(target.id,),
            ),
        )
    engine.dispose()
    counts = ", ".join(f"{k} {v}" for k, v in outcome.summary().items())
    console.print(f"[green]imported[/green] {path.name} for {target.display_name}: {counts}")
    if outcome.run.get("status") == "stopped":
        stop = outcome.run["stopped_at"] or {}
        console.print(f"[red]stopped[/red] at chunk {stop.get('chunk')}: {stop.get('reason')}")
    for rejection in outcome.rejected[:20]:
        reasons = "; ".join(e["message"] for e in rejection["errors"])
        console.print(f"  rejected {rejection['where'] or rejection['client_id']}: {reasons}")


class _ImportProgress:
    """A Rich progress bar over the file's bytes, with records, outcomes and records/s."""

    def __init__(self, total_bytes: int) -> None:
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

        self.started = time.monotonic()
        self.bar = Progress(
            TextColumn("importing"),
            BarColumn(),
            DownloadColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[counts]}"),
            console=console,
            transient=False,
        )
        self.task = self.bar.add_task("import", total=total_bytes, counts="")

    def __enter__(self) -> _ImportProgress:
        self.bar.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.bar.stop()

    def update(self, done: StreamProgress) -> None:
        """Show how far a streamed import got."""
        rate = done.records_read / max(time.monotonic() - self.started, 1e-6)
        counts = (
            f"records {done.records_read:,} created {done.created:,} "
            f"duplicates {done.duplicate:,} rejected {done.rejected:,} ({rate:,.0f} records/s)"
        )
        self.bar.update(self.task, completed=done.bytes_read, counts=counts)


@cli.command("simulate")
def simulate_command(
    days: Annotated[float, typer.Option(help="how many days of readings, ending now")] = 2.0,
    tick_hours: Annotated[float, typer.Option(help="hours of life per sync round")] = 6.0,
    pause: Annotated[float, typer.Option(help="seconds to wait between rounds")] = 0.5,
    base_url: Annotated[str | None, typer.Option(help="default: the configured host:port")] = None,
    seed: Annotated[int, typer.Option(help="random seed")] = 7,
    until: Annotated[
        str | None,
        typer.Option(help="when the simulated days end, ISO 8601 with an offset (default: now)"),
    ] = None,
) -> None:
    """Drive the personas' devices over HTTP (offline spells, a second source, retries)."""
    import time
    from datetime import datetime

    from app.simulate import run

    end = datetime.fromisoformat(until) if until else None
    if end is not None and end.utcoffset() is None:
        raise typer.BadParameter("--until needs a UTC offset, e.g. 2026-11-20T12:00:00+00:00")

    settings = get_settings()
    url = base_url or f"http://{settings.host}:{settings.port}"
    totals = run(
        settings,
        base_url=url,
        days=days,
        tick_hours=tick_hours,
        seed=seed,
        say=console.print,
        sleep=time.sleep,
        pause=pause,
        until=end,
    )
    console.print(f"[green]done[/green]: {totals}")


@cli.command("token")
def token_command(
    handle: Annotated[str, typer.Argument(help="a seeded user: allan, asta, maria, eva, …")],
    care_unit: Annotated[str | None, typer.Option(help="care unit id to act from")] = None,
) -> None:
    """Print a development bearer token for a user."""
    settings = get_settings()
    if not settings.dev_issuer_enabled:
        console.print(
            "[red]the development issuer signs tokens only with SELFCARE_ENVIRONMENT=development "
            "and no SELFCARE_AUTH_JWKS_FILE or issuer URL in SELFCARE_AUTH_ISSUER[/red]"
        )
        raise typer.Exit(2)
    engine = make_engine(settings.effective_database_url)
    with transaction(make_sessionmaker(engine)) as session:
        user = session.scalars(select(User).where(User.handle == handle)).first()
    engine.dispose()
    if user is None or user.subject is None:
        console.print(f"[red]no user with handle {handle!r}; run `selfcare seed` first[/red]")
        raise typer.Exit(1)
    print(mint_token(settings, user.subject, now=utcnow(), care_unit_id=care_unit))


@cli.command("serve")
def serve_command(
    host: Annotated[str | None, typer.Option(help="default: SELFCARE_HOST")] = None,
    port: Annotated[int | None, typer.Option(help="default: SELFCARE_PORT")] = None,
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="API processes; the jobs then run in `worker`")
    ] = 1,
) -> None:
    """Serve the API with uvicorn, in one process or several."""
    import uvicorn

    settings = get_settings()
    if not settings.is_development and not settings.issuer_configured:
        console.print(
            f"[red]{settings.environment} needs a token issuer: set SELFCARE_AUTH_ISSUER to the "
            "issuer's URL (https://…, its OpenID Connect discovery names the keys) and "
            "SELFCARE_AUTH_AUDIENCE, or SELFCARE_AUTH_JWKS_FILE for an offline key set "
            "(or SELFCARE_ENVIRONMENT=development for the development issuer)[/red]"
        )
        raise typer.Exit(2)
    host = host or settings.host
    port = port or settings.port
    base = f"http://{host}:{port}"
    tokens = (
        "  a token   SELFCARE_ENVIRONMENT=development .venv/bin/selfcare token allan   "
        "(also asta, gunilla, maria, eva, karin, olof, admin)\n"
        '  try it    curl -H "Authorization: Bearer $(SELFCARE_ENVIRONMENT=development '
        f'.venv/bin/selfcare token allan)" {base}/v1/me\n'
        if settings.dev_issuer_enabled
        else f"  issuer    {settings.auth_issuer}\n"
    )
    console.print(
        f"\n[bold]Egenvård sync[/bold] on {base}\n"
        f"  API docs  {base}/docs\n"
        f"  health    {base}/healthz\n"
        f"  database  {_safe_url(settings.effective_database_url)}\n" + tokens
    )
    from app.server import PROTOCOL_PATH

    if workers > 1:
        _prepare_workers(settings, workers)
    uvicorn.run(
        "app.asgi:app",
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        # httptools with a header deadline (slowloris); the body's own limit is in app/limits.py.
        # Named by import path, so that spawned worker processes can load it.
        http=PROTOCOL_PATH,
        timeout_keep_alive=5,
    )


def _prepare_workers(settings: Settings, workers: int) -> None:
    """Tell the worker processes how many they are, where metrics meet, who runs the jobs."""
    metrics_dir = settings.var_dir / "metrics"
    shutil.rmtree(metrics_dir, ignore_errors=True)  # counters of an earlier run are not ours
    metrics_dir.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    os.environ["SELFCARE_API_WORKERS"] = str(workers)
    if settings.scheduler_enabled:
        # The jobs must run in exactly one place: not in each of N API processes.
        os.environ["SELFCARE_SCHEDULER_ENABLED"] = "false"
        console.print(
            "  jobs      not in the API processes: run [bold]selfcare worker[/bold] beside them"
        )
    console.print(
        f"  workers   {workers} processes; each keeps 1/{workers} of the sync flood limit\n"
    )


@cli.command("backup")
def backup_command(path: Annotated[Path, typer.Argument(help="the backup file to write")]) -> None:
    """Copy the database while it runs (SQLite backup API, or pg_dump), audited."""
    from app.backup import backup

    info = backup(get_settings(), path, utcnow())
    console.print(
        f"[green]backup written[/green] {path} ({info.database}, audit head seq {info.audit_seq})"
    )


@cli.command("restore")
def restore_command(
    path: Annotated[Path, typer.Argument(help="a file `selfcare backup` wrote")],
    yes: Annotated[bool, typer.Option("--yes", help="replace the database's content")] = False,
) -> None:
    """Put a backup back (stop the service first); audited and anchored."""
    from app.backup import restore

    if not yes:
        console.print("[red]this replaces everything in the database: add --yes[/red]")
        raise typer.Exit(2)
    info = restore(get_settings(), path, utcnow())
    console.print(
        f"[green]restored[/green] the backup of {info.taken_at} "
        f"(audit head seq {info.audit_seq}); later rows are gone and the restore is audited"
    )


@cli.command("worker")
def worker_command(
    once: Annotated[bool, typer.Option(help="run every job once, print what it did, exit")] = False,
) -> None:
    """Run the scheduled jobs (push, reminders, escalation, retention) until stopped."""
    from app import scheduler

    settings = get_settings()
    if once:
        engine = make_engine(settings.effective_database_url)
        done = scheduler.run_once(settings, make_sessionmaker(engine))
        engine.dispose()
        for job_id, figures in done.items():
            console.print(f"{job_id}: " + " ".join(f"{k}={v}" for k, v in figures.items()))
        return
    console.print(f"[bold]selfcare worker[/bold] on {_safe_url(settings.effective_database_url)}")
    from app.heap import settle_startup_heap

    settle_startup_heap()
    scheduler.run_worker(settings)


push_cli = typer.Typer(
    help="Web Push: the VAPID key, the outbox, sending now.", no_args_is_help=True
)
cli.add_typer(push_cli, name="push")


@push_cli.command("key")
def push_key_command() -> None:
    """Print the VAPID public key (generated into var/ on first use unless configured)."""
    from app.push.vapid import vapid_key

    print(vapid_key(get_settings()).public_key)


@push_cli.command("status")
def push_status_command() -> None:
    """Count outbox rows and subscriptions by status."""
    from sqlalchemy import func

    from app.push.models import OutboxMessage, PushSubscription

    settings = get_settings()
    engine = make_engine(settings.effective_database_url)
    with transaction(make_sessionmaker(engine)) as session:
        for name, model in (("outbox", OutboxMessage), ("subscriptions", PushSubscription)):
            rows = session.execute(
                select(model.status, func.count()).group_by(model.status).order_by(model.status)
            ).all()
            console.print(f"{name}: " + (" ".join(f"{s}={n}" for s, n in rows) or "none"))
    engine.dispose()


@push_cli.command("dispatch")
def push_dispatch_command() -> None:
    """Deliver the due outbox rows now, once."""
    from app.push.dispatcher import dispatch
    from app.scheduler import default_sender

    settings = get_settings()
    engine = make_engine(settings.effective_database_url)
    stats = dispatch(
        make_sessionmaker(engine), settings, utcnow(), sender=default_sender(settings), clock=utcnow
    )
    engine.dispose()
    console.print(" ".join(f"{k}={v}" for k, v in stats.as_dict().items()))


def _safe_url(url: str) -> str:
    if "@" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


cli.add_typer(rules_cli, name="rules")
cli.add_typer(audit_cli, name="audit")
cli.add_typer(admin_cli, name="admin")


def main() -> None:
    """Entry point of the ``selfcare`` console script."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    cli()
