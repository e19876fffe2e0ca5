"""Encryption at rest for secrets the server must read back (TOTP seeds), with Fernet.

The key lives outside the database (a file in the data directory by default, or a setting),
so a stolen database dump alone does not yield anyone's second factor. Every node of one
installation needs the same key.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken


class SecretBoxError(Exception):
    """A stored secret cannot be decrypted (wrong or changed key)."""


class SecretBox:
    """Seal and open short strings."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    def seal(self, plaintext: str) -> str:
        """Encrypt and authenticate."""
        return self._fernet.encrypt(plaintext.encode()).decode("ascii")

    def open(self, sealed: str) -> str:
        """Decrypt, or SecretBoxError if the key does not match."""
        try:
            return self._fernet.decrypt(sealed.encode("ascii")).decode()
        except (InvalidToken, ValueError) as exc:
            raise SecretBoxError("cannot decrypt a stored secret: was the key changed?") from exc


def load_or_create_key(path: Path) -> bytes:
    """The key in ``path``, created (mode 0600) on first use."""
    with contextlib.suppress(FileNotFoundError):
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        # Another process created it first: use theirs.
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as handle:
        handle.write(key + b"\n")
    return key


def generated_box() -> SecretBox:
    """A box with a throwaway key (tests and tools that never restart)."""
    return SecretBox(Fernet.generate_key())
