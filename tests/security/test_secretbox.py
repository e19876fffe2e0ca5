"""The key that encrypts TOTP secrets at rest: created once, shared, never half-written."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from courtyard.auth.secretbox import SecretBox, SecretBoxError, load_or_create_key


def test_the_key_is_created_private_and_then_reused(tmp_path: Path) -> None:
    path = tmp_path / "data" / "secret.key"
    key = load_or_create_key(path)
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert load_or_create_key(path) == key
    assert [p.name for p in path.parent.iterdir()] == ["secret.key"], "no temporary files left"


def test_workers_starting_together_agree_on_one_key(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    with ThreadPoolExecutor(max_workers=8) as pool:
        keys = set(pool.map(lambda _: load_or_create_key(path), range(32)))
    assert len(keys) == 1


def test_a_damaged_key_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    path.write_text("not a key\n")
    with pytest.raises(ValueError, match=r"secret\.key"):
        load_or_create_key(path)


def test_a_secret_sealed_under_another_key_does_not_open(tmp_path: Path) -> None:
    sealed = SecretBox(load_or_create_key(tmp_path / "a.key")).seal("JBSWY3DPEHPK3PXP")
    assert "JBSWY3DPEHPK3PXP" not in sealed
    with pytest.raises(SecretBoxError):
        SecretBox(load_or_create_key(tmp_path / "b.key")).open(sealed)
