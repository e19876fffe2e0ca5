"""Web client benchmark (`make web-bench`; not a timed test): first-load size and click-to-paint.

1. First load: the compressed size (gzip -9, as a reverse proxy would send it) of the JS and
   CSS that index.html loads.
2. Click to paint: a signed-in user in two channels of 500 messages each clicks a channel in
   the sidebar; the time from the click event to the frame after its 50 latest messages are in
   the DOM (a requestAnimationFrame callback after the last insertion, i.e. the next paint).
   Cold: the channel's history is fetched over HTTP; warm: it was opened before (client cache).
3. Scrolling 10,000 loaded messages: the reader loads a channel's whole history (10,000
   messages of mixed length, markdown and code) by scrolling up, then the page scrolls itself
   from the bottom to the top by SCROLL_STEP_PX every animation frame; the frame-to-frame times
   (requestAnimationFrame deltas), long tasks (PerformanceObserver 'longtask', > 50 ms) and the
   page's element count are recorded.
4. Typing latency: keydown (the event's timestamp) to the animation frame after the composer's
   input event (i.e. the frame that paints the character), for TYPED_KEYS keystrokes, first in
   a quiet channel and then while another client posts TRAFFIC_PER_SECOND messages a second to
   the same channel over the REST API (the 10,000 messages stay loaded; the reader is at the
   bottom, so every new message is laid out and shown).
   Run against a real `courtyard serve` on SQLite, loopback, Debian's Chromium headless.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from bench import corpus
from playwright.async_api import Page, async_playwright
from sqlalchemy import update

from courtyard.storage.engine import Database
from courtyard.storage.schema import messages
from tests.processes import COURTYARD, ServerProcess, free_port
from tests.support import PASSWORD
from tests.web.support import CHROMIUM, CHROMIUM_ARGS, make_site
from tests.web.support import DIST as BUILT_DIST

# A copy of the build may be measured while web/dist is rebuilt (WEB_BENCH_DIST=/path/to/copy).
DIST = Path(os.environ.get("WEB_BENCH_DIST", BUILT_DIST))
# WEB_BENCH_PROFILE=1: record a Chromium CPU profile (CDP Profiler) of the scroll and of the
# typing under traffic, and print the functions with the most self time (build the client with
# `npx vite build --minify false --outDir DIR` and set WEB_BENCH_DIST=DIR for readable names).
PROFILE = bool(os.environ.get("WEB_BENCH_PROFILE"))

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
      const rows = view && view.querySelector('.message-rows');
      // The list is windowed: its 50 messages are loaded and the rows on screen are in the DOM.
      if (start && rows && header && header.textContent.includes(name) &&
          Number(rows.dataset.loaded) >= 50 && rows.querySelector('article.message')) {
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
                    await page.locator('.message-rows[data-loaded="50"]').wait_for()
                    cold.append(await page.evaluate(MEASURE_CLICK, channels[1]))
                    warm.append(await page.evaluate(MEASURE_CLICK, channels[0]))
                    warm.append(await page.evaluate(MEASURE_CLICK, channels[1]))
                await browser.close()
            return {"cold": _summary(cold), "warm": _summary(warm)}
        finally:
            server.stop()


HISTORY = 10_000
SCROLL_STEP_PX = 200
TYPED_KEYS = 120
TRAFFIC_PER_SECOND = 20

SCROLL_TO_TOP = """async (step) => {
  const el = document.querySelector('.message-scroller');
  const frames = [];
  let longTasks = 0;
  let longest = 0;
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) { longTasks++; longest = Math.max(longest, e.duration); }
  });
  observer.observe({ type: 'longtask' });
  let maxNodes = 0;
  let maxRows = 0;
  let last = await new Promise((r) => requestAnimationFrame(r));
  const started = last;
  while (el.scrollTop > 0 && last - started < 120000) {
    el.scrollTop = Math.max(0, el.scrollTop - step);
    const now = await new Promise((r) => requestAnimationFrame(r));
    frames.push(now - last);
    last = now;
    if (frames.length % 10 === 0) {
      maxNodes = Math.max(maxNodes, document.getElementsByTagName('*').length);
      maxRows = Math.max(maxRows, document.querySelectorAll('.message-rows > .vrow').length);
    }
  }
  observer.disconnect();
  return { frames, longTasks, longest, maxNodes, maxRows, seconds: (last - started) / 1000,
           scrollHeight: el.scrollHeight };
}"""

LIST_STATE = """() => ({
  loaded: document.querySelector('.message-rows').dataset.loaded,
  beginning: document.querySelector('.beginning') !== null,
})"""

RECORD_TYPING = """() => {
  const box = document.querySelector('[data-testid="composer"]');
  window.__typing = [];
  box.focus();
  if (box.dataset.benchRecording) return;
  box.dataset.benchRecording = 'yes';
  let down = 0;
  box.addEventListener('keydown', (e) => { down = e.timeStamp; }, { capture: true });
  box.addEventListener('input', () => {
    const start = down;
    requestAnimationFrame(() => window.__typing.push(performance.now() - start));
  });
  box.focus();
}"""


SHAPES = [
    "a short line {n}",
    "message {n} with **bold**, `code` and a link https://example.com/{n}",
    "a longer message {n}: " + "lorem ipsum dolor sit amet " * 12,
    "```python\ndef f_{n}(x):\n    return x * {n}\n```",
    "line one of {n}\nline two\nline three",
]


async def seed_history(database_url: str, channel_id: int, sender_ids: list[int]) -> None:
    """HISTORY messages of mixed shapes, bulk-inserted (bench/corpus.py: posting 10,000 through
    the API takes minutes), then spread 90 s apart so there are day separators and groups."""
    counter = iter(range(HISTORY))
    await corpus.fill(
        database_url,
        [channel_id],
        sender_ids,
        HISTORY,
        distinct=lambda _rng: SHAPES[(n := next(counter)) % len(SHAPES)].format(n=n),
    )
    database = Database(database_url)
    try:
        start_us = int(time.time() * 1e6) - (HISTORY + 10) * 90_000_000
        async with database.write() as conn:
            await conn.execute(
                update(messages)
                .where(messages.c.channel_id == channel_id)
                .values(created_at=start_us + messages.c.seq * 90_000_000)
            )
    finally:
        await database.dispose()


def _frames_summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "n": len(ordered),
        "p50_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 1),
        "max_ms": round(ordered[-1], 1),
    }


async def _type_keys(page: Page) -> dict[str, float]:
    await page.evaluate(RECORD_TYPING)
    text = "the quick brown fox jumps over the lazy dog "
    for n in range(TYPED_KEYS):
        await page.keyboard.press(text[n % len(text)].replace(" ", "Space"))
        await asyncio.sleep(0.03)
    for _ in range(200):  # the last frames land within 10 s
        if await page.evaluate("window.__typing.length") >= TYPED_KEYS:
            break
        await asyncio.sleep(0.05)
    samples: list[float] = await page.evaluate("window.__typing")
    await page.locator('[data-testid="composer"]').fill("")
    return _frames_summary(samples)


async def _profile_start(page: Page) -> Any:
    if not PROFILE:
        return None
    cdp = await page.context.new_cdp_session(page)
    await cdp.send("Profiler.enable")
    await cdp.send("Profiler.setSamplingInterval", {"interval": 200})
    await cdp.send("Profiler.start")
    return cdp


async def _profile_stop(cdp: Any, label: str) -> None:
    if cdp is None:
        return
    profile = (await cdp.send("Profiler.stop"))["profile"]
    await cdp.detach()
    nodes = {n["id"]: n for n in profile["nodes"]}
    deltas = profile["timeDeltas"]
    self_us: dict[str, float] = {}
    for node_id, delta in zip(profile["samples"], [*deltas[1:], 0], strict=True):
        frame = nodes[node_id]["callFrame"]
        name = frame["functionName"] or "(anonymous)"
        where = f"{name} {frame['url'].rsplit('/', 1)[-1]}:{frame['lineNumber'] + 1}"
        self_us[where] = self_us.get(where, 0.0) + delta
    total = sum(self_us.values()) or 1.0
    print(f"profile, {label}: top self time of {total / 1000:.0f} ms sampled")
    for where, us in sorted(self_us.items(), key=lambda kv: -kv[1])[:15]:
        print(f"  {us / 1000:8.1f} ms {100 * us / total:5.1f}%  {where}")


async def scrolling_and_typing() -> dict[str, Any]:
    """Frame times scrolling 10,000 loaded messages; typing latency quiet and under traffic."""
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
            channel = (await site.channel(writer, [reader], name="history"))["id"]
            started = time.monotonic()
            await seed_history(server.database_url, channel, [writer.id, writer.id, reader.id])
            seeded_in = time.monotonic() - started
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(
                    executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
                )
                context = await browser.new_context(
                    base_url=server.url, viewport={"width": 1280, "height": 800}
                )
                page = await context.new_page()
                await _sign_in(page, "reader")
                await page.goto(f"/c/{channel}")
                await page.locator('.message-rows[data-loaded="50"]').wait_for()
                # Load the whole history the way a reader does: scrolling up, page after page.
                for _ in range(HISTORY // 50 + 10):
                    if await page.locator(".beginning").count():
                        break
                    loaded = (await page.evaluate(LIST_STATE))["loaded"]
                    await page.locator(".message-scroller").evaluate("el => { el.scrollTop = 0; }")
                    for _ in range(600):  # 30 s at most for one page of history
                        state = await page.evaluate(LIST_STATE)
                        if state["loaded"] != loaded or state["beginning"]:
                            break
                        await asyncio.sleep(0.05)
                loaded_count = int(
                    await page.locator(".message-rows").get_attribute("data-loaded") or 0
                )
                await page.locator(".message-scroller").evaluate(
                    "el => { el.scrollTop = el.scrollHeight; }"
                )
                await page.wait_for_timeout(500)
                cdp = await _profile_start(page)
                scroll = await page.evaluate(SCROLL_TO_TOP, SCROLL_STEP_PX)
                await _profile_stop(cdp, "scrolling to the top")

                await page.locator(".message-scroller").evaluate(
                    "el => { el.scrollTop = el.scrollHeight; }"
                )
                quiet = await _type_keys(page)
                stop = asyncio.Event()

                async def traffic() -> int:
                    # One client, one send every 1/TRAFFIC_PER_SECOND s, not waiting for the
                    # answer (at most 50 in flight), for as long as the typing lasts (<= 120 s).
                    sent = 0
                    interval = 1 / TRAFFIC_PER_SECOND
                    next_at = time.monotonic()
                    in_flight: set[asyncio.Task[Any]] = set()
                    headers = {"Authorization": f"Bearer {writer.token}"}
                    async with httpx.AsyncClient(
                        base_url=server.url, headers=headers, timeout=30
                    ) as client:
                        while not stop.is_set() and sent < TRAFFIC_PER_SECOND * 120:
                            if len(in_flight) < 50:
                                task = asyncio.create_task(
                                    client.post(
                                        f"/api/v1/channels/{channel}/messages",
                                        json={"text": f"traffic {sent} with **markdown**"},
                                    )
                                )
                                in_flight.add(task)
                                task.add_done_callback(in_flight.discard)
                                sent += 1
                            next_at += interval
                            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                        await asyncio.gather(*in_flight)
                    return sent

                poster = asyncio.create_task(traffic())
                await asyncio.sleep(1)
                traffic_started = time.monotonic()
                cdp = await _profile_start(page)
                busy = await _type_keys(page)
                await _profile_stop(cdp, "typing under traffic")
                typing_seconds = time.monotonic() - traffic_started
                stop.set()
                posted = await poster
                shown = int(await page.locator(".message-rows").get_attribute("data-loaded") or 0)
                await browser.close()
            return {
                "seeded_in_s": round(seeded_in, 1),
                "loaded": loaded_count,
                "frames": _frames_summary(scroll["frames"]),
                "long_tasks": scroll["longTasks"],
                "longest_task_ms": round(scroll["longest"], 1),
                "max_elements": scroll["maxNodes"],
                "max_rows": scroll["maxRows"],
                "scroll_s": round(scroll["seconds"], 1),
                "scroll_height_px": scroll["scrollHeight"],
                "typing_quiet": quiet,
                "typing_traffic": busy,
                "traffic_posted": posted,
                "traffic_rate": round(posted / (typing_seconds + 1), 1),
                "traffic_received": shown - loaded_count,
            }
        finally:
            server.stop()


async def main(parts: set[str]) -> None:
    if not (DIST / "index.html").is_file():
        raise SystemExit("web/dist is missing: run `make build` first")
    if "click" in parts:
        await print_click_to_paint()
    if "scroll" in parts:
        await print_scrolling_and_typing()


async def print_click_to_paint() -> None:
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


async def print_scrolling_and_typing() -> None:
    r = await scrolling_and_typing()
    f = r["frames"]
    print(
        f"scroll {r['loaded']} loaded messages bottom to top, {SCROLL_STEP_PX} px a frame "
        f"({r['scroll_height_px']} px in {r['scroll_s']} s): frame p50 {f['p50_ms']} ms, "
        f"p95 {f['p95_ms']} ms, max {f['max_ms']} ms (n={f['n']}); long tasks "
        f"{r['long_tasks']} (longest {r['longest_task_ms']} ms); at most {r['max_elements']} "
        f"elements in the page, {r['max_rows']} rows rendered (seeded in {r['seeded_in_s']} s)"
    )
    for kind, label in (("typing_quiet", "no traffic"), ("typing_traffic", "under traffic")):
        t = r[kind]
        print(
            f"typing latency, {label}: p50 {t['p50_ms']} ms, p95 {t['p95_ms']} ms, "
            f"max {t['max_ms']} ms (n={t['n']})"
        )
    print(
        f"traffic: {r['traffic_posted']} messages posted (~{r['traffic_rate']}/s), "
        f"{r['traffic_received']} in the reader's list"
    )


if __name__ == "__main__":
    # Parts to run (default all): `python -m tests.web.bench scroll` runs only 3 and 4.
    asyncio.run(main(set(sys.argv[1:]) or {"click", "scroll"}))
