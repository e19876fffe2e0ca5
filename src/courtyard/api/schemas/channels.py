"""Bodies and envelopes for channels, conversations and read markers."""

from __future__ import annotations

from typing import Annotated

import msgspec

from courtyard.api.schemas import Body, IdField, SeqField
from courtyard.domain.channels import Channel, ChannelSummary, Member

Name = Annotated[str, msgspec.Meta(max_length=80)]
Topic = Annotated[str, msgspec.Meta(max_length=250)]


class NewChannelBody(Body):
    """Create a channel."""

    name: Name
    private: bool = False
    topic: Topic = ""
    purpose: Topic = ""
    member_ids: Annotated[list[IdField], msgspec.Meta(max_length=1000)] = msgspec.field(
        default_factory=list
    )


class ChannelChangesBody(Body):
    """Channel fields to change; omitted fields stay."""

    name: Name | None = None
    topic: Topic | None = None
    purpose: Topic | None = None


class PreferencesBody(Body):
    """Your own settings for a channel."""

    muted: bool | None = None
    starred: bool | None = None


class ReadBody(Body):
    """Move your read marker (omit ``seq`` for "read up to the newest")."""

    seq: SeqField | None = None


class ReadMarker(msgspec.Struct, kw_only=True):
    """Where your read marker now is."""

    channel_id: int
    last_read_seq: int


class ConversationBody(Body):
    """Open a direct or group conversation with these people (you are added)."""

    user_ids: Annotated[list[IdField], msgspec.Meta(max_length=49)]


class ChannelList(msgspec.Struct, kw_only=True):
    """Your channels with unread state."""

    channels: list[ChannelSummary]


class ChannelPageResponse(msgspec.Struct, kw_only=True):
    """A page of channels to browse."""

    channels: list[Channel]
    next_cursor: int | None = None


class MemberList(msgspec.Struct, kw_only=True):
    """A page of members."""

    members: list[Member]
    next_cursor: int | None = None
