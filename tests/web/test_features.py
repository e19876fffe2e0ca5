"""Receipts, typing, presence, @mention autocomplete, files, search, session expiry, phone width."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, expect

from tests.support import PASSWORD, unique
from tests.web.support import Site, messages_with, open_channel, signed_in_page

pytestmark = pytest.mark.timeout(90)


async def test_receipts_typing_and_presence(browser: Browser, site: Site) -> None:
    alice = await site.person("alice", "Alice")
    bob = await site.person("bob", "Bob")
    channel = await site.channel(alice, [bob])
    dm = await site.call("POST", "/conversations", alice.token, {"user_ids": [bob.id]})
    a = await signed_in_page(browser, site, alice)
    try:
        await open_channel(a.page, channel["id"])
        dot = a.page.locator(f'.sidebar a[data-channel-id="{dm["id"]}"] .presence')
        await expect(dot).to_have_class("presence presence-offline")
        b = await signed_in_page(browser, site, bob)
        try:
            await expect(dot).to_have_class("presence presence-online")
            await open_channel(b.page, channel["id"])
            await b.page.get_by_test_id("composer").press_sequentially("thinking")
            await expect(a.page.locator(".typing")).to_have_text("Bob is typing…")
            composer = a.page.get_by_test_id("composer")
            await composer.fill("did you read this?")
            await composer.press("Enter")
            await expect(messages_with(b.page, "did you read this?")).to_have_count(1)
            await expect(
                messages_with(a.page, "did you read this?").locator(".seen-by")
            ).to_have_text("Seen by Bob")
            a.assert_clean()
            b.assert_clean()
        finally:
            await b.context.close()
    finally:
        await a.context.close()


async def test_mention_autocomplete_file_attachment_and_search(
    browser: Browser, site: Site
) -> None:
    alice = await site.person("alice", "Alice")
    bob = await site.person("bob", "Bob Mentioned")
    channel = await site.channel(alice, [bob])
    a = await signed_in_page(browser, site, alice)
    b = await signed_in_page(browser, site, bob)
    word = unique("zebra").replace("-", "")
    try:
        await open_channel(a.page, channel["id"])
        await open_channel(b.page, channel["id"])
        composer = a.page.get_by_test_id("composer")
        await composer.press_sequentially(f"@{bob.username[:-1]}")
        option = a.page.get_by_role("option", name=f"Bob Mentioned @{bob.username}")
        await expect(option).to_be_visible()
        await composer.press("Enter")
        await expect(composer).to_have_value(f"@{bob.username} ")
        await composer.press_sequentially(":tad")
        await expect(a.page.get_by_role("option", name="🎉 :tada:")).to_be_visible()
        await composer.press("Enter")
        await expect(composer).to_have_value(f"@{bob.username} 🎉 ")
        await composer.press_sequentially(f"see the {word} notes")
        await composer.press("Enter")
        arrived = messages_with(b.page, word)
        await expect(arrived).to_have_count(1)
        await expect(arrived.locator(".mention-me")).to_have_text(f"@{bob.username}")

        # A file attached from the composer (Enter right away: the send waits for the upload),
        # shown live to both, with a download link that works.
        await composer.fill(f"{word} file attached")
        await a.page.get_by_label("Attach files").set_input_files(
            files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"hello notes\n"}]
        )
        await composer.press("Enter")
        sent = messages_with(a.page, "file attached")
        await expect(sent.get_by_role("link", name="notes.txt")).to_be_visible()
        attached = messages_with(b.page, "file attached")
        link = attached.get_by_role("link", name="notes.txt")
        await expect(link).to_be_visible()
        href = await link.get_attribute("href")
        assert href is not None
        download = await b.page.request.get(href)
        assert download.status == 200 and await download.body() == b"hello notes\n"

        search = b.page.get_by_role("search").get_by_role("searchbox")
        await search.fill(word)
        await search.press("Enter")
        result = b.page.locator(".search-results li", has_text="see the")
        await expect(result).to_have_count(1)
        await expect(result.locator("mark")).to_contain_text(word)
        await result.get_by_role("link").click()
        await expect(b.page.locator(".message.highlighted")).to_contain_text(word)
        a.assert_clean()
        b.assert_clean()
    finally:
        await a.context.close()
        await b.context.close()


async def test_session_expiry_keeps_the_draft(browser: Browser, site: Site) -> None:
    alice = await site.person("alice", "Alice")
    channel = await site.channel(alice, [])
    a = await signed_in_page(browser, site, alice)
    try:
        await open_channel(a.page, channel["id"])
        await a.page.get_by_test_id("composer").fill("unsent words")
        # Every other session of Alice ends (as after a password change elsewhere).
        await site.call("POST", "/auth/sessions/revoke-others", alice.token)
        dialog = a.page.get_by_role("dialog", name="Sign in")
        await expect(dialog).to_contain_text("Your session has expired")
        await dialog.get_by_label("Username or email").fill(alice.username)
        await dialog.get_by_label("Password").fill(PASSWORD)
        await dialog.get_by_role("button", name="Sign in").click()
        await expect(dialog).to_have_count(0)
        composer = a.page.get_by_test_id("composer")
        await expect(composer).to_have_value("unsent words")
        await composer.press("Enter")
        await expect(messages_with(a.page, "unsent words")).to_have_count(1)
        a.assert_clean()
    finally:
        await a.context.close()


async def test_phone_width_layout(browser: Browser, site: Site) -> None:
    alice = await site.person("alice", "Alice")
    channel = await site.channel(alice, [])
    a = await signed_in_page(
        browser, site, alice, viewport={"width": 360, "height": 740}, has_touch=True
    )
    try:
        page = a.page
        sidebar = page.get_by_role("navigation", name="Conversations")
        link = sidebar.locator(f'a[data-channel-id="{channel["id"]}"]')
        await page.get_by_role("button", name="Conversations").click()
        await link.click()
        await expect(page.get_by_test_id("composer")).to_be_visible()
        await expect(link).not_to_be_in_viewport()
        composer = page.get_by_test_id("composer")
        await composer.fill("from a phone")
        await composer.press("Enter")
        await expect(messages_with(page, "from a phone")).to_be_in_viewport()
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= 360, f"horizontal scrolling at 360 px: {width}"
        a.assert_clean()
    finally:
        await a.context.close()


async def test_seen_by_for_a_message_loaded_from_history(browser: Browser, site: Site) -> None:
    alice = await site.person("alice", "Alice")
    bob = await site.person("bob", "Bob")
    carol = await site.person("carol", "Carol")
    channel = await site.channel(alice, [bob, carol])
    mine = await site.send(alice, channel["id"], "read before you opened the app")
    # Bob reads it while Alice is away; Carol does not.
    await site.call("POST", f"/channels/{channel['id']}/read", bob.token, {"seq": mine["seq"]})
    a = await signed_in_page(browser, site, alice)
    try:
        await open_channel(a.page, channel["id"])
        seen = messages_with(a.page, "read before you opened the app").locator(".seen-by")
        await expect(seen).to_have_text("Seen by Bob")
        # Later readers still arrive live.
        await site.call(
            "POST", f"/channels/{channel['id']}/read", carol.token, {"seq": mine["seq"]}
        )
        await expect(seen).to_have_text("Seen by Bob, Carol")
        a.assert_clean()
    finally:
        await a.context.close()


async def test_topic_edited_from_the_header_arrives_live(browser: Browser, site: Site) -> None:
    alice = await site.person("alice", "Alice")
    bob = await site.person("bob", "Bob")
    guest = await site.person("guest", "Guest", role="guest")
    channel = await site.channel(alice, [bob])
    # Only administrators add guests.
    await site.call(
        "POST", f"/channels/{channel['id']}/members", site.owner.token, {"user_ids": [guest.id]}
    )
    a = await signed_in_page(browser, site, alice)
    b = await signed_in_page(browser, site, bob)
    g = await signed_in_page(browser, site, guest)
    try:
        await open_channel(a.page, channel["id"])
        await open_channel(b.page, channel["id"])
        await open_channel(g.page, channel["id"])
        await a.page.get_by_role("button", name="Add a topic").click()
        field = a.page.get_by_label("Topic", exact=True)
        await field.fill("Release planning for 2.0")
        await field.press("Enter")
        await expect(a.page.get_by_test_id("topic")).to_have_text("Release planning for 2.0")
        await expect(b.page.get_by_test_id("topic")).to_have_text("Release planning for 2.0")
        await expect(g.page.get_by_test_id("topic")).to_have_text("Release planning for 2.0")
        # Guests may not change topics (the server's rule), so they get no button.
        await expect(g.page.get_by_role("button", name="Edit topic")).to_have_count(0)
        # Bob edits it; Esc on a second edit leaves it as it was.
        await b.page.get_by_role("button", name="Edit topic").click()
        await b.page.get_by_label("Topic", exact=True).fill("Ship it")
        await b.page.get_by_role("button", name="Save").click()
        await expect(a.page.get_by_test_id("topic")).to_have_text("Ship it")
        await a.page.get_by_role("button", name="Edit topic").click()
        await a.page.get_by_label("Topic", exact=True).fill("never saved")
        await a.page.keyboard.press("Escape")
        await expect(a.page.get_by_test_id("topic")).to_have_text("Ship it")
        profile = await site.call("GET", f"/channels/{channel['id']}", alice.token)
        assert profile["channel"]["topic"] == "Ship it"
        for page in (a, b, g):
            page.assert_clean()
    finally:
        for page in (a, b, g):
            await page.context.close()


async def test_time_zone_preference_renders_times_in_that_zone(
    browser: Browser, site: Site
) -> None:
    alice = await site.person("alice", "Alice")
    channel = await site.channel(alice, [])
    sent = await site.send(alice, channel["id"], "what time is it")
    a = await signed_in_page(browser, site, alice, timezone_id="Europe/London")
    try:
        await a.page.get_by_role("link", name="Preferences").click()
        zone = a.page.get_by_label("Time zone")
        await expect(zone).to_have_value("")  # follows the browser until chosen
        await expect(zone.locator("option").first).to_have_text(
            "This browser's time zone (Europe/London)"
        )
        await zone.select_option("Australia/Eucla")  # UTC+8:45 all year: no daylight saving
        await expect(a.page.get_by_role("status").filter(has_text="Saved")).to_be_visible()
        me = await site.call("GET", "/me", alice.token)
        assert me["timezone"] == "Australia/Eucla"
        await a.page.goto(f"/c/{channel['id']}")
        shown = messages_with(a.page, "what time is it").locator("time")
        expected = await a.page.evaluate(
            """(iso) => new Intl.DateTimeFormat('en', {hour: 'numeric', minute: '2-digit',
                 timeZone: 'Australia/Eucla'}).format(new Date(iso))""",
            sent["created_at"],
        )
        await expect(shown).to_have_text(expected)
        # Minutes past the hour differ from London's by 45: the zone really changed.
        assert (
            expected.split(":")[1][:2]
            != (
                await a.page.evaluate(
                    """(iso) => new Intl.DateTimeFormat('en', {hour: 'numeric', minute: '2-digit',
                     timeZone: 'Europe/London'}).format(new Date(iso))""",
                    sent["created_at"],
                )
            ).split(":")[1][:2]
        )
        a.assert_clean()
    finally:
        await a.context.close()
