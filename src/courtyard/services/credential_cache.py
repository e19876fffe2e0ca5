"""A short-lived, per-process cache of authenticated credentials.

Every HTTP request and socket handshake authenticates. Without a cache that is two queries
(credential, user) per request; with it, none for 30 seconds. Anything that ends or changes a
credential (sign-out, revocation, password change, deactivation, role change) drops the user's
entries at once on the process that made the change and, through the event stream, on every
other process.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

import msgspec

from courtyard.domain.users import Actor
from courtyard.storage.repositories.events import StoredEvent

INVALIDATING_EVENTS = frozenset({"sessions.ended", "user.deactivated", "user.updated"})


@dataclass(slots=True)
class CachedCredential:
    """What a successful authentication established, and until when it may be reused."""

    actor: Actor
    fresh_until: float
    expires_at: datetime | None
    last_touch: datetime


class _UserIdOnly(msgspec.Struct):
    user_id: int | None = None
    user: dict[str, object] | None = None


_decode_user = msgspec.json.Decoder(_UserIdOnly)


class CredentialCache:
    """Token hash -> authenticated actor, bounded in time and size."""

    def __init__(self, *, ttl: float = 30.0, capacity: int = 100_000) -> None:
        self.ttl = ttl
        self.capacity = capacity
        self._entries: dict[str, CachedCredential] = {}
        self._by_user: dict[int, set[str]] = {}

    def get(self, token_hash: str) -> CachedCredential | None:
        """A fresh entry, or None."""
        entry = self._entries.get(token_hash)
        if entry is None:
            return None
        if entry.fresh_until < time.monotonic():
            self._drop(token_hash)
            return None
        return entry

    def put(
        self, token_hash: str, actor: Actor, *, expires_at: datetime | None, last_touch: datetime
    ) -> None:
        """Remember a successful authentication."""
        if len(self._entries) >= self.capacity:
            oldest = next(iter(self._entries))
            self._drop(oldest)
        self._entries[token_hash] = CachedCredential(
            actor=actor,
            fresh_until=time.monotonic() + self.ttl,
            expires_at=expires_at,
            last_touch=last_touch,
        )
        self._by_user.setdefault(actor.user_id, set()).add(token_hash)

    def forget(self, token_hash: str) -> None:
        """Drop one entry."""
        self._drop(token_hash)

    def forget_user(self, user_id: int) -> None:
        """Drop every entry of a user."""
        for token_hash in self._by_user.pop(user_id, set()):
            self._entries.pop(token_hash, None)

    def on_event(self, event: StoredEvent) -> None:
        """Event-stream listener: credentials of the user named by the event are stale."""
        if event.type not in INVALIDATING_EVENTS:
            return
        try:
            decoded = _decode_user.decode(event.payload)
        except msgspec.DecodeError:
            self._entries.clear()
            self._by_user.clear()
            return
        user_id = decoded.user_id
        if user_id is None and decoded.user is not None:
            raw = decoded.user.get("id")
            user_id = raw if isinstance(raw, int) else None
        if user_id is not None:
            self.forget_user(user_id)

    def _drop(self, token_hash: str) -> None:
        entry = self._entries.pop(token_hash, None)
        if entry is not None:
            hashes = self._by_user.get(entry.actor.user_id)
            if hashes is not None:
                hashes.discard(token_hash)
                if not hashes:
                    del self._by_user[entry.actor.user_id]
