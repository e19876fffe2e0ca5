"""The benchmark orchestrator: ``python -m bench [--full] [--only S3,S4] ...``.

It starts real ``courtyard serve`` processes (SQLite and PostgreSQL, memory / Redis / NATS
buses), the floor server and the load generators, runs the scenarios S1-S9 in order, prints
the table of targets T1-T10 and writes ``bench/results/<run>/results.json`` plus PNG plots.
Every phase is bounded in time and count; every process it starts is stopped by pid, and
every database it creates is dropped (SQLite files live in a temporary directory).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import psutil

from bench import corpus, memory, populate, report
from bench.httpc import HTTPPool
from bench.procs import (
    SOCKET_SEND_WINDOW,
    SRC_IPS,
    Courtyard,
    FloorServer,
    Gen,
    cpu_seconds,
    create_pg_database,
    drop_pg_database,
    rss_bytes,
    slab_bytes,
    stop_all,
)
from bench.stats import summary

RESULTS = Path(__file__).resolve().parent / "results"
SERVER_CPUS = {0}
LOAD_CPUS = {1}
ALL_CPUS = set(range(os.cpu_count() or 1))


@dataclass
class Sizes:
    """Scenario sizes: ``short()`` for `make bench` (<= 5 min), ``full()`` for bench-full."""

    mode: str = "short"
    budget_s: float = 280.0
    users: int = 1000
    gens: int = 4
    s1_conns: int = 5000
    s1_idle_s: float = 6.0
    s1_multi_procs: int = 0
    s1_multi_conns: int = 0
    heartbeat_s: float = 5.0
    s2_window_s: float = 1.0
    s2_deadline_s: float = 15.0
    s3_sizes: tuple[int, ...] = (1000,)
    s3_warmup_s: float = 1.0
    s3_seconds: float = 4.0
    s3_concurrency: int = 4
    profile_s: float = 4.0
    s4_fractions: tuple[float, ...] = (0.25, 0.5, 0.75)
    s4_seconds: float = 3.0
    s5_channels: int = 40
    s5_rates: tuple[float, ...] = (200.0, 400.0, 800.0, 1000.0)
    s5_seconds: float = 5.0
    s6_channels: int = 32
    s6_seconds: float = 4.0
    # Extra open loops over the event socket at these rates (messages/s), after the half-load
    # one: acknowledgement latency against offered load, sends spread over every channel.
    s6_socket_rates: tuple[float, ...] = ()
    s7_sizes: tuple[int, ...] = (200_000,)
    s7_backends: tuple[str, ...] = ("sqlite",)
    s7_serial: int = 500
    s7_concurrent_s: float = 3.0
    s8_sizes: tuple[int, ...] = (100_000,)
    s8_backends: tuple[str, ...] = ("sqlite", "postgresql")
    s9_backend: str = "sqlite"
    s9_members: int = 1000
    s9_seconds: float = 3.0
    pg_users: int = 32

    @classmethod
    def short(cls) -> Sizes:
        return cls()

    @classmethod
    def full(cls) -> Sizes:
        return cls(
            mode="full",
            budget_s=4 * 3600.0,
            users=10_000,
            gens=4,
            s1_conns=19_000,
            s1_idle_s=30.0,
            s1_multi_procs=6,
            s1_multi_conns=102_000,
            s2_window_s=1.0,
            s2_deadline_s=60.0,
            s3_sizes=(1000, 10_000),
            s3_seconds=10.0,
            s3_warmup_s=2.0,
            profile_s=10.0,
            s4_fractions=(0.1, 0.25, 0.5, 0.75, 0.9),
            s4_seconds=10.0,
            s5_channels=400,
            s5_rates=(100.0, 250.0, 500.0, 1000.0),
            s5_seconds=20.0,
            s6_seconds=10.0,
            s6_socket_rates=(5000.0, 10000.0, 15000.0, 20000.0),
            s7_sizes=(1_000_000, 10_000_000),
            s7_backends=("sqlite", "postgresql"),
            s7_serial=2000,
            s7_concurrent_s=10.0,
            s8_sizes=(1_000_000,),
            s9_backend="postgresql",
            s9_members=2000,
            s9_seconds=10.0,
            pg_users=2000,
        )


@dataclass
class Install:
    """One Courtyard installation (one database) and the servers currently running on it."""

    name: str
    backend: str
    database_url: str
    data_dir: Path
    pg_name: str | None = None
    servers: list[Courtyard] = field(default_factory=list)
    owner_token: str = ""
    owner_id: int = 0
    user_ids: list[int] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)
    channels: dict[str, int] = field(default_factory=dict)
    members: dict[int, list[int]] = field(default_factory=dict)

    @property
    def ports(self) -> list[int]:
        return [s.port for s in self.servers]

    @property
    def pids(self) -> list[int]:
        return [s.pid for s in self.servers]


class Window:
    """CPU seconds of chosen processes and of the whole machine over a measured interval."""

    def __init__(self, servers: list[int], load: list[int]) -> None:
        self.servers = servers
        self.load = load

    def __enter__(self) -> Window:
        self.t0 = time.monotonic()
        self.s0 = [cpu_seconds(p) for p in self.servers]
        self.l0 = [cpu_seconds(p) for p in self.load]
        self.m0 = psutil.cpu_times()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if hasattr(self, "wall"):
            return
        self.wall = time.monotonic() - self.t0
        self.server_cpu = [cpu_seconds(p) - c for p, c in zip(self.servers, self.s0, strict=True)]
        self.load_cpu = [cpu_seconds(p) - c for p, c in zip(self.load, self.l0, strict=True)]
        m1 = psutil.cpu_times()
        busy = sum(getattr(m1, f) - getattr(self.m0, f) for f in ("user", "system", "nice"))
        busy += sum(getattr(m1, f, 0) - getattr(self.m0, f, 0) for f in ("irq", "softirq", "steal"))
        self.machine_cpu = busy

    def as_dict(self) -> dict[str, Any]:
        self.close()
        wall = self.wall or 1e-9
        ours = sum(self.server_cpu) + sum(self.load_cpu)
        return {
            "wall_s": self.wall,
            "server_cpu_s": self.server_cpu,
            "server_cpu_pct": [100 * c / wall for c in self.server_cpu],
            "load_cpu_s": self.load_cpu,
            "load_cpu_pct": [100 * c / wall for c in self.load_cpu],
            "load_cpu_pct_total": 100 * sum(self.load_cpu) / wall,
            "machine_cpu_pct": 100 * self.machine_cpu / wall,
            "other_cpu_pct": max(0.0, 100 * (self.machine_cpu - ours) / wall),
        }


class Bench:
    def __init__(self, sizes: Sizes, only: set[str], pin: bool, profile: bool, keep: bool):
        self.sizes = sizes
        self.only = only
        self.pin = pin
        self.profile = profile
        self.keep = keep
        self.run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + sizes.mode
        self.out = RESULTS / self.run_id
        self.tmp = Path(tempfile.mkdtemp(prefix="courtyard-bench-"))
        self.tag = uuid.uuid4().hex[:8]
        self.results: dict[str, Any] = {"run": self.run_id, "mode": sizes.mode}
        self.started = time.monotonic()
        self.gens: list[Gen] = []
        self.pub: Gen | None = None
        self.installs: list[Install] = []
        self.log_lines: list[str] = []

    # --- plumbing -------------------------------------------------------------------------
    def log(self, text: str) -> None:
        line = f"[{time.monotonic() - self.started:6.1f}s] {text}"
        self.log_lines.append(line)
        print(line, flush=True)

    def wanted(self, scenario: str) -> bool:
        return not self.only or scenario in self.only

    def time_left(self) -> float:
        return self.sizes.budget_s - (time.monotonic() - self.started)

    def cpus(self, which: set[int]) -> set[int] | None:
        return which if self.pin else None

    @property
    def load_pids(self) -> list[int]:
        pids = [g.pid for g in self.gens]
        if self.pub is not None:
            pids.append(self.pub.pid)
        return pids

    def set_load_affinity(self, cpus: set[int]) -> None:
        for pid in self.load_pids:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(pid, cpus)

    async def start_generators(self) -> None:
        self.gens = [Gen(f"g{i}", self.cpus(LOAD_CPUS)) for i in range(self.sizes.gens)]
        self.pub = Gen("pub", self.cpus(LOAD_CPUS))
        for gen in [*self.gens, self.pub]:
            await gen.start()

    async def stop_generators(self) -> None:
        for gen in [*self.gens, *([self.pub] if self.pub else [])]:
            await gen.stop()

    async def new_install(self, name: str, backend: str) -> Install:
        data_dir = self.tmp / name
        data_dir.mkdir(parents=True, exist_ok=True)
        pg_name = None
        if backend == "postgresql":
            pg_name = f"courtyard_bench_{self.tag}_{name}"
            url = await create_pg_database(pg_name)
        else:
            url = f"sqlite:///{data_dir}/courtyard.db"
        install = Install(name, backend, url, data_dir, pg_name)
        self.installs.append(install)
        probe = Courtyard(url, data_dir)
        probe.migrate()
        return install

    async def start_servers(
        self,
        install: Install,
        count: int = 1,
        bus: str = "memory",
        pin: bool = True,
        extra: dict[str, str] | None = None,
    ) -> None:
        await self.stop_servers(install)
        env = {
            "COURTYARD_REALTIME__BUS": bus,
            "COURTYARD_REALTIME__BUS_CHANNEL": f"courtyard.bench.{self.tag}.{install.name}",
            "COURTYARD_REALTIME__HEARTBEAT_SECONDS": str(self.sizes.heartbeat_s),
            **(extra or {}),
        }
        for i in range(count):
            cpus = None
            if pin and self.pin:
                cpus = SERVER_CPUS if count == 1 else {i % len(ALL_CPUS)}
            server = Courtyard(
                install.database_url, install.data_dir, cpus=cpus, extra_env=dict(env)
            )
            server.start()
            install.servers.append(server)
            if not install.owner_token:
                # Each fresh start issues a new setup token: use the first one before the next.
                setup = server.setup_token()
                assert setup, "no setup token printed"
                async with self.pool(install) as pool:
                    install.owner_token, install.owner_id = await populate.create_owner(pool, setup)

    async def stop_servers(self, install: Install) -> None:
        for server in install.servers:
            server.stop()
        install.servers = []

    @contextlib.asynccontextmanager
    async def pool(self, install: Install, size: int = 16) -> Any:
        pool = HTTPPool("127.0.0.1", install.ports[0], size=size)
        try:
            yield pool
        finally:
            pool.close()

    async def add_users(self, install: Install, count: int) -> None:
        have = len(install.user_ids)
        if have >= count:
            return
        started = time.monotonic()
        async with self.pool(install) as pool:
            prefix = f"u{have}x"
            ids, tokens = await populate.create_users(
                pool, install.owner_token, prefix, count - have
            )
        install.user_ids += ids
        install.tokens += tokens
        self.log(
            f"{install.name}: {count - have} users created and signed in "
            f"in {time.monotonic() - started:.1f} s"
        )

    async def add_channel(self, install: Install, name: str, members: list[int]) -> int:
        if name in install.channels:
            return install.channels[name]
        async with self.pool(install) as pool:
            channel_id = await populate.create_channel(pool, install.owner_token, name, members)
        install.channels[name] = channel_id
        install.members[channel_id] = members
        return channel_id

    # --- connections ----------------------------------------------------------------------
    async def connect(
        self,
        tokens: list[str],
        ports: list[int],
        *,
        since: int | None = None,
        window: float = 0.0,
        probe_every: int = 50,
        timeout: float = 120.0,  # noqa: ASYNC109
        concurrency: int = 256,
    ) -> dict[str, Any]:
        """Open one event socket per token, spread over the generators; wait for caught_up."""
        chunks = _split(tokens, len(self.gens))
        offset = 0
        calls = []
        for gen, chunk in zip(self.gens, chunks, strict=True):
            calls.append(
                gen.call(
                    {
                        "cmd": "connect",
                        "ports": ports,
                        "tokens": chunk,
                        "src_ips": SRC_IPS,
                        "probe_every": probe_every,
                        "window": window,
                        "since": since,
                        "timeout": timeout,
                        "index_offset": offset,
                        "concurrency": max(1, concurrency // len(self.gens)),
                    },
                    timeout=timeout + 30,
                )
            )
            offset += len(chunk)
        replies = await asyncio.gather(*calls)
        failed: dict[str, int] = {}
        for reply in replies:
            for key, value in reply["failed"].items():
                failed[key] = failed.get(key, 0) + value
        hello = [x for r in replies for x in r["hello_ms"]]
        ready = [x for r in replies for x in r["ready_ms"]]
        return {
            "requested": len(tokens),
            "live": sum(r["live"] for r in replies),
            "failed": failed,
            "pending": sum(r["pending"] for r in replies),
            "elapsed_s": max(r["elapsed"] for r in replies),
            "hello_ms": summary(hello),
            "ready_ms": summary(ready),
            "_ready": ready,
            "position": max(r["position"] for r in replies),
        }

    async def disconnect(self, polite: bool = False) -> None:
        await asyncio.gather(*(g.call({"cmd": "disconnect", "polite": polite}) for g in self.gens))

    async def reset(self) -> None:
        await asyncio.gather(*(g.call({"cmd": "reset"}) for g in self.gens))

    async def collect(self) -> dict[str, Any]:
        replies = await asyncio.gather(*(g.call({"cmd": "stats"}) for g in self.gens))
        closed: dict[str, int] = {}
        for reply in replies:
            for key, value in reply["closed"].items():
                closed[key] = closed.get(key, 0) + value
        return {
            "frames": sum(r["frames"] for r in replies),
            "bytes": sum(r["bytes"] for r in replies),
            "live": sum(r["live"] for r in replies),
            "closed": closed,
            "lat_ms": [x for r in replies for x in r["lat_ms"]],
            "gen_cpu_s": [r["cpu"] for r in replies],
        }

    # --- fan-out primitives ---------------------------------------------------------------
    async def saturate(
        self,
        ports: list[int],
        token: str,
        channel_id: int,
        members: int,
        server_pids: list[int],
        seconds: float,
        concurrency: int,
    ) -> dict[str, Any]:
        """Closed-loop publisher keeps the server busy; deliveries counted by the clients."""
        assert self.pub is not None
        warm = self.sizes.s3_warmup_s
        await self.reset()
        publish = asyncio.create_task(
            self.pub.call(
                {
                    "cmd": "publish",
                    "ports": ports,
                    "tokens": [token],
                    "channels": [channel_id],
                    "duration": warm + seconds,
                    "concurrency": concurrency,
                    "src_ips": SRC_IPS,
                }
            )
        )
        await asyncio.sleep(warm)
        await self.reset()
        t0 = time.monotonic()
        with Window(server_pids, self.load_pids) as window:
            await asyncio.sleep(seconds)
            stats = await self.collect()
        t1 = time.monotonic()
        pub = await publish
        acked = sum(1 for at in pub["ack_at"] if t0 <= at <= t1)
        await asyncio.sleep(0.5)
        cpu = window.as_dict()
        wall = cpu["wall_s"]
        delivered = stats["frames"]
        server_cpu = sum(cpu["server_cpu_s"]) or 1e-9
        return {
            "members": members,
            "messages_per_s": acked / wall,
            "deliveries_per_s": delivered / wall,
            "sent_deliveries_per_s": acked * members / wall,
            "deliveries_per_server_cpu_s": delivered / server_cpu,
            "frame_bytes": stats["bytes"] / delivered if delivered else None,
            "closed": stats["closed"],
            "live": stats["live"],
            "publish_status": pub["status"],
            "publish_errors": pub["errors"],
            "ack_ms": summary(pub["ack_ms"]),
            "gen_cpu_s": stats["gen_cpu_s"],
            "cpu": cpu,
            "generator_saturated": _saturated(cpu),
        }

    async def open_loop(
        self,
        ports: list[int],
        token: str,
        channel_id: int,
        members: int,
        server_pids: list[int],
        rate: float,
        seconds: float,
    ) -> dict[str, Any]:
        """Messages on a fixed schedule; latency from the scheduled send time to each probe."""
        assert self.pub is not None
        await self.reset()
        with Window(server_pids, self.load_pids) as window:
            pub = await self.pub.call(
                {
                    "cmd": "publish",
                    "ports": ports,
                    "tokens": [token],
                    "channels": [channel_id],
                    "duration": seconds,
                    "rate": rate,
                    "concurrency": 64,
                    "drain": 10.0,
                    "src_ips": SRC_IPS,
                },
                timeout=seconds + 60,
            )
            await asyncio.sleep(0.3)
            stats = await self.collect()
        cpu = window.as_dict()
        acked = sum(v for k, v in pub["status"].items() if k.startswith("2"))
        return {
            "rate": rate,
            "deliveries_per_s_offered": rate * members,
            "sent": pub["sent"],
            "acked": acked,
            "publish_errors": pub["errors"],
            "delivered": stats["frames"],
            "expected": acked * members,
            "latency_ms": summary(stats["lat_ms"]),
            "ack_ms": summary(pub["ack_ms"]),
            "closed": stats["closed"],
            "cpu": cpu,
            "generator_saturated": _saturated(cpu),
        }

    async def py_spy(
        self, pid: int, seconds: float, name: str, *, gil: bool = False
    ) -> dict[str, Any] | None:
        """Sample the server with py-spy (non-blocking, 200 Hz, pinned to the load core).

        ``gil=True`` keeps only samples of the thread holding the GIL: where the Python CPU
        goes. Without it every active thread is sampled, waits for the GIL included.
        """
        exe = Path(sys.executable).parent / "py-spy"
        out = self.out / f"{name}.txt"
        cpus = self.cpus(LOAD_CPUS)
        proc = await asyncio.create_subprocess_exec(
            str(exe),
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(int(seconds)),
            "--rate",
            "200",
            "--nonblocking",
            "--threads",
            *(["--gil"] if gil else []),
            "--format",
            "raw",
            "--output",
            str(out),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
        )
        try:
            output, _ = await asyncio.wait_for(proc.communicate(), seconds + 30)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            return {"error": "py-spy timed out"}
        if proc.returncode != 0 or not out.exists():
            return {"error": output.decode(errors="replace")[-500:]}
        return report.summarise_profile(out)

    # --- scenarios ------------------------------------------------------------------------
    async def run(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        self.results["machine"] = machine_info()
        self.log(f"run {self.run_id}: results in {self.out}")
        await self.start_generators()
        main = await self.new_install("main", "sqlite")
        await self.start_servers(main)
        await self.add_users(main, self.sizes.users)
        steps = [
            ("S1", self.s1_idle),
            ("S2", self.s2_storm),
            ("S3", self.s3_fanout),
            ("S4", self.s4_latency),
            ("S5", self.s5_chat),
            ("S6", self.s6_ingest),
            ("S7", self.s7_history),
            ("S8", self.s8_search),
            ("S9", self.s9_scaling),
        ]
        if "S1M" in self.only:
            steps.insert(0, ("S1M", self.s1_memory))
        for name, step in steps:
            if not self.wanted(name):
                continue
            if self.time_left() < 5:
                self.results.setdefault("skipped", []).append(name)
                self.log(f"{name}: skipped (time budget)")
                continue
            self.log(f"{name}: start")
            try:
                await step(main)
            except Exception as exc:
                self.results[name] = {"error": f"{type(exc).__name__}: {exc}"}
                self.log(f"{name}: FAILED {type(exc).__name__}: {exc}")

    async def s1_idle(self, main: Install) -> None:
        sizes = self.sizes
        server = main.servers[0]
        await self.disconnect()
        await asyncio.sleep(1.0)
        rss0 = rss_bytes(server.pid)
        slab0 = slab_bytes()
        per_user = -(-sizes.s1_conns // len(main.tokens))
        tokens = (main.tokens * per_user)[: sizes.s1_conns]
        result = await self.connect(tokens, main.ports, timeout=max(60.0, sizes.s1_conns / 50))
        await asyncio.sleep(2.0)
        live = result["live"]
        rss1 = rss_bytes(server.pid)
        slab1 = slab_bytes()
        await self.reset()
        with Window([server.pid], self.load_pids) as window:
            await asyncio.sleep(sizes.s1_idle_s)
        # After idling too: whether memory allocated for the connect burst stays resident.
        rss_idle = rss_bytes(server.pid)
        stats = await self.collect()
        cpu = window.as_dict()
        heartbeats = live * sizes.s1_idle_s / sizes.heartbeat_s
        server_cpu = sum(cpu["server_cpu_s"])
        self.results["S1"] = {
            "connections_requested": sizes.s1_conns,
            "connections_live": live,
            "still_live_after_idle": stats["live"],
            "connect": _public(result),
            "connects_per_s": live / result["elapsed_s"] if result["elapsed_s"] else None,
            "rss_before_mb": rss0 / 1e6,
            "rss_after_mb": rss1 / 1e6,
            "rss_per_conn_kb": (rss1 - rss0) / max(1, live) / 1024,
            "rss_after_idle_mb": rss_idle / 1e6,
            "rss_per_conn_after_idle_kb": (rss_idle - rss0) / max(1, live) / 1024,
            "slab_per_conn_kb": (slab1 - slab0) / max(1, live) / 1024,
            "heartbeat_s": sizes.heartbeat_s,
            "idle_cpu_pct": cpu["server_cpu_pct"][0],
            "cpu_us_per_heartbeat": 1e6 * server_cpu / heartbeats if heartbeats else None,
            "idle_cpu_pct_at_25s_heartbeat": (
                100 * (server_cpu / heartbeats) * live / 25.0 if heartbeats else None
            ),
            "cpu": cpu,
            "closed": stats["closed"],
        }
        self.log(
            f"S1: {live}/{sizes.s1_conns} live, "
            f"{self.results['S1']['rss_per_conn_kb']:.1f} KB/conn "
            f"({self.results['S1']['rss_per_conn_after_idle_kb']:.1f} after idling), "
            f"idle CPU {cpu['server_cpu_pct'][0]:.1f}% (heartbeat {sizes.heartbeat_s} s)"
        )
        if sizes.s1_multi_procs and self.time_left() > 600:
            try:
                await self.s1_multi()
            except Exception as exc:
                self.results["S1_multi"] = {"error": f"{type(exc).__name__}: {exc}"}
                self.log(f"S1 multi: FAILED {type(exc).__name__}: {exc}")

    async def s1_multi(self) -> None:
        """T3 on the machine: several server processes through Redis, each under 20k fds."""
        sizes = self.sizes
        await self.disconnect()
        install = await self.new_install("multi", "postgresql")
        await self.start_servers(
            install,
            sizes.s1_multi_procs,
            bus="redis",
            pin=False,
            extra={"COURTYARD_DATABASE__POOL_SIZE": "4"},
        )
        users = max(200, sizes.s1_multi_conns // 500)
        await self.add_users(install, users)
        per_user = -(-sizes.s1_multi_conns // users)
        tokens = (install.tokens * per_user)[: sizes.s1_multi_conns]
        # The generators need more processes than usual: each holds < 20,000 sockets.
        extra_gens = [
            Gen(f"m{i}", None)
            for i in range(max(0, -(-sizes.s1_multi_conns // 18_000) - len(self.gens)))
        ]
        for gen in extra_gens:
            await gen.start()
        saved = self.gens
        self.gens = saved + extra_gens
        self.set_load_affinity(ALL_CPUS)
        try:
            rss0 = sum(rss_bytes(p) for p in install.pids)
            result = await self.connect(
                tokens, install.ports, timeout=min(1200.0, self.time_left() - 120)
            )
            await asyncio.sleep(3)
            rss1 = sum(rss_bytes(p) for p in install.pids)
            with Window(install.pids, self.load_pids) as window:
                await asyncio.sleep(sizes.s1_idle_s)
            stats = await self.collect()
            self.results["S1_multi"] = {
                "processes": sizes.s1_multi_procs,
                "connections_requested": sizes.s1_multi_conns,
                "connections_live": result["live"],
                "still_live_after_idle": stats["live"],
                "connect": _public(result),
                "rss_per_conn_kb": (rss1 - rss0) / max(1, result["live"]) / 1024,
                "cpu": window.as_dict(),
            }
            self.log(f"S1 multi: {result['live']} live over {sizes.s1_multi_procs} processes")
            await self.disconnect()
        finally:
            for gen in extra_gens:
                await gen.stop()
            self.gens = saved
            if self.pin:
                self.set_load_affinity(LOAD_CPUS)
            await self.stop_servers(install)

    async def s1_memory(self, main: Install, connections: int = 3000) -> None:
        """Where the memory per idle socket goes, by allocation site (tracemalloc; opt-in)."""
        await self.disconnect()
        install = await self.new_install("memory", "sqlite")
        dump = self.tmp / "tracemalloc.json"
        await self.start_servers(install, extra=memory.tracemalloc_env(dump))
        try:
            await self.add_users(install, 200)
            server = install.servers[0]
            warm = await self.connect(install.tokens, install.ports)
            await asyncio.sleep(1)
            before = await memory.snapshot(server.pid, dump)
            rss0 = rss_bytes(server.pid)
            tokens = (install.tokens * (connections // len(install.tokens) + 1))[:connections]
            result = await self.connect(tokens, install.ports, timeout=300)
            await asyncio.sleep(2)
            rss1 = rss_bytes(server.pid)
            after = await memory.snapshot(server.pid, dump)
            live = result["live"] - warm["live"] if result["live"] > connections else result["live"]
            breakdown = memory.per_connection(before, after, max(1, live))
            self.results["S1M"] = {
                "connections": live,
                "rss_per_conn_kb_with_tracemalloc": (rss1 - rss0) / max(1, live) / 1024,
                **breakdown,
            }
            self.log(
                f"S1M: {breakdown['traced_bytes_per_conn'] / 1024:.1f} KB traced per socket; "
                + ", ".join(f"{t['site']} {t['bytes']} B" for t in breakdown["top"][:5])
            )
        finally:
            await self.disconnect()
            await self.stop_servers(install)

    async def s2_storm(self, main: Install) -> None:
        sizes = self.sizes
        count = min(5000, sizes.s1_conns)
        per_user = -(-count // len(main.tokens))
        tokens = (main.tokens * per_user)[:count]
        current = await self.collect()
        if current["live"] < count:
            await self.disconnect()
            await self.connect(tokens, main.ports, timeout=max(60.0, count / 50))
        position = max(0, await self._position(main))
        await self.disconnect()
        await asyncio.sleep(2.0)
        server = main.servers[0]

        def storm() -> Awaitable[dict[str, Any]]:
            return self.connect(
                tokens,
                main.ports,
                since=position,
                window=sizes.s2_window_s,
                timeout=sizes.s2_deadline_s,
                concurrency=4096,
            )

        with Window([server.pid], self.load_pids) as window:
            result = await storm()
        profile = None
        if self.profile:
            # A second storm, profiled: py-spy shares the load generators' core, so the
            # measured storm runs without it.
            await self.disconnect()
            await asyncio.sleep(2.0)
            profile = asyncio.create_task(
                self.py_spy(server.pid, min(10.0, sizes.s2_deadline_s), "profile-s2-storm")
            )
            await asyncio.sleep(0.2)
            await storm()
        self.results["S2"] = {
            "reconnects": count,
            "window_s": sizes.s2_window_s,
            "live": result["live"],
            "failed": result["failed"],
            "completed_in_s": result["elapsed_s"],
            "hello_ms": result["hello_ms"],
            "first_event_ms": result["ready_ms"],
            "deadline_s": sizes.s2_deadline_s,
            "not_back_by_deadline": result["pending"],
            "cpu": window.as_dict(),
            "profile": await profile if profile else None,
        }
        report.plot_cdf(result["_ready"], self.out / "s2_time_to_first_event.png")
        self.log(
            f"S2: {result['live']}/{count} back in {result['elapsed_s']:.1f} s, "
            f"first event p99 {result['ready_ms'].get('p99', 0):.0f} ms"
        )
        await self.disconnect()

    async def _position(self, main: Install) -> int:
        async with self.pool(main) as pool:
            status, body = await pool.request("GET", "/api/v1/state", None, main.owner_token)
        if status == 200:
            data = orjson.loads(body)
            return int(data.get("position", 0))
        return 0

    async def s3_fanout(self, main: Install) -> None:
        sizes = self.sizes
        results: dict[str, Any] = {}
        server = main.servers[0]
        for members in sizes.s3_sizes:
            if members > len(main.user_ids):
                continue
            name = f"fanout{members}"
            channel_id = await self.add_channel(main, name, main.user_ids[:members])
            await self.disconnect()
            conn = await self.connect(main.tokens[:members], main.ports)
            self.log(f"S3 {members}: {conn['live']} connected in {conn['elapsed_s']:.1f} s")
            court = await self.saturate(
                main.ports,
                main.owner_token,
                channel_id,
                conn["live"],
                [server.pid],
                sizes.s3_seconds,
                sizes.s3_concurrency,
            )
            profile = None
            if self.profile and members == sizes.s3_sizes[0]:
                profile_task = asyncio.create_task(
                    self.py_spy(server.pid, sizes.profile_s, f"profile-s3-{members}", gil=True)
                )
                await asyncio.sleep(0.2)
                await self.saturate(
                    main.ports,
                    main.owner_token,
                    channel_id,
                    conn["live"],
                    [server.pid],
                    sizes.profile_s,
                    sizes.s3_concurrency,
                )
                profile = await profile_task
            # The floor: same clients, same publisher, same frame size.
            await self.disconnect()
            payload = int((court["frame_bytes"] or 480) - 4)
            floor = FloorServer(payload, cpus=self.cpus(SERVER_CPUS))
            floor.start()
            try:
                await self.connect(main.tokens[:members], [floor.port])
                base = await self.saturate(
                    [floor.port],
                    main.owner_token,
                    channel_id,
                    conn["live"],
                    [floor.pid],
                    sizes.s3_seconds,
                    sizes.s3_concurrency,
                )
                await self.disconnect()
            finally:
                floor.stop()
            results[str(members)] = {
                "courtyard": court,
                "floor": base,
                "ratio_to_floor": court["deliveries_per_s"] / base["deliveries_per_s"]
                if base["deliveries_per_s"]
                else None,
                "ratio_to_floor_per_cpu": court["deliveries_per_server_cpu_s"]
                / base["deliveries_per_server_cpu_s"]
                if base["deliveries_per_server_cpu_s"]
                else None,
                "connect": _public(conn),
                "profile": profile,
            }
            self.log(
                f"S3 {members}: Courtyard {court['deliveries_per_s']:,.0f}/s "
                f"({court['messages_per_s']:.0f} msg/s, server CPU "
                f"{court['cpu']['server_cpu_pct'][0]:.0f}%), floor "
                f"{base['deliveries_per_s']:,.0f}/s, ratio "
                f"{results[str(members)]['ratio_to_floor']:.2f}"
            )
        self.results["S3"] = results

    async def s4_latency(self, main: Install) -> None:
        sizes = self.sizes
        s3 = self.results.get("S3", {})
        results: dict[str, Any] = {}
        server = main.servers[0]
        for members in sizes.s3_sizes:
            base = s3.get(str(members))
            if not base or "courtyard" not in base:
                continue
            capacity = base["courtyard"]["messages_per_s"]
            channel_id = main.channels[f"fanout{members}"]
            rates = [max(1.0, round(capacity * f, 1)) for f in sizes.s4_fractions]
            steps: dict[str, list[dict[str, Any]]] = {"courtyard": [], "floor": []}
            await self.disconnect()
            await self.connect(main.tokens[:members], main.ports)
            for fraction, rate in zip(sizes.s4_fractions, rates, strict=True):
                step = await self.open_loop(
                    main.ports,
                    main.owner_token,
                    channel_id,
                    members,
                    [server.pid],
                    rate,
                    sizes.s4_seconds,
                )
                step["fraction"] = fraction
                steps["courtyard"].append(step)
                lat = step["latency_ms"]
                self.log(
                    f"S4 {members} @ {fraction:.0%} ({rate} msg/s): p50 {lat.get('p50', 0):.1f} "
                    f"p99 {lat.get('p99', 0):.1f} max {lat.get('max', 0):.1f} ms"
                )
            await self.disconnect()
            floor = FloorServer(
                int((base["courtyard"]["frame_bytes"] or 480) - 4), cpus=self.cpus(SERVER_CPUS)
            )
            floor.start()
            try:
                await self.connect(main.tokens[:members], [floor.port])
                for fraction, rate in zip(sizes.s4_fractions, rates, strict=True):
                    step = await self.open_loop(
                        [floor.port],
                        main.owner_token,
                        channel_id,
                        members,
                        [floor.pid],
                        rate,
                        sizes.s4_seconds,
                    )
                    step["fraction"] = fraction
                    steps["floor"].append(step)
                await self.disconnect()
            finally:
                floor.stop()
            results[str(members)] = steps
        self.results["S4"] = results
        report.plot_latency(results, self.out / "s4_latency_vs_load.png")

    async def _chat_mix(
        self,
        main: Install,
        chunks: list[list[dict[str, Any]]],
        rate: float,
        mix: dict[str, float],
        seed: int = 100,
    ) -> list[Any]:
        """Every generator runs its share of S5's chat mix at ``rate`` actions/s in all."""
        sizes = self.sizes
        replies: list[Any] = await asyncio.gather(
            *(
                gen.call(
                    {
                        "cmd": "chatmix",
                        "ports": main.ports,
                        "users": chunk,
                        "rate": rate / len(self.gens),
                        "duration": sizes.s5_seconds,
                        "mix": mix,
                        "seed": seed + j,
                        "concurrency": 64,
                        "src_ips": SRC_IPS,
                    },
                    timeout=sizes.s5_seconds + 60,
                )
                for j, (gen, chunk) in enumerate(zip(self.gens, chunks, strict=True))
            )
        )
        return replies

    async def s5_chat(self, main: Install) -> None:
        sizes = self.sizes
        rng = random.Random(5)
        users = main.user_ids
        # Zipf-like channel sizes: a few big channels, most small; everyone in at least one.
        memberships: dict[int, set[int]] = {u: set() for u in range(len(users))}
        for k in range(sizes.s5_channels):
            size = max(3, min(len(users), int(len(users) * 0.3 / (k + 1) ** 0.8)))
            picked = rng.sample(range(len(users)), size)
            name = f"chat{k}"
            channel_id = await self.add_channel(main, name, [users[i] for i in picked])
            for i in picked:
                memberships[i].add(channel_id)
        chat_ids = [main.channels[f"chat{k}"] for k in range(sizes.s5_channels)]
        for i, mine in memberships.items():
            if not mine:
                channel_id = rng.choice(chat_ids)
                async with self.pool(main) as pool:
                    await pool.json(
                        "POST",
                        f"/api/v1/channels/{channel_id}/members",
                        {"user_ids": [users[i]]},
                        main.owner_token,
                    )
                mine.add(channel_id)
        await self.disconnect()
        conn = await self.connect(main.tokens, main.ports, probe_every=20)
        user_specs = [
            {"token": main.tokens[i], "channels": sorted(memberships[i])} for i in range(len(users))
        ]
        chunks = _split(user_specs, len(self.gens))
        mix = {
            "history": 0.45,
            "channels": 0.05,
            "read": 0.10,
            "send": 0.20,
            "react": 0.10,
            "typing": 0.10,
        }
        steps = []
        server = main.servers[0]
        # Step up until a gate fails; if the first step already fails, halve (twice at most).
        rates = list(sizes.s5_rates)
        halvings = 0
        while rates:
            rate = rates.pop(0)
            if self.time_left() < sizes.s5_seconds + 20:
                break
            await self.reset()
            with Window([server.pid], self.load_pids) as window:
                replies = await self._chat_mix(main, chunks, rate, mix)
                await asyncio.sleep(0.3)
                stats = await self.collect()
            steps.append(_chat_step(rate, replies, stats, window.as_dict(), len(users)))
            s = steps[-1]
            stop = not s["gates_pass"]
            self.log(
                f"S5 @ {rate:.0f} actions/s ({s['mattermost_equivalent_users']:,} MM-pace users): "
                f"API avg {s['api_avg_ms']:.1f} ms p99 {s['api_p99_ms']:.1f} ms, 5xx "
                f"{s['error_pct']:.3f}%, delivery p99 {s['delivery_ms'].get('p99', 0):.1f} ms "
                f"-> {'PASS' if s['gates_pass'] else 'fail'}"
            )
            if stop:
                if len(steps) - halvings == 1 and halvings < 2 and rate / 2 >= 5:
                    halvings += 1
                    rates = [rate / 2]
                    await asyncio.sleep(2.0)
                    continue
                break
            await asyncio.sleep(1.0)
        passing = [s for s in steps if s["gates_pass"]]
        profile = None
        if self.profile and steps and self.time_left() > sizes.s5_seconds + 20:
            # One more step at the last rate, profiled: py-spy shares the load generators'
            # core, so the measured steps run without it.
            rate = steps[-1]["rate"]
            await self.reset()
            task = asyncio.create_task(
                self.py_spy(server.pid, sizes.s5_seconds, f"profile-s5-{rate:.0f}", gil=True)
            )
            await asyncio.sleep(0.2)
            await self._chat_mix(main, chunks, rate, mix, seed=200)
            profile = await task
        self.results["S5"] = {
            "profile": profile,
            "users_connected": conn["live"],
            "channels": sizes.s5_channels,
            "mix": mix,
            "steps": steps,
            "max_passing_rate": max((s["rate"] for s in passing), default=0),
            "max_passing_users_equivalent": max(
                (s["mattermost_equivalent_users"] for s in passing), default=0
            ),
        }
        report.plot_chat(steps, self.out / "s5_chat_latency.png")

    async def s6_ingest(self, main: Install) -> None:
        sizes = self.sizes
        results: dict[str, Any] = {}
        results["sqlite"] = await self._ingest(main)
        if self.time_left() > 40:
            pg = await self._pg_install()
            results["postgresql"] = await self._ingest(pg)
        self.results["S6"] = results
        report.plot_ingest(results, self.out / "s6_ack_latency_vs_load.png")
        del sizes

    async def _pg_install(self) -> Install:
        for install in self.installs:
            if install.name == "pg":
                if not install.servers:
                    await self.start_servers(install)
                return install
        install = await self.new_install("pg", "postgresql")
        await self.start_servers(install)
        await self.add_users(install, self.sizes.pg_users)
        return install

    async def _ingest(self, install: Install) -> dict[str, Any]:
        sizes = self.sizes
        assert self.pub is not None
        await self.disconnect()
        count = min(sizes.s6_channels, len(install.user_ids))
        channels = []
        for i in range(count):
            channels.append(await self.add_channel(install, f"ingest{i}", [install.user_ids[i]]))
        tokens = install.tokens[:count]
        before = self._count_messages(install, channels)
        profile = self._profile_task(install, f"profile-s6-{install.backend}")
        with Window(install.pids, self.load_pids) as window:
            closed = await self.pub.call(
                {
                    "cmd": "publish",
                    "ports": install.ports,
                    "tokens": tokens,
                    "channels": channels,
                    "duration": sizes.s6_seconds,
                    "concurrency": count,
                    "src_ips": SRC_IPS,
                }
            )
        after = self._count_messages(install, channels)
        cpu = window.as_dict()
        ok = sum(v for k, v in closed["status"].items() if k.startswith("2"))
        throughput = ok / closed["elapsed"]
        rate = max(1.0, round(throughput * 0.5))
        profile_half = self._profile_task(install, f"profile-s6-{install.backend}-half")
        with Window(install.pids, self.load_pids) as window2:
            opened = await self.pub.call(
                {
                    "cmd": "publish",
                    "ports": install.ports,
                    "tokens": tokens,
                    "channels": channels,
                    "duration": sizes.s6_seconds,
                    "rate": rate,
                    "concurrency": count,
                    "src_ips": SRC_IPS,
                },
                timeout=sizes.s6_seconds + 60,
            )
        result = {
            "senders": count,
            "closed_loop": {
                "concurrency": count,
                "acked": ok,
                "persisted": None if after is None or before is None else after - before,
                "acked_per_s": throughput,
                "ack_ms": summary(closed["ack_ms"]),
                "status": closed["status"],
                "errors": closed["errors"],
                "cpu": cpu,
            },
            "open_loop_half": {
                "rate": rate,
                "ack_ms": summary(opened["ack_ms"]),
                "status": opened["status"],
                "errors": opened["errors"],
                "cpu": window2.as_dict(),
            },
            "profile": await profile if profile else None,
            "profile_half": await profile_half if profile_half else None,
        }
        self.log(
            f"S6 {install.backend}: {throughput:,.0f} msg/s persisted (closed loop, "
            f"{count} senders), ack p99 {result['closed_loop']['ack_ms'].get('p99', 0):.1f} ms; "
            f"at {rate}/s ack p99 {result['open_loop_half']['ack_ms'].get('p99', 0):.1f} ms"
        )
        result["socket"] = await self._socket_ingest(install, channels, tokens)
        return result

    async def _socket_ingest(
        self, install: Install, channels: list[int], tokens: list[str]
    ) -> dict[str, Any]:
        """The same senders over the event socket: ``message.send`` pipelined up to the
        per-connection cap (closed loop), then an open loop at 50 % of that."""
        sizes = self.sizes
        assert self.pub is not None
        window = SOCKET_SEND_WINDOW
        before = self._count_messages(install, channels)
        profile = self._profile_task(install, f"profile-s6-socket-{install.backend}")
        command = {
            "cmd": "socket_publish",
            "ports": install.ports,
            "tokens": tokens,
            "channels": channels,
            "duration": sizes.s6_seconds,
            "window": window,
            "src_ips": SRC_IPS,
        }
        with Window(install.pids, self.load_pids) as window1:
            closed = await self.pub.call(command, timeout=sizes.s6_seconds + 90)
        after = self._count_messages(install, channels)
        if "error" in closed:
            raise RuntimeError(f"socket_publish: {closed['error']}")
        throughput = closed["acked_by_end"] / closed["elapsed"]
        cpu = window1.as_dict()
        rate = max(1.0, round(throughput * 0.5))
        profile_half = self._profile_task(install, f"profile-s6-socket-{install.backend}-half")
        with Window(install.pids, self.load_pids) as window2:
            opened = await self.pub.call({**command, "rate": rate}, timeout=sizes.s6_seconds + 90)
        if "error" in opened:
            raise RuntimeError(f"socket_publish: {opened['error']}")
        ladder = []
        for offered in sizes.s6_socket_rates:
            with Window(install.pids, self.load_pids) as window3:
                step = await self.pub.call(
                    {**command, "rate": offered}, timeout=sizes.s6_seconds + 90
                )
            if "error" in step:
                raise RuntimeError(f"socket_publish: {step['error']}")
            index = await self._index_lag(install)
            ladder.append(
                {
                    "rate": offered,
                    "sent": step["sent"],
                    "acked": step["acked"],
                    "acked_by_end": step["acked_by_end"],
                    "ack_ms": summary(step["ack_ms"]),
                    "refused": step["refused"],
                    "unanswered": step["unanswered"],
                    "cpu": window3.as_dict(),
                    "search_index": index,
                }
            )
            self.log(
                f"S6 {install.backend} socket at {offered:,.0f}/s: ack p50 "
                f"{ladder[-1]['ack_ms'].get('p50', 0):.1f} p99 "
                f"{ladder[-1]['ack_ms'].get('p99', 0):.1f} ms, {step['acked']:,} of "
                f"{step['sent']:,} acked ({sum(step['refused'].values()):,} refused), server "
                f"{sum(window3.as_dict().get('server_cpu_pct', [0.0])):.0f} % CPU; search index "
                f"{index['behind_at_end']} behind at the end, caught up in "
                f"{index['caught_up_ms']} ms"
            )
        server_cpu = sum(cpu.get("server_cpu_s", [0.0]))
        result = {
            "sockets": closed["sockets"],
            "window": window,
            "closed_loop": {
                "in_flight": closed["sockets"] * window,
                "acked": closed["acked"],
                "persisted": None if after is None or before is None else after - before,
                "acked_per_s": throughput,
                "server_cpu_us_per_message": (
                    1e6 * server_cpu / closed["acked"] if closed["acked"] else None
                ),
                "ack_ms": summary(closed["ack_ms"]),
                "refused": closed["refused"],
                "unanswered": closed["unanswered"],
                "closed": closed["closed"],
                "cpu": cpu,
            },
            "open_loop_half": {
                "rate": rate,
                "sent": opened["sent"],
                "acked": opened["acked"],
                "ack_ms": summary(opened["ack_ms"]),
                "refused": opened["refused"],
                "unanswered": opened["unanswered"],
                "closed": opened["closed"],
                "cpu": window2.as_dict(),
            },
            "open_loop_rates": ladder,
            "profile": await profile if profile else None,
            "profile_half": await profile_half if profile_half else None,
        }
        self.log(
            f"S6 {install.backend} socket: {throughput:,.0f} msg/s acked (closed loop, "
            f"{closed['sockets']} sockets x {window} in flight, "
            f"{result['closed_loop']['server_cpu_us_per_message'] or 0:.0f} us server CPU/msg), "
            f"ack p99 {result['closed_loop']['ack_ms'].get('p99', 0):.1f} ms; at {rate}/s ack "
            f"p50 {result['open_loop_half']['ack_ms'].get('p50', 0):.1f} "
            f"p99 {result['open_loop_half']['ack_ms'].get('p99', 0):.1f} ms"
        )
        return result

    def _profile_task(self, install: Install, name: str) -> asyncio.Task[Any] | None:
        """py-spy on the install's first server for one S6 phase (each loop is profiled on its
        own: the open loop's frames arrive one at a time, unlike the closed loop's)."""
        if not self.profile:
            return None
        return asyncio.create_task(
            self.py_spy(install.pids[0], self.sizes.s6_seconds, name, gil=True)
        )

    def _count_messages(self, install: Install, channels: list[int]) -> int | None:
        ids = ",".join(str(c) for c in channels)
        return self._scalar(install, f"SELECT count(*) FROM messages WHERE channel_id IN ({ids})")

    async def _index_lag(self, install: Install) -> dict[str, Any]:
        """Right after a load step: how many messages had no search document yet (the
        backlog, ADR 0024), and how long until the newest one had (polled every 5 ms, at
        most 20 s). Documents are written in id order, so the gap between the newest message
        and the newest document is the backlog."""
        query = (
            "SELECT (SELECT coalesce(max(id), 0) FROM messages) - "
            "(SELECT coalesce(max(message_id), 0) FROM search_documents)"
        )
        if install.backend == "sqlite":
            path = install.database_url.removeprefix("sqlite:///")
            db = sqlite3.connect(path, timeout=30)

            async def gap() -> int:
                return int(db.execute(query).fetchone()[0])

            close: Any = db.close
        else:
            import asyncpg

            pg = await asyncpg.connect(install.database_url)

            async def gap() -> int:
                return int(await pg.fetchval(query))

            close = pg.close
        try:
            started = time.perf_counter()  # after connecting: the backlog's time only
            behind = lag = await gap()
            while lag and time.perf_counter() - started < 20:
                await asyncio.sleep(0.005)
                lag = await gap()
        finally:
            done = close()
            if asyncio.iscoroutine(done):
                await done
        return {
            "behind_at_end": behind,
            "caught_up_ms": None if lag else round((time.perf_counter() - started) * 1e3, 1),
        }

    def _scalar(self, install: Install, query: str) -> int | None:
        if install.backend == "sqlite":
            path = install.database_url.removeprefix("sqlite:///")
            with contextlib.closing(sqlite3.connect(path, timeout=30)) as db:
                return int(db.execute(query).fetchone()[0])
        try:
            out = subprocess.run(
                ["psql", install.database_url, "-tAc", query],
                check=True,
                capture_output=True,
                text=True,
                timeout=30,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return int(out.stdout.strip())

    async def s7_history(self, main: Install) -> None:
        sizes = self.sizes
        results: dict[str, Any] = {}
        await self.disconnect()
        for backend in sizes.s7_backends:
            for total in sizes.s7_sizes:
                if self.time_left() < 30:
                    results[f"{backend}-{total}"] = {"skipped": "time budget"}
                    continue
                results[f"{backend}-{total}"] = await self._history(backend, total)
        self.results["S7"] = results

    async def _history(self, backend: str, total: int) -> dict[str, Any]:
        sizes = self.sizes
        assert self.pub is not None
        install = await self.new_install(f"corpus{total}", backend)
        await self.start_servers(install)
        await self.add_users(install, 10)
        channel_ids = []
        for k in range(20 if sizes.mode == "short" else 100):
            channel_ids.append(await self.add_channel(install, f"history{k}", install.user_ids))
        await self.stop_servers(install)
        filled = await corpus.fill(
            install.database_url, channel_ids, [install.owner_id, *install.user_ids], total
        )
        self.log(
            f"S7 {backend}: {total:,} messages inserted in {filled['seconds']:.1f} s "
            f"({filled['rows_per_s']:,.0f} rows/s, SQLAlchemy Core bulk insert)"
        )
        last_seq = filled.pop("last_seq")
        await self.start_servers(install)
        rng = random.Random(3)
        paths = []
        for _ in range(sizes.s7_serial):
            channel_id = rng.choice(channel_ids)
            before = rng.randint(51, last_seq[channel_id])
            paths.append(f"/api/v1/channels/{channel_id}/messages?limit=50&before={before}")
        server = install.servers[0]
        serial = await self._reads(install, paths, concurrency=1, duration=60, serial=True)
        with Window([server.pid], self.load_pids) as window:
            concurrent = await self._reads(
                install, paths, concurrency=16, duration=sizes.s7_concurrent_s
            )
        repo = await corpus.repository_latency(
            install.database_url, channel_ids, last_seq, min(2000, sizes.s7_serial)
        )
        await self.stop_servers(install)
        optimized = None
        if backend == "postgresql":
            # PostgreSQL's heap is in arrival order; `courtyard database optimize` (CLUSTER) is
            # the operator's step that stores each channel's messages together (ADR 0019).
            # New random pages, so the first pass has not warmed them.
            optimized = await self._history_optimized(install, channel_ids, last_seq)
        result = {
            "backend": backend,
            "messages": total,
            "channels": len(channel_ids),
            "corpus": filled,
            "serial_http_ms": summary(serial["lat_ms"]),
            "serial_server_ms": summary(serial.get("server_ms") or []),
            "serial_status": serial["status"],
            "repository_ms": summary(repo),
            "concurrent16": {
                "requests_per_s": concurrent["requests"] / concurrent["elapsed"],
                "lat_ms": summary(concurrent["lat_ms"]),
                "status": concurrent["status"],
                "cpu": window.as_dict(),
            },
            "optimized": optimized,
        }
        self.log(
            f"S7 {backend} {total:,}: serial HTTP p50 {result['serial_http_ms']['p50']:.2f} "
            f"p99 {result['serial_http_ms']['p99']:.2f} ms; server-side (Server-Timing) p50 "
            f"{result['serial_server_ms'].get('p50', 0):.2f} p99 "
            f"{result['serial_server_ms'].get('p99', 0):.2f} ms; repository p99 "
            f"{result['repository_ms']['p99']:.2f} ms; "
            f"{result['concurrent16']['requests_per_s']:,.0f} req/s at 16 concurrent"
        )
        return result

    async def _history_optimized(
        self, install: Install, channel_ids: list[int], last_seq: dict[int, int]
    ) -> dict[str, Any]:
        """S7's serial pass again after ``courtyard database optimize``, on other pages."""
        upkeep = await asyncio.to_thread(Courtyard(install.database_url, install.data_dir).optimize)
        await self.start_servers(install)
        rng = random.Random(4)
        paths = []
        for _ in range(self.sizes.s7_serial):
            channel_id = rng.choice(channel_ids)
            before = rng.randint(51, last_seq[channel_id])
            paths.append(f"/api/v1/channels/{channel_id}/messages?limit=50&before={before}")
        serial = await self._reads(install, paths, concurrency=1, duration=60, serial=True)
        await self.stop_servers(install)
        result = {
            "optimize": upkeep,
            "serial_http_ms": summary(serial["lat_ms"]),
            "serial_server_ms": summary(serial.get("server_ms") or []),
            "serial_status": serial["status"],
        }
        self.log(
            f"S7 after `database optimize` ({upkeep['seconds']:.1f} s): server-side p50 "
            f"{result['serial_server_ms'].get('p50', 0):.2f} p99 "
            f"{result['serial_server_ms'].get('p99', 0):.2f} ms"
        )
        return result

    async def _search_optimized(self, install: Install, paths: list[str]) -> dict[str, Any]:
        """S8's serial and in-process passes again after ``courtyard database optimize``
        (SQLite: the full-text index merged into one segment; PostgreSQL: messages clustered
        and statistics refreshed)."""
        upkeep = await asyncio.to_thread(Courtyard(install.database_url, install.data_dir).optimize)
        await self.start_servers(install)
        serial = await self._reads(install, paths * 3, concurrency=1, duration=180, serial=True)
        await self.stop_servers(install)
        in_process = await corpus.search_latency(
            install.database_url, install.owner_id, "owner", rounds=3
        )
        every = [ms for samples in in_process.values() for ms in samples]
        result = {
            "optimize": upkeep,
            "serial_http_ms": summary(serial["lat_ms"]),
            "serial_status": serial["status"],
            "service_ms": summary(every),
        }
        self.log(
            f"S8 after `database optimize` ({upkeep['seconds']:.1f} s): serial HTTP p50 "
            f"{result['serial_http_ms'].get('p50', 0):.2f} p99 "
            f"{result['serial_http_ms'].get('p99', 0):.2f} ms; in-process p99 "
            f"{result['service_ms'].get('p99', 0):.2f} ms"
        )
        return result

    async def _reads(
        self,
        install: Install,
        paths: list[str],
        *,
        concurrency: int,
        duration: float,
        serial: bool = False,
    ) -> Any:
        """GET ``paths`` through the publisher's readers; ``serial`` reads each path once."""
        assert self.pub is not None
        request: dict[str, Any] = {
            "cmd": "reads",
            "port": install.ports[0],
            "paths": paths,
            "token": install.owner_token,
            "concurrency": concurrency,
            "duration": duration,
        }
        if serial:
            request["max_count"] = len(paths)
        return await self.pub.call(request)

    async def s8_search(self, main: Install) -> None:
        sizes = self.sizes
        results: dict[str, Any] = {}
        await self.disconnect()
        for backend in sizes.s8_backends:
            for total in sizes.s8_sizes:
                if self.time_left() < 30:
                    results[f"{backend}-{total}"] = {"skipped": "time budget"}
                    continue
                results[f"{backend}-{total}"] = await self._search(backend, total)
        self.results["S8"] = results

    async def _search(self, backend: str, total: int) -> dict[str, Any]:
        """A distinct-text corpus, indexed as the send path indexes; then the S8 query mix
        over HTTP one at a time, in-process per query class, and 8 concurrent."""
        sizes = self.sizes
        assert self.pub is not None
        install = await self.new_install(f"search{total}", backend)
        await self.start_servers(install)
        await self.add_users(install, 10)
        channel_ids = []
        for k in range(20 if sizes.mode == "short" else 100):
            channel_ids.append(await self.add_channel(install, f"history{k}", install.user_ids))
        await self.stop_servers(install)
        texts = corpus.SearchTexts()
        filled = await corpus.fill(
            install.database_url,
            channel_ids,
            [install.owner_id, *install.user_ids],
            total,
            distinct=texts,
        )
        filled.pop("last_seq")
        indexed = await corpus.index(install.database_url)
        self.log(
            f"S8 {backend}: {total:,} distinct messages in {filled['seconds']:.1f} s, indexed "
            f"in {indexed['seconds']:.1f} s ({indexed['rows_per_s']:,.0f} documents/s)"
        )
        await self.start_servers(install)
        paths = corpus.search_paths(texts)
        server = install.servers[0]
        # The first pass meets a cold server (page cache, connection pool, first imports); it
        # is reported on its own, and p99 is taken over three warm passes (288 requests, so
        # p99 is not simply the single slowest request).
        first = await self._reads(install, paths, concurrency=1, duration=120, serial=True)
        serial = await self._reads(install, paths * 3, concurrency=1, duration=180, serial=True)
        with Window([server.pid], self.load_pids) as window:
            concurrent = await self._reads(
                install, paths, concurrency=8, duration=sizes.s7_concurrent_s
            )
        upload = await upload_memory(install.ports[0], install.owner_token, server.pid)
        self.log(
            f"S8 upload of {upload['bytes'] / 2**20:.0f} MiB: {upload['seconds']:.1f} s, server "
            f"RSS {upload['rss_before_mib']:.0f} -> peak {upload['rss_peak_mib']:.0f} MiB "
            f"(status {upload['status']})"
        )
        await self.stop_servers(install)
        in_process = await corpus.search_latency(
            install.database_url, install.owner_id, "owner", rounds=3
        )
        every = [ms for samples in in_process.values() for ms in samples]
        optimized = await self._search_optimized(install, paths)
        result = {
            "backend": backend,
            "messages": total,
            "channels": len(channel_ids),
            "corpus": filled,
            "index": indexed,
            "first_pass_http_ms": summary(first["lat_ms"]),
            "serial_http_ms": summary(serial["lat_ms"]),
            "serial_status": serial["status"],
            "service_ms": summary(every),
            "service_ms_by_query": {k: summary(v) for k, v in in_process.items()},
            "upload_100mib": upload,
            "optimized": optimized,
            "concurrent8": {
                "requests_per_s": concurrent["requests"] / concurrent["elapsed"],
                "lat_ms": summary(concurrent["lat_ms"]),
                "status": concurrent["status"],
                "cpu": window.as_dict(),
            },
        }
        worst = max(result["service_ms_by_query"].items(), key=lambda kv: kv[1]["max"])
        self.log(
            f"S8 {backend} {total:,}: serial HTTP p50 {result['serial_http_ms']['p50']:.2f} "
            f"p99 {result['serial_http_ms']['p99']:.2f} ms; in-process p99 "
            f"{result['service_ms']['p99']:.2f} ms (slowest: {worst[0]} max "
            f"{worst[1]['max']:.1f} ms); {result['concurrent8']['requests_per_s']:,.0f} req/s "
            "at 8 concurrent"
        )
        return result

    async def s9_scaling(self, main: Install) -> None:
        sizes = self.sizes
        await self.disconnect()
        if sizes.s9_backend == "sqlite":
            install = main
        else:
            await self.stop_servers(main)
            install = await self._pg_install()
        await self.add_users(install, sizes.s9_members)
        members = install.user_ids[: sizes.s9_members]
        channel_id = await self.add_channel(install, "scale", members)
        tokens = install.tokens[: sizes.s9_members]
        self.set_load_affinity(ALL_CPUS)
        configs = [("memory", 1), ("redis", 1), ("redis", 2), ("nats", 1), ("nats", 2)]
        if sizes.mode == "short":
            # T10 needs one bus at 1 and 2 processes, first, so a slow machine's budget still
            # reaches it; NATS is measured in the full run.
            configs = [("redis", 1), ("redis", 2), ("memory", 1)]
        results: dict[str, Any] = {}
        reference_rate = None
        try:
            for bus, procs in configs:
                # One configuration takes about 11 s in the short run: start, connect,
                # saturate, then the open loop.
                if self.time_left() < sizes.s9_seconds * 2 + 8:
                    results[f"{bus}-{procs}"] = {"skipped": "time budget"}
                    continue
                await self.disconnect()
                await self.start_servers(install, procs, bus=bus, pin=False)
                conn = await self.connect(tokens, install.ports)
                sat = await self.saturate(
                    install.ports,
                    install.owner_token,
                    channel_id,
                    conn["live"],
                    install.pids,
                    sizes.s9_seconds,
                    sizes.s3_concurrency,
                )
                if reference_rate is None:
                    reference_rate = max(1.0, round(sat["messages_per_s"] * 0.5, 1))
                lat = await self.open_loop(
                    install.ports,
                    install.owner_token,
                    channel_id,
                    conn["live"],
                    install.pids,
                    reference_rate,
                    2.0 if sizes.mode == "short" else sizes.s9_seconds / 2,
                )
                results[f"{bus}-{procs}"] = {
                    "backend": install.backend,
                    "bus": bus,
                    "processes": procs,
                    "members": conn["live"],
                    "saturation": sat,
                    "latency_at_reference": lat,
                }
                self.log(
                    f"S9 {bus} x{procs}: {sat['deliveries_per_s']:,.0f} deliveries/s "
                    f"({sat['messages_per_s']:.0f} msg/s); at {reference_rate} msg/s p50 "
                    f"{lat['latency_ms'].get('p50', 0):.1f} p99 "
                    f"{lat['latency_ms'].get('p99', 0):.1f} ms"
                )
            await self.disconnect()
        finally:
            if self.pin:
                self.set_load_affinity(LOAD_CPUS)
            await self.stop_servers(install)
        for bus in ("redis", "nats"):
            one = results.get(f"{bus}-1", {}).get("saturation")
            two = results.get(f"{bus}-2", {}).get("saturation")
            if one and two and one["deliveries_per_s"]:
                results[f"{bus}_scaling"] = two["deliveries_per_s"] / one["deliveries_per_s"]
        self.results["S9"] = results
        report.plot_scaling(results, self.out / "s9_scaling.png")

    # --- the end --------------------------------------------------------------------------
    async def cleanup(self) -> None:
        with contextlib.suppress(Exception):
            await self.stop_generators()
        for install in self.installs:
            await self.stop_servers(install)
        stop_all()
        for install in self.installs:
            if install.pg_name and not self.keep:
                with contextlib.suppress(Exception):
                    await drop_pg_database(install.pg_name)
            elif install.pg_name:
                self.log(f"kept PostgreSQL database {install.pg_name} ({install.database_url})")
        if not self.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            self.log(f"kept data directories under {self.tmp}")

    def finish(self) -> None:
        self.results["elapsed_s"] = time.monotonic() - self.started
        self.results["targets"] = report.targets(self.results)
        (self.out / "results.json").write_bytes(
            orjson.dumps(self.results, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS)
        )
        table = report.table(self.results)
        (self.out / "summary.txt").write_text(table + "\n")
        (self.out / "log.txt").write_text("\n".join(self.log_lines) + "\n")
        latest = RESULTS / "latest"
        with contextlib.suppress(OSError):
            if latest.is_symlink() or latest.exists():
                latest.unlink()
            latest.symlink_to(self.out.name)
        print()
        print(table)
        print(f"\nresults: {self.out}/results.json (+ PNG plots, summary.txt)")


async def upload_memory(port: int, token: str, pid: int, size: int = 100 * 2**20) -> dict[str, Any]:
    """Stream a ``size``-byte file to POST /api/v1/files and sample the server's RSS."""
    import httpx

    async def body() -> Any:
        yield b'--b0\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n\r\n'
        block = os.urandom(1 << 20)
        for _ in range(size >> 20):
            yield block
        yield b"\r\n--b0--\r\n"

    samples = [rss_bytes(pid)]
    done = asyncio.Event()

    async def sample() -> None:
        while not done.is_set():
            samples.append(rss_bytes(pid))
            await asyncio.sleep(0.05)

    sampler = asyncio.create_task(sample())
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
        response = await client.post(
            "/api/v1/files",
            content=body(),
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "multipart/form-data; boundary=b0",
            },
        )
    elapsed = time.monotonic() - started
    done.set()
    await sampler
    return {
        "bytes": size,
        "status": response.status_code,
        "seconds": elapsed,
        "rss_before_mib": samples[0] / 2**20,
        "rss_peak_mib": max(samples) / 2**20,
        "rss_growth_mib": (max(samples) - samples[0]) / 2**20,
    }


