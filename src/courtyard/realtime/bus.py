"""The fan-out bus between Courtyard processes, and what travels on it.

Each committed change is published once (never once per recipient); every process receives
every bus message and delivers to its own sockets. The bus is a fast path only: durable events
are also in the database, so a process that misses a bus message repairs the gap from there.
"""

from __future__ import annotations

import abc
from collections.abc import Callable

import msgspec

BusHandler = Callable[[bytes], None]


class Bus(abc.ABC):
    """One broadcast subject shared by every Courtyard process of an installation."""

    name: str = "bus"

    @property
    def has_peers(self) -> bool:
        """Whether another process may be listening (a broker: always assumed)."""
        return True

    @abc.abstractmethod
    async def start(self, handler: BusHandler) -> None:
        """Connect and start calling ``handler(message)`` for every message published."""

    @abc.abstractmethod
    async def publish(self, message: bytes) -> None:
        """Send ``message`` to every subscribed process, this one included."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Stop receiving and release connections."""


class WireEvent(msgspec.Struct, array_like=True, frozen=True):
    """A durable event as it travels on the bus."""

    position: int
    type: str
    channel_id: int | None
    user_ids: tuple[int, ...]
    all_members: bool
    joined: tuple[int, ...]
    left: tuple[int, ...]
    payload: bytes


class EventBatch(msgspec.Struct, tag="events", array_like=True, frozen=True):
    """Durable events committed together, in position order."""

    node: str
    events: list[WireEvent]


class TypingSignal(msgspec.Struct, tag="typing", array_like=True, frozen=True):
    """Someone is typing (ephemeral; never stored)."""

    node: str
    channel_id: int
    user_id: int
    thread_root_id: int | None


class PresenceReport(msgspec.Struct, tag="presence", array_like=True, frozen=True):
    """A node's view of some of its users: (user_id, status) pairs. ``full`` replaces all."""

    node: str
    entries: list[tuple[int, str]]
    full: bool = False


class PresenceSyncRequest(msgspec.Struct, tag="presence.sync", array_like=True, frozen=True):
    """A starting node asks every other node for its full presence report."""

    node: str


BusMessage = EventBatch | TypingSignal | PresenceReport | PresenceSyncRequest

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(BusMessage)


def encode_bus_message(message: BusMessage) -> bytes:
    """msgpack, compact and fast; payloads stay raw JSON bytes."""
    return _encoder.encode(message)


def decode_bus_message(data: bytes) -> BusMessage:
    """Inverse of :func:`encode_bus_message`."""
    message: BusMessage = _decoder.decode(data)
    return message
