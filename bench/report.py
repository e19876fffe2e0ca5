"""The table of targets T1-T10, the PNG plots, and the py-spy profile summary."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from bench.stats import fmt

# --- targets ------------------------------------------------------------------------------


def _get(data: Any, *keys: Any) -> Any:
    for key in keys:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def _status(ok: bool | None) -> str:
    if ok is None:
        return "n/a"
    return "PASS" if ok else "MISS"


def _after_optimize(value: dict[str, Any], key: str, label: str, digits: int) -> str:
    """`` (after `database optimize`: p99 … ms …)`` when S7/S8 measured that too. The status
    stays the figure without it: an installation nobody looks after."""
    p99 = _get(value, "optimized", key, "p99")
    if p99 is None:
        return ""
    return f" (after `database optimize`: p99 {fmt(p99, digits)} ms {label})"


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per target: the figure measured, the target, pass or miss, and the gap."""
    rows: list[dict[str, Any]] = []

    def row(tid: str, figure: str, measured: str, target: str, ok: bool | None, note: str = ""):
        rows.append(
            {
                "id": tid,
                "figure": figure,
                "measured": measured,
                "target": target,
                "status": _status(ok),
                "note": note,
            }
        )

    s3 = _get(results, "S3", "1000") or {}
    court = s3.get("courtyard") or {}
    floor = s3.get("floor") or {}
    d = court.get("deliveries_per_s")
    ratio = s3.get("ratio_to_floor_per_cpu")
    floor_cpu = (_get(floor, "cpu", "server_cpu_pct") or [0])[0]
    row(
        "T1",
        "S3 fan-out, 1 process, 1,000 members (deliveries/s; x floor)",
        f"{fmt(d, 0)}/s; {fmt(ratio, 2)}x floor per CPU-s "
        f"({fmt(court.get('deliveries_per_server_cpu_s'), 0)} vs "
        f"{fmt(floor.get('deliveries_per_server_cpu_s'), 0)} deliveries per CPU-s)"
        if d
        else "-",
        ">= 150,000/s and >= 0.65x floor",
        None if d is None else (d >= 150_000 and (ratio or 0) >= 0.65),
        f"{d / 150_000:.2f}x of the 150k target; wall-clock ratio "
        f"{fmt(s3.get('ratio_to_floor'), 2)} (floor {fmt(floor.get('deliveries_per_s'), 0)}/s at "
        f"{fmt(floor_cpu, 0)}% CPU{': floor did not get a full core' if floor_cpu < 80 else ''})"
        if d
        else "",
    )
    s1 = results.get("S1") or {}
    kb = s1.get("rss_per_conn_kb")
    row(
        "T2",
        "S1 user-space RSS per idle authenticated socket",
        f"{fmt(kb, 1)} KB" if kb is not None else "-",
        "<= 8 KB",
        None if kb is None else kb <= 8,
        f"{kb / 8:.1f}x the target; {s1.get('connections_live')} sockets" if kb else "",
    )
    multi = results.get("S1_multi") or {}
    live = s1.get("connections_live")
    box = multi.get("connections_live")
    row(
        "T3",
        "S1 connections held (one process; machine)",
        f"{fmt(live, 0)} per process" + (f"; {fmt(box, 0)} on the machine" if box else "")
        if live is not None
        else "-",
        ">= 19,000 per process; >= 100,000 on the machine",
        None if live is None else (live >= 19_000 and (box or 0) >= 100_000),
        "short run opens fewer sockets than the target by design"
        if results.get("mode") == "short" and live is not None
        else "",
    )
    s4 = _get(results, "S4", "1000", "courtyard") or []
    half = next((s for s in s4 if abs(s.get("fraction", 0) - 0.5) < 1e-6), None)
    lat = (half or {}).get("latency_ms") or {}
    # The floor at the same offered rate: what the kernel and one event loop cost with no
    # application at all (a target the floor misses is bounded by the machine).
    floor4 = _get(results, "S4", "1000", "floor") or []
    floor_half = next((s for s in floor4 if abs(s.get("fraction", 0) - 0.5) < 1e-6), None)
    floor_lat = (floor_half or {}).get("latency_ms") or {}
    s4k = _get(results, "S4", "10000", "courtyard") or []
    half10k = next((s for s in s4k if abs(s.get("fraction", 0) - 0.5) < 1e-6), None)
    lat10k = (half10k or {}).get("latency_ms") or {}
    ok4 = None
    if lat.get("p50") is not None:
        ok4 = lat["p50"] <= 5 and lat["p99"] <= 20
        if lat10k.get("p99") is not None:
            ok4 = ok4 and lat10k["p99"] <= 80
    row(
        "T4",
        "S4 send->deliver at 50% of S3 capacity (1k; 10k)",
        f"1k: p50 {fmt(lat.get('p50'))} / p95 {fmt(lat.get('p95'))} / p99 {fmt(lat.get('p99'))}"
        f" / max {fmt(lat.get('max'))} ms"
        + (f"; 10k: p99 {fmt(lat10k.get('p99'))} ms" if lat10k.get("p99") is not None else "")
        if lat
        else "-",
        "1k: p50 <= 5 ms, p99 <= 20 ms; 10k: p99 <= 80 ms",
        ok4,
        (
            f"at {fmt((half or {}).get('rate'))} msg/s"
            + (
                f"; the floor at that rate: p50 {fmt(floor_lat.get('p50'))} / "
                f"p99 {fmt(floor_lat.get('p99'))} ms"
                if floor_lat.get("p50") is not None
                else ""
            )
        )
        if half
        else "",
    )
    s5 = results.get("S5") or {}
    users = s5.get("max_passing_users_equivalent")
    row(
        "T5",
        "S5 chat mix: Mattermost-pace users within the gates",
        f"{fmt(users, 0)} equivalent users ({fmt(s5.get('max_passing_rate'), 0)} actions/s; "
        f"{fmt(s5.get('users_connected'), 0)} connected)"
        if s5.get("steps")
        else "-",
        ">= 20,000 users (1,000 actions/s)",
        None if not s5.get("steps") else (users or 0) >= 20_000,
        "gates: 5xx+errors <= 0.025%, API avg <= 50 ms, p99 <= 250 ms, delivery p99 <= 50 ms",
    )
    s6 = results.get("S6") or {}
    parts = []
    ok6: bool | None = None
    for backend in ("sqlite", "postgresql"):
        closed = _get(s6, backend, "closed_loop")
        if not closed:
            continue
        rate = closed.get("acked_per_s") or 0
        p99 = _get(closed, "ack_ms", "p99")
        half6 = _get(s6, backend, "open_loop_half", "ack_ms", "p99")
        parts.append(
            f"{backend}: {fmt(rate, 0)}/s, ack p99 {fmt(p99)} ms (at 50%: {fmt(half6)} ms)"
        )
        good = rate >= 20_000 and (p99 or 1e9) <= 10
        socket = _get(s6, backend, "socket", "closed_loop")
        if socket:
            # The event socket's pipelined sends (docs/adr/0014); ack p99 judged at 50 % load.
            srate = socket.get("acked_per_s") or 0
            shalf = _get(s6, backend, "socket", "open_loop_half", "ack_ms", "p99")
            parts.append(f"{backend} socket: {fmt(srate, 0)}/s (at 50%: ack p99 {fmt(shalf)} ms)")
            good = good or (srate >= 20_000 and (shalf or 1e9) <= 10)
        ok6 = good if ok6 is None else (ok6 and good)
    row(
        "T6",
        "S6 durable ingest (persisted msgs/s, ack p99)",
        "; ".join(parts) or "-",
        ">= 20,000/s with ack p99 <= 10 ms",
        ok6,
    )
    s7 = results.get("S7") or {}
    parts = []
    ok7: bool | None = None
    for key, value in s7.items():
        if not isinstance(value, dict) or "serial_http_ms" not in value:
            continue
        # The target is server-side: the server's own Server-Timing figure when the run has
        # it (runs before it existed only have the round trip, which is judged instead).
        http_p99 = value["serial_http_ms"].get("p99")
        p99 = _get(value, "serial_server_ms", "p99") or http_p99
        parts.append(
            f"{key}: p99 {fmt(p99, 2)} ms server-side, {fmt(http_p99, 2)} ms HTTP round trip, "
            f"{fmt(_get(value, 'repository_ms', 'p99'), 2)} ms repository"
            + _after_optimize(value, "serial_server_ms", "server-side", 2)
        )
        if value["messages"] >= 10_000_000 or results.get("mode") == "short":
            good = (p99 or 1e9) <= 2
            ok7 = good if ok7 is None else (ok7 and good)
    row(
        "T7",
        "S7 50-message page before a random seq (serial, loopback)",
        "; ".join(parts) or "-",
        "p99 <= 2 ms at 10M messages",
        ok7,
        "short run: smaller corpus" if results.get("mode") == "short" else "",
    )
    s8 = results.get("S8") or {}
    parts = []
    ok8: bool | None = None
    for key, value in s8.items():
        if not isinstance(value, dict) or "serial_http_ms" not in value:
            continue
        p99 = value["serial_http_ms"].get("p99")
        parts.append(
            f"{key}: p99 {fmt(p99, 1)} ms HTTP, {fmt(_get(value, 'service_ms', 'p99'), 1)} ms"
            " in-process" + _after_optimize(value, "serial_http_ms", "HTTP", 1)
        )
        if value["messages"] >= 1_000_000 or results.get("mode") == "short":
            good = (p99 or 1e9) <= 50
            ok8 = good if ok8 is None else (ok8 and good)
    row(
        "T8",
        "S8 search (Chinese + English), serial, loopback",
        "; ".join(parts) or "-",
        "p99 <= 50 ms at 1M",
        ok8,
        "short run: smaller corpus" if results.get("mode") == "short" else "",
    )
    s2 = results.get("S2") or {}
    first = s2.get("first_event_ms") or {}
    ok9 = None
    if s2.get("reconnects"):
        ok9 = (
            s2["reconnects"] >= 5000
            and s2.get("live") == s2["reconnects"]
            and (s2.get("completed_in_s") or 1e9) <= 10
            and (first.get("p99") or 1e9) <= 1000
        )
    row(
        "T9",
        "S2 reconnect storm (all within the window; time to caught_up)",
        f"{fmt(s2.get('live'), 0)}/{fmt(s2.get('reconnects'), 0)} in "
        f"{fmt(s2.get('completed_in_s'))} s; p50 {fmt(first.get('p50'), 0)} / p99 "
        f"{fmt(first.get('p99'), 0)} ms"
        if s2.get("reconnects")
        else "-",
        "5,000 in <= 10 s; first event p99 <= 1 s",
        ok9,
    )
    s9 = results.get("S9") or {}
    parts = []
    ok10: bool | None = None
    for bus in ("redis", "nats"):
        ratio9 = s9.get(f"{bus}_scaling")
        one = _get(s9, f"{bus}-1", "saturation", "deliveries_per_s")
        two = _get(s9, f"{bus}-2", "saturation", "deliveries_per_s")
        if ratio9 is None:
            continue
        parts.append(f"{bus}: {fmt(one, 0)} -> {fmt(two, 0)}/s = {ratio9:.2f}x")
        ok10 = (ratio9 >= 1.6) if ok10 is None else (ok10 and ratio9 >= 1.6)
    row("T10", "S9 2 processes vs 1 (deliveries/s)", "; ".join(parts) or "-", ">= 1.6x", ok10)
    return rows


