"""Personal access tokens and the shared token issuer (bot tokens use it too)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from courtyard.auth.tokens import SecretKind, display_prefix, hash_secret, new_secret
from courtyard.domain.errors import InvalidInput, NotFound, PermissionDenied
from courtyard.domain.text import clean_name
from courtyard.domain.users import SCOPES, AccessToken, Actor
from courtyard.services.audit import note
from courtyard.services.context import ServiceContext
from courtyard.services.second_factor import require_recent_authentication
from courtyard.services.sessions import Sessions
from courtyard.storage.repositories.users import UserRecord
from courtyard.storage.unit_of_work import UnitOfWork


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A new access token; ``secret`` is shown once."""

    token: AccessToken
    secret: str


class Tokens:
    """A user's personal access tokens."""

    def __init__(self, ctx: ServiceContext, sessions: Sessions) -> None:
        self._ctx = ctx
        self._sessions = sessions

    async def create_personal_token(
        self, actor: Actor, name: str, scopes: list[str], expires_in_days: int | None
    ) -> IssuedToken:
        """A personal access token acting as the actor, limited to ``scopes``."""
        if actor.is_bot or actor.session_id is None:
            raise PermissionDenied(
                "tokens are created from a signed-in session", code="session_required"
            )
        async with self._ctx.storage.transaction() as uow:
            await require_recent_authentication(self._ctx, uow, actor)
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
            self._sessions.announce_ended(uow, token.user_id, None, [token_id], "token revoked")


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
