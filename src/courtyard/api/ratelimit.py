"""Which rate-limit class and which firewall surfaces a request belongs to.

Pure functions of the method, path and credential prefix, so the edge can decide before any
database work. The limits themselves live in :mod:`courtyard.services.ratelimit`.
"""

from __future__ import annotations

from courtyard.auth.tokens import SecretKind, kind_of

API = "/api/"
_AUTH_PREFIXES = (
    "/api/v1/auth/sign-in",
    "/api/v1/auth/2fa",
    "/api/v1/auth/two-factor",
    "/api/v1/auth/totp",
    "/api/v1/auth/recover",
    "/api/v1/setup",
    "/api/v1/invites/accept",
    "/api/v1/invites/inspect",
)
_ADMIN_PREFIXES = (
    "/api/v1/admin",
    "/api/v1/audit",
    "/api/v1/bots",
    "/api/v1/invites",
    "/api/v1/organization",
)
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
EVENTS_PATH = "/api/v1/events"


def route_class(method: str, path: str) -> str | None:
    """auth, uploads, writes or reads; None for what is never limited (health checks,
    static assets, the web client's pages)."""
    if not path.startswith(API):
        return None
    if path.startswith(_AUTH_PREFIXES):
        return "auth"
    if method in _SAFE:
        return "reads"
    if path.rstrip("/") == "/api/v1/files" and method == "POST":
        return "uploads"
    return "writes"


def _is_admin_path(method: str, path: str) -> bool:
    if path.startswith(("/api/v1/invites/accept", "/api/v1/invites/inspect")):
        return False
    if path.startswith(_ADMIN_PREFIXES):
        return True
    if path.startswith("/api/v1/users"):
        # Creating users, changing others' profiles and roles, deactivating: admin work.
        return method not in _SAFE
    return False


def surfaces_for(method: str, path: str, bearer: str | None) -> frozenset[str]:
    """The firewall surfaces a request touches (see docs/security.md)."""
    if not path.startswith(API):
        return frozenset({"web"})
    found = {"api"}
    if path == EVENTS_PATH:
        found.add("events")
    if path.startswith("/api/v1/files"):
        found.add("files")
    if path.startswith(_AUTH_PREFIXES):
        found.add("auth")
    if _is_admin_path(method, path):
        found.add("admin")
    if bearer is not None and kind_of(bearer) in (SecretKind.PERSONAL_TOKEN, SecretKind.BOT_TOKEN):
        found.add("tokens")
    return frozenset(found)


def bearer_from(authorization: str | None) -> str | None:
    """The secret of an ``Authorization: Bearer`` header, if any."""
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None
