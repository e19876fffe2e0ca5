"""Presence: online / away / offline, aggregated over every device on every node.

Costs stay linear: a status change is published once on the bus and delivered only to the
connections that asked to follow that user (``presence.subscribe``), never broadcast to all.

Each node knows its own users' connections and activity and reports changes (and, every
``heartbeat`` seconds, its full list). A user's status is the best status any node reports;
reports from a node that stops heartbeating expire, so a crashed node's users go offline.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

ONLINE = "online"
AWAY = "away"
OFFLINE = "offline"
_RANK = {OFFLINE: 0, AWAY: 1, ONLINE: 2}


@dataclass
class _Local:
    connections: int = 0
    last_active: float = field(default_factory=time.monotonic)
    idle_hint: bool = False
    status: str = OFFLINE
    offline_timer: asyncio.TimerHandle | None = None


Publish = Callable[[list[tuple[int, str]], bool], None]
Changed = Callable[[int, str], None]


class PresenceTracker:
    """Local presence bookkeeping plus the aggregated view of every node."""

    def __init__(
        self,
        node: str,
        publish: Publish,
        changed: Changed,
        *,
        away_after: float = 300.0,
        grace: float = 10.0,
        report_ttl: float = 90.0,
    ) -> None:
        self.node = node
        self._publish = publish
        self._changed = changed
        self.away_after = away_after
        self.grace = grace
        self.report_ttl = report_ttl
        self._local: dict[int, _Local] = {}
        self._reports: dict[int, dict[str, str]] = {}
        self._node_users: dict[str, set[int]] = {}
        self._node_heard: dict[str, float] = {}

    # --- local events ---------------------------------------------------------------------
    def connected(self, user_id: int) -> None:
        """A connection of ``user_id`` went live on this node."""
        local = self._local.setdefault(user_id, _Local())
        local.connections += 1
        if local.offline_timer is not None:
            local.offline_timer.cancel()
            local.offline_timer = None
        local.last_active = time.monotonic()
        local.idle_hint = False
        self._set_local(user_id, local, ONLINE)

    def disconnected(self, user_id: int) -> None:
        """A connection closed; the user goes offline after the grace period if none is left."""
        local = self._local.get(user_id)
        if local is None:
            return
        local.connections = max(0, local.connections - 1)
        if local.connections == 0 and local.offline_timer is None:
            loop = asyncio.get_running_loop()
            local.offline_timer = loop.call_later(self.grace, self._go_offline, user_id)

    def activity(self, user_id: int, *, active: bool) -> None:
        """A client reported activity (or idleness)."""
        local = self._local.get(user_id)
        if local is None or local.connections == 0:
            return
        if active:
            local.last_active = time.monotonic()
        local.idle_hint = not active
        self._set_local(user_id, local, AWAY if local.idle_hint else ONLINE)

    def _go_offline(self, user_id: int) -> None:
        local = self._local.get(user_id)
        if local is None or local.connections > 0:
            return
        del self._local[user_id]
        self._publish([(user_id, OFFLINE)], False)

    def _set_local(self, user_id: int, local: _Local, status: str) -> None:
        if local.status != status:
            local.status = status
            self._publish([(user_id, status)], False)

    def sweep(self) -> None:
        """Periodic: mark inactive local users away; drop every report of a silent node.

        Reports expire per node (each heartbeat refreshes all of a node's users), so a sweep
        costs O(local users + nodes), not O(everyone known).
        """
        now = time.monotonic()
        for user_id, local in self._local.items():
            if (
                local.connections
                and not local.idle_hint
                and now - local.last_active > self.away_after
            ):
                self._set_local(user_id, local, AWAY)
        for node, heard in list(self._node_heard.items()):
            if now - heard > self.report_ttl:
                self.apply_report(node, [], full=True)
                self._node_heard.pop(node, None)
                self._node_users.pop(node, None)

    def full_report(self) -> list[tuple[int, str]]:
        """This node's users and statuses (for heartbeats and sync requests)."""
        return [
            (user_id, local.status)
            for user_id, local in self._local.items()
            if local.status != OFFLINE
        ]

    # --- reports from every node (this one included, through the bus) ---------------------
    def apply_report(self, node: str, entries: list[tuple[int, str]], *, full: bool) -> None:
        """Merge a node's report and notify watchers of aggregate changes."""
        self._node_heard[node] = time.monotonic()
        touched: set[int] = set()
        known = self._node_users.setdefault(node, set())
        if full:
            listed = {user_id for user_id, _ in entries}
            for user_id in known - listed:
                touched.add(user_id)
        before = {user_id: self.status_of(user_id) for user_id in touched | {u for u, _ in entries}}
        if full:
            for user_id in known - {u for u, _ in entries}:
                self._reports.get(user_id, {}).pop(node, None)
                known.discard(user_id)
        for user_id, status in entries:
            if status == OFFLINE:
                self._reports.get(user_id, {}).pop(node, None)
                known.discard(user_id)
            else:
                self._reports.setdefault(user_id, {})[node] = status
                known.add(user_id)
        for user_id, old in before.items():
            if not self._reports.get(user_id, True):
                self._reports.pop(user_id, None)
            new = self.status_of(user_id)
            if new != old:
                self._changed(user_id, new)

    def status_of(self, user_id: int) -> str:
        """The best status any node reports for the user."""
        entries = self._reports.get(user_id)
        if not entries:
            return OFFLINE
        return max(entries.values(), key=_RANK.__getitem__)
