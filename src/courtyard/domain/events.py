"""Durable events: what changed, in the same shape as the REST objects.

Each event is written to the outbox in the transaction that made the change and gets a
stream position there. ``Audience`` says who may receive it; the realtime layer never
widens it.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from courtyard.domain.channels import Channel, Member
from courtyard.domain.messages import Message, ReactionGroup
from courtyard.domain.users import User


@dataclass(frozen=True, slots=True)
class Audience:
    """Who receives an event, and the channel memberships it changes.

    Receivers are the channel's members, the named ``user_ids``, and every non-guest user when
    ``all_members`` is set. ``joined`` users become channel members *before* the event is
    delivered (so they receive it); ``left`` users stop being members *after* it (so they
    receive it, and nothing later). The realtime layer applies exactly this, live and on
    replay, and never widens it.
    """

    channel_id: int | None = None
    user_ids: tuple[int, ...] = ()
    all_members: bool = False
    joined: tuple[int, ...] = ()
    left: tuple[int, ...] = ()


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """Base of every durable event; ``type`` is the wire name (``message.created``)."""


class MessageCreated(Event, frozen=True, tag="message.created"):
    """A message was posted (top-level or thread reply)."""

    message: Message


class MessageEdited(Event, frozen=True, tag="message.edited"):
    """A message's text changed."""

    message: Message


class MessageDeleted(Event, frozen=True, tag="message.deleted"):
    """A message was deleted; its place stays, its text is gone."""

    message: Message


class ThreadUpdated(Event, frozen=True, tag="thread.updated"):
    """A thread root's summary changed (reply count, participants, last reply)."""

    root: Message


class ReactionAdded(Event, frozen=True, tag="reaction.added"):
    """Someone reacted to a message."""

    channel_id: int
    message_id: int
    user_id: int
    emoji: str
    reactions: list[ReactionGroup]


class ReactionRemoved(Event, frozen=True, tag="reaction.removed"):
    """Someone took back a reaction."""

    channel_id: int
    message_id: int
    user_id: int
    emoji: str
    reactions: list[ReactionGroup]


class MessagePinned(Event, frozen=True, tag="message.pinned"):
    """A message was pinned to its channel."""

    message: Message


class MessageUnpinned(Event, frozen=True, tag="message.unpinned"):
    """A message was unpinned."""

    message: Message


class ChannelCreated(Event, frozen=True, tag="channel.created"):
    """A channel or conversation was created."""

    channel: Channel


class ChannelUpdated(Event, frozen=True, tag="channel.updated"):
    """Name, topic, purpose or kind changed."""

    channel: Channel


class ChannelArchived(Event, frozen=True, tag="channel.archived"):
    """A channel was archived: readable, no longer writable."""

    channel: Channel


class ChannelUnarchived(Event, frozen=True, tag="channel.unarchived"):
    """An archived channel was reopened."""

    channel: Channel


class MemberJoined(Event, frozen=True, tag="member.joined"):
    """Someone joined or was added to a channel."""

    channel: Channel
    member: Member
    added_by: int | None = None


class MemberLeft(Event, frozen=True, tag="member.left"):
    """Someone left or was removed from a channel."""

    channel_id: int
    user_id: int
    removed_by: int | None = None


class ReadMarkerMoved(Event, frozen=True, tag="read_marker.moved"):
    """A user's last-read position in a channel moved (sent to that user's devices)."""

    channel_id: int
    user_id: int
    last_read_seq: int


class UserCreated(Event, frozen=True, tag="user.created"):
    """A new person or bot joined the organisation."""

    user: User


class UserUpdated(Event, frozen=True, tag="user.updated"):
    """A profile, role or status changed."""

    user: User


class UserDeactivated(Event, frozen=True, tag="user.deactivated"):
    """A user was deactivated: sign-in blocked, history kept."""

    user: User


class SessionsEnded(Event, frozen=True, tag="sessions.ended"):
    """Some of a user's sessions or tokens ended; sockets using them close (code 4004).

    ``session_ids``/``token_ids`` list what ended; both null means every session and token.
    """

    user_id: int
    session_ids: list[int] | None = None
    token_ids: list[int] | None = None
    reason: str = ""


ALL_EVENT_TYPES: tuple[type[Event], ...] = (
    MessageCreated,
    MessageEdited,
    MessageDeleted,
    ThreadUpdated,
    ReactionAdded,
    ReactionRemoved,
    MessagePinned,
    MessageUnpinned,
    ChannelCreated,
    ChannelUpdated,
    ChannelArchived,
    ChannelUnarchived,
    MemberJoined,
    MemberLeft,
    ReadMarkerMoved,
    UserCreated,
    UserUpdated,
    UserDeactivated,
    SessionsEnded,
)


def wire_name(event_type: type[Event]) -> str:
    """The ``type`` string an event carries on the wire."""
    tag = event_type.__struct_config__.tag
    assert isinstance(tag, str)
    return tag


def sessions_ended(
    user_id: int,
    *,
    session_ids: list[int] | None = None,
    token_ids: list[int] | None = None,
    reason: str,
) -> tuple[SessionsEnded, Audience]:
    """The event and audience that close a user's sockets for ended credentials."""
    event = SessionsEnded(
        user_id=user_id, session_ids=session_ids, token_ids=token_ids, reason=reason
    )
    return event, Audience(user_ids=(user_id,))
