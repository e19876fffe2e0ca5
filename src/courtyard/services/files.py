"""Uploading, describing, serving and sweeping files.

An upload streams to a scratch file (never held in memory), is sized, hashed, sniffed,
checked against the type rules, scanned by clamd when one is configured, described by the
image worker when it is a raster image, and only then moved into the store and recorded: a
file nobody has accepted is never visible. It belongs to its uploader until attached to a
message; from then on, whoever can see that message can download it. Deleting the message
orphans its files; the sweep deletes unattached files after a grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from courtyard.domain.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    Unavailable,
)
from courtyard.domain.files import INLINE_IMAGE_TYPES, FileInfo, clean_file_name, type_matches
from courtyard.domain.users import Actor
from courtyard.files.clamd import ClamdScanner, ScannerError
from courtyard.files.images import ImageReport, Thumbnailer
from courtyard.files.sniff import HEAD_BYTES, sniff
from courtyard.files.store import FileStore, new_key, thumbnail_key
from courtyard.services.access import access_message
from courtyard.services.audit import DENIED, note
from courtyard.services.context import ServiceContext
from courtyard.storage.repositories.files import FileRecord, FileRepository, NewFile
from courtyard.storage.unit_of_work import UnitOfWork

logger = logging.getLogger(__name__)

FILE_NOT_FOUND = "file not found"
_WRITE_BATCH = 1024 * 1024


@dataclass(frozen=True, slots=True)
class FileRules:
    """Limits and policies for files, derived from settings by the composition root."""

    scratch_dir: Path
    max_file_bytes: int = 100 * 1024 * 1024
    quota_bytes: int | None = None
    max_files_per_user: int | None = None
    max_files_per_message: int = 10
    allowed_types: tuple[str, ...] = ()
    blocked_types: tuple[str, ...] = ()
    orphan_grace: timedelta = timedelta(hours=24)
    sweep_interval: timedelta | None = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Download:
    """What a download route needs: the file, which stored object to send, and how."""

    info: FileInfo
    key: str
    size: int
    media_type: str
    etag: str
    inline: bool


@dataclass(slots=True)
class _Staged:
    path: Path
    size: int = 0
    head: bytes = b""
    sha256: str = ""
    thumbnail: Path | None = None
    extra: list[Path] = field(default_factory=list)


async def access_file(uow: UnitOfWork, actor: Actor, file_id: int) -> FileRecord:
    """A file the actor may read: its uploader's until attached, then anyone's who can see
    the message carrying it. NotFound (file) for anything else, missing or hidden."""
    record = await FileRepository(uow.conn).get(file_id)
    if record is None:
        raise NotFound(FILE_NOT_FOUND)
    message_id = record.info.message_id
    if message_id is None:
        if record.info.uploader_id == actor.user_id and not record.orphaned:
            return record
        raise NotFound(FILE_NOT_FOUND)
    try:
        access = await access_message(uow, actor, message_id)
    except NotFound:
        raise NotFound(FILE_NOT_FOUND) from None
    if access.record.deleted:
        raise NotFound(FILE_NOT_FOUND)
    return record


class Files:
    """The file use cases."""

    def __init__(
        self,
        ctx: ServiceContext,
        store: FileStore,
        rules: FileRules,
        *,
        thumbnailer: Thumbnailer,
        scanner: ClamdScanner | None = None,
    ) -> None:
        self._ctx = ctx
        self.store = store
        self.rules = rules
        self._thumbnailer = thumbnailer
        self._scanner = scanner
        self._sweeper: asyncio.Task[None] | None = None

    @classmethod
    def with_defaults(cls, ctx: ServiceContext) -> Files:
        """Default rules over a private temporary directory (for wiring without settings)."""
        import tempfile

        from courtyard.files.backends.local import LocalFileStore

        root = Path(tempfile.mkdtemp(prefix="courtyard-files-"))
        return cls(
            ctx,
            LocalFileStore(root / "files"),
            FileRules(scratch_dir=root / "tmp", sweep_interval=None),
            thumbnailer=Thumbnailer(workers=1, timeout=20.0, max_pixels=50_000_000, box=400),
        )

    @property
    def max_upload_bytes(self) -> int:
        """The largest request body an upload may take (the file plus multipart framing)."""
        return self.rules.max_file_bytes + 64 * 1024

    # --- upload ---------------------------------------------------------------------------
    async def upload(self, actor: Actor, name: str, content: AsyncIterator[bytes]) -> FileInfo:
        """Store one file for ``actor``; it is theirs alone until they attach it."""
        clean_name = clean_file_name(name)
        async with self._ctx.storage.snapshot() as uow:
            await self._check_quota(FileRepository(uow.conn), actor.user_id, 0)
        staged = await self._receive(content)
        keys: list[str] = []
        try:
            media_type = self._check_type(staged)
            await self._scan(actor, staged, clean_name)
            report = await self._describe(staged, media_type)
            key = new_key()
            await self.store.put(key, staged.path)
            keys.append(key)
            thumb = None
            if staged.thumbnail is not None and report.thumbnail:
                thumb = thumbnail_key(key)
                await self.store.put(thumb, staged.thumbnail)
                keys.append(thumb)
            new = NewFile(
                uploader_id=actor.user_id,
                name=clean_name,
                media_type=media_type,
                size=staged.size,
                sha256=staged.sha256,
                storage_key=key,
                thumbnail_key=thumb,
                width=report.width,
                height=report.height,
                inline=report.status == "ok" and not report.active_content,
            )
            async with self._ctx.storage.transaction() as uow:
                repo = FileRepository(uow.conn)
                await repo.lock_uploader(actor.user_id)
                await self._check_quota(repo, actor.user_id, staged.size)
                info = await repo.insert(new, now=self._ctx.clock())
        except BaseException:
            for key in keys:
                with contextlib.suppress(Exception):
                    await self.store.delete(key)
            raise
        finally:
            await self._discard(staged)
        return info

    async def _check_quota(self, repo: FileRepository, user_id: int, adding: int) -> None:
        usage = await repo.usage(user_id)
        limit = self.rules.max_files_per_user
        if limit is not None and usage.count + 1 > limit:
            raise Conflict(
                f"you may keep at most {limit} files; delete messages with files you no "
                "longer need",
                code="quota_exceeded",
            )
        quota = self.rules.quota_bytes
        if quota is not None and usage.bytes + adding > quota:
            raise Conflict("this file would exceed your storage quota", code="quota_exceeded")

    async def _receive(self, content: AsyncIterator[bytes]) -> _Staged:
        scratch = self.rules.scratch_dir
        await asyncio.to_thread(scratch.mkdir, parents=True, exist_ok=True)
        staged = _Staged(path=scratch / f"upload-{secrets.token_hex(12)}.part")
        digest = hashlib.sha256()
        handle = await asyncio.to_thread(staged.path.open, "wb")
        pending: list[bytes] = []
        pending_bytes = 0
        try:
            async for chunk in content:
                staged.size += len(chunk)
                if staged.size > self.rules.max_file_bytes:
                    raise PayloadTooLarge(
                        f"files are limited to {self.rules.max_file_bytes} bytes",
                        code="file_too_large",
                    )
                if len(staged.head) < HEAD_BYTES:
                    staged.head += chunk[: HEAD_BYTES - len(staged.head)]
                digest.update(chunk)
                pending.append(chunk)
                pending_bytes += len(chunk)
                if pending_bytes >= _WRITE_BATCH:
                    await asyncio.to_thread(handle.writelines, pending)
                    pending, pending_bytes = [], 0
            if pending:
                await asyncio.to_thread(handle.writelines, pending)
        except BaseException:
            await asyncio.to_thread(handle.close)
            await self._discard(staged)
            raise
        await asyncio.to_thread(handle.close)
        staged.sha256 = digest.hexdigest()
        if staged.size == 0:
            await self._discard(staged)
            raise InvalidInput("the file is empty", field="file", code="empty_file")
        return staged

    def _check_type(self, staged: _Staged) -> str:
        media_type = sniff(staged.head)
        rules = self.rules
        blocked = type_matches(media_type, rules.blocked_types)
        if blocked or (rules.allowed_types and not type_matches(media_type, rules.allowed_types)):
            raise InvalidInput(
                f"files of type {media_type} are not accepted here",
                field="file",
                code="file_type_not_allowed",
            )
        return media_type

    async def _scan(self, actor: Actor, staged: _Staged, name: str) -> None:
        if self._scanner is None:
            return
        try:
            verdict = await self._scanner.scan(staged.path)
        except ScannerError as exc:
            logger.error("virus scan failed: %s", exc)
            raise Unavailable(
                "the virus scanner is not available; try again later", code="scanner_unavailable"
            ) from None
        if not verdict.clean:
            # Audited: who, what (by hash and size), and which signature; not the name.
            async with self._ctx.storage.transaction() as uow:
                note(
                    uow,
                    self._ctx,
                    actor,
                    "file.infected_refused",
                    outcome=DENIED,
                    details={
                        "sha256": staged.sha256,
                        "size": staged.size,
                        "signature": verdict.signature,
                    },
                )
            raise InvalidInput(
                f"the file was refused by the virus scanner ({verdict.signature})",
                field="file",
                code="infected_file",
            )

    async def _describe(self, staged: _Staged, media_type: str) -> ImageReport:
        if media_type not in INLINE_IMAGE_TYPES:
            return ImageReport(status="not_an_image")
        staged.thumbnail = staged.path.with_suffix(".thumb")
        return await self._thumbnailer.describe(staged.path, media_type, staged.thumbnail)

    async def _discard(self, staged: _Staged) -> None:
        for path in (staged.path, staged.thumbnail, *staged.extra):
            if path is not None:
                await asyncio.to_thread(path.unlink, missing_ok=True)

    # --- reading --------------------------------------------------------------------------
    async def get_file(self, actor: Actor, file_id: int) -> FileInfo:
        """A file's metadata, for whoever may download it."""
        async with self._ctx.storage.snapshot() as uow:
            return (await access_file(uow, actor, file_id)).info

    async def open_download(
        self, actor: Actor, file_id: int, *, thumbnail: bool = False
    ) -> Download:
        """Check access (every time) and describe what to send."""
        async with self._ctx.storage.snapshot() as uow:
            record = await access_file(uow, actor, file_id)
        info = record.info
        if thumbnail:
            if record.thumbnail_key is None:
                raise NotFound("this file has no thumbnail", code="no_thumbnail")
            key, media_type, etag, inline = record.thumbnail_key, "image/webp", "t", True
        else:
            key, media_type, etag, inline = record.storage_key, info.media_type, "f", info.inline
        size = await self.store.size(key)
        if size is None:
            logger.error("file %s is recorded but its bytes are missing", info.id)
            raise NotFound(FILE_NOT_FOUND)
        return Download(
            info=info,
            key=key,
            size=size,
            media_type=media_type,
            etag=f'"{info.sha256[:32]}-{etag}"',
            inline=inline,
        )

    def read(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        """Stream ``[start, end)`` of a stored object (after :meth:`open_download`)."""
        return self.store.read(key, start, end)

    # --- sweeping -------------------------------------------------------------------------
    async def sweep(self, *, now: datetime | None = None, batch: int = 500) -> int:
        """Delete unattached files older than the grace period; returns how many."""
        cutoff = (now or self._ctx.clock()) - self.rules.orphan_grace
        removed = 0
        while True:
            async with self._ctx.storage.transaction() as uow:
                claimed = await FileRepository(uow.conn).claim_sweepable(
                    older_than=cutoff, limit=batch
                )
            for key, thumb in claimed:
                for stored in (key, thumb):
                    if stored is not None:
                        try:
                            await self.store.delete(stored)
                        except Exception:
                            logger.exception("could not delete a swept file's bytes")
            removed += len(claimed)
            if len(claimed) < batch:
                return removed

    async def start(self) -> None:
        """Start the periodic sweep (when configured)."""
        interval = self.rules.sweep_interval
        if interval is not None and self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep_forever(interval), name="file-sweep")

    async def _sweep_forever(self, interval: timedelta) -> None:
        while True:
            await asyncio.sleep(interval.total_seconds())
            try:
                swept = await self.sweep()
                if swept:
                    logger.info("file sweep removed %s unattached files", swept)
            except Exception:
                logger.exception("file sweep failed")

    async def stop(self) -> None:
        """Stop the sweep and the image workers."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        await self._thumbnailer.close()
