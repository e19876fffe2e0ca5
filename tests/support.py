"""Test harness: real databases, a real uvicorn server on a loopback port, API helpers."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import secrets
import shutil
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn
from sqlalchemy import event

from courtyard.api.slowclients import GuardedHttpToolsProtocol
from courtyard.app import Application, build_application, build_services
from courtyard.services.registry import Services
from courtyard.settings import Settings, load_settings
from courtyard.storage import driver
from courtyard.storage.engine import background_work
from courtyard.storage.migrate import upgrade_async

IN_CI = os.environ.get("CI", "").lower() == "true"
PG_ADMIN_URL = os.environ.get(
    "COURTYARD_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
PASSWORD = "correct horse battery staple"
# Idle connections are dropped client-side after 1 s, well inside the servers' keep-alive.
CLIENT_LIMITS = httpx.Limits(keepalive_expiry=1.0)
_counter = itertools.count(1)


def unique(prefix: str) -> str:
    """A name no other test (or test run) uses."""
    return f"{prefix}-{next(_counter)}{secrets.token_hex(2)}"


def service_missing(what: str) -> None:
    """Outside CI a missing service skips; in CI it fails (SERVICES.md rules)."""
    if IN_CI:
        pytest.fail(f"{what} is not reachable, and CI requires it")
    pytest.skip(f"{what} is not reachable")


class DatabaseFactory:
    """Makes freshly migrated databases quickly: migrate one template, then copy it."""

    def __init__(self, backend: str, workdir: Path) -> None:
        self.backend = backend
        self.workdir = workdir
        self.run_id = f"cy_{os.getpid()}_{secrets.token_hex(3)}"
        self._template: str | None = None
        self._created: list[str] = []

    async def _pg_admin(self) -> asyncpg.Connection:
        url = PG_ADMIN_URL.replace("postgresql+asyncpg://", "postgresql://")
        try:
            return await asyncpg.connect(url, timeout=5)
        except (OSError, asyncpg.PostgresError) as exc:
            service_missing(f"PostgreSQL at {PG_ADMIN_URL} ({exc})")
            raise

    def _pg_url(self, name: str) -> str:
        base = PG_ADMIN_URL.rsplit("/", 1)[0]
        return f"{base}/{name}"

    async def create(self) -> str:
        """A new, migrated, empty database; returns its URL."""
        if self.backend == "sqlite":
            if self._template is None:
                self._template = str(self.workdir / "template.db")
                await upgrade_async(f"sqlite:///{self._template}")
            target = self.workdir / f"{unique('db')}.db"
            shutil.copyfile(self._template, target)
            return f"sqlite:///{target}"
        admin = await self._pg_admin()
        try:
            if self._template is None:
                self._template = f"{self.run_id}_template"
                await admin.execute(f'CREATE DATABASE "{self._template}"')
                self._created.append(self._template)
                await upgrade_async(self._pg_url(self._template))
            name = f"{self.run_id}_{next(_counter)}"
            await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self._template}"')
            self._created.append(name)
            return self._pg_url(name)
        finally:
            await admin.close()

    async def drop_all(self) -> None:
        """Drop every database this factory made."""
        if self.backend != "postgresql" and self.backend != "postgres":
            return
        if not self._created:
            return
        admin = await self._pg_admin()
        try:
            for name in reversed(self._created):
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


def server_settings(database_url: str, data_dir: Path, **overrides: Any) -> Settings:
    """Settings for a test server: cheap argon2 so that creating users is fast."""
    base: dict[str, Any] = {
        "data_dir": data_dir,
        "database": {"url": database_url},
        "accounts": {"argon2_time_cost": 1, "argon2_memory_kib": 64, "argon2_parallelism": 1},
        # Every test client signs in from 127.0.0.1: a per-address lockout would let one
        # test's failed sign-ins lock out the rest (tests/security set their own limits).
        "security": {"lockout_ip_attempts": 1_000_000},
        "logging": {"level": "WARNING"},
        "server": {"static_dir": Path(__file__).resolve().parents[1] / "web" / "dist"},
        # Test clients all come from loopback; tests of the limits (tests/network) override this.
        "rate_limits": {"exempt": ["127.0.0.0/8", "::1/128"]},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return load_settings(None, **base)


class _QuietServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # pytest owns the signal handlers.
        yield


@dataclass
class LiveServer:
    """A real uvicorn server for the app, on a free loopback port, in this event loop."""

    services: Services
    settings: Settings
    url: str = ""
    application: Application | None = None
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = None

    @property
    def ws_url(self) -> str:
        """The event socket's URL."""
        return self.url.replace("http://", "ws://") + "/api/v1/events"

    async def start(self) -> None:
        """Bind and serve."""
        self.application = build_application(self.settings, services=self.services)
        app = self.application.asgi
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted sockets inherit this: no Nagle + delayed-ACK stall of ~40 ms per request.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(
            app,
            lifespan="on",
            log_level="warning",
            ws=self.application.ws_protocol,
            http=GuardedHttpToolsProtocol,  # as `courtyard serve`
            access_log=False,
            log_config=None,
            proxy_headers=False,  # as `courtyard serve`: the firewall decides whom to believe
            timeout_keep_alive=int(max(1, self.settings.server.keep_alive_timeout_seconds)),
        )
        self._server = _QuietServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        for _ in range(500):
            if self._server.started:
                break
            await asyncio.sleep(0.01)
        assert self._server.started, "test server did not start"
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        """Shut down and wait."""
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await asyncio.wait_for(self._task, 10)
        await self.services.context.storage.database.dispose()


