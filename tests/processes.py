"""Real `courtyard` server processes for end-to-end tests (started and stopped by pid)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

COURTYARD = str(Path(sys.executable).parent / "courtyard")
CHEAP_ARGON2 = {
    "COURTYARD_ACCOUNTS__ARGON2_TIME_COST": "1",
    "COURTYARD_ACCOUNTS__ARGON2_MEMORY_KIB": "64",
    "COURTYARD_ACCOUNTS__ARGON2_PARALLELISM": "1",
}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerProcess:
    """`courtyard serve` in a child process."""

    database_url: str
    data_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        """Base URL of the server."""
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """Environment for `courtyard` commands against this server's database."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("COURTYARD_")}
        env.update(CHEAP_ARGON2)
        env.update(
            {
                "COURTYARD_DATA_DIR": str(self.data_dir),
                "COURTYARD_DATABASE__URL": self.database_url,
                "COURTYARD_SERVER__PORT": str(self.port),
                "COURTYARD_LOGGING__LEVEL": "WARNING",
                # Test clients all come from loopback; tests of the limits override this.
                "COURTYARD_RATE_LIMITS__EXEMPT": '["127.0.0.0/8", "::1/128"]',
            }
        )
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = 30) -> None:
        """Start and wait until /healthz answers."""
        if not self.port:
            self.port = free_port()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir / f"serve-{self.port}.log"
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [COURTYARD, "serve"], env=self.env(), stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not become healthy:\n{self.log()}")

    def log(self) -> str:
        """Everything the server printed so far."""
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def setup_token(self) -> str | None:
        """The setup token printed at start-up, if any."""
        found = re.findall(r"cysetup_[A-Za-z0-9_-]+", self.log())
        return found[-1] if found else None

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def kill(self) -> None:
        """SIGKILL: the crash case."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
