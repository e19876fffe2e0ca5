"""Encryption at rest for secrets the server must read back (TOTP seeds), with Fernet.

The key lives outside the database (a file in the data directory by default, or a setting),
so a stolen database dump alone does not yield anyone's second factor. Every node of one
installation needs the same key.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
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
    """The key in ``path``, created (mode 0600) on first use.

    Several workers may start at once: the key is written to a private temporary file and
    published with a hard link, which fails if another process published first, so nobody ever
    reads a half-written key.
    """
    with contextlib.suppress(FileNotFoundError):
        return _read_key(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=".secret-key-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(Fernet.generate_key() + b"\n")
        os.chmod(temporary, 0o600)
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        os.unlink(temporary)
    return _read_key(path)


def _read_key(path: Path) -> bytes:
    key = path.read_bytes().strip()
    try:
        Fernet(key)
    except ValueError as exc:
        raise ValueError(f"{path} does not hold a valid key (44 base64 characters)") from exc
    return key


def generated_box() -> SecretBox:
    """A box with a throwaway key (tests and tools that never restart)."""
    return SecretBox(Fernet.generate_key())
