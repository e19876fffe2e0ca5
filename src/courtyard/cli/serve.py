"""`courtyard serve`: check the database, print the setup token if needed, run uvicorn."""

from __future__ import annotations

import asyncio

import uvicorn
from rich.console import Console
from rich.panel import Panel

from courtyard.settings import Settings


async def _prepare(settings: Settings, console: Console) -> bool:
    from courtyard.app import build_services
    from courtyard.storage.migrate import current_revision, head_revision

    services = build_services(settings)
    database = services.context.storage.database
    try:
        if not await database.ping():
            console.print("[red]error:[/red] cannot reach the database; check database.url")
            return False
        revision = await current_revision(database)
        if revision != head_revision():
            console.print(
                f"[red]error:[/red] the database is at revision {revision or 'none'}, "
                f"this version needs {head_revision()}: run `courtyard migrate` first"
            )
            return False
        token = await services.setup.issue_setup_token()
    finally:
        await database.dispose()
    url = settings.server.public_url()
    if token:
        console.print(
            Panel(
                "No owner exists yet: create the organisation and its owner.",
                title="Courtyard setup",
            )
        )
        console.print(
            f"One-time setup token (valid {settings.accounts.setup_token_lifetime_hours} h):\n\n"
            f"  [bold]{token}[/bold]\n\n"
            f"  curl -X POST {url}/api/v1/setup -H 'content-type: application/json' -d "
            f'\'{{"setup_token": "{token}", "organization_name": "Acme", '
            f'"username": "admin", "password": "a long passphrase", "session_type": "token"}}\'\n\n'
            f"or run `courtyard admin create-owner`.",
            soft_wrap=True,
            highlight=False,
        )
    console.print(f"Courtyard is serving on [bold]{url}[/bold]  (API docs: {url}/api/v1/docs)")
    return True


def run_server(settings: Settings, console: Console) -> int:
    """Serve until interrupted; returns the process exit code."""
    if not asyncio.run(_prepare(settings, console)):
        return 1
    if settings.server.workers > 1:
        uvicorn.run(
            "courtyard.app:create_app",
            factory=True,
            workers=settings.server.workers,
            host=settings.server.host,
            port=settings.server.port,
            loop="uvloop",
            http="httptools",
            ws="none",
            lifespan="on",
            access_log=False,
            log_config=None,
            server_header=False,
            proxy_headers=False,
        )
        return 0
    from courtyard.app import create_app

    uvicorn.run(
        create_app(settings),
        host=settings.server.host,
        port=settings.server.port,
        loop="uvloop",
        http="httptools",
        ws="none",
        lifespan="on",
        access_log=False,
        log_config=None,
        server_header=False,
        proxy_headers=False,
    )
    return 0
