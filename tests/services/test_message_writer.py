"""Group commit (services/message_writer.py): batches bounded by time and count, paced while
the queue is short, one encoding
of each new message for its event and its acknowledgement, and per-send outcomes in a batch.

A real server and database (SQLite or PostgreSQL, --db); the writer under test is a second
MessageWriter on the server's own service context, so its batches are not shared with the
server's.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

import msgspec
from sqlalchemy import select

from courtyard.domain.errors import InvalidInput
from courtyard.domain.events import MessageCreated
from courtyard.domain.search_text import MAX_TERMS, has_link, tokenize
from courtyard.domain.text import clean_message_text
from courtyard.domain.users import Actor
from courtyard.plugins import hookimpl
from courtyard.services.message_writer import MessageWriter, Sent, index_terms, may_have_link
from courtyard.services.messages import message_body
from courtyard.storage.schema import events
from tests.services.test_plugins import plugin_org
from tests.support import DatabaseFactory, Org


@dataclass
class Slow:
    """Spends ``cpu_seconds`` of CPU on every send (busy, not sleeping: the writer times CPU)."""

    cpu_seconds: float

    @hookimpl
    def courtyard_before_message_stored(self, text: str) -> str | None:
        until = time.thread_time() + self.cpu_seconds
        while time.thread_time() < until:
            pass
        return None


async def actor_of(org: Org, token: str) -> Actor:
    return await org.server.services.sessions.authenticate(token)


async def write_all(
    writer: MessageWriter, actor: Actor, channel_id: int, texts: list[str], prefix: str = "k"
) -> list[Sent | BaseException]:
    """Submit every text at once (one queue), and wait for every outcome."""
    loop = asyncio.get_running_loop()
    futures: list[asyncio.Future[Sent | BaseException]] = []
    for number, text in enumerate(texts):
        future: asyncio.Future[Sent | BaseException] = loop.create_future()
        futures.append(future)
        writer.submit(actor, channel_id, text, f"{prefix}{number}", None, (), future.set_result)
    return await asyncio.wait_for(asyncio.gather(*futures), 60)


async def test_batches_are_bounded_by_time_when_sends_are_slow(
    databases: DatabaseFactory, workdir: Path
) -> None:
    async with plugin_org(databases, workdir, Slow(cpu_seconds=0.002)) as org:
        alice = await org.person("alice")
        channel = await alice.create_channel()
        writer = MessageWriter(org.server.services.context, budget=0.010, min_batch=1)
        actor = await actor_of(org, alice.token)
        # Before its first batch the writer can only guess a send's cost (0.1 ms): it learns.
        await write_all(writer, actor, channel["id"], ["warm-up 1", "warm-up 2"], "w")
        learned = len(writer.recent)
        outcomes = await write_all(writer, actor, channel["id"], [f"m{i}" for i in range(40)])
    assert all(isinstance(o, Sent) and o.created for o in outcomes), outcomes
    seqs = [o.message.seq for o in outcomes if isinstance(o, Sent)]
    assert seqs == sorted(seqs) and len(set(seqs)) == 40  # stored in the order submitted
    batches = list(writer.recent)[learned:]
    assert sum(sends for sends, _, _ in batches) == 40
    # A send costs >= 2 ms of CPU here: a 10 ms budget holds at most 5 of them once the
    # estimate has converged (it starts from the warm-up's), never the 256 of the count
    # limit, however long the queue is.
    assert len(batches) >= 7, batches
    for number, (sends, _, _) in enumerate(batches):
        assert sends <= (10 if number < 2 else 5), batches
    assert writer.batch_limit <= 5


async def test_a_backlog_is_taken_min_batch_at_a_time_when_the_budget_holds_fewer(
    org: Org,
) -> None:
    alice = await org.person("alice")
    channel = await alice.create_channel()
    writer = MessageWriter(org.server.services.context, budget=1e-9, min_batch=4)
    outcomes = await write_all(
        writer, await actor_of(org, alice.token), channel["id"], [f"m{i}" for i in range(10)]
    )
    assert all(isinstance(o, Sent) for o in outcomes)
    seqs = [o.message.seq for o in outcomes if isinstance(o, Sent)]
    assert seqs == sorted(seqs) and len(set(seqs)) == 10
    # However slow a send, a batch shares its transaction's fixed cost among min_batch sends.
    assert [(sends, queued) for sends, queued, _ in writer.recent] == [(4, 10), (4, 6), (2, 2)]


async def test_batches_take_everything_queued_up_to_the_count_limit_when_sends_are_cheap(
    org: Org,
) -> None:
    alice = await org.person("alice")
    channel = await alice.create_channel()
    writer = MessageWriter(org.server.services.context, budget=10.0, max_batch=16)
    outcomes = await write_all(
        writer, await actor_of(org, alice.token), channel["id"], [f"m{i}" for i in range(40)]
    )
    assert all(isinstance(o, Sent) for o in outcomes)
    assert [sends for sends, _, _ in writer.recent] == [16, 16, 8]


async def test_sends_arriving_close_together_share_a_batch_and_a_lone_send_waits_for_nothing(
    org: Org,
) -> None:
    alice = await org.person("alice")
    channel = await alice.create_channel()
    actor = await actor_of(org, alice.token)
    # A long interval makes the pause unmistakable (the server's is 2 ms).
    writer = MessageWriter(org.server.services.context, interval=0.5)
    loop = asyncio.get_running_loop()

    def submit(key: str) -> asyncio.Future[Sent | BaseException]:
        future: asyncio.Future[Sent | BaseException] = loop.create_future()
        writer.submit(actor, channel["id"], key, key, None, (), future.set_result)
        return future

    started = loop.time()
    assert isinstance(await submit("first"), Sent)
    assert loop.time() - started < 0.4  # the writer was idle: no pause
    # Four sends, each a few loop turns after the one before, within the interval: without
    # the pause each would have found the writer idle and started a batch of its own.
    later = []
    for number in range(4):
        later.append(submit(f"later-{number}"))
        for _ in range(3):
            await asyncio.sleep(0)
    outcomes = await asyncio.wait_for(asyncio.gather(*later), 30)
    assert all(isinstance(o, Sent) and o.created for o in outcomes), outcomes
    assert [sends for sends, _, _ in writer.recent] == [1, 4]
    # Once the interval has passed, a send starts at once again.
    await asyncio.sleep(0.6)
    started = loop.time()
    assert isinstance(await submit("after-a-while"), Sent)
    assert loop.time() - started < 0.4
    assert [sends for sends, _, _ in writer.recent] == [1, 4, 1]


async def test_a_queue_that_fills_a_batch_does_not_wait_for_the_interval(org: Org) -> None:
    alice = await org.person("alice")
    channel = await alice.create_channel()
    actor = await actor_of(org, alice.token)
    writer = MessageWriter(org.server.services.context, interval=60.0, min_batch=4, max_batch=4)
    await write_all(writer, actor, channel["id"], ["warm-up"], "w")
    # Within a minute of the last batch, but a full batch is queued: written at once.
    outcomes = await asyncio.wait_for(
        write_all(writer, actor, channel["id"], [f"m{i}" for i in range(4)]), 20
    )
    assert all(isinstance(o, Sent) for o in outcomes)
    assert [sends for sends, _, _ in writer.recent] == [1, 4]


async def test_a_new_message_is_encoded_once_for_its_event_and_its_acknowledgement(
    org: Org,
) -> None:
    alice = await org.person("alice")
    bob = await org.person("bob")
    channel = await alice.create_channel(member_ids=[bob.id])
    writer = MessageWriter(org.server.services.context)
    (sent,) = await write_all(
        writer, await actor_of(org, alice.token), channel["id"], [f"hi @{bob.username} ü 数据"]
    )
    assert isinstance(sent, Sent) and sent.created
    assert sent.message.mentioned_user_ids == [bob.id]
    assert sent.message_json == msgspec.json.encode(sent.message)
    async with org.server.services.context.storage.snapshot() as uow:
        rows = (
            await uow.conn.execute(
                select(events.c.type, events.c.payload).where(events.c.type == "message.created")
            )
        ).all()
    payloads = [bytes(row.payload) for row in rows]
    # Byte for byte what the outbox would have stored for the event struct.
    assert msgspec.json.encode(MessageCreated(message=sent.message)) in payloads


async def test_each_send_of_a_batch_gets_its_own_outcome_across_channels(org: Org) -> None:
    alice = await org.person("alice")
    bob = await org.person("bob")
    carol = await org.person("carol")
    mine = await alice.create_channel(member_ids=[carol.id])
    theirs = await bob.create_channel()  # alice is not a member
    actors = {p.id: await actor_of(org, p.token) for p in (alice, bob, carol)}
    writer = MessageWriter(org.server.services.context)
    loop = asyncio.get_running_loop()
    plan = [
        (alice, mine, True),
        (alice, theirs, False),
        (carol, mine, True),
        (bob, theirs, True),
        (alice, theirs, False),
        (bob, mine, False),  # bob is not in alice's channel
        (alice, mine, True),
    ]
    futures: list[asyncio.Future[Sent | BaseException]] = []
    for number, (person, channel, _) in enumerate(plan):
        future: asyncio.Future[Sent | BaseException] = loop.create_future()
        futures.append(future)
        writer.submit(
            actors[person.id],
            channel["id"],
            f"m{number}",
            f"x{number}",
            None,
            (),
            future.set_result,
        )
    outcomes = await asyncio.wait_for(asyncio.gather(*futures), 30)
    assert [sends for sends, _, _ in writer.recent] == [len(plan)]  # one batch
    for (person, channel, allowed), outcome in zip(plan, outcomes, strict=True):
        if allowed:
            assert isinstance(outcome, Sent), outcome
            assert outcome.message.channel_id == channel["id"]
            assert outcome.message.sender_id == person.id
        else:
            assert not isinstance(outcome, Sent)
            assert getattr(outcome, "code", None) in ("not_a_member", "not_found"), outcome
    # Distinct error objects: each send's refusal is its own.
    assert outcomes[1] is not outcomes[4]
    seqs = [
        o.message.seq
        for o in outcomes
        if isinstance(o, Sent) and o.message.channel_id == mine["id"]
    ]
    assert seqs == sorted(seqs) and len(set(seqs)) == 3


def test_the_send_paths_index_terms_are_exactly_the_tokenisers_terms() -> None:
    texts = [
        "",
        "Deploying the deployed deployments!",
        "数据安全 and 安全 review, 東京 ｶﾀｶﾅ ไทยภาษา 한국어",
        "Café naïve coöperate ÆON façade — ÅNGSTRÖM",
        "snake_case kebab-case v2.1.3 #general @bob https://example.com/a?b=c",
        "ｆｕｌｌｗｉｄｔｈ ①②③ x² ﬁne",
        "a" * 200 + " " + "word " * 50,
        "emoji 🙂 between words🙂joined",
        "ascii_only: under_scores, digits 123abc 4.5, CamelCase, it's, e-mail, x--y",
        "running runners ran; connection CONNECTED connects",
        "\t tab\nnew line  double  space ~!@#$%^&*()[]{}|\\<>?/",
    ]
    for text in texts:
        assert index_terms(text) == [token.term for token in tokenize(text)], text
        assert may_have_link(text) == has_link(text), text
    for text in ["see https://x.io", "HTTP://X.IO", "WWW.example.com", "wWw.a.b", "no link www"]:
        assert may_have_link(text) == has_link(text), text
    long_text = "abc " * 20_000
    assert index_terms(long_text) == [token.term for token in tokenize(long_text)]
    long_text = "数据 abc " * 6_000
    assert index_terms(long_text) == [token.term for token in tokenize(long_text)]
    assert len(index_terms(long_text)) == MAX_TERMS


def test_a_message_body_is_checked_exactly_as_clean_message_text_checks_it() -> None:
    texts = [
        "hello",
        "  padded  ",
        "two\nlines\tand a tab",
        "windows\r\nline\rends",
        "",
        "   ",
        "\n\t \n",
        "nul\x00inside",
        "bell\x07",
        "escape \x1b[31m",
        "del \x7f",
        "surrogate \ud800",
        "zero\u200bwidth and bidi \u202e override",  # Cf: allowed by the rule, not printable
        "no-break\u00a0space and \u2028 line separator",
        "emoji 🙂 数据 ｶﾀｶﾅ",
        "x" * 20,
        "x" * 21,
        "\u0085next line",
    ]
    for text in texts:
        for limit in (20, 16_000):
            try:
                expected: str | tuple[str, str] = clean_message_text(text, max_length=limit)
            except InvalidInput as exc:
                expected = ("error", exc.code)
            try:
                got: str | tuple[str, str] = message_body(text, max_length=limit)
            except InvalidInput as exc:
                got = ("error", exc.code)
            assert got == expected, (text, limit)
