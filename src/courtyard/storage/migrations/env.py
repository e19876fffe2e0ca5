"""Alembic environment: runs migrations on the async engine Courtyard already uses."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from sqlalchemy.engine import Connection

from courtyard.storage.engine import Database
from courtyard.storage.schema import include_object, metadata

config = context.config


def _run(connection: Connection) -> None:
    if connection.dialect.name == "sqlite":
        # SQLite changes a table by copying it and dropping the old one (Alembic's batch mode,
        # migration 0006). With foreign keys on, the drop first deletes every row and cascades
        # to the tables that reference it. The pragma only works outside a transaction, so it
        # goes straight to the driver before Alembic begins one; this connection is closed
        # when the migration ends, and the server's own connections turn the keys back on.
        driver: Any = connection.connection.driver_connection
        driver.raw.execute("PRAGMA foreign_keys=OFF")
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=include_object,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(url: str) -> None:
    database = Database(url)
    try:
        async with database.engine.connect() as conn:
            await conn.run_sync(_run)
            await conn.commit()
    finally:
        await database.dispose()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `courtyard migrate`")

asyncio.run(_run_async(config.attributes["database_url"]))
