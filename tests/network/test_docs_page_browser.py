"""The API reference page renders in a real browser under its hash-based CSP (no
'unsafe-inline' scripts, no violations)."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from playwright.async_api import async_playwright

from tests.processes import ServerProcess
from tests.support import DatabaseFactory
from tests.web.support import CHROMIUM, CHROMIUM_ARGS, DIST


def _require_browser_and_build() -> None:
    if not (DIST / "vendor" / "redoc.standalone.js").is_file():
        pytest.fail("web/dist is not built: run `make build`")
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing: run `make chromium`")


async def test_the_api_docs_render_without_csp_violations(
    databases: DatabaseFactory, workdir: Path
) -> None:
    _require_browser_and_build()
    server = ServerProcess(
        await databases.create(),
        workdir / f"docs-{secrets.token_hex(3)}",
        extra_env={"COURTYARD_SERVER__STATIC_DIR": str(DIST)},
    )
    server.start()
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            try:
                page = await browser.new_page()
                problems: list[str] = []
                page.on(
                    "console",
                    lambda m: problems.append(m.text) if m.type == "error" else None,
                )
                page.on("pageerror", lambda e: problems.append(str(e)))
                await page.goto(f"{server.url}/api/v1/docs")
                # Redoc has run (its inline init script was allowed) and drawn the operations.
                await page.get_by_text("Courtyard API").first.wait_for(timeout=20_000)
                await page.locator("[data-section-id]").first.wait_for(timeout=20_000)
                violations = [p for p in problems if "Content Security Policy" in p]
                # Redoc's footer links its logo from a CDN: blocked (nothing leaves for a third
                # party, and the page works without it). Nothing else may be refused.
                others = [v for v in violations if "https://cdn.redoc.ly/" not in v]
                assert others == [], others
                assert all("img-src" in v for v in violations), violations
            finally:
                await browser.close()
    finally:
        server.stop()
