"""argon2id password hashing, and upgrading stored hashes when the parameters change."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from courtyard.app import build_services
from courtyard.auth.passwords import Argon2Parameters, PasswordHashing
from courtyard.domain.errors import Unauthenticated
from courtyard.services.accounts import NewAccount
from courtyard.services.registry import Services
from courtyard.services.sessions import ClientInfo
from courtyard.storage.repositories.users import UserRecord
from tests.support import PASSWORD, DatabaseFactory, server_settings, unique

CHEAP = Argon2Parameters(time_cost=1, memory_cost_kib=64, parallelism=1)
STRONGER = Argon2Parameters(time_cost=2, memory_cost_kib=128, parallelism=2)
# The decoy is in the (public) source: it must never open an account.
DECOY_PASSWORD = "courtyard-decoy-password"


# --- helpers ----------------------------------------------------------------------------------
@asynccontextmanager
async def service_stack(
    database_url: str, workdir: Path, **accounts: Any
) -> AsyncIterator[Services]:
    """Every service over ``database_url``, with argon2 settings overridden by ``accounts``."""
    services = build_services(server_settings(database_url, workdir, accounts=accounts))
    try:
        yield services
    finally:
        await services.context.storage.database.dispose()


async def stored(services: Services, user_id: int) -> UserRecord:
    """The user row as stored, password hash included."""
    async with services.context.storage.snapshot() as uow:
        record = await uow.users.get(user_id)
    assert record is not None
    return record


# --- PasswordHashing --------------------------------------------------------------------------
async def test_hash_is_salted_argon2id_with_the_configured_parameters() -> None:
    hashing = PasswordHashing(CHEAP)
    first = await hashing.hash(PASSWORD)
    second = await hashing.hash(PASSWORD)
    assert first.startswith("$argon2id$")
    assert "m=64,t=1,p=1" in first
    assert first != second, "each hash has its own salt"
    assert PASSWORD not in first


async def test_verify_accepts_the_right_password_and_only_it() -> None:
    hashing = PasswordHashing(CHEAP)
    stored_hash = await hashing.hash(PASSWORD)
    assert await hashing.verify(stored_hash, PASSWORD) is True
    for wrong in ("", PASSWORD.upper(), PASSWORD + " ", " " + PASSWORD, PASSWORD[:-1]):
        assert await hashing.verify(stored_hash, wrong) is False, repr(wrong)


async def test_verify_compares_passwords_exactly_without_normalising() -> None:
    hashing = PasswordHashing(CHEAP)
    composed = "caf\u00e9 au lait, s'il vous pla\u00eet"
    decomposed = "cafe\u0301 au lait, s'il vous pla\u00eet"
    stored_hash = await hashing.hash(composed)
    assert await hashing.verify(stored_hash, composed) is True
    assert await hashing.verify(stored_hash, decomposed) is False


async def test_verify_is_false_when_there_is_no_hash_even_for_the_decoy_password() -> None:
    hashing = PasswordHashing(CHEAP)
    for password in (PASSWORD, "", DECOY_PASSWORD):
        assert await hashing.verify(None, password) is False


async def test_verify_is_false_when_the_stored_hash_is_empty() -> None:
    hashing = PasswordHashing(CHEAP)
    for password in (PASSWORD, "", DECOY_PASSWORD):
        assert await hashing.verify("", password) is False, repr(password)


async def test_verify_is_false_when_the_stored_hash_is_garbage() -> None:
    hashing = PasswordHashing(CHEAP)
    for garbage in ("not a hash", "$argon2id$v=19$m=64,t=1,p=1$broken", "$2b$12$bcryptish"):
        assert await hashing.verify(garbage, PASSWORD) is False


async def test_verify_accepts_hashes_made_with_other_parameters() -> None:
    old = await PasswordHashing(CHEAP).hash(PASSWORD)
    assert await PasswordHashing(STRONGER).verify(old, PASSWORD) is True


@pytest.mark.parametrize(
    "changed",
    [
        Argon2Parameters(time_cost=2, memory_cost_kib=64, parallelism=1),
        Argon2Parameters(time_cost=1, memory_cost_kib=128, parallelism=1),
        Argon2Parameters(time_cost=1, memory_cost_kib=64, parallelism=2),
    ],
    ids=["time_cost", "memory", "parallelism"],
)
async def test_needs_rehash_when_any_parameter_changes(changed: Argon2Parameters) -> None:
    stored_hash = await PasswordHashing(CHEAP).hash(PASSWORD)
    assert PasswordHashing(CHEAP).needs_rehash(stored_hash) is False
    assert PasswordHashing(changed).needs_rehash(stored_hash) is True


def test_needs_rehash_when_the_stored_hash_is_not_argon2() -> None:
    assert PasswordHashing(CHEAP).needs_rehash("not a hash") is True


# --- rehashing at sign-in ---------------------------------------------------------------------
async def test_sign_in_rehashes_the_stored_hash_when_argon2_parameters_change(
    databases: DatabaseFactory, workdir: Path
) -> None:
    url = await databases.create()
    username = unique("rehash")
    cheap = {"argon2_time_cost": 1, "argon2_memory_kib": 64, "argon2_parallelism": 1}
    stronger = {"argon2_time_cost": 2, "argon2_memory_kib": 128, "argon2_parallelism": 2}
    async with service_stack(url, workdir, **cheap) as before:
        user_id = await before.setup.create_owner("Acme", NewAccount(username, PASSWORD))
        original = await stored(before, user_id)
        assert original.password_hash is not None
        assert "m=64,t=1,p=1" in original.password_hash
        # Same parameters: signing in leaves the hash alone.
        await before.sessions.sign_in(username, PASSWORD, ClientInfo())
        assert (await stored(before, user_id)).password_hash == original.password_hash

    async with service_stack(url, workdir, **stronger) as after:
        # A wrong password upgrades nothing.
        with pytest.raises(Unauthenticated):
            await after.sessions.sign_in(username, "a wrong password entirely", ClientInfo())
        assert (await stored(after, user_id)).password_hash == original.password_hash

        signed_in = await after.sessions.sign_in(username.upper(), PASSWORD, ClientInfo())
        assert signed_in.user.id == user_id
        upgraded = await stored(after, user_id)
        assert upgraded.password_hash is not None
        assert "m=128,t=2,p=2" in upgraded.password_hash
        assert after.context.passwords.needs_rehash(upgraded.password_hash) is False
        # A rehash is not a credential change: sessions and tokens stay valid.
        assert upgraded.credentials_changed_at == original.credentials_changed_at
        actor = await after.sessions.authenticate(signed_in.secret)
        assert actor.user_id == user_id

        # The upgraded hash still verifies the same password, and only it.
        again = await after.sessions.sign_in(username, PASSWORD, ClientInfo())
        assert again.user.id == user_id
        assert (await stored(after, user_id)).password_hash == upgraded.password_hash


async def test_sign_in_is_refused_when_the_stored_hash_is_empty(
    databases: DatabaseFactory, workdir: Path
) -> None:
    url = await databases.create()
    username = unique("empty")
    async with service_stack(url, workdir) as services:
        user_id = await services.setup.create_owner("Acme", NewAccount(username, PASSWORD))
        async with services.context.storage.transaction() as uow:
            await uow.users.rehash_password(user_id, "")
        for password in (DECOY_PASSWORD, PASSWORD, ""):
            with pytest.raises(Unauthenticated) as refused:
                await services.sessions.sign_in(username, password, ClientInfo())
            assert refused.value.code == "invalid_credentials"
