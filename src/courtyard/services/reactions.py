"""Reactions and pins on messages."""

from __future__ import annotations

from courtyard.domain.emoji_names import clean_reaction_emoji
from courtyard.domain.errors import Conflict, InvalidInput
from courtyard.domain.events import (
    Audience,
    MessagePinned,
    MessageUnpinned,
    ReactionAdded,
    ReactionRemoved,
)
from courtyard.domain.messages import Message, ReactionGroup
from courtyard.domain.users import Actor
from courtyard.services.access import access_channel, access_message_for_writing
from courtyard.services.context import ServiceContext


class Reactions:
    """Emoji reactions (one per user per emoji) and pinned messages."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx

    async def add_reaction(self, actor: Actor, message_id: int, emoji: str) -> list[ReactionGroup]:
        """React; reacting twice with the same emoji changes nothing."""
        symbol = clean_reaction_emoji(emoji)
        async with self._ctx.storage.transaction() as uow:
            # Serialise reaction changes per message: without the lock, concurrent reactions
            # each see room for one more kind and together pass the limit (PostgreSQL).
            await uow.messages.lock(message_id)
            access = await access_message_for_writing(uow, actor, message_id)
            groups = await uow.messages.reaction_groups(message_id)
            if any(g.emoji == symbol and actor.user_id in g.user_ids for g in groups):
                return groups
            if (
                all(g.emoji != symbol for g in groups)
                and len(groups) >= self._ctx.policy.max_reaction_kinds
            ):
                raise Conflict(
                    "this message has the maximum number of different reactions",
                    code="too_many_reactions",
                )
            await uow.messages.add_reaction(
                message_id, actor.user_id, symbol, now=self._ctx.clock()
            )
            groups = await uow.messages.reaction_groups(message_id)
            channel_id = access.record.channel_id
            uow.outbox.append(
                ReactionAdded(
                    channel_id=channel_id,
                    message_id=message_id,
                    user_id=actor.user_id,
                    emoji=symbol,
                    reactions=groups,
                ),
                Audience(channel_id=channel_id),
            )
        return groups

    async def remove_reaction(
        self, actor: Actor, message_id: int, emoji: str
    ) -> list[ReactionGroup]:
        """Take back your reaction; removing one that is not there changes nothing."""
        symbol = clean_reaction_emoji(emoji)
        async with self._ctx.storage.transaction() as uow:
            access = await access_message_for_writing(uow, actor, message_id)
            if await uow.messages.remove_reaction(message_id, actor.user_id, symbol):
                groups = await uow.messages.reaction_groups(message_id)
                channel_id = access.record.channel_id
                uow.outbox.append(
                    ReactionRemoved(
                        channel_id=channel_id,
                        message_id=message_id,
                        user_id=actor.user_id,
                        emoji=symbol,
                        reactions=groups,
                    ),
                    Audience(channel_id=channel_id),
                )
                return groups
            return await uow.messages.reaction_groups(message_id)

    async def pin(self, actor: Actor, message_id: int, *, pinned: bool) -> Message:
        """Pin or unpin a message (any member of its channel)."""
        async with self._ctx.storage.transaction() as uow:
            access = await access_message_for_writing(uow, actor, message_id)
            if access.record.pinned == pinned:
                message = await uow.messages.get(message_id)
                assert message is not None
                return message
            if pinned and access.record.thread_root_id is not None:
                raise InvalidInput("thread replies cannot be pinned", code="reply_not_pinnable")
            now = self._ctx.clock()
            await uow.messages.set_pinned(
                message_id, by=actor.user_id if pinned else None, at=now if pinned else None
            )
            message = await uow.messages.get(message_id)
            assert message is not None
            event = MessagePinned(message=message) if pinned else MessageUnpinned(message=message)
            uow.outbox.append(event, Audience(channel_id=access.record.channel_id))
        return message

    async def pinned_messages(self, actor: Actor, channel_id: int) -> list[Message]:
        """A channel's pinned messages, newest pin first."""
        async with self._ctx.storage.snapshot() as uow:
            await access_channel(uow, actor, channel_id)
            return await uow.messages.pinned(channel_id)
