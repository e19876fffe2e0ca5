"""Time-based one-time passwords (RFC 6238, through pyotp), QR codes and recovery codes."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

import pyotp
import segno

STEP_SECONDS = 30
DIGITS = 6
# Codes from one step before or after are accepted: clocks drift and people type slowly.
DRIFT_STEPS = 1
RECOVERY_CODE_COUNT = 10
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i


def new_totp_secret() -> str:
    """A fresh 160-bit base32 secret."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, *, account: str, issuer: str) -> str:
    """The ``otpauth://`` URI authenticator apps read from the QR code."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(
        name=account, issuer_name=issuer
    )


def qr_svg(uri: str) -> str:
    """The URI as an SVG QR code (no external resources, safe to inline)."""
    return str(segno.make(uri, error="m").svg_inline(scale=4, omitsize=False))


def time_step(moment: datetime) -> int:
    """The TOTP time step a moment falls in."""
    return int(moment.timestamp()) // STEP_SECONDS


def matching_step(secret: str, code: str, moment: datetime) -> int | None:
    """The time step (within the allowed drift) whose code equals ``code``, or None."""
    candidate = code.strip().replace(" ", "")
    if len(candidate) != DIGITS or not candidate.isascii() or not candidate.isdigit():
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    now_step = time_step(moment)
    for step in range(now_step - DRIFT_STEPS, now_step + DRIFT_STEPS + 1):
        expected = totp.generate_otp(step)
        if secrets.compare_digest(expected, candidate):
            return step
    return None


def code_at(secret: str, moment: datetime) -> str:
    """The code an authenticator shows at ``moment`` (tests and tools)."""
    return str(pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).at(moment))


def new_recovery_codes() -> list[str]:
    """Ten fresh one-time codes, each 80 random bits shown as xxxx-xxxx-xxxx-xxxx."""
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(16))
        codes.append("-".join(raw[i : i + 4] for i in range(0, 16, 4)))
    return codes


def normalise_recovery_code(code: str) -> str:
    """Lower case, without spaces and dashes, as typed in any reasonable way."""
    return "".join(ch for ch in code.lower() if ch not in " -")


def hash_recovery_code(code: str) -> str:
    """The stored form: SHA-256 suffices for 80-bit random codes (no salt needed)."""
    return hashlib.sha256(
        b"courtyard-recovery:" + normalise_recovery_code(code).encode("utf-8", "replace")
    ).hexdigest()
