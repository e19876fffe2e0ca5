"""The realtime runtime of one process: bus, sequencer, hub, presence and housekeeping.

Durable events take this path::

    commit (outbox row, position N)
      └─ Storage commit listener ─┬─ this process's sequencer (fast path)
                                  └─ bus publish, once per commit ─> every process's sequencer
    sequencer (order by position, repair gaps from the database) ─> hub ─> sockets

A connection first replays what it missed from the database, then switches to live delivery
at a position where nothing can fall between the two.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from courtyard.realtime import closecodes
from courtyard.realtime.bus import (
    Bus,
    BusMessage,
    EventBatch,
    PresenceReport,
    PresenceSyncRequest,
    TypingSignal,
    WireEvent,
    decode_bus_message,
    encode_bus_message,
)
from courtyard.realtime.connection import Connection, ConnectionState
from courtyard.realtime.frames import PING_FRAME
from courtyard.realtime.hub import Hub
from courtyard.realtime.presence import PresenceTracker
from courtyard.realtime.replay import prepare, replay_until
from courtyard.realtime.sequencer import Sequencer
from courtyard.realtime.wire import control_frame
from courtyard.storage.engine import background_work
from courtyard.storage.repositories.events import StoredEvent
from courtyard.storage.unit_of_work import Storage

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RealtimeOptions:
    """Tunables of the event stream (from the ``[realtime]`` settings)."""

    heartbeat_interval: float = 25.0
    idle_timeout: float = 75.0
    max_buffer_bytes: int = 1 << 20
    retention: timedelta = timedelta(days=7)
    typing_interval: float = 2.0
    typing_ttl_ms: int = 6000
    presence_grace: float = 10.0
    away_after: float = 300.0
    max_connections_per_user: int = 30
    max_connections_per_ip: int = 1000
    catch_up_interval: float = 1.0
    database_concurrency: int = 8
    prune_interval: float = 3600.0


class Realtime:
    """One process's share of the event stream."""

    def __init__(self, storage: Storage, bus: Bus, options: RealtimeOptions | None = None) -> None:
        self.storage = storage
        self.bus = bus
        self.options = options or RealtimeOptions()
        self.node = secrets.token_hex(6)
        self.hub = Hub()
        self.sequencer = Sequencer(self._deliver, self._fetch_range)
        self._listeners: list[Callable[[StoredEvent], None]] = []
        self.presence = PresenceTracker(
            self.node,
            self._publish_presence,
            self._presence_changed,
            away_after=self.options.away_after,
            grace=self.options.presence_grace,
        )
        self._ids = itertools.count(1)
        self._per_user: Counter[int] = Counter()
        self._per_ip: Counter[str] = Counter()
        self._typing_sent: dict[tuple[int, int], float] = {}
        self._outgoing: asyncio.Queue[BusMessage] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._db_gate = asyncio.Semaphore(self.options.database_concurrency)
        self._started = False

    # --- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        """Subscribe to the bus, learn the current position, start housekeeping."""
        if self._started:
            return
        self._started = True
        await self.bus.start(self._on_bus_message)
        async with self.storage.snapshot() as uow:
            _, newest = await uow.events.bounds()
        self.sequencer.position = max(self.sequencer.position, newest)
        self.hub.position = self.sequencer.position
        self.storage.add_commit_listener(self._on_commit)
        self._tasks = [
            asyncio.create_task(self._publisher(), name="realtime-publisher"),
            asyncio.create_task(
                self._every(self.options.catch_up_interval, self._catch_up),
                name="realtime-catch-up",
            ),
            asyncio.create_task(self._every(5.0, self._sweep), name="realtime-sweeper"),
            asyncio.create_task(
                self._every(30.0, self._presence_heartbeat), name="realtime-presence"
            ),
            asyncio.create_task(
                self._every(self.options.prune_interval, self._prune), name="realtime-prune"
            ),
        ]
        self._outgoing.put_nowait(PresenceSyncRequest(node=self.node))
        logger.info(
            "realtime started on node %s with the %s bus at position %s",
            self.node,
            self.bus.name,
            self.position,
        )

    async def stop(self) -> None:
        """Close every socket with 1001 (reconnect later) and leave the bus."""
        for conn in list(self.hub.connections):
            conn.close(closecodes.GOING_AWAY, "server restarting")
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        with contextlib.suppress(Exception):
            await self.bus.close()
        self._started = False

    @property
    def database_gate(self) -> asyncio.Semaphore:
        """Bounds concurrent database work of socket handshakes and replays."""
        return self._db_gate

    @property
    def position(self) -> int:
        """The newest stream position this process has delivered."""
        return self.sequencer.position

    # --- durable events -------------------------------------------------------------------
    def add_listener(self, listener: Callable[[StoredEvent], None]) -> None:
        """Call ``listener`` with every durable event this process delivers, in order."""
        self._listeners.append(listener)

    def _deliver(self, event: StoredEvent) -> None:
        self.hub.dispatch(event)
        for listener in self._listeners:
            listener(event)

    def _receive(self, events: Sequence[StoredEvent]) -> None:
        if len(events) < 2:
            self.sequencer.receive(events)
            return
        self.hub.cork()
        try:
            self.sequencer.receive(events)
        finally:
            self.hub.uncork()

    def _on_commit(self, events: list[StoredEvent]) -> None:
        # Fan out on the next loop turn, so the request that committed answers first.
        asyncio.get_running_loop().call_soon(self._receive, events)
        if not self.bus.has_peers:
            return  # the bus would only bring these events back to this process
        self._outgoing.put_nowait(
            EventBatch(
                node=self.node,
                events=[
                    WireEvent(
                        e.position,
                        e.type,
                        e.channel_id,
                        e.user_ids,
                        e.all_members,
                        e.joined,
                        e.left,
                        e.payload,
                    )
                    for e in events
                ],
            )
        )

    async def _publisher(self) -> None:
        while True:
            message = await self._outgoing.get()
            batch = [message]
            while not self._outgoing.empty():
                batch.append(self._outgoing.get_nowait())
            for item in _coalesce(batch):
                try:
                    await self.bus.publish(encode_bus_message(item))
                except Exception:
                    # Durable events are repaired from the database by the other nodes.
                    logger.warning("bus publish failed", exc_info=True)

    def _on_bus_message(self, data: bytes) -> None:
        try:
            message = decode_bus_message(data)
        except Exception:
            logger.warning("ignoring a malformed bus message")
            return
        if isinstance(message, EventBatch):
            if message.node == self.node:
                return  # this process's own commits, delivered when they committed
            self._receive(
                [
                    StoredEvent(
                        e.position,
                        e.type,
                        e.channel_id,
                        tuple(e.user_ids),
                        e.all_members,
                        tuple(e.joined),
                        tuple(e.left),
                        e.payload,
                    )
                    for e in message.events
                ]
            )
        elif isinstance(message, TypingSignal):
            frame = control_frame(
                {
                    "type": "typing",
                    "channel_id": message.channel_id,
                    "user_id": message.user_id,
                    "thread_root_id": message.thread_root_id,
                    "expires_in_ms": self.options.typing_ttl_ms,
                }
            )
            self.hub.to_channel(message.channel_id, frame, except_user=message.user_id)
        elif isinstance(message, PresenceReport):
            entries = [(int(user_id), str(status)) for user_id, status in message.entries]
            self.presence.apply_report(message.node, entries, full=message.full)
        elif isinstance(message, PresenceSyncRequest) and message.node != self.node:
            self._publish_presence(self.presence.full_report(), True)

    async def _fetch_range(self, after: int, until: int, limit: int) -> list[StoredEvent]:
        async with self.storage.snapshot() as uow:
            return await uow.events.read_after(after, until=until, limit=limit)

    async def _catch_up(self) -> None:
        # A safety net for a lost bus message or a publisher that died after committing.
        async with self.storage.snapshot() as uow:
            _, newest = await uow.events.bounds()
        await self.sequencer.catch_up_to(newest)

    # --- connections ----------------------------------------------------------------------
    def admit(self, ip: str) -> bool:
        """Whether another socket from ``ip`` may start a handshake."""
        return self._per_ip[ip] < self.options.max_connections_per_ip

    def new_connection_id(self) -> int:
        """A process-unique connection number."""
        return next(self._ids)

    async def open(self, conn: Connection, since: int | None) -> None:
        """Greet, replay what was missed since ``since``, then deliver live."""
        if self._per_user[conn.user_id] >= self.options.max_connections_per_user:
            conn.close(closecodes.TRY_AGAIN_LATER, "too many connections for this user")
            return
        self._per_user[conn.user_id] += 1
        self._per_ip[conn.ip] += 1
        self.hub.add(conn)
        position = self.position
        conn.write(
            control_frame(
                {
                    "type": "hello",
                    "position": position if since is None else since,
                    "connection_id": conn.id,
                    "node": self.node,
                    "user_id": conn.user_id,
                    "heartbeat_interval_ms": int(self.options.heartbeat_interval * 1000),
                }
            )
        )
        cursor, resync = await prepare(self.storage, self._db_gate, conn.user_id, since, position)
        if resync is not None:
            conn.write(
                control_frame({"type": "resync_required", "position": position, "reason": resync})
            )
        if cursor.position > self.position:
            # The client holds state newer than this process has delivered (e.g. from
            # GET /state): bring the stream up to it before going live.
            await self.sequencer.catch_up_to(cursor.position)
        while not conn.closed:
            target = self.position
            if cursor.position < target:
                conn.release()  # replayed events go out as they are read, under flow control
            await replay_until(self.storage, self._db_gate, conn, cursor, target)
            if conn.closed:
                return
            if cursor.position >= self.position:
                # Nothing can be delivered between this check and going live (no await), and
                # the hub writes to live connections directly: release in the same step.
                self.hub.go_live(conn, cursor.channels)
                conn.write(control_frame({"type": "caught_up", "position": cursor.position}))
                conn.release()
                self.presence.connected(conn.user_id)
                return

    def closed(self, conn: Connection) -> None:
        """The transport closed: forget the connection."""
        was_live = conn.state is ConnectionState.LIVE
        conn.mark_closed()
        if conn in self.hub.connections:
            self.hub.remove(conn)
            self._per_user[conn.user_id] -= 1
            if self._per_user[conn.user_id] <= 0:
                del self._per_user[conn.user_id]
            self._per_ip[conn.ip] -= 1
            if self._per_ip[conn.ip] <= 0:
                del self._per_ip[conn.ip]
        if was_live:
            self.presence.disconnected(conn.user_id)

    # --- what clients send ----------------------------------------------------------------
    def typing(self, conn: Connection, channel_id: int, thread_root_id: int | None) -> bool:
        """Relay a typing signal to the channel (throttled); False if not a member."""
        if channel_id not in self.hub.channels_of(conn.user_id):
            return False
        key = (conn.user_id, channel_id)
        now = time.monotonic()
        if now - self._typing_sent.get(key, 0.0) < self.options.typing_interval:
            return True
        self._typing_sent[key] = now
        self.presence.activity(conn.user_id, active=True)
        self._outgoing.put_nowait(TypingSignal(self.node, channel_id, conn.user_id, thread_root_id))
        return True

    def watch_presence(self, conn: Connection, user_ids: frozenset[int]) -> None:
        """Follow these users' presence; their current status is sent at once."""
        self.hub.watch_presence(conn, user_ids)
        for user_id in sorted(user_ids):
            conn.write(
                control_frame(
                    {
                        "type": "presence",
                        "user_id": user_id,
                        "status": self.presence.status_of(user_id),
                    }
                )
            )

    def activity(self, conn: Connection, *, active: bool) -> None:
        """The client says it is active or idle."""
        self.presence.activity(conn.user_id, active=active)

    def presence_of(self, user_ids: list[int]) -> dict[int, str]:
        """Current statuses (for the REST API)."""
        return {user_id: self.presence.status_of(user_id) for user_id in user_ids}

    # --- presence plumbing ----------------------------------------------------------------
    def _publish_presence(self, entries: list[tuple[int, str]], full: bool) -> None:
        self._outgoing.put_nowait(PresenceReport(self.node, entries, full))

    def _presence_changed(self, user_id: int, status: str) -> None:
        self.hub.to_watchers(
            user_id, control_frame({"type": "presence", "user_id": user_id, "status": status})
        )

    async def _presence_heartbeat(self) -> None:
        self._publish_presence(self.presence.full_report(), True)

    # --- housekeeping ---------------------------------------------------------------------
    async def _every(self, seconds: float, job: object) -> None:
        background_work.set(True)
        while True:
            await asyncio.sleep(seconds)
            try:
                await job()  # type: ignore[operator]
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("realtime housekeeping job failed")

    async def _sweep(self) -> None:
        now = time.monotonic()
        wall = time.time()
        options = self.options
        for conn in list(self.hub.connections):
            if conn.closed:
                continue
            if now - conn.last_received > options.idle_timeout:
                conn.close(closecodes.IDLE_TIMEOUT, "idle timeout")
            elif conn.session_expires_at is not None and wall >= conn.session_expires_at:
                conn.close(closecodes.UNAUTHENTICATED, "session expired")
            elif now - conn.last_ping >= options.heartbeat_interval:
                conn.last_ping = now
                conn.write(PING_FRAME)
        self.presence.sweep()
        cutoff = now - 60
        self._typing_sent = {k: v for k, v in self._typing_sent.items() if v > cutoff}

    async def _prune(self) -> None:
        cutoff = datetime.now(UTC) - self.options.retention
        async with self.storage.transaction() as uow:
            removed = await uow.events.prune_before(cutoff)
        if removed:
            logger.info("pruned %s events older than %s", removed, cutoff.isoformat())


def _coalesce(batch: list[BusMessage]) -> list[BusMessage]:
    """Merge consecutive event batches into one bus message (one publish per loop turn)."""
    merged: list[BusMessage] = []
    for item in batch:
        if merged and isinstance(item, EventBatch) and isinstance(merged[-1], EventBatch):
            merged[-1] = EventBatch(node=item.node, events=merged[-1].events + item.events)
        else:
            merged.append(item)
    return merged