def table(results: dict[str, Any]) -> str:
    """A plain-text table for the terminal and summary.txt."""
    rows = results.get("targets") or targets(results)
    lines = [
        f"Courtyard benchmark {results.get('run')} ({results.get('mode')} run, "
        f"{fmt(results.get('elapsed_s'), 0)} s)",
        "",
    ]
    width = [4, 56, 6]
    header = f"{'#':<{width[0]}} {'figure':<{width[1]}} {'status':<{width[2]}} measured | target"
    lines += [header, "-" * len(header)]
    for r in rows:
        lines.append(
            f"{r['id']:<{width[0]}} {r['figure'][: width[1]]:<{width[1]}} {r['status']:<{width[2]}}"
            f" {r['measured']} | {r['target']}"
        )
        if r.get("note"):
            lines.append(f"{'':<{width[0]}} {'':<{width[1]}} {'':<{width[2]}} ({r['note']})")
    lines.append("")
    lines += scenario_lines(results)
    return "\n".join(lines)


def scenario_lines(results: dict[str, Any]) -> list[str]:
    """A few more lines per scenario: what limited the figure."""
    out = []
    for name in ("S1", "S2", "S3", "S4", "S5", "S6", "S7", "S8", "S9"):
        value = results.get(name)
        if value is None:
            continue
        if isinstance(value, dict) and "error" in value:
            out.append(f"{name}: ERROR {value['error']}")
    s3 = results.get("S3") or {}
    for members, value in s3.items():
        if not isinstance(value, dict) or "courtyard" not in value:
            continue
        c, f = value["courtyard"], value["floor"]
        out.append(
            f"S3 {members} members: Courtyard {fmt(c['messages_per_s'])} msg/s, "
            f"{fmt(c['deliveries_per_s'], 0)} deliveries/s, server CPU "
            f"{fmt(c['cpu']['server_cpu_pct'][0], 0)}%, generators "
            f"{fmt(c['cpu']['load_cpu_pct_total'], 0)}% of a core"
            f"{' (SATURATED)' if c['generator_saturated'] else ''}; floor "
            f"{fmt(f['deliveries_per_s'], 0)}/s at {fmt(f['cpu']['server_cpu_pct'][0], 0)}% CPU,"
            f" generators {fmt(f['cpu']['load_cpu_pct_total'], 0)}%"
            f"{' (SATURATED)' if f['generator_saturated'] else ''}"
        )
        prof = value.get("profile") or {}
        if prof.get("top_self"):
            top = ", ".join(f"{n} {p:.0f}%" for n, p in prof["top_self"][:5])
            out.append(f"   profile (self time): {top}")
    s5 = results.get("S5") or {}
    for step in s5.get("steps", []):
        out.append(
            f"S5 {fmt(step['rate'], 0)} actions/s: API avg {fmt(step['api_avg_ms'])} ms, p99 "
            f"{fmt(step['api_p99_ms'])} ms, errors {step['error_pct']:.3f}%, delivery p99 "
            f"{fmt(step['delivery_ms'].get('p99'))} ms, server CPU "
            f"{fmt(step['cpu']['server_cpu_pct'][0], 0)}% -> "
            f"{'pass' if step['gates_pass'] else 'fail'}"
        )
    s9 = results.get("S9") or {}
    for key, value in s9.items():
        if isinstance(value, dict) and "saturation" in value:
            sat = value["saturation"]
            lat = value["latency_at_reference"]["latency_ms"]
            out.append(
                f"S9 {key}: {fmt(sat['deliveries_per_s'], 0)} deliveries/s, server CPU "
                f"{'+'.join(fmt(x, 0) for x in sat['cpu']['server_cpu_pct'])}%, machine "
                f"{fmt(sat['cpu']['machine_cpu_pct'], 0)}%; latency p50 {fmt(lat.get('p50'))} "
                f"p99 {fmt(lat.get('p99'))} ms at {fmt(value['latency_at_reference']['rate'])} "
                "msg/s"
            )
    for key, value in (results.get("S8") or {}).items():
        if not isinstance(value, dict) or "service_ms_by_query" not in value:
            continue
        slow = sorted(value["service_ms_by_query"].items(), key=lambda kv: kv[1].get("p99") or 0)[
            -3:
        ]
        out.append(
            f"S8 {key}: index {fmt(_get(value, 'index', 'rows_per_s'), 0)} docs/s; slowest "
            + ", ".join(f"{name} p99 {fmt(stats.get('p99'), 1)} ms" for name, stats in slow)
        )
    if results.get("skipped"):
        out.append(f"skipped for the time budget: {', '.join(results['skipped'])}")
    return out


