"""`courtyard files sweep`, `courtyard search reindex` and `courtyard database optimize`:
maintenance from the shell."""

from __future__ import annotations

import getpass
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from courtyard.cli.admin import ConfigOption, _run
from courtyard.cli.database import ready_services

files_app = typer.Typer(help="Manage uploaded files.", no_args_is_help=True)
search_app = typer.Typer(help="Manage the search index.", no_args_is_help=True)
database_app = typer.Typer(help="Look after the database.", no_args_is_help=True)
console = Console(stderr=True)


@files_app.command("sweep")
def sweep(config: ConfigOption = None) -> None:
    """Delete unattached files older than files.orphan_grace_hours (safe to run any time)."""
    from courtyard.cli.main import settings_or_exit

    settings = settings_or_exit(config)

    async def go() -> int:
        async with ready_services(settings) as services:
            try:
                return await services.files.sweep()
            finally:
                await services.files.stop()

    removed = _run(go())
    console.print(f"[green]removed {removed} unattached file(s)[/green]")


@search_app.command("reindex")
def reindex(
    config: ConfigOption = None,
    batch: Annotated[int, typer.Option(min=100, max=100_000, help="Messages per batch.")] = 2000,
) -> None:
    """Rebuild the search index from the messages (after upgrading from before 0002, or
    when a new version changes how text is indexed)."""
    from courtyard.cli.main import settings_or_exit

    settings = settings_or_exit(config)

    async def go() -> int:
        async with ready_services(settings) as services:
            try:
                with Progress(
                    TextColumn("indexing"),
                    BarColumn(),
                    TextColumn("{task.fields[indexed]:,} messages"),
                    TimeElapsedColumn(),
                    console=console,
                    transient=True,
                ) as bar:
                    task = bar.add_task("reindex", total=None, indexed=0)

                    def report(indexed: int, last_id: int, newest_id: int) -> None:
                        bar.update(task, completed=last_id, total=newest_id, indexed=indexed)

                    return await services.search.reindex(batch=batch, progress=report)
            finally:
                await services.files.stop()

    indexed = _run(go())
    console.print(f"[green]indexed {indexed} message(s)[/green]")


@database_app.command("optimize")
def optimize(
    config: ConfigOption = None,
    vacuum: Annotated[
        bool,
        typer.Option(
            "--vacuum",
            help="Also give free space back: SQLite rewrites the file (needs about twice its "
            "size free; writes wait meanwhile), PostgreSQL runs VACUUM (ANALYZE).",
        ),
    ] = False,
    lock_timeout: Annotated[
        float,
        typer.Option(
            min=1,
            max=3600,
            help="Seconds a step may wait for its locks before giving up (nothing changes).",
        ),
    ] = 30.0,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Do not ask before a step that blocks writes.")
    ] = False,
) -> None:
    """Keep reads fast as the database grows (run monthly, or after a large import).

    PostgreSQL: rewrites the messages table in channel order (CLUSTER), so old history pages
    read a few table pages instead of one per message, then refreshes the planner's
    statistics. The table is locked while it runs: sends and reads wait (49-81 s for 10M
    messages on the benchmark's 2-core VMs). SQLite: merges the search index's segments, a few
    milliseconds of writes at a time; safe while Courtyard runs. Each run is in the audit log.
    """
    from courtyard.cli.main import settings_or_exit
    from courtyard.services.maintenance import UpkeepRefused

    settings = settings_or_exit(config)
    blocking = vacuum or not settings.database_url().startswith("sqlite")
    if blocking and not yes:
        warning = (
            "This locks the messages table until it finishes: sends and reads wait meanwhile."
            if not settings.database_url().startswith("sqlite")
            else "VACUUM rewrites the database file: writes wait until it finishes."
        )
        if not sys.stdin.isatty():
            console.print(f"[red]error:[/red] {warning} Add --yes to run it without a prompt.")
            raise typer.Exit(2)
        console.print(f"[yellow]{warning}[/yellow]")
        if not typer.confirm("Go on?", default=False):
            raise typer.Exit(1)

    async def go() -> list[str]:
        async with ready_services(settings) as services:
            try:
                with Progress(
                    SpinnerColumn(),
                    TextColumn("{task.description}"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TimeElapsedColumn(),
                    console=console,
                    transient=True,
                ) as progress:
                    shown, task = "starting", progress.add_task("starting")

                    def report(step: str, done: int | None, total: int | None) -> None:
                        # A new step or phase gets a bar of its own: rich cannot turn a known
                        # total back into an unknown one.
                        nonlocal shown, task
                        if step != shown:
                            progress.remove_task(task)
                            shown, task = step, progress.add_task(step, total=total)
                        progress.update(task, completed=done or 0, total=total)

                    steps = await services.maintenance.optimize_database(
                        vacuum=vacuum,
                        lock_timeout_s=lock_timeout,
                        progress=report,
                        details={"via": "cli", "os_user": getpass.getuser()},
                    )
                return [f"{step.name}: {step.detail} in {step.seconds:.1f} s" for step in steps]
            finally:
                await services.files.stop()

    try:
        lines = _run(go())
    except UpkeepRefused as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    for line in lines:
        console.print(f"[green]{line}[/green]")