def _split(items: list[Any], parts: int) -> list[list[Any]]:
    size = -(-len(items) // parts) if items else 0
    return [items[i * size : (i + 1) * size] for i in range(parts)]


def _public(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if not k.startswith("_")}


def _saturated(cpu: dict[str, Any]) -> bool:
    """A generator (or all of them together) used most of a core: the figure is suspect."""
    return max(cpu["load_cpu_pct"], default=0) > 85 or cpu["load_cpu_pct_total"] > 90


def _chat_step(
    rate: float,
    replies: list[dict[str, Any]],
    stats: dict[str, Any],
    cpu: dict[str, Any],
    users: int,
) -> dict[str, Any]:
    lat: dict[str, list[float]] = {}
    server_ms: dict[str, list[float]] = {}
    status: dict[str, int] = {}
    errors: dict[str, int] = {}
    samples: list[str] = []
    counts: dict[str, int] = {}
    for reply in replies:
        for kind, values in reply["lat_ms"].items():
            lat.setdefault(kind, []).extend(values)
        for kind, values in reply.get("server_ms", {}).items():
            server_ms.setdefault(kind, []).extend(values)
        for key, value in reply["status"].items():
            status[key] = status.get(key, 0) + value
        for key, value in reply["errors"].items():
            errors[key] = errors.get(key, 0) + value
        samples.extend(reply.get("error_samples", []))
        for key, value in reply["counts"].items():
            counts[key] = counts.get(key, 0) + value
    every = [x for values in lat.values() for x in values]
    api = summary(every)
    requests = sum(len(v) for v in lat.values())
    bad = status.get("5xx", 0) + sum(errors.values())
    error_pct = 100 * bad / requests if requests else 0.0
    delivery = summary(stats["lat_ms"])
    gates = {
        "errors_pct<=0.025": error_pct <= 0.025,
        "api_avg_ms<=50": (api.get("mean") or 0) <= 50,
        "api_p99_ms<=250": (api.get("p99") or 0) <= 250,
        "delivery_p99_ms<=50": (delivery.get("p99") or 0) <= 50,
    }
    return {
        "rate": rate,
        "mattermost_equivalent_users": int(rate * 20),
        "users_connected": users,
        "requests": requests,
        "counts": counts,
        "status": status,
        "errors": errors,
        "error_samples": samples[:10],
        "error_pct": error_pct,
        "api_avg_ms": api.get("mean") or 0.0,
        "api_p99_ms": api.get("p99") or 0.0,
        "api_ms": api,
        "by_kind_ms": {k: summary(v) for k, v in lat.items()},
        # The server's own time per kind (Server-Timing): the rest of by_kind_ms is the
        # network, the generator and waiting to be read.
        "server_by_kind_ms": {k: summary(v) for k, v in server_ms.items()},
        "delivery_ms": delivery,
        "deliveries": stats["frames"],
        "gates": gates,
        "gates_pass": all(gates.values()),
        "cpu": cpu,
        "generator_saturated": _saturated(cpu),
    }


def machine_info() -> dict[str, Any]:
    cpu_model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    versions = {}
    for module in (
        "uvloop",
        "uvicorn",
        "litestar",
        "sqlalchemy",
        "asyncpg",
        "aiosqlite",
        "websockets",
        "redis",
        "nats",
        "msgspec",
        "orjson",
    ):
        with contextlib.suppress(Exception):
            from importlib.metadata import version

            versions[module] = version(module if module != "nats" else "nats-py")
    git: dict[str, Any] = {}
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        root = Path(__file__).resolve().parent.parent
        git["commit"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        git["uncommitted_src"] = subprocess.run(
            ["git", "status", "--porcelain", "src"], cwd=root, capture_output=True, text=True
        ).stdout.splitlines()
    return {
        "git": git,
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model,
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "fd_limit": __import__("resource").getrlimit(__import__("resource").RLIMIT_NOFILE),
        "loadavg_at_start": os.getloadavg(),
        "versions": versions,
    }


async def amain(args: argparse.Namespace) -> int:
    sizes = Sizes.full() if args.full else Sizes.short()
    if args.budget:
        sizes.budget_s = args.budget
    for assignment in args.set:
        _override(sizes, assignment)
    only = {s.strip().upper() for s in args.only.split(",")} if args.only else set()
    bench = Bench(sizes, only, pin=not args.no_pin, profile=not args.no_profile, keep=args.keep)
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    try:
        await bench.run()
    except asyncio.CancelledError:
        bench.log("interrupted: cleaning up")
        bench.results["interrupted"] = True
    finally:
        await bench.cleanup()
        bench.finish()
    return 0


def _override(sizes: Sizes, assignment: str) -> None:
    """Apply one ``--set FIELD=VALUE``, typed like the field's current value."""
    name, _, raw = assignment.partition("=")
    if not raw or not hasattr(sizes, name):
        raise SystemExit(f"--set {assignment!r}: expected FIELD=VALUE with a field of Sizes")
    current = getattr(sizes, name)
    try:
        if isinstance(current, bool):
            value = raw.lower() in ("1", "true", "yes", "on")
        elif isinstance(current, tuple):
            # An empty default says nothing of its items: the field's annotation does.
            annotation = str(Sizes.__dataclass_fields__[name].type)
            kind = type(current[0]) if current else (float if "float" in annotation else str)
            value: Any = tuple(kind(item) for item in raw.split(","))
        else:
            value = type(current)(raw)
    except ValueError as exc:
        raise SystemExit(f"--set {assignment!r}: {exc}") from exc
    setattr(sizes, name, value)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--full", action="store_true", help="full sizes (bench-full)")
    parser.add_argument("--only", default="", help="comma-separated scenarios, e.g. S3,S4")
    parser.add_argument("--budget", type=float, default=0, help="time budget in seconds")
    parser.add_argument("--no-pin", action="store_true", help="do not pin server/load to cores")
    parser.add_argument("--no-profile", action="store_true", help="skip the py-spy profile")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the temporary data directories and PostgreSQL databases (drop them yourself)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override one size, e.g. --set s7_sizes=1000000 --set s7_backends=postgresql "
        "(lists comma-separated; fields: see Sizes in bench/run.py)",
    )
    args = parser.parse_args()
    raise SystemExit(asyncio.run(amain(args)))


if __name__ == "__main__":
    main()
