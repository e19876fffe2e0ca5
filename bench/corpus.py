"""S7's and S8's message corpora, bulk-inserted with SQLAlchemy Core through ``courtyard.storage``.

Posting a million messages through the API would take far longer than the whole benchmark,
so the corpus bypasses it: rows go straight into ``messages`` (English and Chinese text
mixed, fixed seed) with the schema of ``courtyard.storage.schema``, and each channel's
``last_seq`` is set to match. Users and channels themselves are created through the API first.
No events, mentions or reactions are written: history pages read messages only.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, update

from courtyard.storage.engine import Database
from courtyard.storage.schema import channels, messages

ENGLISH = [
    "the",
    "deploy",
    "failed",
    "again",
    "because",
    "the",
    "migration",
    "locked",
    "the",
    "table",
    "for",
    "too",
    "long",
    "and",
    "we",
    "should",
    "split",
    "it",
    "into",
    "smaller",
    "batches",
    "before",
    "the",
    "release",
    "tomorrow",
    "morning",
    "please",
    "review",
    "my",
    "pull",
    "request",
    "when",
    "you",
    "have",
    "time",
    "I",
    "added",
    "tests",
    "for",
    "the",
    "search",
    "index",
    "and",
    "fixed",
    "the",
    "flaky",
    "websocket",
    "reconnect",
    "logic",
    "the",
    "database",
    "backup",
    "finished",
    "at",
    "three",
    "and",
    "the",
    "dashboard",
    "shows",
    "latency",
    "is",
    "back",
    "to",
    "normal",
    "can",
    "someone",
    "check",
    "why",
    "the",
    "build",
    "cache",
    "is",
    "cold",
    "again",
    "meeting",
    "moved",
    "to",
    "four",
    "customer",
    "reported",
    "a",
    "bug",
    "in",
    "the",
    "export",
    "feature",
    "thanks",
    "great",
    "work",
]
CHINESE = list(
    "数据库迁移失败了因为索引锁表时间太长我们应该分批处理明天早上发布前请检查代码"
    "内存泄漏性能优化日志服务器重启网络延迟恢复正常搜索功能测试通过谢谢大家辛苦了"
    "会议改到下午四点客户反馈导出功能有问题请尽快修复缓存命中率下降需要排查原因你好"
)


def make_text(rng: random.Random) -> str:
    """A chat line of 5-40 English words, Chinese phrases, or both."""
    kind = rng.random()
    parts: list[str] = []
    if kind < 0.6 or kind >= 0.85:
        parts.append(" ".join(rng.choices(ENGLISH, k=rng.randint(5, 40))))
    if kind >= 0.6:
        start = rng.randrange(len(CHINESE) - 30)
        parts.append("".join(CHINESE[start : start + rng.randint(4, 30)]))
    return " ".join(parts)


async def fill(
    database_url: str,
    channel_ids: Sequence[int],
    sender_ids: Sequence[int],
    total: int,
    *,
    batch: int = 20_000,
    seed: int = 7,
    distinct: Any = None,
) -> dict[str, Any]:
    """Insert ``total`` messages round-robin over the channels; returns timing and sizes.

    ``distinct`` (a callable taking the random generator) makes a fresh text for every
    message; by default 4,096 lines are reused (S7 reads pages, not words)."""
    rng = random.Random(seed)
    database = Database(database_url)
    texts = [make_text(rng) for _ in range(4096)] if distinct is None else []
    seqs = dict.fromkeys(channel_ids, 0)
    now_us = int(time.time() * 1e6) - total * 1000
    started = time.monotonic()
    written = 0
    first_id = None
    try:
        if database.is_sqlite:
            # SQLite's messages table has no rowid (migration 0006), so the corpus numbers
            # its rows from max(id); the repository's id counter steps over them later.
            async with database.read() as conn:
                first_id = (
                    1
                    + (
                        await conn.execute(select(func.coalesce(func.max(messages.c.id), 0)))
                    ).scalar_one()
                )
        while written < total:
            rows = []
            for i in range(written, min(total, written + batch)):
                channel_id = channel_ids[i % len(channel_ids)]
                seqs[channel_id] += 1
                rows.append(
                    {
                        **({} if first_id is None else {"id": first_id + i}),
                        "channel_id": channel_id,
                        "seq": seqs[channel_id],
                        "sender_id": sender_ids[i % len(sender_ids)],
                        "text": distinct(rng) if distinct else texts[(i * 7919) % len(texts)],
                        "created_at": now_us + i * 1000,
                        "version": 1,
                        "reply_count": 0,
                        "reply_participant_ids": "[]",
                        "mentions_channel": False,
                        "mentions_here": False,
                    }
                )
            async with database.write() as conn:
                await conn.execute(messages.insert(), rows)
            written += len(rows)
        async with database.write() as conn:
            for channel_id, last in seqs.items():
                await conn.execute(
                    update(channels)
                    .where(channels.c.id == channel_id)
                    .values(last_seq=last, last_message_at=now_us + total * 1000)
                )
        if database.is_sqlite:
            async with database.engine.connect() as conn:
                await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
                await conn.exec_driver_sql("ANALYZE")
        else:
            async with database.engine.connect() as conn:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.exec_driver_sql("ANALYZE messages")
    finally:
        await database.dispose()
    elapsed = time.monotonic() - started
    return {
        "messages": written,
        "seconds": elapsed,
        "rows_per_s": written / elapsed if elapsed else None,
        "last_seq": seqs,
    }


async def repository_latency(
    database_url: str, channel_ids: Sequence[int], last_seq: dict[int, int], count: int
) -> list[float]:
    """Time ``MessageRepository.page`` (the query plus hydration) in this process, in ms."""
    from courtyard.domain.messages import PageRequest
    from courtyard.storage.unit_of_work import Storage

    rng = random.Random(11)
    database = Database(database_url)
    storage = Storage(database)
    samples: list[float] = []
    try:
        for _ in range(count):
            channel_id = rng.choice(list(channel_ids))
            before = rng.randint(51, max(52, last_seq[channel_id]))
            start = time.perf_counter()
            async with storage.snapshot() as uow:
                await uow.messages.page(channel_id, PageRequest(limit=50, before=before))
            samples.append((time.perf_counter() - start) * 1000)
    finally:
        await database.dispose()
    return samples


# --- S8: a search corpus ------------------------------------------------------------------
# Distinct text for every message (the S7 corpus repeats 4,096 lines, which would make every
# search term 244× as frequent as its vocabulary share). English: the chat words above as
# the head, then 20,000 generated words on a Zipf tail, so rare terms exist; Chinese: 600
# common characters, with a few multi-character terms planted at known rates.
_SYLLABLES = [a + b for a in "bcdfghklmnprstvwz" for b in ("a", "e", "i", "o", "u", "ai", "ou")]
CHINESE_COMMON = (
    "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能"
    "下过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量"
    "都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各"
    "重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代"
    "想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接"
    "知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处队南给色光门即保治北"
    "造百规热领七海口东导器压志世金增争济阶油思术极交受联什认六共权收证改清己美再采转更单风切打"
    "白教速花带安场身车例真务具万每目至达走积示议声报斗完类八离华名确才科张信马节话米整空元况今"
    "集温传土许步群广石记需段研界拉林律叫且究观越织装影算低持音众书布复容儿须际商非验连断深难近"
    "矿千周委素技备半办青省列习响约支般史感劳便团往酸历市克何除消构府称太准精值号率族维划选标写"
    "存候毛亲快效斯院查江型眼王按格养易置派层片始却专状育厂京识适属圆包火住调满县局照参红细引听"
    "该铁价严龙飞"
)
PLANTED_ZH = ["数据安全", "内存泄漏", "性能优化", "服务器重启", "数据库迁移", "搜索功能"]


def _vocabulary(rng: random.Random, size: int = 20_000) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choices(_SYLLABLES, k=rng.randint(2, 4))))
    return sorted(words)


class SearchTexts:
    """Makes distinct chat lines: English, Chinese or both, Zipf-distributed words."""

    def __init__(self, seed: int = 17) -> None:
        rng = random.Random(seed)
        self.tail = _vocabulary(rng)
        weights = [1.0 / (rank + 1) for rank in range(len(self.tail))]
        total = sum(weights)
        self.cumulative: list[float] = []
        running = 0.0
        for weight in weights:
            running += weight / total
            self.cumulative.append(running)

    def _tail_word(self, rng: random.Random) -> str:
        import bisect

        return self.tail[min(len(self.tail) - 1, bisect.bisect(self.cumulative, rng.random()))]

    def __call__(self, rng: random.Random) -> str:
        kind = rng.random()
        parts: list[str] = []
        if kind < 0.6 or kind >= 0.85:
            words = [
                rng.choice(ENGLISH) if rng.random() < 0.7 else self._tail_word(rng)
                for _ in range(rng.randint(4, 30))
            ]
            if rng.random() < 0.03:
                words.append(f"https://ci.example.com/build/{rng.randint(1, 99999)}")
            parts.append(" ".join(words))
        if kind >= 0.6:
            chars = rng.choices(CHINESE_COMMON, k=rng.randint(4, 30))
            if rng.random() < 0.02:
                chars.insert(rng.randrange(len(chars) + 1), rng.choice(PLANTED_ZH))
            parts.append("".join(chars))
        return " ".join(parts)


SEARCH_QUERIES: list[tuple[str, str]] = [
    ("en common word", "deploy"),
    ("en common word", "migration"),
    ("en stemmed", "deploying"),
    ("en stemmed", "reported bugs"),
    ("en two words", "database backup"),
    ("en phrase", '"pull request"'),
    ("en exclusion", "release -tomorrow"),
    ("en prefix", "websock*"),
    ("zh 1 char", "发"),
    ("zh 2 chars", "数据"),
    ("zh 2 chars", "安全"),
    ("zh 3 chars", "数据库"),
    ("zh 4 chars (planted)", "数据安全"),
    ("zh 4 chars (planted)", "内存泄漏"),
    ("zh 4 chars (random)", "国家发展"),
    ("mixed", "deploy 数据库"),
    ("operator only", "has:link"),
    ("operator + word", "in:#history3 flaky"),
]


def search_paths(texts: SearchTexts, order_share: float = 0.25, seed: int = 5) -> list[str]:
    """URL paths of the S8 query mix (a quarter ordered by relevance), plus rare words."""
    from urllib.parse import quote

    rng = random.Random(seed)
    queries = [q for _, q in SEARCH_QUERIES]
    queries += [texts.tail[rng.randrange(200, len(texts.tail))] for _ in range(6)]
    paths = []
    for index, query in enumerate(queries * 4):
        order = "relevance" if rng.random() < order_share else "date"
        paths.append(f"/api/v1/search?q={quote(query)}&limit=20&order={order}&i={index}")
    return paths


async def index(database_url: str, *, batch: int = 64) -> dict[str, Any]:
    """Build the search index of every message, as the send path would (in-process terms), in
    transactions of ``batch`` documents: a group-commit batch under load is tens of sends, and
    on SQLite each transaction adds a segment to the full-text index that searches then read
    (until ``courtyard database optimize`` merges them; S8 measures both)."""
    from sqlalchemy import select

    from courtyard.services.search import search_document
    from courtyard.storage.repositories.search import SearchRepository

    database = Database(database_url)
    started = time.monotonic()
    done = 0
    last = 0
    try:
        while True:
            async with database.write() as conn:
                rows = list(
                    await conn.execute(
                        select(messages.c.id, messages.c.text)
                        .where(messages.c.id > last)
                        .order_by(messages.c.id)
                        .limit(batch)
                    )
                )
                if not rows:
                    break
                await SearchRepository(conn).index(
                    [search_document(row.id, row.text) for row in rows]
                )
            last = rows[-1].id
            done += len(rows)
        async with database.engine.connect() as conn:
            if database.is_sqlite:
                await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            else:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                # What autovacuum would have done to an installation that grew to this size.
                await conn.exec_driver_sql("VACUUM ANALYZE search_documents")
                await conn.exec_driver_sql("VACUUM ANALYZE search_pairs")
    finally:
        await database.dispose()
    elapsed = time.monotonic() - started
    return {
        "documents": done,
        "seconds": elapsed,
        "rows_per_s": done / elapsed if elapsed else None,
    }


async def search_latency(
    database_url: str, user_id: int, username: str, rounds: int = 3
) -> dict[str, list[float]]:
    """Time ``Search.search`` in this process (query, hydration, snippets), per query class."""
    from courtyard.domain.roles import Role
    from courtyard.domain.users import Actor
    from courtyard.services.context import ServiceContext
    from courtyard.services.search import Search
    from courtyard.storage.unit_of_work import Storage

    database = Database(database_url)
    ctx = ServiceContext(storage=Storage(database), passwords=None, plugins=None)  # type: ignore[arg-type]
    search = Search(ctx)
    actor = Actor(user_id=user_id, username=username, role=Role.OWNER, scopes=frozenset({"read"}))
    samples: dict[str, list[float]] = {}
    try:
        for _ in range(rounds):
            for label, query in SEARCH_QUERIES:
                for order in ("date", "relevance"):
                    start = time.perf_counter()
                    await search.search(actor, query, order=order, limit=20)  # type: ignore[arg-type]
                    samples.setdefault(f"{label} / {order}", []).append(
                        (time.perf_counter() - start) * 1000
                    )
    finally:
        await database.dispose()
    return samples
