"""`courtyard firewall test|show`: ask the configured firewall what it would do."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from courtyard.cli.admin import ConfigOption
from courtyard.domain.network import ROLES, SURFACES, parse_address

app = typer.Typer(
    help="Courtyard's own network firewall (the firewall section of the configuration).",
    no_args_is_help=True,
)
console = Console(stderr=True)
out = Console(highlight=False, soft_wrap=True)


@app.command("test")
def verdict_for(
    address: Annotated[str, typer.Argument(help="Client IP address (IPv4 or IPv6).")],
    role: Annotated[
        str | None,
        typer.Option(
            help=f"The caller's role: {', '.join(sorted(ROLES))} (default: not signed in)."
        ),
    ] = None,
    surface: Annotated[
        list[str] | None,
        typer.Option(
            help=f"Surface reached (repeatable): {', '.join(sorted(SURFACES))}. Default: api."
        ),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Print the verdict for ADDRESS and the rule that decided.
    Exit code: 0 allowed, 1 denied, 2 bad input."""
    from courtyard.app import firewall_policy_from
    from courtyard.cli.main import settings_or_exit

    parsed = parse_address(address)
    if parsed is None:
        console.print(f"[red]error:[/red] {address!r} is not an IP address")
        raise typer.Exit(2)
    if role is not None and role.lower() not in ROLES:
        console.print(
            f"[red]error:[/red] unknown role {role!r} (known: {', '.join(sorted(ROLES))})"
        )
        raise typer.Exit(2)
    surfaces = frozenset(s.lower() for s in (surface or ["api"]))
    if unknown := surfaces - SURFACES:
        console.print(
            f"[red]error:[/red] unknown surface {sorted(unknown)[0]!r} "
            f"(known: {', '.join(sorted(SURFACES))})"
        )
        raise typer.Exit(2)
    policy = firewall_policy_from(settings_or_exit(config))
    if "api" not in surfaces and "web" not in surfaces:
        surfaces |= {"api"}
    verdict = policy.evaluate(parsed, surfaces, role.lower() if role else None, stage="all")
    who = f" as {role.lower()}" if role else ""
    where = ",".join(sorted(surfaces))
    if verdict.allowed:
        out.print(f"allowed: {parsed}{who} to {where} (no rule refuses it)")
        raise typer.Exit(0)
    out.print(f"denied: {parsed}{who} to {where}")
    out.print(f"  rule: {verdict.rule}")
    out.print(f"  reason: {verdict.reason}")
    raise typer.Exit(1)


@app.command("show")
def show(config: ConfigOption = None) -> None:
    """Print the effective firewall rules (global scope first, then each named rule)."""
    from courtyard.api.firewall import describe
    from courtyard.app import firewall_policy_from
    from courtyard.cli.main import settings_or_exit

    policy = firewall_policy_from(settings_or_exit(config))
    for line in describe(policy):
        out.print(line)
