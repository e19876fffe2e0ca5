"""Rate limits: token buckets in memory and in real Redis, at a live server, and shared by two
real server processes through Redis."""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from courtyard.domain.network import Limit
from courtyard.realtime.backends.redis_limiter import RedisBuckets
from courtyard.services.ratelimit import MemoryBuckets, RateLimits
from tests.processes import ServerProcess, free_port
from tests.support import DatabaseFactory, Org, org_context, service_missing

REDIS_URL = "redis://127.0.0.1:6379/0"
OUTSIDE = "198.51.100.7"


async def _redis_or_skip() -> aioredis.Redis:
    client = aioredis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        await client.ping()
    except Exception:
        await client.aclose()
        service_missing("Redis at 127.0.0.1:6379")
    return client


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    """A unique key prefix, deleted afterwards."""
    client = await _redis_or_skip()
    prefix = f"courtyard-test:{secrets.token_hex(6)}:"
    try:
        yield prefix
    finally:
        keys = [k async for k in client.scan_iter(match=prefix + "*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@pytest.fixture(params=["memory", "redis"])
async def buckets(request: pytest.FixtureRequest, redis_prefix: str) -> AsyncIterator[Any]:
    store: Any = (
        MemoryBuckets() if request.param == "memory" else RedisBuckets(REDIS_URL, redis_prefix)
    )
    await store.start()
    yield store
    await store.stop()


async def test_a_bucket_allows_its_burst_then_says_how_long_to_wait(buckets: Any) -> None:
    limit = Limit(rate=0.5, burst=3)
    waits = [await buckets.take("user:writes:1", limit) for _ in range(4)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert 1.0 < waits[3] <= 2.0  # one token at 0.5/s
    # Another key has its own bucket.
    assert await buckets.take("user:writes:2", limit) == 0.0


async def test_a_bucket_refills_at_its_rate(buckets: Any) -> None:
    limit = Limit(rate=50.0, burst=1)
    assert await buckets.take("ip:reads:x", limit) == 0.0
    wait = await buckets.take("ip:reads:x", limit)
    assert 0.0 < wait <= 0.02
    await asyncio.sleep(wait + 0.01)  # the bucket's own answer, not a guess
    assert await buckets.take("ip:reads:x", limit) == 0.0


async def test_redis_buckets_expire_once_full_again(redis_prefix: str) -> None:
    store = RedisBuckets(REDIS_URL, redis_prefix)
    await store.start()
    client = await _redis_or_skip()
    try:
        await store.take("ip:auth:1.2.3.4", Limit(rate=1.0, burst=5))
        ttl = await client.pttl(redis_prefix + "ip:auth:1.2.3.4")
        assert 0 < ttl <= 2100  # refilled in 1 s, plus a second's margin
    finally:
        await store.stop()
        await client.aclose()


def limited(**fields: Any) -> dict[str, Any]:
    """Small limits for clients behind the (trusted, exempt) loopback proxy."""
    return {
        "firewall": {"trusted_proxies": ["127.0.0.1/32"], "reload_poll_seconds": 0},
        "rate_limits": {"exempt": ["127.0.0.0/8"], "backend": "memory", **fields},
    }


@pytest.fixture
async def limited_org(
    request: pytest.FixtureRequest, databases: DatabaseFactory, workdir: Path
) -> AsyncIterator[Org]:
    async with org_context(databases, workdir, **request.param) as org:
        yield org


def via(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


def assert_limited(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "rate_limited"
    assert int(response.headers["retry-after"]) >= 1


@pytest.mark.parametrize(
    "limited_org", [limited(auth_burst=3, auth_per_second=0.01)], indirect=True
)
async def test_sign_in_attempts_are_limited_per_address(limited_org: Org) -> None:
    anon = limited_org.anonymous()
    attempt = {"login": "nobody", "password": "wrong password here", "session_type": "token"}
    for _ in range(3):
        response = await anon.post("/api/v1/auth/sign-in", json=attempt, headers=via(OUTSIDE))
        assert response.status_code == 401, response.text
    assert_limited(await anon.post("/api/v1/auth/sign-in", json=attempt, headers=via(OUTSIDE)))
    other = await anon.post("/api/v1/auth/sign-in", json=attempt, headers=via("198.51.100.8"))
    assert other.status_code == 401


@pytest.mark.parametrize(
    "limited_org",
    [limited(reads_burst=5, reads_per_second=0.01, writes_burst=2, writes_per_second=0.01)],
    indirect=True,
)
async def test_reads_and_writes_are_limited_per_user(limited_org: Org) -> None:
    alice = await limited_org.person("alice")
    bob = await limited_org.person("bob")
    for _ in range(5):
        assert (await alice.get("/api/v1/me", headers=via(OUTSIDE))).status_code == 200
    assert_limited(await alice.get("/api/v1/me", headers=via(OUTSIDE)))
    # Bob, behind the same address, has his own bucket.
    assert (await bob.get("/api/v1/me", headers=via(OUTSIDE))).status_code == 200
    # Writes are a class of their own: alice's reads are spent, her writes are not.
    for n in range(2):
        made = await alice.post(
            "/api/v1/channels", {"name": f"rl-{n}-{secrets.token_hex(3)}"}, headers=via(OUTSIDE)
        )
        assert made.status_code == 201, made.text
    refused = await alice.post("/api/v1/channels", {"name": "rl-refused"}, headers=via(OUTSIDE))
    assert_limited(refused)
    mine = await alice.get("/api/v1/channels", headers=via("127.0.0.1"))  # exempt: nothing stored
    assert mine.status_code == 200
    assert "rl-refused" not in mine.text


@pytest.mark.parametrize(
    "limited_org", [limited(reads_ip_burst=4, reads_ip_per_second=0.01)], indirect=True
)
async def test_an_address_is_limited_over_all_its_users(limited_org: Org) -> None:
    people = [await limited_org.person(f"p{n}") for n in range(5)]
    statuses = [
        (await person.get("/api/v1/me", headers=via(OUTSIDE))).status_code for person in people
    ]
    assert statuses == [200, 200, 200, 200, 429]


async def test_two_server_processes_share_one_limit_through_redis(
    databases: DatabaseFactory, workdir: Path, redis_prefix: str
) -> None:
    url = await databases.create()
    env = {
        "COURTYARD_RATE_LIMITS__BACKEND": "redis",
        "COURTYARD_RATE_LIMITS__REDIS_URL": REDIS_URL,
        "COURTYARD_RATE_LIMITS__KEY_PREFIX": redis_prefix,
        "COURTYARD_RATE_LIMITS__EXEMPT": "[]",
        "COURTYARD_RATE_LIMITS__AUTH_BURST": "6",
        "COURTYARD_RATE_LIMITS__AUTH_PER_SECOND": "0.01",
    }
    tag = secrets.token_hex(3)
    first = ServerProcess(url, workdir / f"rl-a-{tag}", extra_env=env)
    second = ServerProcess(url, workdir / f"rl-b-{tag}", extra_env=env)
    first.start()
    try:
        second.start()
        attempt = {"login": "nobody", "password": "wrong password here", "session_type": "token"}
        statuses = []
        async with httpx.AsyncClient(timeout=10) as client:
            for n in range(8):
                server = (first, second)[n % 2]
                response = await client.post(f"{server.url}/api/v1/auth/sign-in", json=attempt)
                statuses.append(response.status_code)
        # Six tokens for the address in all, not six per process.
        assert statuses == [401] * 6 + [429, 429], statuses
    finally:
        second.stop()
        first.stop()


async def test_an_unreachable_redis_lets_requests_through(caplog: pytest.LogCaptureFixture) -> None:
    limits = RateLimits(
        store=RedisBuckets(f"redis://127.0.0.1:{free_port()}/0", "courtyard-test:"),
        per_user={},
        per_address={"auth": Limit(rate=0.01, burst=1)},
        summary_interval=0,
    )
    await limits.start()
    try:
        for _ in range(3):  # far over the limit, but nothing can count it
            await limits.check_address("auth", ipaddress.ip_address("198.51.100.7"))
    finally:
        await limits.stop()
    assert "rate-limit store redis failed" in caplog.text
