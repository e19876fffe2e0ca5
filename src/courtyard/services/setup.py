"""First run: the one-time setup token and the creation of the organisation and its owner."""

from __future__ import annotations

from dataclasses import dataclass

from courtyard.auth.tokens import SecretKind, hash_secret, new_secret
from courtyard.domain.errors import Conflict, PermissionDenied
from courtyard.domain.roles import Role
from courtyard.domain.text import clean_name
from courtyard.domain.users import Organization
from courtyard.services.accounts import NewAccount, register_user
from courtyard.services.context import ServiceContext
from courtyard.services.sessions import ClientInfo, Sessions, SignedIn
from courtyard.storage.repositories.users import UserRecord
from courtyard.storage.unit_of_work import UnitOfWork


@dataclass(frozen=True, slots=True)
class SetupStatus:
    """Whether the installation still needs its owner."""

    needs_setup: bool
    organization: Organization | None


class Setup:
    """Creating the organisation and its first owner."""

    def __init__(self, ctx: ServiceContext, sessions: Sessions) -> None:
        self._ctx = ctx
        self._sessions = sessions

    async def status(self) -> SetupStatus:
        """Whether an owner exists yet."""
        async with self._ctx.storage.snapshot() as uow:
            owners = await uow.users.count_by_role(Role.OWNER)
            org = await uow.organization.get()
        return SetupStatus(needs_setup=owners == 0, organization=org)

    async def issue_setup_token(self) -> str | None:
        """A fresh setup token when no owner exists (printed by ``serve``), else None."""
        now = self._ctx.clock()
        secret = new_secret(SecretKind.SETUP)
        async with self._ctx.storage.transaction() as uow:
            if await uow.users.count_by_role(Role.OWNER) > 0:
                return None
            await uow.credentials.replace_setup_token(
                hash_secret(secret), now=now, expires_at=now + self._ctx.policy.setup_token_lifetime
            )
        return secret

    async def complete_setup(
        self, setup_token: str, organization_name: str, account: NewAccount, client: ClientInfo
    ) -> SignedIn:
        """Create the organisation and its owner with a valid setup token, and sign them in."""
        now = self._ctx.clock()
        async with self._ctx.storage.transaction() as uow:
            if not await uow.credentials.setup_token_valid(hash_secret(setup_token), now=now):
                raise PermissionDenied(
                    "the setup token is invalid or expired", code="invalid_setup_token"
                )
            owner = await self._create_owner(uow, organization_name, account)
            await uow.credentials.clear_setup_tokens()
        return await self._sessions.start_session(owner.id, client)

    async def create_owner(self, organization_name: str, account: NewAccount) -> int:
        """The command-line path: create the organisation and owner without a token."""
        async with self._ctx.storage.transaction() as uow:
            owner = await self._create_owner(uow, organization_name, account)
            await uow.credentials.clear_setup_tokens()
        return owner.id

    async def _create_owner(
        self, uow: UnitOfWork, organization_name: str, account: NewAccount
    ) -> UserRecord:
        if await uow.users.count_by_role(Role.OWNER) > 0:
            raise Conflict("the organisation already has an owner", code="already_set_up")
        name = clean_name(organization_name, field="organization_name", max_length=128)
        if await uow.organization.get() is None:
            await uow.organization.create(name, now=self._ctx.clock())
        return await register_user(self._ctx, uow, account, role=Role.OWNER)
