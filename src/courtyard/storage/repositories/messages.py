"""Messages, edit history, mentions, reactions and pins."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    Integer,
    Row,
    Select,
    String,
    bindparam,
    cast,
    delete,
    exists,
    func,
    literal_column,
    null,
    select,
    union_all,
    update,
)

from courtyard.domain.channels import ChannelKind
from courtyard.domain.files import Attachment
from courtyard.domain.messages import (
    HistoryPage,
    Message,
    MessageVersion,
    PageRequest,
    ReactionGroup,
)
from courtyard.storage.driver import Compiled, Portable, fetch, fetch_compiled
from courtyard.storage.repositories._base import (
    Repository,
    dump_ids,
    load_ids,
    translating_unique,
)
from courtyard.storage.repositories.bulk import insert_returning_ids
from courtyard.storage.schema import (
    channels,
    files,
    memberships,
    mentions,
    message_versions,
    messages,
    reactions,
)
from courtyard.storage.timestamps import EPOCH as _EPOCH
from courtyard.storage.timestamps import from_micros, to_micros


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message about to be stored."""

    channel_id: int
    seq: int
    sender_id: int
    text: str
    thread_root_id: int | None
    client_message_id: str | None
    mentions_channel: bool
    mentions_here: bool


@dataclass(frozen=True, slots=True)
class MessageRecord:
    """The stored columns services need for rules (who sent it, where, its state)."""

    id: int
    channel_id: int
    seq: int
    sender_id: int
    text: str
    version: int
    thread_root_id: int | None
    deleted: bool
    pinned: bool


# The columns a new message sets (the others keep their defaults: NULL or as in schema.py).
_NEW_MESSAGE_COLUMNS = (
    "channel_id",
    "seq",
    "sender_id",
    "text",
    "created_at",
    "version",
    "thread_root_id",
    "reply_count",
    "reply_participant_ids",
    "mentions_channel",
    "mentions_here",
    "client_message_id",
)
# SQLite's messages table has no rowid to number new rows by (migration 0006): the repository
# takes ids from ``message_id_counter``, the highest id ever given out, so an id is never used
# twice, not even after the newest message is deleted. The write transaction holds SQLite's
# only write lock (BEGIN IMMEDIATE), so no other writer can take the same ids. The counter
# also never falls behind a row stored some other way (max(id) from the unique index).
_TAKE_IDS = (
    "UPDATE message_id_counter SET last_id = max(last_id, "
    "(SELECT coalesce(max(id), 0) FROM messages)) + ? RETURNING last_id"
)
_NEW_MESSAGE_PG_TYPES = (
    "bigint",
    "bigint",
    "bigint",
    "text",
    "bigint",
    "integer",
    "bigint",
    "integer",
    "text",
    "boolean",
    "boolean",
    "varchar",
)


@dataclass(frozen=True, slots=True)
class ChannelGate:
    """What the reading rule needs of a channel, read with a page: its kind and whether the
    viewer is a member (services/access.py: ``require_readable``)."""

    kind: ChannelKind
    is_member: bool


def _record(row: Row[Any]) -> MessageRecord:
    return MessageRecord(
        id=row.id,
        channel_id=row.channel_id,
        seq=row.seq,
        sender_id=row.sender_id,
        text=row.text,
        version=row.version,
        thread_root_id=row.thread_root_id,
        deleted=row.deleted_at is not None,
        pinned=row.pinned_at is not None,
    )


