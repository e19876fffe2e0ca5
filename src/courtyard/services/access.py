"""Access gates: the only road from an id to the data behind it.

Each gate raises :class:`NotFound` for anything the actor may not see, with the same message
whether the object is missing or hidden, so ids leak nothing. One condition per line keeps
every branch visible to coverage.
"""

from __future__ import annotations

from dataclasses import dataclass

from courtyard.domain.channels import Channel, ChannelKind, Membership
from courtyard.domain.errors import NotFound, PermissionDenied
from courtyard.domain.users import Actor
from courtyard.storage.repositories.messages import ChannelGate, MessageRecord
from courtyard.storage.unit_of_work import UnitOfWork

CHANNEL_NOT_FOUND = "channel not found"
MESSAGE_NOT_FOUND = "message not found"
USER_NOT_FOUND = "user not found"


@dataclass(frozen=True, slots=True)
class ChannelAccess:
    """A channel the actor may see, and their membership (None for a public non-member)."""

    channel: Channel
    membership: Membership | None

    @property
    def is_member(self) -> bool:
        """Whether the actor belongs to the channel."""
        return self.membership is not None


async def access_channel(uow: UnitOfWork, actor: Actor, channel_id: int) -> ChannelAccess:
    """A channel the actor may read: a member's, or any public one for non-guests.

    The channel comes without conversation member ids (one query for channel and membership).
    """
    found = await uow.channels.get_with_membership(channel_id, actor.user_id)
    if found is None:
        raise NotFound(CHANNEL_NOT_FOUND)
    channel, membership = found
    if not readable(actor, channel.kind, is_member=membership is not None):
        raise NotFound(CHANNEL_NOT_FOUND)
    return ChannelAccess(channel, membership)


def readable(actor: Actor, kind: ChannelKind, *, is_member: bool) -> bool:
    """The reading rule: members read their channels; non-guests also read public ones."""
    if is_member:
        return True
    return kind is ChannelKind.PUBLIC and not actor.is_guest


def require_readable(actor: Actor, gate: ChannelGate | None) -> None:
    """:func:`access_channel`'s rule on the facts a channel page read with it (``None``: no
    such channel); NotFound (channel) for anything the actor may not read."""
    if gate is None or not readable(actor, gate.kind, is_member=gate.is_member):
        raise NotFound(CHANNEL_NOT_FOUND)


async def access_channel_for_admin(uow: UnitOfWork, actor: Actor, channel_id: int) -> ChannelAccess:
    """Like :func:`access_channel`, but administrators also reach private channels."""
    if not actor.is_admin:
        return await access_channel(uow, actor, channel_id)
    found = await uow.channels.get_with_membership(channel_id, actor.user_id)
    if found is None:
        raise NotFound(CHANNEL_NOT_FOUND)
    channel, membership = found
    if channel.kind.is_conversation:
        return await access_channel(uow, actor, channel_id)
    return ChannelAccess(channel, membership)


async def access_channel_for_posting(
    uow: UnitOfWork, actor: Actor, channel_id: int
) -> ChannelAccess:
    """A channel the actor may write to: they are a member and it is not archived."""
    found = await uow.channels.get_with_membership(channel_id, actor.user_id)
    channel, membership = found if found is not None else (None, None)
    return posting_access(actor, channel, membership)


def posting_access(
    actor: Actor, channel: Channel | None, membership: Membership | None
) -> ChannelAccess:
    """The posting rule on already-loaded rows (the batched send path loads many at once)."""
    if channel is None:
        raise NotFound(CHANNEL_NOT_FOUND)
    visible = membership is not None or (channel.kind is ChannelKind.PUBLIC and not actor.is_guest)
    if not visible:
        raise NotFound(CHANNEL_NOT_FOUND)
    if membership is None:
        raise PermissionDenied("join the channel before posting", code="not_a_member")
    if channel.archived_at is not None:
        raise PermissionDenied("the channel is archived", code="channel_archived")
    return ChannelAccess(channel, membership)


@dataclass(frozen=True, slots=True)
class MessageAccess:
    """A message row the actor may see, with its channel."""

    record: MessageRecord
    channel: ChannelAccess


async def access_message(uow: UnitOfWork, actor: Actor, message_id: int) -> MessageAccess:
    """A message the actor may read; NotFound (message) for anything else."""
    record = await uow.messages.get_record(message_id)
    if record is None:
        raise NotFound(MESSAGE_NOT_FOUND)
    try:
        channel = await access_channel(uow, actor, record.channel_id)
    except NotFound:
        raise NotFound(MESSAGE_NOT_FOUND) from None
    return MessageAccess(record, channel)


async def access_message_for_writing(
    uow: UnitOfWork, actor: Actor, message_id: int
) -> MessageAccess:
    """A live message in a channel the actor may post to."""
    access = await access_message(uow, actor, message_id)
    if access.record.deleted:
        raise NotFound(MESSAGE_NOT_FOUND)
    if not access.channel.is_member:
        raise PermissionDenied("join the channel first", code="not_a_member")
    if access.channel.channel.archived_at is not None:
        raise PermissionDenied("the channel is archived", code="channel_archived")
    return access


async def access_user(uow: UnitOfWork, actor: Actor, user_id: int) -> None:
    """Guests may only look up people they share a channel with; others see the directory."""
    if actor.user_id == user_id:
        return
    if not actor.is_guest:
        return
    if not await uow.channels.shares_channel(actor.user_id, user_id):
        raise NotFound(USER_NOT_FOUND)


def require_admin(actor: Actor) -> None:
    """Owners and admins only."""
    if not actor.is_admin:
        raise PermissionDenied("administrators only", code="admin_required")


def require_non_guest(actor: Actor, action: str) -> None:
    """Members and above only."""
    if actor.is_guest:
        raise PermissionDenied(f"guests cannot {action}", code="guest_not_allowed")
