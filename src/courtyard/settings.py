"""Configuration: a TOML file, overridden by ``COURTYARD_*`` environment variables.

Nested keys use ``__`` in the environment: ``[server] port = 9000`` in TOML is
``COURTYARD_SERVER__PORT=9000``. Every field is documented in ``docs/configuration.md``
(a test fails if one is missing). Only ``courtyard.app`` and ``courtyard.cli`` read settings.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

CONFIG_ENV = "COURTYARD_CONFIG"
DEFAULT_CONFIG_FILE = Path("courtyard.toml")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(_Section):
    """How Courtyard listens."""

    host: str = Field(
        "127.0.0.1", description="Address to bind; 0.0.0.0 listens on every interface."
    )
    port: int = Field(8080, ge=1, le=65535, description="TCP port to listen on.")
    site_url: str | None = Field(
        None,
        description="Public URL users reach Courtyard at (used for links, cookies and the "
        "WebSocket Origin check). Defaults to http://<host>:<port>.",
    )
    workers: int = Field(1, ge=1, le=64, description="Worker processes for `courtyard serve`.")
    max_request_body_bytes: int = Field(
        1_048_576,
        ge=1024,
        le=64 * 1024 * 1024,
        description="Largest JSON request body accepted; larger bodies get 413 while streaming.",
    )
    api_docs: bool = Field(True, description="Serve the browsable API docs at /api/v1/docs.")
    timing_header: bool = Field(
        False,
        description="Add `Server-Timing: app;dur=<ms>` to every HTTP response: the time from "
        "the request reaching Courtyard to its response headers. Off by default because it "
        "tells every client how long the server worked; the benchmarks turn it on to measure "
        "server-side latency.",
    )
    static_dir: Path = Field(
        Path("web/dist"),
        description="Built browser assets (`make build`), served under /static/. The API docs "
        "page loads its script from here, never from a CDN.",
    )
    header_timeout_seconds: float = Field(
        10.0,
        ge=1,
        le=300,
        description="A client must send a request's complete headers within this long of "
        "starting it (or of connecting); slower ones are disconnected (slowloris).",
    )
    body_timeout_seconds: float = Field(
        30.0,
        ge=1,
        le=3600,
        description="Grace period for a request body; after it the body must keep arriving at "
        "min_body_bytes_per_second on average or the connection is closed (slow POST).",
    )
    min_body_bytes_per_second: int = Field(
        1024,
        ge=1,
        le=100 * 1024 * 1024,
        description="Slowest average upload speed tolerated after body_timeout_seconds.",
    )
    keep_alive_timeout_seconds: float = Field(
        5.0, ge=1, le=600, description="Idle keep-alive connections are closed after this long."
    )
    send_timeout_seconds: float = Field(
        60.0,
        ge=1,
        le=3600,
        description="A client that reads nothing of a response for this long is disconnected "
        "(slow read).",
    )

    @field_validator("site_url")
    @classmethod
    def _site_url_is_http(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/") if value else value

    def public_url(self) -> str:
        """The site URL, explicit or derived from host and port."""
        if self.site_url:
            return self.site_url
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host  # noqa: S104
        return f"http://{host}:{self.port}"


class DatabaseSettings(_Section):
    """Where data lives."""

    url: str | None = Field(
        None,
        description="sqlite:///path/to/file.db or postgresql://user@host/db. Defaults to an "
        "embedded SQLite file in data_dir.",
    )
    pool_size: int = Field(10, ge=1, le=200, description="PostgreSQL connections per process.")

    @field_validator("url")
    @classmethod
    def _url_is_supported(cls, value: str | None) -> str | None:
        if value is None:
            return value
        from courtyard.storage.engine import normalise_database_url

        try:
            normalise_database_url(value)
        except Exception as exc:  # SQLAlchemy's parse errors and our own scheme check
            raise ValueError(str(exc).splitlines()[0]) from None
        return value

    echo: bool = Field(False, description="Log every SQL statement (debugging only).")


class MessagingSettings(_Section):
    """Limits and policies for messages."""

    max_message_chars: int = Field(
        16_000, ge=1, le=100_000, description="Longest message text, in characters."
    )
    max_group_members: int = Field(
        8, ge=3, le=50, description="Most people in a group conversation."
    )
    keep_deleted_content: bool = Field(
        True,
        description="Keep the text of deleted messages for compliance (hidden from users). "
        "Set false to erase it at deletion.",
    )
    max_reaction_kinds: int = Field(
        50, ge=1, le=500, description="Most distinct emoji on one message."
    )
    read_receipts: Literal["optional", "always", "off"] = Field(
        "optional",
        description="Who-read-it lists: 'optional' (each user may stop sending them), 'always' "
        "(users cannot opt out) or 'off'.",
    )
    read_receipts_max_members: int = Field(
        100, ge=2, le=10_000, description="Read receipts are kept for channels up to this size."
    )
    max_page_size: int = Field(
        200, ge=10, le=1000, description="Largest page any list endpoint returns."
    )


class AccountSettings(_Section):
    """Sign-in, sessions and passwords."""

    password_min_length: int = Field(12, ge=8, le=128, description="Shortest accepted password.")
    session_lifetime_hours: int = Field(
        720, ge=1, le=24 * 365, description="How long a session lasts."
    )
    invite_lifetime_hours: int = Field(
        168, ge=1, le=24 * 90, description="Default lifetime of invite links."
    )
    setup_token_lifetime_hours: int = Field(
        24, ge=1, le=24 * 30, description="Lifetime of the first-run setup token."
    )
    argon2_time_cost: int = Field(
        3,
        ge=1,
        le=20,
        description="argon2id iterations (raise to harden; hashes upgrade at sign-in).",
    )
    argon2_memory_kib: int = Field(
        65_536, ge=8, le=4 * 1024 * 1024, description="argon2id memory per hash, KiB."
    )
    argon2_parallelism: int = Field(4, ge=1, le=16, description="argon2id lanes.")


class RealtimeSettings(_Section):
    """The event stream (WebSocket /api/v1/events) and fan-out between processes."""

    bus: Literal["memory", "redis", "nats"] = Field(
        "memory",
        description="How processes share events: 'memory' (one process only), 'redis' "
        "(Redis or Valkey pub/sub) or 'nats'. `serve --workers N` with N > 1 needs redis or nats.",
    )
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0", description="Redis/Valkey URL for bus = 'redis'."
    )
    nats_url: str = Field("nats://127.0.0.1:4222", description="NATS server URL for bus = 'nats'.")
    bus_channel: str = Field(
        "courtyard.events",
        min_length=1,
        max_length=200,
        pattern=r"^[A-Za-z0-9_.:-]+$",
        description="Redis channel / NATS subject; installations sharing a broker need "
        "different ones.",
    )
    retention_days: int = Field(
        7,
        ge=1,
        le=365,
        description="How long events stay resumable; older positions get resync_required.",
    )
    heartbeat_seconds: float = Field(
        25.0, ge=1, le=300, description="Server ping interval on idle sockets."
    )
    idle_timeout_seconds: float = Field(
        75.0, ge=5, le=3600, description="Close sockets silent (not even a pong) this long."
    )
    max_buffer_kib: int = Field(
        1024,
        ge=16,
        le=65536,
        description="Outbound buffer per socket; a client this far behind is disconnected "
        "(4008) and resumes.",
    )
    socket_send_buffer_kib: int = Field(
        256,
        ge=4,
        le=16384,
        description="Kernel send buffer per event socket; with max_buffer_kib it bounds the memory "
        "a slow client can hold.",
    )
    max_frame_bytes: int = Field(
        65536,
        ge=1024,
        le=16 * 1024 * 1024,
        description="Largest message a client may send (close 1009 above).",
    )
    frames_per_second: float = Field(
        20.0,
        gt=0,
        le=10000,
        description="Sustained client messages per second per socket (message.send excepted: "
        "see max_pending_sends).",
    )
    frame_burst: int = Field(
        60, ge=1, le=100000, description="Burst of client messages allowed above the rate."
    )
    max_pending_sends: int = Field(
        100,
        ge=1,
        le=100_000,
        description="message.send frames one socket may have waiting for their message.ack "
        "or message.error; more are refused with too_many_pending_sends. Sends are not counted "
        "against frames_per_second; they share the per-user rate_limits.writes_* bucket with "
        "HTTP sends.",
    )
    max_connections_per_user: int = Field(
        30, ge=1, le=10000, description="Simultaneous sockets per user."
    )
    max_connections_per_ip: int = Field(
        1000, ge=1, le=1_000_000, description="Simultaneous sockets per client address."
    )
    presence_grace_seconds: float = Field(
        10.0, ge=0, le=600, description="How long after the last socket closes a user stays online."
    )
    away_after_seconds: float = Field(
        300.0, ge=10, le=86400, description="Inactivity after which a connected user shows as away."
    )
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="Extra browser origins allowed to open the event socket (the site URL "
        "always is).",
    )


class FilesSettings(_Section):
    """Uploads: limits, types, previews, virus scanning and clean-up."""

    backend: Literal["local"] = Field(
        "local", description="Where file bytes live: 'local' (a directory on this machine)."
    )
    directory: Path | None = Field(
        None, description="Directory for stored files. Defaults to <data_dir>/files."
    )
    max_file_mb: int = Field(
        100, ge=1, le=100 * 1024, description="Largest file accepted, in MiB (413 above)."
    )
    user_quota_mb: int = Field(
        10 * 1024,
        ge=0,
        le=1024 * 1024 * 1024,
        description="Storage per user for all their files, in MiB; 0 means no limit.",
    )
    max_files_per_user: int = Field(
        10_000, ge=0, le=10_000_000, description="Files one user may hold; 0 means no limit."
    )
    max_files_per_message: int = Field(
        10, ge=1, le=100, description="Files attached to one message."
    )
    allowed_types: list[str] = Field(
        default_factory=list,
        description="If set, only these sniffed media types are accepted (patterns such as "
        "'image/*').",
    )
    blocked_types: list[str] = Field(
        default_factory=list,
        description="Sniffed media types refused (patterns such as 'application/x-msdownload').",
    )
    max_image_pixels: int = Field(
        50_000_000,
        ge=1_000_000,
        le=500_000_000,
        description="Images with more pixels (read from the header, before decoding) get no "
        "preview.",
    )
    thumbnail_px: int = Field(
        400, ge=64, le=2048, description="Longest side of thumbnails, in pixels."
    )
    thumbnail_workers: int = Field(
        1, ge=1, le=16, description="Processes making previews (isolated from the server)."
    )
    thumbnail_timeout_seconds: float = Field(
        20.0, ge=1, le=600, description="A preview taking longer is abandoned (the file stays)."
    )
    orphan_grace_hours: float = Field(
        24.0,
        ge=0,
        le=24 * 365,
        description="Unattached files (never attached, or whose message was deleted) are "
        "deleted after this long.",
    )
    sweep_interval_minutes: float = Field(
        60.0,
        ge=0,
        le=7 * 24 * 60,
        description="How often each server process sweeps unattached files; 0 turns the "
        "periodic sweep off (run `courtyard files sweep` instead).",
    )
    clamd_socket: str | None = Field(
        None,
        description="Unix socket of a ClamAV daemon (e.g. /run/clamav/clamd.ctl). When set, "
        "every upload is scanned before it is accepted; if clamd is down, uploads fail (503).",
    )
    clamd_timeout_seconds: float = Field(
        60.0, ge=1, le=3600, description="Longest wait for clamd's verdict on one file."
    )


class SearchSettings(_Section):
    """Message search."""

    default_order: Literal["date", "relevance"] = Field(
        "date",
        description="Order of results when the request does not say: newest first, or "
        "best first among recent matches.",
    )
    max_page_size: int = Field(50, ge=5, le=100, description="Most results on one page.")
    relevance_window: int = Field(
        500,
        ge=100,
        le=100_000,
        description="Relevance ranks this many most recent matches (bounds the cost of "
        "common words).",
    )


def _check_networks(values: list[str]) -> list[str]:
    from courtyard.domain.network import parse_network

    for value in values:
        parse_network(value)  # RuleError is a ValueError: pydantic names the key
    return values


class FirewallRuleSettings(_Section):
    """One named rule of Courtyard's firewall."""

    name: str = Field(min_length=1, max_length=100, description="Shown in verdicts and logs.")
    surfaces: list[str] = Field(
        default_factory=list,
        description="Where the rule applies: api, auth, admin, tokens, events, files, web "
        "(empty: everywhere).",
    )
    roles: list[str] = Field(
        default_factory=list,
        description="Whose requests it judges: owner, admin, member, guest (empty: everyone, "
        "before authentication).",
    )
    allow: list[str] = Field(
        default_factory=list, description="CIDR blocks allowed (empty: any address)."
    )
    deny: list[str] = Field(default_factory=list, description="CIDR blocks refused.")

    @model_validator(mode="after")
    def _valid_rule(self) -> FirewallRuleSettings:
        from courtyard.domain.network import Scope

        Scope.parse(
            self.name, allow=self.allow, deny=self.deny, surfaces=self.surfaces, roles=self.roles
        )
        return self


