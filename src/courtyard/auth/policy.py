"""Security policy: second factor, re-authentication, session limits and lockouts.

Plain data built by the composition root from settings; the services enforce it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

from courtyard.domain.roles import Role

TwoFactorPolicy = Literal["optional", "admins", "everyone"]


@dataclass(frozen=True, slots=True)
class SessionLimits:
    """How long a session of one role lives: idle (None: no idle limit) and absolute."""

    lifetime: timedelta = timedelta(days=30)
    idle: timedelta | None = None


@dataclass(frozen=True, slots=True)
class LockoutPolicy:
    """Failed attempts, counted per key within ``window``, before delays and lockouts."""

    account_attempts: int = 10
    ip_attempts: int = 100
    second_factor_attempts: int = 5
    window: timedelta = timedelta(minutes=15)
    lockout: timedelta = timedelta(minutes=15)
    slow_down_after: int = 3
    max_delay_seconds: float = 2.0

    def delay_for(self, failures: int) -> float:
        """Seconds to hold a failed attempt's answer: doubling from 0.25 s after the first
        ``slow_down_after`` failures, capped."""
        if failures <= self.slow_down_after:
            return 0.0
        return float(min(self.max_delay_seconds, 0.25 * 2 ** (failures - self.slow_down_after - 1)))


@dataclass(frozen=True, slots=True)
class SecurityPolicy:
    """Everything the sign-in and session services enforce beyond the password itself."""

    two_factor: TwoFactorPolicy = "optional"
    totp_issuer: str = "Courtyard"
    reauthentication_window: timedelta = timedelta(minutes=10)
    pending_sign_in_lifetime: timedelta = timedelta(minutes=5)
    default_limits: SessionLimits = field(default_factory=SessionLimits)
    limits_by_role: Mapping[Role, SessionLimits] = field(default_factory=dict)
    lockout: LockoutPolicy = field(default_factory=LockoutPolicy)
    password_min_strength: int = 2

    def requires_two_factor(self, role: Role, *, is_bot: bool = False) -> bool:
        """Whether a user of this role must have a second factor (bots never can)."""
        if is_bot or self.two_factor == "optional":
            return False
        return self.two_factor == "everyone" or role.is_admin

    def limits_for(self, role: Role) -> SessionLimits:
        """The session limits of a role."""
        return self.limits_by_role.get(role, self.default_limits)

    def touch_interval(self, role: Role, default: timedelta) -> timedelta:
        """How often activity is written down: often enough for the idle limit to be exact
        to within a tenth of it."""
        idle = self.limits_for(role).idle
        return default if idle is None else min(default, idle / 10)
