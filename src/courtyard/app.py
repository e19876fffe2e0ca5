"""The composition root: the one place that turns Settings into a running application."""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import os
import signal
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from litestar import Litestar
from litestar.types import ASGIApp

from courtyard.api.asgi import build_asgi_app, with_edge
from courtyard.api.deps import WebConfig
from courtyard.api.firewall import Firewall, Reloadable
from courtyard.api.hot_routes import HistoryFastPath
from courtyard.api.websocket import EventEndpoint
from courtyard.auth.passwords import Argon2Parameters, PasswordHashing
from courtyard.auth.policy import LockoutPolicy, SecurityPolicy, SessionLimits
from courtyard.auth.secretbox import SecretBox, load_or_create_key
from courtyard.domain.audit import Details
from courtyard.domain.network import FirewallPolicy, Limit, Scope, parse_network
from courtyard.domain.roles import Role
from courtyard.files.backends.local import LocalFileStore
from courtyard.files.clamd import ClamdScanner
from courtyard.files.images import Thumbnailer
from courtyard.logs import configure_logging
from courtyard.plugins.manager import build_plugin_manager
from courtyard.realtime.bus import Bus
from courtyard.realtime.gateway import Realtime, RealtimeOptions
from courtyard.services.context import Clock, Policy, ServiceContext, utc_now
from courtyard.services.files import FileRules, Files
from courtyard.services.ratelimit import MemoryBuckets, RateLimits, SecurityEventSink
from courtyard.services.registry import Services
from courtyard.services.search import Search, SearchRules
from courtyard.settings import Settings, config_file_path, load_settings
from courtyard.storage.engine import Database
from courtyard.storage.unit_of_work import Storage

logger = logging.getLogger(__name__)


def policy_from(settings: Settings) -> Policy:
    """The service-level rules expressed by the settings."""
    return Policy(
        max_message_chars=settings.messaging.max_message_chars,
        max_group_members=settings.messaging.max_group_members,
        password_min_length=settings.accounts.password_min_length,
        session_lifetime=timedelta(hours=settings.accounts.session_lifetime_hours),
        invite_lifetime=timedelta(hours=settings.accounts.invite_lifetime_hours),
        setup_token_lifetime=timedelta(hours=settings.accounts.setup_token_lifetime_hours),
        keep_deleted_content=settings.messaging.keep_deleted_content,
        max_page_size=settings.messaging.max_page_size,
        max_reaction_kinds=settings.messaging.max_reaction_kinds,
        read_receipts=settings.messaging.read_receipts,
        read_receipts_max_members=settings.messaging.read_receipts_max_members,
        security=security_policy_from(settings),
    )


def security_policy_from(settings: Settings) -> SecurityPolicy:
    """Second factor, re-authentication, per-role session limits and lockouts."""
    sec = settings.security
    default_lifetime = timedelta(hours=settings.accounts.session_lifetime_hours)

    def limits(role: Role) -> SessionLimits:
        idle_minutes = sec.idle_timeout_minutes_by_role.get(role.value, sec.idle_timeout_minutes)
        hours = sec.session_lifetime_hours_by_role.get(role.value)
        return SessionLimits(
            lifetime=timedelta(hours=hours) if hours else default_lifetime,
            idle=timedelta(minutes=idle_minutes) if idle_minutes else None,
        )

    return SecurityPolicy(
        two_factor=sec.two_factor,
        totp_issuer=sec.totp_issuer,
        reauthentication_window=timedelta(minutes=sec.reauthentication_minutes),
        default_limits=limits(Role.MEMBER),
        limits_by_role={role: limits(role) for role in Role},
        lockout=LockoutPolicy(
            account_attempts=sec.lockout_attempts,
            ip_attempts=sec.lockout_ip_attempts,
            second_factor_attempts=sec.second_factor_attempts,
            window=timedelta(minutes=sec.lockout_window_minutes),
            lockout=timedelta(minutes=sec.lockout_minutes),
            slow_down_after=sec.slow_down_after,
            max_delay_seconds=sec.max_delay_seconds,
        ),
        password_min_strength=sec.password_min_strength,
    )


