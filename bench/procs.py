"""Processes the harness starts: Courtyard servers, floor servers, load generators.

Every process is started here and stopped here by its pid (SIGTERM, then SIGKILL); nothing
is killed by name. Databases get unique names and are dropped at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import psutil

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
COURTYARD = str(BIN / "courtyard")
PG_ADMIN = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
SRC_IPS = [f"127.0.0.{i}" for i in range(2, 10)]
#: Unacknowledged message.send frames per socket in S6 (realtime.max_pending_sends).
SOCKET_SEND_WINDOW = 100

_started: list[subprocess.Popen[bytes]] = []


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pin(cpus: set[int] | None) -> Any:
    if not cpus:
        return None
    usable = set(range(os.cpu_count() or 1))
    chosen = cpus & usable
    if not chosen:
        return None

    def apply() -> None:
        os.sched_setaffinity(0, chosen)

    return apply


def stop_process(proc: subprocess.Popen[bytes] | None, grace: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds; only this pid."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)


def stop_all() -> None:
    """Stop every process this harness started that is still running (newest first)."""
    for proc in reversed(_started):
        stop_process(proc, grace=5)
    _started.clear()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process (0 if it is gone)."""
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return float(times.user + times.system)


def rss_bytes(pid: int) -> int:
    """Resident set size of one process."""
    try:
        return int(psutil.Process(pid).memory_info().rss)
    except psutil.Error:
        return 0


def slab_bytes() -> int:
    """Kernel slab memory (system-wide; includes socket structures)."""
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("Slab:"):
                return int(line.split()[1]) * 1024
    return 0


# --- databases ----------------------------------------------------------------------------
async def create_pg_database(name: str) -> str:
    import asyncpg

    admin = await asyncpg.connect(PG_ADMIN)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base = PG_ADMIN.rsplit("/", 1)[0]
    return f"{base}/{name}"


async def drop_pg_database(name: str) -> None:
    import asyncpg

    admin = await asyncpg.connect(PG_ADMIN)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


# --- Courtyard ----------------------------------------------------------------------------
BENCH_ENV = {
    "COURTYARD_ACCOUNTS__ARGON2_TIME_COST": "1",
    "COURTYARD_ACCOUNTS__ARGON2_MEMORY_KIB": "64",
    "COURTYARD_ACCOUNTS__ARGON2_PARALLELISM": "1",
    "COURTYARD_LOGGING__LEVEL": "WARNING",
    # Load generators run from loopback far above any per-user or per-address limit.
    "COURTYARD_RATE_LIMITS__ENABLED": "false",
    "COURTYARD_SERVER__API_DOCS": "false",
    # Server-Timing on every response: S7/S8 report the server's own time next to the
    # round trip the generator sees.
    "COURTYARD_SERVER__TIMING_HEADER": "true",
    "COURTYARD_REALTIME__MAX_CONNECTIONS_PER_IP": "1000000",
    "COURTYARD_REALTIME__MAX_CONNECTIONS_PER_USER": "1000",
    "COURTYARD_MESSAGING__MAX_PAGE_SIZE": "200",
    # S6 over the socket pipelines this many sends per socket (the default cap, stated so the
    # generator and the server agree on it).
    "COURTYARD_REALTIME__MAX_PENDING_SENDS": str(SOCKET_SEND_WINDOW),
}


@dataclass
class Courtyard:
    """One `courtyard serve` process."""

    database_url: str
    data_dir: Path
    port: int = 0
    cpus: set[int] | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("COURTYARD_")}
        env.update(BENCH_ENV)
        env.update(
            {
                "COURTYARD_DATA_DIR": str(self.data_dir),
                "COURTYARD_DATABASE__URL": self.database_url,
                "COURTYARD_SERVER__PORT": str(self.port),
            }
        )
        env.update(self.extra_env)
        return env

    def migrate(self) -> None:
        if not self.port:
            self.port = free_port()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [COURTYARD, "migrate"],
            env=self.env(),
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=120,
        )

    def optimize(self, timeout: float = 3600) -> dict[str, Any]:
        """``courtyard database optimize --yes``, as an operator runs it: seconds and the
        steps it reported."""
        if not self.port:
            self.port = free_port()
        started = time.monotonic()
        done = subprocess.run(
            [COURTYARD, "database", "optimize", "--yes"],
            env={**self.env(), "NO_COLOR": "1", "COLUMNS": "200"},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"database optimize failed: {done.stdout}{done.stderr}")
        steps = [
            line.strip() for line in (done.stdout + done.stderr).splitlines() if " in " in line
        ]
        return {"seconds": time.monotonic() - started, "steps": steps}

    def start(self, timeout: float = 60) -> None:
        if not self.port:
            self.port = free_port()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir / f"serve-{self.port}.log"
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [COURTYARD, "serve"],
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_pin(self.cpus),
        )
        _started.append(self.process)
        wait_healthy(self.port, self.process, timeout, self.log)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def setup_token(self) -> str | None:
        found = re.findall(r"cysetup_[A-Za-z0-9_-]+", self.log())
        return found[-1] if found else None

    def stop(self) -> None:
        stop_process(self.process)


def wait_healthy(
    port: int, process: subprocess.Popen[bytes], timeout: float, log: Any = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server on port {port} exited early:\n{log() if log else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if sock.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    stop_process(process)
    raise RuntimeError(f"server on port {port} did not become healthy:\n{log() if log else ''}")


@dataclass
class FloorServer:
    """The floor server process."""

    payload_bytes: int
    port: int = 0
    cpus: set[int] | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        if not self.port:
            self.port = free_port()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.floor",
                "--port",
                str(self.port),
                "--payload-bytes",
                str(self.payload_bytes),
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_pin(self.cpus),
        )
        _started.append(self.process)
        wait_healthy(self.port, self.process, 20)

    def stop(self) -> None:
        stop_process(self.process)


class Gen:
    """One load-generator process (``bench.gen``), commanded over a pipe."""

    def __init__(self, name: str, cpus: set[int] | None = None) -> None:
        self.name = name
        self.cpus = cpus
        self.proc: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.gen",
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=1 << 30,
            preexec_fn=_pin(self.cpus),
        )

    async def call(self, cmd: dict[str, Any], timeout: float = 600) -> dict[str, Any]:  # noqa: ASYNC109
        assert self.proc is not None and self.proc.stdin and self.proc.stdout
        async with self._lock:
            self.proc.stdin.write(orjson.dumps(cmd) + b"\n")
            await self.proc.stdin.drain()
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not line:
            raise RuntimeError(f"generator {self.name} exited")
        reply: dict[str, Any] = orjson.loads(line)
        if "error" in reply:
            raise RuntimeError(f"generator {self.name}: {reply['error']}")
        return reply

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        with contextlib.suppress(Exception):
            await self.call({"cmd": "quit"}, timeout=15)
        try:
            await asyncio.wait_for(self.proc.wait(), 5)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
