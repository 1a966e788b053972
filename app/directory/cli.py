"""``selfcare admin …``: the directory from the command line, through the same service.

Each command is one transaction: it commits with its audit row (actor ``system:admin-cli``)
or, on any refusal, changes nothing and exits 1 with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.clock import utcnow
from app.config import get_settings
from app.db import make_engine, make_sessionmaker, transaction
from app.directory import repository as directory_repository
from app.directory import service, team_requests
from app.errors import AppError
from app.patients.models import CareTeam, CareUnit, Organisation

ACTOR = "system:admin-cli"

admin_cli = typer.Typer(
    help="The directory: organisations, care units, teams, clinicians, logins.",
    no_args_is_help=True,
)
org_cli = typer.Typer(help="Organisations (regions, municipalities).", no_args_is_help=True)
unit_cli = typer.Typer(help="Care units.", no_args_is_help=True)
team_cli = typer.Typer(help="Care teams.", no_args_is_help=True)
clinician_cli = typer.Typer(help="Clinicians.", no_args_is_help=True)
member_cli = typer.Typer(help="Team membership.", no_args_is_help=True)
login_cli = typer.Typer(help="Linking a user to a login (the issuer's sub).", no_args_is_help=True)
request_cli = typer.Typer(help="Team requests waiting for a patient.", no_args_is_help=True)
for _sub, _name in (
    (org_cli, "org"),
    (unit_cli, "unit"),
    (team_cli, "team"),
    (clinician_cli, "clinician"),
    (member_cli, "member"),
    (login_cli, "login"),
    (request_cli, "request"),
):
    admin_cli.add_typer(_sub, name=_name)

# At least 160 columns: ids are what an operator copies into the next command, and a table
# squeezed into a narrow terminal would cut them short.
console = Console(soft_wrap=True, width=max(160, Console().width))


_SUBJECTS = "admin_cli_patients"


@contextmanager
def _directory(command: str) -> Iterator[Session]:
    """A transaction on the configured database that logs ``command``; refusals exit 1.

    The audit row is written with the change, naming the patients the command touched (put
    in ``session.info`` by the command); a refused command writes nothing at all.
    """
    engine = make_engine(get_settings().effective_database_url)
    try:
        with transaction(make_sessionmaker(engine)) as session:
            yield session
            audit.record(
                session,
                audit.AuditEntry(
                    occurred_at=utcnow(),
                    actor_id=None,
                    actor_handle=ACTOR,
                    actor_role="system",
                    relation="system",
                    action="manage_directory",
                    resource=f"selfcare admin {command}",
                    patient_ids=tuple(session.info.get(_SUBJECTS, ())),
                ),
            )
    except AppError as exc:
        console.print(f"[red]refused ({exc.status}):[/red] {exc.detail}")
        for item in exc.errors or []:
            console.print(f"  {item.loc}: {item.message}")
        raise typer.Exit(1) from None
    finally:
        engine.dispose()


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    console.print(table)


def _id_of(session: Session, model: Any, ref: str, what: str) -> str:
    return str(service.find_by_name(session, model, ref, what).id)


Kind = Annotated[str, typer.Option(help="region or municipality")]


@org_cli.command("add")
def org_add(name: str, kind: Kind = "region") -> None:
    """Add an organisation."""
    if kind not in ("region", "municipality"):
        raise typer.BadParameter("--kind is region or municipality")
    with _directory("org add") as session:
        org = service.create_organisation(session, name=name.strip(), kind=kind)
    _table("organisation added", ["id", "name", "kind"], [[org["id"], org["name"], org["kind"]]])


@unit_cli.command("add")
def unit_add(
    name: str, org: Annotated[str, typer.Option(help="the organisation's id or name")]
) -> None:
    """Add a care unit to an organisation."""
    with _directory("unit add") as session:
        org_id = _id_of(session, Organisation, org, "organisation")
        unit = service.create_care_unit(session, organisation_id=org_id, name=name.strip())
    _table(
        "care unit added",
        ["id", "name", "organisation"],
        [[unit["id"], unit["name"], unit["organisation"]["name"]]],
    )


@team_cli.command("add")
def team_add(
    name: str,
    unit: Annotated[str, typer.Option(help="the care unit's id or name")],
    phone: Annotated[str, typer.Option(help="whom advice tells patients to call")] = "",
) -> None:
    """Add a care team to a care unit."""
    with _directory("team add") as session:
        unit_id = _id_of(session, CareUnit, unit, "care unit")
        team = service.create_team(session, care_unit_id=unit_id, name=name.strip(), phone=phone)
    _table(
        "team added",
        ["id", "name", "care unit", "phone"],
        [[team["id"], team["name"], team["care_unit"]["name"], team["phone"]]],
    )


@clinician_cli.command("add")
def clinician_add(
    handle: str,
    name: Annotated[str, typer.Option(help="the name patients see")],
    title: Annotated[str, typer.Option(help="e.g. Distriktssköterska")] = "",
    language: Annotated[str, typer.Option(help="sv or en")] = "sv",
    subject: Annotated[str | None, typer.Option(help="the login's sub, if known")] = None,
) -> None:
    """Add a clinician (no team yet; see `admin member add`)."""
    from app.directory.schemas import ClinicianIn

    try:
        body = ClinicianIn(
            handle=handle, display_name=name, title=title, language=language, subject=subject
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    with _directory("clinician add") as session:
        user = service.create_clinician(session, **body.model_dump(), now=utcnow())
    _print_users("clinician added", [user])


def _print_users(title: str, users: list[dict[str, Any]]) -> None:
    _table(
        title,
        ["id", "handle", "name", "title", "login", "teams"],
        [
            [
                u["id"],
                u["handle"],
                u["display_name"],
                u["title"],
                u["subject"] or "—",
                len(u["team_ids"]),
            ]
            for u in users
        ],  # fmt: skip
    )


def _membership(command: str, change: Callable[..., dict[str, Any]], team: str, user: str) -> None:
    with _directory(command) as session:
        team_id = _id_of(session, CareTeam, team, "team")
        user_row = service.find_user(session, user)
        result = change(session, team_id=team_id, user_id=user_row.id)
        handle = user_row.handle
    state = "is a member of" if result["member"] else "is not a member of"
    console.print(f"[green]{handle}[/green] {state} team {result['team_id']}")


@member_cli.command("add")
def member_add(
    team: Annotated[str, typer.Argument(help="the team's id or name")],
    user: Annotated[str, typer.Argument(help="the clinician's id or handle")],
) -> None:
    """Make a clinician a member of a team."""
    _membership(
        "member add",
        lambda session, **ids: service.add_member(session, **ids, now=utcnow()),
        team,
        user,
    )


@member_cli.command("remove")
def member_remove(
    team: Annotated[str, typer.Argument(help="the team's id or name")],
    user: Annotated[str, typer.Argument(help="the clinician's id or handle")],
) -> None:
    """End a clinician's membership of a team."""
    _membership("member remove", service.remove_member, team, user)


