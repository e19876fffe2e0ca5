"""People and bots: the public profile shape shared by the REST API and events."""

from __future__ import annotations

from datetime import datetime

import msgspec

from courtyard.domain.roles import Role


class CustomStatus(msgspec.Struct, frozen=True, kw_only=True):
    """A user's short status line, e.g. '🌴 On holiday until Monday'."""

    emoji: str | None = None
    text: str = ""
    expires_at: datetime | None = None


class User(msgspec.Struct, frozen=True, kw_only=True):
    """A person or bot as other users see them. ``email`` is filled for self and admins only."""

    id: int
    username: str
    display_name: str
    role: Role
    is_bot: bool = False
    title: str = ""
    timezone: str = ""
    status: CustomStatus | None = None
    email: str | None = None
    created_at: datetime
    deactivated: bool = False
    bot_owner_id: int | None = None
    send_read_receipts: bool | None = None


class Actor(msgspec.Struct, frozen=True, kw_only=True):
    """Who is making a request, as established by authentication."""

    user_id: int
    username: str
    role: Role
    is_bot: bool = False
    session_id: int | None = None
    token_id: int | None = None
    scopes: frozenset[str] = frozenset()
    # Where the request came from (for the audit log); filled in per request by the API.
    ip: str = ""
    user_agent: str = ""
    # The organisation requires two-factor authentication and this user has not enrolled:
    # only enrolment (and signing out) is allowed.
    enrolment_required: bool = False

    @property
    def is_admin(self) -> bool:
        """Owners and admins."""
        return self.role.is_admin

    @property
    def is_guest(self) -> bool:
        """Guests see only what they were added to."""
        return self.role.is_guest

    def has_scope(self, scope: str) -> bool:
        """Sessions hold every scope; tokens their listed ones, where ``write`` implies ``read``."""
        return scope in self.scopes or (scope == "read" and "write" in self.scopes)


class Session(msgspec.Struct, frozen=True, kw_only=True):
    """A signed-in browser or API client, as listed to its owner (never the token itself)."""

    id: int
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    user_agent: str = ""
    ip_address: str = ""
    current: bool = False


class AccessToken(msgspec.Struct, frozen=True, kw_only=True):
    """A personal access token or bot token (metadata only)."""

    id: int
    user_id: int
    name: str
    scopes: list[str]
    created_at: datetime
    last_used_at: datetime | None = None
    expires_at: datetime | None = None
    prefix: str


class Invite(msgspec.Struct, frozen=True, kw_only=True):
    """An expiring sign-up link created by an admin."""

    id: int
    role: Role
    email: str | None = None
    created_by: int
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None
    revoked: bool = False


class Organization(msgspec.Struct, frozen=True, kw_only=True):
    """The one organisation this installation serves."""

    name: str
    created_at: datetime


SCOPES: frozenset[str] = frozenset({"read", "write", "admin"})
"""Token scopes: ``read`` (GET), ``write`` (changes), ``admin`` (administration, admins only)."""
