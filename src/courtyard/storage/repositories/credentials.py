"""Sessions, access tokens, invites and setup tokens. Only SHA-256 hashes of secrets are stored."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, or_, select, update

from courtyard.domain.roles import Role
from courtyard.domain.users import AccessToken, Invite, Session
from courtyard.storage.repositories._base import Repository
from courtyard.storage.schema import access_tokens, invites, sessions, setup_tokens, users
from courtyard.storage.timestamps import (
    from_micros,
    maybe_from_micros,
    maybe_to_micros,
    to_micros,
)


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A stored session."""

    id: int
    user_id: int
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    user_agent: str
    ip_address: str
    state: str = "active"
    reauthenticated_at: datetime | None = None

    @property
    def pending(self) -> bool:
        """Waiting for the second factor: authenticates nothing."""
        return self.state != "active"

    def public(self, *, current_id: int | None) -> Session:
        """The session as its owner sees it in "your sessions"."""
        return Session(
            id=self.id,
            created_at=self.created_at,
            last_seen_at=self.last_seen_at,
            expires_at=self.expires_at,
            user_agent=self.user_agent,
            ip_address=self.ip_address,
            current=self.id == current_id,
        )


def _session(row: Row[Any]) -> SessionRecord:
    return SessionRecord(
        id=row.id,
        user_id=row.user_id,
        created_at=from_micros(row.created_at),
        last_seen_at=from_micros(row.last_seen_at),
        expires_at=from_micros(row.expires_at),
        user_agent=row.user_agent,
        ip_address=row.ip_address,
        state=row.state,
        reauthenticated_at=maybe_from_micros(row.reauthenticated_at),
    )


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """A stored personal access token or bot token."""

    id: int
    user_id: int
    created_by: int
    name: str
    prefix: str
    scopes: frozenset[str]
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None

    def public(self) -> AccessToken:
        """Token metadata as shown to its owner."""
        return AccessToken(
            id=self.id,
            user_id=self.user_id,
            name=self.name,
            scopes=sorted(self.scopes),
            created_at=self.created_at,
            last_used_at=self.last_used_at,
            expires_at=self.expires_at,
            prefix=self.prefix,
        )


def _token(row: Row[Any]) -> TokenRecord:
    return TokenRecord(
        id=row.id,
        user_id=row.user_id,
        created_by=row.created_by,
        name=row.name,
        prefix=row.prefix,
        scopes=frozenset(row.scopes.split()),
        created_at=from_micros(row.created_at),
        last_used_at=maybe_from_micros(row.last_used_at),
        expires_at=maybe_from_micros(row.expires_at),
        revoked_at=maybe_from_micros(row.revoked_at),
    )


@dataclass(frozen=True, slots=True)
class InviteRecord:
    """A stored invite."""

    id: int
    role: Role
    email: str | None
    created_by: int
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None
    revoked_at: datetime | None

    def public(self) -> Invite:
        """Invite metadata as admins see it."""
        return Invite(
            id=self.id,
            role=self.role,
            email=self.email,
            created_by=self.created_by,
            created_at=self.created_at,
            expires_at=self.expires_at,
            used_at=self.used_at,
            revoked=self.revoked_at is not None,
        )


def _invite(row: Row[Any]) -> InviteRecord:
    return InviteRecord(
        id=row.id,
        role=Role(row.role),
        email=row.email,
        created_by=row.created_by,
        created_at=from_micros(row.created_at),
        expires_at=from_micros(row.expires_at),
        used_at=maybe_from_micros(row.used_at),
        revoked_at=maybe_from_micros(row.revoked_at),
    )


