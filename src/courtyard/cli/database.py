"""Opening the database for a command: reachable and migrated, or a clear refusal."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from courtyard.services.registry import Services
    from courtyard.settings import Settings
    from courtyard.storage.engine import Database


class DatabaseNotReady(Exception):
    """The database cannot be reached or is not at this version's schema."""


async def database_problem(database: Database) -> str | None:
    """What keeps this version of Courtyard from using ``database``, or None."""
    from courtyard.storage.migrate import current_revision, head_revision

    if not await database.ping():
        return "cannot reach the database; check database.url"
    revision = await current_revision(database)
    if revision != head_revision():
        return (
            f"the database is at revision {revision or 'none'}, this version needs "
            f"{head_revision()}: run `courtyard migrate` first"
        )
    return None


@asynccontextmanager
async def ready_services(settings: Settings) -> AsyncIterator[Services]:
    """The services on a usable database (DatabaseNotReady otherwise); disposed afterwards."""
    from courtyard.app import build_services

    try:
        services = build_services(settings)
    except (ValueError, OSError) as exc:
        # An unsupported URL scheme, or a SQLite file whose directory cannot be made.
        raise DatabaseNotReady(f"cannot open the database: {exc}") from None
    database = services.context.storage.database
    try:
        problem = await database_problem(database)
        if problem is not None:
            raise DatabaseNotReady(problem)
        yield services
    finally:
        await database.dispose()
