"""The web client in real Chromium: live chat between two people, threads, reactions, edits."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, expect

from tests.web.support import Site, messages_with, open_channel, signed_in_page

pytestmark = pytest.mark.timeout(90)


async def test_two_people_chat_live(browser: Browser, site: Site) -> None:
    alice = await site.person("alice", "Alice Liddell")
    bob = await site.person("bob", "Bob Builder")
    channel = await site.channel(alice, [bob])
    a = await signed_in_page(browser, site, alice)
    b = await signed_in_page(browser, site, bob)
    try:
        await open_channel(a.page, channel["id"])
        await open_channel(b.page, channel["id"])
        composer = a.page.get_by_test_id("composer")
        await composer.fill("Hello Bob, first line")
        await composer.press("Shift+Enter")
        await composer.type("second line")
        await expect(composer).to_have_value("Hello Bob, first line\nsecond line")
        await composer.press("Enter")
        await expect(composer).to_have_value("")
        arrived = messages_with(b.page, "Hello Bob, first line")
        await expect(arrived).to_have_count(1)
        await expect(arrived).to_contain_text("second line")
        await expect(arrived.locator(".sender")).to_have_text("Alice Liddell")

        reply = b.page.get_by_test_id("composer")
        await reply.fill("Hi Alice!")
        await reply.press("Enter")
        await expect(messages_with(a.page, "Hi Alice!")).to_have_count(1)
        # Exactly once on the sender's side too (the optimistic copy is replaced, not duplicated).
        await expect(messages_with(b.page, "Hi Alice!")).to_have_count(1)
        await expect(b.page.locator(".pending")).to_have_count(0)
        a.assert_clean()
        b.assert_clean()
    finally:
        await a.context.close()
        await b.context.close()


async def test_unread_badge_and_title_for_another_channel(browser: Browser, site: Site) -> None:
    alice = await site.person("alice", "Alice")
    bob = await site.person("bob", "Bob")
    first = await site.channel(alice, [bob])
    second = await site.channel(alice, [bob])
    b = await signed_in_page(browser, site, bob)
    try:
        await open_channel(b.page, first["id"])
        await site.send(alice, second["id"], f"ping @{bob.username}")
        badge = b.page.locator(f'.sidebar a[data-channel-id="{second["id"]}"] .badge')
        await expect(badge).to_have_text("1")
        await expect(b.page).to_have_title("(1) " + first["name"] + " · Courtyard")
        await open_channel(b.page, second["id"])
        await expect(badge).to_have_count(0)
        await expect(messages_with(b.page, "ping").locator(".mention-me")).to_have_count(1)
        b.assert_clean()
    finally:
        await b.context.close()
