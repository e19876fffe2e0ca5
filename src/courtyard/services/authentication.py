"""Authenticating requests: a session or token secret to the acting user.

Sessions are checked against their role's idle and absolute limits and refused while a second
factor is pending; users whom the organisation requires to enrol in two-factor authentication
are marked so that the API lets them do nothing else. Results are cached per process
(``CredentialCache``) without ever extending a session.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from courtyard.auth.tokens import SecretKind, hash_secret, kind_of
from courtyard.domain.errors import Unauthenticated
from courtyard.domain.users import SCOPES, Actor
from courtyard.services.context import ServiceContext
from courtyard.services.credential_cache import CredentialCache
from courtyard.storage.repositories.users import UserRecord

ExpiredCallback = Callable[[int, list[int], str], Awaitable[None]]


class Authenticator:
    """Resolves secrets to actors, with the per-process credential cache."""

    def __init__(
        self, ctx: ServiceContext, cache: CredentialCache, on_expired: ExpiredCallback
    ) -> None:
        self._ctx = ctx
        self.cache = cache
        self._on_expired = on_expired

    async def authenticate(self, secret: str) -> Actor:
        """Resolve a session or token secret to the acting user, or raise Unauthenticated."""
        kind = kind_of(secret)
        token_hash = hash_secret(secret)
        cached = self.cache.get(token_hash)
        if cached is not None:
            now = self._ctx.clock()
            idle = self._idle_limit(cached.actor)
            live = cached.expires_at is None or cached.expires_at > now
            # Unused here for longer than the idle limit: ask the database, where other
            # workers record their activity too.
            fresh = idle is None or now - cached.last_touch <= idle
            if live and fresh:
                interval = self._touch_interval(cached.actor)
                if now - cached.last_touch > interval:
                    cached.last_touch = now
                    await self._touch(cached.actor, now)
                return cached.actor
            self.cache.forget(token_hash)
        if kind is SecretKind.SESSION:
            return await self._authenticate_session(secret)
        if kind in (SecretKind.PERSONAL_TOKEN, SecretKind.BOT_TOKEN):
            return await self._authenticate_token(secret)
        raise Unauthenticated("invalid credentials", code="invalid_token")

    def _idle_limit(self, actor: Actor) -> timedelta | None:
        if actor.session_id is None:
            return None
        return self._ctx.policy.security.limits_for(actor.role).idle

    def _touch_interval(self, actor: Actor) -> timedelta:
        return self._ctx.policy.security.touch_interval(
            actor.role, self._ctx.policy.session_touch_interval
        )

    async def _authenticate_session(self, secret: str) -> Actor:
        now = self._ctx.clock()
        async with self._ctx.storage.snapshot() as uow:
            session = await uow.credentials.session_by_hash(hash_secret(secret))
            user = await uow.users.get(session.user_id) if session else None
            enrolled = bool(user) and await uow.two_factor.enabled_for(user.id if user else 0)
        if session is None or user is None or session.expires_at <= now:
            raise Unauthenticated("the session has expired; sign in again", code="session_expired")
        if session.pending:
            raise Unauthenticated(
                "finish signing in with your second factor first", code="second_factor_required"
            )
        if not user.is_active:
            raise Unauthenticated("this account is deactivated", code="account_deactivated")
        limits = self._ctx.policy.security.limits_for(user.role)
        idle_out = limits.idle is not None and now - session.last_seen_at > limits.idle
        if idle_out or now - session.created_at >= limits.lifetime:
            await self._on_expired(user.id, [session.id], "idle" if idle_out else "lifetime")
            raise Unauthenticated("the session has expired; sign in again", code="session_expired")
        actor = Actor(
            user_id=user.id,
            username=user.username,
            role=user.role,
            is_bot=user.is_bot,
            session_id=session.id,
            scopes=SCOPES,
            enrolment_required=self._must_enrol(user, enrolled),
        )
        if now - session.last_seen_at > self._touch_interval(actor):
            await self._touch(actor, now)
        self.cache.put(hash_secret(secret), actor, expires_at=session.expires_at, last_touch=now)
        return actor

    def _must_enrol(self, user: UserRecord, enrolled: bool) -> bool:
        required = self._ctx.policy.security.requires_two_factor(user.role, is_bot=user.is_bot)
        return required and not enrolled

    async def _authenticate_token(self, secret: str) -> Actor:
        now = self._ctx.clock()
        async with self._ctx.storage.snapshot() as uow:
            token = await uow.credentials.token_by_hash(hash_secret(secret))
            user = await uow.users.get(token.user_id) if token else None
            enrolled = bool(user) and await uow.two_factor.enabled_for(user.id if user else 0)
        if token is None or user is None or token.revoked_at is not None:
            raise Unauthenticated("invalid credentials", code="invalid_token")
        if token.expires_at is not None and token.expires_at <= now:
            raise Unauthenticated("the token has expired", code="token_expired")
        if not user.is_active:
            raise Unauthenticated("this account is deactivated", code="account_deactivated")
        actor = Actor(
            user_id=user.id,
            username=user.username,
            role=user.role,
            is_bot=user.is_bot,
            token_id=token.id,
            scopes=token.scopes,
            enrolment_required=self._must_enrol(user, enrolled),
        )
        if (
            token.last_used_at is None
            or now - token.last_used_at > self._ctx.policy.session_touch_interval
        ):
            await self._touch(actor, now)
        self.cache.put(hash_secret(secret), actor, expires_at=token.expires_at, last_touch=now)
        return actor

    async def _touch(self, actor: Actor, now: datetime) -> None:
        """Record activity ("last seen"), at most once per touch interval per credential."""
        async with self._ctx.storage.transaction() as uow:
            if actor.session_id is not None:
                await uow.credentials.touch_session(actor.session_id, now=now)
            elif actor.token_id is not None:
                await uow.credentials.touch_token(actor.token_id, now=now)
