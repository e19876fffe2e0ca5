"""S7's message corpus, bulk-inserted with SQLAlchemy Core through ``courtyard.storage``.

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

from sqlalchemy import update

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
) -> dict[str, Any]:
    """Insert ``total`` messages round-robin over the channels; returns timing and sizes."""
    rng = random.Random(seed)
    database = Database(database_url)
    texts = [make_text(rng) for _ in range(4096)]
    seqs = dict.fromkeys(channel_ids, 0)
    now_us = int(time.time() * 1e6) - total * 1000
    started = time.monotonic()
    written = 0
    try:
        while written < total:
            rows = []
            for i in range(written, min(total, written + batch)):
                channel_id = channel_ids[i % len(channel_ids)]
                seqs[channel_id] += 1
                rows.append(
                    {
                        "channel_id": channel_id,
                        "seq": seqs[channel_id],
                        "sender_id": sender_ids[i % len(sender_ids)],
                        "text": texts[(i * 7919) % len(texts)],
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