@login_cli.command("link")
def login_link(
    user: Annotated[str, typer.Argument(help="the user's id or handle")],
    subject: Annotated[str, typer.Argument(help="the issuer's sub for this person")],
) -> None:
    """Link a login to a user (a sub held by another user is refused)."""
    if not subject.strip() or len(subject) > 255:
        raise typer.BadParameter("the subject is 1 to 255 characters")
    with _directory("login link") as session:
        found = service.link_login(
            session, user_id=service.find_user(session, user).id, subject=subject.strip()
        )
    _print_users("login linked", [found])


@login_cli.command("unlink")
def login_unlink(user: Annotated[str, typer.Argument(help="the user's id or handle")]) -> None:
    """Unlink a user's login: their tokens stop working."""
    with _directory("login unlink") as session:
        found = service.unlink_login(session, user_id=service.find_user(session, user).id)
    _print_users("login unlinked", [found])


@request_cli.command("confirm")
def request_confirm(
    request_id: str,
    note: Annotated[str, typer.Option(help="the basis: why the patient does not decide")],
) -> None:
    """Confirm a pending team request for the patient, with a basis note."""
    if not note.strip() or len(note) > 2000:
        raise typer.BadParameter("--note is 1 to 2000 characters")
    with _directory("request confirm") as session:
        row = team_requests.find(session, request_id)
        session.info[_SUBJECTS] = [row.patient_id]
        team_requests.confirm(session, row, by=None, basis_note=note.strip(), now=utcnow())
        status = row.status
    console.print(f"[green]request {request_id}[/green] {status}")


@admin_cli.command("list")
def admin_list() -> None:
    """List organisations, care units, teams, clinicians and pending team requests."""
    with _directory("list") as session:
        orgs = service.list_organisations(session)
        units = service.list_care_units(session)
        teams = service.list_teams(session)
        clinicians = service.list_clinicians(session)
        pending = team_requests.request_dicts(
            session, directory_repository.pending_requests(session), admin=True
        )
    _table("organisations", ["id", "name", "kind"], [[o["id"], o["name"], o["kind"]] for o in orgs])
    _table(
        "care units",
        ["id", "name", "organisation"],
        [[u["id"], u["name"], u["organisation"]["name"]] for u in units],
    )
    _table(
        "teams",
        ["id", "name", "care unit", "phone", "members"],
        [
            [t["id"], t["name"], t["care_unit"]["name"], t["phone"], len(t["member_ids"])]
            for t in teams
        ],
    )
    _print_users("clinicians", clinicians)
    _table(
        "pending team requests",
        ["id", "team", "patient", "requested"],
        [[r["id"], r["team"]["name"], r["patient_id"], r["requested_at"]] for r in pending],
    )
