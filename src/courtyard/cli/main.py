"""`courtyard`: serve, migrate, administer and check configuration."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.panel import Panel

from courtyard import __version__
from courtyard.cli import admin, audit, devcert, firewall, maintenance, security
from courtyard.settings import CONFIG_ENV, ConfigError, Settings, load_settings

T = TypeVar("T")

app = typer.Typer(
    name="courtyard",
    help="Courtyard: self-hosted team chat. Run `courtyard COMMAND --help` for details.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(admin.app, name="admin")
app.add_typer(maintenance.files_app, name="files")
app.add_typer(maintenance.search_app, name="search")
app.add_typer(maintenance.database_app, name="database")
app.add_typer(firewall.app, name="firewall")
app.command("dev-cert")(devcert.dev_cert)
app.add_typer(audit.app, name="audit")
app.add_typer(security.app, name="security")
config_app = typer.Typer(help="Inspect the configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")

console = Console(stderr=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help=f"TOML configuration file (default: ${CONFIG_ENV} or ./courtyard.toml).",
    ),
]


def settings_or_exit(config: Path | None, **overrides: Any) -> Settings:
    """Load settings, or print what is wrong and exit 2."""
    try:
        settings = load_settings(config, **overrides)
    except ConfigError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    if config is not None:
        # Worker processes re-read the configuration from the environment.
        os.environ[CONFIG_ENV] = str(config)
    return settings


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine, turning Courtyard errors into a clear message and exit code 1."""
    from courtyard.domain.errors import CourtyardError

    try:
        return asyncio.run(coro)
    except CourtyardError as exc:
        console.print(f"[red]error:[/red] {exc.message} [dim]({exc.code})[/dim]")
        raise typer.Exit(1) from None


@app.callback(invoke_without_command=True)
def _root(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    if version:
        typer.echo(__version__)
        raise typer.Exit(0)


@app.command()
def migrate(config: ConfigOption = None) -> None:
    """Create or upgrade the database schema to this version of Courtyard."""
    from courtyard.storage.migrate import head_revision, upgrade

    settings = settings_or_exit(config)
    url = settings.database_url()
    with console.status(f"migrating {_redact(url)} to {head_revision()} ..."):
        try:
            upgrade(url)
        except Exception as exc:  # the driver's message is the useful part
            console.print(f"[red]error:[/red] migration failed: {exc}")
            raise typer.Exit(1) from None
    console.print(f"[green]database is at revision {head_revision()}[/green]")


@app.command()
def serve(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="Bind address (overrides server.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (overrides server.port).")] = None,
    workers: Annotated[
        int | None, typer.Option(help="Worker processes (overrides server.workers).")
    ] = None,
) -> None:
    """Serve the API, the web client and the event stream."""
    from courtyard.cli.serve import run_server

    server_overrides = {
        k: v for k, v in (("host", host), ("port", port), ("workers", workers)) if v is not None
    }
    base = settings_or_exit(config)
    settings = base
    if server_overrides:
        settings = settings_or_exit(config, server={**base.server.model_dump(), **server_overrides})
        for key, value in server_overrides.items():
            os.environ[f"COURTYARD_SERVER__{key.upper()}"] = str(value)
    code = run_server(settings, console)
    raise typer.Exit(code)


@config_app.command("check")
def config_check(config: ConfigOption = None) -> None:
    """Validate the configuration and print the effective values (secrets hidden)."""
    settings = settings_or_exit(config)
    from rich.table import Table

    table = Table(title="Effective configuration", show_lines=False)
    table.add_column("key")
    table.add_column("value")
    for key, value in _flatten(settings.model_dump(mode="json")):
        table.add_row(key, _redact(str(value)) if "url" in key else str(value))
    table.add_row("database.url (effective)", _redact(settings.database_url()))
    Console().print(table)
    console.print(Panel("[green]configuration is valid[/green]"))


@config_app.command("docs")
def config_docs() -> None:
    """Print the configuration reference (docs/configuration.md) as Markdown."""
    from courtyard.settings import settings_reference_markdown

    sys.stdout.write(settings_reference_markdown())


def _flatten(data: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            rows.extend(_flatten(value, f"{name}."))
        else:
            rows.append((name, value))
    return rows


def _redact(url: str) -> str:
    """Hide a password in a database URL."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


def main() -> None:
    """Entry point of the `courtyard` script."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