# --- plots --------------------------------------------------------------------------------


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_latency(s4: dict[str, Any], path: Path) -> None:
    """Delivery latency percentiles against offered load, Courtyard and the floor."""
    if not s4:
        return
    plt = _plt()
    fig, axes = plt.subplots(1, len(s4), figsize=(6.5 * len(s4), 4.5), squeeze=False)
    for ax, (members, steps) in zip(axes[0], s4.items(), strict=True):
        for server, style in (("courtyard", "-"), ("floor", ":")):
            points = [s for s in steps.get(server, []) if s["latency_ms"].get("n")]
            if not points:
                continue
            x = [s["deliveries_per_s_offered"] for s in points]
            for q, color in (
                ("p50", "tab:green"),
                ("p95", "tab:orange"),
                ("p99", "tab:red"),
                ("max", "tab:gray"),
            ):
                ax.plot(
                    x,
                    [s["latency_ms"][q] for s in points],
                    style,
                    marker="o",
                    color=color,
                    label=f"{server} {q}",
                )
        ax.set_xlabel("offered deliveries/s (messages/s x members)")
        ax.set_ylabel("send -> deliver latency, ms (from scheduled send)")
        ax.set_yscale("log")
        ax.set_title(f"S4: {members}-member channel")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_chat(steps: list[dict[str, Any]], path: Path) -> None:
    """S5: API and delivery latency against the action rate."""
    if not steps:
        return
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    x = [s["rate"] for s in steps]
    ax.plot(x, [s["api_avg_ms"] for s in steps], "-o", label="API average")
    ax.plot(x, [s["api_p99_ms"] for s in steps], "-o", label="API p99")
    ax.plot(x, [s["delivery_ms"].get("p99") or 0 for s in steps], "-o", label="delivery p99")
    ax.axhline(250, color="tab:red", ls=":", lw=1, label="p99 gate (250 ms)")
    ax.axhline(50, color="tab:orange", ls=":", lw=1, label="avg / delivery gate (50 ms)")
    ax.set_xlabel("offered actions/s (x20 = Mattermost-pace users)")
    ax.set_ylabel("ms")
    ax.set_yscale("log")
    ax.set_title("S5: chat mix")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_ingest(s6: dict[str, Any], path: Path) -> None:
    """S6: socket acknowledgement latency against the offered send rate, per database, with
    the server's CPU; the half-load step is one of the points."""
    series = {}
    for backend, result in s6.items():
        socket = result.get("socket") if isinstance(result, dict) else None
        if not isinstance(socket, dict):
            continue
        steps = list(socket.get("open_loop_rates") or [])
        half = socket.get("open_loop_half")
        if half:
            steps.append(half)
        steps = sorted((s for s in steps if s["ack_ms"].get("n")), key=lambda s: s["rate"])
        if len(steps) >= 2:
            series[backend] = steps
    if not series:
        return
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    cpu_ax = ax.twinx()
    for (backend, steps), color in zip(series.items(), ("tab:blue", "tab:purple"), strict=False):
        x = [s["rate"] for s in steps]
        ax.plot(x, [s["ack_ms"]["p50"] for s in steps], "--o", color=color, label=f"{backend} p50")
        ax.plot(x, [s["ack_ms"]["p99"] for s in steps], "-o", color=color, label=f"{backend} p99")
        cpu = [sum(s["cpu"].get("server_cpu_pct", [0.0])) for s in steps]
        cpu_ax.plot(x, cpu, ":", color=color, alpha=0.6, label=f"{backend} server CPU")
    ax.axhline(10, color="tab:red", ls=":", lw=1, label="T6: p99 10 ms")
    ax.set_xlabel("offered sends/s over the event socket (32 channels, round robin)")
    ax.set_ylabel("send -> ack latency, ms (from scheduled send)")
    ax.set_yscale("log")
    cpu_ax.set_ylabel("server CPU, % of one core")
    cpu_ax.set_ylim(0, 110)
    ax.set_title("S6: durable ingest, acknowledgement latency against load")
    ax.grid(True, which="both", alpha=0.3)
    lines = ax.get_legend_handles_labels()
    more = cpu_ax.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_scaling(s9: dict[str, Any], path: Path) -> None:
    """S9: deliveries/s against server processes, per bus."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    drew = False
    for bus, marker in (("memory", "s"), ("redis", "o"), ("nats", "^")):
        points = []
        for procs in (1, 2, 3, 4):
            value = s9.get(f"{bus}-{procs}")
            if isinstance(value, dict) and "saturation" in value:
                points.append((procs, value["saturation"]["deliveries_per_s"]))
        if points:
            drew = True
            ax.plot([p[0] for p in points], [p[1] for p in points], marker=marker, label=bus)
    if not drew:
        plt.close(fig)
        return
    ax.set_xlabel("server processes")
    ax.set_ylabel("deliveries/s")
    ax.set_xticks([1, 2])
    ax.set_ylim(bottom=0)
    backend = next(
        (v.get("backend") for v in s9.values() if isinstance(v, dict) and v.get("backend")), ""
    )
    ax.set_title(f"S9: fan-out vs server processes ({backend})")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_cdf(values_ms: list[float], path: Path) -> None:
    """S2: distribution of time to first event after a reconnect storm."""
    if not values_ms:
        return
    plt = _plt()
    ordered = sorted(values_ms)
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    ax.plot(ordered, [(i + 1) / len(ordered) for i in range(len(ordered))])
    ax.axvline(1000, color="tab:red", ls=":", label="T9 p99 bound (1 s)")
    ax.set_xlabel("time from scheduled reconnect to caught_up, ms")
    ax.set_ylabel("fraction of clients")
    ax.set_title(f"S2: reconnect storm ({len(ordered)} clients)")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --- profiles -----------------------------------------------------------------------------

BUCKETS = (
    ("courtyard/realtime", "courtyard/realtime/"),
    ("courtyard/api/websocket", "courtyard/api/websocket"),
    ("courtyard (other)", "courtyard/"),
    ("sqlalchemy", "sqlalchemy/"),
    ("aiosqlite/sqlite3", "aiosqlite/"),
    ("asyncpg", "asyncpg/"),
    ("litestar", "litestar/"),
    ("uvicorn", "uvicorn/"),
    ("msgspec", "msgspec/"),
    ("websockets", "websockets/"),
    ("argon2", "argon2/"),
    ("asyncio/uvloop", "asyncio/"),
)


def _bucket(frame: str) -> str:
    for name, needle in BUCKETS:
        if needle in frame:
            return name
    return "other"


SPECIAL = (
    (
        "Connection._execute (",
        "aiosqlite/core.py:158)",
        "aiosqlite: hand a statement to its thread (queue put + thread wake-up)",
    ),
    (
        "_connection_worker_thread (",
        "aiosqlite/core.py:59)",
        "aiosqlite thread: waiting for the next statement",
    ),
    (
        "Runner.run (",
        "asyncio/runners.py",
        "event loop in C (uvloop: socket syscalls, polling, callbacks)",
    ),
)
ROOT_CHAIN = (
    "typer/",
    "runpy",
    "<module>",
    "courtyard/cli/main.py",
    "cli/serve.py",
    "uvicorn/server.py",
    "uvicorn/_compat.py",
    "asyncio/runners.py",
    "threading.py",
    "uvloop/__init__.py",
    "click/",
)


def _label(frame: str) -> str:
    for start, where, label in SPECIAL:
        if frame.startswith(start) and where in frame:
            return label
    return _short(frame)


def _short(frame: str) -> str:
    # "function (path/to/module.py:123)" -> "function (module.py)"
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    module = where.rsplit("/", 1)[-1].split(":")[0]
    parts = where.split("site-packages/")[-1].split("/src/")[-1]
    package = parts.split("/")[0] if "/" in parts else module
    return f"{name} ({package}/{module})" if package != module else f"{name} ({module})"


def summarise_profile(path: Path, top: int = 15) -> dict[str, Any]:
    """Self and inclusive time per function, and self time per package, from py-spy raw."""
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    buckets: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        thread = frames[0] if frames and frames[0].startswith(("thread", "process")) else "main"
        threads[thread[:60]] += count
        frames = [f for f in frames if " (" in f and not f.startswith(("thread (", "process "))]
        if not frames:
            continue
        leaf = frames[-1]
        self_time[_label(leaf)] += count
        buckets[_bucket(leaf)] += count
        for name in {_short(f) for f in frames if not any(r in f for r in ROOT_CHAIN)}:
            inclusive[name] += count
    if not total:
        return {"samples": 0}
    return {
        "samples": total,
        "file": str(path),
        "top_self": [(k, 100 * v / total) for k, v in self_time.most_common(top)],
        "top_inclusive": [(k, 100 * v / total) for k, v in inclusive.most_common(top * 2)],
        "by_package_self": [(k, 100 * v / total) for k, v in buckets.most_common()],
        "threads": [(k, 100 * v / total) for k, v in threads.most_common(5)],
    }
