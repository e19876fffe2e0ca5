"""Password hashing with argon2id (argon2-cffi), rehashing when parameters change."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from argon2 import PasswordHasher, extract_parameters
from argon2.exceptions import InvalidHashError, VerificationError


@dataclass(frozen=True, slots=True)
class Argon2Parameters:
    """Cost parameters; raising them upgrades stored hashes at each user's next sign-in."""

    time_cost: int = 3
    memory_cost_kib: int = 65536
    parallelism: int = 4


class PasswordHashing:
    """Hash and verify passwords off the event loop (argon2 is deliberately slow)."""

    def __init__(self, parameters: Argon2Parameters | None = None) -> None:
        params = parameters or Argon2Parameters()
        self._params = params
        self._hasher = PasswordHasher(
            time_cost=params.time_cost,
            memory_cost=params.memory_cost_kib,
            parallelism=params.parallelism,
        )
        # A real hash to verify against when the account does not exist, so that a sign-in
        # for an unknown name costs the same time as one with a wrong password.
        self._decoy = self._hasher.hash("courtyard-decoy-password")

    async def hash(self, password: str) -> str:
        """A new argon2id hash of ``password``."""
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        """Whether ``password`` matches; a missing hash is checked against a decoy."""
        target = stored_hash or self._decoy
        try:
            ok = await asyncio.to_thread(self._hasher.verify, target, password)
        except (VerificationError, InvalidHashError):
            return False
        return bool(ok) and bool(stored_hash)

    def needs_rehash(self, stored_hash: str) -> bool:
        """Whether the hash is weaker than today's parameters (never downgrades a stronger one).

        Upgrading only keeps nodes with different settings, e.g. during a rolling upgrade, from
        rewriting each other's hashes back and forth.
        """
        try:
            used = extract_parameters(stored_hash)
        except InvalidHashError:
            return True
        wanted = self._params
        return (
            used.type.name != "ID"
            or used.time_cost < wanted.time_cost
            or used.memory_cost < wanted.memory_cost_kib
            or used.parallelism < wanted.parallelism
        )
