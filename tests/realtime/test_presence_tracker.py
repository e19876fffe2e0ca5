"""Presence aggregation across nodes, including a node that stops reporting."""

from __future__ import annotations

import asyncio
import time

from courtyard.realtime.presence import AWAY, OFFLINE, ONLINE, PresenceTracker


def _tracker(changes: list[tuple[int, str]], **kwargs: float) -> PresenceTracker:
    published: list[tuple[list[tuple[int, str]], bool]] = []
    tracker = PresenceTracker(
        "a",
        lambda e, full: published.append((e, full)),
        lambda u, s: changes.append((u, s)),
        **kwargs,
    )
    return tracker


def test_best_status_over_nodes_wins() -> None:
    changes: list[tuple[int, str]] = []
    tracker = _tracker(changes)
    tracker.apply_report("a", [(7, AWAY)], full=False)
    tracker.apply_report("b", [(7, ONLINE)], full=False)
    assert tracker.status_of(7) == ONLINE
    tracker.apply_report("b", [(7, OFFLINE)], full=False)
    assert tracker.status_of(7) == AWAY
    assert changes == [(7, AWAY), (7, ONLINE), (7, AWAY)]


def test_full_report_drops_users_a_node_no_longer_lists() -> None:
    changes: list[tuple[int, str]] = []
    tracker = _tracker(changes)
    tracker.apply_report("b", [(1, ONLINE), (2, ONLINE)], full=True)
    tracker.apply_report("b", [(2, ONLINE)], full=True)
    assert (tracker.status_of(1), tracker.status_of(2)) == (OFFLINE, ONLINE)


def test_a_silent_node_expires_and_its_users_go_offline() -> None:
    changes: list[tuple[int, str]] = []
    tracker = _tracker(changes, report_ttl=0.05)
    tracker.apply_report("b", [(3, ONLINE)], full=True)
    time.sleep(0.06)
    tracker.sweep()
    assert tracker.status_of(3) == OFFLINE
    assert changes[-1] == (3, OFFLINE)
    tracker.sweep()
    assert changes.count((3, OFFLINE)) == 1


async def test_disconnect_waits_for_the_grace_period() -> None:
    published: list[list[tuple[int, str]]] = []
    tracker = PresenceTracker(
        "a", lambda e, full: published.append(e), lambda u, s: None, grace=0.05
    )
    tracker.connected(9)
    tracker.disconnected(9)
    tracker.connected(9)  # a quick reconnect cancels the offline
    tracker.disconnected(9)
    await asyncio.sleep(0.1)
    assert published == [[(9, ONLINE)], [(9, OFFLINE)]]
