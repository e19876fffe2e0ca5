"""Plugin hooks on the message write path: rewrite, reject, observe, chain, fail safely."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from courtyard.app import build_services
from courtyard.domain.channels import Channel
from courtyard.domain.errors import Rejected
from courtyard.domain.messages import Message
from courtyard.domain.users import Actor
from courtyard.plugins import hookimpl
from courtyard.storage.engine import Database
from courtyard.storage.schema import events, messages
from tests.support import (
    PASSWORD,
    DatabaseFactory,
    LiveServer,
    Org,
    Person,
    server_settings,
    unique,
)


@contextlib.asynccontextmanager
async def plugin_org(
    databases: DatabaseFactory, workdir: Path, *plugins: object, **overrides: Any
) -> AsyncIterator[Org]:
    """An organisation on a live server whose services have these plugin objects registered."""
    url = await databases.create()
    settings = server_settings(url, workdir, **overrides)
    server = LiveServer(build_services(settings, plugin_objects=plugins), settings)
    await server.start()
    org = Org(server=server, owner=None)  # type: ignore[arg-type]
    try:
        token = await server.services.setup.issue_setup_token()
        assert token is not None
        owner_name = unique("owner")
        response = await org.anonymous().post(
            "/api/v1/setup",
            json={
                "setup_token": token,
                "organization_name": "Acme",
                "username": owner_name,
                "password": PASSWORD,
                "session_type": "token",
            },
        )
        assert response.status_code == 201, response.text
        org.owner = await org.sign_in(owner_name)
        yield org
    finally:
        await org.close()
        await server.stop()


def read_committed_text(database_url: str, message_id: int) -> str | None:
    """The message's text as a separate connection (another process) sees it right now."""
    found: list[str | None] = []

    async def read() -> None:
        database = Database(database_url)
        try:
            async with database.read() as conn:
                row = (
                    await conn.execute(select(messages.c.text).where(messages.c.id == message_id))
                ).first()
            found.append(None if row is None else row.text)
        finally:
            await database.dispose()

    # The hook runs on the server's event loop; a thread with its own loop and connection
    # sees only what has been committed.
    reader = threading.Thread(target=lambda: asyncio.run(read()))
    reader.start()
    reader.join(30)
    return found[0] if found else "<reader failed>"


@dataclass
class Censor:
    """Rewrites one word on send and on edit."""

    seen: list[tuple[str, str, int, int | None]] = field(default_factory=list)

    @hookimpl
    def courtyard_before_message_stored(
        self, actor: Actor, channel: Channel, text: str, thread_root_id: int | None
    ) -> str | None:
        self.seen.append((actor.username, text, channel.id, thread_root_id))
        return text.replace("darn", "d**n") if "darn" in text else None

    @hookimpl
    def courtyard_before_message_edited(
        self, actor: Actor, channel: Channel, message: Message, new_text: str
    ) -> str | None:
        return new_text.replace("darn", "d**n")


@dataclass
class Gatekeeper:
    """Refuses anything that mentions a password."""

    @hookimpl
    def courtyard_before_message_stored(self, text: str) -> str | None:
        if "password" in text:
            raise Rejected("messages must not contain credentials")
        return None

    @hookimpl
    def courtyard_before_message_edited(self, new_text: str) -> str | None:
        if "password" in new_text:
            raise Rejected("messages must not contain credentials")
        return None


@dataclass
class Observer:
    """Records what the 'after' hooks receive, and whether it was committed by then."""

    database_url: str = ""
    stored: list[tuple[Message, str | None]] = field(default_factory=list)
    edited: list[tuple[Message, str | None]] = field(default_factory=list)
    actors: list[str] = field(default_factory=list)
    channels: list[Channel] = field(default_factory=list)

    @hookimpl
    def courtyard_after_message_stored(
        self, actor: Actor, channel: Channel, message: Message
    ) -> None:
        self.actors.append(actor.username)
        self.channels.append(channel)
        self.stored.append((message, read_committed_text(self.database_url, message.id)))

    @hookimpl
    def courtyard_after_message_edited(
        self, actor: Actor, channel: Channel, message: Message
    ) -> None:
        self.edited.append((message, read_committed_text(self.database_url, message.id)))


