"""One contract for every fan-out bus backend: memory, Redis and NATS.

Each test runs against every backend with a unique channel/subject, so parallel runs never
see each other's messages. Redis and NATS must be running (in CI a missing broker fails).
"""

from __future__ import annotations

import asyncio
import secrets
import socket
from collections.abc import AsyncIterator, Callable

import pytest

from courtyard.realtime.backends.memory import MemoryBroker, MemoryBus
from courtyard.realtime.backends.nats import NatsBus
from courtyard.realtime.backends.redis import RedisBus
from courtyard.realtime.bus import (
    Bus,
    EventBatch,
    PresenceReport,
    TypingSignal,
    WireEvent,
    decode_bus_message,
    encode_bus_message,
)
from tests.support import service_missing

REDIS_URL = "redis://127.0.0.1:6379/0"
NATS_URL = "nats://127.0.0.1:4222"


def _reachable(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


BusFactory = Callable[[], Bus]


@pytest.fixture(params=["memory", "redis", "nats"])
async def make_bus(request: pytest.FixtureRequest) -> AsyncIterator[BusFactory]:
    """A factory of buses that share one channel (as processes of one installation do)."""
    channel = f"courtyard-test.{secrets.token_hex(6)}"
    kind = request.param
    if kind == "redis" and not _reachable(6379):
        service_missing("Redis on 127.0.0.1:6379")
    if kind == "nats" and not _reachable(4222):
        service_missing("NATS on 127.0.0.1:4222")
    broker = MemoryBroker()
    made: list[Bus] = []

    def factory() -> Bus:
        bus: Bus
        if kind == "memory":
            bus = MemoryBus(broker)
        elif kind == "redis":
            bus = RedisBus(REDIS_URL, channel)
        else:
            bus = NatsBus(NATS_URL, channel)
        made.append(bus)
        return bus

    yield factory
    for bus in made:
        await bus.close()


async def _collect(bus: Bus) -> list[bytes]:
    received: list[bytes] = []
    await bus.start(received.append)
    return received


async def _until(
    condition: Callable[[], bool], timeout: float = 15.0, received: list[bytes] | None = None
) -> None:
    # Generous: CI shares two cores with browser tests; a lost message still fails here.
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            got = "" if received is None else f" ({len(received)} arrived, last {received[-1:]})"
            raise AssertionError(f"timed out waiting for bus messages{got}")
        await asyncio.sleep(0.01)


async def test_every_subscriber_receives_each_message_once(make_bus: BusFactory) -> None:
    first, second = make_bus(), make_bus()
    got_first, got_second = await _collect(first), await _collect(second)
    await first.publish(b"one")
    await second.publish(b"two")
    await _until(lambda: len(got_first) == 2 and len(got_second) == 2)
    await asyncio.sleep(0.1)
    assert sorted(got_first) == [b"one", b"two"]
    assert sorted(got_second) == [b"one", b"two"]


async def test_messages_from_one_publisher_arrive_in_order(make_bus: BusFactory) -> None:
    publisher, subscriber = make_bus(), make_bus()
    await publisher.start(lambda _: None)
    received = await _collect(subscriber)
    expected = [str(n).encode() for n in range(300)]
    for item in expected:
        await publisher.publish(item)
    await _until(lambda: len(received) == len(expected), received=received)
    assert received == expected


async def test_binary_payloads_survive_unchanged(make_bus: BusFactory) -> None:
    bus = make_bus()
    received = await _collect(bus)
    payload = bytes(range(256)) * 64 + "数据安全".encode()
    await bus.publish(payload)
    await _until(lambda: len(received) == 1)
    assert received == [payload]


async def test_closed_bus_stops_receiving(make_bus: BusFactory) -> None:
    stays, leaves = make_bus(), make_bus()
    kept = await _collect(stays)
    gone = await _collect(leaves)
    await leaves.close()
    await stays.publish(b"after")
    await _until(lambda: len(kept) == 1)
    await asyncio.sleep(0.2)
    assert gone == []


def test_bus_messages_round_trip() -> None:
    event = WireEvent(7, "message.created", 3, (), False, (4,), (), b'{"type":"message.created"}')
    for message in (
        EventBatch(node="n1", events=[event]),
        TypingSignal("n1", 3, 4, None),
        PresenceReport("n1", [(4, "online")], True),
    ):
        decoded = decode_bus_message(encode_bus_message(message))
        assert decoded == message or (
            isinstance(decoded, PresenceReport)
            and [tuple(e) for e in decoded.entries] == [(4, "online")]
        )
