"""`courtyard files sweep` and `courtyard search reindex`: maintenance from the shell."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from courtyard.cli.admin import ConfigOption, _run
from courtyard.cli.database import ready_services

files_app = typer.Typer(help="Manage uploaded files.", no_args_is_help=True)
search_app = typer.Typer(help="Manage the search index.", no_args_is_help=True)
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
                return await services.search.reindex(batch=batch)
            finally:
                await services.files.stop()

    indexed = _run(go())
    console.print(f"[green]indexed {indexed} message(s)[/green]")