@dataclass
class Tagger:
    """Appends its tag, and remembers the text it was given (to prove the chain's order)."""

    tag: str
    calls: list[str]

    @hookimpl
    def courtyard_before_message_stored(self, text: str) -> str:
        self.calls.append(f"{self.tag} saw {text!r}")
        return f"{text} [{self.tag}]"

    @hookimpl
    def courtyard_after_message_stored(self, message: Message) -> None:
        self.calls.append(f"{self.tag} after {message.text!r}")


@dataclass
class Broken:
    """An 'after' hook with a bug."""

    calls: list[str]

    @hookimpl
    def courtyard_after_message_stored(self, message: Message) -> None:
        self.calls.append("broken after")
        raise RuntimeError("plugin bug")

    @hookimpl
    def courtyard_after_message_edited(self, message: Message) -> None:
        raise RuntimeError("plugin bug")


@dataclass
class Crashing:
    """A 'before' hook with a bug (not a deliberate rejection)."""

    @hookimpl
    def courtyard_before_message_stored(self, text: str) -> str | None:
        if "boom" in text:
            raise ZeroDivisionError("plugin bug")
        return None


@dataclass
class Blanker:
    """Rewrites to text that breaks the message rules."""

    @hookimpl
    def courtyard_before_message_stored(self, text: str) -> str | None:
        if text == "blank me":
            return "   "
        if text == "control me":
            return "bell \x07"
        return None


@contextlib.contextmanager
def captured(logger_name: str) -> Iterator[list[logging.LogRecord]]:
    """Records logged to one logger (the server replaces the root logger's handlers)."""
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Collect(logging.ERROR)
    logger = logging.getLogger(logger_name)
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)


async def message_count(org: Org) -> int:
    """Messages stored in the whole installation."""
    async with org.server.services.context.storage.snapshot() as uow:
        result = await uow.conn.execute(select(func.count()).select_from(messages))
        return int(result.scalar_one())


async def event_types(org: Org, channel_id: int) -> list[str]:
    """The wire names of a channel's outbox events, oldest first."""
    async with org.server.services.context.storage.snapshot() as uow:
        rows = await uow.conn.execute(
            select(events.c.type)
            .where(events.c.channel_id == channel_id)
            .order_by(events.c.position)
        )
        return [row.type for row in rows]


def history_path(channel: dict[str, Any]) -> str:
    """A channel's message history endpoint."""
    return f"/api/v1/channels/{channel['id']}/messages"


async def test_stored_text_is_the_rewrite_when_a_before_hook_returns_new_text(
    databases: DatabaseFactory, workdir: Path
) -> None:
    censor = Censor()
    async with plugin_org(databases, workdir, censor) as org:
        alice = await org.person("alice")
        channel = await alice.create_channel()
        sent = await alice.send(channel["id"], "oh darn it")
        assert sent["text"] == "oh d**n it"
        untouched = await alice.send(channel["id"], "fine words")
        assert untouched["text"] == "fine words"
        reply = await alice.send(channel["id"], "darn reply", thread_root_id=sent["id"])
        assert reply["text"] == "d**n reply"

        history = (await alice.get(history_path(channel))).json()["messages"]
        assert [m["text"] for m in history] == ["oh d**n it", "fine words"]
        assert censor.seen == [
            (alice.username, "oh darn it", channel["id"], None),
            (alice.username, "fine words", channel["id"], None),
            (alice.username, "darn reply", channel["id"], sent["id"]),
        ]

        edited = await alice.patch(f"/api/v1/messages/{untouched['id']}", {"text": "darn edit"})
        assert edited.status_code == 200
        assert edited.json()["text"] == "d**n edit"
        versions = (await alice.get(f"/api/v1/messages/{untouched['id']}/versions")).json()
        assert [v["text"] for v in versions["versions"]] == ["fine words"]