class FirewallSettings(_Section):
    """Courtyard's own network firewall (checked before authentication; reloaded on SIGHUP and
    on change of the configuration file, without a restart)."""

    enabled: bool = Field(
        True, description="Apply the lists below (with every list empty, everyone is allowed)."
    )
    allow: list[str] = Field(
        default_factory=list,
        description="CIDR blocks (IPv4 or IPv6) that may connect at all; empty allows any.",
    )
    deny: list[str] = Field(
        default_factory=list, description="CIDR blocks refused everywhere (deny wins)."
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Reverse proxies whose X-Forwarded-For / Forwarded headers are believed; "
        "the client is the rightmost address that is not one of them.",
    )
    rules: list[FirewallRuleSettings] = Field(
        default_factory=list,
        description="Per-surface or per-role rules as [[firewall.rules]] tables with name, "
        "surfaces, roles, allow and deny (see docs/security.md).",
    )
    reload_poll_seconds: float = Field(
        2.0,
        ge=0,
        le=3600,
        description="How often the configuration file's modification time is checked for "
        "changed rules; 0 reloads on SIGHUP only.",
    )

    @field_validator("allow", "deny", "trusted_proxies")
    @classmethod
    def _cidr(cls, value: list[str]) -> list[str]:
        return _check_networks(value)


