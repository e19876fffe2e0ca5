"""First-run setup, sign-in and out, sessions, passwords and personal tokens."""

from __future__ import annotations

from litestar import Controller, Response, delete, get, post
from litestar.params import JSONBody

from courtyard.api.deps import AppServices, Client, CurrentActor, Id, Web
from courtyard.api.routes._sessions import clear_session_cookies, session_response
from courtyard.api.schemas.accounts import (
    IssuedTokenResponse,
    PasswordChangeBody,
    SessionList,
    SetupBody,
    SetupState,
    SignedInResponse,
    SignInBody,
    TokenBody,
    TokenList,
)
from courtyard.services.accounts import NewAccount


class SetupController(Controller):
    """Creating the organisation and its owner on first run."""

    path = "/api/v1/setup"
    tags = ["setup"]

    @get("/", summary="Whether setup is still needed")
    async def setup_state(self, services: AppServices) -> SetupState:
        """True until the owner exists."""
        status = await services.setup.status()
        return SetupState(needs_setup=status.needs_setup, organization=status.organization)

    @post("/", summary="Create the organisation and its owner", status_code=201)
    async def complete_setup(
        self, data: JSONBody[SetupBody], services: AppServices, client: Client, web: Web
    ) -> Response[SignedInResponse]:
        """Needs the one-time setup token printed by `courtyard serve`."""
        signed_in = await services.setup.complete_setup(
            data.setup_token,
            data.organization_name,
            NewAccount(data.username, data.password, data.display_name, data.email),
            client,
        )
        return session_response(signed_in, data.session_type, web, status_code=201)


class AuthController(Controller):
    """Sessions and credentials of the signed-in user."""

    path = "/api/v1/auth"
    tags = ["auth"]

    @post("/sign-in", summary="Sign in with username or email and password", status_code=200)
    async def sign_in(
        self, data: JSONBody[SignInBody], services: AppServices, client: Client, web: Web
    ) -> Response[SignedInResponse]:
        """Opens a session; see ``session_type`` for cookie or bearer-token sessions."""
        signed_in = await services.sessions.sign_in(data.login, data.password, client)
        return session_response(signed_in, data.session_type, web)

    @post("/sign-out", summary="End this session", status_code=204)
    async def sign_out(
        self, actor: CurrentActor, services: AppServices, web: Web
    ) -> Response[None]:
        """Deletes the current session and its cookies."""
        await services.sessions.sign_out(actor)
        return Response(None, status_code=204, cookies=clear_session_cookies(web))

    @get("/sessions", summary="Your sessions")
    async def list_sessions(self, actor: CurrentActor, services: AppServices) -> SessionList:
        """Every device signed in as you; ``current`` marks this one."""
        return SessionList(sessions=await services.sessions.list_sessions(actor))

    @delete("/sessions/{session_id:int}", summary="End one of your sessions", status_code=204)
    async def revoke_session(
        self, session_id: Id, actor: CurrentActor, services: AppServices
    ) -> None:
        """Signs that device out."""
        await services.sessions.revoke_session(actor, session_id)

    @post("/sessions/revoke-others", summary="Sign out everywhere else", status_code=204)
    async def revoke_others(self, actor: CurrentActor, services: AppServices) -> None:
        """Ends every session but this one."""
        await services.sessions.sign_out_everywhere(actor)

    @post("/password", summary="Change your password", status_code=204)
    async def change_password(
        self, data: JSONBody[PasswordChangeBody], actor: CurrentActor, services: AppServices
    ) -> None:
        """Your other sessions end."""
        await services.sessions.change_password(actor, data.current_password, data.new_password)

    @get("/tokens", summary="Your personal access tokens")
    async def list_tokens(self, actor: CurrentActor, services: AppServices) -> TokenList:
        """Token metadata; secrets are never shown again."""
        return TokenList(tokens=await services.sessions.list_tokens(actor))

    @post("/tokens", summary="Create a personal access token", status_code=201)
    async def create_token(
        self, data: JSONBody[TokenBody], actor: CurrentActor, services: AppServices
    ) -> IssuedTokenResponse:
        """The secret is in this response only."""
        issued = await services.sessions.create_personal_token(
            actor, data.name, data.scopes, data.expires_in_days
        )
        return IssuedTokenResponse(token=issued.token, secret=issued.secret)

    @delete("/tokens/{token_id:int}", summary="Revoke a token", status_code=204)
    async def revoke_token(self, token_id: Id, actor: CurrentActor, services: AppServices) -> None:
        """Your own tokens; administrators also bot tokens."""
        await services.sessions.revoke_token(actor, token_id)
