"""Group commit for sending messages: many sends, one transaction.

Sends that arrive while a transaction is running wait for the next one and are written
together: one statement to check every sender's access, one sequence reservation per channel,
one insert for all messages, one for all events. Under load this divides the per-message
database work by the batch size; alone, a send is a batch of one and costs what it did.

Each send keeps its own outcome: one sender's refusal (not a member, rejected by a plugin)
never fails the others. Only an unexpected database error fails the whole batch.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import re
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec

from courtyard.domain.errors import Conflict, InvalidInput, NotFound
from courtyard.domain.events import Audience, MessageCreated, ThreadUpdated
from courtyard.domain.mentions import Mentions, find_mentions
from courtyard.domain.messages import Message
from courtyard.domain.search_text import (
    _TOKEN_RE,
    MAX_TERMS,
    _paired_char,
    has_link,
    normalise_word,
)
from courtyard.domain.text import clean_message_text
from courtyard.domain.users import Actor
from courtyard.plugins.manager import call_after_hook, chain_text_hook
from courtyard.services.access import ChannelAccess, posting_access
from courtyard.services.context import ServiceContext
from courtyard.services.search import search_document
from courtyard.storage.errors import UniqueViolation
from courtyard.storage.repositories.files import FileRecord, FileRepository
from courtyard.storage.repositories.messages import NewMessage
from courtyard.storage.repositories.search import SearchDocument, SearchRepository
from courtyard.storage.repositories.send_batch import SendBatchRepository
from courtyard.storage.unit_of_work import UnitOfWork

logger = logging.getLogger(__name__)

#: Sends per batch at most, whatever their cost.
MAX_BATCH = 256
#: Sends per batch at least: a transaction has a fixed cost (~2-3 ms of CPU with 32 channels
#: on SQLite, most of it the search index's commit; ~2 ms on PostgreSQL, its round trips)
#: that must stay shared by several sends even when each one is slow.
MIN_BATCH = 16
#: CPU time one batch may take: it bounds how long a batch holds the event loop when sends
#: are expensive (under a plugin taking 2 ms a send, batches of ``MIN_BATCH``). With
#: ordinary sends it never binds: the count limit does. CPU time, not wall time: on a shared
#: machine, time the process spends descheduled would shrink the batches, raise the cost per
#: send and tip the process into saturation. It was 4 ms, with a quarter of any longer queue
#: taken regardless (ADR 0014); measured on S6 at half load, that rule kept a backlog of about
#: four batches, because smaller batches cost more per send (ADR 0017).
BATCH_BUDGET = 0.020
#: Seconds from one batch's start to the next while fewer sends are queued than a batch takes
#: (a commit delay, as PostgreSQL's ``commit_delay``). Starting a batch the moment anything was
#: queued made batches of one to ten sends at moderate load, each paying the transaction's
#: fixed cost (~1 ms of CPU with 32 channels on SQLite): at 5,000 sends/s the server's core was
#: 98 % busy for 30 % worth of messages. With this pause it was 65-70 % (docs/adr/0023). A send
#: that finds the writer idle for longer than this starts at once, so a lone send waits for
#: nothing.
BATCH_INTERVAL = 0.002
_NO_MENTIONS = Mentions(frozenset(), channel_wide=False, here=False)
# Seconds per send assumed before the first batch was timed.
_FIRST_GUESS = 100e-6

_encoder = msgspec.json.Encoder()
MESSAGE_CREATED = str(MessageCreated.__struct_config__.tag)
# ``message.created``'s stored JSON is this, the message's JSON and "}" (what msgspec makes of
# the event): the message is encoded once, for the event and for the acknowledgement.
_CREATED_PREFIX = b'{"type":"' + MESSAGE_CREATED.encode() + b'","message":'

Reply = Callable[["Sent | BaseException"], None]


@dataclass(frozen=True, slots=True)
class Sent:
    """The outcome of a send: the message, and False when an earlier send is being replayed.

    ``message_json`` is the message as its ``message.created`` event encodes it (new messages
    only), so the acknowledgement does not encode it again.
    """

    message: Message
    created: bool
    message_json: bytes | None = None


@dataclass(slots=True)
class PendingSend:
    """A validated send waiting for its batch, and whom to tell the outcome."""

    actor: Actor
    channel_id: int
    text: str
    client_message_id: str | None
    thread_root_id: int | None
    file_ids: tuple[int, ...]
    reply: Reply = field(repr=False)


@dataclass(slots=True)
class _Accepted:
    index: int
    send: PendingSend
    access: ChannelAccess
    text: str
    mentions: Mentions
    files: list[FileRecord]
    mentioned: list[int] = field(default_factory=list)
    seq: int = 0


class MessageWriter:
    """Queues sends and writes them in batches, one transaction at a time per process.

    A batch takes what is queued, up to as many sends as fit in ``budget`` seconds of CPU at
    the cost per send measured on the previous batches (at least ``min_batch``, at most
    ``max_batch``); the writer lets the event loop run between batches so acknowledgements,
    deliveries and newly arrived sends are not held up behind a backlog. While the queue holds
    less than a batch, batches start at most every ``interval`` seconds, so that sends arriving
    close together share one.
    """

    def __init__(
        self,
        ctx: ServiceContext,
        *,
        budget: float = BATCH_BUDGET,
        interval: float = BATCH_INTERVAL,
        min_batch: int = MIN_BATCH,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self._ctx = ctx
        self._queue: collections.deque[PendingSend] = collections.deque()
        self._draining = False
        self._drainer: asyncio.Task[None] | None = None
        self._budget = budget
        self._min_batch = min_batch
        self._max_batch = max_batch
        self._per_send = _FIRST_GUESS
        self._interval = interval
        #: When the next batch may start (event-loop time) unless the queue fills a batch.
        self._next_start = 0.0
        #: (sends, queued, CPU seconds) of the latest batches, newest last: ``queued`` is the
        #: queue's length when the batch was taken. For tests and diagnostics.
        self.recent: collections.deque[tuple[int, int, float]] = collections.deque(maxlen=256)

    @property
    def batch_limit(self) -> int:
        """How many sends fit in the time budget at the measured cost per send."""
        fits = int(self._budget / self._per_send) if self._per_send > 0 else self._max_batch
        return max(self._min_batch, min(self._max_batch, fits))

    def submit(
        self,
        actor: Actor,
        channel_id: int,
        text: str,
        client_message_id: str | None,
        thread_root_id: int | None,
        file_ids: tuple[int, ...],
        reply: Reply,
    ) -> None:
        """Queue a send now; ``reply`` gets its outcome once its transaction has ended.

        Synchronous on purpose: sends queued one after the other are stored in that order
        (the event socket pipelines a connection's sends without awaiting each one).
        """
        self._queue.append(
            PendingSend(actor, channel_id, text, client_message_id, thread_root_id, file_ids, reply)
        )
        if not self._draining:
            self._draining = True
            self._drainer = asyncio.get_running_loop().create_task(
                self._drain(), name="message-writer"
            )

    async def _drain(self) -> None:
        queue = self._queue
        loop = asyncio.get_running_loop()
        try:
            backlog = self._ctx.storage.search_backlog
            while queue:
                if backlog.full:
                    await backlog.room()  # send no faster than the index keeps up
                wait = self._next_start - loop.time()
                if wait > 0 and len(queue) < self.batch_limit:
                    await asyncio.sleep(wait)  # more sends arrive meanwhile: one transaction
                self._next_start = loop.time() + self._interval
                queued = len(queue)
                take = min(queued, self.batch_limit)
                batch = [queue.popleft() for _ in range(take)]
                started = time.thread_time()
                await self._write_batch(batch)
                self._learn(take, queued, time.thread_time() - started)
                if queue:
                    # On SQLite a batch never waits for I/O: without this the loop would
                    # not send an acknowledgement or read a frame until the queue is empty.
                    await asyncio.sleep(0)
        finally:
            self._draining = False

    def _learn(self, sends: int, queued: int, seconds: float) -> None:
        # Seconds per send including the batch's fixed cost: where batches are bounded by
        # the budget, the limit settles where a batch takes ``budget`` (fixed cost included).
        self._per_send += (seconds / sends - self._per_send) * 0.5
        self.recent.append((sends, queued, seconds))

    async def _write_batch(self, batch: list[PendingSend]) -> None:
        outcomes: list[Sent | BaseException]
        try:
            try:
                # Keys are looked up only after an insert collided: nearly every send is a
                # first attempt, and the lookup was a statement per batch for nothing.
                outcomes = await self._store(batch, check_keys=False)
            except UniqueViolation:
                try:
                    outcomes = await self._store(batch, check_keys=True)
                except UniqueViolation:
                    # Another process used one of these keys meanwhile: one by one, so each
                    # retry finds the message that won.
                    outcomes = [await self._store_alone(send) for send in batch]
        except Exception as exc:
            outcomes = [exc] * len(batch)
        for send, outcome in zip(batch, outcomes, strict=True):
            try:
                send.reply(outcome)
            except Exception:
                logger.exception("answering a send failed")

    async def _store_alone(self, send: PendingSend) -> Sent | BaseException:
        outcome: Sent | BaseException = RuntimeError("send was not processed")
        for _attempt in range(2):
            try:
                return (await self._store([send], check_keys=True))[0]
            except UniqueViolation as exc:
                outcome = exc
            except Exception as exc:
                return exc
        return outcome

    async def _store(
        self, batch: list[PendingSend], *, check_keys: bool
    ) -> list[Sent | BaseException]:
        now = self._ctx.clock()
        outcomes: list[Sent | BaseException | None] = [None] * len(batch)
        duplicates: dict[int, int] = {}
        stored: list[tuple[_Accepted, Message]] = []
        documents: list[SearchDocument] = []
        async with self._ctx.storage.transaction() as uow:
            accepted = await self._accept(uow, batch, outcomes, duplicates, check_keys)
            if accepted:
                await self._resolve_mentions(uow, accepted)
                await self._reserve_seqs(uow, accepted, now)
                messages, documents = await self._insert(uow, accepted, now)
                encoded = await self._after_insert(uow, accepted, messages, now)
                for item, message, message_json in zip(accepted, messages, encoded, strict=True):
                    outcomes[item.index] = Sent(message, True, message_json)
                    stored.append((item, message))
        # Committed: on PostgreSQL the search index follows a few milliseconds later (ADR
        # 0024), and the after-stored plugins see each new message with its channel as the
        # send left it.
        if documents:
            self._ctx.storage.search_backlog.index_later(documents)
        after = self._ctx.plugins.hook.courtyard_after_message_stored
        if stored and after.get_hookimpls():
            for item, message in stored:
                channel = msgspec.structs.replace(
                    item.access.channel, last_seq=item.seq, last_message_at=now
                )
                call_after_hook(after, actor=item.send.actor, channel=channel, message=message)
        for index, first in duplicates.items():
            earlier = outcomes[first]
            if isinstance(earlier, Sent):
                same = earlier.message.channel_id == batch[index].channel_id
                outcomes[index] = Sent(earlier.message, False) if same else _key_reused()
            else:
                outcomes[index] = earlier
        return [o if o is not None else RuntimeError("send was not processed") for o in outcomes]

    async def _accept(
        self,
        uow: UnitOfWork,
        batch: list[PendingSend],
        outcomes: list[Sent | BaseException | None],
        duplicates: dict[int, int],
        check_keys: bool,
    ) -> list[_Accepted]:
        keys = [(s.actor.user_id, s.client_message_id) for s in batch if s.client_message_id]
        existing = await uow.messages.by_client_ids(keys) if check_keys else {}
        views = await SendBatchRepository(uow.conn).posting_views(
            {(s.channel_id, s.actor.user_id) for s in batch}
        )
        wanted_files = {file_id for s in batch for file_id in s.file_ids}
        # Locked until commit: a file attached by a concurrent batch is seen as attached.
        file_rows = (
            await FileRepository(uow.conn).get_many(wanted_files, lock=True) if wanted_files else {}
        )
        claimed: set[int] = set()
        accepted: list[_Accepted] = []
        first_with_key: dict[tuple[int, str], int] = {}
        # The posting rule depends on the channel, the membership and whether the sender is a
        # guest: decided once per (channel, user, guest) in a batch, not per send.
        granted: dict[tuple[int, int, bool], ChannelAccess] = {}
        before = self._ctx.plugins.hook.courtyard_before_message_stored
        hooked = bool(before.get_hookimpls())
        for index, send in enumerate(batch):
            actor = send.actor
            key = (actor.user_id, send.client_message_id or "")
            try:
                if send.client_message_id and key in existing:
                    earlier = existing[key]
                    if earlier.channel_id != send.channel_id:
                        raise _key_reused()
                    outcomes[index] = Sent(earlier, False)
                    continue
                if send.client_message_id and key in first_with_key:
                    duplicates[index] = first_with_key[key]
                    continue
                rule = (send.channel_id, actor.user_id, actor.is_guest)
                access = granted.get(rule)
                if access is None:
                    channel, membership = views[(send.channel_id, actor.user_id)]
                    access = granted[rule] = posting_access(actor, channel, membership)
                if send.thread_root_id is not None:
                    await _check_thread_root(uow, send.channel_id, send.thread_root_id)
                text = send.text
                if hooked:
                    text = self._rewritten(send, access, before)
                attached = _files_for(send, file_rows, claimed) if send.file_ids else []
            except Exception as exc:  # this send's refusal (or a crashing plugin) only
                outcomes[index] = exc
                continue
            if send.client_message_id:
                first_with_key[key] = index
            if send.file_ids:
                claimed.update(send.file_ids)
            # Every mention starts with "@": most messages have none, and skip the scan.
            mentions = find_mentions(text) if "@" in text else _NO_MENTIONS
            accepted.append(_Accepted(index, send, access, text, mentions, attached))
        return accepted

    def _rewritten(self, send: PendingSend, access: ChannelAccess, hook: Any) -> str:
        text = chain_text_hook(
            hook,
            "text",
            actor=send.actor,
            channel=access.channel,
            text=send.text,
            thread_root_id=send.thread_root_id,
        )
        if text is send.text:
            return text  # no plugin changed it: Messages.submit_message cleaned it already
        if send.file_ids and not text.strip():
            return ""  # a message may be just its files
        return clean_message_text(text, max_length=self._ctx.policy.max_message_chars)

    async def _resolve_mentions(self, uow: UnitOfWork, accepted: list[_Accepted]) -> None:
        names = {name for item in accepted for name in item.mentions.usernames}
        if not names:
            return
        by_name = {r.username: r for r in await uow.users.by_usernames(names) if r.is_active}
        wanted: dict[int, set[int]] = defaultdict(set)
        for item in accepted:
            for name in item.mentions.usernames:
                if name in by_name:
                    wanted[item.send.channel_id].add(by_name[name].id)
        members = {
            channel_id: await uow.channels.members_among(channel_id, ids)
            for channel_id, ids in wanted.items()
        }
        for item in accepted:
            ids = {by_name[n].id for n in item.mentions.usernames if n in by_name}
            item.mentioned = sorted(ids & members.get(item.send.channel_id, set()))

    async def _reserve_seqs(
        self, uow: UnitOfWork, accepted: list[_Accepted], now: datetime
    ) -> None:
        per_channel: dict[int, list[_Accepted]] = defaultdict(list)
        for item in accepted:
            per_channel[item.send.channel_id].append(item)
        # One statement for every channel of the batch, not one per channel (it was the
        # largest item of the batch in the S6 profile with 32 channels per batch).
        lasts = await SendBatchRepository(uow.conn).reserve_seqs(
            {channel_id: len(items) for channel_id, items in per_channel.items()}, now=now
        )
        for channel_id, items in per_channel.items():
            last = lasts[channel_id]
            for offset, item in enumerate(items):
                item.seq = last - len(items) + 1 + offset

    async def _insert(
        self, uow: UnitOfWork, accepted: list[_Accepted], now: datetime
    ) -> tuple[list[Message], list[SearchDocument]]:
        ids = await uow.messages.insert_many(
            [
                NewMessage(
                    channel_id=item.send.channel_id,
                    seq=item.seq,
                    sender_id=item.send.actor.user_id,
                    text=item.text,
                    thread_root_id=item.send.thread_root_id,
                    client_message_id=item.send.client_message_id,
                    mentions_channel=item.mentions.channel_wide,
                    mentions_here=item.mentions.here,
                )
                for item in accepted
            ],
            now=now,
        )
        await uow.messages.insert_mention_rows(
            [
                {
                    "message_id": mid,
                    "user_id": uid,
                    "channel_id": item.send.channel_id,
                    "seq": item.seq,
                }
                for item, mid in zip(accepted, ids, strict=True)
                for uid in item.mentioned
            ]
        )
        links = [
            (record.info.id, mid, position)
            for item, mid in zip(accepted, ids, strict=True)
            for position, record in enumerate(item.files)
        ]
        if links:
            await FileRepository(uow.conn).attach(links, now=now)
        # A new message has no reactions, replies or pin: built, not read back.
        messages = [
            Message(
                id=mid,
                channel_id=item.send.channel_id,
                seq=item.seq,
                sender_id=item.send.actor.user_id,
                text=item.text,
                created_at=now,
                thread_root_id=item.send.thread_root_id,
                mentioned_user_ids=item.mentioned,
                mentions_channel=item.mentions.channel_wide,
                mentions_here=item.mentions.here,
                client_message_id=item.send.client_message_id,
                attachments=[record.info.as_attachment() for record in item.files],
            )
            for item, mid in zip(accepted, ids, strict=True)
        ]
        documents = [
            search_document(mid, item.text, [record.info.name for record in item.files])
            if item.files
            else SearchDocument(mid, index_terms(item.text), may_have_link(item.text))
            for item, mid in zip(accepted, ids, strict=True)
        ]
        if self._ctx.storage.search_backlog.deferred:
            return messages, documents  # written once this transaction has committed
        await SearchRepository(uow.conn).index(documents)
        return messages, []

    async def _after_insert(
        self, uow: UnitOfWork, accepted: list[_Accepted], messages: list[Message], now: datetime
    ) -> list[bytes]:
        """Read markers and events; returns each message's JSON (as its event carries it)."""
        # Posting in a channel means you have read it (as in Slack and Mattermost); no
        # read_marker.moved event — clients infer it from message.created (docs/events.md).
        markers: dict[tuple[int, int], int] = {}
        for item in accepted:
            if item.send.thread_root_id is None:
                markers[(item.send.channel_id, item.send.actor.user_id)] = item.seq
        await SendBatchRepository(uow.conn).set_read_markers(
            [(c, u, q) for (c, u), q in markers.items()]
        )
        # Events in sequence order; a reply is followed by its root's new summary.
        encoded: list[bytes] = []
        audiences: dict[int, Audience] = {}
        encode = _encoder.encode
        outbox = uow.outbox
        for item, message in zip(accepted, messages, strict=True):
            channel_id = item.send.channel_id
            audience = audiences.get(channel_id)
            if audience is None:
                audience = audiences[channel_id] = Audience(channel_id=channel_id)
            message_json = encode(message)
            encoded.append(message_json)
            outbox.append_encoded(MESSAGE_CREATED, _CREATED_PREFIX + message_json + b"}", audience)
            root_id = item.send.thread_root_id
            if root_id is not None:
                await uow.messages.record_reply(
                    root_id, replier_id=item.send.actor.user_id, now=now
                )
                root = await uow.messages.get(root_id)
                assert root is not None
                outbox.append(ThreadUpdated(root=root), audience)
        return encoded


async def _check_thread_root(uow: UnitOfWork, channel_id: int, root_id: int) -> None:
    root = await uow.messages.get_record(root_id)
    if root is None or root.channel_id != channel_id:
        raise NotFound(
            "thread root not found", code="thread_root_not_found", field="thread_root_id"
        )
    if root.thread_root_id is not None:
        raise InvalidInput(
            "reply to the thread's root message, not to a reply",
            field="thread_root_id",
            code="nested_thread",
        )
    if root.deleted:
        raise InvalidInput(
            "the thread root was deleted", field="thread_root_id", code="thread_root_deleted"
        )


def _files_for(
    send: PendingSend, rows: dict[int, FileRecord], claimed: set[int]
) -> list[FileRecord]:
    """The sender's own unattached uploads, in the order given; 404 for anyone else's."""
    if len(set(send.file_ids)) != len(send.file_ids):
        raise InvalidInput("a file is listed twice", field="file_ids", code="duplicate_file")
    found = []
    for file_id in send.file_ids:
        record = rows.get(file_id)
        if record is None or record.info.uploader_id != send.actor.user_id or record.orphaned:
            raise NotFound("file not found", code="file_not_found", field="file_ids")
        if record.info.message_id is not None or file_id in claimed:
            raise Conflict(
                "that file is already attached to a message",
                code="file_already_attached",
                field="file_ids",
            )
        found.append(record)
    return found


def index_terms(text: str) -> list[str]:
    """The terms ``tokenize`` gives for ``text`` (what ``search_document`` indexes), without
    building a ``Token`` with its span for each: the send path needs only the terms, and the
    tokens were half of the tokenising cost. A test holds the two equal."""
    terms: list[str] = []
    if text.isascii():
        # In ASCII the tokeniser's words are runs of letters and digits, and no character
        # belongs to a paired script: a plain class scans several times faster.
        for word in _ASCII_WORD_RE.findall(text):
            terms += normalise_word(word)
            if len(terms) >= MAX_TERMS:
                return terms[:MAX_TERMS]
        return terms
    for match in _TOKEN_RE.finditer(text):
        run = match.group(1)
        if run:
            chars = [_paired_char(c) for c in run]
            terms += [chars[i] + chars[i + 1] for i in range(len(chars) - 1)]
            terms.append(chars[-1])
        else:
            terms += normalise_word(match.group(2))
        if len(terms) >= MAX_TERMS:
            return terms[:MAX_TERMS]
    return terms


_ASCII_WORD_RE = re.compile(r"[A-Za-z0-9]+")


def may_have_link(text: str) -> bool:
    """``has_link`` for texts that could hold one: a link starts with ``http://``,
    ``https://`` or ``www.`` (any case), so a text with no ``//`` and no ``ww`` has none."""
    return ("//" in text or "ww" in text.lower()) and has_link(text)


def _key_reused() -> Conflict:
    return Conflict(
        "client_message_id was already used for a message in another channel",
        code="client_message_id_reused",
        field="client_message_id",
    )
