"""`courtyard serve`: check the database, print the setup token if needed, run uvicorn."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import socket
import time
from typing import TYPE_CHECKING

import uvicorn
from rich.console import Console
from rich.panel import Panel

from courtyard.cli.tls import CertificateReloader, server_context
from courtyard.settings import Settings

if TYPE_CHECKING:
    from courtyard.app import Application


async def _prepare(settings: Settings, console: Console) -> bool:
    from courtyard.cli.database import DatabaseNotReady, ready_services

    try:
        async with ready_services(settings) as services:
            token = await services.setup.issue_setup_token()
    except DatabaseNotReady as exc:
        console.print(f"[red]error:[/red] {exc}")
        return False
    url = settings.public_url()
    if token:
        console.print(
            Panel(
                "No owner exists yet: create the organisation and its owner.",
                title="Courtyard setup",
            )
        )
        console.print(
            f"One-time setup token (valid {settings.accounts.setup_token_lifetime_hours} h):\n\n"
            f"  [bold]{token}[/bold]\n\n"
            f"  curl -X POST {url}/api/v1/setup -H 'content-type: application/json' -d "
            f'\'{{"setup_token": "{token}", "organization_name": "Acme", '
            f'"username": "admin", "password": "a long passphrase", "session_type": "token"}}\'\n\n'
            f"or open {url}/setup in a browser and paste the token there,\n"
            f"or run `courtyard admin create-owner`.",
            soft_wrap=True,
            highlight=False,
        )
    console.print(f"Courtyard is serving on [bold]{url}[/bold]  (API docs: {url}/api/v1/docs)")
    return True


def run_server(settings: Settings, console: Console) -> int:
    """Serve until interrupted; returns the process exit code."""
    if not asyncio.run(_prepare(settings, console)):
        return 1
    workers = settings.server.workers
    if workers == 1:
        _serve(settings, reuse_port=False)
        return 0
    if settings.realtime.bus == "memory":
        console.print(
            "[red]error:[/red] --workers > 1 needs a shared bus: set realtime.bus to 'redis' or "
            "'nats' (COURTYARD_REALTIME__BUS)"
        )
        return 1
    return _supervise(settings, workers, console)


def _serve(settings: Settings, *, reuse_port: bool) -> None:
    """One server process: the HTTP API and the event socket on one port."""
    from courtyard.api.slowclients import GuardedHttpToolsProtocol
    from courtyard.app import build_application

    # Until the application installs its reload handler, a SIGHUP must not end the process.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    # A server process lives long: what start-up built is frozen out of the collector's walks
    # (tests build many applications in one process and must not freeze theirs).
    application = build_application(settings, reload_on_sighup=True, freeze_startup_heap=True)
    server_settings = settings.server
    GuardedHttpToolsProtocol.limits.header_timeout = server_settings.header_timeout_seconds
    GuardedHttpToolsProtocol.limits.body_grace = server_settings.body_timeout_seconds
    GuardedHttpToolsProtocol.limits.min_body_rate = float(server_settings.min_body_bytes_per_second)
    GuardedHttpToolsProtocol.limits.send_timeout = server_settings.send_timeout_seconds
    tls = _tls(settings, application)
    config = uvicorn.Config(
        application.asgi,
        host=server_settings.host,
        port=server_settings.port,
        loop="uvloop",
        http=GuardedHttpToolsProtocol,
        ws=application.ws_protocol,
        lifespan="on",
        access_log=False,
        log_config=None,
        server_header=False,
        proxy_headers=False,
        timeout_keep_alive=int(max(1, server_settings.keep_alive_timeout_seconds)),
        timeout_graceful_shutdown=10,
        ssl_context_factory=(lambda _config, _default: tls.context) if tls else None,
    )
    server = _Server(config, tls, settings.tls.reload_poll_seconds)
    if reuse_port:
        server.run(sockets=[_reuse_port_socket(server_settings.host, server_settings.port)])
    else:
        server.run()


def _tls(settings: Settings, application: Application) -> CertificateReloader | None:
    """The TLS context and its reloader, when Courtyard terminates TLS itself."""
    cert, key = settings.tls.cert_file, settings.tls.key_file
    if cert is None or key is None:
        return None
    reloader = CertificateReloader(
        server_context(cert, key, settings.tls.min_version),
        cert,
        key,
        on_event=application.record_security_event,
    )
    application.reloaders.append(reloader.reload)
    return reloader


class _Server(uvicorn.Server):
    """uvicorn's server, plus the certificate watcher while it runs."""

    def __init__(
        self, config: uvicorn.Config, tls: CertificateReloader | None, poll: float
    ) -> None:
        super().__init__(config)
        self._tls = tls
        self._poll = poll
        self._watcher: asyncio.Task[None] | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self._tls is not None and self._poll > 0:
            self._watcher = asyncio.create_task(self._tls.watch(self._poll))

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
        await super().shutdown(sockets)


def _reuse_port_socket(host: str, port: int) -> socket.socket:
    """A listening socket that sibling workers bind too; the kernel spreads connections."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _worker_main(settings: Settings) -> None:
    _serve(settings, reuse_port=True)


def _supervise(settings: Settings, workers: int, console: Console) -> int:
    """Run ``workers`` server processes on one port; restart any that dies."""
    context = multiprocessing.get_context("spawn")
    stopping = False

    def start_one() -> multiprocessing.process.BaseProcess:
        process = context.Process(target=_worker_main, args=(settings,), daemon=False)
        process.start()
        return process

    def request_stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for process in processes:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)

    def forward_reload(signum: int, _frame: object) -> None:
        for process in processes:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGHUP)

    processes = [start_one() for _ in range(workers)]
    signal.signal(signal.SIGHUP, forward_reload)
    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    console.print(f"supervising {workers} worker processes (pids {[p.pid for p in processes]})")
    while True:
        for index, process in enumerate(processes):
            process.join(timeout=0.5)
            if process.is_alive() or stopping:
                continue
            console.print(
                f"[yellow]worker {process.pid} exited ({process.exitcode}); restarting[/yellow]"
            )
            time.sleep(1)
            processes[index] = start_one()
        if stopping and not any(p.is_alive() for p in processes):
            return 0