class RateLimitSettings(_Section):
    """Token-bucket rate limits per user and per client address, by route class (429 with
    Retry-After above them). Rates are requests per second; bursts are bucket sizes."""

    enabled: bool = Field(True, description="Apply rate limits.")
    backend: Literal["auto", "memory", "redis"] = Field(
        "auto",
        description="Where buckets live: 'memory' (per process), 'redis' (shared by every "
        "worker and node), 'auto' (redis when realtime.bus is 'redis').",
    )
    redis_url: str | None = Field(
        None, description="Redis/Valkey URL for the buckets; defaults to realtime.redis_url."
    )
    key_prefix: str = Field(
        "courtyard:ratelimit:",
        min_length=1,
        max_length=200,
        description="Prefix of the Redis keys (installations sharing a Redis need different ones).",
    )
    exempt: list[str] = Field(
        default_factory=list,
        description="CIDR blocks never rate limited (e.g. a monitoring host).",
    )
    auth_per_second: float = Field(
        0.5, gt=0, le=100_000, description="Sign-in, setup and invite requests per address."
    )
    auth_burst: int = Field(20, ge=1, le=1_000_000, description="Burst for auth, per address.")
    writes_per_second: float = Field(
        10.0, gt=0, le=100_000, description="Changes (POST, PUT, PATCH, DELETE) per user."
    )
    writes_burst: int = Field(100, ge=1, le=1_000_000, description="Burst of writes per user.")
    writes_ip_per_second: float = Field(
        50.0, gt=0, le=100_000, description="Changes per address (all users behind it)."
    )
    writes_ip_burst: int = Field(
        500, ge=1, le=1_000_000, description="Burst of writes per address."
    )
    reads_per_second: float = Field(30.0, gt=0, le=100_000, description="Reads (GET) per user.")
    reads_burst: int = Field(300, ge=1, le=1_000_000, description="Burst of reads per user.")
    reads_ip_per_second: float = Field(
        150.0, gt=0, le=100_000, description="Reads per address (all users behind it)."
    )
    reads_ip_burst: int = Field(1500, ge=1, le=1_000_000, description="Burst of reads per address.")
    uploads_per_second: float = Field(1.0, gt=0, le=100_000, description="File uploads per user.")
    uploads_burst: int = Field(30, ge=1, le=1_000_000, description="Burst of uploads per user.")
    uploads_ip_per_second: float = Field(
        5.0, gt=0, le=100_000, description="File uploads per address."
    )
    uploads_ip_burst: int = Field(
        100, ge=1, le=1_000_000, description="Burst of uploads per address."
    )
    frames_per_second: float = Field(
        40.0,
        gt=0,
        le=100_000,
        description="Event-socket messages per user over all their sockets in one process "
        "(each socket also has realtime.frames_per_second); message.send frames count as "
        "writes instead.",
    )
    frames_burst: int = Field(
        200, ge=1, le=1_000_000, description="Burst of socket messages per user."
    )

    @field_validator("exempt")
    @classmethod
    def _cidr(cls, value: list[str]) -> list[str]:
        return _check_networks(value)


