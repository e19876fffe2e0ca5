"""`courtyard audit verify | export | list`: the audit trail from the server's own shell."""

from __future__ import annotations

import getpass
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import msgspec
import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from courtyard.cli.admin import ConfigOption, _run
from courtyard.cli.database import ready_services

if TYPE_CHECKING:
    from courtyard.domain.audit import AuditEntry, AuditQuery
    from courtyard.services.audit import ChainReport
    from courtyard.services.registry import Services

app = typer.Typer(help="Verify, export and read the audit log.", no_args_is_help=True)
console = Console(stderr=True)
# Piped output (scripts, tests) gets wide rows instead of an 80-column wrap.
out = Console(width=None if sys.stdout.isatty() else 240)

SinceOption = Annotated[
    str | None,
    typer.Option(help="Entries at or after this time (ISO 8601; a date means 00:00 UTC)."),
]
UntilOption = Annotated[
    str | None, typer.Option(help="Entries before this time (ISO 8601; a date means 00:00 UTC).")
]
ActorOption = Annotated[
    str | None, typer.Option(help="Only entries by this user (username, email or id).")
]
ActionOption = Annotated[str | None, typer.Option(help="Only this action, e.g. auth.sign_in.")]
OutcomeOption = Annotated[
    str | None, typer.Option(help="Only this outcome: success, failure or denied.")
]


def parse_moment(value: str | None, name: str) -> datetime | None:
    """An ISO 8601 time (UTC when no offset is given) or a date (its midnight, UTC)."""
    if value is None:
        return None
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        moment = datetime.fromisoformat(value)
    except ValueError:
        console.print(f"[red]error:[/red] --{name}: not an ISO 8601 date or time: {value!r}")
        raise typer.Exit(2) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def _query(
    services: Services,
    actor: str | None,
    action: str | None,
    outcome: str | None,
    since: datetime | None,
    until: datetime | None,
) -> AuditQuery:
    from courtyard.domain.audit import AuditQuery

    actor_id: int | None = None
    if actor is not None:
        actor_id = int(actor) if actor.isdigit() else await services.accounts.find_user_id(actor)
    return AuditQuery(actor_id=actor_id, action=action, outcome=outcome, since=since, until=until)


