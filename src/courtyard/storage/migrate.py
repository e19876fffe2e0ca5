"""Apply Alembic migrations programmatically (used by `courtyard migrate` and `serve`)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from courtyard.storage.engine import Database

_SCRIPTS = Path(__file__).parent / "migrations"


def _config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    config.attributes["database_url"] = url
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision`` (blocking; call outside an event loop)."""
    command.upgrade(_config(url), revision)


async def upgrade_async(url: str, revision: str = "head") -> None:
    """Like :func:`upgrade`, from inside a running event loop (runs Alembic in a thread)."""
    await asyncio.to_thread(upgrade, url, revision)


def head_revision() -> str:
    """The newest migration shipped with this version of Courtyard."""
    head = ScriptDirectory.from_config(_config("sqlite://")).get_current_head()
    assert head is not None
    return head


async def current_revision(database: Database) -> str | None:
    """The revision the database is at, or None if it was never migrated."""
    async with database.engine.connect() as conn:
        return await conn.run_sync(
            lambda sync_conn: MigrationContext.configure(sync_conn).get_current_revision()
        )
