"""Serving the client: HTML never cached and under a strict CSP; hashed assets cached for long."""

from __future__ import annotations

import re

import httpx

from tests.web.support import Site

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


async def test_client_pages_assets_and_api_routes_coexist(site: Site) -> None:
    async with httpx.AsyncClient(base_url=site.url, timeout=10) as client:
        for path in ("/", "/sign-in", "/setup", "/c/12", "/c/12/m/345", "/invite/abc", "/admin"):
            page = await client.get(path)
            assert page.status_code == 200, path
            assert page.headers["content-type"].startswith("text/html")
            assert page.headers["cache-control"] == "no-store"
            assert page.headers["content-security-policy"] == CSP
            assert "<script>" not in page.text and "<style" not in page.text, "inline code in HTML"
        html = (await client.get("/")).text
        assets = re.findall(r'(?:src|href)="(/assets/[^"]+)"', html)
        assert any(a.endswith(".js") for a in assets) and any(a.endswith(".css") for a in assets)
        for asset in assets:
            response = await client.get(asset)
            assert response.status_code == 200, asset
            assert "immutable" in response.headers["cache-control"]
            assert "max-age=31536000" in response.headers["cache-control"]
        missing = await client.get("/api/v1/no-such-thing")
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("application/problem+json")
        assert (await client.get("/assets/../index.html")).status_code == 404
        assert (await client.get("/static/vendor/redoc.standalone.js")).status_code == 200
        assert (await client.get("/api/v1/docs")).status_code == 200
        assert (await client.get("/api/v1/openapi.json")).status_code == 200
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/no-client-route-here")).status_code == 404
