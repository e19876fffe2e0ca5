"""Bodies and envelopes for messages, threads, reactions and pins."""

from __future__ import annotations

from typing import Annotated

import msgspec

from courtyard.api.schemas import Body, IdField
from courtyard.domain.messages import HistoryPage, Message, MessageVersion, ReactionGroup

# The domain enforces the configured limit; this only stops absurd bodies early.
Text = Annotated[str, msgspec.Meta(max_length=100_000)]


class SendBody(Body):
    """Post a message. ``client_message_id`` makes retries safe: the same key, the same message."""

    text: Text
    client_message_id: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    thread_root_id: IdField | None = None
    # Uploads (POST /api/v1/files) to attach, in order; the service applies the configured cap.
    file_ids: Annotated[list[IdField], msgspec.Meta(max_length=100)] = msgspec.field(
        default_factory=list
    )


class EditBody(Body):
    """New text for your message."""

    text: Text


class ThreadResponse(msgspec.Struct, kw_only=True):
    """A thread root and a page of its replies."""

    root: Message
    replies: HistoryPage


class VersionList(msgspec.Struct, kw_only=True):
    """Earlier texts of a message."""

    versions: list[MessageVersion]


class ReactionList(msgspec.Struct, kw_only=True):
    """A message's reactions after the change."""

    message_id: int
    reactions: list[ReactionGroup]


class MessageList(msgspec.Struct, kw_only=True):
    """A list of messages."""

    messages: list[Message]