@app.command("verify")
def verify(
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            "-f",
            help="Check an export (JSON Lines) instead of the database: every entry's hash, and "
            "the links between consecutive ids.",
        ),
    ] = None,
    complete: Annotated[
        bool,
        typer.Option(
            "--complete",
            help="With --file: the export is unfiltered, so it must start at entry 1 and have "
            "no gaps (a removed line is then detected too).",
        ),
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Walk the hash chain; exit 1 naming the first entry that was edited, deleted or moved."""
    if file is not None:
        _verify_export(file, complete=complete)
        return
    from courtyard.cli.main import settings_or_exit

    settings = settings_or_exit(config)

    async def go() -> ChainReport:
        async with ready_services(settings) as services:
            total = await services.audit.count()
            with Progress(
                TextColumn("verifying audit chain"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
                transient=True,
            ) as progress:
                task = progress.add_task("verify", total=total)
                return await services.audit.verify(progress=lambda n: progress.advance(task, n))

    report = _run(go())
    if not report.intact:
        console.print(
            f"[red]audit chain broken at entry {report.broken_id}:[/red] {report.problem} "
            f"({report.checked} entries before it are intact)"
        )
        raise typer.Exit(1)
    console.print(f"[green]audit chain intact: {report.checked} entries[/green]")
    out.print(f"head {report.head_hash}", highlight=False)


def _verify_export(path: Path, *, complete: bool) -> None:
    """Check an exported file without the database (what an auditor runs)."""
    from courtyard.domain.audit import AuditEntry, exported_entry_problem

    decoder = msgspec.json.Decoder(AuditEntry)
    previous: AuditEntry | None = None
    checked = 0
    try:
        lines = path.read_bytes().splitlines()
    except OSError as exc:
        console.print(f"[red]error:[/red] cannot read {path}: {exc.strerror}")
        raise typer.Exit(2) from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            entry = decoder.decode(line)
        except msgspec.DecodeError as exc:
            console.print(f"[red]line {number} is not an audit entry:[/red] {exc}")
            raise typer.Exit(1) from None
        problem = exported_entry_problem(entry, previous, complete=complete)
        if problem:
            console.print(f"[red]audit chain broken at entry {entry.id}:[/red] {problem}")
            raise typer.Exit(1)
        previous = entry
        checked += 1
    console.print(f"[green]export intact: {checked} entries[/green]")
    if previous is not None:
        out.print(f"head {previous.hash}", highlight=False)


@app.command("export")
def export(
    output: Annotated[Path, typer.Option("--output", "-o", help="JSON Lines file to write.")],
    since: SinceOption = None,
    until: UntilOption = None,
    actor: ActorOption = None,
    action: ActionOption = None,
    outcome: OutcomeOption = None,
    config: ConfigOption = None,
) -> None:
    """Write matching entries, oldest first, one JSON object per line (with their hashes)."""
    from courtyard.cli.main import settings_or_exit

    settings = settings_or_exit(config)
    start, end = parse_moment(since, "since"), parse_moment(until, "until")

    async def go() -> int:
        async with ready_services(settings) as services:
            query = await _query(services, actor, action, outcome, start, end)
            written = 0
            with (
                output.open("wb") as sink,
                Progress(
                    TextColumn("exporting"),
                    MofNCompleteColumn(),
                    TimeElapsedColumn(),
                    console=console,
                    transient=True,
                ) as progress,
            ):
                task = progress.add_task("export", total=None)
                async for batch in services.audit.export(query):
                    for entry in batch:
                        sink.write(msgspec.json.encode(entry) + b"\n")
                    written += len(batch)
                    progress.advance(task, len(batch))
            await services.audit.record(
                None,
                "audit.exported",
                details={
                    "via": "cli",
                    "os_user": getpass.getuser(),
                    "entries": written,
                    "filters": [
                        f"{k}={v}"
                        for k, v in (
                            ("since", since),
                            ("until", until),
                            ("actor", actor),
                            ("action", action),
                            ("outcome", outcome),
                        )
                        if v is not None
                    ],
                },
            )
            return written

    try:
        written = _run(go())
    except OSError as exc:
        console.print(f"[red]error:[/red] cannot write {output}: {exc.strerror}")
        raise typer.Exit(1) from None
    console.print(f"[green]exported {written} entries to {output}[/green]")


@app.command("list")
def list_entries(
    since: SinceOption = None,
    until: UntilOption = None,
    actor: ActorOption = None,
    action: ActionOption = None,
    outcome: OutcomeOption = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="Most entries shown.")] = 50,
    config: ConfigOption = None,
) -> None:
    """Show the newest matching entries as a table."""
    from courtyard.cli.main import settings_or_exit

    settings = settings_or_exit(config)
    start, end = parse_moment(since, "since"), parse_moment(until, "until")

    async def go() -> Table:
        from courtyard.domain.errors import InvalidInput

        async with ready_services(settings) as services:
            query = await _query(services, actor, action, outcome, start, end)
            if outcome is not None and outcome not in ("success", "failure", "denied"):
                raise InvalidInput("outcome must be success, failure or denied")
            rows: list[AuditEntry] = []
            before: int | None = None
            while len(rows) < limit:
                async with services.context.storage.snapshot() as uow:
                    page = await uow.audit.page(query, before=before, limit=min(500, limit))
                if not page:
                    break
                rows.extend(page)
                before = page[-1].id
        table = Table("id", "time (UTC)", "actor", "ip", "action", "target", "outcome", "details")
        for entry in rows[:limit]:
            table.add_row(
                str(entry.id),
                entry.time.strftime("%Y-%m-%d %H:%M:%S"),
                entry.actor or "-",
                entry.ip or "-",
                entry.action,
                entry.target or "-",
                entry.outcome,
                orjson.dumps(entry.details).decode() if entry.details else "",
            )
        return table

    out.print(_run(go()))
