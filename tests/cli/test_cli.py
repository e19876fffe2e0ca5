"""The real `courtyard` command, run as a subprocess against a real database."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import pytest
import typer.main

from courtyard.app import build_services
from courtyard.cli.main import app as cli_app
from courtyard.domain.errors import Unauthenticated
from courtyard.services.sessions import ClientInfo, SignedIn
from tests.support import PASSWORD, PG_ADMIN_URL, server_settings, service_missing

COURTYARD = Path(sys.executable).with_name("courtyard")
NEW_PASSWORD = "a different long passphrase"
TOKEN_RE = re.compile(r"\b(cysetup_[A-Za-z0-9_\-]+)")
# Generous: every command starts an interpreter, and CI machines are busy.
COMMAND_SECONDS = 120
SERVER_START_SECONDS = 60


@dataclass(frozen=True)
class Result:
    """A finished command."""

    code: int
    stdout: str
    stderr: str

    @property
    def said(self) -> str:
        """stdout and stderr with line wrapping undone, for matching messages."""
        return " ".join(f"{self.stdout} {self.stderr}".split())


@dataclass
class Cli:
    """Runs `courtyard` with an isolated environment pointing at one database."""

    url: str
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)

    async def run(self, *args: str, stdin: str | None = None) -> Result:
        """Run one command to completion."""
        process = await self.start(*args, stdin=stdin is not None)
        try:
            async with asyncio.timeout(COMMAND_SECONDS):
                stdout, stderr = await process.communicate(
                    stdin.encode() if stdin is not None else None
                )
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        assert process.returncode is not None
        return Result(process.returncode, stdout.decode(), stderr.decode())

    async def start(self, *args: str, stdin: bool = False) -> asyncio.subprocess.Process:
        """Start a command and return the process (the caller ends it)."""
        return await asyncio.create_subprocess_exec(
            str(COURTYARD),
            *args,
            cwd=self.workdir,
            env=self.env,
            stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            # No controlling terminal: getpass reads stdin instead of a developer's tty.
            start_new_session=True,
        )


def base_env(workdir: Path) -> dict[str, str]:
    """The test process's environment without any COURTYARD_* setting, plus cheap argon2."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COURTYARD_")}
    env.update(
        COURTYARD_DATA_DIR=str(workdir / "data"),
        COURTYARD_ACCOUNTS__ARGON2_TIME_COST="1",
        COURTYARD_ACCOUNTS__ARGON2_MEMORY_KIB="64",
        COURTYARD_ACCOUNTS__ARGON2_PARALLELISM="1",
        COLUMNS="200",
        NO_COLOR="1",
    )
    return env


async def _pg_admin() -> asyncpg.Connection:
    try:
        return await asyncpg.connect(
            PG_ADMIN_URL.replace("postgresql+asyncpg://", "postgresql://"), timeout=5
        )
    except (OSError, asyncpg.PostgresError) as exc:
        service_missing(f"PostgreSQL at {PG_ADMIN_URL} ({exc})")
        raise


@pytest.fixture
async def cli(db_backend: str, tmp_path: Path) -> AsyncIterator[Cli]:
    """A never-migrated database: SQLite through data_dir, or an empty PostgreSQL database."""
    env = base_env(tmp_path)
    if db_backend == "sqlite":
        # The default location: <data_dir>/courtyard.db.
        yield Cli(f"sqlite:///{tmp_path / 'data' / 'courtyard.db'}", tmp_path, env)
        return
    name = f"cy_cli_{os.getpid()}_{secrets.token_hex(4)}"
    admin = await _pg_admin()
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    env["COURTYARD_DATABASE__URL"] = url
    try:
        yield Cli(url, tmp_path, env)
    finally:
        admin = await _pg_admin()
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def sign_in(cli: Cli, login: str, password: str) -> SignedIn | str:
    """Sign in through the services, in this process: the session, or the refusal's code."""
    services = build_services(server_settings(cli.url, cli.workdir / "data"))
    try:
        return await services.sessions.sign_in(login, password, ClientInfo())
    except Unauthenticated as exc:
        return exc.code
    finally:
        await services.context.storage.database.dispose()


