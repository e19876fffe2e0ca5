"""Two-factor authentication: enrolment with a TOTP app, recovery codes, disabling."""

from __future__ import annotations

from dataclasses import dataclass

from courtyard.auth.totp import (
    hash_recovery_code,
    matching_step,
    new_recovery_codes,
    new_totp_secret,
    provisioning_uri,
    qr_svg,
)
from courtyard.domain.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from courtyard.domain.roles import Role, may_assign_role
from courtyard.domain.users import Actor
from courtyard.services.access import USER_NOT_FOUND, require_admin
from courtyard.services.audit import FAILURE, note
from courtyard.services.context import ServiceContext
from courtyard.services.second_factor import require_recent_authentication
from courtyard.services.sessions import Sessions
from courtyard.storage.unit_of_work import UnitOfWork


@dataclass(frozen=True, slots=True)
class TwoFactorStatus:
    """Whether the user has a second factor, must have one, and codes left."""

    enabled: bool
    required: bool
    enrolment_pending: bool
    recovery_codes_left: int
    reauthentication_required: bool


@dataclass(frozen=True, slots=True)
class Enrolment:
    """What an authenticator app needs; shown once, confirmed with a first code."""

    secret: str
    otpauth_uri: str
    qr_svg: str


class TwoFactor:
    """Enrolment and management of a user's second factor."""

    def __init__(self, ctx: ServiceContext, sessions: Sessions) -> None:
        self._ctx = ctx
        self._sessions = sessions

    async def status(self, actor: Actor) -> TwoFactorStatus:
        """The actor's own second-factor state."""
        async with self._ctx.storage.snapshot() as uow:
            record = await uow.two_factor.get(actor.user_id)
            left = await uow.two_factor.recovery_codes_left(actor.user_id)
            # The same check the sensitive actions make, so a client (or a test) can tell
            # whether the next one will ask for the password or a code.
            try:
                await require_recent_authentication(self._ctx, uow, actor)
                reauthentication_required = False
            except PermissionDenied:
                reauthentication_required = True
        return TwoFactorStatus(
            enabled=bool(record and record.enabled),
            required=self._ctx.policy.security.requires_two_factor(actor.role, is_bot=actor.is_bot),
            enrolment_pending=bool(record and not record.enabled),
            recovery_codes_left=left if record and record.enabled else 0,
            reauthentication_required=reauthentication_required,
        )

    async def begin_enrolment(self, actor: Actor) -> Enrolment:
        """A new TOTP secret for the actor (replacing an unconfirmed one)."""
        _session_only(actor)
        secret = new_totp_secret()
        async with self._ctx.storage.transaction() as uow:
            await require_recent_authentication(self._ctx, uow, actor)
            existing = await uow.two_factor.get(actor.user_id)
            if existing is not None and existing.enabled:
                raise Conflict(
                    "two-factor authentication is already on; disable it first to change devices",
                    code="two_factor_already_enabled",
                )
            await uow.two_factor.start(
                actor.user_id, self._ctx.secret_box.seal(secret), now=self._ctx.clock()
            )
            note(uow, self._ctx, actor, "two_factor.enrolment_started", target=_user(actor))
        uri = provisioning_uri(
            secret, account=actor.username, issuer=self._ctx.policy.security.totp_issuer
        )
        return Enrolment(secret=secret, otpauth_uri=uri, qr_svg=qr_svg(uri))

    async def confirm_enrolment(self, actor: Actor, code: str) -> list[str]:
        """Turn the second factor on with a first code; returns ten recovery codes (shown once).

        The user's other sessions end: whoever else held one signed in without the factor.
        """
        _session_only(actor)
        if len(code) > 64 or "\x00" in code:
            raise InvalidInput("the code is malformed", field="code", code="invalid_code_format")
        keys = self._sessions.guard.second_factor_keys(actor.user_id)
        counted = await self._sessions.guard.check(keys)
        codes = new_recovery_codes()
        confirmed = False
        async with self._ctx.storage.transaction() as uow:
            record = await uow.two_factor.get(actor.user_id)
            if record is None or record.enabled:
                raise Conflict(
                    "start an enrolment first (POST /api/v1/auth/two-factor/enrolment)",
                    code="no_enrolment_pending",
                )
            secret = self._ctx.secret_box.open(record.secret)
            step = matching_step(secret, code, self._ctx.clock())
            if step is not None and await uow.two_factor.use_step(actor.user_id, step):
                confirmed = True
                now = self._ctx.clock()
                await uow.two_factor.confirm(actor.user_id, now=now)
                await uow.two_factor.replace_recovery_codes(
                    actor.user_id, [hash_recovery_code(c) for c in codes], now=now
                )
                await self._end_other_sessions(uow, actor, "two-factor authentication enabled")
                if actor.session_id is not None:
                    await uow.credentials.set_reauthenticated(actor.session_id, now=now)
                note(uow, self._ctx, actor, "two_factor.enrolled", target=_user(actor))
        if not confirmed:
            await self._failed(actor, "two_factor.enrolled")
            await self._sessions.guard.failed(
                keys, ip=actor.ip, user_agent=actor.user_agent, subject=_user(actor)
            )
            raise InvalidInput(
                "the code does not match; check the time on your device",
                field="code",
                code="invalid_code",
            )
        if counted:
            await self._sessions.guard.succeeded(keys[0].key)
        # The actor's own cached credential now lacks "enrolment required".
        self._sessions.forget_user(actor.user_id)
        return codes

    async def disable(self, actor: Actor) -> None:
        """Turn the second factor off (needs a recent re-authentication)."""
        _session_only(actor)
        if self._ctx.policy.security.requires_two_factor(actor.role, is_bot=actor.is_bot):
            raise Conflict(
                "your organisation requires two-factor authentication for your role",
                code="two_factor_required_by_policy",
            )
        async with self._ctx.storage.transaction() as uow:
            await require_recent_authentication(self._ctx, uow, actor)
            if not await uow.two_factor.remove(actor.user_id):
                raise Conflict("two-factor authentication is not on", code="two_factor_not_enabled")
            await self._end_other_sessions(uow, actor, "two-factor authentication disabled")
            note(uow, self._ctx, actor, "two_factor.disabled", target=_user(actor))

    async def regenerate_recovery_codes(self, actor: Actor) -> list[str]:
        """Ten new recovery codes; the old ones stop working (needs re-authentication)."""
        _session_only(actor)
        codes = new_recovery_codes()
        async with self._ctx.storage.transaction() as uow:
            await require_recent_authentication(self._ctx, uow, actor)
            if not await uow.two_factor.enabled_for(actor.user_id):
                raise Conflict("two-factor authentication is not on", code="two_factor_not_enabled")
            await uow.two_factor.replace_recovery_codes(
                actor.user_id, [hash_recovery_code(c) for c in codes], now=self._ctx.clock()
            )
            note(
                uow, self._ctx, actor, "two_factor.recovery_codes_regenerated", target=_user(actor)
            )
        return codes

    async def reset(self, actor: Actor | None, user_id: int) -> None:
        """Remove someone's second factor (lost device and codes): an administrator who
        re-authenticated, or the operator's command line (``actor`` None). Their sessions end."""
        async with self._ctx.storage.transaction() as uow:
            record = await uow.users.get(user_id)
            if actor is not None:
                require_admin(actor)
                await require_recent_authentication(self._ctx, uow, actor)
                if record is not None and not may_assign_role(actor.role, record.role, Role.MEMBER):
                    raise PermissionDenied(
                        "you cannot reset this user's second factor", code="role_not_allowed"
                    )
            if record is None:
                raise NotFound(USER_NOT_FOUND)
            if not await uow.two_factor.remove(user_id):
                raise Conflict("that user has no second factor", code="two_factor_not_enabled")
            ended = await uow.credentials.delete_sessions_of(user_id)
            self._sessions.announce_ended(uow, user_id, ended, None, "two-factor reset")
            note(
                uow,
                self._ctx,
                actor,
                "two_factor.reset",
                target=f"user:{user_id}",
                details={} if actor is not None else {"via": "cli"},
            )

    async def _end_other_sessions(self, uow: UnitOfWork, actor: Actor, reason: str) -> None:
        ended = await uow.credentials.delete_sessions_of(actor.user_id, except_id=actor.session_id)
        self._sessions.announce_ended(uow, actor.user_id, ended, None, reason)

    async def _failed(self, actor: Actor, action: str) -> None:
        async with self._ctx.storage.transaction() as uow:
            note(uow, self._ctx, actor, action, target=_user(actor), outcome=FAILURE)


def _user(actor: Actor) -> str:
    return f"user:{actor.user_id}"


def _session_only(actor: Actor) -> None:
    if actor.session_id is None or actor.is_bot:
        raise PermissionDenied(
            "two-factor authentication is managed from a signed-in session",
            code="session_required",
        )
