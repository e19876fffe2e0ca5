"""Helpers for the browser tests: the organisation over HTTP, pages that record what went wrong."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Dialog, Page, expect

from tests.processes import ServerProcess
from tests.support import PASSWORD, unique

DIST = Path(__file__).resolve().parents[2] / "web" / "dist"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 15_000
REPORT_CSP_VIOLATIONS = (
    "document.addEventListener('securitypolicyviolation', e => console.error("
    "'Content Security Policy violation: ' + e.violatedDirective + ' ' + e.blockedURI));"
)
expect.set_options(timeout=WAIT_MS)


@dataclass
class User:
    """A person in the test organisation."""

    id: int
    username: str
    display_name: str
    token: str


@dataclass
class Site:
    """A running server, its owner's bearer token, and helpers."""

    server: ServerProcess
    owner: User

    @property
    def url(self) -> str:
        """Base URL."""
        return self.server.url

    async def call(
        self, method: str, path: str, token: str, json: Any = None, expect_status: int = 0
    ) -> Any:
        """One API request as a bearer-token client."""
        async with httpx.AsyncClient(base_url=self.url, timeout=15) as client:
            response = await client.request(
                method, f"/api/v1{path}", json=json, headers={"Authorization": f"Bearer {token}"}
            )
        if expect_status:
            assert response.status_code == expect_status, response.text
        else:
            assert response.is_success, response.text
        return response.json() if response.content else None

    async def person(
        self,
        prefix: str,
        display_name: str | None = None,
        role: str = "member",
        username: str | None = None,
    ) -> User:
        """A new user with the shared password, signed in over the API."""
        username = username or unique(prefix).replace("-", "_")
        body: dict[str, Any] = {"username": username, "password": PASSWORD, "role": role}
        if display_name is not None:
            body["display_name"] = display_name
        await self.call("POST", "/users", self.owner.token, body, expect_status=201)
        return await sign_in(self.url, username)

    async def channel(self, creator: User, members: list[User], **extra: Any) -> dict[str, Any]:
        """A public channel of ``creator`` plus ``members``."""
        body = {"name": unique("room"), "member_ids": [m.id for m in members], **extra}
        channel: dict[str, Any] = await self.call("POST", "/channels", creator.token, body)
        return channel

    async def send(self, who: User, channel_id: int, text: str, **extra: Any) -> dict[str, Any]:
        """Post a message over the API."""
        message: dict[str, Any] = await self.call(
            "POST", f"/channels/{channel_id}/messages", who.token, {"text": text, **extra}
        )
        return message


async def sign_in(url: str, username: str) -> User:
    """A bearer token for ``username``."""
    async with httpx.AsyncClient(base_url=url, timeout=15) as client:
        response = await client.post(
            "/api/v1/auth/sign-in",
            json={"login": username, "password": PASSWORD, "session_type": "token"},
        )
    assert response.status_code == 200, response.text
    data = response.json()
    user = data["user"]
    return User(user["id"], user["username"], user["display_name"], data["token"])


async def make_site(server: ServerProcess) -> Site:
    """Create the organisation with the printed setup token; the owner is 'owner'."""
    token = server.setup_token()
    assert token, server.log()
    async with httpx.AsyncClient(base_url=server.url, timeout=15) as client:
        response = await client.post(
            "/api/v1/setup",
            json={
                "setup_token": token,
                "organization_name": "Web tests",
                "username": "owner",
                "password": PASSWORD,
                "session_type": "token",
            },
        )
    assert response.status_code == 201, response.text
    data = response.json()
    owner = User(data["user"]["id"], "owner", data["user"]["display_name"], data["token"])
    return Site(server, owner)


@dataclass
class Watched:
    """A page plus everything that must not happen on it: dialogs, CSP violations, script errors."""

    page: Page
    context: BrowserContext
    dialogs: list[str] = field(default_factory=list)
    csp: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    accept_dialogs: bool = False

    def assert_clean(self) -> None:
        """No unexpected dialog, CSP violation or uncaught error happened."""
        assert self.csp == [], self.csp
        assert self.errors == [], self.errors
        if not self.accept_dialogs:
            assert self.dialogs == [], self.dialogs


async def open_page(browser: Browser, base_url: str, **context_options: Any) -> Watched:
    """A fresh context (own cookies and storage) and a watched page in it."""
    context = await browser.new_context(base_url=base_url, **context_options)
    page = await context.new_page()
    watched = Watched(page, context)

    async def on_dialog(dialog: Dialog) -> None:
        watched.dialogs.append(f"{dialog.type}: {dialog.message}")
        if watched.accept_dialogs:
            await dialog.accept()
        else:
            await dialog.dismiss()

    def on_console(message: ConsoleMessage) -> None:
        text = message.text
        if "Content Security Policy" in text or "Content-Security-Policy" in text:
            watched.csp.append(text)

    page.on("dialog", on_dialog)
    page.on("console", on_console)
    page.on("pageerror", lambda exc: watched.errors.append(str(exc)))
    # CSP violations also reach the page as events: record them from inside too.
    await page.add_init_script(REPORT_CSP_VIOLATIONS)
    return watched


async def signed_in_page(
    browser: Browser, site: Site, user: User, path: str = "/", **options: Any
) -> Watched:
    """A page where ``user`` signed in through the sign-in form."""
    watched = await open_page(browser, site.url, **options)
    page = watched.page
    await page.goto(path)
    await page.get_by_label("Username or email").fill(user.username)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_test_id("me")).to_have_text(user.display_name)
    return watched


async def open_channel(page: Page, channel_id: int) -> None:
    """Click the channel in the sidebar and wait for its view."""
    await page.locator(f'.sidebar a[data-channel-id="{channel_id}"]').click()
    await expect(page.get_by_test_id("composer")).to_be_visible()


def messages_with(page: Page, text: str) -> Any:
    """Message elements whose body contains ``text``."""
    return page.locator(".message-scroller article.message", has_text=text)


async def wait_until(
    check: Callable[[], Awaitable[Any]], what: str, timeout_ms: int = WAIT_MS
) -> Any:
    """Poll ``check`` until it returns a truthy value (returned), failing after ``timeout_ms``."""
    deadline = asyncio.get_running_loop().time() + timeout_ms / 1000
    last: Any = None
    while True:
        last = await check()
        if last:
            return last
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what} (last: {last!r})")
        await asyncio.sleep(0.05)