async def test_nothing_is_stored_when_a_before_hook_rejects_the_message(
    databases: DatabaseFactory, workdir: Path
) -> None:
    observer = Observer()
    async with plugin_org(databases, workdir, Gatekeeper(), observer) as org:
        observer.database_url = org.server.settings.database_url()
        alice = await org.person("alice")
        channel = await alice.create_channel()
        before = await message_count(org)

        refused = await alice.post(
            history_path(channel),
            {"text": "my password is hunter2", "client_message_id": "k-1"},
        )
        assert refused.status_code == 422
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["code"] == "rejected_by_policy"
        assert refused.json()["detail"] == "messages must not contain credentials"

        assert await message_count(org) == before
        assert (await alice.get(history_path(channel))).json()["messages"] == []
        assert "message.created" not in await event_types(org, channel["id"])
        assert observer.stored == []
        # The sequence number and the idempotency key were not used up.
        allowed = await alice.post(
            history_path(channel), {"text": "hi", "client_message_id": "k-1"}
        )
        assert allowed.status_code == 201
        assert allowed.json()["seq"] == 1
        assert allowed.json()["text"] == "hi"


async def test_edit_is_refused_and_text_kept_when_a_before_edit_hook_rejects(
    databases: DatabaseFactory, workdir: Path
) -> None:
    observer = Observer()
    async with plugin_org(databases, workdir, Gatekeeper(), observer) as org:
        observer.database_url = org.server.settings.database_url()
        alice = await org.person("alice")
        channel = await alice.create_channel()
        message = await alice.send(channel["id"], "innocent")
        refused = await alice.patch(f"/api/v1/messages/{message['id']}", {"text": "password: x"})
        assert refused.status_code == 422
        assert refused.json()["code"] == "rejected_by_policy"

        stored = (await alice.get(f"/api/v1/messages/{message['id']}")).json()
        assert stored["text"] == "innocent"
        assert stored["edited_at"] is None
        versions = (await alice.get(f"/api/v1/messages/{message['id']}/versions")).json()
        assert versions["versions"] == []
        assert "message.edited" not in await event_types(org, channel["id"])
        assert observer.edited == []


async def test_after_hooks_receive_the_committed_message_when_sending_and_editing(
    databases: DatabaseFactory, workdir: Path
) -> None:
    observer = Observer()
    async with plugin_org(databases, workdir, Censor(), observer) as org:
        observer.database_url = org.server.settings.database_url()
        alice = await org.person("alice")
        channel = await alice.create_channel()
        response = await alice.post(
            history_path(channel), {"text": "darn", "client_message_id": "once"}
        )
        sent = response.json()
        assert len(observer.stored) == 1
        message, committed_text = observer.stored[0]
        assert (message.id, message.seq, message.text) == (sent["id"], 1, "d**n")
        assert message.channel_id == channel["id"]
        assert committed_text == "d**n", "the hook ran before the message was committed"
        assert observer.actors == [alice.username]
        # The channel agrees with the message it now holds.
        assert observer.channels[0].id == channel["id"]
        assert observer.channels[0].last_seq == message.seq
        assert observer.channels[0].last_message_at == message.created_at

        # Replaying an idempotent send is not a new message: no second notification.
        replay = await alice.post(
            history_path(channel), {"text": "darn", "client_message_id": "once"}
        )
        assert replay.status_code == 200
        assert len(observer.stored) == 1

        await alice.patch(f"/api/v1/messages/{sent['id']}", {"text": "edited darn"})
        assert len(observer.edited) == 1
        edited, committed_edit = observer.edited[0]
        assert edited.text == "edited d**n"
        assert edited.edited_at is not None
        assert committed_edit == "edited d**n"
        # An edit that changes nothing is not an edit.
        await alice.patch(f"/api/v1/messages/{sent['id']}", {"text": "edited darn"})
        assert len(observer.edited) == 1


