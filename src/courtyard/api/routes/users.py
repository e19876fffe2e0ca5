"""The directory, your profile, and user administration."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Response, delete, get, patch, post, put
from litestar.params import JSONBody, QueryParameter

from courtyard.api.deps import AppServices, Client, CurrentActor, Cursor, Flag, Id, Web
from courtyard.api.routes._sessions import session_response
from courtyard.api.schemas.accounts import (
    AcceptInviteBody,
    BotBody,
    BotTokenBody,
    InviteBody,
    InviteList,
    InviteTokenBody,
    IssuedInviteResponse,
    IssuedTokenResponse,
    NewUserBody,
    PasswordResetBody,
    ProfileBody,
    RoleBody,
    SignedInResponse,
    StatusBody,
    UserList,
)
from courtyard.domain.users import Invite, User
from courtyard.services.accounts import NewAccount, ProfileChanges

LIMIT_DEFAULT = 50
Limit = Annotated[int, QueryParameter(ge=1, le=1000, description="Page size.")]
Query = Annotated[str | None, QueryParameter(max_length=64, description="Filter by name.")]


class MeController(Controller):
    """The signed-in user's own profile."""

    path = "/api/v1/me"
    tags = ["users"]

    @get("/", summary="Your profile")
    async def me(self, actor: CurrentActor, services: AppServices) -> User:
        """Includes your email address."""
        return await services.accounts.get_user(actor, actor.user_id)

    @patch("/", summary="Change your profile")
    async def update_me(
        self, data: JSONBody[ProfileBody], actor: CurrentActor, services: AppServices
    ) -> User:
        """Display name, title, timezone."""
        return await services.accounts.update_profile(
            actor,
            actor.user_id,
            ProfileChanges(data.display_name, data.title, data.timezone, data.send_read_receipts),
        )

    @put("/status", summary="Set or clear your custom status")
    async def set_status(
        self, data: JSONBody[StatusBody], actor: CurrentActor, services: AppServices
    ) -> User:
        """An emoji, a short text and an optional expiry."""
        return await services.accounts.set_status(actor, data.emoji, data.text, data.expires_at)


class UsersController(Controller):
    """The directory, and administration of people."""

    path = "/api/v1/users"
    tags = ["users"]

    @get("/", summary="The user directory")
    async def list_users(
        self,
        actor: CurrentActor,
        services: AppServices,
        cursor: Cursor = 0,
        limit: Limit = LIMIT_DEFAULT,
        q: Query = None,
        include_deactivated: Flag = False,
    ) -> UserList:
        """Guests see only the people they share a channel with."""
        page = await services.accounts.list_users(
            actor, after=cursor, limit=limit, query=q, include_deactivated=include_deactivated
        )
        return UserList(users=page.users, next_cursor=page.next_after)

    @post("/", summary="Create a user (administrators)", status_code=201)
    async def create_user(
        self, data: JSONBody[NewUserBody], admin_actor: CurrentActor, services: AppServices
    ) -> User:
        """Creates an account with a password the person should change."""
        return await services.accounts.create_user(
            admin_actor,
            NewAccount(data.username, data.password, data.display_name, data.email),
            data.role,
        )

    @get("/{user_id:int}", summary="A user's profile")
    async def get_user(self, user_id: Id, actor: CurrentActor, services: AppServices) -> User:
        """Email addresses are shown to administrators and the user themself."""
        return await services.accounts.get_user(actor, user_id)

    @patch("/{user_id:int}", summary="Change a user's profile (administrators)")
    async def update_user(
        self,
        user_id: Id,
        data: JSONBody[ProfileBody],
        admin_actor: CurrentActor,
        services: AppServices,
    ) -> User:
        """Display name, title, timezone."""
        return await services.accounts.update_profile(
            admin_actor,
            user_id,
            ProfileChanges(data.display_name, data.title, data.timezone, data.send_read_receipts),
        )

    @put("/{user_id:int}/role", summary="Change a user's role (administrators)")
    async def set_role(
        self,
        user_id: Id,
        data: JSONBody[RoleBody],
        admin_actor: CurrentActor,
        services: AppServices,
    ) -> User:
        """Only the owner grants or removes owner and admin."""
        return await services.accounts.set_role(admin_actor, user_id, data.role)

    @post(
        "/{user_id:int}/deactivate", summary="Deactivate a user (administrators)", status_code=200
    )
    async def deactivate(
        self, user_id: Id, admin_actor: CurrentActor, services: AppServices
    ) -> User:
        """Blocks sign-in and ends every session at once; history is kept."""
        return await services.accounts.deactivate(admin_actor, user_id)

    @post(
        "/{user_id:int}/reactivate", summary="Reactivate a user (administrators)", status_code=200
    )
    async def reactivate(
        self, user_id: Id, admin_actor: CurrentActor, services: AppServices
    ) -> User:
        """Allows sign-in again."""
        return await services.accounts.reactivate(admin_actor, user_id)

    @post(
        "/{user_id:int}/password", summary="Set a user's password (administrators)", status_code=204
    )
    async def reset_password(
        self,
        user_id: Id,
        data: JSONBody[PasswordResetBody],
        admin_actor: CurrentActor,
        services: AppServices,
    ) -> None:
        """Their sessions end."""
        await services.accounts.reset_password(admin_actor, user_id, data.new_password)


