"""Messages, their edit history, reactions and thread summaries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import msgspec

from courtyard.domain.files import Attachment


class ReactionGroup(msgspec.Struct, frozen=True, kw_only=True):
    """All reactions with one emoji on one message."""

    emoji: str
    count: int
    user_ids: list[int]


class Message(msgspec.Struct, frozen=True):
    """A message as a channel member sees it; a deleted message keeps its place, not its text.

    Not ``kw_only``: the history page builds fifty of these per request and a positional call
    costs a fifth of a keyword one. Everywhere else, construct it with keywords.
    """

    id: int
    channel_id: int
    seq: int
    sender_id: int
    text: str
    created_at: datetime
    edited_at: datetime | None = None
    deleted_at: datetime | None = None
    thread_root_id: int | None = None
    reply_count: int = 0
    last_reply_at: datetime | None = None
    reply_participant_ids: list[int] = msgspec.field(default_factory=list)
    reactions: list[ReactionGroup] = msgspec.field(default_factory=list)
    pinned_at: datetime | None = None
    pinned_by: int | None = None
    mentioned_user_ids: list[int] = msgspec.field(default_factory=list)
    mentions_channel: bool = False
    mentions_here: bool = False
    client_message_id: str | None = None
    attachments: list[Attachment] = msgspec.field(default_factory=list)


class MessageVersion(msgspec.Struct, frozen=True, kw_only=True):
    """One earlier text of an edited message."""

    version: int
    text: str
    edited_at: datetime
    editor_id: int


class HistoryPage(msgspec.Struct, frozen=True, kw_only=True):
    """A window of a channel's or thread's messages in ascending ``seq`` order."""

    messages: list[Message]
    has_more_before: bool
    has_more_after: bool


@dataclass(frozen=True, slots=True)
class PageRequest:
    """Which window of history to read: latest, or before/after/around a sequence number."""

    limit: int
    before: int | None = None
    after: int | None = None
    around: int | None = None
