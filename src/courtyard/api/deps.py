"""Dependencies for routes: the services, the acting user, and client information."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import PathParameter, QueryParameter, SkipValidation

from courtyard.auth.tokens import same_secret
from courtyard.domain.errors import PermissionDenied, Unauthenticated
from courtyard.domain.users import Actor
from courtyard.services.registry import Services
from courtyard.services.sessions import ClientInfo

SESSION_COOKIE = "courtyard_session"
CSRF_COOKIE = "courtyard_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Route option: reachable by users who must enrol in two-factor authentication first.
ENROLMENT_ALLOWED = "two_factor_enrolment_allowed"
MAX_ID = 2**63 - 1

# Path and query types with the bounds every database can hold.
Id = Annotated[int, PathParameter(ge=1, le=MAX_ID)]
Cursor = Annotated[int, QueryParameter(ge=0, le=MAX_ID, description="Return items after this id.")]
Flag = Annotated[bool, QueryParameter()]


@dataclass(frozen=True, slots=True)
class WebConfig:
    """HTTP-facing settings the routes need (cookie flags, lifetimes)."""

    secure_cookies: bool
    session_max_age: int


# Injected by name (``actor``, ``admin_actor``, ``services``, ``client``, ``web``); already typed,
# so Litestar need not validate them again.
CurrentActor = NamedDependency[SkipValidation[Actor]]
AppServices = NamedDependency[SkipValidation[Services]]
Client = NamedDependency[SkipValidation[ClientInfo]]
Web = NamedDependency[SkipValidation[WebConfig]]


def csrf_token_for(session_secret: str) -> str:
    """The CSRF token bound to a session: derived, so nothing extra is stored."""
    return hashlib.sha256(b"courtyard-csrf:" + session_secret.encode()).hexdigest()[:43]


def _bearer(request: Request[Any, Any, State]) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthenticated(
            "use 'Authorization: Bearer <token>'", code="invalid_authorization_header"
        )
    return value.strip()


async def provide_actor(request: Request[Any, Any, State], services: AppServices) -> Actor:
    """The authenticated user, from a bearer token or the session cookie (with CSRF check)."""
    secret = _bearer(request)
    via_cookie = False
    if secret is None:
        secret = request.cookies.get(SESSION_COOKIE)
        via_cookie = secret is not None
    if not secret:
        raise Unauthenticated("sign in first", code="not_signed_in")
    actor = await client_actor(services, secret, provide_client(request))
    unsafe = request.method not in SAFE_METHODS
    if via_cookie and unsafe:
        sent = request.headers.get(CSRF_HEADER, "")
        if not sent or not same_secret(sent, csrf_token_for(secret)):
            raise PermissionDenied(
                f"cookie-authenticated changes need the {CSRF_HEADER} header", code="csrf_failed"
            )
    check_actor(
        actor,
        unsafe=unsafe,
        enrolment_allowed=bool(request.route_handler.opt.get(ENROLMENT_ALLOWED)),
    )
    return actor


async def client_actor(services: Services, secret: str, client: ClientInfo) -> Actor:
    """The user a credential belongs to, with this request's client on it; raises
    Unauthenticated."""
    actor = await services.sessions.authenticate(secret)
    # The cached actor is shared between requests: this request's client goes on a copy.
    return msgspec.structs.replace(actor, ip=client.ip_address, user_agent=client.user_agent)


def check_actor(actor: Actor, *, unsafe: bool, enrolment_allowed: bool) -> None:
    """What an authenticated request must also have: the token's scope for the method, and
    a second factor where the organisation requires one (except on the enrolment routes)."""
    needed = "write" if unsafe else "read"
    if not actor.has_scope(needed):
        raise PermissionDenied(f"this token lacks the '{needed}' scope", code="insufficient_scope")
    if actor.enrolment_required and not enrolment_allowed:
        raise PermissionDenied(
            "your organisation requires two-factor authentication: enrol first "
            "(POST /api/v1/auth/two-factor/enrolment)",
            code="two_factor_enrolment_required",
        )


def pending_credential(request: Request[Any, Any, State]) -> str:
    """The secret of a pending sign-in (bearer or cookie with its CSRF header), unchecked."""
    secret = _bearer(request)
    if secret is None:
        secret = request.cookies.get(SESSION_COOKIE)
        if secret:
            sent = request.headers.get(CSRF_HEADER, "")
            if not sent or not same_secret(sent, csrf_token_for(secret)):
                raise PermissionDenied(
                    f"cookie-authenticated changes need the {CSRF_HEADER} header",
                    code="csrf_failed",
                )
    if not secret:
        raise Unauthenticated("sign in with your password first", code="not_signed_in")
    return secret


async def provide_admin_actor(actor: CurrentActor) -> Actor:
    """An actor whose token may administer (sessions always may; roles are checked later)."""
    if not actor.has_scope("admin"):
        raise PermissionDenied("this token lacks the 'admin' scope", code="insufficient_scope")
    return actor


def provide_client(request: Request[Any, Any, State]) -> ClientInfo:
    """User agent and address of the caller, for the session list."""
    return client_of(request.scope, request.headers.get("user-agent", ""))


def client_of(scope: Any, user_agent: str) -> ClientInfo:
    """:func:`provide_client` from an ASGI scope and its user-agent header."""
    client = scope.get("client")
    return ClientInfo(user_agent=user_agent[:256], ip_address=client[0] if client else "")