def realtime_options_from(settings: Settings) -> RealtimeOptions:
    """The event stream's tunables."""
    rt = settings.realtime
    return RealtimeOptions(
        heartbeat_interval=rt.heartbeat_seconds,
        idle_timeout=rt.idle_timeout_seconds,
        max_buffer_bytes=rt.max_buffer_kib * 1024,
        retention=timedelta(days=rt.retention_days),
        presence_grace=rt.presence_grace_seconds,
        away_after=rt.away_after_seconds,
        max_connections_per_user=rt.max_connections_per_user,
        max_connections_per_ip=rt.max_connections_per_ip,
    )


def build_bus(settings: Settings) -> Bus:
    """The configured fan-out bus."""
    rt = settings.realtime
    if rt.bus == "redis":
        from courtyard.realtime.backends.redis import RedisBus

        return RedisBus(rt.redis_url, rt.bus_channel)
    if rt.bus == "nats":
        from courtyard.realtime.backends.nats import NatsBus

        return NatsBus(rt.nats_url, rt.bus_channel)
    from courtyard.realtime.backends.memory import MemoryBus

    return MemoryBus()


def build_files(settings: Settings, ctx: ServiceContext) -> Files:
    """The file service: local store, rules, preview workers and (optionally) clamd."""
    fs = settings.files
    root = fs.directory or settings.data_dir / "files"
    mib = 1024 * 1024
    rules = FileRules(
        scratch_dir=root / ".scratch",
        max_file_bytes=fs.max_file_mb * mib,
        quota_bytes=fs.user_quota_mb * mib or None,
        max_files_per_user=fs.max_files_per_user or None,
        max_files_per_message=fs.max_files_per_message,
        allowed_types=tuple(t.lower() for t in fs.allowed_types),
        blocked_types=tuple(t.lower() for t in fs.blocked_types),
        orphan_grace=timedelta(hours=fs.orphan_grace_hours),
        sweep_interval=timedelta(minutes=fs.sweep_interval_minutes)
        if fs.sweep_interval_minutes
        else None,
    )
    thumbnailer = Thumbnailer(
        workers=fs.thumbnail_workers,
        timeout=fs.thumbnail_timeout_seconds,
        max_pixels=fs.max_image_pixels,
        box=fs.thumbnail_px,
    )
    scanner = (
        ClamdScanner(fs.clamd_socket, timeout=fs.clamd_timeout_seconds) if fs.clamd_socket else None
    )
    return Files(ctx, LocalFileStore(root), rules, thumbnailer=thumbnailer, scanner=scanner)


def build_search(settings: Settings, ctx: ServiceContext) -> Search:
    """The search service with its limits."""
    rules = SearchRules(
        max_page_size=settings.search.max_page_size,
        relevance_window=settings.search.relevance_window,
        default_order=settings.search.default_order,
    )
    return Search(ctx, rules)


def build_services(
    settings: Settings,
    *,
    plugin_objects: tuple[object, ...] = (),
    bus: Bus | None = None,
    clock: Clock | None = None,
) -> Services:
    """Database, storage, password hashing, plugins, the realtime runtime and every service."""
    database = Database(
        settings.database_url(), pool_size=settings.database.pool_size, echo=settings.database.echo
    )
    passwords = PasswordHashing(
        Argon2Parameters(
            time_cost=settings.accounts.argon2_time_cost,
            memory_cost_kib=settings.accounts.argon2_memory_kib,
            parallelism=settings.accounts.argon2_parallelism,
        )
    )
    plugins = build_plugin_manager(settings.plugins.modules, plugin_objects)
    storage = Storage(database)
    key_file = settings.security.secret_key_file or settings.data_dir / "secret.key"
    context = ServiceContext(
        storage=storage,
        passwords=passwords,
        plugins=plugins,
        policy=policy_from(settings),
        secret_box=SecretBox(load_or_create_key(key_file)),
        clock=clock or utc_now,
    )
    realtime = Realtime(storage, bus or build_bus(settings), realtime_options_from(settings))
    return Services.build(
        context,
        realtime,
        files=build_files(settings, context),
        search=build_search(settings, context),
    )


def firewall_policy_from(settings: Settings) -> FirewallPolicy:
    """The firewall rules expressed by the settings (validated there already)."""
    fw = settings.firewall
    return FirewallPolicy(
        enabled=fw.enabled,
        global_scope=Scope.parse("global", allow=fw.allow, deny=fw.deny),
        rules=tuple(
            Scope.parse(r.name, allow=r.allow, deny=r.deny, surfaces=r.surfaces, roles=r.roles)
            for r in fw.rules
        ),
        trusted_proxies=tuple(parse_network(p) for p in fw.trusted_proxies),
    )


