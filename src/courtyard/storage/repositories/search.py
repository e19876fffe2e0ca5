"""The search index: writing documents and running queries, per database.

Terms come from ``courtyard.domain.search_text``; the databases only match whole terms, so
both find the same messages. SQLite: FTS5 over space-separated terms (``search_fts``, an
external-content table over ``search_documents`` kept in step by triggers). PostgreSQL: a
``tsvector`` written term by term with positions, under a GIN index, and beside it
``search_pairs``: each document's adjacent ASCII word pairs, under a GIN index of their own, so
a phrase is found by its pairs. Phrases, prefixes and exclusions are rendered into each
database's query syntax from parsed terms, which contain only letters and digits, so user
input never reaches either syntax directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    Text,
    and_,
    any_,
    bindparam,
    cast,
    column,
    delete,
    exists,
    func,
    or_,
    select,
    table,
    text,
    union,
)
from sqlalchemy.dialects.postgresql import ARRAY, TSQUERY, TSVECTOR
from sqlalchemy.ext.asyncio import AsyncConnection

from courtyard.domain.search_query import Phrase
from courtyard.storage.driver import Portable, execute_many, fetch
from courtyard.storage.repositories._base import Repository
from courtyard.storage.repositories.search_syntax import (
    SCOPE_MARK,
    fts5_match,
    pair_terms,
    pairs_tsquery,
    rank_documents,
    tsquery,
    tsvector_literal,
)
from courtyard.storage.schema import channels, files, memberships, messages, search_documents
from courtyard.storage.timestamps import to_micros

_fts = table("search_fts", column("rowid", Integer))
# PostgreSQL only (migration 0005): one row per document that has at least one pair term.
_pairs = table("search_pairs", column("message_id", BigInteger), column("pairs", TSVECTOR))

# Indexing messages (``SearchRepository.index``): the document's terms, then the scope term
# of its message's channel; on PostgreSQL the scope lexeme has no position, so it is never
# part of a phrase. Terms hold no quote or backslash unescaped (``tsvector_literal``).
# A new message's document is written after the message's own transaction
# (storage/search_backlog.py): a message deleted meanwhile gets none, and one edited meanwhile
# keeps the edit's document (``{conflict}`` is ``_SKIP``). An edit's document replaces whatever
# is there (``_REPLACE``): another transaction may be writing the first one at that moment.
_SQLITE_INDEX_SQL = (
    "INSERT INTO search_documents (message_id, channel_id, body, has_link) "  # noqa: S608
    f"SELECT id, channel_id, ? || ' {SCOPE_MARK}' || CAST(channel_id AS TEXT), ? "
    "FROM messages WHERE id = ? AND deleted_at IS NULL "
    "ON CONFLICT (message_id) DO {conflict}"
)
_PG_INDEX_SQL = (
    "INSERT INTO search_documents (message_id, channel_id, body, has_link) "  # noqa: S608
    f"SELECT m.id, m.channel_id, CAST(v.body || ' ''{SCOPE_MARK}' || m.channel_id::text "
    "|| '''' AS tsvector), v.has_link "
    "FROM unnest($1::bigint[], $2::text[], $3::boolean[]) AS v(id, body, has_link) "
    "JOIN messages AS m ON m.id = v.id WHERE m.deleted_at IS NULL "
    "ON CONFLICT (message_id) DO {conflict} RETURNING message_id"
)
# Each batch is planned for its own ids and the messages table as it is now. A prepared
# statement's generic plan, made while a young database's table was tiny, stayed cached as the
# table grew and scanned every message for each document (docs/adr/0027).
_PG_PLAN_EACH_BATCH = "SELECT set_config('plan_cache_mode', 'force_custom_plan', true)"
_SKIP = "NOTHING"
_REPLACE = (
    "UPDATE SET channel_id = excluded.channel_id, body = excluded.body, "
    "has_link = excluded.has_link"
)
#: By ``replace``.
_SQLITE_INDEX = {
    r: _SQLITE_INDEX_SQL.format(conflict=_REPLACE if r else _SKIP) for r in (False, True)
}
_PG_INDEX = {r: _PG_INDEX_SQL.format(conflict=_REPLACE if r else _SKIP) for r in (False, True)}
_PG_PAIRS = (
    "INSERT INTO search_pairs (message_id, pairs) "
    "SELECT v.id, CAST(v.pairs AS tsvector) "
    "FROM unnest($1::bigint[], $2::text[]) AS v(id, pairs) "
    "ON CONFLICT (message_id) DO UPDATE SET pairs = excluded.pairs"
)
# Live messages without a document, after ``$1``: every one above the newest document, and
# those among the ``$2`` ids below it (what a process that stopped with documents still
# queued leaves behind; see ``SearchBacklog``).
_MISSING = Portable.of(
    "SELECT m.id, m.text FROM messages AS m "
    "WHERE m.id > $1 AND m.deleted_at IS NULL "
    "AND m.id > (SELECT coalesce(max(message_id), 0) FROM search_documents) - $2 "
    "AND NOT EXISTS (SELECT 1 FROM search_documents AS d WHERE d.message_id = m.id) "
    "ORDER BY m.id LIMIT $3"
)

# How many of the newest message ids PostgreSQL walks before it asks the index (see
# ``SearchRepository._postgres_newest``).
_WALK_REACH = 20_000
_WALK_PER_RESULT = 100
_WALK_MAX = 100_000
# The same for queries with pair terms, whose index finds candidates cheaply.
_PAIRED_WALK_REACH = 2_000
_PAIRED_WALK_PER_RESULT = 4
_PAIRED_WALK_MAX = 20_000
# Pair candidates read per wanted result (twice), plus this; then four times as many.
_PAIRED_CHUNK_EXTRA = 50


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


class SearchRepository(Repository):
    """Index maintenance and queries, in the caller's transaction."""

    __slots__ = ("dialect",)

    def __init__(self, conn: AsyncConnection) -> None:
        super().__init__(conn)
        self.dialect = conn.dialect.name

    @property
    def _sqlite(self) -> bool:
        return self.dialect == "sqlite"

    async def index(self, documents: Sequence[SearchDocument], *, replace: bool = False) -> None:
        """Add documents for messages (committed, or written in this transaction).

        Each document also gets its message's channel: in ``channel_id`` (visibility is
        checked on the document itself, with no join) and as the scope term ``§<id>`` after
        its words, so ``in:#channel`` is matched by the index (``scope_term``). A document is
        written only for a message that exists and is not deleted (the insert selects it). A
        message that has a document keeps it, unless ``replace`` (an edit)."""
        if not documents:
            return
        # SQL written once, straight to the driver: on the send path, building this with the
        # expression language cost more than running it.
        if self._sqlite:
            await execute_many(
                self.conn,
                _SQLITE_INDEX[replace],
                [(" ".join(d.terms), d.has_link, d.message_id) for d in documents],
            )
            return
        await fetch(self.conn, _PG_PLAN_EACH_BATCH)  # for the rest of this transaction
        written = await fetch(
            self.conn,
            _PG_INDEX[replace],
            (
                [d.message_id for d in documents],
                [tsvector_literal(d.terms) for d in documents],
                [d.has_link for d in documents],
            ),
        )
        ids = {int(row[0]) for row in written}
        await self._index_pairs([d for d in documents if d.message_id in ids], replace=replace)

    async def _index_pairs(self, documents: Sequence[SearchDocument], *, replace: bool) -> None:
        """PostgreSQL: the pair terms of the documents just written (``search_pairs``); a
        document with no two adjacent ASCII terms gets no row."""
        if replace and documents:
            await self.conn.execute(
                delete(_pairs).where(_pairs.c.message_id.in_([d.message_id for d in documents]))
            )
        paired = [(d.message_id, pair_terms(d.terms)) for d in documents]
        rows = [(m, " ".join(f"'{t}'" for t in terms)) for m, terms in paired if terms]
        if not rows:
            return
        # Only for documents just written; the foreign key then cascades every later removal
        # to the pairs.
        await fetch(self.conn, _PG_PAIRS, ([m for m, _ in rows], [p for _, p in rows]))

    async def replace(self, document: SearchDocument) -> None:
        """Re-index an edited message."""
        await self.index([document], replace=True)

    async def missing_documents(
        self, *, after_id: int, window: int, limit: int
    ) -> list[tuple[int, str]]:
        """(id, text) of live messages after ``after_id`` that have no document: every one
        above the newest document, and those among the ``window`` ids below it."""
        rows = await fetch(self.conn, _MISSING, (after_id, window, limit))
        return [(int(row[0]), str(row[1])) for row in rows]

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
            visible, newest = await self._postgres_prelude(spec)
            if not spec.include:
                return await self._filtered(spec)
            return await self._postgres_search(spec, visible, newest)
        if not spec.include:
            return await self._filtered(spec)
        return await self._sqlite_search(spec)

    async def _postgres_prelude(self, spec: SearchSpec) -> tuple[list[int], int | None]:
        """PostgreSQL: this transaction's planner settings, the ids of the channels the
        searcher may read and the newest document id, in one round trip (each one costs
        1-3 ms on a loaded machine; a word search makes about ten).

        asyncpg prepares statements; after five runs PostgreSQL may switch to a generic plan
        that cannot see how selective a tsquery is (measured: 3 ms -> 85 ms). No parallel
        workers: every step of a search is bounded, and starting workers cost more than it
        saved (a 758-row fetch of pairs: 8-15 ms with two workers, 3 without). The channels
        are passed on as ids, not a subquery: PostgreSQL estimated the subquery at a tenth
        of the channels, thought every word rare, and fetched all its matches (a bitmap scan
        of 13,334 rows for "发" where walking newest first reads 1,800)."""
        prelude = select(
            func.set_config("plan_cache_mode", "force_custom_plan", True),
            func.set_config("max_parallel_workers_per_gather", "0", True),
            func.array(self._visible_channels(spec).scalar_subquery(), type_=ARRAY(BigInteger)),
            select(func.max(search_documents.c.message_id)).scalar_subquery(),
        )
        row = (await self.conn.execute(prelude)).one()
        return [int(c) for c in row[2]], None if row[3] is None else int(row[3])

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

    # Word searches start from the index and check visibility on the document itself
    # (``search_documents.channel_id``): no per-match join unless an operator needs a column
    # of the message. Deleted messages have no document (``remove``).
    def _visible_channels(self, spec: SearchSpec) -> Any:
        member_of = select(memberships.c.channel_id).where(memberships.c.user_id == spec.user_id)
        if not spec.include_public:
            return member_of
        return union(member_of, select(channels.c.id).where(channels.c.kind == "public"))

    def _document_filters(
        self, spec: SearchSpec, visible_ids: list[int] | None = None
    ) -> list[ColumnElement[bool]]:
        visible: ColumnElement[bool]
        if visible_ids is None:
            visible = search_documents.c.channel_id.in_(self._visible_channels(spec))
        else:
            # The ids themselves, not a subquery (see ``_postgres_prelude``).
            visible = search_documents.c.channel_id == any_(
                bindparam("visible", visible_ids, type_=ARRAY(BigInteger))
            )
        conditions: list[ColumnElement[bool]] = [visible]
        if spec.channel_ids is not None:
            conditions.append(search_documents.c.channel_id.in_(list(spec.channel_ids)))
        if spec.has_link:
            conditions.append(search_documents.c.has_link)
        return conditions

    @staticmethod
    def _needs_message(spec: SearchSpec) -> bool:
        return bool(
            spec.sender_ids is not None
            or spec.since is not None
            or spec.until is not None
            or spec.pinned
            or spec.thread
            or spec.has_file
        )

    def _message_filters(self, spec: SearchSpec) -> list[ColumnElement[bool]]:
        narrowed = replace(spec, has_link=False, channel_ids=None)
        # Visibility is already checked on the document; only the message's own columns here.
        return [messages.c.deleted_at.is_(None), *self._filters(narrowed)[2:]]

    def _word_source(self, spec: SearchSpec, key: Any, source: Any) -> Any:
        if self._needs_message(spec):
            source = source.join(messages, messages.c.id == key)
        return source

    async def _sqlite_search(self, spec: SearchSpec) -> list[SearchHit]:
        match = fts5_match(spec.include, spec.exclude, spec.channel_ids or ())
        source = self._word_source(
            spec,
            _fts.c.rowid,
            _fts.join(search_documents, search_documents.c.message_id == _fts.c.rowid),
        )
        conditions: list[ColumnElement[bool]] = [
            text("search_fts MATCH :match").bindparams(match=match),  # type: ignore[list-item]
            *self._document_filters(spec),
        ]
        if self._needs_message(spec):
            conditions += self._message_filters(spec)
        if spec.order == "date":
            # No score: bm25 needs each phrase's document count, which FTS5 finds by running
            # the phrase over the whole index (measured: most of a date query's time).
            if spec.before_id is not None:
                conditions.append(_fts.c.rowid < spec.before_id)
            stmt = (
                select(_fts.c.rowid.label("id"))
                .select_from(source)
                .where(*conditions)
                .order_by(_fts.c.rowid.desc())
                .limit(spec.limit)
            )
            return [SearchHit(int(row.id)) for row in await self.conn.execute(stmt)]
        window = (
            select(_fts.c.rowid.label("id"), search_documents.c.body.label("body"))
            .select_from(source)
            .where(*conditions)
            .order_by(_fts.c.rowid.desc())
            .limit(spec.relevance_window)
        )
        # Scored here, not with FTS5's bm25: bm25 first counts the documents of every phrase
        # by running it over the whole index, which cost more than finding the window.
        rows = [(int(row.id), str(row.body)) for row in await self.conn.execute(window)]
        scored = rank_documents(rows, spec.include)
        return [SearchHit(message_id, score) for message_id, score in scored][
            spec.offset : spec.offset + spec.limit
        ]

    async def _postgres_search(
        self, spec: SearchSpec, visible_ids: list[int], newest: int | None
    ) -> list[SearchHit]:
        query = cast(
            bindparam(
                "query",
                tsquery(spec.include, spec.exclude, spec.channel_ids or ()),
                type_=Text,
            ),
            TSQUERY,
        )
        key = search_documents.c.message_id
        source = self._word_source(spec, key, search_documents)
        pairs = pairs_tsquery(spec.include)
        body = search_documents.c.body
        # With pairs, documents are tested with the function behind ``@@``, which the index
        # of terms cannot serve (see ``_postgres_newest``).
        matches = body.op("@@")(query) if pairs is None else func.ts_match_vq(body, query)
        conditions = [matches, *self._document_filters(spec, visible_ids)]
        if self._needs_message(spec):
            conditions += self._message_filters(spec)
        count = spec.limit if spec.order == "date" else spec.relevance_window
        before = spec.before_id if spec.order == "date" else None
        if newest is None:
            return []
        top = before if before is not None else newest + 1
        ids = await self._postgres_newest(
            conditions, source, count, top, scoped=bool(spec.channel_ids), pairs=pairs
        )
        if spec.order == "date":
            return [SearchHit(message_id) for message_id in ids]
        if not ids:
            return []
        # Ranked apart from the window: in the window's select list PostgreSQL computed the
        # rank of every match before keeping the newest (13,334 ranks for "发" at 1M). Only the
        # included words are ranked (not the channel scope or the exclusions).
        rank_query = cast(bindparam("rank_query", tsquery(spec.include), type_=Text), TSQUERY)
        score = func.ts_rank_cd(search_documents.c.body, rank_query, 1).label("score")
        ranked = (
            select(key.label("id"), score)
            .where(key == any_(bindparam("window", ids, type_=ARRAY(BigInteger))))
            .order_by(score.desc(), key.desc())
            .offset(spec.offset)
            .limit(spec.limit)
        )
        return [SearchHit(int(row.id), float(row.score)) for row in await self.conn.execute(ranked)]

    async def _postgres_newest(
        self,
        conditions: list[ColumnElement[bool]],
        source: Any,
        count: int,
        top: int,
        *,
        scoped: bool = False,
        pairs: str | None = None,
    ) -> list[int]:
        """Ids of the ``count`` newest matches below ``top``, in bounded steps.

        PostgreSQL either walks the documents newest first, testing each (about 0.4 µs a
        document; cost: count ÷ the share that matches), or fetches every candidate from a
        GIN index and sorts (one random page each, about 3.5 µs; for a phrase without pairs
        the candidates are every document with all its words). Its estimates for prefixes
        and phrases were off by 10-20× both ways at 1M (a 600 ms walk for ``"pull request"``,
        a 13,334-row fetch for ``发``), so the plan is not left to them: walk the newest ids;
        if that found some but not enough, walk on as far as the share found predicts (up
        to a bound); then fetch what is still missing from the index (ordering by ``+ 0``
        hides the key's order, so no walk is possible there). A channel scope makes the
        index's candidates few, so scoped searches walk less.

        With ``pairs`` (a query whose phrases need pair terms), the candidates of that last
        fetch are the documents holding every pair, from ``search_pairs`` (``"pull request"``
        at 1M: 758, where 13,187 documents hold both words), and the walks are short, since
        a phrase is rarely common. ``conditions`` then test the query with the function
        behind ``@@``, which no index serves: with the operator, PostgreSQL also scanned the
        index of terms for the phrase's words (7-16 ms) to intersect them with the pairs,
        and, without statistics for the new table yet, walked all of ``search_pairs``
        (400 ms) instead of asking its index."""
        key = search_documents.c.message_id
        if pairs is None:
            reach = max(_WALK_REACH, count * _WALK_PER_RESULT)
            walk_max = _WALK_MAX
        else:
            reach = max(_PAIRED_WALK_REACH, count * _PAIRED_WALK_PER_RESULT)
            walk_max = _PAIRED_WALK_MAX
        if scoped:
            reach //= 10

        async def walk(upper: int, lower: int, wanted: int) -> list[int]:
            stmt = (
                select(key.label("id"))
                .select_from(source)
                .where(*conditions, key < upper, key >= lower)
                .order_by(key.desc())
                .limit(wanted)
            )
            return [int(row.id) for row in await self.conn.execute(stmt)]

        floor = top - reach
        ids = await walk(top, floor, count)
        if len(ids) >= count or floor <= 0:
            return ids
        if ids:
            further = 2 * (count - len(ids)) * reach // len(ids)
            if further <= walk_max:
                ids += await walk(floor, floor - further, count - len(ids))
                floor -= further
                if len(ids) >= count or floor <= 0:
                    return ids
        if pairs is not None:
            return ids + await self._postgres_paired(
                pairs, conditions, source, count - len(ids), floor
            )
        older = (
            select(key.label("id"))
            .select_from(source)
            .where(*conditions, key < floor)
            .order_by((key + 0).desc())
            .limit(count - len(ids))
        )
        return ids + [int(row.id) for row in await self.conn.execute(older)]

    async def _postgres_paired(
        self,
        pairs: str,
        conditions: list[ColumnElement[bool]],
        source: Any,
        count: int,
        below: int,
    ) -> list[int]:
        """Ids of the ``count`` newest matches below ``below``, from the documents holding
        every pair: the newest candidates from the index of pairs, a chunk at a time, then
        the documents among them that match, by primary key.

        Two statements, not a join: with a join, PostgreSQL's estimate for the pairs (17,018
        where 758 held them, before the new table had statistics) made it scan every
        document (226 ms) rather than look up the candidates. A single table's GIN index,
        and a list of ids, leave it nothing to misjudge."""
        key = search_documents.c.message_id
        paired = _pairs.c.pairs.op("@@")(cast(bindparam("pairs", pairs, type_=Text), TSQUERY))
        ids: list[int] = []
        chunk = 2 * count + _PAIRED_CHUNK_EXTRA
        while len(ids) < count:
            candidates = [
                int(row.id)
                for row in await self.conn.execute(
                    select(_pairs.c.message_id.label("id"))
                    # "+ 0" here too: without statistics PostgreSQL intersected the pairs
                    # with a bitmap of every id below the bound (749k rows, 15 ms).
                    .where(paired, _pairs.c.message_id + 0 < below)
                    .order_by((_pairs.c.message_id + 0).desc())
                    .limit(chunk)
                )
            ]
            if not candidates:
                break
            matching = (
                select(key.label("id"))
                .select_from(source)
                .where(
                    *conditions,
                    key == any_(bindparam("candidates", candidates, type_=ARRAY(BigInteger))),
                )
                .order_by(key.desc())
                .limit(count - len(ids))
            )
            ids += [int(row.id) for row in await self.conn.execute(matching)]
            if len(candidates) < chunk:
                break
            below = candidates[-1]
            chunk *= 4
        return ids

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

    async def last_message_id(self) -> int:
        """The newest message id (0 without messages): how far a rebuild has to go."""
        found = await self.conn.scalar(select(func.max(messages.c.id)))
        return int(found or 0)

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
