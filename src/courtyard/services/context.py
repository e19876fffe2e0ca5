"""What every service needs, built once by the composition root (``courtyard.app``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pluggy

from courtyard.auth.passwords import PasswordHashing
from courtyard.auth.policy import SecurityPolicy
from courtyard.auth.secretbox import SecretBox, generated_box
from courtyard.storage.unit_of_work import Storage

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The default clock."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Policy:
    """Organisation rules and limits, derived from settings."""

    max_message_chars: int = 16_000
    max_group_members: int = 8
    password_min_length: int = 12
    session_lifetime: timedelta = timedelta(days=30)
    invite_lifetime: timedelta = timedelta(days=7)
    setup_token_lifetime: timedelta = timedelta(hours=24)
    keep_deleted_content: bool = True
    max_page_size: int = 200
    max_reaction_kinds: int = 50
    session_touch_interval: timedelta = timedelta(seconds=60)
    read_receipts: str = "optional"
    read_receipts_max_members: int = 100
    security: SecurityPolicy = field(default_factory=SecurityPolicy)


@dataclass(frozen=True, slots=True)
class ServiceContext:
    """Dependencies shared by the services."""

    storage: Storage
    passwords: PasswordHashing
    plugins: pluggy.PluginManager
    policy: Policy = field(default_factory=Policy)
    clock: Clock = utc_now
    # Encrypts secrets the server must read back (TOTP seeds) at rest.
    secret_box: SecretBox = field(default_factory=generated_box)
