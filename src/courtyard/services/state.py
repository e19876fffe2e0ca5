"""The initial state a client loads before following the event stream."""

from __future__ import annotations

from dataclasses import dataclass

from courtyard.domain.channels import ChannelSummary
from courtyard.domain.users import Actor, User
from courtyard.services.channels import Channels
from courtyard.services.context import ServiceContext


@dataclass(frozen=True, slots=True)
class InitialState:
    """Who you are, your channels, and the stream position this state reflects.

    Connect to the event socket with ``since=position`` and apply what follows: the result
    equals a fresh fetch (events at or below ``position`` are already reflected here).
    """

    user: User
    channels: list[ChannelSummary]
    position: int


class State:
    """Loading the initial state."""

    def __init__(self, ctx: ServiceContext, channels: Channels) -> None:
        self._ctx = ctx
        self._channels = channels

    async def initial_state(self, actor: Actor) -> InitialState:
        """Read the stream position first, so nothing committed after it is missed."""
        async with self._ctx.storage.snapshot() as uow:
            _, position = await uow.events.bounds()
            record = await uow.users.get(actor.user_id)
        assert record is not None
        channels = await self._channels.my_channels(actor)
        return InitialState(
            user=record.public(include_email=True), channels=channels, position=position
        )
