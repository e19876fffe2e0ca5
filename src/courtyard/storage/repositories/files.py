"""Uploaded files and which message carries them."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, delete, func, or_, select, update

from courtyard.domain.files import Attachment, FileInfo
from courtyard.storage.repositories._base import Repository
from courtyard.storage.schema import files, users
from courtyard.storage.timestamps import from_micros, to_micros


@dataclass(frozen=True, slots=True)
class NewFile:
    """A file that passed every check and is about to become visible to its uploader."""

    uploader_id: int
    name: str
    media_type: str
    size: int
    sha256: str
    storage_key: str
    thumbnail_key: str | None
    width: int | None
    height: int | None
    inline: bool


@dataclass(frozen=True, slots=True)
class FileRecord:
    """The stored columns services need for access rules and serving."""

    info: FileInfo
    storage_key: str
    thumbnail_key: str | None
    orphaned: bool


@dataclass(frozen=True, slots=True)
class Usage:
    """What a user's files take up."""

    count: int
    bytes: int


def _info(row: Row[Any]) -> FileInfo:
    return FileInfo(
        id=row.id,
        name=row.name,
        media_type=row.media_type,
        size=row.size,
        sha256=row.sha256,
        uploader_id=row.uploader_id,
        created_at=from_micros(row.created_at),
        message_id=row.message_id,
        width=row.width,
        height=row.height,
        has_thumbnail=row.thumbnail_key is not None,
        inline=bool(row.inline),
    )


def _record(row: Row[Any]) -> FileRecord:
    return FileRecord(
        info=_info(row),
        storage_key=row.storage_key,
        thumbnail_key=row.thumbnail_key,
        orphaned=row.orphaned_at is not None,
    )


class FileRepository(Repository):
    """Reads and writes of ``files``."""

    async def lock_uploader(self, user_id: int) -> None:
        """Serialise quota checks of one user's concurrent uploads (PostgreSQL row lock)."""
        await self.conn.execute(select(users.c.id).where(users.c.id == user_id).with_for_update())

    async def usage(self, user_id: int) -> Usage:
        """Files a user holds that the sweep has not removed yet (attached or not)."""
        row = (
            await self.conn.execute(
                select(func.count(), func.coalesce(func.sum(files.c.size), 0)).where(
                    files.c.uploader_id == user_id
                )
            )
        ).one()
        return Usage(count=int(row[0]), bytes=int(row[1]))

    async def insert(self, new: NewFile, *, now: datetime) -> FileInfo:
        """Store a file's metadata; returns it as its uploader sees it."""
        result = await self.conn.execute(
            files.insert()
            .values(
                uploader_id=new.uploader_id,
                position=0,
                name=new.name,
                media_type=new.media_type,
                size=new.size,
                sha256=new.sha256,
                storage_key=new.storage_key,
                thumbnail_key=new.thumbnail_key,
                width=new.width,
                height=new.height,
                inline=new.inline,
                created_at=to_micros(now),
            )
            .returning(files.c.id)
        )
        file_id = int(result.scalar_one())
        record = await self.get(file_id)
        assert record is not None
        return record.info

    async def get(self, file_id: int) -> FileRecord | None:
        """One file by id (no access check: services do that)."""
        row = (await self.conn.execute(select(files).where(files.c.id == file_id))).first()
        return _record(row) if row else None

    async def get_many(
        self, file_ids: Iterable[int], *, lock: bool = False
    ) -> dict[int, FileRecord]:
        """Several files by id; ``lock`` holds their rows until commit (attaching them)."""
        ids = sorted(set(file_ids))
        if not ids:
            return {}
        stmt = select(files).where(files.c.id.in_(ids))
        if lock:
            stmt = stmt.with_for_update()
        return {row.id: _record(row) for row in await self.conn.execute(stmt)}

    async def attach(self, links: Sequence[tuple[int, int, int]], *, now: datetime) -> None:
        """Attach files to messages: (file_id, message_id, position) triples."""
        for file_id, message_id, position in links:
            await self.conn.execute(
                update(files)
                .where(files.c.id == file_id)
                .values(message_id=message_id, position=position, attached_at=to_micros(now))
            )

    async def attachments(self, message_ids: Sequence[int]) -> dict[int, list[Attachment]]:
        """The files of several messages, in attachment order."""
        if not message_ids:
            return {}
        rows = await self.conn.execute(
            select(files)
            .where(files.c.message_id.in_(list(message_ids)))
            .order_by(files.c.message_id, files.c.position)
        )
        found: dict[int, list[Attachment]] = defaultdict(list)
        for row in rows:
            found[row.message_id].append(_info(row).as_attachment())
        return found

    async def orphan_for_message(self, message_id: int, *, now: datetime) -> list[int]:
        """Detach a deleted message's files; the sweep removes them after the grace period."""
        ids = [
            int(row.id)
            for row in await self.conn.execute(
                select(files.c.id).where(files.c.message_id == message_id)
            )
        ]
        if ids:
            await self.conn.execute(
                update(files)
                .where(files.c.id.in_(ids))
                .values(message_id=None, orphaned_at=to_micros(now))
            )
        return ids

    async def claim_sweepable(
        self, *, older_than: datetime, limit: int
    ) -> list[tuple[str, str | None]]:
        """Forget up to ``limit`` unattached files past the grace period (never attached,
        orphaned, or whose message row is gone) and return their storage keys.

        Rows go first, bytes after commit: a file can no longer be attached once claimed, and
        a crash in between leaves unreferenced bytes, never a reference to missing bytes.
        """
        cutoff = to_micros(older_than)
        ids = select(files.c.id).where(
            files.c.message_id.is_(None),
            or_(
                files.c.orphaned_at < cutoff,
                and_(files.c.orphaned_at.is_(None), files.c.created_at < cutoff),
            ),
        )
        ids = ids.order_by(files.c.id).limit(limit)
        rows = await self.conn.execute(
            delete(files)
            .where(files.c.id.in_(ids), files.c.message_id.is_(None))
            .returning(files.c.storage_key, files.c.thumbnail_key)
        )
        return [(row.storage_key, row.thumbnail_key) for row in rows]

    async def names_of(self, message_ids: Sequence[int]) -> dict[int, list[str]]:
        """Attachment names per message (for the search index)."""
        found: dict[int, list[str]] = defaultdict(list)
        for message_id, attachments in (await self.attachments(message_ids)).items():
            found[message_id] = [a.name for a in attachments]
        return found
