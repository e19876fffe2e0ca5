"""`courtyard security …`: recovery tasks for the operator when no administrator can sign in."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from courtyard.cli.admin import ConfigOption, _run
from courtyard.cli.database import ready_services

app = typer.Typer(
    help="Reset second factors and lift lockouts (the operator, on the server).",
    no_args_is_help=True,
)
console = Console(stderr=True)


@app.command("reset-two-factor")
def reset_two_factor(
    login: Annotated[str, typer.Argument(help="Username or email address.")],
    config: ConfigOption = None,
) -> None:
    """Remove a user's second factor (lost device and recovery codes); their sessions end.

    If the organisation requires two-factor authentication, they enrol again at sign-in.
    """
    from courtyard.cli.main import settings_or_exit

    settings = settings_or_exit(config)

    async def go() -> None:
        async with ready_services(settings) as services:
            user_id = await services.accounts.find_user_id(login)
            await services.two_factor.reset(None, user_id)

    _run(go())
    console.print(f"[green]second factor of {login} removed; their sessions ended[/green]")


@app.command("unlock")
def unlock(
    login: Annotated[
        str | None, typer.Option(help="A login name (as people type it) to unlock.")
    ] = None,
    address: Annotated[str | None, typer.Option(help="A client address to unlock.")] = None,
    config: ConfigOption = None,
) -> None:
    """Lift a sign-in lockout and forget the failures counted for a name or an address."""
    from courtyard.cli.main import settings_or_exit

    if (login is None) == (address is None):
        console.print("[red]error:[/red] give exactly one of --login or --address")
        raise typer.Exit(2)
    settings = settings_or_exit(config)

    async def go() -> bool:
        async with ready_services(settings) as services:
            return await services.sessions.guard.unlock(login=login, address=address)

    if _run(go()):
        console.print(f"[green]unlocked {login or address}[/green]")
    else:
        console.print(f"nothing to unlock for {login or address}")
