"""Signing in and out, authenticating requests, sessions and access tokens."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from courtyard.auth.tokens import SecretKind, display_prefix, hash_secret, kind_of, new_secret
from courtyard.domain.audit import Details
from courtyard.domain.errors import InvalidInput, NotFound, PermissionDenied, Unauthenticated
from courtyard.domain.events import Audience, UserUpdated, sessions_ended
from courtyard.domain.text import clean_name, clean_password
from courtyard.domain.users import SCOPES, AccessToken, Actor, Session, User
from courtyard.services.audit import FAILURE, note
from courtyard.services.context import ServiceContext
from courtyard.services.credential_cache import CredentialCache
from courtyard.storage.repositories.users import UserRecord
from courtyard.storage.unit_of_work import UnitOfWork

INVALID_CREDENTIALS = "invalid username or password"


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """Where a sign-in comes from, kept on the session for "your sessions"."""

    user_agent: str = ""
    ip_address: str = ""


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A new session: the secret is handed to the client once and never stored."""

    user: User
    session_id: int
    secret: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A new access token; ``secret`` is shown once."""

    token: AccessToken
    secret: str


class Sessions:
    """Authentication and credentials."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx
        self.cache = CredentialCache()

    def forget_user(self, user_id: int) -> None:
        """Credentials of this user changed: authenticate them afresh from now on."""
        self.cache.forget_user(user_id)

    async def sign_in(self, login: str, password: str, client: ClientInfo) -> SignedIn:
        """Check a username-or-email and password and open a session.

        Unknown names cost the same hashing time as wrong passwords, and get the same answer.
        """
        if "\x00" in login or "\x00" in password or len(login) > 254 or len(password) > 1024:
            raise Unauthenticated(INVALID_CREDENTIALS, code="invalid_credentials")
        async with self._ctx.storage.snapshot() as uow:
            record = await uow.users.by_login(login)
        # An empty stored hash means "no password", exactly like NULL (never the decoy's).
        stored_hash = (record.password_hash or None) if record else None
        if not await self._ctx.passwords.verify(stored_hash, password) or record is None:
            await self._failed_sign_in(login, record, client, "wrong password or unknown account")
            raise Unauthenticated(INVALID_CREDENTIALS, code="invalid_credentials")
        if not record.is_active:
            await self._failed_sign_in(login, record, client, "account deactivated")
            raise Unauthenticated("this account is deactivated", code="account_deactivated")
        if record.is_bot:
            await self._failed_sign_in(login, record, client, "bot account")
            raise Unauthenticated(INVALID_CREDENTIALS, code="invalid_credentials")
        assert stored_hash is not None
        if self._ctx.passwords.needs_rehash(stored_hash):
            new_hash = await self._ctx.passwords.hash(password)
            async with self._ctx.storage.transaction() as uow:
                await uow.users.rehash_password(record.id, new_hash)
        return await self.start_session(record.id, client)

    async def _failed_sign_in(
        self, login: str, record: UserRecord | None, client: ClientInfo, reason: str
    ) -> None:
        """Audit a refused sign-in. An unknown login is stored only as a short hash: people
        sometimes type their password into the name field."""
        details: Details = {"reason": reason}
        if record is None:
            details["login_sha256"] = hashlib.sha256(login.encode("utf-8", "replace")).hexdigest()[
                :16
            ]
        async with self._ctx.storage.transaction() as uow:
            note(
                uow,
                self._ctx,
                None,
                "auth.sign_in",
                target=f"user:{record.id}" if record else "unknown account",
                outcome=FAILURE,
                ip=client.ip_address,
                user_agent=client.user_agent,
                details=details,
            )

    async def start_session(self, user_id: int, client: ClientInfo) -> SignedIn:
        """Open a new session for an already-verified user (fresh id: no session fixation)."""
        now = self._ctx.clock()
        secret = new_secret(SecretKind.SESSION)
        expires_at = now + self._ctx.policy.session_lifetime
        async with self._ctx.storage.transaction() as uow:
            record = await uow.users.get(user_id)
            assert record is not None
            session = await uow.credentials.insert_session(
                user_id=user_id,
                token_hash=hash_secret(secret),
                now=now,
                expires_at=expires_at,
                user_agent=client.user_agent,
                ip_address=client.ip_address,
            )
            note(
                uow,
                self._ctx,
                Actor(user_id=record.id, username=record.username, role=record.role),
                "auth.sign_in",
                target=f"session:{session.id}",
                ip=client.ip_address,
                user_agent=client.user_agent,
            )
        return SignedIn(
            user=record.public(include_email=True),
            session_id=session.id,
            secret=secret,
            expires_at=expires_at,
        )

    async def authenticate(self, secret: str) -> Actor:
        """Resolve a session or token secret to the acting user, or raise Unauthenticated."""
        kind = kind_of(secret)
        token_hash = hash_secret(secret)
        cached = self.cache.get(token_hash)
        if cached is not None:
            now = self._ctx.clock()
            if cached.expires_at is None or cached.expires_at > now:
                if now - cached.last_touch > self._ctx.policy.session_touch_interval:
                    cached.last_touch = now
                    await self._touch(cached.actor, now)
                return cached.actor
            self.cache.forget(token_hash)
        if kind is SecretKind.SESSION:
            return await self._authenticate_session(secret)
        if kind in (SecretKind.PERSONAL_TOKEN, SecretKind.BOT_TOKEN):
            return await self._authenticate_token(secret)
        raise Unauthenticated("invalid credentials", code="invalid_token")

    async def _authenticate_session(self, secret: str) -> Actor:
        now = self._ctx.clock()
        async with self._ctx.storage.snapshot() as uow:
            session = await uow.credentials.session_by_hash(hash_secret(secret))
            user = await uow.users.get(session.user_id) if session else None
        if session is None or user is None or session.expires_at <= now:
            raise Unauthenticated("the session has expired; sign in again", code="session_expired")
        if not user.is_active:
            raise Unauthenticated("this account is deactivated", code="account_deactivated")
        actor = Actor(
            user_id=user.id,
            username=user.username,
            role=user.role,
            is_bot=user.is_bot,
            session_id=session.id,
            scopes=SCOPES,
        )
        if now - session.last_seen_at > self._ctx.policy.session_touch_interval:
            await self._touch(actor, now)
        self.cache.put(hash_secret(secret), actor, expires_at=session.expires_at, last_touch=now)
        return actor

    async def _authenticate_token(self, secret: str) -> Actor:
        now = self._ctx.clock()
        async with self._ctx.storage.snapshot() as uow:
            token = await uow.credentials.token_by_hash(hash_secret(secret))
            user = await uow.users.get(token.user_id) if token else None
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
        )
        if (
            token.last_used_at is None
            or now - token.last_used_at > self._ctx.policy.session_touch_interval
        ):
            await self._touch(actor, now)
        self.cache.put(hash_secret(secret), actor, expires_at=token.expires_at, last_touch=now)
        return actor

    def _announce(
        self,
        uow: UnitOfWork,
        user_id: int,
        session_ids: list[int] | None,
        token_ids: list[int] | None,
        reason: str,
    ) -> None:
        """Queue the event that closes sockets opened with the ended credentials, and forget
        the user's cached credentials once the change has committed."""
        uow.after_commit(lambda: self.cache.forget_user(user_id))
        if session_ids == [] and not token_ids:
            return
        uow.outbox.append(
            *sessions_ended(
                user_id, session_ids=session_ids or [], token_ids=token_ids or [], reason=reason
            )
        )

    async def _touch(self, actor: Actor, now: datetime) -> None:
        """Record activity ("last seen"), at most once per touch interval per credential."""
        async with self._ctx.storage.transaction() as uow:
            if actor.session_id is not None:
                await uow.credentials.touch_session(actor.session_id, now=now)
            elif actor.token_id is not None:
                await uow.credentials.touch_token(actor.token_id, now=now)

    async def sign_out(self, actor: Actor) -> None:
        """End the session the request came with."""
        if actor.session_id is None:
            raise InvalidInput(
                "only a session can sign out; revoke tokens instead", code="not_a_session"
            )
        async with self._ctx.storage.transaction() as uow:
            if await uow.credentials.delete_session(actor.session_id, user_id=actor.user_id):
                self._announce(uow, actor.user_id, [actor.session_id], None, "signed out")
                note(uow, self._ctx, actor, "auth.sign_out", target=f"session:{actor.session_id}")

    async def list_sessions(self, actor: Actor) -> list[Session]:
        """The actor's sessions, marking the current one."""
        async with self._ctx.storage.snapshot() as uow:
            records = await uow.credentials.sessions_of(actor.user_id)
        return [record.public(current_id=actor.session_id) for record in records]

    async def revoke_session(self, actor: Actor, session_id: int) -> None:
        """End one of the actor's own sessions."""
        async with self._ctx.storage.transaction() as uow:
            if not await uow.credentials.delete_session(session_id, user_id=actor.user_id):
                raise NotFound("session not found")
            self._announce(uow, actor.user_id, [session_id], None, "session revoked")
            note(uow, self._ctx, actor, "auth.session_revoked", target=f"session:{session_id}")

    async def sign_out_everywhere(self, actor: Actor) -> int:
        """End every session of the actor except the current one; returns how many ended."""
        async with self._ctx.storage.transaction() as uow:
            ended = await uow.credentials.delete_sessions_of(
                actor.user_id, except_id=actor.session_id
            )
            self._announce(uow, actor.user_id, ended, None, "signed out everywhere")
            note(
                uow,
                self._ctx,
                actor,
                "auth.signed_out_everywhere",
                target=f"user:{actor.user_id}",
                details={"sessions_ended": len(ended)},
            )
        return len(ended)

    async def change_password(self, actor: Actor, current: str, new: str) -> None:
        """Replace the password after checking the current one; other sessions end."""
        async with self._ctx.storage.snapshot() as uow:
            record = await uow.users.get(actor.user_id)
        assert record is not None
        if not await self._ctx.passwords.verify(record.password_hash or None, current):
            raise PermissionDenied("the current password is wrong", code="wrong_password")
        clean_password(new, min_length=self._ctx.policy.password_min_length)
        new_hash = await self._ctx.passwords.hash(new)
        async with self._ctx.storage.transaction() as uow:
            await uow.users.set_password_hash(actor.user_id, new_hash, now=self._ctx.clock())
            ended = await uow.credentials.delete_sessions_of(
                actor.user_id, except_id=actor.session_id
            )
            self._announce(uow, actor.user_id, ended, None, "password changed")
            note(uow, self._ctx, actor, "auth.password_changed", target=f"user:{actor.user_id}")

    async def create_personal_token(
        self, actor: Actor, name: str, scopes: list[str], expires_in_days: int | None
    ) -> IssuedToken:
        """A personal access token acting as the actor, limited to ``scopes``."""
        if actor.is_bot or actor.session_id is None:
            raise PermissionDenied(
                "tokens are created from a signed-in session", code="session_required"
            )
        async with self._ctx.storage.transaction() as uow:
            record = await uow.users.get(actor.user_id)
            assert record is not None
            issued = await issue_token(
                self._ctx,
                uow,
                owner=record,
                created_by=actor.user_id,
                name=name,
                scopes=scopes,
                expires_in_days=expires_in_days,
                kind=SecretKind.PERSONAL_TOKEN,
            )
            note(
                uow,
                self._ctx,
                actor,
                "token.created",
                target=f"token:{issued.token.id}",
                details={"kind": "personal", "scopes": " ".join(issued.token.scopes)},
            )
            return issued

    async def list_tokens(self, actor: Actor) -> list[AccessToken]:
        """The actor's live personal tokens."""
        async with self._ctx.storage.snapshot() as uow:
            return [record.public() for record in await uow.credentials.tokens_of(actor.user_id)]

    async def revoke_token(self, actor: Actor, token_id: int) -> None:
        """Revoke one of the actor's tokens (admins: any bot token too)."""
        async with self._ctx.storage.transaction() as uow:
            token = await uow.credentials.get_token(token_id)
            if token is None or token.revoked_at is not None:
                raise NotFound("token not found")
            owner = await uow.users.get(token.user_id)
            mine = token.user_id == actor.user_id
            admin_on_bot = actor.is_admin and owner is not None and owner.is_bot
            if not (mine or admin_on_bot):
                raise NotFound("token not found")
            await uow.credentials.revoke_token(token_id, now=self._ctx.clock())
            note(
                uow,
                self._ctx,
                actor,
                "token.revoked",
                target=f"token:{token_id}",
                details={"owner_id": token.user_id},
            )
            self._announce(uow, token.user_id, None, [token_id], "token revoked")