def build_firewall(settings: Settings) -> Firewall:
    """The firewall, reloading its rules from the configuration file when it changes."""
    path = config_file_path(None)

    def reread() -> FirewallPolicy:
        return firewall_policy_from(load_settings(path))

    return Firewall(
        firewall_policy_from(settings),
        loader=reread,
        watched=path,
        poll_seconds=settings.firewall.reload_poll_seconds,
    )


def build_rate_limits(settings: Settings) -> RateLimits:
    """Rate limits in Redis (shared by workers and nodes) or in this process."""
    rl = settings.rate_limits
    use_redis = rl.backend == "redis" or (rl.backend == "auto" and settings.realtime.bus == "redis")
    if use_redis:
        from courtyard.realtime.backends.redis_limiter import RedisBuckets

        store: Any = RedisBuckets(rl.redis_url or settings.realtime.redis_url, rl.key_prefix)
    else:
        store = MemoryBuckets()
    return RateLimits(
        store=store,
        per_user={
            "writes": Limit(rl.writes_per_second, rl.writes_burst),
            "reads": Limit(rl.reads_per_second, rl.reads_burst),
            "uploads": Limit(rl.uploads_per_second, rl.uploads_burst),
            "frames": Limit(rl.frames_per_second, rl.frames_burst),
        },
        per_address={
            "auth": Limit(rl.auth_per_second, rl.auth_burst),
            "writes": Limit(rl.writes_ip_per_second, rl.writes_ip_burst),
            "reads": Limit(rl.reads_ip_per_second, rl.reads_ip_burst),
            "uploads": Limit(rl.uploads_ip_per_second, rl.uploads_ip_burst),
        },
        exempt=tuple(parse_network(n) for n in rl.exempt),
        enabled=rl.enabled,
    )


_OUTCOMES = {"firewall.reload_failed": "failure", "tls.reload_failed": "failure"}


def security_event_sink(services: Services) -> SecurityEventSink:
    """Server-level security events (firewall and certificate reloads, rate-limit summaries)
    into the audit log, as the system (no actor) of this process."""
    pid = os.getpid()

    async def record(action: str, details: Details) -> None:
        outcome = _OUTCOMES.get(action, "denied" if action.endswith(".refused") else "success")
        await services.audit.record(
            None, action, target="server", outcome=outcome, ip="", details={**details, "pid": pid}
        )

    return record


def hsts_value(settings: Settings) -> str | None:
    """Strict-Transport-Security for HTTPS responses (None: not sent)."""
    if not settings.tls.hsts_seconds:
        return None
    value = f"max-age={settings.tls.hsts_seconds}"
    return value + "; includeSubDomains" if settings.tls.hsts_include_subdomains else value


@dataclass(frozen=True, slots=True)
class Application:
    """What a server process runs: the HTTP app and the event-socket protocol for uvicorn."""

    asgi: ASGIApp
    litestar: Litestar
    ws_protocol: Any
    services: Services
    endpoint: EventEndpoint
    firewall: Firewall
    limits: RateLimits
    reloaders: list[Reloadable]
    record_security_event: SecurityEventSink

    async def reload(self, reason: str) -> None:
        """Re-read what can change without a restart (firewall rules, TLS certificate)."""
        for reloader in self.reloaders:
            await reloader(reason)