class CredentialRepository(Repository):
    """Reads and writes of sessions, tokens, invites and setup tokens."""

    # --- sessions -------------------------------------------------------------------------
    async def insert_session(
        self,
        *,
        user_id: int,
        token_hash: str,
        now: datetime,
        expires_at: datetime,
        user_agent: str,
        ip_address: str,
        state: str = "active",
        reauthenticated_at: datetime | None = None,
    ) -> SessionRecord:
        """Store a new session (``state`` 'pending' until a second factor is given)."""
        result = await self.conn.execute(
            sessions.insert()
            .values(
                user_id=user_id,
                token_hash=token_hash,
                created_at=to_micros(now),
                last_seen_at=to_micros(now),
                expires_at=to_micros(expires_at),
                user_agent=user_agent[:256],
                ip_address=ip_address[:64],
                state=state,
                reauthenticated_at=maybe_to_micros(reauthenticated_at),
            )
            .returning(sessions)
        )
        return _session(result.one())

    async def session_by_hash(self, token_hash: str) -> SessionRecord | None:
        """The session whose token hashes to ``token_hash``."""
        row = (
            await self.conn.execute(select(sessions).where(sessions.c.token_hash == token_hash))
        ).first()
        return _session(row) if row else None

    async def touch_session(self, session_id: int, *, now: datetime) -> None:
        """Record activity on a session."""
        await self.conn.execute(
            update(sessions).where(sessions.c.id == session_id).values(last_seen_at=to_micros(now))
        )

    async def set_reauthenticated(self, session_id: int, *, now: datetime) -> None:
        """Record a fresh password or second-factor proof on a session."""
        await self.conn.execute(
            update(sessions)
            .where(sessions.c.id == session_id)
            .values(reauthenticated_at=to_micros(now), last_seen_at=to_micros(now))
        )

    async def get_session(self, session_id: int) -> SessionRecord | None:
        """A session by id."""
        row = (await self.conn.execute(select(sessions).where(sessions.c.id == session_id))).first()
        return _session(row) if row else None

    async def sessions_of(self, user_id: int) -> list[SessionRecord]:
        """Every signed-in session of a user, newest first (pending sign-ins left out)."""
        rows = await self.conn.execute(
            select(sessions)
            .where(sessions.c.user_id == user_id, sessions.c.state == "active")
            .order_by(sessions.c.id.desc())
        )
        return [_session(row) for row in rows]

    async def sessions_past_limits(
        self,
        *,
        now: datetime,
        idle_cutoffs: dict[str, datetime],
        created_cutoffs: dict[str, datetime],
        limit: int = 1000,
    ) -> list[tuple[int, int]]:
        """(session id, user id) of sessions expired, idle too long or too old for the
        role their user has now; ``*_cutoffs`` map role names to the oldest allowed time."""
        conditions = [sessions.c.expires_at <= to_micros(now)]
        for role, cutoff in idle_cutoffs.items():
            conditions.append(
                (users.c.role == role) & (sessions.c.last_seen_at < to_micros(cutoff))
            )
        for role, cutoff in created_cutoffs.items():
            old = sessions.c.created_at < to_micros(cutoff)
            conditions.append((users.c.role == role) & old)
        rows = await self.conn.execute(
            select(sessions.c.id, sessions.c.user_id)
            .select_from(sessions.join(users, users.c.id == sessions.c.user_id))
            .where(or_(*conditions))
            .order_by(sessions.c.id)
            .limit(limit)
        )
        return [(int(row.id), int(row.user_id)) for row in rows]

    async def delete_sessions_returning(self, session_ids: list[int]) -> list[tuple[int, int]]:
        """Delete sessions by id; returns (id, user id) of those this call deleted (another
        process may have deleted some first)."""
        if not session_ids:
            return []
        result = await self.conn.execute(
            delete(sessions)
            .where(sessions.c.id.in_(session_ids))
            .returning(sessions.c.id, sessions.c.user_id)
        )
        return [(int(row.id), int(row.user_id)) for row in result]

    async def delete_sessions(self, session_ids: list[int]) -> None:
        """Delete sessions by id."""
        if session_ids:
            await self.conn.execute(delete(sessions).where(sessions.c.id.in_(session_ids)))

    async def delete_session(self, session_id: int, *, user_id: int) -> bool:
        """Delete one of a user's sessions; False if it was not theirs or not there."""
        result = await self.conn.execute(
            delete(sessions).where(sessions.c.id == session_id, sessions.c.user_id == user_id)
        )
        return bool(result.rowcount)

    async def delete_sessions_of(self, user_id: int, *, except_id: int | None = None) -> list[int]:
        """Delete a user's sessions (optionally keeping one); returns the deleted ids."""
        condition = sessions.c.user_id == user_id
        if except_id is not None:
            condition = condition & (sessions.c.id != except_id)
        ids = [row.id for row in await self.conn.execute(select(sessions.c.id).where(condition))]
        if ids:
            await self.conn.execute(delete(sessions).where(sessions.c.id.in_(ids)))
        return ids

    # --- access tokens --------------------------------------------------------------------
    async def insert_token(
        self,
        *,
        user_id: int,
        created_by: int,
        name: str,
        prefix: str,
        token_hash: str,
        scopes: frozenset[str],
        now: datetime,
        expires_at: datetime | None,
    ) -> TokenRecord:
        """Store a new access token."""
        result = await self.conn.execute(
            access_tokens.insert()
            .values(
                user_id=user_id,
                created_by=created_by,
                name=name,
                prefix=prefix,
                token_hash=token_hash,
                scopes=" ".join(sorted(scopes)),
                created_at=to_micros(now),
                expires_at=maybe_to_micros(expires_at),
            )
            .returning(access_tokens)
        )
        return _token(result.one())

    async def token_by_hash(self, token_hash: str) -> TokenRecord | None:
        """The token whose secret hashes to ``token_hash``."""
        row = (
            await self.conn.execute(
                select(access_tokens).where(access_tokens.c.token_hash == token_hash)
            )
        ).first()
        return _token(row) if row else None

    async def get_token(self, token_id: int) -> TokenRecord | None:
        """A token by id."""
        row = (
            await self.conn.execute(select(access_tokens).where(access_tokens.c.id == token_id))
        ).first()
        return _token(row) if row else None

    async def tokens_of(self, user_id: int) -> list[TokenRecord]:
        """A user's live (not revoked) tokens."""
        rows = await self.conn.execute(
            select(access_tokens)
            .where(access_tokens.c.user_id == user_id, access_tokens.c.revoked_at.is_(None))
            .order_by(access_tokens.c.id)
        )
        return [_token(row) for row in rows]

    async def touch_token(self, token_id: int, *, now: datetime) -> None:
        """Record use of a token."""
        await self.conn.execute(
            update(access_tokens)
            .where(access_tokens.c.id == token_id)
            .values(last_used_at=to_micros(now))
        )

    async def revoke_token(self, token_id: int, *, now: datetime) -> None:
        """Revoke a token."""
        await self.conn.execute(
            update(access_tokens)
            .where(access_tokens.c.id == token_id, access_tokens.c.revoked_at.is_(None))
            .values(revoked_at=to_micros(now))
        )

    async def revoke_tokens_of(self, user_id: int, *, now: datetime) -> list[int]:
        """Revoke every token of a user; returns their ids."""
        ids = [
            row.id
            for row in await self.conn.execute(
                select(access_tokens.c.id).where(
                    access_tokens.c.user_id == user_id, access_tokens.c.revoked_at.is_(None)
                )
            )
        ]
        await self.conn.execute(
            update(access_tokens)
            .where(access_tokens.c.user_id == user_id, access_tokens.c.revoked_at.is_(None))
            .values(revoked_at=to_micros(now))
        )
        return ids

    # --- invites --------------------------------------------------------------------------
    async def insert_invite(
        self,
        *,
        token_hash: str,
        role: Role,
        email: str | None,
        created_by: int,
        now: datetime,
        expires_at: datetime,
    ) -> InviteRecord:
        """Store a new invite."""
        result = await self.conn.execute(
            invites.insert()
            .values(
                token_hash=token_hash,
                role=role.value,
                email=email,
                created_by=created_by,
                created_at=to_micros(now),
                expires_at=to_micros(expires_at),
            )
            .returning(invites)
        )
        return _invite(result.one())

    async def invite_by_hash(self, token_hash: str) -> InviteRecord | None:
        """The invite whose secret hashes to ``token_hash``."""
        row = (
            await self.conn.execute(select(invites).where(invites.c.token_hash == token_hash))
        ).first()
        return _invite(row) if row else None

    async def get_invite(self, invite_id: int) -> InviteRecord | None:
        """An invite by id."""
        row = (await self.conn.execute(select(invites).where(invites.c.id == invite_id))).first()
        return _invite(row) if row else None

    async def list_invites(self) -> list[InviteRecord]:
        """Every invite, newest first."""
        rows = await self.conn.execute(select(invites).order_by(invites.c.id.desc()).limit(500))
        return [_invite(row) for row in rows]

    async def use_invite(self, invite_id: int, *, user_id: int, now: datetime) -> bool:
        """Mark an invite used; False if it was used, revoked or expired meanwhile."""
        result = await self.conn.execute(
            update(invites)
            .where(
                invites.c.id == invite_id,
                invites.c.used_at.is_(None),
                invites.c.revoked_at.is_(None),
                invites.c.expires_at > to_micros(now),
            )
            .values(used_at=to_micros(now), used_by=user_id)
        )
        return bool(result.rowcount)

    async def revoke_invite(self, invite_id: int, *, now: datetime) -> None:
        """Revoke an invite."""
        await self.conn.execute(
            update(invites).where(invites.c.id == invite_id).values(revoked_at=to_micros(now))
        )

    # --- setup tokens ---------------------------------------------------------------------
    async def replace_setup_token(
        self, token_hash: str, *, now: datetime, expires_at: datetime
    ) -> None:
        """Make ``token_hash`` the only valid setup token."""
        await self.conn.execute(delete(setup_tokens))
        await self.conn.execute(
            setup_tokens.insert().values(
                token_hash=token_hash, created_at=to_micros(now), expires_at=to_micros(expires_at)
            )
        )

    async def setup_token_valid(self, token_hash: str, *, now: datetime) -> bool:
        """Whether ``token_hash`` is a live setup token."""
        row = (
            await self.conn.execute(
                select(setup_tokens.c.id).where(
                    setup_tokens.c.token_hash == token_hash,
                    setup_tokens.c.expires_at > to_micros(now),
                )
            )
        ).first()
        return row is not None

    async def clear_setup_tokens(self) -> None:
        """Setup is done: no token is valid any more."""
        await self.conn.execute(delete(setup_tokens))
