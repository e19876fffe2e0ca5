"""Read markers and read receipts: how far each member has read each channel."""

from __future__ import annotations

from dataclasses import dataclass

from courtyard.domain.channels import Channel
from courtyard.domain.errors import Conflict, InvalidInput
from courtyard.domain.events import Audience, ReadMarkerMoved
from courtyard.domain.users import Actor
from courtyard.services.access import access_channel, access_message
from courtyard.services.context import ServiceContext
from courtyard.storage.unit_of_work import UnitOfWork


@dataclass(frozen=True, slots=True)
class Receipts:
    """Who has read a message. ``available`` is false where receipts are not kept (big
    channels, thread replies, receipts turned off); ``read_by`` is then empty."""

    message_id: int
    available: bool
    read_by: list[int]


class Reading:
    """Moving read markers (forwards to mark read, backwards to mark unread)."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx

    def receipts_kept(self, channel: Channel) -> bool:
        """Receipts exist in channels up to the configured size, unless turned off."""
        policy = self._ctx.policy
        return (
            policy.read_receipts != "off"
            and channel.member_count <= policy.read_receipts_max_members
        )

    async def mark_read(self, actor: Actor, channel_id: int, seq: int | None) -> int:
        """Set the last-read sequence number (default: the newest message); returns it.

        The move is sent to the user's other devices; in channels that keep receipts, moving
        forwards is also a read receipt for the other members (unless the user opted out).
        """
        if seq is not None and seq < 0:
            raise InvalidInput("seq must not be negative", field="seq")
        async with self._ctx.storage.transaction() as uow:
            access = await access_channel(uow, actor, channel_id)
            if access.membership is None:
                raise Conflict("you are not a member of this channel", code="not_a_member")
            target = access.channel.last_seq if seq is None else min(seq, access.channel.last_seq)
            previous = access.membership.last_read_seq
            if target != previous:
                await uow.channels.set_last_read(channel_id, actor.user_id, target)
                audience = Audience(user_ids=(actor.user_id,))
                is_receipt = target > previous and self.receipts_kept(access.channel)
                if is_receipt and await self._sends_receipts(uow, actor):
                    audience = Audience(channel_id=channel_id, user_ids=(actor.user_id,))
                uow.outbox.append(
                    ReadMarkerMoved(
                        channel_id=channel_id, user_id=actor.user_id, last_read_seq=target
                    ),
                    audience,
                )
        return target

    async def receipts(self, actor: Actor, message_id: int) -> Receipts:
        """Who (besides its author) has read a top-level message, in channels that keep receipts."""
        async with self._ctx.storage.snapshot() as uow:
            access = await access_message(uow, actor, message_id)
            record = access.record
            channel = access.channel.channel
            if record.thread_root_id is not None or not self.receipts_kept(channel):
                return Receipts(message_id=message_id, available=False, read_by=[])
            readers = await uow.channels.readers(
                channel.id,
                record.seq,
                exclude_user=record.sender_id,
                only_opted_in=self._ctx.policy.read_receipts == "optional",
            )
        return Receipts(message_id=message_id, available=True, read_by=readers)

    async def _sends_receipts(self, uow: UnitOfWork, actor: Actor) -> bool:
        if self._ctx.policy.read_receipts == "always":
            return True
        # In the marker's own transaction: a second unit of work was a second connection.
        record = await uow.users.get(actor.user_id)
        return record is not None and record.send_read_receipts
