"""`courtyard files sweep` and `courtyard search reindex`, run as real subprocesses."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import delete

from courtyard.storage.schema import search_documents
from tests.api.files_support import upload_ok
from tests.support import DatabaseFactory, Org, org_context

COURTYARD = Path(sys.executable).with_name("courtyard")


@pytest.fixture
async def own_org(databases: DatabaseFactory, tmp_path: Path) -> AsyncIterator[Org]:
    """An organisation with its own data directory and no periodic sweep."""
    async with org_context(databases, tmp_path, files={"sweep_interval_minutes": 0}) as org:
        yield org


async def run(org: Org, *args: str, **env: str) -> tuple[int, str]:
    settings = org.server.settings
    environment = {k: v for k, v in os.environ.items() if not k.startswith("COURTYARD_")}
    environment.update(
        COURTYARD_DATABASE__URL=settings.database_url(),
        COURTYARD_DATA_DIR=str(settings.data_dir),
        NO_COLOR="1",
        COLUMNS="200",
        **env,
    )
    process = await asyncio.create_subprocess_exec(
        str(COURTYARD),
        *args,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, output.decode()


async def test_files_sweep_removes_only_unattached_files_past_the_grace(own_org: Org) -> None:
    person = await own_org.person("cli")
    channel = await person.create_channel()
    kept = await upload_ok(person, b"kept", "kept.txt")
    loose = await upload_ok(person, b"loose", "loose.txt")
    response = await person.post(
        f"/api/v1/channels/{channel['id']}/messages", {"text": "x", "file_ids": [kept["id"]]}
    )
    assert response.status_code == 201
    code, output = await run(own_org, "files", "sweep")
    assert code == 0, output
    assert "removed 0" in output
    code, output = await run(own_org, "files", "sweep", COURTYARD_FILES__ORPHAN_GRACE_HOURS="0")
    assert code == 0, output
    assert "removed 1" in output
    assert (await person.get(f"/api/v1/files/{loose['id']}/content")).status_code == 404
    assert (await person.get(f"/api/v1/files/{kept['id']}/content")).status_code == 200


async def test_search_reindex_rebuilds_a_lost_index(own_org: Org) -> None:
    person = await own_org.person("indexer")
    channel = await person.create_channel()
    await person.send(channel["id"], "messages from before the upgrade 升级之前")
    query = {"q": f"升级 upgrade in:#{channel['name']}"}
    assert len((await person.get("/api/v1/search", params=query)).json()["results"]) == 1
    async with own_org.server.services.context.storage.transaction() as uow:
        await uow.conn.execute(delete(search_documents))
    assert (await person.get("/api/v1/search", params=query)).json()["results"] == []
    code, output = await run(own_org, "search", "reindex")
    assert code == 0, output
    assert "indexed" in output
    assert len((await person.get("/api/v1/search", params=query)).json()["results"]) == 1
