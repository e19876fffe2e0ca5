"""Channels, conversations and memberships."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, bindparam, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from courtyard.domain.channels import Channel, ChannelKind, Member, Membership
from courtyard.storage.driver import Portable, fetch
from courtyard.storage.repositories._base import Repository, translating_unique
from courtyard.storage.schema import channels, memberships, mentions, messages, users
from courtyard.storage.timestamps import from_micros, maybe_from_micros, to_micros


def _channel(row: Row[Any], member_ids: list[int] | None = None) -> Channel:
    return _channel_from(
        (
            row.id,
            row.kind,
            row.name,
            row.topic,
            row.purpose,
            row.created_by,
            row.created_at,
            row.archived_at,
            row.last_seq,
            row.last_message_at,
            row.member_count,
        ),
        member_ids,
    )


def _channel_from(row: Sequence[Any], member_ids: list[int] | None = None) -> Channel:
    """A channel from a row whose first eleven columns are those of
    ``_CHANNEL_WITH_MEMBERSHIP`` (a driver row, or :func:`_channel`'s tuple)."""
    (
        channel_id,
        kind,
        name,
        topic,
        purpose,
        created_by,
        created_at,
        archived_at,
        last_seq,
        last_message_at,
        member_count,
    ) = row[:11]
    return Channel(
        id=channel_id,
        kind=ChannelKind(kind),
        name=name,
        topic=topic,
        purpose=purpose,
        created_by=created_by,
        created_at=from_micros(created_at),
        archived_at=maybe_from_micros(archived_at),
        last_seq=last_seq,
        last_message_at=maybe_from_micros(last_message_at),
        member_count=member_count,
        member_ids=member_ids,
    )


def _membership(row: Row[Any]) -> Membership:
    return Membership(
        channel_id=row.channel_id,
        user_id=row.user_id,
        joined_at=from_micros(row.joined_at),
        last_read_seq=row.last_read_seq,
        muted=bool(row.muted),
        starred=bool(row.starred),
    )


class ChannelRepository(Repository):
    """Reads and writes of ``channels`` and ``memberships``."""

    async def insert(
        self,
        *,
        kind: ChannelKind,
        name: str,
        created_by: int | None,
        now: datetime,
        topic: str = "",
        purpose: str = "",
        dm_key: str | None = None,
    ) -> Channel:
        """Create a channel; UniqueViolation if the name (or conversation) already exists."""
        name_key = None if kind.is_conversation else name.casefold()
        result = await translating_unique(
            self.conn.execute(
                channels.insert()
                .values(
                    kind=kind.value,
                    name=name,
                    name_key=name_key,
                    dm_key=dm_key,
                    topic=topic,
                    purpose=purpose,
                    created_by=created_by,
                    created_at=to_micros(now),
                    last_seq=0,
                    member_count=0,
                )
                .returning(channels)
            )
        )
        return _channel(result.one())

    async def get(self, channel_id: int) -> Channel | None:
        """A channel by id (conversations carry their member ids)."""
        row = (await self.conn.execute(select(channels).where(channels.c.id == channel_id))).first()
        if row is None:
            return None
        member_ids = None
        if ChannelKind(row.kind).is_conversation:
            member_ids = await self.member_ids(channel_id)
        return _channel(row, member_ids)

    async def by_dm_key(self, dm_key: str) -> Channel | None:
        """The conversation among exactly these people, if it exists."""
        row = (await self.conn.execute(select(channels).where(channels.c.dm_key == dm_key))).first()
        if row is None:
            return None
        return _channel(row, await self.member_ids(row.id))

    async def allocate_seqs(self, channel_id: int, count: int, *, now: datetime) -> int:
        """Reserve ``count`` sequence numbers; returns the last (the first is last - count + 1).

        Like :meth:`next_seq`, the row lock held until commit keeps numbers gap-free.
        """
        result = await self.conn.execute(
            update(channels)
            .where(channels.c.id == channel_id)
            .values(last_seq=channels.c.last_seq + count, last_message_at=to_micros(now))
            .returning(channels.c.last_seq)
        )
        return int(result.scalar_one())

    async def members_among(self, channel_id: int, user_ids: Iterable[int]) -> set[int]:
        """Which of ``user_ids`` are members of the channel (without loading every member)."""
        ids = sorted(set(user_ids))
        if not ids:
            return set()
        rows = await self.conn.execute(
            select(memberships.c.user_id).where(
                memberships.c.channel_id == channel_id, memberships.c.user_id.in_(ids)
            )
        )
        return {row.user_id for row in rows}

    async def next_seq(self, channel_id: int, *, now: datetime) -> int:
        """Allocate the channel's next message sequence number.

        The UPDATE takes the channel row lock until commit, so concurrent senders to one channel
        commit in sequence order and a rolled-back send leaves no gap.
        """
        result = await self.conn.execute(
            update(channels)
            .where(channels.c.id == channel_id)
            .values(last_seq=channels.c.last_seq + 1, last_message_at=to_micros(now))
            .returning(channels.c.last_seq)
        )
        return int(result.scalar_one())

    async def update_fields(self, channel_id: int, **changes: Any) -> None:
        """Write name/topic/purpose/kind columns."""
        if "name" in changes:
            changes["name_key"] = changes["name"].casefold()
        await translating_unique(
            self.conn.execute(update(channels).where(channels.c.id == channel_id).values(**changes))
        )

    async def set_archived(self, channel_id: int, *, at: datetime | None) -> None:
        """Archive (``at`` given) or unarchive a channel."""
        await self.conn.execute(
            update(channels)
            .where(channels.c.id == channel_id)
            .values(archived_at=None if at is None else to_micros(at))
        )

    async def browse(
        self,
        *,
        kinds: Iterable[ChannelKind],
        after_id: int,
        limit: int,
        query: str | None,
        include_archived: bool,
    ) -> list[Channel]:
        """Channels of these kinds by id, for the channel browser, optionally filtered by name."""
        stmt = (
            select(channels)
            .where(
                channels.c.kind.in_([kind.value for kind in kinds]),
                channels.c.id > after_id,
            )
            .order_by(channels.c.id)
            .limit(limit)
        )
        if not include_archived:
            stmt = stmt.where(channels.c.archived_at.is_(None))
        if query:
            escaped = query.casefold().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            stmt = stmt.where(channels.c.name_key.like(f"%{escaped}%", escape="\\"))
        return [_channel(row) for row in await self.conn.execute(stmt)]

    # --- memberships ----------------------------------------------------------------------
    async def membership(self, channel_id: int, user_id: int) -> Membership | None:
        """The user's membership of the channel, if any."""
        row = (
            await self.conn.execute(
                select(memberships).where(
                    memberships.c.channel_id == channel_id, memberships.c.user_id == user_id
                )
            )
        ).first()
        return _membership(row) if row else None

    async def add_member(
        self, channel_id: int, user_id: int, *, now: datetime, last_read_seq: int
    ) -> Membership | None:
        """Add a member; None if they already were one."""
        # ON CONFLICT rather than look-then-insert: two concurrent joins by one person must
        # make one membership, not a unique violation (PostgreSQL runs them in parallel).
        insert = pg_insert if self.conn.dialect.name == "postgresql" else sqlite_insert
        inserted = (
            await self.conn.execute(
                insert(memberships)
                .values(
                    channel_id=channel_id,
                    user_id=user_id,
                    joined_at=to_micros(now),
                    last_read_seq=last_read_seq,
                    muted=False,
                    starred=False,
                )
                .on_conflict_do_nothing(
                    index_elements=[memberships.c.channel_id, memberships.c.user_id]
                )
                .returning(memberships.c.user_id)
            )
        ).first()
        if inserted is None:
            return None
        await self.conn.execute(
            update(channels)
            .where(channels.c.id == channel_id)
            .values(member_count=channels.c.member_count + 1)
        )
        return Membership(
            channel_id=channel_id, user_id=user_id, joined_at=now, last_read_seq=last_read_seq
        )

    async def remove_member(self, channel_id: int, user_id: int) -> bool:
        """Remove a member; False if they were not one."""
        result = await self.conn.execute(
            delete(memberships).where(
                memberships.c.channel_id == channel_id, memberships.c.user_id == user_id
            )
        )
        if not result.rowcount:
            return False
        await self.conn.execute(
            update(channels)
            .where(channels.c.id == channel_id)
            .values(member_count=channels.c.member_count - 1)
        )
        return True

    async def member_ids(self, channel_id: int) -> list[int]:
        """Ids of every member, ascending."""
        rows = await self.conn.execute(
            select(memberships.c.user_id)
            .where(memberships.c.channel_id == channel_id)
            .order_by(memberships.c.user_id)
        )
        return [row.user_id for row in rows]

    async def members_page(
        self, channel_id: int, *, after_user_id: int, limit: int
    ) -> list[Member]:
        """A page of members ordered by user id."""
        rows = await self.conn.execute(
            select(memberships)
            .where(memberships.c.channel_id == channel_id, memberships.c.user_id > after_user_id)
            .order_by(memberships.c.user_id)
            .limit(limit)
        )
        return [
            Member(
                user_id=row.user_id,
                joined_at=from_micros(row.joined_at),
                last_read_seq=row.last_read_seq,
            )
            for row in rows
        ]

    async def set_membership_flags(self, channel_id: int, user_id: int, **flags: Any) -> None:
        """Write last_read_seq / muted / starred."""
        await self.conn.execute(
            update(memberships)
            .where(memberships.c.channel_id == channel_id, memberships.c.user_id == user_id)
            .values(**flags)
        )

    async def set_last_read(self, channel_id: int, user_id: int, seq: int) -> None:
        """Move a member's read marker (SQL written once, straight to the driver: a marker
        moves on every channel a user reads)."""
        await fetch(self.conn, _SET_LAST_READ, (seq, channel_id, user_id))

    async def get_with_membership(
        self, channel_id: int, user_id: int
    ) -> tuple[Channel, Membership | None] | None:
        """A channel (without conversation member ids) and the user's membership, one query."""
        found = await fetch(self.conn, _CHANNEL_WITH_MEMBERSHIP, (channel_id, user_id))
        if not found:
            return None
        row = found[0]
        member_user_id, joined_at, last_read_seq, muted, starred = row[11:16]
        membership = None
        if member_user_id is not None:
            membership = Membership(
                channel_id=channel_id,
                user_id=user_id,
                joined_at=from_micros(joined_at),
                last_read_seq=last_read_seq,
                muted=bool(muted),
                starred=bool(starred),
            )
        return _channel_from(row), membership

    async def channels_of(self, user_id: int) -> list[tuple[Channel, Membership]]:
        """Every channel the user is a member of, with their membership, in one query."""
        rows = await self.conn.execute(_CHANNELS_OF, {"user_id": user_id})
        return [(_channel(row), _membership(row)) for row in rows]

    async def conversation_member_ids(self, channel_ids: Iterable[int]) -> dict[int, list[int]]:
        """Members of several conversations at once."""
        ids = sorted(set(channel_ids))
        if not ids:
            return {}
        rows = await self.conn.execute(
            select(memberships.c.channel_id, memberships.c.user_id)
            .where(memberships.c.channel_id.in_(ids))
            .order_by(memberships.c.channel_id, memberships.c.user_id)
        )
        result: dict[int, list[int]] = {channel_id: [] for channel_id in ids}
        for row in rows:
            result[row.channel_id].append(row.user_id)
        return result

    async def unread_counts(self, user_id: int, channel_id: int | None = None) -> dict[int, int]:
        """Per channel: top-level messages by others, not deleted, after the read marker.

        With ``channel_id``, only that channel is counted.
        """
        statement = _UNREAD_IN_CHANNEL if channel_id is not None else _UNREAD
        rows = await self.conn.execute(statement, {"user_id": user_id, "channel_id": channel_id})
        return {channel: int(count) for channel, count in rows}

    async def mention_counts(self, user_id: int, channel_id: int | None = None) -> dict[int, int]:
        """Per channel: unread messages by others that mention the user or the whole channel.

        Deleted messages and the user's own messages (a self-mention in a thread reply, which
        does not move the read marker) never count. With ``channel_id``, only that channel.
        """
        statement = _MENTIONS_IN_CHANNEL if channel_id is not None else _MENTIONS
        rows = await self.conn.execute(statement, {"user_id": user_id, "channel_id": channel_id})
        return {channel: int(count) for channel, count in rows}

    async def readers(
        self, channel_id: int, seq: int, *, exclude_user: int, only_opted_in: bool
    ) -> list[int]:
        """Members whose read marker is at or past ``seq`` (for "seen by" lists)."""
        stmt = (
            select(memberships.c.user_id)
            .select_from(memberships.join(users, users.c.id == memberships.c.user_id))
            .where(
                memberships.c.channel_id == channel_id,
                memberships.c.last_read_seq >= seq,
                memberships.c.user_id != exclude_user,
            )
            .order_by(memberships.c.user_id)
        )
        if only_opted_in:
            stmt = stmt.where(users.c.send_read_receipts.is_(True))
        return [row.user_id for row in await self.conn.execute(stmt)]

    async def shares_channel(self, user_a: int, user_b: int) -> bool:
        """Whether two users are members of at least one common channel."""
        mine = select(memberships.c.channel_id).where(memberships.c.user_id == user_a)
        row = (
            await self.conn.execute(
                select(memberships.c.channel_id)
                .where(memberships.c.user_id == user_b, memberships.c.channel_id.in_(mine))
                .limit(1)
            )
        ).first()
        return row is not None


# Every read and every send checks access with this statement: built once, so a request does
# not pay for constructing it and computing its cache key.
# Every access check reads this (services/access.py): SQL written once, straight to the driver.
# The channel's columns come first, in ``_channel_from``'s order.
_CHANNEL_WITH_MEMBERSHIP = Portable.of(
    "SELECT c.id, c.kind, c.name, c.topic, c.purpose, c.created_by, c.created_at, "
    "c.archived_at, c.last_seq, c.last_message_at, c.member_count, "
    "m.user_id, m.joined_at, m.last_read_seq, m.muted, m.starred "
    "FROM channels AS c LEFT JOIN memberships AS m ON m.channel_id = c.id AND m.user_id = $2 "
    "WHERE c.id = $1"
)


# Straight to the driver (storage/driver.py): it runs on every event-socket handshake.
_SET_LAST_READ = Portable.of(
    "UPDATE memberships SET last_read_seq = $1 WHERE channel_id = $2 AND user_id = $3"
)

# The sidebar's statements (GET /channels on every page load and reconnect), built once: building
# the mention-count union per request cost more than running it.
_CHANNELS_OF = (
    select(channels, memberships)
    .join(memberships, memberships.c.channel_id == channels.c.id)
    .where(memberships.c.user_id == bindparam("user_id"))
    .order_by(channels.c.id)
)


# A member's messages after their read marker (unread counts, @channel/@here mentions).
_AFTER_READ_MARKER = memberships.join(
    messages,
    and_(
        messages.c.channel_id == memberships.c.channel_id,
        messages.c.seq > memberships.c.last_read_seq,
    ),
)


def _unread_statement(one_channel: bool) -> Any:
    user_id: Any = bindparam("user_id")
    stmt = (
        select(messages.c.channel_id, func.count())
        .select_from(_AFTER_READ_MARKER)
        .where(
            memberships.c.user_id == user_id,
            messages.c.thread_root_id.is_(None),
            messages.c.sender_id != user_id,
            messages.c.deleted_at.is_(None),
        )
        .group_by(messages.c.channel_id)
    )
    if one_channel:
        stmt = stmt.where(memberships.c.channel_id == bindparam("channel_id"))
    return stmt


def _mentions_statement(one_channel: bool) -> Any:
    user_id: Any = bindparam("user_id")
    direct = (
        select(mentions.c.channel_id.label("channel_id"), mentions.c.message_id.label("mid"))
        .select_from(
            mentions.join(
                memberships,
                and_(
                    memberships.c.channel_id == mentions.c.channel_id,
                    memberships.c.user_id == mentions.c.user_id,
                ),
            ).join(messages, messages.c.id == mentions.c.message_id)
        )
        .where(
            mentions.c.user_id == user_id,
            mentions.c.seq > memberships.c.last_read_seq,
            messages.c.sender_id != user_id,
            messages.c.deleted_at.is_(None),
        )
    )
    wide = (
        select(messages.c.channel_id.label("channel_id"), messages.c.id.label("mid"))
        .select_from(_AFTER_READ_MARKER)
        .where(
            memberships.c.user_id == user_id,
            or_(messages.c.mentions_channel.is_(True), messages.c.mentions_here.is_(True)),
            messages.c.sender_id != user_id,
            messages.c.deleted_at.is_(None),
        )
    )
    if one_channel:
        direct = direct.where(memberships.c.channel_id == bindparam("channel_id"))
        wide = wide.where(memberships.c.channel_id == bindparam("channel_id"))
    union = direct.union(wide).subquery()
    return select(union.c.channel_id, func.count()).group_by(union.c.channel_id)


_UNREAD = _unread_statement(one_channel=False)
_UNREAD_IN_CHANNEL = _unread_statement(one_channel=True)
_MENTIONS = _mentions_statement(one_channel=False)
_MENTIONS_IN_CHANNEL = _mentions_statement(one_channel=True)
