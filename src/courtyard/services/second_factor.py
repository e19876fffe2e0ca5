"""Checking a second factor and recent re-authentication; shared by sign-in and enrolment."""

from __future__ import annotations

from dataclasses import dataclass

from courtyard.auth.totp import hash_recovery_code, matching_step
from courtyard.domain.errors import InvalidInput, PermissionDenied
from courtyard.domain.users import Actor
from courtyard.services.context import ServiceContext
from courtyard.storage.unit_of_work import UnitOfWork

MAX_CODE_CHARS = 64


@dataclass(frozen=True, slots=True)
class SecondFactorProof:
    """What the user typed: a TOTP code or a recovery code (exactly one)."""

    code: str | None = None
    recovery_code: str | None = None

    def validated(self) -> SecondFactorProof:
        """Self, if exactly one bounded, NUL-free code is given."""
        given = [c for c in (self.code, self.recovery_code) if c is not None]
        if len(given) != 1:
            raise InvalidInput(
                "give either code or recovery_code", field="code", code="one_code_required"
            )
        if len(given[0]) > MAX_CODE_CHARS or "\x00" in given[0]:
            raise InvalidInput("the code is malformed", field="code", code="invalid_code_format")
        return self


async def check_second_factor(
    ctx: ServiceContext, uow: UnitOfWork, user_id: int, proof: SecondFactorProof
) -> str | None:
    """Spend the proof inside ``uow``: returns 'totp' or 'recovery_code', None if it fails.

    A TOTP code is accepted once: its time step is stored and no code of that step or an
    earlier one is accepted again. A recovery code is marked used.
    """
    record = await uow.two_factor.get(user_id)
    if record is None or not record.enabled:
        return None
    if proof.code is not None:
        secret = ctx.secret_box.open(record.secret)
        step = matching_step(secret, proof.code, ctx.clock())
        if step is None or not await uow.two_factor.use_step(user_id, step):
            return None
        return "totp"
    assert proof.recovery_code is not None
    used = await uow.two_factor.use_recovery_code(
        user_id, hash_recovery_code(proof.recovery_code), now=ctx.clock()
    )
    return "recovery_code" if used else None


async def require_recent_authentication(ctx: ServiceContext, uow: UnitOfWork, actor: Actor) -> None:
    """Refuse unless the actor's session proved the password or a code within the window.

    Access tokens cannot re-authenticate, so sensitive actions need a signed-in session;
    ``actor`` None (the command line, run by the operator on the server) is not checked.
    """
    if actor.session_id is None:
        raise PermissionDenied(
            "this action needs a signed-in session that re-authenticated recently",
            code="reauthentication_required",
        )
    session = await uow.credentials.get_session(actor.session_id)
    window = ctx.policy.security.reauthentication_window
    if (
        session is None
        or session.reauthenticated_at is None
        or ctx.clock() - session.reauthenticated_at > window
    ):
        minutes = max(1, round(window.total_seconds() / 60))
        raise PermissionDenied(
            f"confirm your password or a code first (POST /api/v1/auth/reauthenticate); "
            f"this action needs one given within {minutes} minutes",
            code="reauthentication_required",
        )
