"""Security headers on every response; the event socket's per-user frame limit; firewall
reloads and rate-limit refusals in the audit log."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.realtime.client import EventClient
from tests.support import DatabaseFactory, Org, Person, org_context

REQUIRED = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


def assert_secure_headers(response: httpx.Response) -> None:
    for name, value in REQUIRED.items():
        assert response.headers.get(name) == value, (response.url, name)
    assert "camera=()" in response.headers["permissions-policy"]
    policy = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy or "sandbox" in policy, policy
    script_src = next(
        (d for d in policy.split(";") if d.strip().startswith(("script-src", "default-src"))), ""
    )
    assert "'unsafe-inline'" not in script_src, policy
    # Plain HTTP: no HSTS (it is only meaningful, and only sent, over TLS).
    assert "strict-transport-security" not in response.headers


async def test_every_kind_of_response_carries_the_security_headers(org: Org, alice: Person) -> None:
    anon = org.anonymous()
    responses = [
        await anon.get("/healthz"),
        await anon.get("/no/such/page"),
        await anon.get("/api/v1/no-such-endpoint"),
        await anon.get("/api/v1/me"),  # 401
        await anon.post(
            "/api/v1/auth/sign-in",
            content=b"{not json",
            headers={"content-type": "application/json"},
        ),
        await anon.get("/api/v1/channels%00"),  # refused at the edge
        await alice.get("/api/v1/me"),
        await alice.delete("/api/v1/me"),  # 405
    ]
    upload = await alice.client.post(
        "/api/v1/files", files={"file": ("note.html", b"<script>alert(1)</script>", "text/html")}
    )
    assert upload.status_code == 201, upload.text
    download = await alice.get(f"/api/v1/files/{upload.json()['id']}/content")
    assert download.status_code == 200
    responses += [upload, download]
    for response in responses:
        assert_secure_headers(response)
    # A route's own policy is kept: the download's sandbox is not replaced by the default.
    assert "sandbox" in download.headers["content-security-policy"]
    assert "default-src 'none'" in (await anon.get("/healthz")).headers["content-security-policy"]


async def test_the_api_docs_page_allows_its_inline_script_by_hash_only(org: Org) -> None:
    page = await org.anonymous().get("/api/v1/docs")
    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    script_src = next(d for d in policy.split(";") if d.strip().startswith("script-src"))
    assert "'sha256-" in script_src
    assert "unsafe-inline" not in script_src
    assert int(page.headers["content-length"]) == len(page.content)


async def reply(client: EventClient) -> str:
    """The type of the next pong or error frame (skipping presence and the like)."""
    frames = await client.until(lambda fs: bool(fs) and fs[-1]["type"] in ("pong", "error"))
    return str(frames[-1]["type"])


def limited(**rate_limits: Any) -> dict[str, Any]:
    return {"rate_limits": {"exempt": [], "backend": "memory", **rate_limits}}


@pytest.fixture
async def limited_org(
    request: pytest.FixtureRequest, databases: DatabaseFactory, workdir: Path
) -> AsyncIterator[Org]:
    async with org_context(databases, workdir, **request.param) as org:
        yield org


@pytest.mark.parametrize(
    "limited_org", [limited(frames_burst=10, frames_per_second=0.01)], indirect=True
)
async def test_socket_messages_are_limited_per_user_over_all_sockets(limited_org: Org) -> None:
    alice = await limited_org.person("alice")
    bob = await limited_org.person("bob")
    url = limited_org.server.ws_url
    first = await EventClient.connect(url, alice.token)
    second = await EventClient.connect(url, alice.token)
    other = await EventClient.connect(url, bob.token)
    try:
        replies = []
        for client in (first, second, first, second, first, second):
            for _ in range(2):
                await client.send({"type": "ping"})
                replies.append(await reply(client))
        # Ten for alice in all (each socket alone is far below its own limit), then refusals.
        assert replies == ["pong"] * 10 + ["error"] * 2
        await other.send({"type": "ping"})
        assert await reply(other) == "pong"
    finally:
        for client in (first, second, other):
            await client.close()


@pytest.mark.parametrize(
    "limited_org",
    [
        {
            **limited(auth_burst=5, auth_per_second=0.01),
            "firewall": {"trusted_proxies": ["127.0.0.1/32"], "reload_poll_seconds": 0},
        }
    ],
    indirect=True,
)
async def test_reloads_and_rate_limit_refusals_are_audited(limited_org: Org) -> None:
    application = limited_org.server.application
    assert application is not None
    anon = limited_org.anonymous()
    attempt = {"login": "nobody", "password": "wrong password here"}
    statuses = [
        (
            await anon.post(
                "/api/v1/auth/sign-in", json=attempt, headers={"X-Forwarded-For": "198.51.100.9"}
            )
        ).status_code
        for _ in range(6)
    ]
    assert statuses[-1] == 429
    await application.limits.flush_summary()
    # (In this in-process server the reload reads the environment only: done last.)
    await application.reload("test")
    owner = limited_org.owner
    reloads = (
        await owner.get("/api/v1/admin/audit", params={"action": "firewall.reloaded"})
    ).json()
    [entry] = reloads["entries"]
    assert entry["outcome"] == "success"
    assert entry["details"]["reason"] == "test"
    assert entry["actor_id"] is None
    refused = (
        await owner.get("/api/v1/admin/audit", params={"action": "rate_limit.refused"})
    ).json()
    [summary] = refused["entries"]
    assert summary["outcome"] == "denied"
    assert summary["details"]["refused:auth/address"] == 1
