"""The windowed message list in the browser: only rows near the viewport are in the DOM, yet
older history prepends without moving what the reader sees, new messages keep a reader at the
bottom there, jump to first unread and deep links land on their row, and the keyboard walks
messages past the rendered window."""

from __future__ import annotations

import asyncio
import functools
import re
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from tests.web.support import Site, signed_in_page, wait_until

pytestmark = pytest.mark.timeout(240)

TOTAL = 400
# The rows the list may keep in the DOM: the viewport (~20 rows) plus the overscan each side.
MAX_RENDERED = 120

VISIBLE_MESSAGES = """() => {
  const box = document.querySelector('.message-scroller');
  const view = box.getBoundingClientRect();
  return [...box.querySelectorAll('article.message')]
    .filter((a) => {
      const r = a.getBoundingClientRect();
      return r.bottom > view.top && r.top < view.bottom;
    })
    .map((a) => a.querySelector('.markdown')?.textContent ?? '');
}"""

# Scroll to 700 px (no load yet), let it render, then to 500 px (which loads older history) and
# read what is on screen before the older page arrives.
SCROLL_NEAR_TOP = (
    """async (el) => {
  const frame = () => new Promise((r) => requestAnimationFrame(() => r()));
  el.scrollTop = 700; await frame(); await frame();
  el.scrollTop = 500;
  return ("""
    + VISIBLE_MESSAGES
    + """)();
}"""
)
AFTER_TWO_FRAMES = (
    """async () => {
  const frame = () => new Promise((r) => requestAnimationFrame(() => r()));
  await frame(); await frame();
  return ("""
    + VISIBLE_MESSAGES
    + """)();
}"""
)


async def seed(site: Site, count: int) -> tuple[Any, Any, Any, list[dict[str, Any]]]:
    writer = await site.person("writer", display_name="Writer")
    reader = await site.person("reader", display_name="Reader")
    channel = await site.channel(writer, [reader])
    sent: list[dict[str, Any]] = []
    for start in range(0, count, 20):
        batch = await asyncio.gather(
            *(
                site.send(writer, channel["id"], f"history line {n:04d}")
                for n in range(start, min(count, start + 20))
            )
        )
        sent.extend(batch)
    sent.sort(key=lambda m: m["seq"])
    return writer, reader, channel, sent


async def rows(page: Page) -> tuple[int, int]:
    """(loaded, rendered) rows of the list."""
    box = page.locator(".message-rows")
    return int(await box.get_attribute("data-loaded") or 0), int(
        await box.get_attribute("data-rendered") or 0
    )


async def test_long_history_is_windowed_and_keeps_its_place(browser: Browser, site: Site) -> None:
    writer, reader, channel, sent = await seed(site, TOTAL)
    texts = [m["text"] for m in sent]
    # The reader has read the first 100 messages.
    await site.call(
        "POST", f"/channels/{channel['id']}/read", reader.token, {"seq": sent[99]["seq"]}
    )
    b = await signed_in_page(browser, site, reader, f"/c/{channel['id']}")
    page = b.page
    try:
        scroller = page.locator(".message-scroller")
        await expect(page.locator(".message-rows")).to_have_attribute("data-loaded", "50")
        # At the bottom: the newest message is on screen.
        await on_screen(page, texts[-1])

        # Scrolling up loads older pages; what was at the top stays at the top.
        for _ in range(6):
            loaded = await _loaded(page)
            before = await scroller.evaluate(SCROLL_NEAR_TOP)
            await wait_until(
                functools.partial(_more_than, page, loaded), f"more than {loaded} messages loaded"
            )
            await expect(page.locator(".loading-older")).to_have_count(0)
            after = await page.evaluate(AFTER_TWO_FRAMES)
            assert after[0] == before[0], (before[:3], after[:3])
        loaded, rendered = await rows(page)
        assert loaded >= 300, loaded
        assert rendered <= MAX_RENDERED, rendered

        # A new message while scrolled up does not move the view; at the bottom it is shown.
        visible = await page.evaluate(VISIBLE_MESSAGES)
        await site.send(writer, channel["id"], "arrives while reading old history")
        await expect(page.locator(".message-rows")).to_have_attribute(
            "data-loaded", str(loaded + 1)
        )
        assert (await page.evaluate(VISIBLE_MESSAGES))[0] == visible[0]
        await scroller.evaluate("el => { el.scrollTop = el.scrollHeight; }")
        await on_screen(page, "arrives while reading old history")
        await site.send(writer, channel["id"], "arrives at the bottom")
        await on_screen(page, "arrives at the bottom")

        # Keyboard: Page Up walks from message to message, past the rendered window.
        last = page.locator(".message-scroller article.message").last
        await last.focus()
        for _ in range(MAX_RENDERED + 10):
            await page.keyboard.press("PageUp")
        focused = await page.evaluate(
            "document.activeElement.matches('article.message') && "
            "document.activeElement.querySelector('.markdown').textContent"
        )
        assert isinstance(focused, str) and focused.startswith("history line"), focused
        assert texts.index(focused) <= len(texts) - MAX_RENDERED, focused
        assert focused in await page.evaluate(VISIBLE_MESSAGES)
        b.assert_clean()
    finally:
        await b.context.close()


async def _loaded(page: Page) -> int:
    return (await rows(page))[0]


async def _more_than(page: Page, count: int) -> bool:
    return await _loaded(page) > count


async def on_screen(page: Page, text: str) -> None:
    """Wait until a message with exactly ``text`` is within the scroller's viewport."""

    async def check() -> bool:
        return text in await page.evaluate(VISIBLE_MESSAGES)

    await wait_until(check, f"{text!r} on screen")


async def test_jump_to_unread_and_a_deep_link_land_on_their_row(
    browser: Browser, site: Site
) -> None:
    writer, reader, channel, sent = await seed(site, 200)
    await site.call(
        "POST", f"/channels/{channel['id']}/read", reader.token, {"seq": sent[59]["seq"]}
    )
    b = await signed_in_page(browser, site, reader, f"/c/{channel['id']}")
    page = b.page
    try:
        await page.get_by_role("button", name="Jump to first unread").click()
        separator = page.locator(".unread-separator")
        await expect(separator).to_be_in_viewport()
        await on_screen(page, sent[60]["text"])

        # A deep link to an old message opens it in context, highlighted and on screen.
        target = sent[20]
        await page.goto(f"/c/{channel['id']}/m/{target['id']}")
        row = page.locator(f".message-scroller [data-message-id='{target['id']}']")
        await expect(row).to_have_class(re.compile(r"\bhighlighted\b"))
        await expect(row).to_be_in_viewport()
        visible = await page.evaluate(VISIBLE_MESSAGES)
        assert sent[19]["text"] in visible or sent[21]["text"] in visible, visible
        b.assert_clean()
    finally:
        await b.context.close()
