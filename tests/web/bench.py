"""Web client benchmark (`make web-bench`; not a timed test): first-load size and click-to-paint.

1. First load: the compressed size (gzip -9, as a reverse proxy would send it) of the JS and
   CSS that index.html loads.
2. Click to paint: a signed-in user in two channels of 500 messages each clicks a channel in
   the sidebar; the time from the click event to the frame after its 50 latest messages are in
   the DOM (a requestAnimationFrame callback after the last insertion, i.e. the next paint).
   Cold: the channel's history is fetched over HTTP; warm: it was opened before (client cache).
   Run against a real `courtyard serve` on SQLite, loopback, Debian's Chromium headless.
"""

from __future__ import annotations

import asyncio
import gzip
import re
import statistics
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from playwright.async_api import Page, async_playwright

from tests.processes import COURTYARD, ServerProcess, free_port
from tests.support import PASSWORD
from tests.web.support import CHROMIUM, CHROMIUM_ARGS, DIST, make_site

MEASURE_CLICK = """async (channelId) => {
  const link = document.querySelector(`.sidebar a[data-channel-id="${channelId}"]`);
  const done = new Promise((resolve) => {
    let start = 0;
    const mark = () => { start = performance.now(); };
    link.addEventListener('click', mark, { capture: true, once: true });
    const check = () => {
      const view = document.querySelector('.message-scroller');
      const header = document.querySelector('.channel-header h1');
      const name = link.querySelector('.channel-name').textContent;
      if (start && view && header && header.textContent.includes(name) &&
          view.querySelectorAll('article.message').length >= 50) {
        observer.disconnect();
        requestAnimationFrame(() => resolve(performance.now() - start));
      }
    };
    const observer = new MutationObserver(check);
    observer.observe(document.body, { childList: true, subtree: true });
  });
  link.click();
  return await done;
}"""


def first_load() -> dict[str, int]:
    """Bytes of JS and CSS that index.html loads, raw and gzip -9."""
    html = (DIST / "index.html").read_text()
    assets = re.findall(r'(?:src|href)="/(assets/[^"]+\.(?:js|css))"', html)
    raw = sum((DIST / a).stat().st_size for a in assets)
    compressed = sum(len(gzip.compress((DIST / a).read_bytes(), 9)) for a in assets)
    return {"files": len(assets), "raw_bytes": raw, "gzip_bytes": compressed}


async def _sign_in(page: Page, username: str) -> None:
    await page.goto("/sign-in")
    await page.locator("input[name=login]").fill(username)
    await page.locator("input[name=password]").fill(PASSWORD)
    await page.locator("button[type=submit]").click()
    await page.get_by_test_id("me").wait_for()


def _summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "n": len(ordered),
        "median_ms": round(statistics.median(ordered), 1),
        "p90_ms": round(ordered[int(0.9 * (len(ordered) - 1))], 1),
        "max_ms": round(ordered[-1], 1),
    }


async def click_to_paint(rounds: int = 15) -> dict[str, Any]:
    """Cold and warm click-to-paint times."""
    with tempfile.TemporaryDirectory() as tmp:
        server = ServerProcess(f"sqlite:///{tmp}/bench.db", Path(tmp) / "data")
        server.extra_env["COURTYARD_SERVER__STATIC_DIR"] = str(DIST)
        server.port = free_port()
        subprocess.run([COURTYARD, "migrate"], env=server.env(), check=True, capture_output=True)
        server.start()
        try:
            site = await make_site(server)
            reader = await site.person("reader", "Reader", username="reader")
            writer = await site.person("writer", "Writer", username="writer")
            channels = []
            for name in ("alpha", "beta"):
                channel = await site.channel(writer, [reader], name=name)
                channels.append(channel["id"])
                for n in range(500):
                    await site.send(writer, channel["id"], f"message {n} in **{name}** `code`")
            cold: list[float] = []
            warm: list[float] = []
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(
                    executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
                )
                context = await browser.new_context(
                    base_url=server.url, viewport={"width": 1280, "height": 800}
                )
                page = await context.new_page()
                await _sign_in(page, "reader")
                for _ in range(rounds):
                    await page.goto(f"/c/{channels[0]}")
                    await page.locator(".message-scroller article.message").nth(49).wait_for()
                    cold.append(await page.evaluate(MEASURE_CLICK, channels[1]))
                    warm.append(await page.evaluate(MEASURE_CLICK, channels[0]))
                    warm.append(await page.evaluate(MEASURE_CLICK, channels[1]))
                await browser.close()
            return {"cold": _summary(cold), "warm": _summary(warm)}
        finally:
            server.stop()


async def main() -> None:
    if not (DIST / "index.html").is_file():
        raise SystemExit("web/dist is missing: run `make build` first")
    size = first_load()
    print(
        f"first load: {size['files']} files, {size['raw_bytes'] / 1024:.1f} KiB raw, "
        f"{size['gzip_bytes'] / 1024:.1f} KiB gzip (budget 300 KB)"
    )
    times = await click_to_paint()
    for kind in ("cold", "warm"):
        t = times[kind]
        print(
            f"click to 50 messages painted, {kind}: median {t['median_ms']} ms, "
            f"p90 {t['p90_ms']} ms, max {t['max_ms']} ms (n={t['n']}; target 100 ms)"
        )


if __name__ == "__main__":
    asyncio.run(main())
