"""``selfcare audit …``: verify the keyed chain, anchor its head now."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from app.audit import anchors as audit_anchors
from app.audit import service as audit
from app.audit.jobs import anchor_audit_head, walk_chain
from app.clock import utcnow
from app.config import get_settings
from app.db import make_engine, make_sessionmaker

audit_cli = typer.Typer(help="The audit log's keyed hash chain.", no_args_is_help=True)
console = Console(soft_wrap=True)


@audit_cli.command("verify")
def verify_command(
    anchors: Annotated[
        list[Path] | None,
        typer.Option(
            "--anchors",
            help="anchor file(s) or shipped log files to check against "
            "(default: SELFCARE_AUDIT_ANCHOR_FILE)",
        ),
    ] = None,
) -> None:
    """Walk the chain with the key and the anchors; name the first bad row. Exit 1 if broken."""
    settings = get_settings()
    paths = anchors or [audit_anchors.anchor_path(settings)]
    known = [a for path in paths for a in audit_anchors.read_anchors(path)]
    by_seq = {a.seq: a.hash for a in known}
    if len(by_seq) != len({(a.seq, a.hash) for a in known}):
        console.print("[red]the anchor files disagree about a row's hash[/red]")
        raise typer.Exit(1)
    engine = make_engine(settings.effective_database_url)
    try:
        report = walk_chain(
            make_sessionmaker(engine), audit.ChainWalk(audit.audit_key(settings), by_seq)
        )
    finally:
        engine.dispose()
    for marker in (m for path in paths for m in audit_anchors.restores(path)):
        console.print(
            f"restored on {marker.at.isoformat() if marker.at else '?'} to the head seq "
            f"{marker.seq}: anchors of later rows written before it are superseded"
        )
    if report.intact:
        console.print(f"[green]{report.summary()}[/green]")
        return
    console.print(f"[red]{report.summary()}[/red]")
    raise typer.Exit(1)


@audit_cli.command("anchor")
def anchor_command() -> None:
    """Anchor the chain's head now (what the scheduled job does); exit 1 if the chain is broken."""
    settings = get_settings()
    engine = make_engine(settings.effective_database_url)
    try:
        done = anchor_audit_head(make_sessionmaker(engine), settings, utcnow())
    finally:
        engine.dispose()
    console.print(" ".join(f"{k}={v}" for k, v in done.items()))
    if done["broken"]:
        raise typer.Exit(1)