class TLSSettings(_Section):
    """HTTPS served by Courtyard itself (or leave empty and terminate TLS in a proxy; see
    docs/deploy/tls.md)."""

    cert_file: Path | None = Field(
        None, description="PEM certificate chain (server certificate first). Enables TLS."
    )
    key_file: Path | None = Field(None, description="PEM private key of the certificate.")
    min_version: Literal["1.2", "1.3"] = Field(
        "1.2", description="Oldest TLS version accepted (1.0 and 1.1 never are)."
    )
    hsts_seconds: int = Field(
        31_536_000,
        ge=0,
        le=2 * 31_536_000,
        description="Strict-Transport-Security max-age sent over HTTPS; 0 sends none.",
    )
    hsts_include_subdomains: bool = Field(
        False, description="Add includeSubDomains to Strict-Transport-Security."
    )
    reload_poll_seconds: float = Field(
        5.0,
        ge=0,
        le=3600,
        description="How often certificate and key files are checked for renewal (new "
        "handshakes use the new certificate); 0 reloads on SIGHUP only.",
    )

    @property
    def enabled(self) -> bool:
        """Whether Courtyard terminates TLS itself."""
        return self.cert_file is not None


RoleName = Literal["owner", "admin", "member", "guest"]


class SecuritySettings(_Section):
    """Two-factor authentication, re-authentication, session limits, lockouts, passwords."""

    two_factor: Literal["optional", "admins", "everyone"] = Field(
        "optional",
        description="Who must use a second factor (TOTP): 'optional', 'admins' (owners and "
        "admins) or 'everyone'. Users who must but have not enrolled can only enrol.",
    )
    totp_issuer: str = Field(
        "Courtyard",
        min_length=1,
        max_length=64,
        description="Name authenticator apps show next to the account.",
    )
    reauthentication_minutes: float = Field(
        10.0,
        ge=0.05,
        le=24 * 60,
        description="Sensitive actions (tokens, roles, disabling 2FA, new recovery codes) need "
        "a password or code given within this long.",
    )
    idle_timeout_minutes: float = Field(
        0.0,
        ge=0,
        le=365 * 24 * 60,
        description="Sessions unused this long end (automatic log-off); 0 means no idle limit.",
    )
    idle_timeout_minutes_by_role: dict[RoleName, float] = Field(
        default_factory=dict,
        description="Per-role idle limits overriding idle_timeout_minutes, e.g. "
        "{admin = 15, member = 60} (0: none for that role).",
    )
    session_lifetime_hours_by_role: dict[RoleName, float] = Field(
        default_factory=dict,
        description="Per-role absolute session lifetimes overriding "
        "accounts.session_lifetime_hours, e.g. {owner = 12}.",
    )
    lockout_attempts: int = Field(
        10, ge=1, le=10_000, description="Failed sign-ins for one login name before a lockout."
    )
    lockout_ip_attempts: int = Field(
        100, ge=1, le=1_000_000, description="Failed sign-ins from one address before a lockout."
    )
    second_factor_attempts: int = Field(
        5, ge=1, le=1000, description="Wrong second-factor codes for one user before a lockout."
    )
    lockout_window_minutes: float = Field(
        15.0, ge=0.05, le=7 * 24 * 60, description="Failures are counted over this window."
    )
    lockout_minutes: float = Field(
        15.0, ge=0.05, le=7 * 24 * 60, description="How long a lockout lasts."
    )
    slow_down_after: int = Field(
        3,
        ge=0,
        le=1000,
        description="Failures after which each failed answer is delayed (doubling from 0.25 s).",
    )
    max_delay_seconds: float = Field(
        2.0, ge=0, le=30, description="Longest delay given to a failed sign-in."
    )
    password_min_strength: int = Field(
        2,
        ge=0,
        le=4,
        description="Lowest zxcvbn score (0-4) a new password may have; 0 checks only length "
        "and the common-password list.",
    )
    secret_key_file: Path | None = Field(
        None,
        description="Key encrypting TOTP secrets at rest (created on first use). Defaults to "
        "<data_dir>/secret.key; every node needs the same file.",
    )

    @field_validator("idle_timeout_minutes_by_role", "session_lifetime_hours_by_role")
    @classmethod
    def _non_negative(cls, value: dict[str, float]) -> dict[str, float]:
        for role, amount in value.items():
            if amount < 0 or amount > 365 * 24 * 60:
                raise ValueError(f"{role}: must be between 0 and 525600")
        return value