class BotsController(Controller):
    """Bot accounts and their tokens."""

    path = "/api/v1/bots"
    tags = ["bots"]

    @post("/", summary="Create a bot (administrators)", status_code=201)
    async def create_bot(
        self, data: JSONBody[BotBody], admin_actor: CurrentActor, services: AppServices
    ) -> User:
        """Bots sign in only with bot tokens."""
        return await services.accounts.create_bot(admin_actor, data.username, data.display_name)

    @post("/{bot_id:int}/tokens", summary="Create a bot token (administrators)", status_code=201)
    async def create_bot_token(
        self,
        bot_id: Id,
        data: JSONBody[BotTokenBody],
        admin_actor: CurrentActor,
        services: AppServices,
    ) -> IssuedTokenResponse:
        """The secret is in this response only."""
        issued = await services.accounts.create_bot_token(
            admin_actor, bot_id, data.name, data.scopes, data.expires_in_days
        )
        return IssuedTokenResponse(token=issued.token, secret=issued.secret)


class InvitesController(Controller):
    """Invite links."""

    path = "/api/v1/invites"
    tags = ["invites"]

    @post("/", summary="Create an invite link (administrators)", status_code=201)
    async def create_invite(
        self, data: JSONBody[InviteBody], admin_actor: CurrentActor, services: AppServices
    ) -> IssuedInviteResponse:
        """Single use; expires after ``expires_in_hours`` (default from configuration)."""
        issued = await services.accounts.create_invite(
            admin_actor, data.role, data.email, data.expires_in_hours
        )
        return IssuedInviteResponse(
            invite=issued.invite, token=issued.secret, path=f"/invite/{issued.secret}"
        )

    @get("/", summary="Every invite (administrators)")
    async def list_invites(self, admin_actor: CurrentActor, services: AppServices) -> InviteList:
        """Newest first."""
        return InviteList(invites=await services.accounts.list_invites(admin_actor))

    @delete("/{invite_id:int}", summary="Revoke an invite (administrators)", status_code=204)
    async def revoke_invite(
        self, invite_id: Id, admin_actor: CurrentActor, services: AppServices
    ) -> None:
        """The link stops working."""
        await services.accounts.revoke_invite(admin_actor, invite_id)

    @post("/inspect", summary="Check an invite link before signing up", status_code=200)
    async def inspect_invite(
        self, data: JSONBody[InviteTokenBody], services: AppServices
    ) -> Invite:
        """404 if the link is invalid, used or expired."""
        return await services.accounts.check_invite(data.token)

    @post("/accept", summary="Sign up through an invite link", status_code=201)
    async def accept_invite(
        self, data: JSONBody[AcceptInviteBody], services: AppServices, client: Client, web: Web
    ) -> Response[SignedInResponse]:
        """Creates the account and signs it in."""
        signed_in = await services.accounts.accept_invite(
            data.token,
            NewAccount(data.username, data.password, data.display_name, data.email),
            client,
        )
        return session_response(signed_in, data.session_type, web, status_code=201)
