"""`courtyard admin ...`: user administration from the server's own shell."""

from __future__ import annotations

import getpass
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from courtyard.cli.database import DatabaseNotReady, ready_services
from courtyard.domain.roles import Role

T = TypeVar("T")

app = typer.Typer(help="Administer users from the command line.", no_args_is_help=True)
console = Console(stderr=True)

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="TOML configuration file.")
]
PasswordOption = Annotated[
    str | None,
    typer.Option(
        help="Password (prompted for when omitted; prefer the prompt: shells keep history)."
    ),
]


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command's work; an unusable database is a clear message and exit code 1."""
    from courtyard.cli.main import run_async

    try:
        return run_async(coro)
    except DatabaseNotReady as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None


def _password(given: str | None) -> str:
    if given is not None:
        return given
    first = getpass.getpass("Password: ")
    if getpass.getpass("Repeat password: ") != first:
        console.print("[red]error:[/red] the passwords differ")
        raise typer.Exit(1)
    return first


@app.command("create-owner")
def create_owner(
    username: Annotated[str, typer.Option(help="Login name of the owner.")],
    organization: Annotated[str, typer.Option(help="Organisation name.")],
    email: Annotated[str | None, typer.Option(help="Email address.")] = None,
    display_name: Annotated[str | None, typer.Option(help="Name shown to others.")] = None,
    password: PasswordOption = None,
    config: ConfigOption = None,
) -> None:
    """Create the organisation and its owner (instead of the web setup token)."""
    from courtyard.cli.main import settings_or_exit
    from courtyard.services.accounts import NewAccount

    settings = settings_or_exit(config)
    secret = _password(password)

    async def go() -> int:
        async with ready_services(settings) as services:
            return await services.setup.create_owner(
                organization, NewAccount(username, secret, display_name, email)
            )

    user_id = _run(go())
    console.print(f"[green]owner {username} created (id {user_id})[/green]")


@app.command("create-user")
def create_user(
    username: Annotated[str, typer.Option(help="Login name.")],
    role: Annotated[Role, typer.Option(help="owner, admin, member or guest.")] = Role.MEMBER,
    email: Annotated[str | None, typer.Option(help="Email address.")] = None,
    display_name: Annotated[str | None, typer.Option(help="Name shown to others.")] = None,
    password: PasswordOption = None,
    config: ConfigOption = None,
) -> None:
    """Create a user directly."""
    from courtyard.cli.main import settings_or_exit
    from courtyard.services.accounts import NewAccount, register_user

    settings = settings_or_exit(config)
    secret = _password(password)

    async def go() -> int:
        async with (
            ready_services(settings) as services,
            services.context.storage.transaction() as uow,
        ):
            record = await register_user(
                services.context, uow, NewAccount(username, secret, display_name, email), role=role
            )
        return record.id

    user_id = _run(go())
    console.print(f"[green]user {username} created (id {user_id}, {role})[/green]")


@app.command("reset-password")
def reset_password(
    login: Annotated[str, typer.Argument(help="Username or email address.")],
    password: PasswordOption = None,
    config: ConfigOption = None,
) -> None:
    """Set a user's password; their sessions end."""
    from courtyard.cli.main import settings_or_exit

    settings = settings_or_exit(config)
    secret = _password(password)

    async def go() -> None:
        async with ready_services(settings) as services:
            user_id = await services.accounts.find_user_id(login)
            await services.accounts.reset_password(None, user_id, secret)

    _run(go())
    console.print(f"[green]password of {login} reset; their sessions ended[/green]")


@app.command()
def deactivate(
    login: Annotated[str, typer.Argument(help="Username or email address.")],
    config: ConfigOption = None,
) -> None:
    """Deactivate a user: sign-in blocked and sessions ended at once; history kept."""
    from courtyard.cli.main import settings_or_exit

    settings = settings_or_exit(config)

    async def go() -> None:
        from courtyard.domain.users import SCOPES, Actor

        async with ready_services(settings) as services:
            user_id = await services.accounts.find_user_id(login)
            # The command line acts with the owner's authority.
            system = Actor(user_id=0, username="system", role=Role.OWNER, scopes=SCOPES)
            await services.accounts.deactivate(system, user_id)

    _run(go())
    console.print(f"[green]{login} deactivated; their sessions ended[/green]")
