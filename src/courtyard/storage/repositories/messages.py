"""Messages, edit history, mentions, reactions and pins."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, delete, func, select, update

from courtyard.domain.files import Attachment
from courtyard.domain.messages import (
    HistoryPage,
    Message,
    MessageVersion,
    PageRequest,
    ReactionGroup,
)
from courtyard.storage.repositories._base import (
    Repository,
    dump_ids,
    load_ids,
    translating_unique,
)
from courtyard.storage.repositories.bulk import insert_returning_ids
from courtyard.storage.repositories.files import FileRepository
from courtyard.storage.schema import mentions, message_versions, messages, reactions
from courtyard.storage.timestamps import from_micros, maybe_from_micros, to_micros


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

    async def insert(self, new: NewMessage, *, now: datetime) -> int:
        """Store a message; UniqueViolation if (sender, client_message_id) was used already."""
        result = await translating_unique(
            self.conn.execute(
                messages.insert()
                .values(
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
        return await translating_unique(
            insert_returning_ids(
                self.conn,
                "messages",
                _NEW_MESSAGE_COLUMNS,
                _NEW_MESSAGE_PG_TYPES,
                [
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
                ],
            )
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
        row = (await self.conn.execute(select(messages).where(messages.c.id == message_id))).first()
        return _record(row) if row else None

    async def lock(self, message_id: int) -> None:
        """Hold the message's row lock until commit (PostgreSQL; SQLite has one writer anyway)."""
        await self.conn.execute(
            select(messages.c.id).where(messages.c.id == message_id).with_for_update()
        )

    async def get(self, message_id: int) -> Message | None:
        """One message with its reactions and mentions."""
        row = (await self.conn.execute(select(messages).where(messages.c.id == message_id))).first()
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
        """Turn rows into Messages, loading reactions and mentions in two batched queries."""
        if not rows:
            return []
        ids = [row.id for row in rows]
        reaction_rows = await self.conn.execute(
            select(reactions.c.message_id, reactions.c.emoji, reactions.c.user_id)
            .where(reactions.c.message_id.in_(ids))
            .order_by(reactions.c.message_id, reactions.c.created_at, reactions.c.user_id)
        )
        grouped: dict[int, dict[str, list[int]]] = defaultdict(dict)
        for rrow in reaction_rows:
            grouped[rrow.message_id].setdefault(rrow.emoji, []).append(rrow.user_id)
        mention_rows = await self.conn.execute(
            select(mentions.c.message_id, mentions.c.user_id)
            .where(mentions.c.message_id.in_(ids))
            .order_by(mentions.c.user_id)
        )
        mentioned: dict[int, list[int]] = defaultdict(list)
        for mrow in mention_rows:
            mentioned[mrow.message_id].append(mrow.user_id)
        attachments = await FileRepository(self.conn).attachments(ids)
        return [
            _message(row, grouped.get(row.id, {}), mentioned.get(row.id, []), attachments)
            for row in rows
        ]

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
        """A window of top-level channel history, or of one thread's replies."""
        scope: ColumnElement[bool]
        if thread_root_id is None:
            scope = (messages.c.channel_id == channel_id) & messages.c.thread_root_id.is_(None)
        else:
            scope = messages.c.thread_root_id == thread_root_id
        base = select(messages).where(scope)
        limit = request.limit
        if request.around is not None:
            half = max(limit // 2, 1)
            older = await self._fetch(base.where(messages.c.seq < request.around), half, desc=True)
            newer = await self._fetch(
                base.where(messages.c.seq >= request.around), limit - half, desc=False
            )
            rows = list(reversed(older[0])) + newer[0]
            more_before, more_after = older[1], newer[1]
        elif request.after is not None:
            rows, more_after = await self._fetch(
                base.where(messages.c.seq > request.after), limit, desc=False
            )
            more_before = request.after > 0 and await self._exists(
                base.where(messages.c.seq <= request.after)
            )
        else:
            stmt = base if request.before is None else base.where(messages.c.seq < request.before)
            newest_first, more_before = await self._fetch(stmt, limit, desc=True)
            rows = list(reversed(newest_first))
            more_after = request.before is not None and await self._exists(
                base.where(messages.c.seq >= request.before)
            )
        return HistoryPage(
            messages=await self.hydrate(rows),
            has_more_before=more_before,
            has_more_after=more_after,
        )

    async def _fetch(self, stmt: Any, limit: int, *, desc: bool) -> tuple[list[Row[Any]], bool]:
        order = messages.c.seq.desc() if desc else messages.c.seq.asc()
        rows = list(await self.conn.execute(stmt.order_by(order).limit(limit + 1)))
        return rows[:limit], len(rows) > limit

    async def _exists(self, stmt: Any) -> bool:
        return (
            await self.conn.execute(stmt.with_only_columns(messages.c.id).limit(1))
        ).first() is not None

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
        exists = (
            await self.conn.execute(
                select(reactions.c.user_id).where(
                    reactions.c.message_id == message_id,
                    reactions.c.emoji == emoji,
                    reactions.c.user_id == user_id,
                )
            )
        ).first()
        if exists:
            return False
        await self.conn.execute(
            reactions.insert().values(
                message_id=message_id, emoji=emoji, user_id=user_id, created_at=to_micros(now)
            )
        )
        return True

    async def remove_reaction(self, message_id: int, user_id: int, emoji: str) -> bool:
        """Remove a reaction; False if it was not there."""
        result = await self.conn.execute(
            delete(reactions).where(
                reactions.c.message_id == message_id,
                reactions.c.emoji == emoji,
                reactions.c.user_id == user_id,
            )
        )
        return bool(result.rowcount)

    async def reaction_groups(self, message_id: int) -> list[ReactionGroup]:
        """The reactions on one message, grouped by emoji in order of first use."""
        rows = await self.conn.execute(
            select(reactions.c.emoji, reactions.c.user_id)
            .where(reactions.c.message_id == message_id)
            .order_by(reactions.c.created_at, reactions.c.user_id)
        )
        grouped: dict[str, list[int]] = {}
        for row in rows:
            grouped.setdefault(row.emoji, []).append(row.user_id)
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


def _message(
    row: Row[Any],
    reaction_map: dict[str, list[int]],
    mentioned: list[int],
    attachments: dict[int, list[Attachment]],
) -> Message:
    deleted = row.deleted_at is not None
    return Message(
        id=row.id,
        channel_id=row.channel_id,
        seq=row.seq,
        sender_id=row.sender_id,
        text="" if deleted else row.text,
        created_at=from_micros(row.created_at),
        edited_at=maybe_from_micros(row.edited_at),
        deleted_at=maybe_from_micros(row.deleted_at),
        thread_root_id=row.thread_root_id,
        reply_count=row.reply_count,
        last_reply_at=maybe_from_micros(row.last_reply_at),
        reply_participant_ids=load_ids(row.reply_participant_ids),
        reactions=_groups(reaction_map),
        pinned_at=maybe_from_micros(row.pinned_at),
        pinned_by=row.pinned_by,
        mentioned_user_ids=mentioned,
        mentions_channel=bool(row.mentions_channel),
        mentions_here=bool(row.mentions_here),
        client_message_id=row.client_message_id,
        attachments=[] if deleted else attachments.get(row.id, []),
    )