async def issue_token(
    ctx: ServiceContext,
    uow: UnitOfWork,
    *,
    owner: UserRecord,
    created_by: int,
    name: str,
    scopes: list[str],
    expires_in_days: int | None,
    kind: SecretKind,
) -> IssuedToken:
    """Create a scoped token for ``owner`` inside an open unit of work."""
    clean = clean_name(name, field="name", max_length=64)
    wanted = frozenset(scopes)
    unknown = wanted - SCOPES
    if unknown or not wanted:
        raise InvalidInput(
            f"scopes must be a non-empty subset of {sorted(SCOPES)}",
            field="scopes",
            code="invalid_scopes",
        )
    if "admin" in wanted and not owner.role.is_admin:
        raise PermissionDenied(
            "only administrators can hold the admin scope", code="admin_required"
        )
    if expires_in_days is not None and not 1 <= expires_in_days <= 3650:
        raise InvalidInput("expires_in_days must be between 1 and 3650", field="expires_in_days")
    now = ctx.clock()
    secret = new_secret(kind)
    record = await uow.credentials.insert_token(
        user_id=owner.id,
        created_by=created_by,
        name=clean,
        prefix=display_prefix(secret),
        token_hash=hash_secret(secret),
        scopes=wanted,
        now=now,
        expires_at=None if expires_in_days is None else now + timedelta(days=expires_in_days),
    )
    return IssuedToken(token=record.public(), secret=secret)


def profile_event(record: UserRecord) -> tuple[UserUpdated, Audience]:
    """The event announcing a profile change (emails are never broadcast)."""
    return UserUpdated(user=record.public(include_email=False)), Audience(all_members=True)