@dataclass
class Person:
    """A signed-in user with an HTTP client carrying their bearer token."""

    id: int
    username: str
    token: str
    client: httpx.AsyncClient
    role: str = "member"

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        """GET as this person."""
        return await self.client.get(path, **kwargs)

    async def post(self, path: str, json: Any = None, **kwargs: Any) -> httpx.Response:
        """POST JSON as this person."""
        return await self.client.post(path, json=json, **kwargs)

    async def patch(self, path: str, json: Any = None, **kwargs: Any) -> httpx.Response:
        """PATCH JSON as this person."""
        return await self.client.patch(path, json=json, **kwargs)

    async def put(self, path: str, json: Any = None, **kwargs: Any) -> httpx.Response:
        """PUT JSON as this person."""
        return await self.client.put(path, json=json, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        """DELETE as this person."""
        return await self.client.delete(path, **kwargs)

    async def create_channel(self, name: str | None = None, **fields: Any) -> dict[str, Any]:
        """Create a channel and return it (asserting success)."""
        response = await self.post("/api/v1/channels", {"name": name or unique("chan"), **fields})
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def send(self, channel_id: int, text: str = "hello", **fields: Any) -> dict[str, Any]:
        """Post a message and return it (asserting success)."""
        response = await self.post(
            f"/api/v1/channels/{channel_id}/messages", {"text": text, **fields}
        )
        assert response.status_code in (200, 201), response.text
        return dict(response.json())


@dataclass
class Org:
    """A set-up organisation on a live server, with its owner."""

    server: LiveServer
    owner: Person
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    def anonymous(self) -> httpx.AsyncClient:
        """A client with no credentials."""
        # The client drops an idle connection well before the server's keep-alive timeout
        # does: with both at 5 s, a request sent on a connection the server is closing at
        # that moment fails with ReadError (a fresh-clone CI run hit it once).
        client = httpx.AsyncClient(base_url=self.server.url, timeout=30, limits=CLIENT_LIMITS)
        self.clients.append(client)
        return client

    async def sign_in(self, login: str, password: str = PASSWORD) -> Person:
        """Sign in with a bearer-token session."""
        client = self.anonymous()
        response = await client.post(
            "/api/v1/auth/sign-in",
            json={"login": login, "password": password, "session_type": "token"},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        client.headers["Authorization"] = f"Bearer {body['token']}"
        return Person(
            body["user"]["id"],
            body["user"]["username"],
            body["token"],
            client,
            body["user"]["role"],
        )

    async def person(self, name: str = "user", role: str = "member", **fields: Any) -> Person:
        """Create a user through the admin API and sign them in."""
        username = unique(name)
        response = await self.owner.post(
            "/api/v1/users", {"username": username, "password": PASSWORD, "role": role, **fields}
        )
        assert response.status_code == 201, response.text
        return await self.sign_in(username)

    async def close(self) -> None:
        """Close every client."""
        for client in self.clients:
            await client.aclose()


async def start_org(
    factory: DatabaseFactory,
    workdir: Path,
    *,
    clock: Callable[[], datetime] | None = None,
    **setting_overrides: Any,
) -> Org:
    """A fresh database, a live server, and an organisation with owner 'owner-…'
    (``clock``: the services' clock, for tests that move time)."""
    url = await factory.create()
    if clock is None:
        # An organisation on the real clock is shared by many tests (the session-scoped
        # ``org``), and on a slow machine the suite outlives the 10-minute re-authentication
        # window its owner's sign-in opened. The window is tested on a clock the test moves.
        security = {"reauthentication_minutes": 24 * 60, **setting_overrides.get("security", {})}
        setting_overrides = {**setting_overrides, "security": security}
    settings = server_settings(url, workdir, **setting_overrides)
    services = build_services(settings, clock=clock)
    server = LiveServer(services, settings)
    await server.start()
    token = await services.setup.issue_setup_token()
    assert token is not None
    org = Org(server=server, owner=None)  # type: ignore[arg-type]
    client = org.anonymous()
    owner_name = unique("owner")
    response = await client.post(
        "/api/v1/setup",
        json={
            "setup_token": token,
            "organization_name": "Acme",
            "username": owner_name,
            "password": PASSWORD,
            "email": f"{owner_name}@example.com",
            "session_type": "token",
        },
    )
    assert response.status_code == 201, response.text
    org.owner = await org.sign_in(owner_name)
    return org


class QueryCounter:
    """Counts data statements (not BEGIN/COMMIT) sent to the database while active.

    Authentication bookkeeping (reading or touching sessions and tokens, which a per-process
    cache makes come and go with time) is left out unless ``include_auth`` is set.
    """

    _AUTH_TABLES = (
        "FROM sessions",
        "UPDATE sessions",
        "FROM access_tokens",
        "UPDATE access_tokens",
    )

    def __init__(self, services: Services) -> None:
        self._engine = services.context.storage.database.engine.sync_engine
        self.statements: list[str] = []
        self._active = False
        self._include_auth = False

    def _listener(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        verb = statement.lstrip().split(" ", 1)[0].upper()
        if not self._active or verb not in ("SELECT", "INSERT", "UPDATE", "DELETE", "WITH"):
            return
        if background_work.get():
            return  # housekeeping (event-log catch-up, pruning) running at the same moment
        is_auth = any(table in statement for table in self._AUTH_TABLES)
        if is_auth and not self._include_auth:
            return
        self.statements.append(statement)

    @contextlib.contextmanager
    def counting(self, *, include_auth: bool = False) -> Iterator[QueryCounter]:
        """Count statements inside the block."""
        self.statements.clear()
        self._include_auth = include_auth
        event.listen(self._engine, "before_cursor_execute", self._listener)
        # Statements sent straight to the driver (storage/driver.py) bypass SQLAlchemy's events.
        driver.observers.append(self._observe_driver)
        self._active = True
        try:
            yield self
        finally:
            self._active = False
            event.remove(self._engine, "before_cursor_execute", self._listener)
            driver.observers.remove(self._observe_driver)

    def _observe_driver(self, statement: str) -> None:
        self._listener(None, None, statement)

    @property
    def count(self) -> int:
        """Statements seen."""
        return len(self.statements)


@contextlib.asynccontextmanager
async def org_context(
    factory: DatabaseFactory,
    workdir: Path,
    *,
    clock: Callable[[], datetime] | None = None,
    **overrides: Any,
) -> AsyncIterator[Org]:
    """start_org + cleanup."""
    org = await start_org(factory, workdir, clock=clock, **overrides)
    try:
        yield org
    finally:
        await org.close()
        await org.server.stop()