class LoggingSettings(_Section):
    """Log output."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Minimum level logged."
    )
    format: Literal["text", "json"] = Field(
        "text", description="'json' emits one JSON object per line."
    )


class PluginSettings(_Section):
    """Extensions."""

    modules: list[str] = Field(
        default_factory=list, description="Python modules to load as plugins."
    )


class Settings(BaseSettings):
    """Every setting of a Courtyard server."""

    model_config = SettingsConfigDict(
        env_prefix="COURTYARD_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    data_dir: Path = Field(Path("data"), description="Directory for the SQLite database and files.")
    server: ServerSettings = Field(default_factory=ServerSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    messaging: MessagingSettings = Field(default_factory=MessagingSettings)
    accounts: AccountSettings = Field(default_factory=AccountSettings)
    realtime: RealtimeSettings = Field(default_factory=RealtimeSettings)
    files: FilesSettings = Field(default_factory=FilesSettings)
    search: SearchSettings = Field(default_factory=SearchSettings)
    firewall: FirewallSettings = Field(default_factory=FirewallSettings)
    rate_limits: RateLimitSettings = Field(default_factory=RateLimitSettings)
    tls: TLSSettings = Field(default_factory=TLSSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    plugins: PluginSettings = Field(default_factory=PluginSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment overrides the TOML file, which arrives as init arguments.
        return (env_settings, init_settings)

    @model_validator(mode="after")
    def _tls_needs_both_files(self) -> Settings:
        if (self.tls.cert_file is None) != (self.tls.key_file is None):
            raise ValueError("tls.cert_file and tls.key_file must be set together")
        return self

    def public_url(self) -> str:
        """The site URL; https:// when Courtyard terminates TLS and none is set explicitly."""
        url = self.server.public_url()
        if self.tls.enabled and not self.server.site_url:
            return "https://" + url.removeprefix("http://")
        return url

    def database_url(self) -> str:
        """The configured database URL, or the embedded SQLite file in ``data_dir``."""
        if self.database.url:
            return self.database.url
        return f"sqlite:///{(self.data_dir / 'courtyard.db').as_posix()}"


