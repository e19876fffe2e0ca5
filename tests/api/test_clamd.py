"""Virus scanning against a real clamd (Debian's clamav-daemon) with a tiny signature file.

The module starts its own clamd on a socket in a temporary directory (unless
``COURTYARD_TEST_CLAMD_SOCKET`` names one that answers) and stops exactly that process at
the end. Without clamd installed these tests skip, except in CI, where they fail
(``make clamd`` installs it).
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import tempfile
import time
import zipfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.api.files_support import EICAR, upload, upload_ok
from tests.support import DatabaseFactory, Org, org_context, service_missing

SIGNATURES = Path(__file__).resolve().parents[1] / "clamav"


def _clamd_binary() -> str | None:
    return shutil.which("clamd") or (
        "/usr/sbin/clamd" if os.path.exists("/usr/sbin/clamd") else None
    )


def _answers(socket_path: str) -> bool:
    """A synchronous PING (fixtures here run outside the event loop)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(2)
            sock.connect(socket_path)
            sock.sendall(b"zPING\0")
            return sock.recv(16).rstrip(b"\0") == b"PONG"
    except OSError:
        return False


@pytest.fixture(scope="module")
def clamd_socket() -> Iterator[str]:
    """A clamd socket: the configured one if it answers, else one this fixture starts."""
    given = os.environ.get("COURTYARD_TEST_CLAMD_SOCKET")
    if given and _answers(given):
        yield given
        return
    binary = _clamd_binary()
    if binary is None:
        service_missing("clamd (install it with `make clamd`)")
    workdir = Path(tempfile.mkdtemp(prefix="cy-clamd-"))
    socket_path = workdir / "clamd.sock"
    config = workdir / "clamd.conf"
    config.write_text(
        f"LocalSocket {socket_path}\n"
        f"DatabaseDirectory {SIGNATURES}\n"
        "Foreground yes\n"
        f"LogFile {workdir / 'clamd.log'}\n"
        "StreamMaxLength 200M\n"
        "Bytecode no\n"
    )
    process = subprocess.Popen(
        [str(binary), f"--config-file={config}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(300):
            if process.poll() is not None:
                break
            if socket_path.exists() and _answers(str(socket_path)):
                break
            time.sleep(0.1)
        else:
            service_missing("clamd (did not answer within 30 s)")
        if process.poll() is not None:
            log = (workdir / "clamd.log").read_text(errors="replace")[-2000:]
            service_missing(f"clamd (exited at start-up: {log})")
        yield str(socket_path)
    finally:
        if process.poll() is None:
            process.terminate()  # exactly the process this fixture started
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
async def scanned_org(
    databases: DatabaseFactory, workdir: Path, clamd_socket: str
) -> AsyncIterator[Org]:
    """An organisation whose uploads are scanned by the real clamd."""
    async with org_context(databases, workdir, files={"clamd_socket": clamd_socket}) as own:
        yield own


async def test_eicar_is_refused_with_a_clear_error_and_an_audit_entry(scanned_org: Org) -> None:
    person = await scanned_org.person("scanned")
    scratch = scanned_org.server.services.files.rules.scratch_dir
    response = await upload(person, EICAR, "eicar.com")
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "infected_file"
    assert "Eicar-Test-Signature" in body["detail"]
    listed = await scanned_org.owner.get(
        "/api/v1/admin/audit", params={"action": "file.infected_refused", "actor": person.id}
    )
    entries = listed.json()["entries"]
    assert len(entries) == 1
    assert entries[0]["outcome"] == "denied"
    assert "Eicar-Test-Signature" in entries[0]["details"]["signature"]
    assert len(entries[0]["details"]["sha256"]) == 64
    assert "eicar.com" not in listed.text, "file names are personal data: not recorded"
    assert not [p for p in scratch.glob("*") if p.is_file()], "nothing left in scratch"


async def test_eicar_inside_a_zip_is_refused_too(scanned_org: Org) -> None:
    person = await scanned_org.person("zipper")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("docs/readme.txt", b"hello")
        zipped.writestr("docs/eicar.com", EICAR)
    response = await upload(person, archive.getvalue(), "docs.zip")
    assert response.status_code == 422
    assert response.json()["code"] == "infected_file"


async def test_clean_files_pass_the_scanner(scanned_org: Org) -> None:
    person = await scanned_org.person("clean")
    info = await upload_ok(person, b"just a harmless text\n" * 100, "notes.txt")
    download = await person.get(f"/api/v1/files/{info['id']}/content")
    assert download.status_code == 200


async def test_uploads_fail_closed_when_clamd_is_down(
    databases: DatabaseFactory, workdir: Path
) -> None:
    missing = str(workdir / "no-such-clamd.sock")
    async with org_context(databases, workdir, files={"clamd_socket": missing}) as org:
        person = await org.person("unscanned")
        response = await upload(person, b"anything", "a.txt")
        assert response.status_code == 503
        assert response.json()["code"] == "scanner_unavailable"
