"""Sending, editing, deleting and reading messages and threads."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence

from courtyard.domain.errors import InvalidInput, NotFound, PermissionDenied
from courtyard.domain.events import (
    Audience,
    MessageDeleted,
    MessageEdited,
)
from courtyard.domain.mentions import find_mentions
from courtyard.domain.messages import HistoryPage, Message, MessageVersion, PageRequest
from courtyard.domain.text import clean_message_text
from courtyard.domain.users import Actor
from courtyard.plugins.manager import call_after_hook, chain_text_hook
from courtyard.services.access import (
    MESSAGE_NOT_FOUND,
    access_channel,
    access_message,
    access_message_for_writing,
    require_readable,
)
from courtyard.services.audit import note
from courtyard.services.context import ServiceContext
from courtyard.services.message_writer import MessageWriter, Reply, Sent
from courtyard.services.search import search_document
from courtyard.storage.repositories.files import FileRepository
from courtyard.storage.repositories.search import SearchRepository
from courtyard.storage.unit_of_work import UnitOfWork

CLIENT_ID_MAX = 64


class Messages:
    """The message use cases."""

    def __init__(self, ctx: ServiceContext, *, max_files_per_message: int = 10) -> None:
        self._ctx = ctx
        self._writer = MessageWriter(ctx)
        self._max_files = max_files_per_message

    async def send_message(
        self,
        actor: Actor,
        channel_id: int,
        text: str,
        *,
        client_message_id: str | None = None,
        thread_root_id: int | None = None,
        file_ids: Sequence[int] = (),
    ) -> Sent:
        """Post a message (or a thread reply). Idempotent per ``client_message_id``.

        A retried send with the same key returns the first message, never a duplicate, even
        when both attempts race: the unique (sender, key) index decides and the loser's
        transaction, including its sequence number, rolls back.
        """
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Sent] = loop.create_future()
        self.submit_message(
            actor,
            channel_id,
            text,
            functools.partial(_settle, done),
            client_message_id=client_message_id,
            thread_root_id=thread_root_id,
            file_ids=file_ids,
        )
        return await done

    def submit_message(
        self,
        actor: Actor,
        channel_id: int,
        text: str,
        reply: Reply,
        *,
        client_message_id: str | None = None,
        thread_root_id: int | None = None,
        file_ids: Sequence[int] = (),
    ) -> None:
        """:meth:`send_message` without waiting: checks the input now (raising its errors at
        once) and queues the send; ``reply`` is called with the :class:`Sent` outcome or the
        error once its transaction has ended (after the after-stored plugins ran).

        Sends submitted one after the other are stored in that order, which is what lets the
        event socket pipeline a connection's sends (docs/adr/0014).
        """
        if len(file_ids) > self._max_files:
            raise InvalidInput(
                f"attach at most {self._max_files} files to a message",
                field="file_ids",
                code="too_many_files",
            )
        if file_ids and not text.strip():
            body = ""  # a message may be just its files
        else:
            body = message_body(text, max_length=self._ctx.policy.max_message_chars)
        key = _clean_client_id(client_message_id)
        self._writer.submit(actor, channel_id, body, key, thread_root_id, tuple(file_ids), reply)

    async def _mentioned_members(
        self, uow: UnitOfWork, channel_id: int, usernames: frozenset[str]
    ) -> list[int]:
        if not usernames:
            return []
        records = [r for r in await uow.users.by_usernames(usernames) if r.is_active]
        members = await uow.channels.members_among(channel_id, [r.id for r in records])
        return sorted(r.id for r in records if r.id in members)

    async def edit_message(self, actor: Actor, message_id: int, text: str) -> Message:
        """Change your own message; every earlier text is kept in its history."""
        body = clean_message_text(text, max_length=self._ctx.policy.max_message_chars)
        now = self._ctx.clock()
        async with self._ctx.storage.transaction() as uow:
            access = await access_message_for_writing(uow, actor, message_id)
            record = access.record
            if record.sender_id != actor.user_id:
                raise PermissionDenied("you can only edit your own messages", code="not_the_author")
            current = await uow.messages.get(message_id)
            assert current is not None
            body = chain_text_hook(
                self._ctx.plugins.hook.courtyard_before_message_edited,
                "new_text",
                actor=actor,
                channel=access.channel.channel,
                message=current,
                new_text=body,
            )
            body = clean_message_text(body, max_length=self._ctx.policy.max_message_chars)
            if body == record.text:
                return current
            await uow.messages.insert_version(
                message_id,
                version=record.version,
                text=record.text,
                edited_at=now,
                editor_id=actor.user_id,
            )
            mentions = find_mentions(body)
            await uow.messages.update_text(
                message_id,
                text=body,
                now=now,
                version=record.version + 1,
                mentions_channel=mentions.channel_wide,
                mentions_here=mentions.here,
            )
            mentioned = await self._mentioned_members(uow, record.channel_id, mentions.usernames)
            await uow.messages.replace_mentions(
                message_id, mentioned, channel_id=record.channel_id, seq=record.seq
            )
            message = await uow.messages.get(message_id)
            assert message is not None
            await SearchRepository(uow.conn).replace(
                search_document(message_id, body, [a.name for a in message.attachments])
            )
            uow.outbox.append(
                MessageEdited(message=message), Audience(channel_id=record.channel_id)
            )
        call_after_hook(
            self._ctx.plugins.hook.courtyard_after_message_edited,
            actor=actor,
            channel=access.channel.channel,
            message=message,
        )
        return message

    async def delete_message(self, actor: Actor, message_id: int) -> Message:
        """Delete your own message (administrators: anyone's). Its text is gone for users."""
        now = self._ctx.clock()
        async with self._ctx.storage.transaction() as uow:
            access = await access_message(uow, actor, message_id)
            record = access.record
            if record.deleted:
                raise NotFound(MESSAGE_NOT_FOUND)
            if record.sender_id != actor.user_id and not actor.is_admin:
                raise PermissionDenied(
                    "you can only delete your own messages", code="not_the_author"
                )
            await uow.messages.soft_delete(
                message_id,
                now=now,
                by=actor.user_id,
                keep_content=self._ctx.policy.keep_deleted_content,
            )
            if record.pinned:
                await uow.messages.set_pinned(message_id, by=None, at=None)
            # Gone from search at once; its files wait for the sweep's grace period.
            await SearchRepository(uow.conn).remove(message_id)
            await FileRepository(uow.conn).orphan_for_message(message_id, now=now)
            message = await uow.messages.get(message_id)
            assert message is not None
            if record.sender_id != actor.user_id:
                # An administrator removed someone else's message: audited (never its text).
                note(
                    uow,
                    self._ctx,
                    actor,
                    "message.deleted_by_admin",
                    target=f"message:{message_id}",
                    details={"channel_id": record.channel_id, "author_id": record.sender_id},
                )
            uow.outbox.append(
                MessageDeleted(message=message), Audience(channel_id=record.channel_id)
            )
        return message

    async def get_message(self, actor: Actor, message_id: int) -> Message:
        """One message the actor may see."""
        async with self._ctx.storage.snapshot() as uow:
            await access_message(uow, actor, message_id)
            message = await uow.messages.get(message_id)
        if message is None:
            raise NotFound(MESSAGE_NOT_FOUND)
        return message

    async def history(self, actor: Actor, channel_id: int, page: PageRequest) -> HistoryPage:
        """A window of a channel's top-level messages."""
        request = self._bounded(page)
        if request.around is not None:
            async with self._ctx.storage.snapshot() as uow:
                await access_channel(uow, actor, channel_id)
                return await uow.messages.page(channel_id, request)
        # One statement reads the page and the facts the access rule needs (docs/adr/0015);
        # the rule is applied here before anything is returned.
        async with self._ctx.storage.snapshot(consistent=False) as uow:
            gate, window = await uow.messages.channel_page(channel_id, actor.user_id, request)
        require_readable(actor, gate)
        return window

    async def thread(
        self, actor: Actor, root_id: int, page: PageRequest
    ) -> tuple[Message, HistoryPage]:
        """A thread's root and a window of its replies."""
        request = self._bounded(page)
        async with self._ctx.storage.snapshot() as uow:
            access = await access_message(uow, actor, root_id)
            if access.record.thread_root_id is not None:
                raise InvalidInput(
                    "that message is a reply; open its root", code="not_a_thread_root"
                )
            root = await uow.messages.get(root_id)
            replies = await uow.messages.page(
                access.record.channel_id, request, thread_root_id=root_id
            )
        assert root is not None
        return root, replies

    async def versions(self, actor: Actor, message_id: int) -> list[MessageVersion]:
        """The edit history of a message: its author and administrators only."""
        async with self._ctx.storage.snapshot() as uow:
            access = await access_message(uow, actor, message_id)
            if access.record.sender_id != actor.user_id and not actor.is_admin:
                raise PermissionDenied(
                    "only the author and administrators see edit history", code="not_the_author"
                )
            if access.record.deleted:
                return []
            return await uow.messages.versions(message_id)

    def _bounded(self, page: PageRequest) -> PageRequest:
        given = [value for value in (page.before, page.after, page.around) if value is not None]
        if len(given) > 1:
            raise InvalidInput(
                "use at most one of before, after and around", code="conflicting_cursors"
            )
        if any(value < 0 for value in given):
            raise InvalidInput("sequence numbers are never negative", code="invalid_cursor")
        if page.limit < 1:
            raise InvalidInput("limit must be at least 1", field="limit")
        limit = min(page.limit, self._ctx.policy.max_page_size)
        return PageRequest(limit=limit, before=page.before, after=page.after, around=page.around)


def message_body(text: str, *, max_length: int) -> str:
    """``clean_message_text`` with a fast path for the common text it returns unchanged.

    Its scan calls ``unicodedata.category`` per character (10-13 % of a socket send's CPU);
    ``str.isprintable`` refuses every character of the categories it refuses (Cc, Cs) in C.
    A text without CR, printable once its newlines and tabs are set aside, with something
    besides spaces and within the length, is returned as it is; anything else gets the full
    check and its error.
    """
    if (
        len(text) <= max_length
        and "\r" not in text
        and (text.isprintable() or text.replace("\n", "").replace("\t", "").isprintable())
        and text.strip()
    ):
        return text
    return clean_message_text(text, max_length=max_length)


def _settle(done: asyncio.Future[Sent], outcome: Sent | BaseException) -> None:
    # ``done`` may be cancelled already when its caller gave up (an HTTP client went away);
    # the message is stored all the same.
    if done.done():
        return
    if isinstance(outcome, BaseException):
        done.set_exception(outcome)
    else:
        done.set_result(outcome)


def _clean_client_id(value: str | None) -> str | None:
    if value is None:
        return None
    key = value.strip()
    if not key or len(key) > CLIENT_ID_MAX or not key.isprintable() or not key.isascii():
        raise InvalidInput(
            f"client_message_id must be 1-{CLIENT_ID_MAX} printable ASCII characters",
            field="client_message_id",
            code="invalid_client_message_id",
        )
    return key
