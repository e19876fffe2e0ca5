"""Firewall rules change without a restart: on SIGHUP and when the configuration file changes,
against real `courtyard serve` processes."""

from __future__ import annotations

import secrets
import signal
import time
from pathlib import Path

import httpx

from tests.processes import ServerProcess
from tests.support import DatabaseFactory

OPEN = """
[firewall]
trusted_proxies = ["127.0.0.1/32"]
reload_poll_seconds = {poll}
"""
CLOSED = OPEN + 'deny = ["203.0.113.0/24"]\n'


def status_from(server: ServerProcess, address: str) -> int:
    response = httpx.get(f"{server.url}/healthz", headers={"X-Forwarded-For": address}, timeout=5)
    return response.status_code


def wait_for_status(
    server: ServerProcess, address: str, expected: int, timeout: float = 20
) -> None:
    deadline = time.monotonic() + timeout
    last = 0
    while time.monotonic() < deadline:
        last = status_from(server, address)
        if last == expected:
            return
        time.sleep(0.05)
    raise AssertionError(f"still {last}, not {expected}, after {timeout} s:\n{server.log()}")


async def start(databases: DatabaseFactory, workdir: Path, config: Path) -> ServerProcess:
    server = ServerProcess(
        await databases.create(),
        workdir / f"fw-reload-{secrets.token_hex(3)}",
        extra_env={"COURTYARD_CONFIG": str(config)},
    )
    server.start()
    return server


async def test_sighup_reloads_the_rules(databases: DatabaseFactory, workdir: Path) -> None:
    config = workdir / f"fw-{secrets.token_hex(3)}.toml"
    config.write_text(OPEN.format(poll=0))
    server = await start(databases, workdir, config)
    try:
        assert status_from(server, "203.0.113.9") == 200
        config.write_text(CLOSED.format(poll=0))
        assert server.process is not None
        server.process.send_signal(signal.SIGHUP)
        wait_for_status(server, "203.0.113.9", 403)
        assert status_from(server, "198.51.100.7") == 200
        # A broken file is refused and the last good rules stay in force.
        config.write_text('[firewall]\ndeny = ["203.0.113.0/33"]\n')
        server.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 20
        while "keeping the previous rules" not in server.log() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "keeping the previous rules" in server.log()
        assert status_from(server, "203.0.113.9") == 403
        assert server.process.poll() is None
    finally:
        server.stop()


async def test_a_changed_file_is_picked_up_without_a_signal(
    databases: DatabaseFactory, workdir: Path
) -> None:
    config = workdir / f"fw-{secrets.token_hex(3)}.toml"
    config.write_text(OPEN.format(poll=0.1))
    server = await start(databases, workdir, config)
    try:
        assert status_from(server, "203.0.113.9") == 200
        config.write_text(CLOSED.format(poll=0.1))
        wait_for_status(server, "203.0.113.9", 403)
        config.write_text(OPEN.format(poll=0.1))
        wait_for_status(server, "203.0.113.9", 200)
        assert "firewall rules reloaded (configuration file changed)" in server.log()
    finally:
        server.stop()
