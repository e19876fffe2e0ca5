"""Hostile content renders inert; the Chinese UI; keyboard-only use; IME-safe Enter."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, expect

from tests.web.support import Site, messages_with, open_channel, signed_in_page

pytestmark = pytest.mark.timeout(90)

PAYLOADS = [
    "<img src=x onerror=alert('img')>",
    "<script>alert('script')</script>",
    "[click me](javascript:alert('link'))",
    '<a href="javascript:alert(1)">raw link</a>',
    "<svg onload=alert('svg')></svg>",
    "<iframe src=\"javascript:alert('frame')\"></iframe>",
    "<style>body { display: none }</style>",
    '<div style="background:url(javascript:alert(1))">styled</div>',
    "![remote](https://evil.invalid/x.png)",
    "`<b>code</b>` and\n```html\n<script>alert('block')</script>\n```",
    "<details open ontoggle=alert('details')>",
]


async def test_xss_in_messages_names_and_topics_is_inert(browser: Browser, site: Site) -> None:
    evil = "<img src=x onerror=alert('name')>"
    mallory = await site.person("mallory", evil)
    alice = await site.person("alice", "Alice")
    channel = await site.channel(
        mallory, [alice], topic="<script>alert('topic')</script><img src=x onerror=alert(2)>"
    )
    for text in PAYLOADS:
        await site.send(mallory, channel["id"], f"{text} @{alice.username}")
    a = await signed_in_page(browser, site, alice)
    try:
        await open_channel(a.page, channel["id"])
        scroller = a.page.locator(".message-scroller")
        await expect(scroller.locator("article.message")).to_have_count(len(PAYLOADS))
        # Names and topics are text, shown literally.
        await expect(a.page.locator(".channel-header .topic")).to_contain_text("<script>")
        await expect(scroller.locator(".sender").first).to_have_text(evil)
        # Nothing executable or styled made it into the DOM.
        danger = await a.page.evaluate(
            """() => {
              const root = document.querySelector('.message-scroller');
              const all = [...root.querySelectorAll('*')];
              return {
                scripts: root.querySelectorAll('script, iframe, svg, img, style, details').length,
                handlers: all.filter(
                  e => [...e.attributes].some(a => a.name.startsWith('on'))).length,
                styled: root.querySelectorAll('.markdown [style]').length,
                jsLinks: [...root.querySelectorAll('a')].filter(
                  a => /^\\s*javascript:/i.test(a.getAttribute('href') || '')).length,
              };
            }"""
        )
        assert danger == {"scripts": 0, "handlers": 0, "styled": 0, "jsLinks": 0}, danger
        await messages_with(a.page, "click me").get_by_text("click me").click()
        await messages_with(a.page, "raw link").get_by_text("raw link").click()
        await expect(messages_with(a.page, "code").locator("pre code")).to_contain_text(
            "<script>alert('block')</script>"
        )
        # Round trips through the live path too (a new message arrives by the event socket).
        await site.send(mallory, channel["id"], "<img src=y onerror=alert('live')> live one")
        await expect(messages_with(a.page, "live one")).to_have_count(1)
        assert await a.page.locator(".message-scroller img").count() == 0
        # A topic changed live is text as well.
        evil_topic = "<img src=z onerror=alert('topic-live')><b>bold?</b> new topic"
        await site.call("PATCH", f"/channels/{channel['id']}", mallory.token, {"topic": evil_topic})
        await expect(a.page.locator(".channel-header .topic")).to_have_text(evil_topic)
        assert await a.page.locator(".channel-header img, .channel-header b").count() == 0
        await a.page.get_by_role("button", name="Edit topic").click()
        await expect(a.page.get_by_label("Topic", exact=True)).to_have_value(evil_topic)
        await a.page.keyboard.press("Escape")
        a.assert_clean()
    finally:
        await a.context.close()


async def test_chinese_ui_and_chinese_messages(browser: Browser, site: Site) -> None:
    li = await site.person("li", "李雷")
    han = await site.person("han", "韩梅梅")
    channel = await site.channel(li, [han])
    page_li = await signed_in_page(browser, site, li)
    try:
        page = page_li.page
        await page.get_by_role("link", name="Preferences").click()
        await page.get_by_label("Language").select_option("zh-CN")
        await expect(page.get_by_role("heading", name="个人资料和偏好设置")).to_be_visible()
        await page.get_by_role("link", name="返回会话").click()
        await open_channel(page, channel["id"])
        await expect(page.locator(".sidebar")).to_contain_text("频道")
        await expect(page.get_by_test_id("composer")).to_have_attribute(
            "placeholder", f"发消息到 #{channel['name']}"
        )
        await expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
        await site.send(han, channel["id"], "我们非常重视数据安全问题")
        await expect(messages_with(page, "数据安全")).to_have_count(1)
        await page.reload()
        await expect(page.get_by_role("button", name="退出登录")).to_be_visible()
        await expect(page.locator(".day-separator").first).to_have_text("今天")
        page_li.assert_clean()
    finally:
        await page_li.context.close()


async def test_keyboard_only_main_flow_and_ime_safe_enter(browser: Browser, site: Site) -> None:
    alice = await site.person("alice", "Alice")
    first = await site.channel(alice, [])
    second = await site.channel(alice, [])
    a = await signed_in_page(browser, site, alice)
    page = a.page
    try:
        await page.keyboard.press("Control+k")
        switcher = page.get_by_role("dialog", name="Jump to…")
        await expect(switcher.get_by_role("combobox")).to_be_focused()
        await page.keyboard.type(second["name"])
        await page.keyboard.press("Enter")
        await expect(switcher).to_have_count(0)
        current = page.locator('.sidebar a[aria-current="page"]')
        await expect(current).to_have_attribute("data-channel-id", str(second["id"]))
        composer = page.get_by_test_id("composer")
        await expect(composer).to_be_focused()

        # An Enter that confirms an input-method composition must not send half-typed text.
        await composer.evaluate(
            """el => {
              el.dispatchEvent(new CompositionEvent('compositionstart', { data: '' }));
              el.value = 'nihao';
              el.dispatchEvent(new InputEvent('input', { bubbles: true, isComposing: true }));
              el.dispatchEvent(new KeyboardEvent('keydown',
                { key: 'Enter', bubbles: true, isComposing: true, cancelable: true }));
              el.value = '你好';
              el.dispatchEvent(new CompositionEvent('compositionend', { data: '你好' }));
            }"""
        )
        await expect(composer).to_have_value("你好")
        assert await page.locator(".message-scroller article.message").count() == 0
        await page.keyboard.press("Enter")
        await expect(messages_with(page, "你好")).to_have_count(1)

        # Alt+Up / Alt+Down walk the sidebar.
        await page.keyboard.press("Alt+ArrowUp")
        await expect(current).not_to_have_attribute("data-channel-id", str(second["id"]))
        await page.keyboard.press("Alt+ArrowDown")
        await expect(current).to_have_attribute("data-channel-id", str(second["id"]))

        # Open a thread from the message toolbar with the keyboard; Esc closes it.
        # Each message is one tab stop; its toolbar appears while it has focus.
        await messages_with(page, "你好").focus()
        await messages_with(page, "你好").get_by_role("button", name="Reply in thread").focus()
        await page.keyboard.press("Enter")
        thread = page.get_by_role("complementary", name="Thread")
        await expect(thread.get_by_test_id("thread-composer")).to_be_focused()
        await page.keyboard.type("from the keyboard")
        await page.keyboard.press("Enter")
        await expect(thread.locator("article.message", has_text="from the keyboard")).to_have_count(
            1
        )
        await page.keyboard.press("Escape")
        await expect(thread).to_have_count(0)
        await expect(page.get_by_test_id("composer")).to_be_focused()
        assert first["id"] != second["id"]

        # A direct message from the switcher: type a person's name, Enter.
        bob = await site.person("bob", "Bob Keyboard")
        await page.keyboard.press("Control+k")
        await expect(switcher.get_by_role("combobox")).to_be_focused()
        await page.keyboard.type(bob.username)
        await expect(
            switcher.get_by_role("option", name=f"@ Bob Keyboard {bob.username}")
        ).to_be_visible()
        await page.keyboard.press("Enter")
        await expect(page.locator(".channel-header h1")).to_have_text("Bob Keyboard")
        await expect(page.get_by_test_id("composer")).to_be_focused()
        await page.keyboard.type("hi Bob")
        await page.keyboard.press("Enter")
        await expect(messages_with(page, "hi Bob")).to_have_count(1)
        a.assert_clean()
    finally:
        await a.context.close()
