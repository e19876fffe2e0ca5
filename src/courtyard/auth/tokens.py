"""Secrets handed to clients: sessions, access tokens, invites, setup tokens.

A secret is ``<prefix>_<random>``; only its SHA-256 is stored, so a database leak yields no
usable credential. The prefix tells a log reader (and secret scanners) what a leaked string is.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from enum import StrEnum


class SecretKind(StrEnum):
    """What a secret grants; the value is its visible prefix."""

    SESSION = "cys"
    PERSONAL_TOKEN = "cyp"  # noqa: S105 (a prefix, not a secret)
    BOT_TOKEN = "cyb"  # noqa: S105
    INVITE = "cyi"
    SETUP = "cysetup"
    CSRF = "cyc"


def new_secret(kind: SecretKind) -> str:
    """A fresh 256-bit secret with its kind prefix."""
    return f"{kind.value}_{secrets.token_urlsafe(32)}"


def hash_secret(secret: str) -> str:
    """The stored form of a secret (hex SHA-256); high-entropy secrets need no salt."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def kind_of(secret: str) -> SecretKind | None:
    """Which kind of secret this looks like, from its prefix."""
    prefix, sep, _ = secret.partition("_")
    if not sep:
        return None
    try:
        return SecretKind(prefix)
    except ValueError:
        return None


def display_prefix(secret: str) -> str:
    """The first characters of a token, safe to show in lists ("cyp_AbCd…")."""
    return secret[:8]


def same_secret(a: str, b: str) -> bool:
    """Constant-time comparison."""
    return hmac.compare_digest(a.encode(), b.encode())
