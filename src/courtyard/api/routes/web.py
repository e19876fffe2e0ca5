"""The browser client: index.html for the client's routes, hashed assets with a long cache.

The client is built by `make build` into the static directory (web/dist). Its HTML is never
cached (a new build is picked up at once) and carries a strict Content Security Policy: no
inline script or style, nothing from another origin, no framing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from litestar import Response, get
from litestar.datastructures import CacheControlHeader
from litestar.params import PathParameter
from litestar.static_files import create_static_files_router

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
NOT_BUILT = (
    "The Courtyard web client is not built. Run `make build` (it runs `npm ci` and `vite build` "
    "into web/dist), then reload this page.\n"
)

# Pages of the single-page client; each answers index.html and the client routes itself.
CLIENT_PAGES = ["/", "/setup", "/sign-in", "/settings", "/admin", "/search"]
CLIENT_PAGE_TREES = ["/c/{rest:path}", "/invite/{rest:path}", "/admin/{rest:path}"]


def _html_response(static_dir: Path) -> Response[bytes]:
    headers = {"cache-control": "no-store", "content-security-policy": CONTENT_SECURITY_POLICY}
    try:
        body = (static_dir / "index.html").read_bytes()
    except OSError:
        return Response(
            NOT_BUILT.encode(),
            status_code=503,
            media_type="text/plain; charset=utf-8",
            headers=headers,
        )
    return Response(body, media_type="text/html; charset=utf-8", headers=headers)


def web_routes(static_dir: Path | None) -> list[Any]:
    """Handlers serving the client from ``static_dir`` (none when there is no directory set)."""
    if static_dir is None:
        return []
    root = static_dir

    @get(CLIENT_PAGES, include_in_schema=False, sync_to_thread=False)
    def client_page() -> Response[bytes]:
        """The client's HTML for one of its top-level pages."""
        return _html_response(root)

    @get(CLIENT_PAGE_TREES, include_in_schema=False, sync_to_thread=False)
    def client_subpage(rest: Annotated[Path, PathParameter()]) -> Response[bytes]:
        """The client's HTML for a page below a channel, invite or admin path."""
        return _html_response(root)

    routes: list[Any] = [client_page, client_subpage]
    assets = static_dir / "assets"
    if assets.is_dir():
        routes.append(
            create_static_files_router(
                path="/assets",
                directories=[assets],
                include_in_schema=False,
                cache_control=CacheControlHeader(max_age=31_536_000, public=True, immutable=True),
                name="web_assets",
            )
        )
    return routes