async def test_plugins_chain_in_the_order_they_are_given(
    databases: DatabaseFactory, workdir: Path
) -> None:
    calls: list[str] = []
    first, second = Tagger("first", calls), Tagger("second", calls)
    async with plugin_org(databases, workdir, first, second) as org:
        alice = await org.person("alice")
        channel = await alice.create_channel()
        sent = await alice.send(channel["id"], "hi")
        assert sent["text"] == "hi [first] [second]"
        assert calls == [
            "first saw 'hi'",
            "second saw 'hi [first]'",
            "first after 'hi [first] [second]'",
            "second after 'hi [first] [second]'",
        ]


PLUGIN_MODULE = """
from courtyard.plugins import hookimpl

@hookimpl
def courtyard_before_message_stored(text):
    return text + " [module]"
"""


async def test_configured_plugin_modules_run_before_plugin_objects(
    databases: DatabaseFactory, workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"courtyard_test_plugin_{secrets.token_hex(4)}"
    (tmp_path / f"{name}.py").write_text(PLUGIN_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    calls: list[str] = []
    async with plugin_org(
        databases, workdir, Tagger("object", calls), plugins={"modules": [name]}
    ) as org:
        alice = await org.person("alice")
        channel = await alice.create_channel()
        sent = await alice.send(channel["id"], "hi")
        assert sent["text"] == "hi [module] [object]"
        assert calls[0] == "object saw 'hi [module]'"


async def test_send_and_other_plugins_succeed_when_an_after_hook_fails(
    databases: DatabaseFactory, workdir: Path
) -> None:
    calls: list[str] = []
    async with plugin_org(databases, workdir, Broken(calls), Tagger("tag", calls)) as org:
        alice = await org.person("alice")
        channel = await alice.create_channel()
        with captured("courtyard.plugins.manager") as logged:
            response = await alice.post(history_path(channel), {"text": "still here"})
            assert response.status_code == 201
            message = response.json()
            edited = await alice.patch(f"/api/v1/messages/{message['id']}", {"text": "changed"})
            assert edited.status_code == 200
        history = (await alice.get(history_path(channel))).json()["messages"]
        assert [m["text"] for m in history] == ["changed"]
        # The broken plugin does not stop the next one from being told.
        assert calls == ["tag saw 'still here'", "broken after", "tag after 'still here [tag]'"]
        assert len(logged) == 2
        assert all(r.exc_info and isinstance(r.exc_info[1], RuntimeError) for r in logged)
        assert all("plugin bug" not in r.getMessage() for r in logged)


async def test_nothing_is_stored_when_a_before_hook_crashes(
    databases: DatabaseFactory, workdir: Path
) -> None:
    async with plugin_org(databases, workdir, Crashing()) as org:
        alice = await org.person("alice")
        channel = await alice.create_channel()
        crashed = await alice.post(history_path(channel), {"text": "boom"})
        assert crashed.status_code == 500
        assert crashed.json()["code"] == "internal_error"
        assert "plugin bug" not in crashed.text
        after = await alice.send(channel["id"], "calm")
        assert after["seq"] == 1
        history = (await alice.get(history_path(channel))).json()["messages"]
        assert [m["text"] for m in history] == ["calm"]


async def test_rewrite_is_validated_again_when_a_plugin_returns_invalid_text(
    databases: DatabaseFactory, workdir: Path
) -> None:
    async with plugin_org(databases, workdir, Blanker()) as org:
        alice: Person = await org.person("alice")
        channel = await alice.create_channel()
        blank = await alice.post(history_path(channel), {"text": "blank me"})
        assert blank.status_code == 422
        assert blank.json()["code"] == "empty"
        control = await alice.post(history_path(channel), {"text": "control me"})
        assert control.status_code == 422
        assert control.json()["code"] == "forbidden_character"
        assert (await alice.get(history_path(channel))).json()["messages"] == []
        assert (await alice.send(channel["id"], "ok"))["seq"] == 1
