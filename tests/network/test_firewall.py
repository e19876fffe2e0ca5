"""Courtyard's own firewall against a live server: CIDR lists, trusted proxies, surfaces and
roles, over HTTP and the event socket."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.support import DatabaseFactory, Org, org_context

OUTSIDE = "198.51.100.7"
INTRANET = "10.1.2.3"
BANNED = "203.0.113.9"


def firewall(**fields: Any) -> dict[str, Any]:
    """A [firewall] section trusting the loopback test client as a proxy."""
    return {"trusted_proxies": ["127.0.0.1/32"], "reload_poll_seconds": 0, **fields}


@pytest.fixture
async def walled_org(
    request: pytest.FixtureRequest, databases: DatabaseFactory, workdir: Path
) -> AsyncIterator[Org]:
    async with org_context(databases, workdir, firewall=request.param) as org:
        yield org


def via(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


def assert_refused(response: httpx.Response) -> None:
    assert response.status_code == 403, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "network_not_allowed"
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    "walled_org", [firewall(deny=["203.0.113.0/24", "2001:db8:bad::/48"])], indirect=True
)
async def test_denied_network_is_refused_before_authentication(walled_org: Org) -> None:
    anon = walled_org.anonymous()
    assert_refused(await anon.get("/healthz", headers=via(BANNED)))
    assert_refused(await anon.post("/api/v1/auth/sign-in", json={}, headers=via(BANNED)))
    assert_refused(await anon.get("/no/such/page", headers=via(BANNED)))
    assert_refused(
        await anon.get("/api/v1/me", headers={"Forwarded": 'for="[2001:db8:bad::1]:4711"'})
    )
    assert (await anon.get("/healthz", headers=via(OUTSIDE))).status_code == 200
    owner = walled_org.owner
    assert_refused(await owner.get("/api/v1/me", headers=via(BANNED)))
    assert (await owner.get("/api/v1/me", headers=via("2001:db8:600d::1"))).status_code == 200


@pytest.mark.parametrize("walled_org", [{"deny": ["203.0.113.0/24"]}], indirect=True)
async def test_forwarded_headers_are_ignored_when_the_peer_is_not_a_trusted_proxy(
    walled_org: Org,
) -> None:
    response = await walled_org.owner.get("/api/v1/me", headers=via(BANNED))
    assert response.status_code == 200


@pytest.mark.parametrize(
    "walled_org",
    [
        firewall(
            allow=["10.0.0.0/8", "127.0.0.0/8"], trusted_proxies=["127.0.0.1/32", "172.16.0.0/12"]
        )
    ],
    indirect=True,
)
async def test_client_is_the_rightmost_untrusted_hop(walled_org: Org) -> None:
    owner = walled_org.owner
    # A client outside prepends an intranet address; the proxy appends the real one.
    assert_refused(await owner.get("/api/v1/me", headers=via(f"{INTRANET}, {OUTSIDE}")))
    # Through two proxies of ours: the hop before them is the client.
    ok = await owner.get("/api/v1/me", headers=via(f"{OUTSIDE}, {INTRANET}, 172.16.0.5"))
    assert ok.status_code == 200, ok.text
    # Garbage where the trusted chain ends: unknown client, refused when an allow list exists.
    assert_refused(await owner.get("/api/v1/me", headers=via("not-an-address")))


@pytest.mark.parametrize(
    "walled_org",
    [firewall(rules=[{"name": "admin-intranet", "surfaces": ["admin"], "allow": ["10.0.0.0/8"]}])],
    indirect=True,
)
async def test_admin_surface_only_from_the_intranet(walled_org: Org) -> None:
    owner = walled_org.owner
    new_user = {"username": "fw-user", "password": "correct horse battery staple"}
    refused = await owner.post("/api/v1/users", new_user, headers=via(OUTSIDE))
    assert_refused(refused)
    assert "admin-intranet" in refused.json()["detail"]
    listed = await owner.get("/api/v1/users", headers=via(INTRANET))
    assert all(u["username"] != "fw-user" for u in listed.json()["users"])  # nothing stored
    created = await owner.post("/api/v1/users", new_user, headers=via(INTRANET))
    assert created.status_code == 201, created.text
    # The rest of the API stays reachable from outside.
    assert (await owner.get("/api/v1/me", headers=via(OUTSIDE))).status_code == 200


@pytest.mark.parametrize(
    "walled_org",
    [
        firewall(
            rules=[
                {
                    "name": "staff-intranet",
                    "roles": ["owner", "admin"],
                    "allow": ["10.0.0.0/8", "127.0.0.0/8"],
                }
            ]
        )
    ],
    indirect=True,
)
async def test_role_rules_apply_after_authentication(walled_org: Org) -> None:
    owner = walled_org.owner
    member = await walled_org.person("member")
    guest = await walled_org.person("guest", role="guest")
    refused = await owner.get("/api/v1/me", headers=via(OUTSIDE))
    assert_refused(refused)
    assert "staff-intranet" in refused.json()["detail"]
    assert (await owner.get("/api/v1/me", headers=via(INTRANET))).status_code == 200
    assert (await member.get("/api/v1/me", headers=via(OUTSIDE))).status_code == 200
    assert (await guest.get("/api/v1/me", headers=via(OUTSIDE))).status_code == 200
    # The event socket: the owner's handshake is refused from outside, a member's accepted.
    url = walled_org.server.ws_url
    with pytest.raises(websockets.InvalidStatus) as info:
        await websockets.connect(
            url, additional_headers={"Authorization": f"Bearer {owner.token}", **via(OUTSIDE)}
        )
    assert info.value.response.status_code == 403
    ws = await websockets.connect(
        url, additional_headers={"Authorization": f"Bearer {member.token}", **via(OUTSIDE)}
    )
    await ws.close()
    # Authenticating with the first frame instead: the socket is closed with 1008.
    ws = await websockets.connect(url, additional_headers=via(OUTSIDE))
    await ws.send(json.dumps({"type": "auth", "token": owner.token}))
    await asyncio.wait_for(ws.wait_closed(), 10)
    assert ws.close_code == 1008
    assert "staff-intranet" in (ws.close_reason or "")


@pytest.mark.parametrize(
    "walled_org",
    [
        firewall(
            rules=[
                {"name": "tokens-intranet", "surfaces": ["tokens"], "allow": ["10.0.0.0/8"]},
                {"name": "no-socket-from-banned", "surfaces": ["events"], "deny": [BANNED]},
            ]
        )
    ],
    indirect=True,
)
async def test_personal_tokens_and_the_event_socket_as_surfaces(walled_org: Org) -> None:
    owner = walled_org.owner
    made = await owner.post(
        "/api/v1/auth/tokens", {"name": "ci", "scopes": ["read"]}, headers=via(INTRANET)
    )
    assert made.status_code == 201, made.text
    token = made.json()["secret"]
    async with httpx.AsyncClient(base_url=walled_org.server.url) as client:
        bearer = {"Authorization": f"Bearer {token}"}
        assert_refused(await client.get("/api/v1/me", headers={**bearer, **via(OUTSIDE)}))
        ok = await client.get("/api/v1/me", headers={**bearer, **via(INTRANET)})
        assert ok.status_code == 200
    # A session token is not a personal token: allowed from outside.
    assert (await owner.get("/api/v1/me", headers=via(OUTSIDE))).status_code == 200
    with pytest.raises(websockets.InvalidStatus) as info:
        await websockets.connect(
            walled_org.server.ws_url,
            additional_headers={"Authorization": f"Bearer {owner.token}", **via(BANNED)},
        )
    assert info.value.response.status_code == 403
    # The socket from elsewhere is fine, and the HTTP API from the banned address too.
    ws = await websockets.connect(
        walled_org.server.ws_url,
        additional_headers={"Authorization": f"Bearer {owner.token}", **via(OUTSIDE)},
    )
    await ws.close()
    assert (await owner.get("/api/v1/me", headers=via(BANNED))).status_code == 200
