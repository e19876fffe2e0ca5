"""The hub: this process's live connections, and delivery of each event to its audience.

Per event the work is: encode one frame, look up the audience in in-memory indexes, write the
same bytes to each recipient's transport. No per-recipient coroutine, no per-recipient
encoding, no awaits — a 1,000-member channel costs one loop over 1,000 transports.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable

import msgspec

from courtyard.realtime import closecodes
from courtyard.realtime.connection import Connection, ConnectionState
from courtyard.realtime.wire import event_frame
from courtyard.storage.repositories.events import StoredEvent

logger = logging.getLogger(__name__)


class _SessionsEnded(msgspec.Struct):
    user_id: int
    session_ids: list[int] | None = None
    token_ids: list[int] | None = None


class _UserRef(msgspec.Struct):
    id: int


class _UserEvent(msgspec.Struct):
    user: _UserRef


_sessions_ended = msgspec.json.Decoder(_SessionsEnded)
_user_event = msgspec.json.Decoder(_UserEvent)


class Hub:
    """Indexes of live connections by user, by channel and by role, and event dispatch."""

    def __init__(self) -> None:
        self.position = 0
        self._by_user: dict[int, set[Connection]] = defaultdict(set)
        self._by_channel: dict[int, set[Connection]] = defaultdict(set)
        self._user_channels: dict[int, set[int]] = {}
        self._members: set[Connection] = set()
        self._watchers: dict[int, set[Connection]] = defaultdict(set)
        self.connections: set[Connection] = set()
        # While events committed together are delivered: frames per connection, written as
        # one write each at the end (a batch of sends is one write per socket, not one per
        # message). None outside such a delivery.
        self._corked: dict[Connection, list[bytes]] | None = None

    # --- registry -------------------------------------------------------------------------
    def add(self, conn: Connection) -> None:
        """Register a connection that is still catching up (it receives nothing live yet)."""
        self.connections.add(conn)

    def go_live(self, conn: Connection, channels: Iterable[int]) -> None:
        """Start live delivery; ``channels`` is the user's membership as of ``self.position``."""
        if conn.closed:
            return
        conn.state = ConnectionState.LIVE
        user = conn.user_id
        known = self._user_channels.get(user)
        if known is None or not self._by_user.get(user):
            known = self._user_channels[user] = set(channels)
        self._by_user[user].add(conn)
        for channel_id in known:
            self._by_channel[channel_id].add(conn)
        if not conn.is_guest:
            self._members.add(conn)

    def remove(self, conn: Connection) -> None:
        """Forget a closed connection."""
        self.connections.discard(conn)
        user = conn.user_id
        mine = self._by_user.get(user)
        if mine is not None:
            mine.discard(conn)
            if not mine:
                del self._by_user[user]
        for channel_id in self._user_channels.get(user, ()):
            members = self._by_channel.get(channel_id)
            if members is not None:
                members.discard(conn)
                if not members:
                    del self._by_channel[channel_id]
        if user not in self._by_user:
            self._user_channels.pop(user, None)
        self._members.discard(conn)
        self.watch_presence(conn, frozenset())

    def channels_of(self, user_id: int) -> set[int]:
        """The channels a live user belongs to (empty if not connected here)."""
        return self._user_channels.get(user_id, set())

    def live_users(self) -> Iterable[int]:
        """Users with at least one live connection here."""
        return self._by_user.keys()

    # --- durable events -------------------------------------------------------------------
    def cork(self) -> None:
        """Hold this process's event frames per connection until :meth:`uncork`."""
        if self._corked is None:
            self._corked = {}

    def uncork(self) -> None:
        """Write each connection's held frames in one write."""
        corked = self._corked
        self._corked = None
        if not corked:
            return
        live = ConnectionState.LIVE
        for conn, frames in corked.items():
            # A connection closed meanwhile gets nothing more, as it would have uncorked.
            if conn.state is live:
                conn.transport.write(frames[0] if len(frames) == 1 else b"".join(frames))

    @staticmethod
    def _hold(
        targets: Iterable[Connection], frame: bytes, corked: dict[Connection, list[bytes]]
    ) -> None:
        live = ConnectionState.LIVE
        for conn in targets:
            if conn.state is live:
                held = corked.get(conn)
                if held is None:
                    corked[conn] = [frame]
                else:
                    held.append(frame)

    def dispatch(self, event: StoredEvent) -> None:
        """Deliver one durable event to its audience on this process, in position order."""
        self.position = event.position
        channel_id = event.channel_id
        if channel_id is not None:
            for user in event.joined:
                self._join(user, channel_id)
        targets = self._audience(event)
        if targets:
            frame = event_frame(event.position, event.payload)
            if self._corked is not None:
                self._hold(targets, frame, self._corked)
            else:
                live = ConnectionState.LIVE
                for conn in targets:
                    if conn.state is live:
                        conn.transport.write(frame)
        if channel_id is not None:
            for user in event.left:
                self._leave(user, channel_id)
        if event.type == "sessions.ended" or event.type == "user.deactivated":
            # What came before reaches the sockets before any of them is closed.
            if self._corked:
                self.uncork()
                self.cork()
            self._end_sessions(event)

    def _audience(self, event: StoredEvent) -> Iterable[Connection]:
        channel = self._by_channel.get(event.channel_id) if event.channel_id is not None else None
        if event.all_members:
            if channel or event.user_ids:
                combined = set(self._members)
                if channel:
                    combined.update(channel)
                for user in event.user_ids:
                    combined.update(self._by_user.get(user, ()))
                return combined
            return tuple(self._members)
        if not event.user_ids:
            return tuple(channel) if channel else ()
        combined = set(channel) if channel else set()
        for user in event.user_ids:
            combined.update(self._by_user.get(user, ()))
        return combined

    def _join(self, user: int, channel_id: int) -> None:
        channels = self._user_channels.get(user)
        if channels is None:
            return
        channels.add(channel_id)
        members = self._by_channel[channel_id]
        members.update(self._by_user.get(user, ()))

    def _leave(self, user: int, channel_id: int) -> None:
        channels = self._user_channels.get(user)
        if channels is None:
            return
        channels.discard(channel_id)
        members = self._by_channel.get(channel_id)
        if members is None:
            return
        for conn in self._by_user.get(user, ()):
            members.discard(conn)
        if not members:
            del self._by_channel[channel_id]

    def _end_sessions(self, event: StoredEvent) -> None:
        try:
            if event.type == "user.deactivated":
                user_id = _user_event.decode(event.payload).user.id
                sessions: set[int] | None = None
                tokens: set[int] | None = None
            else:
                ended = _sessions_ended.decode(event.payload)
                user_id = ended.user_id
                sessions = None if ended.session_ids is None else set(ended.session_ids)
                tokens = None if ended.token_ids is None else set(ended.token_ids)
        except msgspec.DecodeError:
            logger.error("malformed %s event at position %s", event.type, event.position)
            return
        everything = sessions is None and tokens is None
        for conn in list(self._by_user.get(user_id, ())) + [
            c
            for c in self.connections
            if c.user_id == user_id and c.state is ConnectionState.CATCHING_UP
        ]:
            if (
                everything
                or (conn.session_id in (sessions or ()))
                or (conn.token_id in (tokens or ()))
            ):
                code = (
                    closecodes.FORBIDDEN
                    if event.type == "user.deactivated"
                    else closecodes.SESSION_ENDED
                )
                conn.close(
                    code, "account deactivated" if code == closecodes.FORBIDDEN else "session ended"
                )

    # --- ephemeral ------------------------------------------------------------------------
    def to_channel(self, channel_id: int, frame: bytes, *, except_user: int | None = None) -> None:
        """Deliver an ephemeral frame to the live members of a channel."""
        for conn in tuple(self._by_channel.get(channel_id, ())):
            if conn.user_id != except_user:
                conn.write(frame)

    def watch_presence(self, conn: Connection, user_ids: frozenset[int]) -> None:
        """Replace the users whose presence ``conn`` follows."""
        for user in conn.presence_watch - user_ids:
            watchers = self._watchers.get(user)
            if watchers is not None:
                watchers.discard(conn)
                if not watchers:
                    del self._watchers[user]
        for user in user_ids - conn.presence_watch:
            self._watchers[user].add(conn)
        conn.presence_watch = user_ids

    def to_watchers(self, user_id: int, frame: bytes) -> None:
        """Deliver a presence frame to the connections following ``user_id``."""
        for conn in tuple(self._watchers.get(user_id, ())):
            conn.write(frame)
