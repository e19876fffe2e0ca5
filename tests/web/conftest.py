"""Browser tests: Debian's Chromium (never a downloaded browser) driven by Playwright against real
`courtyard serve` processes that serve the built client (web/dist, from `make build`)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

from tests.processes import ServerProcess
from tests.support import DatabaseFactory
from tests.web.support import CHROMIUM, CHROMIUM_ARGS, DIST, Site, make_site


@pytest.fixture(scope="session")
def built_client() -> Path:
    """The built client; missing means `make build` did not run, which is a failure, not a skip."""
    if not (DIST / "index.html").is_file():
        pytest.fail(
            f"the web client is not built ({DIST / 'index.html'} is missing): run `make build` "
            "(`make test` builds it first)"
        )
    return DIST


@pytest.fixture(scope="session")
def chromium(built_client: Path) -> str:
    """Debian's Chromium; missing is a failure (`make chromium` installs it), never a download."""
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing: run `make chromium` (Debian's chromium package)")
    return CHROMIUM


@pytest.fixture(scope="session")
async def browser(chromium: str) -> AsyncIterator[Browser]:
    """One headless Chromium for the run; every test uses fresh contexts."""
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=chromium, headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        await launched.close()


@pytest.fixture(scope="module")
async def site(
    databases: DatabaseFactory, workdir: Path, built_client: Path
) -> AsyncIterator[Site]:
    """A real server with an organisation (owner + API helpers), shared by a module's tests."""
    server = ServerProcess(await databases.create(), workdir / f"web-{secrets.token_hex(3)}")
    server.extra_env["COURTYARD_SERVER__STATIC_DIR"] = str(built_client)
    server.start()
    try:
        yield await make_site(server)
    finally:
        server.stop()
