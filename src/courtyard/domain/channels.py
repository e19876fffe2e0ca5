"""Channels and direct conversations."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import msgspec


class ChannelKind(StrEnum):
    """Public channels are open to every non-guest; the rest need membership."""

    PUBLIC = "public"
    PRIVATE = "private"
    DIRECT = "direct"
    GROUP = "group"

    @property
    def is_conversation(self) -> bool:
        """Direct and group messages: fixed membership, no name."""
        return self in (ChannelKind.DIRECT, ChannelKind.GROUP)


class Channel(msgspec.Struct, frozen=True, kw_only=True):
    """A channel or conversation as any viewer who may see it sees it."""

    id: int
    kind: ChannelKind
    name: str
    topic: str = ""
    purpose: str = ""
    created_by: int | None = None
    created_at: datetime
    archived_at: datetime | None = None
    last_seq: int = 0
    last_message_at: datetime | None = None
    member_count: int = 0
    member_ids: list[int] | None = None


class Membership(msgspec.Struct, frozen=True, kw_only=True):
    """The viewer's own relation to a channel."""

    channel_id: int
    user_id: int
    joined_at: datetime
    last_read_seq: int = 0
    muted: bool = False
    starred: bool = False


class ChannelSummary(msgspec.Struct, frozen=True, kw_only=True):
    """One row of the viewer's channel list: the channel plus their unread state."""

    channel: Channel
    membership: Membership | None
    unread_count: int = 0
    mention_count: int = 0


class Member(msgspec.Struct, frozen=True, kw_only=True):
    """A member of a channel as listed to other members."""

    user_id: int
    joined_at: datetime
    last_read_seq: int = 0
