"""Assemble the Litestar application from routes, dependencies and error handlers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from litestar import Litestar, Request, get
from litestar.config.response_cache import ResponseCacheConfig
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import RedocRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.static_files import create_static_files_router
from litestar.types import ASGIApp

from courtyard import __version__
from courtyard.api.deps import WebConfig, provide_admin_actor, provide_client
from courtyard.api.errors import EXCEPTION_HANDLERS
from courtyard.api.firewall import Firewall, NetworkEdge, provide_admitted_actor
from courtyard.api.jsonbody import StrictJSONRequest
from courtyard.api.middleware import EdgeMiddleware
from courtyard.api.openapi import document_problem_responses
from courtyard.api.routes.admin_audit import AuditController
from courtyard.api.routes.auth import (
    AuthController,
    SetupController,
    TwoFactorController,
    UserTwoFactorController,
)
from courtyard.api.routes.channels import ChannelsController, ConversationsController
from courtyard.api.routes.files import FilesController
from courtyard.api.routes.health import healthz, readyz
from courtyard.api.routes.messages import ChannelMessagesController, MessagesController
from courtyard.api.routes.search import search_messages, search_messages_by_body
from courtyard.api.routes.stream import initial_state, presence, receipts
from courtyard.api.routes.users import (
    BotsController,
    InvitesController,
    MeController,
    UsersController,
)
from courtyard.api.routes.web import web_routes
from courtyard.services.ratelimit import RateLimits
from courtyard.services.registry import Services

API_DESCRIPTION = """\
Courtyard's REST API. Authenticate with `Authorization: Bearer <token>` (a session token from
`POST /api/v1/auth/sign-in` with `session_type: "token"`, a personal access token or a bot
token) or with the session cookie plus the `X-CSRF-Token` header for changes.
Errors are `application/problem+json` (RFC 9457) with a stable `code`.
"""


REDOC_SCRIPT = "/static/vendor/redoc.standalone.js"


def static_routes(static_dir: Path | None) -> list[Any]:
    """/static/ from the built assets directory, when it exists."""
    if static_dir is None or not static_dir.is_dir():
        return []
    return [
        create_static_files_router(
            path="/static", directories=[static_dir], include_in_schema=False
        )
    ]


@get("/api/v1/openapi.json", include_in_schema=False, media_type="application/vnd.oai.openapi+json")
async def openapi_document(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """The OpenAPI 3.1 document (also at /api/v1/docs/openapi.json)."""
    schema: dict[str, Any] = request.app.openapi_schema.to_schema()
    return schema


def build_asgi_app(
    services: Services,
    web: WebConfig,
    *,
    max_body_bytes: int,
    api_docs: bool,
    static_dir: Path | None = None,
    on_startup: Sequence[Callable[[], Awaitable[Any]]] = (),
    on_shutdown: Sequence[Callable[[], Awaitable[Any]]] = (),
    extra_route_handlers: Sequence[Any] = (),
) -> Litestar:
    """The HTTP application; everything it needs is passed in."""
    openapi = OpenAPIConfig(
        title="Courtyard API",
        version=__version__,
        description=API_DESCRIPTION,
        path="/api/v1/docs",
        render_plugins=[
            RedocRenderPlugin(path="/", js_url=REDOC_SCRIPT, google_fonts=False, favicon="")
        ]
        if api_docs
        else [],
        components=Components(
            security_schemes={
                "bearer": SecurityScheme(type="http", scheme="bearer"),
                "cookie": SecurityScheme(
                    type="apiKey", name="courtyard_session", security_scheme_in="cookie"
                ),
            }
        ),
        security=[{"bearer": []}, {"cookie": []}],
        use_handler_docstrings=True,
    )
    app = Litestar(
        route_handlers=[
            healthz,
            readyz,
            SetupController,
            AuthController,
            TwoFactorController,
            UserTwoFactorController,
            MeController,
            UsersController,
            BotsController,
            InvitesController,
            ChannelsController,
            ConversationsController,
            ChannelMessagesController,
            MessagesController,
            FilesController,
            search_messages,
            search_messages_by_body,
            initial_state,
            presence,
            receipts,
            AuditController,
            openapi_document,
            *extra_route_handlers,
            *static_routes(static_dir),
            *web_routes(static_dir),
        ],
        dependencies={
            "services": Provide(lambda: services, sync_to_thread=False, use_cache=True),
            "web": Provide(lambda: web, sync_to_thread=False, use_cache=True),
            "actor": Provide(provide_admitted_actor),  # firewall roles + per-user limits
            "admin_actor": Provide(provide_admin_actor),
            "client": Provide(provide_client, sync_to_thread=False),
        },
        exception_handlers=EXCEPTION_HANDLERS,
        request_class=StrictJSONRequest,
        request_max_body_size=max_body_bytes,
        openapi_config=openapi,
        on_startup=list(on_startup),
        on_shutdown=list(on_shutdown),
        response_cache_config=ResponseCacheConfig(),
        debug=False,
        logging_config=None,
    )
    document_problem_responses(app)
    return app


def with_edge(
    app: ASGIApp,
    *,
    firewall: Firewall | None = None,
    limits: RateLimits | None = None,
    hsts: str | None = None,
    timing: bool = False,
) -> ASGIApp:
    """The application behind the edge middleware, which sees every request (even unrouted):
    security headers outermost (so refusals carry them too), then the firewall and rate limits."""
    inner: ASGIApp = app
    if firewall is not None:
        inner = NetworkEdge(app, firewall, limits)
    return EdgeMiddleware(inner, hsts=hsts, timing=timing)
