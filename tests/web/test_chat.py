"""The web client in real Chromium: live chat between two people, threads, reactions, edits."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Route, expect

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


async def test_thread_reply_reaction_edit_and_delete(browser: Browser, site: Site) -> None:
    alice = await site.person("alice", "Alice")
    bob = await site.person("bob", "Bob")
    channel = await site.channel(alice, [bob])
    root = await site.send(bob, channel["id"], "Release on Friday?")
    a = await signed_in_page(browser, site, alice)
    b = await signed_in_page(browser, site, bob)
    a.accept_dialogs = True  # the delete confirmation
    try:
        await open_channel(a.page, channel["id"])
        await open_channel(b.page, channel["id"])
        message = messages_with(a.page, "Release on Friday?")
        await message.hover()
        await message.get_by_role("button", name="Reply in thread").click()
        panel = a.page.get_by_role("complementary", name="Thread")
        await expect(panel).to_contain_text("Release on Friday?")
        thread_composer = panel.get_by_test_id("thread-composer")
        await expect(thread_composer).to_be_focused()
        await thread_composer.fill("Yes, after the freeze")
        await thread_composer.press("Enter")
        await expect(
            panel.locator("article.message", has_text="Yes, after the freeze")
        ).to_have_count(1)
        # Bob sees the reply count on the root, live, and the reply in his thread panel.
        root_id = root["id"]
        on_bob = b.page.locator(f".message-scroller [data-message-id='{root_id}']")
        await expect(on_bob.get_by_role("button", name="1 reply")).to_be_visible()
        await on_bob.get_by_role("button", name="1 reply").click()
        await expect(b.page.get_by_role("complementary", name="Thread")).to_contain_text(
            "Yes, after the freeze"
        )
        await b.page.keyboard.press("Escape")
        await expect(b.page.get_by_role("complementary", name="Thread")).to_have_count(0)

        # A reaction from the picker shows up for both.
        await on_bob.hover()
        await on_bob.get_by_role("button", name="Add reaction", exact=True).click()
        await (
            b.page.get_by_role("dialog", name="Pick a reaction")
            .get_by_role("button", name="🎉")
            .click()
        )
        await expect(
            messages_with(a.page, "Release on Friday?").locator(".reaction")
        ).to_contain_text("🎉 1")
        await expect(on_bob.locator(".reaction.mine")).to_have_count(1)

        # Bob edits his message; Alice sees the new text marked edited; Bob (the author) sees
        # the history.
        await on_bob.hover()
        await on_bob.get_by_role("button", name="Edit").click()
        editor = on_bob.get_by_role("textbox", name="Edit")
        await editor.fill("Release on Monday?")
        await editor.press("Enter")
        edited = messages_with(a.page, "Release on Monday?")
        await expect(edited).to_have_count(1)
        await expect(edited.locator(".edited")).to_have_text("(edited)")
        await on_bob.get_by_role("button", name="(edited)").click()
        history = b.page.get_by_role("dialog", name="Edit history")
        await expect(history).to_contain_text("Release on Friday?")
        await b.page.keyboard.press("Escape")
        await expect(history).to_have_count(0)

        # Alice deletes her own message (after confirming); Bob sees it go.
        mine = await site.send(alice, channel["id"], "typo message")
        own = messages_with(a.page, "typo message")
        await expect(own).to_have_count(1)
        await own.hover()
        await own.get_by_role("button", name="Delete").click()
        await expect(a.page.locator(f'[data-message-id="{mine["id"]}"]')).to_contain_text(
            "This message was deleted."
        )
        await expect(b.page.locator(f'[data-message-id="{mine["id"]}"]')).to_contain_text(
            "This message was deleted."
        )
        a.assert_clean()
        b.assert_clean()
    finally:
        await a.context.close()
        await b.context.close()


async def test_draft_survives_a_reload_and_failed_send_can_be_retried(
    browser: Browser, site: Site
) -> None:
    alice = await site.person("alice", "Alice")
    channel = await site.channel(alice, [])
    a = await signed_in_page(browser, site, alice)
    try:
        await open_channel(a.page, channel["id"])
        composer = a.page.get_by_test_id("composer")
        await composer.fill("half-written thought")
        await a.page.reload()
        await expect(a.page.get_by_test_id("composer")).to_have_value("half-written thought")

        # The send fails on the network: it stays visible as failed, and Retry delivers it
        # exactly once.
        async def drop(route: Route) -> None:
            await route.abort("internetdisconnected")

        sends = "**/api/v1/channels/*/messages"
        await a.page.route(sends, drop)
        await a.page.get_by_test_id("composer").press("Enter")
        failed = a.page.locator(".pending.failed", has_text="half-written thought")
        await expect(failed).to_be_visible()
        await a.page.unroute(sends, drop)
        await failed.get_by_role("button", name="Retry").click()
        await expect(messages_with(a.page, "half-written thought")).to_have_count(1)
        await expect(a.page.locator(".pending")).to_have_count(0)
        history = await site.call("GET", f"/channels/{channel['id']}/messages", alice.token)
        texts = [m["text"] for m in history["messages"]]
        assert texts.count("half-written thought") == 1
        await a.page.reload()
        await expect(a.page.get_by_test_id("composer")).to_have_value("")
        a.assert_clean()
    finally:
        await a.context.close()
