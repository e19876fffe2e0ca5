"""Property-based fuzzing of the whole HTTP API against a real server process.

schemathesis generates requests from the OpenAPI document (valid and invalid ones) and checks
that the server never answers 5xx and that every response matches the documented status
codes, content types and schemas.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.processes import ServerProcess
from tests.support import PASSWORD, DatabaseFactory

SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")


@pytest.fixture
async def fuzz_target(
    databases: DatabaseFactory, workdir: Path
) -> Iterator[tuple[ServerProcess, str]]:
    url = await databases.create()
    server = ServerProcess(url, workdir / "fuzz")
    server.start()
    try:
        token = server.setup_token()
        assert token, server.log()
        with httpx.Client(base_url=server.url) as client:
            owner = client.post(
                "/api/v1/setup",
                json={
                    "setup_token": token,
                    "organization_name": "Fuzz",
                    "username": "owner",
                    "password": PASSWORD,
                    "session_type": "token",
                },
            ).json()["token"]
            auth = {"Authorization": f"Bearer {owner}"}
            # A token that survives sign-out attempts, and some data for ids to point at.
            pat = client.post(
                "/api/v1/auth/tokens",
                headers=auth,
                json={"name": "fuzz", "scopes": ["read", "write", "admin"]},
            ).json()["secret"]
            channel = client.post("/api/v1/channels", headers=auth, json={"name": "general"}).json()
            client.post(
                f"/api/v1/channels/{channel['id']}/messages", headers=auth, json={"text": "hi"}
            )
            client.post(
                "/api/v1/users", headers=auth, json={"username": "bob", "password": PASSWORD}
            )
        yield server, pat
    finally:
        server.stop()


@pytest.mark.slow
async def test_api_never_errors_and_matches_its_openapi_document(
    fuzz_target: tuple[ServerProcess, str],
) -> None:
    server, pat = fuzz_target
    result = subprocess.run(
        [
            SCHEMATHESIS,
            "run",
            f"{server.url}/api/v1/openapi.json",
            "-H",
            f"Authorization: Bearer {pat}",
            "--checks",
            "not_a_server_error,response_schema_conformance,"
            "status_code_conformance,content_type_conformance",
            # Revoking the fuzzer's own token would turn the rest of the run into 401s.
            "--exclude-path-regex",
            r"tokens/\{",
            "--max-examples",
            "25",
            "--workers",
            "1",
            "--seed",
            "20261127",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    report = result.stdout[-6000:] + result.stderr[-2000:]
    assert result.returncode == 0, report
    assert "Server error" not in result.stdout
    log = server.log()
    assert "Traceback" not in log, log
    assert "unhandled error" not in log, log
