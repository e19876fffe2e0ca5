"""The search index: writing documents and running queries, per database.

Terms come from ``courtyard.domain.search_text``; the databases only match whole terms, so
both find the same messages. SQLite: FTS5 over space-separated terms (``search_fts``, an
external-content table over ``search_documents`` kept in step by triggers). PostgreSQL: a
``tsvector`` written term by term with positions, under a GIN index. Phrases, prefixes and
exclusions are rendered into each database's query syntax from parsed terms, which contain
only letters and digits, so user input never reaches either syntax directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    Text,
    and_,
    bindparam,
    cast,
    column,
    delete,
    exists,
    func,
    literal_column,
    or_,
    select,
    table,
    text,
    union,
)
from sqlalchemy.dialects.postgresql import TSQUERY, TSVECTOR
from sqlalchemy.ext.asyncio import AsyncConnection

from courtyard.domain.search_query import Phrase
from courtyard.storage.repositories._base import Repository
from courtyard.storage.schema import channels, files, memberships, messages, search_documents
from courtyard.storage.timestamps import to_micros

_fts = table("search_fts", column("rowid", Integer))


@dataclass(frozen=True, slots=True)
class SearchDocument:
    """What the index holds for one message: its terms in order, and whether it has a link."""

    message_id: int
    terms: Sequence[str]
    has_link: bool


@dataclass(frozen=True, slots=True)
class SearchSpec:
    """A query in database terms. ``None`` filters do not narrow; empty lists match nothing."""

    user_id: int
    include_public: bool
    include: Sequence[Phrase] = ()
    exclude: Sequence[Phrase] = ()
    sender_ids: Sequence[int] | None = None
    channel_ids: Sequence[int] | None = None
    since: datetime | None = None
    until: datetime | None = None
    has_file: bool = False
    has_link: bool = False
    pinned: bool = False
    thread: bool = False
    order: Literal["date", "relevance"] = "date"
    before_id: int | None = None
    offset: int = 0
    limit: int = 20
    relevance_window: int = 500


@dataclass(frozen=True, slots=True)
class SearchHit:
    """A matching message id, with its relevance score (higher is better) when ranked."""

    message_id: int
    score: float | None = None


def _fts5_phrase(phrase: Phrase) -> str:
    rendered = '"' + " ".join(phrase.terms) + '"'
    return rendered + " *" if phrase.prefix else rendered


def _tsquery_phrase(phrase: Phrase) -> str:
    parts = ["'" + term.replace("'", "''").replace("\\", "\\\\") + "'" for term in phrase.terms]
    if phrase.prefix:
        parts[-1] += ":*"
    return "(" + " <-> ".join(parts) + ")"


def fts5_match(include: Sequence[Phrase], exclude: Sequence[Phrase] = ()) -> str:
    """An FTS5 MATCH expression: every included phrase, none of the excluded."""
    expression = " AND ".join(_fts5_phrase(p) for p in include)
    if exclude:
        excluded = " OR ".join(_fts5_phrase(p) for p in exclude)
        expression = f"({expression}) NOT ({excluded})" if expression else excluded
    return expression


def tsquery(include: Sequence[Phrase], exclude: Sequence[Phrase] = ()) -> str:
    """A tsquery literal: every included phrase, none of the excluded."""
    expression = " & ".join(_tsquery_phrase(p) for p in include)
    if exclude:
        excluded = " | ".join(_tsquery_phrase(p) for p in exclude)
        expression = f"{expression} & !({excluded})" if expression else excluded
    return expression


def tsvector_literal(terms: Sequence[str]) -> str:
    """A tsvector literal with 1-based positions (PostgreSQL merges repeated terms)."""
    return " ".join(
        "'" + term.replace("'", "''").replace("\\", "\\\\") + f"':{position}"
        for position, term in enumerate(terms, start=1)
    )


class SearchRepository(Repository):
    """Index maintenance and queries, in the caller's transaction."""

    __slots__ = ("dialect",)

    def __init__(self, conn: AsyncConnection) -> None:
        super().__init__(conn)
        self.dialect = conn.dialect.name

    @property
    def _sqlite(self) -> bool:
        return self.dialect == "sqlite"

    async def index(self, documents: Sequence[SearchDocument]) -> None:
        """Add documents for new messages."""
        if not documents:
            return
        if self._sqlite:
            await self.conn.execute(
                search_documents.insert(),
                [
                    {"message_id": d.message_id, "body": " ".join(d.terms), "has_link": d.has_link}
                    for d in documents
                ],
            )
            return
        await self.conn.execute(
            search_documents.insert().values(
                message_id=bindparam("m"),
                body=cast(bindparam("b", type_=Text), TSVECTOR),
                has_link=bindparam("l"),
            ),
            [
                {"m": d.message_id, "b": tsvector_literal(d.terms), "l": d.has_link}
                for d in documents
            ],
        )

    async def replace(self, document: SearchDocument) -> None:
        """Re-index an edited message."""
        await self.remove(document.message_id)
        await self.index([document])

    async def remove(self, message_id: int) -> None:
        """Drop a deleted message from the index."""
        await self.conn.execute(
            delete(search_documents).where(search_documents.c.message_id == message_id)
        )

    async def clear(self) -> None:
        """Empty the index (before a full rebuild)."""
        await self.conn.execute(delete(search_documents))

    # --- queries --------------------------------------------------------------------------
    def _visible(self, spec: SearchSpec, *, by_recency: bool = False) -> ColumnElement[bool]:
        # The read rule of services.access.access_channel, as a set: the actor's channels,
        # plus every public channel unless the actor is a guest.
        member_of = select(memberships.c.channel_id).where(memberships.c.user_id == spec.user_id)
        channel: ColumnElement[Any] = messages.c.channel_id
        if by_recency and self._sqlite:
            # "+ 0" keeps SQLite from reading the channel index and sorting everything it
            # finds; walking messages newest first stops after one page.
            channel = messages.c.channel_id + 0
        if not spec.include_public:
            return channel.in_(member_of)
        public = select(channels.c.id).where(channels.c.kind == "public")
        return channel.in_(union(member_of, public))

    def _filters(self, spec: SearchSpec, *, by_recency: bool = False) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = [
            messages.c.deleted_at.is_(None),
            self._visible(spec, by_recency=by_recency and spec.channel_ids is None),
        ]
        if spec.sender_ids is not None:
            conditions.append(messages.c.sender_id.in_(list(spec.sender_ids)))
        if spec.channel_ids is not None:
            conditions.append(messages.c.channel_id.in_(list(spec.channel_ids)))
        if spec.since is not None:
            conditions.append(messages.c.created_at >= to_micros(spec.since))
        if spec.until is not None:
            conditions.append(messages.c.created_at < to_micros(spec.until))
        if spec.pinned:
            conditions.append(messages.c.pinned_at.is_not(None))
        if spec.thread:
            conditions.append(
                or_(messages.c.thread_root_id.is_not(None), messages.c.reply_count > 0)
            )
        if spec.has_file:
            attached = files.alias("attached")
            conditions.append(exists().where(attached.c.message_id == messages.c.id))
        if spec.has_link:
            linked = search_documents.alias("linked")
            conditions.append(
                exists().where(linked.c.message_id == messages.c.id, linked.c.has_link)
            )
        return conditions

    def _excluded(self, spec: SearchSpec) -> ColumnElement[bool]:
        if self._sqlite:
            matching = select(_fts.c.rowid).where(
                text("search_fts MATCH :excluded").bindparams(excluded=fts5_match(spec.exclude))
            )
            return messages.c.id.not_in(matching)
        query = cast(bindparam("excluded", tsquery(spec.exclude), type_=Text), TSQUERY)
        excluded = search_documents.alias("excluded")
        return ~exists().where(
            excluded.c.message_id == messages.c.id, excluded.c.body.op("@@")(query)
        )

    async def search(self, spec: SearchSpec) -> list[SearchHit]:
        """One page of matches, newest first or by relevance among the newest matches."""
        if spec.sender_ids == [] or spec.channel_ids == []:
            return []
        if not self._sqlite:
            # asyncpg prepares statements; after five runs PostgreSQL may switch to a generic
            # plan that cannot see how selective this tsquery is (measured: 3 ms -> 85 ms).
            await self.conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_custom_plan")
        if not spec.include:
            return await self._filtered(spec)
        if self._sqlite:
            return await self._sqlite_search(spec)
        return await self._postgres_search(spec)

    async def _filtered(self, spec: SearchSpec) -> list[SearchHit]:
        """Operators (and exclusions) without words: newest first, driven by the most
        selective structure (files, links, or messages newest first)."""
        driver = "file" if spec.has_file else "link" if spec.has_link else None
        narrowed = replace(spec, has_file=False) if driver == "file" else spec
        narrowed = replace(narrowed, has_link=False) if driver == "link" else narrowed
        conditions = self._filters(narrowed, by_recency=True)
        if spec.exclude:
            conditions.append(self._excluded(spec))
        if spec.before_id is not None:
            conditions.append(messages.c.id < spec.before_id)
        key: ColumnElement[Any] = messages.c.id
        source: Any = messages
        if driver == "file":
            key = files.c.message_id
            source = files.join(messages, messages.c.id == files.c.message_id)
        elif driver == "link":
            key = search_documents.c.message_id
            source = search_documents.join(messages, messages.c.id == search_documents.c.message_id)
            conditions.append(search_documents.c.has_link)
        stmt = select(key.label("id")).select_from(source).where(and_(*conditions))
        if driver == "file":
            stmt = stmt.group_by(key)  # a message with several files is one result
        stmt = (
            stmt.order_by(key.desc())
            .offset(spec.offset if spec.order == "relevance" else 0)
            .limit(spec.limit)
        )
        return [SearchHit(int(row.id)) for row in await self.conn.execute(stmt)]

    async def _sqlite_search(self, spec: SearchSpec) -> list[SearchHit]:
        match = fts5_match(spec.include, spec.exclude)
        score = func.bm25(literal_column("search_fts"))
        base: Select[Any] = (
            select(messages.c.id.label("id"), score.label("score"))
            .select_from(_fts.join(messages, messages.c.id == _fts.c.rowid))
            .where(text("search_fts MATCH :match").bindparams(match=match))
            .where(*self._filters(spec))
        )
        if spec.order == "date":
            if spec.before_id is not None:
                base = base.where(_fts.c.rowid < spec.before_id)
            stmt = base.order_by(_fts.c.rowid.desc()).limit(spec.limit)
            return [SearchHit(int(row.id)) for row in await self.conn.execute(stmt)]
        window = base.order_by(_fts.c.rowid.desc()).limit(spec.relevance_window).subquery()
        ranked = (
            select(window.c.id, window.c.score)
            .order_by(window.c.score.asc(), window.c.id.desc())
            .offset(spec.offset)
            .limit(spec.limit)
        )
        return [
            SearchHit(int(row.id), -float(row.score)) for row in await self.conn.execute(ranked)
        ]

    async def _postgres_search(self, spec: SearchSpec) -> list[SearchHit]:
        query = cast(bindparam("query", tsquery(spec.include, spec.exclude), type_=Text), TSQUERY)
        score = func.ts_rank_cd(search_documents.c.body, query, 1)
        base: Select[Any] = (
            select(messages.c.id.label("id"), score.label("score"))
            .select_from(
                search_documents.join(messages, messages.c.id == search_documents.c.message_id)
            )
            .where(search_documents.c.body.op("@@")(query))
            .where(*self._filters(spec))
        )
        if spec.order == "date":
            if spec.before_id is not None:
                base = base.where(search_documents.c.message_id < spec.before_id)
            stmt = base.order_by(search_documents.c.message_id.desc()).limit(spec.limit)
            return [SearchHit(int(row.id)) for row in await self.conn.execute(stmt)]
        window = (
            base.order_by(search_documents.c.message_id.desc())
            .limit(spec.relevance_window)
            .subquery()
        )
        ranked = (
            select(window.c.id, window.c.score)
            .order_by(window.c.score.desc(), window.c.id.desc())
            .offset(spec.offset)
            .limit(spec.limit)
        )
        return [SearchHit(int(row.id), float(row.score)) for row in await self.conn.execute(ranked)]

    # --- context for queries and results --------------------------------------------------
    async def channels_named(self, names: Sequence[str], spec: SearchSpec) -> list[int]:
        """Ids of channels with these names (case-insensitive) that the searcher may read."""
        keys = sorted({name.casefold() for name in names})
        stmt = select(channels.c.id).where(channels.c.name_key.in_(keys))
        member_of = select(memberships.c.channel_id).where(memberships.c.user_id == spec.user_id)
        visible: ColumnElement[bool] = channels.c.id.in_(member_of)
        if spec.include_public:
            visible = or_(visible, channels.c.kind == "public")
        return [int(row.id) for row in await self.conn.execute(stmt.where(visible))]

    async def channel_rows(self, channel_ids: Sequence[int]) -> dict[int, tuple[str, str]]:
        """(kind, name) of channels, by id."""
        if not channel_ids:
            return {}
        rows = await self.conn.execute(
            select(channels.c.id, channels.c.kind, channels.c.name).where(
                channels.c.id.in_(sorted(set(channel_ids)))
            )
        )
        return {int(row.id): (row.kind, row.name) for row in rows}

    async def messages_to_index(self, *, after_id: int, limit: int) -> list[tuple[int, str]]:
        """(id, text) of live messages after ``after_id``, for a rebuild."""
        rows = await self.conn.execute(
            select(messages.c.id, messages.c.text)
            .where(messages.c.id > after_id, messages.c.deleted_at.is_(None))
            .order_by(messages.c.id)
            .limit(limit)
        )
        return [(int(row.id), row.text) for row in rows]

    async def remove_range(self, first_id: int, last_id: int) -> None:
        """Drop documents of messages ``first_id..last_id`` (before re-adding them)."""
        await self.conn.execute(
            delete(search_documents).where(
                search_documents.c.message_id >= first_id,
                search_documents.c.message_id <= last_id,
            )
        )