class ConfigError(Exception):
    """The configuration is invalid; the message names each bad key."""


def config_file_path(explicit: Path | None) -> Path | None:
    """The TOML file to read: explicit, $COURTYARD_CONFIG, or ./courtyard.toml if present."""
    if explicit is not None:
        return explicit
    if env := os.environ.get(CONFIG_ENV):
        return Path(env)
    return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.exists() else None


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Read and validate the configuration; raises ConfigError naming the bad keys."""
    path = config_file_path(config_file)
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: configuration file not found") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    data.update(overrides)
    try:
        return Settings(**data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            key = ".".join(str(part) for part in error["loc"])
            problems.append(f"  {key}: {error['msg']}")
        source = (
            f" (from {path} and COURTYARD_* variables)" if path else " (from COURTYARD_* variables)"
        )
        raise ConfigError("invalid configuration" + source + ":\n" + "\n".join(problems)) from None


_REFERENCE_INTRO = """\
# Configuration reference

Courtyard reads a TOML file — `--config PATH`, else `$COURTYARD_CONFIG`, else `./courtyard.toml`
if it exists — and then `COURTYARD_*` environment variables, which override the file. Nested
keys use a double underscore in the environment: `[server] port = 9000` in TOML is
`COURTYARD_SERVER__PORT=9000`. Lists are written as JSON in the environment
(`COURTYARD_PLUGINS__MODULES='["acme.moderation"]'`).