async def session_is_valid(cli: Cli, secret: str) -> bool:
    """Whether a session secret still authenticates."""
    services = build_services(server_settings(cli.url, cli.workdir / "data"))
    try:
        await services.sessions.authenticate(secret)
    except Unauthenticated:
        return False
    finally:
        await services.context.storage.database.dispose()
    return True


# --- help -------------------------------------------------------------------------------


def _commands() -> Iterator[tuple[tuple[str, ...], str, list[str]]]:
    """Every command path with its one-line help and its subcommands (read from the app)."""

    def walk(
        command: typer.core.TyperGroup, path: tuple[str, ...]
    ) -> Iterator[tuple[tuple[str, ...], str, list[str]]]:
        subcommands = dict(getattr(command, "commands", {}))
        summary = (command.help or "").strip().splitlines()[0] if command.help else ""
        yield path, summary, sorted(subcommands)
        for name, sub in subcommands.items():
            yield from walk(sub, (*path, name))

    yield from walk(typer.main.get_command(cli_app), ())  # type: ignore[arg-type]


COMMANDS = list(_commands())


@pytest.fixture(scope="module")
async def help_pages(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, ...], Result]:
    """`--help` of every command, run concurrently (each start costs an interpreter)."""
    workdir = tmp_path_factory.mktemp("cli-help")
    runner = Cli("", workdir, base_env(workdir))
    results = await asyncio.gather(*(runner.run(*path, "--help") for path, _, _ in COMMANDS))
    return {path: result for (path, _, _), result in zip(COMMANDS, results, strict=True)}


@pytest.mark.parametrize(
    ("path", "summary", "subcommands"),
    COMMANDS,
    ids=[" ".join(path) or "courtyard" for path, _, _ in COMMANDS],
)
async def test_help_exits_zero_and_describes_the_command_when_asked(
    help_pages: dict[tuple[str, ...], Result],
    path: tuple[str, ...],
    summary: str,
    subcommands: list[str],
) -> None:
    page = help_pages[path]
    assert page.code == 0, page.stderr
    assert page.stderr == ""
    text = " ".join(page.stdout.split())
    assert f"Usage: {' '.join(('courtyard', *path))}" in text
    assert summary, f"courtyard {' '.join(path)} has no help text"
    assert summary in text
    for name in subcommands:
        assert re.search(rf"\b{re.escape(name)}\b", page.stdout), f"{name} missing from help"


def test_every_expected_command_exists() -> None:
    # The walk above must not silently shrink if the app stops registering a group.
    paths = {" ".join(path) for path, _, _ in COMMANDS}
    assert {
        "migrate",
        "serve",
        "admin create-owner",
        "admin create-user",
        "admin reset-password",
        "admin deactivate",
        "config check",
    } <= paths


async def test_version_prints_the_package_version(tmp_path: Path) -> None:
    from courtyard import __version__

    result = await Cli("", tmp_path, base_env(tmp_path)).run("--version")
    assert result.code == 0
    assert result.stdout.strip() == __version__


# --- config check ---------------------------------------------------------------------


async def test_config_check_exits_2_and_names_each_bad_key_when_the_file_is_invalid(
    cli: Cli,
) -> None:
    config = cli.workdir / "courtyard.toml"
    config.write_text('[server]\nport = 70000\nprot = 1\n\n[sever]\nhost = "x"\n')
    result = await cli.run("config", "check", "--config", str(config))
    assert result.code == 2
    assert result.stdout == "", "nothing is printed as if it were valid"
    assert "server.port:" in result.said
    assert "less than or equal to 65535" in result.said
    assert "server.prot:" in result.said
    assert "sever:" in result.said
    assert "Traceback" not in result.stderr
    # The same file stops `serve` before it touches the database.
    served = await cli.run("serve", "--config", str(config))
    assert served.code == 2
    assert "server.port:" in served.said


