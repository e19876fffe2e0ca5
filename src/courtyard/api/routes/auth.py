"""First-run setup, sign-in and out, sessions, passwords and personal tokens."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, SkipValidation

from courtyard.api.deps import (
    ENROLMENT_ALLOWED,
    AppServices,
    Client,
    CurrentActor,
    Id,
    Web,
    pending_credential,
)
from courtyard.api.routes._sessions import clear_session_cookies, session_response
from courtyard.api.schemas.accounts import (
    ConfirmEnrolmentBody,
    EnrolmentResponse,
    IssuedTokenResponse,
    PasswordChangeBody,
    ReauthenticateBody,
    RecoveryCodesResponse,
    SecondFactorBody,
    SessionList,
    SetupBody,
    SetupState,
    SignedInResponse,
    SignedOutResponse,
    SignInBody,
    TokenBody,
    TokenList,
    TwoFactorStatusResponse,
)
from courtyard.domain.users import Actor
from courtyard.services.accounts import NewAccount
from courtyard.services.second_factor import SecondFactorProof

AdminActor = NamedDependency[SkipValidation[Actor]]

# Routes a user who must enrol in two-factor authentication may still use.
ENROLMENT = {ENROLMENT_ALLOWED: True}


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
        """Opens a session; see ``session_type`` for cookie or bearer-token sessions. With a
        second factor on, the session is pending (``second_factor_required``) until
        ``POST /api/v1/auth/sign-in/second-factor``. Repeated failures are slowed down and
        then answered 429 with ``Retry-After`` (``too_many_attempts``)."""
        signed_in = await services.sessions.sign_in(data.login, data.password, client)
        return session_response(signed_in, data.session_type, web)

    @post(
        "/sign-in/second-factor",
        summary="Finish signing in with a TOTP or recovery code",
        status_code=200,
    )
    async def second_factor(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[SecondFactorBody],
        services: AppServices,
        client: Client,
        web: Web,
    ) -> Response[SignedInResponse]:
        """Send with the pending session from sign-in; returns a new session (new id and
        token) and ends the pending one."""
        signed_in = await services.sessions.complete_sign_in(
            pending_credential(request),
            SecondFactorProof(code=data.code, recovery_code=data.recovery_code),
            client,
        )
        return session_response(signed_in, data.session_type, web)

    @post(
        "/reauthenticate",
        summary="Confirm your password or a code for sensitive actions",
        status_code=204,
        opt=ENROLMENT,
    )
    async def reauthenticate(
        self, data: JSONBody[ReauthenticateBody], actor: CurrentActor, services: AppServices
    ) -> None:
        """Creating tokens, changing roles, disabling 2FA and new recovery codes need one
        within ``security.reauthentication_minutes`` (else 403 ``reauthentication_required``)."""
        proof = None
        if data.code is not None or data.recovery_code is not None:
            proof = SecondFactorProof(code=data.code, recovery_code=data.recovery_code)
        await services.sessions.reauthenticate(actor, data.password, proof)

    @post(
        "/sign-out-everywhere",
        summary="End all your sessions, this one included",
        status_code=200,
        opt=ENROLMENT,
    )
    async def sign_out_everywhere(
        self, actor: CurrentActor, services: AppServices, web: Web
    ) -> Response[SignedOutResponse]:
        """Every device is signed out and its event sockets close; tokens stay valid."""
        ended = await services.sessions.sign_out_all(actor)
        return Response(SignedOutResponse(sessions_ended=ended), cookies=clear_session_cookies(web))

    @post("/sign-out", summary="End this session", status_code=204, opt=ENROLMENT)
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
        return TokenList(tokens=await services.tokens.list_tokens(actor))

    @post("/tokens", summary="Create a personal access token", status_code=201)
    async def create_token(
        self, data: JSONBody[TokenBody], actor: CurrentActor, services: AppServices
    ) -> IssuedTokenResponse:
        """The secret is in this response only."""
        issued = await services.tokens.create_personal_token(
            actor, data.name, data.scopes, data.expires_in_days
        )
        return IssuedTokenResponse(token=issued.token, secret=issued.secret)

    @delete("/tokens/{token_id:int}", summary="Revoke a token", status_code=204)
    async def revoke_token(self, token_id: Id, actor: CurrentActor, services: AppServices) -> None:
        """Your own tokens; administrators also bot tokens."""
        await services.tokens.revoke_token(actor, token_id)


class TwoFactorController(Controller):
    """Your second factor (TOTP authenticator app and recovery codes)."""

    path = "/api/v1/auth/two-factor"
    tags = ["auth"]

    @get("/", summary="Your second factor's state", opt=ENROLMENT)
    async def two_factor_status(
        self, actor: CurrentActor, services: AppServices
    ) -> TwoFactorStatusResponse:
        """On or off, required or not, recovery codes left."""
        status = await services.two_factor.status(actor)
        return TwoFactorStatusResponse(
            enabled=status.enabled,
            required=status.required,
            enrolment_pending=status.enrolment_pending,
            recovery_codes_left=status.recovery_codes_left,
            reauthentication_required=status.reauthentication_required,
        )

    @post("/enrolment", summary="Start enrolling an authenticator app", opt=ENROLMENT)
    async def begin_enrolment(
        self, actor: CurrentActor, services: AppServices
    ) -> EnrolmentResponse:
        """A new secret as an ``otpauth://`` URI and an SVG QR code; confirm with a code."""
        enrolment = await services.two_factor.begin_enrolment(actor)
        return EnrolmentResponse(
            secret=enrolment.secret, otpauth_uri=enrolment.otpauth_uri, qr_svg=enrolment.qr_svg
        )

    @post(
        "/enrolment/confirm",
        summary="Turn two-factor authentication on",
        status_code=200,
        opt=ENROLMENT,
    )
    async def confirm_enrolment(
        self, data: JSONBody[ConfirmEnrolmentBody], actor: CurrentActor, services: AppServices
    ) -> RecoveryCodesResponse:
        """Checks the first code; returns ten recovery codes; your other sessions end."""
        codes = await services.two_factor.confirm_enrolment(actor, data.code)
        return RecoveryCodesResponse(recovery_codes=codes)

    @delete("/", summary="Turn two-factor authentication off", status_code=204)
    async def disable_two_factor(self, actor: CurrentActor, services: AppServices) -> None:
        """Needs a recent re-authentication; refused when your organisation requires it."""
        await services.two_factor.disable(actor)

    @post("/recovery-codes", summary="Replace your recovery codes", status_code=200)
    async def regenerate_recovery_codes(
        self, actor: CurrentActor, services: AppServices
    ) -> RecoveryCodesResponse:
        """Needs a recent re-authentication; the old codes stop working."""
        codes = await services.two_factor.regenerate_recovery_codes(actor)
        return RecoveryCodesResponse(recovery_codes=codes)


class UserTwoFactorController(Controller):
    """Administrators help someone who lost their authenticator and recovery codes."""

    path = "/api/v1/users/{user_id:int}/two-factor"
    tags = ["users"]

    @delete("/", summary="Reset someone's second factor", status_code=204)
    async def reset_two_factor(
        self, user_id: Id, admin_actor: AdminActor, services: AppServices
    ) -> None:
        """Removes their second factor and ends their sessions; they enrol again (the
        organisation's policy may require it at their next sign-in). Needs re-authentication."""
        await services.two_factor.reset(admin_actor, user_id)