Unknown keys and bad values stop the server at start-up with a message naming each bad key;
`courtyard config check` shows the effective configuration without starting anything.

Example `courtyard.toml`:

```toml
data_dir = "/var/lib/courtyard"

[server]
host = "0.0.0.0"
port = 8080
site_url = "https://chat.example.org"

[database]
url = "postgresql://courtyard@127.0.0.1:5432/courtyard"

[messaging]
max_message_chars = 16000
```

This file is generated by `courtyard config docs` from the settings model; a test fails if it
drifts from the code.
"""


def settings_reference_markdown() -> str:
    """docs/configuration.md: every setting with its variable, default and meaning."""
    lines = [_REFERENCE_INTRO]
    top: list[str] = []
    sections: list[str] = []
    for name, field in Settings.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            sections.append(
                f"\n## `[{name}]` — {(annotation.__doc__ or '').strip()}\n\n"
                "| key | environment variable | default | meaning |\n|---|---|---|---|"
            )
            for key, sub in annotation.model_fields.items():
                sections.append(
                    _row(f"{name}.{key}", f"COURTYARD_{name.upper()}__{key.upper()}", sub)
                )
        else:
            top.append(_row(name, f"COURTYARD_{name.upper()}", field))
    lines.append(
        "\n## Top level\n\n| key | environment variable | default | meaning |\n|---|---|---|---|"
    )
    lines.extend(top)
    lines.extend(sections)
    return "\n".join(lines) + "\n"


def _row(key: str, env: str, field: Any) -> str:
    default = field.get_default(call_default_factory=True)
    if default is None:
        shown = "(none)"
    elif isinstance(default, bool):
        shown = f"`{str(default).lower()}`"
    elif isinstance(default, list):
        shown = "`[]`" if not default else f"`{default}`"
    else:
        shown = f"`{default}`"
    return f"| `{key}` | `{env}` | {shown} | {field.description or ''} |"
