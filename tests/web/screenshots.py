"""Screenshots of the web client for the README (`make screenshots`): light, dark, Chinese, phone.

Starts a real server on a scratch SQLite database, fills it with a small conversation and
photographs it in Debian's Chromium. Writes docs/screenshots/*.png.
"""

from __future__ import annotations

import asyncio
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from playwright.async_api import Page, async_playwright

from tests.processes import COURTYARD, ServerProcess, free_port
from tests.support import PASSWORD
from tests.web.support import CHROMIUM, CHROMIUM_ARGS, DIST, Site, User, make_site

OUT = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


async def _conversation(site: Site) -> tuple[dict[str, Any], User]:
    ada = await site.person("ada", "Ada Lovelace", username="ada")
    grace = await site.person("grace", "Grace Hopper", username="grace")
    linus = await site.person("linus", "Linus", username="linus")
    wei = await site.person("wei", "王伟", username="wei")
    people = [grace, linus, wei]
    general = await site.channel(
        ada, people, name="general", topic="Company-wide announcements and chat"
    )
    await site.channel(grace, [ada, linus], name="releases", topic="Build and release")
    await site.channel(wei, [ada], name="中文", topic="中文讨论")
    await site.call("POST", "/conversations", grace.token, {"user_ids": [ada.id]})
    cid = general["id"]
    await site.send(grace, cid, "Morning all! The **1.4 release** is cut and tagged.")
    await site.send(grace, cid, "Changelog is in the usual place.")
    root = await site.send(linus, cid, "Anyone seen the flaky test in `storage`? Trace:")
    await site.send(
        linus,
        cid,
        "```python\nasync def test_resume(server):\n    frames = await client.until(caught_up)\n"
        "    assert ids == sorted(set(ids))  # no duplicates\n```",
    )
    for text in ("Looking now", "It was a fixed sleep; replaced by an awaited event."):
        await site.send(grace, cid, text, thread_root_id=root["id"])
    await site.send(wei, cid, f"@{ada.username} 数据安全的文档我已经更新了，请看一下 🙏")
    last = await site.send(ada, cid, f"Thanks @{wei.username}! Reviewing after lunch.")
    for who, emoji in ((grace, "🎉"), (linus, "🎉"), (wei, "👍")):
        await site.call("PUT", f"/messages/{last['id']}/reactions/{emoji}", who.token)
    await site.call("PUT", f"/messages/{root['id']}/reactions/👀", ada.token)
    return general, ada


async def _sign_in(page: Page, user: User) -> None:
    await page.goto("/sign-in")
    await page.locator("input[name=login]").fill(user.username)
    await page.locator("input[name=password]").fill(PASSWORD)
    await page.locator("button[type=submit]").click()
    await page.get_by_test_id("me").wait_for(state="attached")


async def main() -> None:
    if not (DIST / "index.html").is_file():
        raise SystemExit("web/dist is missing: run `make build` first")
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        server = ServerProcess(f"sqlite:///{tmp}/shots.db", Path(tmp) / "data")
        server.extra_env["COURTYARD_SERVER__STATIC_DIR"] = str(DIST)
        server.port = free_port()
        subprocess.run([COURTYARD, "migrate"], env=server.env(), check=True, capture_output=True)
        server.start()
        try:
            site = await make_site(server)
            general, ada = await _conversation(site)
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(
                    executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
                )
                shots: list[tuple[str, dict[str, Any], str, str]] = [
                    ("light", {"viewport": {"width": 1280, "height": 760}}, "light", "en"),
                    ("dark", {"viewport": {"width": 1280, "height": 760}}, "dark", "en"),
                    ("chinese", {"viewport": {"width": 1280, "height": 760}}, "light", "zh-CN"),
                    (
                        "mobile",
                        {"viewport": {"width": 360, "height": 740}, "device_scale_factor": 2},
                        "light",
                        "en",
                    ),
                ]
                for name, options, theme, lang in shots:
                    context = await browser.new_context(base_url=server.url, **options)
                    await context.add_init_script(
                        f"localStorage.setItem('courtyard.theme', '{theme}');"
                        f"localStorage.setItem('courtyard.locale', '{lang}');"
                    )
                    page = await context.new_page()
                    await _sign_in(page, ada)
                    await page.goto(f"/c/{general['id']}")
                    await page.locator(".message-scroller article.message").last.wait_for()
                    if name in ("light", "dark"):
                        await page.locator(".replies").first.click()
                        await page.locator(".side-panel article.message").last.wait_for()
                    await page.mouse.move(0, 0)
                    await page.screenshot(path=str(OUT / f"{name}.png"))
                    await context.close()
                    print(f"wrote docs/screenshots/{name}.png")
                await browser.close()
        finally:
            server.stop()


if __name__ == "__main__":
    asyncio.run(main())
