"""Signing in and out, authenticating requests, sessions and access tokens."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime

from courtyard.auth.password_rules import check_password
from courtyard.auth.tokens import SecretKind, hash_secret, new_secret
from courtyard.domain.audit import Details
from courtyard.domain.errors import InvalidInput, NotFound, PermissionDenied, Unauthenticated
from courtyard.domain.events import Audience, UserUpdated, sessions_ended
from courtyard.domain.users import Actor, Session, User
from courtyard.services.audit import FAILURE, note
from courtyard.services.authentication import Authenticator
from courtyard.services.context import ServiceContext
from courtyard.services.credential_cache import CredentialCache
from courtyard.services.guard import Guard
from courtyard.services.second_factor import (
    SecondFactorProof,
    check_second_factor,
)
from courtyard.services.session_limits import SessionSweeper
from courtyard.storage.repositories.users import UserRecord
from courtyard.storage.unit_of_work import UnitOfWork

logger = logging.getLogger(__name__)

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
    # The password passed but the second factor is still to come: the secret only allows
    # POST /api/v1/auth/sign-in/second-factor.
    second_factor_required: bool = False


class Sessions:
    """Authentication and credentials."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx
        self.cache = CredentialCache()
        self.guard = Guard(ctx)
        self.sweeper = SessionSweeper(ctx, self.announce_ended, self.guard)
        self._authenticator = Authenticator(ctx, self.cache, self.sweeper.end_expired)

    def forget_user(self, user_id: int) -> None:
        """Credentials of this user changed: authenticate them afresh from now on."""
        self.cache.forget_user(user_id)

    # --- signing in -----------------------------------------------------------------------
    async def sign_in(self, login: str, password: str, client: ClientInfo) -> SignedIn:
        """Check a username-or-email and password and open a session (a pending one when
        the user has a second factor).

        Unknown names cost the same hashing time as wrong passwords, get the same answer, and
        are throttled the same way (counters are keyed by the name as typed).
        """
        if "\x00" in login or "\x00" in password or len(login) > 254 or len(password) > 1024:
            raise Unauthenticated(INVALID_CREDENTIALS, code="invalid_credentials")
        keys = self.guard.password_keys(login, client.ip_address)
        counted = await self.guard.check(keys)
        async with self._ctx.storage.snapshot() as uow:
            record = await uow.users.by_login(login)
            # Asked for unknown names too (id 0 matches nothing): the same queries either way.
            has_second_factor = await uow.two_factor.enabled_for(record.id if record else 0)
        # An empty stored hash means "no password", exactly like NULL (never the decoy's).
        stored_hash = (record.password_hash or None) if record else None
        verified = await self._ctx.passwords.verify(stored_hash, password)
        if not verified or record is None or record.is_bot:
            reason = "bot account" if record and record.is_bot else "wrong password"
            await self._failed_sign_in(login, record, client, reason)
            await self.guard.failed(
                keys,
                ip=client.ip_address,
                user_agent=client.user_agent,
                subject=f"user:{record.id}" if record else None,
            )
            raise Unauthenticated(INVALID_CREDENTIALS, code="invalid_credentials")
        if not record.is_active:
            await self._failed_sign_in(login, record, client, "account deactivated")
            raise Unauthenticated("this account is deactivated", code="account_deactivated")
        if counted:
            await self.guard.succeeded(keys[0].key)
        assert stored_hash is not None
        if self._ctx.passwords.needs_rehash(stored_hash):
            new_hash = await self._ctx.passwords.hash(password)
            async with self._ctx.storage.transaction() as uow:
                await uow.users.rehash_password(record.id, new_hash)
        return await self.start_session(record.id, client, pending=has_second_factor)

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

    async def start_session(
        self, user_id: int, client: ClientInfo, *, pending: bool = False
    ) -> SignedIn:
        """Open a new session for a user whose password was verified (a fresh id and secret:
        no session fixation). ``pending``: the second factor is still to come."""
        async with self._ctx.storage.transaction() as uow:
            record = await uow.users.get(user_id)
            assert record is not None
            return await self._open_session(uow, record, client, pending=pending)

    async def _open_session(
        self, uow: UnitOfWork, record: UserRecord, client: ClientInfo, *, pending: bool
    ) -> SignedIn:
        now = self._ctx.clock()
        security = self._ctx.policy.security
        secret = new_secret(SecretKind.SESSION)
        if pending:
            expires_at = now + security.pending_sign_in_lifetime
        else:
            expires_at = now + min(
                self._ctx.policy.session_lifetime, security.limits_for(record.role).lifetime
            )
        session = await uow.credentials.insert_session(
            user_id=record.id,
            token_hash=hash_secret(secret),
            now=now,
            expires_at=expires_at,
            user_agent=client.user_agent,
            ip_address=client.ip_address,
            state="pending" if pending else "active",
            reauthenticated_at=None if pending else now,
        )
        note(
            uow,
            self._ctx,
            Actor(user_id=record.id, username=record.username, role=record.role),
            "auth.password_verified" if pending else "auth.sign_in",
            target=f"session:{session.id}",
            ip=client.ip_address,
            user_agent=client.user_agent,
            details={"second_factor": "pending"} if pending else {},
        )
        return SignedIn(
            user=record.public(include_email=True),
            session_id=session.id,
            secret=secret,
            expires_at=expires_at,
            second_factor_required=pending,
        )

    async def complete_sign_in(
        self, pending_secret: str, proof: SecondFactorProof, client: ClientInfo
    ) -> SignedIn:
        """Finish a two-step sign-in: the pending session is replaced by a new, signed-in one
        (new id, new secret) once a TOTP or recovery code passes."""
        proof = proof.validated()
        now = self._ctx.clock()
        async with self._ctx.storage.snapshot() as uow:
            pending = await uow.credentials.session_by_hash(hash_secret(pending_secret))
        if pending is None or not pending.pending or pending.expires_at <= now:
            raise Unauthenticated(
                "this sign-in has expired; sign in with your password again",
                code="sign_in_expired",
            )
        keys = self.guard.second_factor_keys(pending.user_id)
        counted = await self.guard.check(keys)
        async with self._ctx.storage.transaction() as uow:
            record = await uow.users.get(pending.user_id)
            method = await check_second_factor(self._ctx, uow, pending.user_id, proof)
            if method is not None and record is not None and record.is_active:
                # Insert first: SQLite would hand a just-freed highest id out again.
                signed_in = await self._open_session(uow, record, client, pending=False)
                await uow.credentials.delete_sessions([pending.id])
                left = await uow.two_factor.recovery_codes_left(record.id)
                actor = Actor(user_id=record.id, username=record.username, role=record.role)
                note(
                    uow,
                    self._ctx,
                    actor,
                    "auth.second_factor",
                    target=f"session:{signed_in.session_id}",
                    ip=client.ip_address,
                    user_agent=client.user_agent,
                    details={"method": method},
                )
                if method == "recovery_code":
                    note(
                        uow,
                        self._ctx,
                        actor,
                        "two_factor.recovery_code_used",
                        target=f"user:{record.id}",
                        ip=client.ip_address,
                        user_agent=client.user_agent,
                        details={"remaining": left},
                    )
        if method is None or record is None or not record.is_active:
            await self._audit_code_failure(pending.user_id, "auth.second_factor", client)
            await self.guard.failed(
                keys,
                ip=client.ip_address,
                user_agent=client.user_agent,
                subject=f"user:{pending.user_id}",
            )
            raise Unauthenticated("the code is wrong or was already used", code="invalid_code")
        if counted:
            await self.guard.succeeded(keys[0].key)
        return signed_in

    async def _audit_code_failure(self, user_id: int, action: str, client: ClientInfo) -> None:
        async with self._ctx.storage.transaction() as uow:
            note(
                uow,
                self._ctx,
                None,
                action,
                target=f"user:{user_id}",
                outcome=FAILURE,
                ip=client.ip_address,
                user_agent=client.user_agent,
            )

    async def reauthenticate(
        self, actor: Actor, password: str | None, proof: SecondFactorProof | None
    ) -> None:
        """Prove again who you are (password, or a code when you have a second factor);
        sensitive actions accept the session for a while afterwards."""
        if actor.session_id is None:
            raise PermissionDenied(
                "only a signed-in session can re-authenticate", code="session_required"
            )
        if (password is None) == (proof is None):
            raise InvalidInput(
                "give either password or a code", field="password", code="one_proof_required"
            )
        client = ClientInfo(user_agent=actor.user_agent, ip_address=actor.ip)
        if password is not None:
            keys = self.guard.password_keys(actor.username, "")
        else:
            keys = self.guard.second_factor_keys(actor.user_id)
        counted = await self.guard.check(keys)
        ok = False
        async with self._ctx.storage.transaction() as uow:
            if password is not None:
                record = await uow.users.get(actor.user_id)
                ok = record is not None and await self._ctx.passwords.verify(
                    record.password_hash or None, password
                )
            else:
                assert proof is not None
                ok = (
                    await check_second_factor(self._ctx, uow, actor.user_id, proof.validated())
                    is not None
                )
            if ok:
                await uow.credentials.set_reauthenticated(actor.session_id, now=self._ctx.clock())
                note(
                    uow,
                    self._ctx,
                    actor,
                    "auth.reauthenticated",
                    target=f"session:{actor.session_id}",
                )
        if not ok:
            await self._audit_code_failure(actor.user_id, "auth.reauthenticated", client)
            await self.guard.failed(
                keys, ip=actor.ip, user_agent=actor.user_agent, subject=f"user:{actor.user_id}"
            )
            raise PermissionDenied(
                "that password or code is not right", code="reauthentication_failed"
            )
        if counted:
            await self.guard.succeeded(keys[0].key)

    # --- authenticating requests and session limits ---------------------------------------
    async def authenticate(self, secret: str) -> Actor:
        """Resolve a session or token secret to the acting user, or raise Unauthenticated."""
        return await self._authenticator.authenticate(secret)

    async def expire_sessions(self) -> int:
        """End every session past its idle or absolute limit; returns how many ended."""
        return await self.sweeper.expire_sessions()

    async def start(self) -> None:
        """Start the periodic sweep of expired sessions."""
        await self.sweeper.start()

    async def stop(self) -> None:
        """Stop the sweep."""
        await self.sweeper.stop()

    # --- ending sessions -----------------------------------------------------------------
    def announce_ended(
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

    async def sign_out(self, actor: Actor) -> None:
        """End the session the request came with."""
        if actor.session_id is None:
            raise InvalidInput(
                "only a session can sign out; revoke tokens instead", code="not_a_session"
            )
        async with self._ctx.storage.transaction() as uow:
            if await uow.credentials.delete_session(actor.session_id, user_id=actor.user_id):
                self.announce_ended(uow, actor.user_id, [actor.session_id], None, "signed out")
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
            self.announce_ended(uow, actor.user_id, [session_id], None, "session revoked")
            note(uow, self._ctx, actor, "auth.session_revoked", target=f"session:{session_id}")

    async def sign_out_everywhere(self, actor: Actor) -> int:
        """End every session of the actor except the current one; returns how many ended."""
        async with self._ctx.storage.transaction() as uow:
            ended = await uow.credentials.delete_sessions_of(
                actor.user_id, except_id=actor.session_id
            )
            self.announce_ended(uow, actor.user_id, ended, None, "signed out everywhere")
            note(
                uow,
                self._ctx,
                actor,
                "auth.signed_out_everywhere",
                target=f"user:{actor.user_id}",
                details={"sessions_ended": len(ended)},
            )
        return len(ended)

    async def sign_out_all(self, actor: Actor) -> int:
        """End every session of the actor, this one included; returns how many ended."""
        async with self._ctx.storage.transaction() as uow:
            ended = await uow.credentials.delete_sessions_of(actor.user_id)
            self.announce_ended(uow, actor.user_id, ended, None, "signed out everywhere")
            note(
                uow,
                self._ctx,
                actor,
                "auth.signed_out_everywhere",
                target=f"user:{actor.user_id}",
                details={"sessions_ended": len(ended), "including_this_one": True},
            )
        return len(ended)

    async def change_password(self, actor: Actor, current: str, new: str) -> None:
        """Replace the password after checking the current one; other sessions end."""
        async with self._ctx.storage.snapshot() as uow:
            record = await uow.users.get(actor.user_id)
        assert record is not None
        keys = self.guard.password_keys(record.username, "")
        await self.guard.check(keys)
        if not await self._ctx.passwords.verify(record.password_hash or None, current):
            await self.guard.failed(
                keys, ip=actor.ip, user_agent=actor.user_agent, subject=f"user:{actor.user_id}"
            )
            raise PermissionDenied("the current password is wrong", code="wrong_password")
        check_new_password(self._ctx, new, record)
        new_hash = await self._ctx.passwords.hash(new)
        async with self._ctx.storage.transaction() as uow:
            await uow.users.set_password_hash(actor.user_id, new_hash, now=self._ctx.clock())
            ended = await uow.credentials.delete_sessions_of(
                actor.user_id, except_id=actor.session_id
            )
            self.announce_ended(uow, actor.user_id, ended, None, "password changed")
            note(uow, self._ctx, actor, "auth.password_changed", target=f"user:{actor.user_id}")


def profile_event(record: UserRecord) -> tuple[UserUpdated, Audience]:
    """The event announcing a profile change (emails are never broadcast)."""
    return UserUpdated(user=record.public(include_email=False)), Audience(all_members=True)


def check_new_password(ctx: ServiceContext, password: str, record: UserRecord | None = None) -> str:
    """A new password that passes the organisation's rules (InvalidInput naming the rule)."""
    inputs = (record.username, record.email or "", record.display_name) if record else ()
    return check_password(
        password,
        min_length=ctx.policy.password_min_length,
        min_strength=ctx.policy.security.password_min_strength,
        user_inputs=inputs,
    )
