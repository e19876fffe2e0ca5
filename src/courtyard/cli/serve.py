"""`courtyard serve`: check the database, print the setup token if needed, run uvicorn."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import socket
import time

import uvicorn
from rich.console import Console
from rich.panel import Panel

from courtyard.settings import Settings


async def _prepare(settings: Settings, console: Console) -> bool:
    from courtyard.cli.database import DatabaseNotReady, ready_services

    try:
        async with ready_services(settings) as services:
            token = await services.setup.issue_setup_token()
    except DatabaseNotReady as exc:
        console.print(f"[red]error:[/red] {exc}")
        return False
    url = settings.server.public_url()
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
    from courtyard.app import build_application

    application = build_application(settings)
    config = uvicorn.Config(
        application.asgi,
        host=settings.server.host,
        port=settings.server.port,
        loop="uvloop",
        http="httptools",
        ws=application.ws_protocol,
        lifespan="on",
        access_log=False,
        log_config=None,
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=10,
    )
    server = uvicorn.Server(config)
    if reuse_port:
        server.run(sockets=[_reuse_port_socket(settings.server.host, settings.server.port)])
    else:
        server.run()


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

    processes = [start_one() for _ in range(workers)]
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