async def test_config_check_exits_2_when_an_environment_variable_is_invalid(cli: Cli) -> None:
    cli.env["COURTYARD_SERVER__PORT"] = "eighty"
    result = await cli.run("config", "check")
    assert result.code == 2
    assert "server.port:" in result.said
    assert "COURTYARD_*" in result.said


async def test_config_check_exits_2_when_the_file_is_missing_or_not_toml(cli: Cli) -> None:
    missing = await cli.run("config", "check", "-c", str(cli.workdir / "absent.toml"))
    assert missing.code == 2
    assert "configuration file not found" in missing.said
    broken = cli.workdir / "broken.toml"
    broken.write_text("[server\nport = 1\n")
    bad = await cli.run("config", "check", "-c", str(broken))
    assert bad.code == 2
    assert "not valid TOML" in bad.said


async def test_config_check_prints_effective_values_and_hides_passwords_when_valid(
    cli: Cli,
) -> None:
    config = cli.workdir / "courtyard.toml"
    config.write_text(
        '[server]\nport = 9123\n\n[database]\nurl = "postgresql://chat:s3cr3t-pw@db.internal/chat"\n'
    )
    cli.env.pop("COURTYARD_DATABASE__URL", None)
    result = await cli.run("config", "check", "-c", str(config))
    assert result.code == 0, result.stderr
    assert re.search(r"server\.port\s*│\s*9123", result.stdout)
    assert "s3cr3t-pw" not in result.stdout + result.stderr
    assert "postgresql://chat:***@db.internal/chat" in result.stdout
    assert "configuration is valid" in result.said


async def test_config_check_exits_2_when_the_database_url_scheme_is_unsupported(
    cli: Cli,
) -> None:
    cli.env["COURTYARD_DATABASE__URL"] = "mysql://chat@db.internal/chat"
    result = await cli.run("config", "check")
    assert result.code == 2
    assert "database.url:" in result.said


# --- migrate and admin ----------------------------------------------------------------


async def test_admin_commands_manage_users_when_the_database_is_migrated(cli: Cli) -> None:
    migrated = await cli.run("migrate")
    assert migrated.code == 0, migrated.stderr
    assert "database is at revision" in migrated.said
    assert (await cli.run("migrate")).code == 0, "migrating twice is harmless"

    owner = await cli.run(
        "admin", "create-owner", "--username", "boss", "--organization", "Acme",
        "--password", PASSWORD, "--email", "boss@example.com",
    )  # fmt: skip
    assert owner.code == 0, owner.stderr
    assert "owner boss created" in owner.said
    signed = await sign_in(cli, "boss@example.com", PASSWORD)
    assert isinstance(signed, SignedIn) and signed.user.role == "owner"

    # Independent commands run side by side: each one starts a whole interpreter.
    second, member, admin, short, bad_role = await asyncio.gather(
        cli.run(
            "admin", "create-owner", "--username", "usurper", "--organization", "Evil",
            "--password", PASSWORD,
        ),
        cli.run("admin", "create-user", "--username", "ann", "--password", PASSWORD),
        cli.run(
            "admin", "create-user", "--username", "cy", "--role", "admin", "--password", PASSWORD
        ),
        cli.run("admin", "create-user", "--username", "dee", "--password", "short"),
        cli.run(
            "admin", "create-user", "--username", "eve", "--role", "wizard", "--password", PASSWORD
        ),
    )  # fmt: skip
    assert second.code == 1
    assert "the organisation already has an owner" in second.said
    assert "Traceback" not in second.stderr
    assert await sign_in(cli, "usurper", PASSWORD) == "invalid_credentials"
    assert member.code == 0, member.stderr
    assert "user ann created" in member.said
    assert admin.code == 0, admin.stderr
    cy = await sign_in(cli, "cy", PASSWORD)
    assert isinstance(cy, SignedIn) and cy.user.role == "admin"
    assert short.code == 1
    assert "at least 12 characters" in short.said
    assert bad_role.code == 2
    assert "wizard" in bad_role.said

    before_reset = await sign_in(cli, "ann", PASSWORD)
    assert isinstance(before_reset, SignedIn)
    reset, taken, unknown_reset, unknown_deactivate, last_owner = await asyncio.gather(
        cli.run("admin", "reset-password", "ann", "--password", NEW_PASSWORD),
        cli.run("admin", "create-user", "--username", "ann", "--password", PASSWORD),
        cli.run("admin", "reset-password", "nobody", "--password", NEW_PASSWORD),
        cli.run("admin", "deactivate", "nobody"),
        cli.run("admin", "deactivate", "boss"),
    )
    assert reset.code == 0, reset.stderr
    assert await sign_in(cli, "ann", PASSWORD) == "invalid_credentials"
    assert not await session_is_valid(cli, before_reset.secret), "reset must end sessions"
    assert taken.code == 1
    assert "username is taken" in taken.said
    for unknown in (unknown_reset, unknown_deactivate):
        assert unknown.code == 1
        assert "user not found" in unknown.said
    assert last_owner.code == 1
    assert "at least one owner" in last_owner.said
    assert isinstance(await sign_in(cli, "boss", PASSWORD), SignedIn)

    after_reset = await sign_in(cli, "ann", NEW_PASSWORD)
    assert isinstance(after_reset, SignedIn)
    deactivated = await cli.run("admin", "deactivate", "ann")
    assert deactivated.code == 0, deactivated.stderr
    assert "ann deactivated" in deactivated.said
    assert await sign_in(cli, "ann", NEW_PASSWORD) == "account_deactivated"
    assert not await session_is_valid(cli, after_reset.secret)


