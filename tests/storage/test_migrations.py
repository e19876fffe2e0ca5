"""Migrations and the schema module agree, on both databases, and migrating is idempotent."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from courtyard.storage.engine import Database
from courtyard.storage.migrate import current_revision, head_revision, upgrade_async
from courtyard.storage.schema import include_object, metadata
from tests.support import DatabaseFactory


async def test_migrated_database_matches_the_schema_module(databases: DatabaseFactory) -> None:
    url = await databases.create()
    database = Database(url)
    try:

        def differences(sync_conn: Any) -> list[Any]:
            context = MigrationContext.configure(
                sync_conn, opts={"compare_type": True, "include_object": include_object}
            )
            return list(compare_metadata(context, metadata))

        async with database.engine.connect() as conn:
            diff = await conn.run_sync(differences)
        assert diff == []
        assert await current_revision(database) == head_revision()
    finally:
        await database.dispose()


async def test_migrating_again_changes_nothing(databases: DatabaseFactory) -> None:
    url = await databases.create()
    await upgrade_async(url)
    database = Database(url)
    try:
        assert await current_revision(database) == head_revision()
    finally:
        await database.dispose()
