"""A load-generator process: holds event sockets, publishes, runs the chat mix.

Driven by the orchestrator (``bench.run``) over stdin/stdout, one JSON object per line each
way. Every command is bounded in count and time. ``python -m bench.gen`` starts one.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import time
from collections import Counter, defaultdict
from typing import Any

import orjson
import uvloop

from bench.httpc import HTTPPool, open_socket
from bench.wsclient import EventClient, Group, SendClient

EMOJI = ["%F0%9F%91%8D", "%F0%9F%8E%89", "%E2%9D%A4%EF%B8%8F", "%F0%9F%98%82", "%F0%9F%91%80"]


# The open loops' timer tick: uvloop's timer resolution (1 ms).
TICK_S = 0.001


def bench_text(sched_ns: int, seq: int, pad: int) -> str:
    """Message text carrying its scheduled send time (fixed width, so frames are equal)."""
    return f"bench {sched_ns:019d} {seq:09d} " + "x" * pad


class Generator:
    def __init__(self) -> None:
        self.group = Group()
        self.clients: list[EventClient] = []
        self.by_token: dict[str, list[EventClient]] = defaultdict(list)
        self.cpu_mark = time.process_time()
        self.wall_mark = time.monotonic()
        self.pools: dict[tuple[str, int], HTTPPool] = {}

    # --- event sockets --------------------------------------------------------------------
    async def connect(self, cmd: dict[str, Any]) -> dict[str, Any]:
        host: str = cmd.get("host", "127.0.0.1")
        ports: list[int] = cmd["ports"]
        tokens: list[str] = cmd["tokens"]
        src_ips: list[str] = cmd.get("src_ips") or ["127.0.0.1"]
        probe_every = max(1, int(cmd.get("probe_every", 50)))
        window = float(cmd.get("window", 0.0))
        since = cmd.get("since")
        timeout = float(cmd.get("timeout", 60.0))
        limit = asyncio.Semaphore(int(cmd.get("concurrency", 256)))
        group = self.group
        group.hello_ns = []
        group.ready_ns = []
        group.failed = Counter()
        group.done = asyncio.Event()
        group.pending = len(tokens)
        if not tokens:
            group.done.set()
        loop = asyncio.get_running_loop()
        start = time.monotonic_ns()
        offset = int(cmd.get("index_offset", 0))
        n = len(tokens)

        async def one(i: int, token: str) -> None:
            sched = start + int(window * 1e9 * i / max(1, n))
            delay = (sched - time.monotonic_ns()) / 1e9
            if delay > 0:
                await asyncio.sleep(delay)
            k = i + offset
            async with limit:
                client = EventClient(
                    group,
                    token,
                    f"{host}:{ports[k % len(ports)]}",
                    probe=(k % probe_every == 0),
                    since=since,
                    sched=sched,
                )
                try:
                    sock = await open_socket(host, ports[k % len(ports)], src_ips[k % len(src_ips)])
                    await loop.create_connection(lambda: client, sock=sock)
                except OSError as exc:
                    client._settle(f"connect {type(exc).__name__}")
                    return
                self.clients.append(client)
                self.by_token[token].append(client)

        tasks = [asyncio.create_task(one(i, t)) for i, t in enumerate(tokens)]
        try:
            async with asyncio.timeout(timeout):
                await asyncio.gather(*tasks)
                await group.done.wait()
        except TimeoutError:
            for task in tasks:
                task.cancel()
        elapsed = (time.monotonic_ns() - start) / 1e9
        return {
            "live": group.live,
            "failed": dict(group.failed),
            "pending": max(0, group.pending),
            "hello_ms": [x / 1e6 for x in group.hello_ns],
            "ready_ms": [x / 1e6 for x in group.ready_ns],
            "elapsed": elapsed,
            "position": group.position,
        }

    async def disconnect(self, cmd: dict[str, Any]) -> dict[str, Any]:
        polite = bool(cmd.get("polite", False))
        for client in self.clients:
            if polite:
                client.close()
            else:
                client.abort()
        self.clients = []
        self.by_token = defaultdict(list)
        deadline = time.monotonic() + 10
        while self.group.live > 0 and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        return {"live": self.group.live}

    def reset(self) -> dict[str, Any]:
        self.group.reset()
        self.cpu_mark = time.process_time()
        self.wall_mark = time.monotonic()
        return {"ok": True}

    def stats(self, cmd: dict[str, Any]) -> dict[str, Any]:
        group = self.group
        samples = group.latencies_ns
        keep = int(cmd.get("max_samples", 200_000))
        if len(samples) > keep:
            samples = random.Random(7).sample(samples, keep)
        return {
            "frames": group.frames,
            "bytes": group.bytes,
            "live": group.live,
            "closed": dict(group.closed),
            "lat_ms": [x / 1e6 for x in samples],
            "cpu": time.process_time() - self.cpu_mark,
            "wall": time.monotonic() - self.wall_mark,
        }

    # --- HTTP load ------------------------------------------------------------------------
    def _pool(self, host: str, port: int, size: int, src_ips: list[str]) -> HTTPPool:
        key = (host, port)
        pool = self.pools.get(key)
        if pool is None or pool.size != size:
            if pool is not None:
                pool.close()
            pool = self.pools[key] = HTTPPool(host, port, size=size, src_ips=src_ips)
        return pool

    async def publish(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """POST messages: open loop at ``rate``/s, or closed loop with ``concurrency``."""
        host = cmd.get("host", "127.0.0.1")
        ports: list[int] = cmd["ports"]
        tokens: list[str] = cmd["tokens"]
        channels: list[int] = cmd["channels"]
        duration = float(cmd["duration"])
        rate = float(cmd.get("rate", 0))
        concurrency = int(cmd.get("concurrency", 8))
        pad = int(cmd.get("pad", 40))
        drain = float(cmd.get("drain", 10.0))
        max_count = int(cmd.get("max_count", 2_000_000))
        src_ips = cmd.get("src_ips") or []
        pools = [self._pool(host, p, concurrency, src_ips) for p in ports]
        tag = f"{os.getpid()}-{random.getrandbits(32):08x}"
        status: Counter[int] = Counter()
        errors: Counter[str] = Counter()
        acks: list[float] = []
        ack_at: list[float] = []
        counter = [0]

        async def send(i: int, sched: int) -> None:
            k = i % len(channels)
            path = f"/api/v1/channels/{channels[k]}/messages"
            body = {"text": bench_text(sched, i, pad), "client_message_id": f"{tag}-{i}"}
            try:
                code, _ = await pools[i % len(pools)].request(
                    "POST", path, body, tokens[i % len(tokens)]
                )
            except Exception as exc:
                errors[type(exc).__name__] += 1
                return
            status[code] += 1
            done = time.monotonic_ns()
            acks.append((done - sched) / 1e6)
            ack_at.append(done / 1e9)

        start = time.monotonic_ns()
        end = start + int(duration * 1e9)
        if rate > 0:
            total = min(max_count, int(rate * duration))
            tasks = []
            for i in range(total):
                sched = start + int(i * 1e9 / rate)
                delay = (sched - time.monotonic_ns()) / 1e9
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(send(i, sched)))
            _, pending = await asyncio.wait(tasks, timeout=drain) if tasks else (set(), set())
            for task in pending:
                task.cancel()
            if pending:
                errors["timeout"] += len(pending)
            sent = total
        else:

            async def worker() -> None:
                while time.monotonic_ns() < end and counter[0] < max_count:
                    i = counter[0]
                    counter[0] += 1
                    await send(i, time.monotonic_ns())

            await asyncio.gather(*(worker() for _ in range(concurrency * len(ports))))
            sent = counter[0]
        return {
            "sent": sent,
            "status": {str(k): v for k, v in status.items()},
            "errors": dict(errors),
            "ack_ms": acks,
            "ack_at": ack_at,
            "elapsed": (time.monotonic_ns() - start) / 1e9,
        }

    async def socket_publish(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """Send messages over event sockets (``message.send``), one socket per token, each in
        its own channel. Closed loop: every socket keeps ``window`` sends unanswered (the
        server's per-connection cap). Open loop (``rate`` > 0): sends on a fixed timetable,
        round robin over the sockets; latency from the scheduled time."""
        host = cmd.get("host", "127.0.0.1")
        ports: list[int] = cmd["ports"]
        tokens: list[str] = cmd["tokens"]
        channels: list[int] = cmd["channels"]
        duration = float(cmd["duration"])
        rate = float(cmd.get("rate", 0))
        window = int(cmd.get("window", 100))
        drain = float(cmd.get("drain", 10.0))
        max_count = int(cmd.get("max_count", 2_000_000))
        src_ips: list[str] = cmd.get("src_ips") or ["127.0.0.1"]
        loop = asyncio.get_running_loop()
        tag = f"{os.getpid()}{random.getrandbits(24):06x}"
        clients: list[SendClient] = []
        try:
            for k, (token, channel) in enumerate(zip(tokens, channels, strict=True)):
                port = ports[k % len(ports)]
                client = SendClient(token, f"{host}:{port}", channel, f"{tag}{k}")
                sock = await open_socket(host, port, src_ips[k % len(src_ips)])
                await loop.create_connection(lambda c=client: c, sock=sock)  # type: ignore[misc]
                clients.append(client)
            async with asyncio.timeout(30):
                await asyncio.gather(*(c.ready for c in clients))
            start = time.monotonic_ns()
            end = start + int(duration * 1e9)
            sent = [0]
            if rate <= 0:

                def more(client: SendClient, answers: int) -> None:
                    now = time.monotonic_ns()
                    if now < end:
                        room = min(answers, max_count - sent[0])
                        if room > 0:
                            sent[0] += room
                            client.send_many([now] * room)

                for client in clients:
                    client.on_answers = more
                for client in clients:
                    count = min(window, max_count - sent[0])
                    sent[0] += count
                    client.send_many([start] * count)
                await asyncio.sleep(duration)
            else:
                total = min(max_count, int(rate * duration))
                n = len(clients)
                while sent[0] < total:
                    now = time.monotonic_ns()
                    due = min(total, int((now - start) * rate / 1e9) + 1)
                    if due > sent[0]:
                        per: dict[int, list[int]] = defaultdict(list)
                        for i in range(sent[0], due):
                            per[i % n].append(start + int(i * 1e9 / rate))
                        for k, scheds in per.items():
                            clients[k].send_many(scheds)
                        sent[0] = due
                    # uvloop's timers count whole milliseconds: a shorter sleep returns at
                    # once, and this loop spun a core (measured: 310k wakeups/s, 96 % CPU,
                    # taken from the server and PostgreSQL). Whatever fell due meanwhile
                    # goes out in the next tick; latency still counts from its schedule.
                    await asyncio.sleep(TICK_S)
            elapsed = (time.monotonic_ns() - start) / 1e9
            acked_by_end = sum(c.acked for c in clients)
            deadline = time.monotonic() + drain
            while any(c.in_flight > 0 and c.transport for c in clients):
                if time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.01)
            closed = [c.closed_with for c in clients if c.closed_with]
        finally:
            for client in clients:
                client.close()
        refused: Counter[str] = Counter()
        for client in clients:
            refused.update(client.refused)
        latencies = [x / 1e6 for c in clients for x in c.latencies_ns]
        if len(latencies) > 200_000:
            latencies = random.Random(7).sample(latencies, 200_000)
        return {
            "sent": sent[0],
            "acked": sum(c.acked for c in clients),
            "acked_by_end": acked_by_end,
            "unanswered": sum(max(0, c.in_flight) for c in clients),
            "refused": dict(refused),
            "closed": closed,
            "ack_ms": latencies,
            "elapsed": elapsed,
            "sockets": len(clients),
            "window": window,
        }

    async def reads(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """GET ``paths`` in a closed loop with ``concurrency`` workers (1 = serial)."""
        host = cmd.get("host", "127.0.0.1")
        paths: list[str] = cmd["paths"]
        token: str = cmd["token"]
        concurrency = int(cmd.get("concurrency", 1))
        duration = float(cmd.get("duration", 10.0))
        max_count = int(cmd.get("max_count", 1_000_000))
        pool = self._pool(host, int(cmd["port"]), concurrency, cmd.get("src_ips") or [])
        lat: list[float] = []
        server_ms: list[float] = []
        status: Counter[str] = Counter()
        errors: Counter[str] = Counter()
        counter = [0]
        start = time.monotonic()
        end = start + duration

        async def worker() -> None:
            while time.monotonic() < end and counter[0] < max_count:
                i = counter[0]
                counter[0] += 1
                began = time.perf_counter()
                try:
                    code, _ = await pool.request(
                        "GET", paths[i % len(paths)], None, token, server_ms
                    )
                except Exception as exc:
                    errors[type(exc).__name__] += 1
                    continue
                lat.append((time.perf_counter() - began) * 1000)
                status[str(code)] += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return {
            "requests": counter[0],
            "status": dict(status),
            "errors": dict(errors),
            "lat_ms": lat,
            "server_ms": server_ms,
            "elapsed": time.monotonic() - start,
        }

    async def chatmix(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """Mattermost-style actions from many users, open loop, latency from schedule."""
        host = cmd.get("host", "127.0.0.1")
        ports: list[int] = cmd["ports"]
        users: list[dict[str, Any]] = cmd["users"]
        rate = float(cmd["rate"])
        duration = float(cmd["duration"])
        mix: dict[str, float] = cmd["mix"]
        pad = int(cmd.get("pad", 40))
        drain = float(cmd.get("drain", 10.0))
        src_ips = cmd.get("src_ips") or []
        pools = [self._pool(host, p, int(cmd.get("concurrency", 32)), src_ips) for p in ports]
        rng = random.Random(int(cmd.get("seed", 1)))
        kinds = list(mix)
        weights = [mix[k] for k in kinds]
        tag = f"{os.getpid()}-{random.getrandbits(32):08x}"
        recent: dict[int, list[int]] = defaultdict(list)
        lat: dict[str, list[float]] = defaultdict(list)
        server_ms: dict[str, list[float]] = defaultdict(list)
        status: Counter[str] = Counter()
        errors: Counter[str] = Counter()
        error_samples: list[str] = []
        counts: Counter[str] = Counter()

        async def act(i: int, sched: int, kind: str, user: dict[str, Any]) -> None:
            token = user["token"]
            channel = rng.choice(user["channels"])
            pool = pools[i % len(pools)]
            if kind == "typing":
                conns = self.by_token.get(token)
                if conns:
                    conns[0].send_json({"type": "typing", "channel_id": channel})
                counts[kind] += 1
                return
            if kind == "react" and not recent[channel]:
                kind = "history"
            if kind == "history":
                method, path, body = "GET", f"/api/v1/channels/{channel}/messages?limit=50", None
            elif kind == "channels":
                method, path, body = "GET", "/api/v1/channels", None
            elif kind == "send":
                method, path = "POST", f"/api/v1/channels/{channel}/messages"
                body = {"text": bench_text(sched, i, pad), "client_message_id": f"{tag}-{i}"}
            elif kind == "react":
                message_id = rng.choice(recent[channel][-20:])
                method = "PUT"
                path = f"/api/v1/messages/{message_id}/reactions/{rng.choice(EMOJI)}"
                body = None
            else:  # read marker
                method, path, body = "POST", f"/api/v1/channels/{channel}/read", {}
            counts[kind] += 1
            try:
                code, data = await pool.request(method, path, body, token, server_ms[kind])
            except Exception as exc:
                errors[type(exc).__name__] += 1
                if len(error_samples) < 5:
                    error_samples.append(f"{method} {path}: {type(exc).__name__}: {exc}")
                lat[kind].append((time.monotonic_ns() - sched) / 1e6)
                return
            lat[kind].append((time.monotonic_ns() - sched) / 1e6)
            status[f"{code // 100}xx"] += 1
            if code >= 400:
                status[f"{kind}:{code}"] += 1
            if kind == "send" and code in (200, 201):
                message_id = orjson.loads(data)["id"]
                bucket = recent[channel]
                bucket.append(message_id)
                if len(bucket) > 50:
                    del bucket[:25]

        start = time.monotonic_ns()
        total = int(rate * duration)
        tasks = []
        for i in range(total):
            sched = start + int(i * 1e9 / rate)
            delay = (sched - time.monotonic_ns()) / 1e9
            if delay > 0:
                await asyncio.sleep(delay)
            kind = rng.choices(kinds, weights)[0]
            tasks.append(asyncio.create_task(act(i, sched, kind, rng.choice(users))))
        _, pending = await asyncio.wait(tasks, timeout=drain) if tasks else (set(), set())
        for task in pending:
            task.cancel()
        if pending:
            errors["timeout"] += len(pending)
        return {
            "actions": total,
            "counts": dict(counts),
            "status": dict(status),
            "errors": dict(errors),
            "error_samples": error_samples,
            "lat_ms": {k: v for k, v in lat.items()},
            "server_ms": {k: v for k, v in server_ms.items() if v},
            "elapsed": (time.monotonic_ns() - start) / 1e9,
        }


async def main() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 30)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    out = sys.stdout.buffer
    gen = Generator()
    while True:
        line = await reader.readline()
        if not line:
            break
        cmd = orjson.loads(line)
        name = cmd.get("cmd")
        try:
            if name == "connect":
                reply = await gen.connect(cmd)
            elif name == "disconnect":
                reply = await gen.disconnect(cmd)
            elif name == "reset":
                reply = gen.reset()
            elif name == "stats":
                reply = gen.stats(cmd)
            elif name == "publish":
                reply = await gen.publish(cmd)
            elif name == "socket_publish":
                reply = await gen.socket_publish(cmd)
            elif name == "reads":
                reply = await gen.reads(cmd)
            elif name == "chatmix":
                reply = await gen.chatmix(cmd)
            elif name == "quit":
                await gen.disconnect({})
                out.write(orjson.dumps({"ok": True}) + b"\n")
                out.flush()
                return
            else:
                reply = {"error": f"unknown command {name!r}"}
        except Exception as exc:
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        out.write(orjson.dumps(reply) + b"\n")
        out.flush()


if __name__ == "__main__":
    uvloop.run(main())
