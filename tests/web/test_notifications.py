"""Desktop notifications (after the user turns them on and the browser allows them): a mention
and a direct message notify, a plain message in a channel does not, and a muted channel never
does. Notification calls are recorded by an init script that stands in for window.Notification."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Browser, expect

from tests.web.support import Site, messages_with, open_channel, signed_in_page, wait_until

pytestmark = pytest.mark.timeout(120)

RECORD_NOTIFICATIONS = """
window.__notifications = [];
const NativeNotification = window.Notification;
window.Notification = class {
  constructor(title, options) {
    window.__notifications.push({ title, body: (options && options.body) || '' });
    this.onclick = null;
  }
  close() {}
  static get permission() { return NativeNotification.permission; }
  static requestPermission(...args) { return NativeNotification.requestPermission(...args); }
};
"""


async def test_mentions_and_direct_messages_notify_plain_and_muted_do_not(
    browser: Browser, site: Site
) -> None:
    alice = await site.person("alice", "Alice")
    bob = await site.person("bob", "Bob")
    general = await site.channel(alice, [bob])
    muted = await site.channel(alice, [bob])
    quiet = await site.channel(alice, [bob])
    dm = await site.call("POST", "/conversations", alice.token, {"user_ids": [bob.id]})
    b = await signed_in_page(browser, site, bob, permissions=["notifications"])
    page = b.page
    try:
        await page.add_init_script(RECORD_NOTIFICATIONS)
        await page.reload()
        await expect(page.get_by_test_id("me")).to_have_text("Bob")
        # Turn them on in Preferences (the browser has granted the permission already).
        await page.get_by_role("link", name="Preferences").click()
        await page.get_by_label("Desktop notifications for mentions and direct messages").check()
        # Mute one channel from its header, then read another one.
        await page.goto(f"/c/{muted['id']}")
        await page.get_by_role("button", name="Mute").click()
        await expect(page.get_by_role("button", name="Unmute")).to_be_visible()
        await open_channel(page, quiet["id"])

        async def notes() -> list[dict[str, Any]]:
            result: list[dict[str, Any]] = await page.evaluate("window.__notifications")
            return result

        async def count_at_least(n: int) -> bool:
            return len(await notes()) >= n

        # Each silent case is sent before a case that notifies: events arrive in order, so by
        # the time the later one has notified, the earlier one would have too.
        await site.send(alice, general["id"], "plain message for everyone")
        await site.send(alice, muted["id"], f"@{bob.username} in the muted channel")
        await site.send(alice, general["id"], f"@{bob.username} look at this")
        await site.send(alice, dm["id"], "a direct message")
        await wait_until(lambda: count_at_least(2), "two notifications")
        assert await notes() == [
            {"title": "Alice", "body": f"@{bob.username} look at this"},
            {"title": "Alice", "body": "a direct message"},
        ]

        # Nothing for the channel being read.
        await site.send(alice, quiet["id"], f"@{bob.username} here, where you are reading")
        await expect(messages_with(page, "where you are reading")).to_have_count(1)
        await site.send(alice, dm["id"], "and one more direct message")
        await wait_until(lambda: count_at_least(3), "a third notification")
        assert [n["body"] for n in await notes()][2:] == ["and one more direct message"]
        b.assert_clean()
    finally:
        await b.context.close()