async def test_admin_create_user_prompts_for_the_password_twice_when_none_is_given(
    cli: Cli,
) -> None:
    assert (await cli.run("migrate")).code == 0
    differ = await cli.run(
        "admin", "create-user", "--username", "fay", stdin=f"{PASSWORD}\nsomething else\n"
    )
    assert differ.code == 1
    assert "the passwords differ" in differ.said
    assert await sign_in(cli, "fay", PASSWORD) == "invalid_credentials"
    same = await cli.run("admin", "create-user", "--username", "fay", stdin=f"{PASSWORD}\n" * 2)
    assert same.code == 0, same.stderr
    assert PASSWORD not in same.stdout
    assert isinstance(await sign_in(cli, "fay", PASSWORD), SignedIn)


@pytest.mark.parametrize(
    "command",
    [
        ("admin", "create-owner", "--username", "boss", "--organization", "Acme"),
        ("admin", "create-user", "--username", "ann"),
        ("admin", "reset-password", "ann"),
        ("admin", "deactivate", "ann"),
    ],
    ids=lambda command: " ".join(command[:2]),
)
async def test_admin_commands_refuse_clearly_when_the_database_is_not_migrated(
    cli: Cli, command: tuple[str, ...]
) -> None:
    password = ("--password", PASSWORD) if command[1] != "deactivate" else ()
    result = await cli.run(*command, *password)
    assert result.code == 1
    assert "run `courtyard migrate` first" in result.said
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "command",
    [("serve", "--port", "1"), ("admin", "deactivate", "ann")],
    ids=["serve", "admin"],
)
@pytest.mark.parametrize("problem", ["unsupported-scheme", "unmakeable-directory"])
async def test_commands_refuse_clearly_when_the_database_url_is_unusable(
    tmp_path: Path, command: tuple[str, ...], problem: str
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    urls = {
        "unsupported-scheme": "mysql://chat@db.internal/chat",
        "unmakeable-directory": f"sqlite:///{blocker / 'data' / 'courtyard.db'}",
    }
    env = {**base_env(tmp_path), "COURTYARD_DATABASE__URL": urls[problem]}
    result = await Cli(urls[problem], tmp_path, env).run(*command)
    migrated = await Cli(urls[problem], tmp_path, env).run("migrate")
    assert "Traceback" not in result.stderr + migrated.stderr
    if problem == "unsupported-scheme":
        # Caught when the configuration is read: a configuration error, exit 2.
        assert (result.code, migrated.code) == (2, 2)
        assert "database.url: " in result.said
        assert "unsupported database URL scheme 'mysql'" in migrated.said
    else:
        assert result.code == 1
        assert "cannot open the database" in result.said
        assert migrated.code == 1
        assert "migration failed" in migrated.said


async def test_serve_refuses_with_exit_1_when_the_database_is_unreachable(tmp_path: Path) -> None:
    env = {**base_env(tmp_path), "COURTYARD_DATABASE__URL": "postgresql://chat@127.0.0.1:1/chat"}
    result = await Cli("", tmp_path, env).run("serve", "--port", str(free_port()))
    assert result.code == 1
    assert "cannot reach the database; check database.url" in result.said


# --- serve ------------------------------------------------------------------------------


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def read_until(
    process: asyncio.subprocess.Process, pattern: re.Pattern[str]
) -> tuple[str, re.Match[str]]:
    """Read stderr line by line until ``pattern`` matches; returns what was read."""
    assert process.stderr is not None
    seen: list[str] = []
    async with asyncio.timeout(SERVER_START_SECONDS):
        while True:
            line = (await process.stderr.readline()).decode()
            if not line:
                printed = "".join(seen)
                raise AssertionError(f"exited before printing {pattern.pattern!r}:\n{printed}")
            seen.append(line)
            if match := pattern.search(line):
                return "".join(seen), match


async def wait_until_healthy(url: str) -> None:
    """Poll /healthz until the server answers."""
    async with (
        httpx.AsyncClient(base_url=url, timeout=2) as client,
        asyncio.timeout(SERVER_START_SECONDS),
    ):
        while True:
            try:
                if (await client.get("/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)


async def stop(process: asyncio.subprocess.Process) -> None:
    """End a server started by this test, by its pid, and reap it."""
    if process.returncode is None:
        process.terminate()
        try:
            await asyncio.wait_for(process.communicate(), 20)
        except TimeoutError:
            process.kill()
            await process.wait()


async def test_serve_refuses_with_exit_1_when_the_database_is_not_migrated(cli: Cli) -> None:
    result = await cli.run("serve", "--port", str(free_port()))
    assert result.code == 1
    assert "the database is at revision none" in result.said
    assert "run `courtyard migrate` first" in result.said
    assert TOKEN_RE.search(result.stderr) is None


async def test_serve_prints_a_setup_token_that_completes_setup_when_no_owner_exists(
    cli: Cli,
) -> None:
    assert (await cli.run("migrate")).code == 0
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = await cli.start("serve", "--port", str(port))
    try:
        printed, match = await read_until(server, TOKEN_RE)
        assert "No owner exists yet" in printed
        token = match.group(1)
        await wait_until_healthy(url)
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            assert (await client.get("/api/v1/setup")).json()["needs_setup"] is True
            body = {
                "setup_token": token,
                "organization_name": "Acme",
                "username": "founder",
                "password": PASSWORD,
                "session_type": "token",
            }
            done = await client.post("/api/v1/setup", json=body)
            assert done.status_code == 201, done.text
            me = await client.get(
                "/api/v1/me", headers={"Authorization": f"Bearer {done.json()['token']}"}
            )
            assert me.status_code == 200
            assert me.json()["username"] == "founder"
            assert me.json()["role"] == "owner"
            replay = await client.post("/api/v1/setup", json={**body, "username": "second"})
            assert replay.status_code == 403
    finally:
        await stop(server)

    # With an owner, a restart prints no token.
    again = await cli.start("serve", "--port", str(port))
    try:
        printed, _ = await read_until(again, re.compile(r"Courtyard is serving on"))
        assert TOKEN_RE.search(printed) is None
        assert "No owner exists yet" not in printed
    finally:
        await stop(again)
