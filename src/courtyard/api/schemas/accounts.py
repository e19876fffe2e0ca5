"""Bodies and envelopes for setup, sign-in, users, invites, bots and tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from courtyard.api.schemas import Body, IdField
from courtyard.domain.roles import Role
from courtyard.domain.users import AccessToken, Invite, Organization, Session, User

Str64 = Annotated[str, msgspec.Meta(max_length=64)]
Str128 = Annotated[str, msgspec.Meta(max_length=128)]
Str254 = Annotated[str, msgspec.Meta(max_length=254)]
Password = Annotated[str, msgspec.Meta(max_length=1024)]
Secret = Annotated[str, msgspec.Meta(max_length=128)]
SessionType = Literal["cookie", "token"]


class SetupBody(Body):
    """Create the organisation and its owner with the printed setup token."""

    setup_token: Secret
    organization_name: Str128
    username: Str64
    password: Password
    email: Str254 | None = None
    display_name: Str64 | None = None
    session_type: SessionType = "cookie"


class SetupState(msgspec.Struct, kw_only=True):
    """Whether the installation still needs its owner."""

    needs_setup: bool
    organization: Organization | None = None


class SignInBody(Body):
    """Sign in with a username or email address and a password.

    ``session_type`` "cookie" (browsers) sets an HttpOnly cookie and returns a CSRF token;
    "token" (API clients) returns a bearer token and sets no cookie.
    """

    login: Str254
    password: Password
    session_type: SessionType = "cookie"


class SignedInResponse(msgspec.Struct, kw_only=True):
    """A new session.

    With ``second_factor_required`` true the password passed but the session is pending: its
    token (or cookie) only allows ``POST /api/v1/auth/sign-in/second-factor`` until
    ``expires_at``, and ``user`` is left out.
    """

    user: User | None
    session_id: int
    expires_at: datetime
    token: str | None = None
    csrf_token: str | None = None
    second_factor_required: bool = False


Code = Annotated[str, msgspec.Meta(max_length=64)]


class SecondFactorBody(Body):
    """The second step of signing in: a code from the authenticator app, or a recovery code.

    Send it with the pending session from the first step (bearer token, or cookie plus the
    CSRF header). The answer is a new session; the pending one ends.
    """

    code: Code | None = None
    recovery_code: Code | None = None
    session_type: SessionType = "cookie"


class ReauthenticateBody(Body):
    """Prove who you are again: your password, or a code (TOTP or recovery)."""

    password: Password | None = None
    code: Code | None = None
    recovery_code: Code | None = None


class TwoFactorStatusResponse(msgspec.Struct, kw_only=True):
    """Your second factor: on or off, whether your organisation requires it."""

    enabled: bool
    required: bool
    enrolment_pending: bool
    recovery_codes_left: int
    # Whether a sensitive action now would first ask for the password or a code (403
    # reauthentication_required): no re-authentication within the window, or an access token.
    reauthentication_required: bool


class EnrolmentResponse(msgspec.Struct, kw_only=True):
    """Scan ``qr_svg`` (or enter ``secret``) in an authenticator app, then confirm a code."""

    secret: str
    otpauth_uri: str
    qr_svg: str


class ConfirmEnrolmentBody(Body):
    """The first code the authenticator app shows."""

    code: Code


class RecoveryCodesResponse(msgspec.Struct, kw_only=True):
    """Ten one-time codes, shown only now: store them somewhere safe."""

    recovery_codes: list[str]


class SignedOutResponse(msgspec.Struct, kw_only=True):
    """How many sessions ended."""

    sessions_ended: int


class PasswordChangeBody(Body):
    """Change your own password; your other sessions end."""

    current_password: Password
    new_password: Password


class PasswordResetBody(Body):
    """An administrator sets someone's password."""

    new_password: Password


class SessionList(msgspec.Struct, kw_only=True):
    """Your sessions."""

    sessions: list[Session]


class TokenBody(Body):
    """A new scoped access token."""

    name: Str64
    scopes: Annotated[list[Annotated[str, msgspec.Meta(max_length=16)]], msgspec.Meta(max_length=8)]
    expires_in_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] | None = None


class IssuedTokenResponse(msgspec.Struct, kw_only=True):
    """A token and its secret (shown this once)."""

    token: AccessToken
    secret: str


class TokenList(msgspec.Struct, kw_only=True):
    """Live tokens."""

    tokens: list[AccessToken]


class ProfileBody(Body):
    """Profile fields to change; omitted fields stay."""

    display_name: Str64 | None = None
    title: Str128 | None = None
    timezone: Str64 | None = None
    send_read_receipts: bool | None = None


class StatusBody(Body):
    """A custom status; send no emoji and empty text to clear it."""

    emoji: Annotated[str, msgspec.Meta(max_length=32)] | None = None
    text: Str128 = ""
    expires_at: Annotated[datetime, msgspec.Meta(tz=True)] | None = None


class NewUserBody(Body):
    """An administrator creates an account."""

    username: Str64
    password: Password
    email: Str254 | None = None
    display_name: Str64 | None = None
    role: Role = Role.MEMBER


class RoleBody(Body):
    """A new organisation role."""

    role: Role


class UserList(msgspec.Struct, kw_only=True):
    """A page of the user directory."""

    users: list[User]
    next_cursor: int | None = None


class InviteBody(Body):
    """An expiring, single-use sign-up link."""

    role: Role = Role.MEMBER
    email: Str254 | None = None
    expires_in_hours: Annotated[int, msgspec.Meta(ge=1, le=2160)] | None = None


class IssuedInviteResponse(msgspec.Struct, kw_only=True):
    """The invite and its link secret (shown this once)."""

    invite: Invite
    token: str
    path: str


class InviteList(msgspec.Struct, kw_only=True):
    """Every invite."""

    invites: list[Invite]


class InviteTokenBody(Body):
    """Look up an invite by its secret."""

    token: Secret


class AcceptInviteBody(Body):
    """Sign up through an invite link."""

    token: Secret
    username: Str64
    password: Password
    email: Str254 | None = None
    display_name: Str64 | None = None
    session_type: SessionType = "cookie"


class BotBody(Body):
    """A new bot account."""

    username: Str64
    display_name: Str64 | None = None


class BotTokenBody(TokenBody):
    """A token for a bot."""


class IdList(Body):
    """A list of user ids."""

    user_ids: Annotated[list[IdField], msgspec.Meta(min_length=1, max_length=1000)]