def build_application(
    settings: Settings,
    *,
    services: Services | None = None,
    reload_on_sighup: bool = False,
    freeze_startup_heap: bool = False,
) -> Application:
    """Everything one server process needs, wired from ``settings``.

    ``reload_on_sighup`` (for `courtyard serve`, not for in-process test servers) reloads the
    firewall rules and the TLS certificate when the process receives SIGHUP;
    ``freeze_startup_heap`` (also for `courtyard serve`) freezes what start-up built out of the
    garbage collector's full walks.
    """
    configure_logging(settings.logging.level, settings.logging.format)
    services = services or build_services(settings)
    firewall = build_firewall(settings)
    limits = build_rate_limits(settings)
    firewall.on_event = limits.on_event = security_event_sink(services)
    reloaders: list[Reloadable] = [firewall.reload]
    public_url = settings.public_url()
    web = WebConfig(
        secure_cookies=public_url.startswith("https://"),
        session_max_age=settings.accounts.session_lifetime_hours * 3600,
    )
    endpoint = EventEndpoint(
        services=services,
        realtime=services.realtime,
        allowed_origins=frozenset(
            {public_url, *(o.rstrip("/") for o in settings.realtime.allowed_origins)}
        ),
        max_frame_bytes=settings.realtime.max_frame_bytes,
        socket_send_buffer=settings.realtime.socket_send_buffer_kib * 1024,
        frames_per_second=settings.realtime.frames_per_second,
        frame_burst=settings.realtime.frame_burst,
        max_pending_sends=settings.realtime.max_pending_sends,
        firewall=firewall,
        limits=limits,
    )
    litestar = build_asgi_app(
        services,
        web,
        max_body_bytes=settings.server.max_request_body_bytes,
        api_docs=settings.server.api_docs,
        static_dir=settings.server.static_dir,
        on_startup=[
            services.realtime.start,
            services.files.start,
            services.sessions.start,
            functools.partial(_index_missing_documents, services.search),
            firewall.start,
            limits.start,
            *([functools.partial(_handle_sighup, reloaders)] if reload_on_sighup else []),
            *([_freeze_startup_objects] if freeze_startup_heap else []),
        ],
        on_shutdown=[
            services.sessions.stop,
            firewall.stop,
            limits.stop,
            services.files.stop,
            services.realtime.stop,
            services.context.storage.database.dispose,
        ],
    )
    return Application(
        asgi=with_edge(
            HistoryFastPath(litestar, services),
            firewall=firewall,
            limits=limits,
            hsts=hsts_value(settings),
            timing=settings.server.timing_header,
        ),
        litestar=litestar,
        ws_protocol=endpoint.protocol_factory(),
        services=services,
        endpoint=endpoint,
        firewall=firewall,
        limits=limits,
        reloaders=reloaders,
        record_security_event=security_event_sink(services),
    )


# A young-generation collection every 700 net allocations (CPython's default) walked the
# objects of every request in flight many times over: 8-9 % of a socket send's CPU. Every
# 20,000, the same objects are mostly freed by reference counting before a collection sees them.
_GC_THRESHOLDS = (20_000, 10, 10)


async def _index_missing_documents(search: Search) -> None:
    """Search documents a stopped process still owed (storage/search_backlog.py). A failure
    is logged and does not stop the server: the next start looks again."""
    try:
        written = await search.index_missing()
    except Exception:
        logger.exception("search index: looking for documents an earlier run owed failed")
        return
    if written:
        logger.warning("search index: wrote %d documents an earlier run left unwritten", written)


async def _freeze_startup_objects() -> None:
    """Move everything start-up created out of the collector's sight.

    The application, its routes, schemas, compiled statements and imported modules live as
    long as the process; without this, every full collection walks them (~160k objects, tens
    of milliseconds), a pause that lands on whichever request is running.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*_GC_THRESHOLDS)
    gc.callbacks.append(_CollectionWatch().on_collection)


#: A collection pausing the process longer than this is logged (it delays every request).
SLOW_COLLECTION_SECONDS = 0.02


class _CollectionWatch:
    """Logs garbage collections that stop the event loop for long (a pause lands on whatever
    request or delivery is running, so an operator seeing latency spikes can tell)."""

    __slots__ = ("_started",)

    def __init__(self) -> None:
        self._started = 0.0

    def on_collection(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        paused = time.perf_counter() - self._started
        if paused >= SLOW_COLLECTION_SECONDS:
            logger.warning(
                "garbage collection of generation %d paused the process for %.0f ms "
                "(%d objects freed)",
                info.get("generation", -1),
                paused * 1000,
                info.get("collected", 0),
            )


async def _handle_sighup(reloaders: list[Reloadable]) -> None:
    loop = asyncio.get_running_loop()

    async def reload_all() -> None:
        for reloader in reloaders:
            try:
                await reloader("SIGHUP")
            except Exception:
                logger.exception("reload on SIGHUP failed")

    loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(reload_all()))


def create_app(settings: Settings | None = None, *, services: Services | None = None) -> ASGIApp:
    """The ASGI application alone (the event socket needs :func:`build_application`)."""
    return build_application(settings or load_settings(), services=services).asgi
