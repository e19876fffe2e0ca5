"""Read markers: how far each member has read each channel."""

from __future__ import annotations

from courtyard.domain.errors import Conflict, InvalidInput
from courtyard.domain.events import Audience, ReadMarkerMoved
from courtyard.domain.users import Actor
from courtyard.services.access import access_channel
from courtyard.services.context import ServiceContext


class Reading:
    """Moving read markers (forwards to mark read, backwards to mark unread)."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx

    async def mark_read(self, actor: Actor, channel_id: int, seq: int | None) -> int:
        """Set the last-read sequence number (default: the newest message); returns it."""
        if seq is not None and seq < 0:
            raise InvalidInput("seq must not be negative", field="seq")
        async with self._ctx.storage.transaction() as uow:
            access = await access_channel(uow, actor, channel_id)
            if access.membership is None:
                raise Conflict("you are not a member of this channel", code="not_a_member")
            target = access.channel.last_seq if seq is None else min(seq, access.channel.last_seq)
            if target != access.membership.last_read_seq:
                await uow.channels.set_membership_flags(
                    channel_id, actor.user_id, last_read_seq=target
                )
                uow.outbox.append(
                    ReadMarkerMoved(
                        channel_id=channel_id, user_id=actor.user_id, last_read_seq=target
                    ),
                    Audience(user_ids=(actor.user_id,)),
                )
        return target
