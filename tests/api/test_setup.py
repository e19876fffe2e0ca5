"""First run: setup token, organisation and owner creation."""

from __future__ import annotations

from pathlib import Path

import httpx

from courtyard.app import build_services
from tests.support import PASSWORD, DatabaseFactory, LiveServer, server_settings


async def _bare_server(databases: DatabaseFactory, workdir: Path) -> LiveServer:
    url = await databases.create()
    settings = server_settings(url, workdir)
    server = LiveServer(build_services(settings), settings)
    await server.start()
    return server


def _setup_body(token: str, **extra: object) -> dict[str, object]:
    return {
        "setup_token": token,
        "organization_name": "Acme Hospital",
        "username": "founder",
        "password": PASSWORD,
        "session_type": "token",
        **extra,
    }


async def test_setup_creates_owner_only_with_the_printed_token(
    databases: DatabaseFactory, workdir: Path
) -> None:
    server = await _bare_server(databases, workdir)
    try:
        async with httpx.AsyncClient(base_url=server.url) as client:
            state = await client.get("/api/v1/setup")
            assert state.json() == {"needs_setup": True, "organization": None}

            token = await server.services.setup.issue_setup_token()
            assert token is not None and token.startswith("cysetup_")

            wrong = await client.post("/api/v1/setup", json=_setup_body("cysetup_wrong"))
            assert wrong.status_code == 403
            assert wrong.headers["content-type"] == "application/problem+json"
            assert wrong.json()["code"] == "invalid_setup_token"

            done = await client.post("/api/v1/setup", json=_setup_body(token))
            assert done.status_code == 201, done.text
            body = done.json()
            assert body["user"]["role"] == "owner"
            assert body["token"].startswith("cys_")

            me = await client.get(
                "/api/v1/me", headers={"Authorization": f"Bearer {body['token']}"}
            )
            assert me.status_code == 200 and me.json()["username"] == "founder"

            state = await client.get("/api/v1/setup")
            assert state.json()["needs_setup"] is False
            assert state.json()["organization"]["name"] == "Acme Hospital"

            # The token is single-use, and no second owner can be created.
            again = await client.post("/api/v1/setup", json=_setup_body(token, username="intruder"))
            assert again.status_code == 403
            assert await server.services.setup.issue_setup_token() is None
    finally:
        await server.stop()


async def test_setup_token_is_replaced_when_a_new_one_is_issued(
    databases: DatabaseFactory, workdir: Path
) -> None:
    server = await _bare_server(databases, workdir)
    try:
        first = await server.services.setup.issue_setup_token()
        second = await server.services.setup.issue_setup_token()
        assert first and second and first != second
        async with httpx.AsyncClient(base_url=server.url) as client:
            stale = await client.post("/api/v1/setup", json=_setup_body(first))
            assert stale.status_code == 403
            fresh = await client.post("/api/v1/setup", json=_setup_body(second))
            assert fresh.status_code == 201
    finally:
        await server.stop()


async def test_setup_with_cookie_session_sets_httponly_cookie(
    databases: DatabaseFactory, workdir: Path
) -> None:
    server = await _bare_server(databases, workdir)
    try:
        token = await server.services.setup.issue_setup_token()
        assert token
        async with httpx.AsyncClient(base_url=server.url) as client:
            done = await client.post(
                "/api/v1/setup", json=_setup_body(token, session_type="cookie")
            )
            assert done.status_code == 201
            cookies = done.headers.get_list("set-cookie")
            session_cookie = next(c for c in cookies if c.startswith("courtyard_session="))
            assert "HttpOnly" in session_cookie and "SameSite=lax" in session_cookie.replace(
                "Lax", "lax"
            )
            assert done.json()["token"] is None
            assert done.json()["csrf_token"]
    finally:
        await server.stop()


async def test_api_docs_load_their_script_from_this_server(
    databases: DatabaseFactory, workdir: Path
) -> None:
    """Courtyard must work with no internet access: nothing comes from a CDN."""
    server = await _bare_server(databases, workdir)
    try:
        async with httpx.AsyncClient(base_url=server.url) as client:
            page = await client.get("/api/v1/docs")
            assert page.status_code == 200
            assert "/static/vendor/redoc.standalone.js" in page.text
            assert "https://" not in page.text, "no third-party assets"
            script = await client.get("/static/vendor/redoc.standalone.js")
            assert script.status_code == 200, "run `make build` to vendor the docs script"
            assert len(script.content) > 100_000
            document = await client.get("/api/v1/openapi.json")
            assert document.json()["openapi"].startswith("3.1")
    finally:
        await server.stop()
