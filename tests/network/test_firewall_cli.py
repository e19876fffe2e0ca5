"""`courtyard firewall test|show` as a subprocess: verdicts, rules and exit codes."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.processes import COURTYARD

RULES = """
[firewall]
deny = ["203.0.113.0/24"]

[[firewall.rules]]
name = "admin-intranet"
surfaces = ["admin"]
allow = ["10.0.0.0/8", "fd00::/8"]

[[firewall.rules]]
name = "staff-intranet"
roles = ["owner", "admin"]
allow = ["10.0.0.0/8"]
"""


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fwcli") / "courtyard.toml"
    path.write_text(RULES)
    return path


def firewall(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COURTYARD_")}
    return subprocess.run(
        [COURTYARD, "firewall", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "code", "rule"),
    [
        (["203.0.113.9"], 1, "global"),
        (["198.51.100.1", "--role", "admin"], 1, "staff-intranet"),
        (["198.51.100.1", "--role", "guest"], 0, None),
        (["198.51.100.1", "--surface", "admin"], 1, "admin-intranet"),
        (["10.0.0.1", "--role", "admin", "--surface", "admin"], 0, None),
        (["fd00::1", "--surface", "admin"], 0, None),
        (["::ffff:203.0.113.9"], 1, "global"),
    ],
)
def test_firewall_test_prints_the_verdict_and_the_rule(
    config: Path, args: list[str], code: int, rule: str | None
) -> None:
    result = firewall(config, "test", *args)
    assert result.returncode == code, result.stdout + result.stderr
    if code == 0:
        assert result.stdout.startswith("allowed:")
    else:
        assert result.stdout.startswith("denied:")
        assert f"rule: {rule}" in result.stdout


@pytest.mark.parametrize(
    "args",
    [["not-an-ip"], ["10.0.0.1", "--role", "boss"], ["10.0.0.1", "--surface", "moon"]],
)
def test_firewall_test_exits_2_on_bad_input(config: Path, args: list[str]) -> None:
    result = firewall(config, "test", *args)
    assert result.returncode == 2
    assert "error:" in result.stderr


def test_firewall_show_lists_every_rule(config: Path) -> None:
    result = firewall(config, "show")
    assert result.returncode == 0, result.stderr
    assert "deny=203.0.113.0/24" in result.stdout
    assert "admin-intranet  surfaces=admin  allow=10.0.0.0/8,fd00::/8" in result.stdout
    assert "staff-intranet  roles=admin,owner" in result.stdout


def test_a_bad_cidr_in_the_file_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[firewall]\nallow = ["10.0.0.0/33"]\n')
    result = firewall(bad, "show")
    assert result.returncode == 2
    assert "firewall.allow" in result.stderr