class MessageRepository(Repository):
    """Reads and writes of ``messages`` and the tables hanging off it."""

    async def _new_ids(self, count: int) -> list[int] | None:
        """Ids for ``count`` new messages on SQLite; None on PostgreSQL (its identity
        column numbers rows)."""
        if self.conn.dialect.name != "sqlite":
            return None
        last = int((await fetch(self.conn, _TAKE_IDS, (count,)))[0][0])
        return list(range(last - count + 1, last + 1))

    async def insert(self, new: NewMessage, *, now: datetime) -> int:
        """Store a message; UniqueViolation if (sender, client_message_id) was used already."""
        ids = await self._new_ids(1)
        values = {} if ids is None else {"id": ids[0]}
        result = await translating_unique(
            self.conn.execute(
                messages.insert()
                .values(
                    **values,
                    channel_id=new.channel_id,
                    seq=new.seq,
                    sender_id=new.sender_id,
                    text=new.text,
                    created_at=to_micros(now),
                    version=1,
                    thread_root_id=new.thread_root_id,
                    reply_count=0,
                    reply_participant_ids="[]",
                    mentions_channel=new.mentions_channel,
                    mentions_here=new.mentions_here,
                    client_message_id=new.client_message_id,
                )
                .returning(messages.c.id)
            )
        )
        return int(result.scalar_one())

    async def insert_many(self, news: Sequence[NewMessage], *, now: datetime) -> list[int]:
        """Store several messages in one statement; ids come back in the given order.

        UniqueViolation if any (sender, client_message_id) was used already.
        """
        stamp = to_micros(now)
        ids = await self._new_ids(len(news))
        rows: list[tuple[object, ...]] = [
            (
                new.channel_id,
                new.seq,
                new.sender_id,
                new.text,
                stamp,
                1,
                new.thread_root_id,
                0,
                "[]",
                new.mentions_channel,
                new.mentions_here,
                new.client_message_id,
            )
            for new in news
        ]
        columns: tuple[str, ...] = _NEW_MESSAGE_COLUMNS
        if ids is not None:  # SQLite, which takes no column types: PostgreSQL numbers its own
            columns = ("id", *columns)
            rows = [(new_id, *row) for new_id, row in zip(ids, rows, strict=True)]
        return await translating_unique(
            insert_returning_ids(self.conn, "messages", columns, _NEW_MESSAGE_PG_TYPES, rows)
        )

    async def insert_mention_rows(self, rows: Sequence[dict[str, int]]) -> None:
        """Record mentions of several messages: dicts of message_id, user_id, channel_id, seq."""
        if rows:
            await self.conn.execute(mentions.insert(), list(rows))

    async def by_client_ids(
        self, keys: Sequence[tuple[int, str]]
    ) -> dict[tuple[int, str], Message]:
        """Messages already sent with these (sender, client_message_id) keys."""
        if not keys:
            return {}
        wanted = set(keys)
        rows = [
            row
            for row in await self.conn.execute(
                select(messages).where(
                    messages.c.sender_id.in_(sorted({sender for sender, _ in wanted})),
                    messages.c.client_message_id.in_(sorted({key for _, key in wanted})),
                )
            )
            if (row.sender_id, row.client_message_id) in wanted
        ]
        hydrated = await self.hydrate(rows)
        return {(m.sender_id, m.client_message_id or ""): m for m in hydrated}

    async def insert_mentions(
        self, message_id: int, user_ids: Sequence[int], *, channel_id: int, seq: int
    ) -> None:
        """Record who a message mentions by name (for mention counts and notifications)."""
        if user_ids:
            await self.conn.execute(
                mentions.insert(),
                [
                    {"message_id": message_id, "user_id": uid, "channel_id": channel_id, "seq": seq}
                    for uid in sorted(set(user_ids))
                ],
            )

    async def replace_mentions(
        self, message_id: int, user_ids: Sequence[int], *, channel_id: int, seq: int
    ) -> None:
        """After an edit: the mentions are those of the new text."""
        await self.conn.execute(delete(mentions).where(mentions.c.message_id == message_id))
        await self.insert_mentions(message_id, user_ids, channel_id=channel_id, seq=seq)

    async def get_record(self, message_id: int) -> MessageRecord | None:
        """The stored state of a message, for access checks and rules."""
        row = (await self.conn.execute(_BY_ID, {"message_id": message_id})).first()
        return _record(row) if row else None

    async def lock(self, message_id: int) -> None:
        """Hold the message's row lock until commit (PostgreSQL). On SQLite a write
        transaction already holds the database's one write lock (BEGIN IMMEDIATE)."""
        if self.conn.dialect.name == "sqlite":
            return
        await fetch(self.conn, _LOCK_MESSAGE, (message_id,))

    async def get(self, message_id: int) -> Message | None:
        """One message with its reactions and mentions."""
        row = (await self.conn.execute(_BY_ID, {"message_id": message_id})).first()
        if row is None:
            return None
        return (await self.hydrate([row]))[0]

    async def by_client_id(self, sender_id: int, client_message_id: str) -> Message | None:
        """The message a sender already posted with this idempotency key."""
        row = (
            await self.conn.execute(
                select(messages).where(
                    messages.c.sender_id == sender_id,
                    messages.c.client_message_id == client_message_id,
                )
            )
        ).first()
        return (await self.hydrate([row]))[0] if row else None

    async def hydrate(self, rows: Sequence[Row[Any]]) -> list[Message]:
        """Turn rows of ``select(messages)`` into Messages, with reactions, mentions and files
        loaded in one more statement."""
        if not rows:
            return []
        extras = await self.conn.execute(_EXTRAS_BY_IDS, {"ids": [row[_ID] for row in rows]})
        return _assemble(rows, extras)

    async def get_many(self, message_ids: Sequence[int]) -> list[Message]:
        """Several messages, hydrated, in the order of ``message_ids`` (missing ones left out)."""
        if not message_ids:
            return []
        rows = list(
            await self.conn.execute(select(messages).where(messages.c.id.in_(list(message_ids))))
        )
        by_id = {m.id: m for m in await self.hydrate(rows)}
        return [by_id[i] for i in message_ids if i in by_id]

    async def page(
        self, channel_id: int, request: PageRequest, *, thread_root_id: int | None = None
    ) -> HistoryPage:
        """A window of top-level channel history, or of one thread's replies.

        Every statement here is built once at import (see :class:`_PageStatements`). A page is
        one statement: the window's rows, whether there is more on the far side, and the
        window's reactions, mentions and files come back together (one round trip on
        PostgreSQL). Only ``around`` and an empty window take more.
        """
        statements = _THREAD_PAGE if thread_root_id is not None else _CHANNEL_PAGE
        scope_id = thread_root_id if thread_root_id is not None else channel_id
        if request.around is not None:
            return await self._around(statements, scope_id, request.around, request.limit)
        _, window = await self._window(statements, scope_id, request, viewer_id=0)
        return window

    async def channel_page(
        self, channel_id: int, viewer_id: int, request: PageRequest
    ) -> tuple[ChannelGate | None, HistoryPage]:
        """A channel page (not ``around``) and, in the same statement, what the access rule
        needs: the channel's kind and whether ``viewer_id`` is a member (None: no such
        channel). The caller applies the rule before anything leaves the service."""
        if request.around is not None:
            raise ValueError("around pages take two windows: use page()")
        return await self._window(_CHANNEL_PAGE, channel_id, request, viewer_id=viewer_id)

    async def _window(
        self, statements: _PageStatements, scope_id: int, request: PageRequest, *, viewer_id: int
    ) -> tuple[ChannelGate | None, HistoryPage]:
        limit = request.limit
        if request.after is not None:
            statement, probe, seq = statements.after_page, statements.at_or_before, request.after
        elif request.before is not None:
            statement, probe, seq = statements.before_page, statements.at_or_after, request.before
        else:
            statement, probe, seq = statements.latest_page, None, 0
        result = await fetch_compiled(
            self.conn,
            statement,
            {"scope_id": scope_id, "seq": seq, "n": limit + 1, "viewer_id": viewer_id},
        )
        rows: list[Any] = []
        extras: list[Any] = []
        far_side = False
        gate = None
        for row in result:
            part = row[0]
            if part == _MESSAGE_PART:
                rows.append(row[1:_FAR_SIDE])
                far_side = row[_FAR_SIDE]
            elif part == _GATE_PART:
                gate = ChannelGate(ChannelKind(row[_EXTRAS_END]), bool(row[_EXTRAS_END + 1]))
            else:
                extras.append((part - 1, row[1], *row[_FAR_SIDE + 1 : _EXTRAS_END]))
        # Rows come oldest first; the one read beyond ``limit`` is the far end of the window.
        more = len(rows) > limit
        if request.after is not None:
            rows = rows[:limit]
        elif more:
            rows = rows[1:]
        if not rows and probe is not None:
            far_side = await self._exists(probe, scope_id, seq)
        if request.after is not None:
            more_before, more_after = bool(far_side) and seq > 0, more
        else:
            more_before, more_after = more, bool(far_side)
        return gate, HistoryPage(
            messages=_assemble(rows, extras),
            has_more_before=more_before,
            has_more_after=more_after,
        )

    async def _around(
        self, statements: _PageStatements, scope_id: int, around: int, limit: int
    ) -> HistoryPage:
        half = max(limit // 2, 1)
        older, more_before = await self._fetch(statements.before, scope_id, around, half)
        newer, more_after = await self._fetch(statements.from_, scope_id, around, limit - half)
        rows = older[::-1] + newer
        if not rows:
            return HistoryPage(messages=[], has_more_before=more_before, has_more_after=more_after)
        extras = await self.conn.execute(
            statements.extras, {"scope_id": scope_id, "low": rows[0][_SEQ], "high": rows[-1][_SEQ]}
        )
        return HistoryPage(
            messages=_assemble(rows, extras),
            has_more_before=more_before,
            has_more_after=more_after,
        )

    async def _fetch(
        self, statement: Select[Any], scope_id: int, seq: int, limit: int
    ) -> tuple[list[Row[Any]], bool]:
        """Up to ``limit`` rows, reading one more to learn whether there are more."""
        rows = list(
            await self.conn.execute(statement, {"scope_id": scope_id, "seq": seq, "n": limit + 1})
        )
        return rows[:limit], len(rows) > limit

    async def _exists(self, statement: Select[Any], scope_id: int, seq: int) -> bool:
        found = await self.conn.execute(statement, {"scope_id": scope_id, "seq": seq})
        return found.first() is not None

    async def update_text(
        self,
        message_id: int,
        *,
        text: str,
        now: datetime,
        version: int,
        mentions_channel: bool,
        mentions_here: bool,
    ) -> None:
        """Replace a message's text (the caller stores the previous version first)."""
        await self.conn.execute(
            update(messages)
            .where(messages.c.id == message_id)
            .values(
                text=text,
                edited_at=to_micros(now),
                version=version,
                mentions_channel=mentions_channel,
                mentions_here=mentions_here,
            )
        )

    async def insert_version(
        self, message_id: int, *, version: int, text: str, edited_at: datetime, editor_id: int
    ) -> None:
        """Keep one earlier text of a message."""
        await self.conn.execute(
            message_versions.insert().values(
                message_id=message_id,
                version=version,
                text=text,
                edited_at=to_micros(edited_at),
                editor_id=editor_id,
            )
        )

    async def versions(self, message_id: int) -> list[MessageVersion]:
        """Every earlier text, oldest first."""
        rows = await self.conn.execute(
            select(message_versions)
            .where(message_versions.c.message_id == message_id)
            .order_by(message_versions.c.version)
        )
        return [
            MessageVersion(
                version=row.version,
                text=row.text,
                edited_at=from_micros(row.edited_at),
                editor_id=row.editor_id,
            )
            for row in rows
        ]

    async def soft_delete(
        self, message_id: int, *, now: datetime, by: int, keep_content: bool
    ) -> None:
        """Mark a message deleted. Its text is wiped unless policy keeps it for compliance."""
        values: dict[str, Any] = {"deleted_at": to_micros(now), "deleted_by": by}
        if not keep_content:
            values["text"] = ""
            await self.conn.execute(
                delete(message_versions).where(message_versions.c.message_id == message_id)
            )
        await self.conn.execute(
            update(messages).where(messages.c.id == message_id).values(**values)
        )
        await self.conn.execute(delete(mentions).where(mentions.c.message_id == message_id))
        await self.conn.execute(delete(reactions).where(reactions.c.message_id == message_id))

    async def record_reply(
        self, root_id: int, *, replier_id: int, now: datetime, participant_cap: int = 50
    ) -> None:
        """Update a thread root's summary after a reply (runs under the channel's seq lock)."""
        row = (
            await self.conn.execute(
                select(messages.c.reply_participant_ids).where(messages.c.id == root_id)
            )
        ).one()
        participants = load_ids(row.reply_participant_ids)
        if replier_id not in participants and len(participants) < participant_cap:
            participants.append(replier_id)
        await self.conn.execute(
            update(messages)
            .where(messages.c.id == root_id)
            .values(
                reply_count=messages.c.reply_count + 1,
                last_reply_at=to_micros(now),
                reply_participant_ids=dump_ids(participants),
            )
        )

    async def set_pinned(self, message_id: int, *, by: int | None, at: datetime | None) -> None:
        """Pin (``at`` given) or unpin a message."""
        await self.conn.execute(
            update(messages)
            .where(messages.c.id == message_id)
            .values(pinned_at=None if at is None else to_micros(at), pinned_by=by)
        )

    async def pinned(self, channel_id: int, *, limit: int = 200) -> list[Message]:
        """Pinned messages of a channel, most recently pinned first."""
        rows = list(
            await self.conn.execute(
                select(messages)
                .where(
                    messages.c.channel_id == channel_id,
                    messages.c.pinned_at.is_not(None),
                    messages.c.deleted_at.is_(None),
                )
                .order_by(messages.c.pinned_at.desc())
                .limit(limit)
            )
        )
        return await self.hydrate(rows)

    # --- reactions ------------------------------------------------------------------------
    async def add_reaction(
        self, message_id: int, user_id: int, emoji: str, *, now: datetime
    ) -> bool:
        """Add a reaction; False if this user already reacted with this emoji."""
        added = await fetch(self.conn, _ADD_REACTION, (message_id, emoji, user_id, to_micros(now)))
        return bool(added)

    async def remove_reaction(self, message_id: int, user_id: int, emoji: str) -> bool:
        """Remove a reaction; False if it was not there."""
        result = await self.conn.execute(
            _REMOVE_REACTION, {"message_id": message_id, "emoji": emoji, "user_id": user_id}
        )
        return bool(result.rowcount)

    async def reaction_groups(self, message_id: int) -> list[ReactionGroup]:
        """The reactions on one message, grouped by emoji in order of first use."""
        grouped: dict[str, list[int]] = {}
        for emoji, user_id in await fetch(self.conn, _REACTION_GROUPS, (message_id,)):
            grouped.setdefault(emoji, []).append(user_id)
        return _groups(grouped)

    async def count_reaction_kinds(self, message_id: int) -> int:
        """How many distinct emoji a message carries."""
        return int(
            (
                await self.conn.execute(
                    select(func.count(func.distinct(reactions.c.emoji))).where(
                        reactions.c.message_id == message_id
                    )
                )
            ).scalar_one()
        )


def _groups(grouped: dict[str, list[int]]) -> list[ReactionGroup]:
    return [
        ReactionGroup(emoji=emoji, count=len(user_ids), user_ids=user_ids)
        for emoji, user_ids in grouped.items()
    ]


# Rows are read by position: ``row.name`` costs a lookup per column on SQLAlchemy's Row, which
# was the largest single cost of a 50-message page.
_COLUMN = {column.name: index for index, column in enumerate(messages.columns)}
_ID = _COLUMN["id"]
_SEQ = _COLUMN["seq"]


def _assemble(rows: Sequence[Any], extras: Iterable[Any]) -> list[Message]:
    """Messages from their rows plus the rows of :func:`_extras` (reactions, mentions, files)."""
    reacted: dict[int, dict[str, list[int]]] = defaultdict(dict)
    mentioned: dict[int, list[int]] = defaultdict(list)
    attached: dict[int, list[Attachment]] = defaultdict(list)
    for kind, message_id, name, number, _order, media_type, size, width, height, thumb in extras:
        if kind == _REACTION:
            reacted[message_id].setdefault(name, []).append(number)
        elif kind == _MENTION:
            mentioned[message_id].append(number)
        else:
            attached[message_id].append(
                Attachment(
                    id=number,
                    name=name,
                    media_type=media_type,
                    size=size,
                    width=width,
                    height=height,
                    has_thumbnail=bool(thumb),
                )
            )
    return [_message(row, reacted, mentioned, attached) for row in rows]


def _message(
    row: Any,
    reacted: dict[int, dict[str, list[int]]],
    mentioned: dict[int, list[int]],
    attached: dict[int, list[Attachment]],
) -> Message:
    (
        message_id,
        channel_id,
        seq,
        sender_id,
        text,
        created_at,
        edited_at,
        _version,
        deleted_at,
        _deleted_by,
        thread_root_id,
        reply_count,
        last_reply_at,
        reply_participant_ids,
        pinned_at,
        pinned_by,
        mentions_channel,
        mentions_here,
        client_message_id,
    ) = row
    deleted = deleted_at is not None
    # Positional, in the field order of Message (see its docstring).
    return Message(
        message_id,
        channel_id,
        seq,
        sender_id,
        "" if deleted else text,
        _EPOCH + timedelta(0, 0, created_at),
        None if edited_at is None else _EPOCH + timedelta(0, 0, edited_at),
        None if deleted_at is None else _EPOCH + timedelta(0, 0, deleted_at),
        thread_root_id,
        reply_count,
        None if last_reply_at is None else _EPOCH + timedelta(0, 0, last_reply_at),
        load_ids(reply_participant_ids),
        _groups(reacted[message_id]) if message_id in reacted else [],
        None if pinned_at is None else _EPOCH + timedelta(0, 0, pinned_at),
        pinned_by,
        mentioned.get(message_id, []),
        bool(mentions_channel),
        bool(mentions_here),
        client_message_id,
        [] if deleted else attached.get(message_id, []),
    )


# The unpacking in _message follows the table's column order and its call follows Message's
# field order; a new column or field must be added there.
_MESSAGE_WIDTH = 19
assert len(messages.columns) == _MESSAGE_WIDTH, "update _message for the new messages column"
assert Message.__struct_fields__ == (
    "id",
    "channel_id",
    "seq",
    "sender_id",
    "text",
    "created_at",
    "edited_at",
    "deleted_at",
    "thread_root_id",
    "reply_count",
    "last_reply_at",
    "reply_participant_ids",
    "reactions",
    "pinned_at",
    "pinned_by",
    "mentioned_user_ids",
    "mentions_channel",
    "mentions_here",
    "client_message_id",
    "attachments",
), "update _message for the new Message field"

# --- statements built once ------------------------------------------------------------------
# Hot single-row statements: a message by id (every access check on a message) and the
# reaction toggles.
_BY_ID = select(messages).where(messages.c.id == bindparam("message_id"))
_REACTION_KEY = (
    (reactions.c.message_id == bindparam("message_id"))
    & (reactions.c.emoji == bindparam("emoji"))
    & (reactions.c.user_id == bindparam("user_id"))
)
# A reaction is changed on its own in a request: SQL written once, straight to the driver
# (through SQLAlchemy's execution layer each statement cost more than running it: ADR 0016).
_LOCK_MESSAGE = Portable.of("SELECT id FROM messages WHERE id = $1 FOR UPDATE")
# A row comes back only when the reaction was not there yet.
_ADD_REACTION = Portable.of(
    "INSERT INTO reactions (message_id, emoji, user_id, created_at) VALUES ($1, $2, $3, $4) "
    "ON CONFLICT DO NOTHING RETURNING user_id"
)
_REACTION_GROUPS = Portable.of(
    "SELECT emoji, user_id FROM reactions WHERE message_id = $1 ORDER BY created_at, user_id"
)
_REMOVE_REACTION = delete(reactions).where(_REACTION_KEY)
_REACTION, _MENTION, _FILE = 0, 1, 2
# What a page needs of an attached file: name, id, position, media type, size, dimensions and
# whether it has a thumbnail.
_FILE_COLUMNS = (
    files.c.name,
    files.c.id,
    cast(files.c.position, BigInteger),
    files.c.media_type,
    files.c.size,
    files.c.width,
    files.c.height,
    files.c.thumbnail_key.is_not(None),
)


def _extras(reaction_filter: Any, mention_filter: Any, file_filter: Any, join: bool) -> Any:
    """One statement for the reactions, mentions and files of a set of messages.

    Rows are (kind, message_id, name, number, order, media_type, size, width, height, thumb):
    a reaction is (emoji, user_id, created_at), a mention (user_id), a file (name, id,
    position, its media type, size, dimensions and whether it has a thumbnail). Ordered so
    that reactions come in the order they were given, mentions by user and files by position.
    """
    nothing = null()
    reaction_rows = select(
        literal_column(str(_REACTION), Integer).label("kind"),
        reactions.c.message_id,
        reactions.c.emoji.label("name"),
        reactions.c.user_id.label("number"),
        reactions.c.created_at.label("ordinal"),
        cast(nothing, String).label("media_type"),
        cast(nothing, BigInteger).label("size"),
        cast(nothing, Integer).label("width"),
        cast(nothing, Integer).label("height"),
        cast(nothing, Boolean).label("thumb"),
    )
    mention_rows = select(
        literal_column(str(_MENTION), Integer),
        mentions.c.message_id,
        cast(nothing, String),
        mentions.c.user_id,
        cast(nothing, BigInteger),
        cast(nothing, String),
        cast(nothing, BigInteger),
        cast(nothing, Integer),
        cast(nothing, Integer),
        cast(nothing, Boolean),
    )
    file_rows = select(literal_column(str(_FILE), Integer), files.c.message_id, *_FILE_COLUMNS)
    if join:
        reaction_rows = reaction_rows.join_from(
            reactions, messages, messages.c.id == reactions.c.message_id
        )
        mention_rows = mention_rows.join_from(
            mentions, messages, messages.c.id == mentions.c.message_id
        )
        file_rows = file_rows.join_from(files, messages, messages.c.id == files.c.message_id)
    combined = union_all(
        reaction_rows.where(reaction_filter),
        mention_rows.where(mention_filter),
        file_rows.where(file_filter),
    ).subquery()
    return select(combined).order_by(
        combined.c.kind, combined.c.message_id, combined.c.ordinal, combined.c.number
    )


_EXTRAS_BY_IDS = _extras(
    reactions.c.message_id.in_(bindparam("ids", expanding=True)),
    mentions.c.message_id.in_(bindparam("ids", expanding=True)),
    files.c.message_id.in_(bindparam("ids", expanding=True)),
    join=False,
)


# A page statement's rows: (part, the 19 message columns, far_side, then the extras columns
# name, number, ordinal, media_type, size, width, height, thumb). A message row has part 0 and
# no extras; an extras row has part _REACTION+1 / _MENTION+1 / _FILE+1, the message id in the
# id column and nothing else of the message.
_MESSAGE_PART = 0
# The row count is written into the SQL text rather than sent as a parameter: with a parameter
# LIMIT, PostgreSQL's generic plan for a prepared statement looks expensive (it assumes a tenth
# of the channel), so it re-plans every execution, which cost more than running the page
# (0.9 ms against 0.35 ms). Each page size gets its own prepared statement instead.
_ROW_COUNT: Any = bindparam("n", type_=Integer, literal_execute=True)
_FAR_SIDE = 1 + len(messages.columns)
_EXTRAS_NAMES = ("name", "number", "ordinal", "media_type", "size", "width", "height", "thumb")
_EXTRAS_END = _FAR_SIDE + 1 + len(_EXTRAS_NAMES)
# A channel page also carries one gate row (part 4): the channel's kind and whether the viewer
# is a member, in the two columns after the extras (NULL in every other row).
_GATE_PART = _FILE + 2


def _page_statement(
    scope: ColumnElement[bool],
    window: ColumnElement[bool] | None,
    newest_first: bool,
    far_side: ColumnElement[bool] | None,
    gate: bool,
) -> Any:
    """One statement for a whole history page (see :meth:`MessageRepository.page`).

    ``window`` narrows the scope (``seq < :seq`` …), ``newest_first`` says which end of it the
    ``:n`` rows are taken from, and ``far_side`` is the probe for messages beyond the cursor
    (uncorrelated, so both databases evaluate it once). The window is a materialised CTE that
    the extras join by message id, so the rows and their reactions, mentions and files are one
    round trip and one snapshot. With ``gate`` (channel pages), one more row tells the
    channel's kind and whether ``:viewer_id`` is a member, so the access check rides along.
    """
    chosen = select(messages).where(scope if window is None else scope & window)
    chosen = chosen.order_by(messages.c.seq.desc() if newest_first else messages.c.seq)
    page = chosen.limit(_ROW_COUNT).cte("page").prefix_with("MATERIALIZED")
    extras_types = (
        String(),
        BigInteger(),
        BigInteger(),
        String(),
        BigInteger(),
        Integer(),
        Integer(),
        Boolean(),
    )
    no_extras = [cast(null(), kind) for kind in extras_types]
    probe = exists().where(far_side) if far_side is not None else literal_column("0", Integer) == 1
    no_gate = (
        [cast(null(), channels.c.kind.type).label("gate_kind"), cast(null(), Boolean)]
        if gate
        else []
    )
    message_part = select(
        literal_column(str(_MESSAGE_PART), Integer).label("part"),
        *page.c,
        probe.label("far_side"),
        *(value.label(name) for value, name in zip(no_extras, _EXTRAS_NAMES, strict=True)),
        *no_gate,
    )

    def extras_part(part: int, message_id: Any, values: list[Any]) -> Any:
        nothing = [cast(null(), column.type) for column in messages.columns if column.name != "id"]
        # The message id goes in the id column; everything else of the message is NULL.
        return select(
            literal_column(str(part), Integer),
            message_id,
            *nothing,
            cast(null(), Boolean),
            *values,
            *no_gate,
        ).join_from(page, message_id.table, page.c.id == message_id)

    reaction_part = extras_part(
        _REACTION + 1,
        reactions.c.message_id,
        [reactions.c.emoji, reactions.c.user_id, reactions.c.created_at, *no_extras[3:]],
    )
    mention_part = extras_part(
        _MENTION + 1,
        mentions.c.message_id,
        [no_extras[0], mentions.c.user_id, no_extras[2], *no_extras[3:]],
    )
    file_part = extras_part(
        _FILE + 1,
        files.c.message_id,
        list(_FILE_COLUMNS),
    )
    parts = [message_part, reaction_part, mention_part, file_part]
    if gate:
        member = exists().where(
            (memberships.c.channel_id == channels.c.id)
            & (memberships.c.user_id == bindparam("viewer_id"))
        )
        parts.append(
            select(
                literal_column(str(_GATE_PART), Integer),
                *(cast(null(), column.type) for column in messages.columns),
                cast(null(), Boolean),
                *no_extras,
                channels.c.kind,
                member,
            ).where(channels.c.id == bindparam("scope_id"))
        )
    combined = union_all(*parts).subquery()
    return select(combined).order_by(
        combined.c.part, combined.c.seq, combined.c.ordinal, combined.c.number
    )


@dataclass(frozen=True, slots=True)
class _PageStatements:
    """The statements of :meth:`MessageRepository.page` for one scope (channel or thread).

    Parameters: ``scope_id`` (the channel or thread root), ``seq``, ``n`` (rows to read);
    ``extras`` takes ``low`` and ``high``, the window's first and last seq.
    """

    latest_page: Compiled
    before_page: Compiled
    after_page: Compiled
    before: Select[Any]
    from_: Select[Any]
    at_or_before: Select[Any]
    at_or_after: Select[Any]
    extras: Any

    @classmethod
    def build(cls, thread: bool) -> _PageStatements:
        scope: ColumnElement[bool] = (
            messages.c.thread_root_id == bindparam("scope_id")
            if thread
            else (messages.c.channel_id == bindparam("scope_id"))
            & messages.c.thread_root_id.is_(None)
        )
        seq: Any = bindparam("seq")
        rows: Any = _ROW_COUNT
        base = select(messages).where(scope)
        probe = select(messages.c.id).where(scope)
        window = scope & messages.c.seq.between(bindparam("low"), bindparam("high"))
        gate = not thread
        # SQLite's messages are keyed by (channel_id, seq) (migration 0006), so its planner
        # walks that key for a channel page and skips thread replies row by row: a channel
        # whose newest 100k messages are one thread's replies took 7.8 ms a page. The partial
        # index holds top-level messages only; every messages read of a channel page uses it.
        hint = None if thread else ("messages", "ix_messages_channel_top_level")
        return cls(
            latest_page=Compiled(
                _page_statement(scope, None, True, None, gate), ("n",), sqlite_indexed_by=hint
            ),
            before_page=Compiled(
                _page_statement(
                    scope, messages.c.seq < seq, True, scope & (messages.c.seq >= seq), gate
                ),
                ("n",),
                sqlite_indexed_by=hint,
            ),
            after_page=Compiled(
                _page_statement(
                    scope, messages.c.seq > seq, False, scope & (messages.c.seq <= seq), gate
                ),
                ("n",),
                sqlite_indexed_by=hint,
            ),
            before=base.where(messages.c.seq < seq).order_by(messages.c.seq.desc()).limit(rows),
            from_=base.where(messages.c.seq >= seq).order_by(messages.c.seq).limit(rows),
            at_or_before=probe.where(messages.c.seq <= seq).limit(1),
            at_or_after=probe.where(messages.c.seq >= seq).limit(1),
            extras=_extras(window, window, window, join=True),
        )


_CHANNEL_PAGE = _PageStatements.build(thread=False)
_THREAD_PAGE = _PageStatements.build(thread=True)
