"""What one request costs the server when it is alone: sequential requests, one at a time.

Starts a real ``courtyard serve`` (SQLite or PostgreSQL) pinned to CPU 0, creates the owner and
a channel, makes ``--count`` requests of one kind of S5's chat mix one after the other over one
keep-alive connection (for sends, each group-commit batch then holds one send) and reports the
server's CPU per request (from /proc) and the round trip. ``--kind`` picks the request: a send
(the default), a 50-message history page, a reaction, a read marker, the channel list, or
``/healthz`` (the request cycle alone: no authentication, no database), or a ``reconnect`` of
the event socket (upgrade with a bearer token and ``since`` at the stream's position, read up to
``caught_up``, close): S2's storm one reconnect at a time.
``--profile FILE`` records the server with py-spy meanwhile (raw format); ``--cprofile FILE``
counts its calls with cProfile instead (``pstats`` format, through ``bench/hooks``).

    .venv/bin/python -m bench.lone_sends sqlite --count 2000
    .venv/bin/python -m bench.lone_sends sqlite --kind history
    .venv/bin/python -m bench.lone_sends postgresql --count 2000 --profile /tmp/lone.txt
    .venv/bin/python -m bench.lone_sends sqlite --kind reconnect
    .venv/bin/python -m bench.lone_sends sqlite --kind history --cprofile /tmp/history.pstats
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import websockets

from bench import populate
from bench.gen import EMOJI
from bench.httpc import HTTPPool
from bench.memory import HOOKS
from bench.procs import Courtyard, cpu_seconds, create_pg_database, drop_pg_database

KINDS = ("send", "history", "react", "read", "channels", "healthz", "reconnect")


async def _reconnect(port: int, token: str, since: int) -> None:
    """One event-socket reconnect: upgrade, frames up to ``caught_up``, close."""
    async with websockets.connect(
        f"ws://127.0.0.1:{port}/api/v1/events?since={since}",
        additional_headers={"Authorization": f"Bearer {token}"},
        compression=None,
    ) as socket:
        while True:
            frame = await socket.recv()
            if isinstance(frame, str) and frame.startswith('{"type":"caught_up"'):
                return


def _request(
    kind: str, number: int, channel: int, message_ids: list[int]
) -> tuple[str, str, dict[str, str] | None, int]:
    """Method, path, body and expected status of the ``number``th request of ``kind``."""
    if kind == "send":
        text = f"hello world, this is message number {number} about the quarterly report"
        return "POST", f"/api/v1/channels/{channel}/messages", {"text": text}, 201
    if kind == "history":
        return "GET", f"/api/v1/channels/{channel}/messages?limit=50", None, 200
    if kind == "react":
        message_id = message_ids[number % len(message_ids)]
        emoji = EMOJI[(number // len(message_ids)) % len(EMOJI)]
        return "PUT", f"/api/v1/messages/{message_id}/reactions/{emoji}", None, 200
    if kind == "read":
        return "POST", f"/api/v1/channels/{channel}/read", {}, 200
    if kind == "healthz":  # no authentication, no database: the request cycle alone
        return "GET", "/healthz", None, 200
    return "GET", "/api/v1/channels", None, 200


async def run(
    backend: str,
    count: int,
    profile: str | None,
    kind: str = "send",
    gil: bool = False,
    cprofile: str | None = None,
) -> str:
    data_dir = Path(tempfile.mkdtemp(prefix="courtyard-lone-"))
    pg_name = None
    if backend == "postgresql":
        pg_name = f"courtyard_bench_lone_{os.getpid()}"
        url = await create_pg_database(pg_name)
    else:
        url = f"sqlite:///{data_dir}/courtyard.db"
    extra_env = {}
    if cprofile:
        python_path = os.environ.get("PYTHONPATH", "")
        hooks = str(HOOKS) + (os.pathsep + python_path if python_path else "")
        extra_env = {"BENCH_CPROFILE": cprofile, "PYTHONPATH": hooks}
    server = Courtyard(url, data_dir, cpus={0}, extra_env=extra_env)
    try:
        server.migrate()
        server.start()
        pool = HTTPPool("127.0.0.1", server.port, size=1)
        setup = server.setup_token()
        assert setup, "no setup token printed"
        owner, owner_id = await populate.create_owner(pool, setup)
        channel = await populate.create_channel(pool, owner, "lone", [owner_id])
        path = f"/api/v1/channels/{channel}/messages"
        message_ids: list[int] = []
        for number in range(200):  # warm-up: caches, prepared statements; pages to read
            _, body = await pool.request("POST", path, {"text": f"warm-up {number}"}, owner)
            message_ids.append(int(json.loads(body)["id"]))
        _, body = await pool.request("GET", "/api/v1/state", None, owner)
        position = int(json.loads(body)["position"])
        for number in range(200):
            if kind == "reconnect":
                await _reconnect(server.port, owner, position)
                continue
            method, target, payload, _ = _request(kind, number, channel, message_ids)
            await pool.request(method, target, payload, owner)
        spy = None
        if profile:
            exe = Path(sys.executable).parent / "py-spy"
            spy = await asyncio.create_subprocess_exec(
                str(exe),
                *("record", "--pid", str(server.pid), "--rate", "400", "--nonblocking"),
                *("--format", "raw", "--output", profile, "--duration", "3600"),
                *(["--gil"] if gil else []),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            await asyncio.sleep(1)
        if cprofile:
            os.kill(server.pid, signal.SIGUSR2)  # starts cProfile (bench/hooks)
            await asyncio.sleep(0.2)
        cpu_before = cpu_seconds(server.pid)
        started = time.perf_counter()
        rtts: list[float] = []
        for number in range(count):
            sent = time.perf_counter()
            if kind == "reconnect":
                await _reconnect(server.port, owner, position)
            else:
                method, target, payload, expected = _request(kind, number, channel, message_ids)
                status, _ = await pool.request(method, target, payload, owner)
                if status != expected:
                    raise RuntimeError(f"{kind} {number} answered {status}")
            rtts.append(time.perf_counter() - sent)
        elapsed = time.perf_counter() - started
        cpu = cpu_seconds(server.pid) - cpu_before
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            await asyncio.wait_for(spy.wait(), 60)
        if cprofile:
            os.kill(server.pid, signal.SIGUSR2)  # stops it and writes the statistics
            await asyncio.sleep(1)
        pool.close()
    finally:
        server.stop()
        if pg_name:
            await drop_pg_database(pg_name)
        shutil.rmtree(data_dir, ignore_errors=True)
    rtts.sort()
    return (
        f"{backend} {kind}: {count / elapsed:,.0f} requests/s, server CPU "
        f"{cpu / count * 1e6:,.0f} µs per request, round trip p50 {rtts[count // 2] * 1e3:.2f} ms, "
        f"p99 {rtts[int(count * 0.99)] * 1e3:.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("backend", choices=["sqlite", "postgresql"])
    parser.add_argument("--kind", choices=KINDS, default="send", help="the request made")
    parser.add_argument("--count", type=int, default=2000, help="requests measured (after 200)")
    parser.add_argument("--profile", help="write a py-spy raw profile of the server here")
    parser.add_argument(
        "--gil", action="store_true", help="profile only the thread holding the GIL (no idle)"
    )
    parser.add_argument("--cprofile", help="write the server's cProfile statistics here")
    args = parser.parse_args()
    if args.cprofile:  # the server runs in its own directory
        args.cprofile = str(Path(args.cprofile).resolve())
    outcome = run(args.backend, args.count, args.profile, args.kind, args.gil, args.cprofile)
    print(asyncio.run(outcome))


if __name__ == "__main__":
    main()
