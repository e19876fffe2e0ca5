"""Searching messages (and the names of their files) that the searcher can read.

The query is parsed in the domain; visibility is the read rule of
``services.access.access_channel`` (member, or any public channel for non-guests) applied as
a set inside the query, so no result can come from a channel the searcher could not open —
including one they were removed from.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from courtyard.domain.channels import ChannelKind
from courtyard.domain.errors import MalformedRequest
from courtyard.domain.files import Attachment
from courtyard.domain.messages import Message
from courtyard.domain.search_query import SearchQuery, parse_query
from courtyard.domain.search_results import (
    ChannelRef,
    SearchPage,
    SearchResult,
    highlights,
    snippet,
)
from courtyard.domain.search_text import has_link, tokenize
from courtyard.domain.users import Actor
from courtyard.services.context import ServiceContext
from courtyard.storage.repositories.search import SearchDocument, SearchRepository, SearchSpec
from courtyard.storage.unit_of_work import UnitOfWork

Order = Literal["date", "relevance"]

#: Message ids below the newest search document where ``Search.index_missing`` looks for
#: messages without one: five times the most the backlog holds (``MAX_PENDING``).
MISSING_WINDOW = 100_000


@dataclass(frozen=True, slots=True)
class SearchRules:
    """Search limits, derived from settings."""

    max_page_size: int = 50
    relevance_window: int = 500
    default_order: Order = "date"


def search_document(message_id: int, text: str, file_names: Sequence[str] = ()) -> SearchDocument:
    """What the index holds for a message: its text's terms, then its file names' terms."""
    terms = [token.term for token in tokenize(text)]
    for name in file_names:
        terms.extend(token.term for token in tokenize(name))
    return SearchDocument(message_id=message_id, terms=terms[:16_000], has_link=has_link(text))


def _encode_cursor(kind: str, value: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{value}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, order: Order) -> int:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        kind, _, value = base64.urlsafe_b64decode(padded.encode("ascii")).decode().partition(":")
        number = int(value)
    except (ValueError, UnicodeError, binascii.Error):
        raise MalformedRequest("invalid cursor", code="invalid_cursor", field="cursor") from None
    if kind != order[0] or not 0 <= number < 2**63:
        raise MalformedRequest(
            "this cursor belongs to another order", code="invalid_cursor", field="cursor"
        )
    return number


class Search:
    """The search use cases."""

    def __init__(self, ctx: ServiceContext, rules: SearchRules | None = None) -> None:
        self._ctx = ctx
        self.rules = rules or SearchRules()

    async def search(
        self,
        actor: Actor,
        q: str,
        *,
        order: Order | None = None,
        cursor: str | None = None,
        limit: int = 20,
    ) -> SearchPage:
        """One page of messages matching ``q`` that ``actor`` may read."""
        order = order or self.rules.default_order
        if not q.strip():
            raise MalformedRequest("the query is empty", code="empty_query", field="q")
        query = parse_query(q)
        position = _decode_cursor(cursor, order) if cursor else None
        limit = max(1, min(limit, self.rules.max_page_size))
        if query.is_empty:
            return SearchPage(results=[], order=order)
        # Messages this process stored a moment ago are indexed first (ADR 0024).
        await self._ctx.storage.search_backlog.caught_up()
        async with self._ctx.storage.snapshot() as uow:
            index = SearchRepository(uow.conn)
            spec = await self._spec(index, actor, query, order, position, limit)
            hits = await index.search(spec)
            more = len(hits) > limit
            hits = hits[:limit]
            by_id = {m.id: m for m in await self._messages(uow, [h.message_id for h in hits])}
            refs = await index.channel_rows([m.channel_id for m in by_id.values()])
        results = [
            self._result(by_id[hit.message_id], refs, query, hit.score)
            for hit in hits
            # Deleting a message removes its document in the same transaction; word searches
            # no longer join the message, so a deleted one is also refused here.
            if hit.message_id in by_id and by_id[hit.message_id].deleted_at is None
        ]
        next_cursor = None
        if more and hits:
            next_cursor = (
                _encode_cursor("d", hits[-1].message_id)
                if order == "date"
                else _encode_cursor("r", (position or 0) + limit)
            )
        return SearchPage(results=results, order=order, next_cursor=next_cursor)

    async def _spec(
        self,
        index: SearchRepository,
        actor: Actor,
        query: SearchQuery,
        order: Order,
        position: int | None,
        limit: int,
    ) -> SearchSpec:
        base = SearchSpec(user_id=actor.user_id, include_public=not actor.is_guest)
        sender_ids = None
        if query.from_users:
            sender_ids = await self._user_ids(index, query.from_users)
        channel_ids = None
        if query.in_channels:
            channel_ids = await index.channels_named(query.in_channels, base)
        return SearchSpec(
            user_id=actor.user_id,
            include_public=not actor.is_guest,
            include=query.include,
            exclude=query.exclude,
            sender_ids=sender_ids,
            channel_ids=channel_ids,
            since=query.since,
            until=query.until,
            has_file="file" in query.has,
            has_link="link" in query.has,
            pinned="pinned" in query.is_,
            thread="thread" in query.is_,
            order=order,
            before_id=position if order == "date" else None,
            offset=(position or 0) if order == "relevance" else 0,
            limit=limit + 1,
            relevance_window=self.rules.relevance_window,
        )

    async def _user_ids(self, index: SearchRepository, usernames: list[str]) -> list[int]:
        from courtyard.storage.repositories.users import UserRepository

        records = await UserRepository(index.conn).by_usernames(usernames)
        return sorted(record.id for record in records)

    async def _messages(self, uow: UnitOfWork, ids: list[int]) -> list[Message]:
        if not ids:
            return []
        return await uow.messages.get_many(ids)

    def _result(
        self,
        message: Message,
        refs: dict[int, tuple[str, str]],
        query: SearchQuery,
        score: float | None,
    ) -> SearchResult:
        kind, name = refs.get(message.channel_id, ("public", ""))
        spans = highlights(message.text, query.include)
        matched = [a.id for a in message.attachments if _name_matches(a, query)]
        return SearchResult(
            message=message,
            channel=ChannelRef(id=message.channel_id, kind=ChannelKind(kind), name=name),
            snippet=snippet(message.text, spans),
            highlights=spans,
            matched_file_ids=matched,
            score=score,
        )

    async def reindex(
        self, *, batch: int = 1000, progress: Callable[[int, int, int], None] | None = None
    ) -> int:
        """Rebuild the whole index from the messages (after an upgrade); returns how many.

        ``progress(indexed, last_id, newest_id)`` after each batch: messages indexed so far,
        and how far through the ids the rebuild is.
        """
        from courtyard.storage.repositories.files import FileRepository

        last_id = 0
        indexed = 0
        async with self._ctx.storage.transaction() as uow:
            index = SearchRepository(uow.conn)
            await index.clear()
            newest = await index.last_message_id()
        while True:
            if progress is not None:
                progress(indexed, last_id, newest)
            async with self._ctx.storage.transaction() as uow:
                index = SearchRepository(uow.conn)
                rows = await index.messages_to_index(after_id=last_id, limit=batch)
                if not rows:
                    return indexed
                names = await FileRepository(uow.conn).names_of([mid for mid, _ in rows])
                await index.remove_range(rows[0][0], rows[-1][0])
                await index.index(
                    [search_document(mid, text, names.get(mid, [])) for mid, text in rows]
                )
            last_id = rows[-1][0]
            indexed += len(rows)

    async def index_missing(self, *, window: int = MISSING_WINDOW, batch: int = 1000) -> int:
        """Write the documents of recent messages that have none; returns how many.

        A process stopped with documents still queued (storage/search_backlog.py) leaves its
        last messages without one. Looked for among the ``window`` ids below the newest
        document and every id above it: more than the backlog holds at most, with room for
        what other processes wrote meanwhile. Run at start-up.
        """
        from courtyard.storage.repositories.files import FileRepository

        after_id = 0
        written = 0
        while True:
            async with self._ctx.storage.transaction() as uow:
                index = SearchRepository(uow.conn)
                rows = await index.missing_documents(after_id=after_id, window=window, limit=batch)
                if not rows:
                    return written
                names = await FileRepository(uow.conn).names_of([mid for mid, _ in rows])
                await index.index(
                    [search_document(mid, text, names.get(mid, [])) for mid, text in rows]
                )
            after_id = rows[-1][0]
            written += len(rows)


def _name_matches(attachment: Attachment, query: SearchQuery) -> bool:
    return bool(highlights(attachment.name, query.include))
