"""``selfcare rules …``: lint the library, backtest a plan, explain a flag, run due rules."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from app.clock import utcnow
from app.config import get_settings
from app.db import make_engine, make_sessionmaker, transaction
from rules.engine import DEFAULT_TZ

rules_cli = typer.Typer(help="The rule library and the rule engine.", no_args_is_help=True)
console = Console(soft_wrap=True)


@rules_cli.command("lint")
def lint_command(
    path: Annotated[Path | None, typer.Argument(help="a folder of rule files")] = None,
) -> None:
    """Check the rule library: schema, bands, translations, sources. Exit 1 on errors."""
    from rules.language import load_library
    from rules.lint import lint, lint_files

    issues = lint_files(path) if path else lint(load_library())
    for issue in issues:
        colour = "red" if issue.severity == "error" else "yellow"
        console.print(
            f"[{colour}]{issue.severity}[/{colour}] {issue.rule_id}: {issue.code} — {issue.message}"
        )
    errors = sum(issue.severity == "error" for issue in issues)
    console.print(f"{len(issues)} issue(s), {errors} error(s)")
    if errors:
        raise typer.Exit(1)


def _csv_facts(path: Path) -> list[Any]:
    """Readings from a CSV, counted as sync counts them.

    Columns: client_id,type,time,value,unit[,systolic,diastolic,context,source]. Rows are
    taken in file order as arrivals; a row whose (source, client_id) came before is a retry
    and skipped; the same measurement from another source (same type, times within 60 s,
    equal values at the type's precision: :mod:`sync.dedup`) counts once. Without a
    ``source`` column every row is from one source.
    """
    from sync.dedup import drop_duplicates
    from sync.normalise import NormalisedReading, normalise_reading

    arrivals: list[tuple[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    now = datetime.now(UTC) + timedelta(days=3650)  # a backtest may replay any history
    with path.open(newline="") as handle:
        for index, row in enumerate(csv.DictReader(handle)):
            source = row.get("source") or "csv"
            raw: dict[str, Any] = {
                "client_id": row.get("client_id") or f"row-{index}",
                "type": row["type"],
                "time": row["time"],
                "unit": row["unit"],
            }
            if row["type"] == "blood_pressure":
                raw["value"] = {
                    "systolic": Decimal(row["systolic"]),
                    "diastolic": Decimal(row["diastolic"]),
                }
            else:
                raw["value"] = Decimal(row["value"])
            if row.get("context"):
                raw["context"] = json.loads(row["context"])
            if (source, raw["client_id"]) in seen:
                console.print(f"[yellow]row {index + 2} skipped[/yellow]: a repeated client_id")
                continue
            seen.add((source, raw["client_id"]))
            reading = normalise_reading(raw, now=now)
            if isinstance(reading, NormalisedReading):
                arrivals.append((source, reading.to_fact(f"{source}/{raw['client_id']}")))
            else:
                console.print(
                    f"[yellow]row {index + 2} skipped[/yellow]: "
                    + "; ".join(e.message for e in reading)
                )
    counted, duplicates = drop_duplicates(arrivals)
    if duplicates:
        console.print(f"{len(duplicates)} reading(s) from another source counted once")
    return counted


def _refuse_invalid(body: Any) -> None:
    """Refuse a plan as ``PUT .../plan`` does: every reason, one per line, exit 1."""
    from rules.language import load_library, validate_plan

    errors = validate_plan(body, load_library())
    if not errors:
        return
    console.print("[red]The plan is not valid.[/red]")
    for error in errors:
        console.print(f"  {error.loc}: {error.code} — {error.message}")
    raise typer.Exit(1)


@rules_cli.command("backtest")
def backtest_command(
    patient: Annotated[str | None, typer.Option(help="patient handle or id")] = None,
    plan: Annotated[Path | None, typer.Option(help="a proposed plan (JSON plan body)")] = None,
    readings_csv: Annotated[Path | None, typer.Option("--csv", help="readings from a CSV")] = None,
    days: Annotated[int, typer.Option(help="how far back")] = 90,
    timezone: Annotated[str, typer.Option(help="for --csv")] = DEFAULT_TZ,
) -> None:
    """Show per rule the firings, flag episodes and advice per patient-week of a plan."""
    from pydantic import ValidationError

    from app.plans import service as plans_service
    from rules.backtest import backtest
    from rules.language import load_library
    from rules.plan import PlanBody, PlanSpec

    try:
        proposed = PlanBody.model_validate_json(plan.read_text()) if plan else None
    except ValidationError as exc:
        console.print("[red]The plan is not valid.[/red]")
        for error in exc.errors():
            loc = ".".join(str(part) for part in error["loc"])
            console.print(f"  {loc}: invalid — {error['msg']}")
        raise typer.Exit(1) from None
    if proposed is not None:
        _refuse_invalid(proposed)
    if readings_csv is not None:
        if proposed is None:
            console.print("[red]--csv needs --plan[/red]")
            raise typer.Exit(2)
        spec = PlanSpec.model_validate({**proposed.model_dump(), "version": 0})
        report = backtest(spec, _csv_facts(readings_csv), library=load_library(), tz=timezone)
        _print_burden(plans_service.burden_dict(report, proposed=True))
        return
    if patient is None:
        console.print("[red]give --patient (or --csv with --plan)[/red]")
        raise typer.Exit(2)
    settings = get_settings()
    engine = make_engine(settings.effective_database_url)
    with transaction(make_sessionmaker(engine)) as session:
        target = _patient(session, patient)
        if target is None:
            console.print(f"[red]no patient {patient!r}[/red]")
            raise typer.Exit(1)
        result = plans_service.backtest(
            session,
            patient_id=target.id,
            timezone=target.timezone,
            proposed=proposed,
            days=days,
            now=utcnow(),
        )
        console.print(f"{target.display_name}: ", end="")
    engine.dispose()
    _print_burden(result)


def _patient(session: Any, handle_or_id: str) -> Any:
    from app.auth.models import User
    from app.patients.models import Patient

    user = session.scalars(select(User).where(User.handle == handle_or_id)).first()
    query = select(Patient).where(
        Patient.user_id == user.id if user is not None else Patient.id == handle_or_id
    )
    return session.scalars(query).first()


def _print_burden(result: dict[str, Any]) -> None:
    console.print(
        f"{result['plan']} plan, {result['from'][:10]} – {result['to'][:10]}, "
        f"{result['weeks']} weeks, {result['readings']} readings"
    )
    table = Table(
        "rule", "mode", "firings", "flags", "advice", "firings/wk", "flags/wk", "advice/wk"
    )
    for row in result["rules"]:
        table.add_row(
            row["rule"],
            row["mode"],
            str(row["firings"]),
            str(row["flags"]),
            str(row["advice"]),
            f"{row['firings_per_week']:.2f}",
            f"{row['flags_per_week']:.2f}",
            f"{row['advice_per_week']:.2f}",
        )
    console.print(table)


@rules_cli.command("explain")
def explain_command(flag_id: Annotated[str, typer.Argument(help="a flag id")]) -> None:
    """Show why a flag was raised: rule, plan version, readings, values, thresholds."""
    from app.findings.models import Flag

    settings = get_settings()
    engine = make_engine(settings.effective_database_url)
    with transaction(make_sessionmaker(engine)) as session:
        flag = session.get(Flag, flag_id)
        if flag is None:
            console.print(f"[red]no flag {flag_id}[/red]")
            raise typer.Exit(1)
        explanation = dict(flag.explanation)
        status, severity, count = flag.status, flag.severity, flag.firing_count
    engine.dispose()
    rule = explanation.get("rule", {})
    console.print(
        f"[bold]{rule.get('id')}[/bold] v{rule.get('version')} · plan version "
        f"{explanation.get('plan_version')} · {severity} · {status} · "
        f"{count} firing(s)"
    )
    summary = explanation.get("summary", {})
    for lang in ("sv", "en"):
        if summary.get(lang):
            console.print(f"  {lang}: {summary[lang]}")
    for name, threshold in explanation.get("thresholds", {}).items():
        console.print(f"  threshold {name} = {threshold.get('value')} {threshold.get('unit', '')}")
    for name, value in explanation.get("computed", {}).items():
        console.print(f"  computed {name} = {value}")
    for reading in explanation.get("readings", []):
        values = ", ".join(f"{k} {v}" for k, v in reading.get("values", {}).items())
        console.print(
            f"  reading {reading.get('time')} {reading.get('type')}: {values} "
            f"{reading.get('unit', '')} ({reading.get('id')})"
        )


@rules_cli.command("run-due")
def run_due_command() -> None:
    """Evaluate the time-based rules (missing data, CGM windows) due now, for every patient."""
    from app.findings.jobs import rules_due

    settings = get_settings()
    engine = make_engine(settings.effective_database_url)
    done = rules_due(make_sessionmaker(engine), settings, utcnow())
    engine.dispose()
    console.print(f"time-based rules evaluated: {done.get('firings', 0)} firing(s) hold now")
    if done.get("failed"):
        console.print(f"[red]{done['failed']} patient(s) failed; see the log[/red]")


@rules_cli.command("texts")
def texts_command(
    out: Annotated[Path, typer.Option(help="where to write the table")] = Path(
        "docs/advice-texts.md"
    ),
) -> None:
    """Write every advice text filled in (sv/en, patient/proxy) for review; exit 1 on problems."""
    from rules.advice_table import advice_table, filled_texts, problems

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(advice_table(), encoding="utf-8")
    found = [(t, p) for t in filled_texts() for p in problems(t)]
    for text, problem in found:
        where = f"{text.variant} {text.lang} {text.audience}"
        console.print(f"[red]{text.rule_id}[/red] {where}: {problem}")
    console.print(f"wrote {out}; {len(found)} problem(s)")
    if found:
        raise typer.Exit(1)
