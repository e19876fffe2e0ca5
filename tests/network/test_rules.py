"""The pure parts: rule evaluation, the client address behind proxies, route classes and
surfaces, token buckets."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from litestar.types import Message, Receive, Send
from litestar.types import Scope as ASGIScope

from courtyard.api.firewall import Firewall, NetworkEdge
from courtyard.api.ratelimit import route_class, surfaces_for
from courtyard.domain.network import (
    FirewallPolicy,
    Limit,
    RuleError,
    Scope,
    TokenBucket,
    parse_address,
    parse_network,
    retry_after_seconds,
)

A = parse_address


def policy(
    *,
    allow: tuple[str, ...] | list[str] = (),
    deny: tuple[str, ...] | list[str] = (),
    rules: tuple[Scope, ...] | list[Scope] = (),
    trusted: tuple[str, ...] | list[str] = (),
) -> FirewallPolicy:
    return FirewallPolicy(
        enabled=True,
        global_scope=Scope.parse("global", allow=allow, deny=deny),
        rules=tuple(rules),
        trusted_proxies=tuple(parse_network(p) for p in trusted),
    )


def test_deny_anywhere_wins_over_allow_elsewhere() -> None:
    p = policy(
        allow=["10.0.0.0/8"],
        rules=[Scope.parse("no-lab", surfaces=["admin"], deny=["10.9.0.0/16"])],
    )
    assert p.evaluate(A("10.1.1.1"), frozenset({"api", "admin"})).allowed
    refused = p.evaluate(A("10.9.1.1"), frozenset({"api", "admin"}))
    assert (refused.allowed, refused.rule, str(refused.network)) == (False, "no-lab", "10.9.0.0/16")
    assert p.evaluate(A("10.9.1.1"), frozenset({"api"})).allowed  # rule is admin-only
    assert p.evaluate(A("192.0.2.1"), frozenset({"api"})).rule == "global"


def test_role_rules_are_judged_only_once_the_role_is_known() -> None:
    p = policy(rules=[Scope.parse("staff", roles=["admin", "owner"], allow=["10.0.0.0/8"])])
    outside = A("198.51.100.1")
    assert p.evaluate(outside, frozenset({"api"}), stage="edge").allowed
    assert not p.evaluate(outside, frozenset({"api"}), "admin", stage="role").allowed
    assert p.evaluate(outside, frozenset({"api"}), "guest", stage="role").allowed
    assert not p.evaluate(outside, frozenset({"api"}), "owner", stage="all").allowed
    assert p.has_role_rules


def test_ipv6_and_ipv4_mapped_addresses() -> None:
    p = policy(deny=["2001:db8::/32", "203.0.113.0/24"])
    assert not p.evaluate(A("2001:db8::1"), frozenset({"api"})).allowed
    assert not p.evaluate(A("::ffff:203.0.113.7"), frozenset({"api"})).allowed
    assert p.evaluate(A("2001:db9::1"), frozenset({"api"})).allowed


def test_an_unknown_address_is_refused_only_where_a_list_applies() -> None:
    assert policy().evaluate(None, frozenset({"api"})).allowed
    assert not policy(allow=["10.0.0.0/8"]).evaluate(None, frozenset({"api"})).allowed


def test_a_disabled_firewall_allows_everything() -> None:
    p = FirewallPolicy(enabled=False, global_scope=Scope.parse("global", deny=["0.0.0.0/0"]))
    assert p.evaluate(A("192.0.2.1"), frozenset({"api"})).allowed


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"allow": ["10.0.0.0/33"]}, "not an IP address"),
        ({"deny": ["example.org"]}, "not an IP address"),
        ({"surfaces": ["moon"]}, "unknown surface"),
        ({"roles": ["boss"]}, "unknown role"),
    ],
)
def test_bad_rules_are_named(kwargs: dict[str, list[str]], message: str) -> None:
    with pytest.raises(RuleError, match=message):
        Scope.parse("r", **kwargs)


@pytest.mark.parametrize(
    ("peer", "xff", "forwarded", "client"),
    [
        ("192.0.2.1", ["203.0.113.9"], [], "192.0.2.1"),  # untrusted peer: headers ignored
        ("127.0.0.1", [], [], "127.0.0.1"),  # trusted, no header: the proxy itself
        ("127.0.0.1", ["203.0.113.9"], [], "203.0.113.9"),
        ("127.0.0.1", ["10.0.0.1, 203.0.113.9"], [], "203.0.113.9"),  # forged left part
        ("127.0.0.1", ["203.0.113.9, 172.16.0.2"], [], "203.0.113.9"),  # two proxies of ours
        ("127.0.0.1", ["203.0.113.9", "198.51.100.2"], [], "198.51.100.2"),  # repeated header
        ("127.0.0.1", ["bogus"], [], None),
        ("127.0.0.1", ["172.16.0.2, 172.16.0.3"], [], "172.16.0.2"),  # all ours
        ("127.0.0.1", [], ['for="[2001:db8::7]:4711";proto=https'], "2001:db8::7"),
        ("127.0.0.1", [], ["for=198.51.100.4:8080, for=172.16.0.9"], "198.51.100.4"),
        ("127.0.0.1", ["203.0.113.9"], ["for=198.51.100.4"], "198.51.100.4"),  # RFC 7239 first
        ("::ffff:127.0.0.1", ["203.0.113.9"], [], "203.0.113.9"),
        ("127.0.0.1", ["1" * 10_000], [], None),  # absurd hop: not an address
    ],
)
def test_the_client_behind_trusted_proxies(
    peer: str, xff: list[str], forwarded: list[str], client: str | None
) -> None:
    p = policy(trusted=["127.0.0.1/32", "172.16.0.0/12"])
    found = p.client_address(peer, xff, forwarded)
    assert (str(found) if found else None) == client


ipv4 = st.ip_addresses(v=4).map(str)


@given(st.lists(ipv4, max_size=5), ipv4.filter(lambda a: not a.startswith("127.")))
def test_prepended_hops_never_change_the_client(forged: list[str], real: str) -> None:
    p = policy(trusted=["127.0.0.0/8"])
    chain = ", ".join([*forged, real])
    assert str(p.client_address("127.0.0.1", [chain])) == str(ipaddress.ip_address(real))


@pytest.mark.parametrize(
    ("method", "path", "klass"),
    [
        ("POST", "/api/v1/auth/sign-in", "auth"),
        ("POST", "/api/v1/setup", "auth"),
        ("POST", "/api/v1/invites/accept", "auth"),
        ("GET", "/api/v1/me", "reads"),
        ("POST", "/api/v1/files", "uploads"),
        ("POST", "/api/v1/files/", "uploads"),
        ("POST", "/api/v1/channels/1/messages", "writes"),
        ("DELETE", "/api/v1/messages/1", "writes"),
        ("GET", "/healthz", None),
        ("GET", "/static/app.js", None),
    ],
)
def test_route_classes(method: str, path: str, klass: str | None) -> None:
    assert route_class(method, path) == klass


@pytest.mark.parametrize(
    ("method", "path", "bearer", "expected"),
    [
        ("GET", "/", None, {"web"}),
        ("GET", "/api/v1/me", "cys_x", {"api"}),
        ("GET", "/api/v1/me", "cyp_x", {"api", "tokens"}),
        ("GET", "/api/v1/me", "cyb_x", {"api", "tokens"}),
        ("GET", "/api/v1/users", None, {"api"}),
        ("POST", "/api/v1/users", None, {"api", "admin"}),
        ("PUT", "/api/v1/users/3/role", None, {"api", "admin"}),
        ("GET", "/api/v1/admin/audit", None, {"api", "admin"}),
        ("GET", "/api/v1/invites", None, {"api", "admin"}),
        ("POST", "/api/v1/invites/accept", None, {"api", "auth"}),
        ("GET", "/api/v1/files/9/content", None, {"api", "files"}),
        ("GET", "/api/v1/events", None, {"api", "events"}),
    ],
)
def test_surfaces(method: str, path: str, bearer: str | None, expected: set[str]) -> None:
    assert surfaces_for(method, path, bearer) == frozenset(expected)


def test_token_bucket_arithmetic() -> None:
    bucket = TokenBucket.full(rate=2.0, burst=3, now=100.0)
    assert [bucket.take(100.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(100.0) == pytest.approx(0.5)
    assert bucket.take(100.5) == 0.0  # one token came back
    assert bucket.idle_until() == pytest.approx(102.0)
    assert retry_after_seconds(0.01) == 1
    assert retry_after_seconds(2.2) == 3
    assert Limit(1.0, 5).burst == 5


async def test_an_asgi_websocket_from_a_refused_network_is_closed_before_accept() -> None:
    reached: list[str] = []

    async def app(scope: ASGIScope, receive: Receive, send: Send) -> None:
        reached.append(scope["type"])

    sent: list[Message] = []

    async def record(message: Message) -> None:
        sent.append(message)

    async def nothing() -> Message:
        raise AssertionError("nothing should be read")

    edge = NetworkEdge(app, Firewall(policy(deny=["203.0.113.0/24"])), None)
    scope: Any = {"type": "websocket", "path": "/ws", "headers": [], "client": ("203.0.113.9", 1)}
    await edge(scope, nothing, record)
    assert sent == [{"type": "websocket.close", "code": 1008, "reason": "network_not_allowed"}]
    assert reached == []
    await edge({**scope, "client": ("198.51.100.1", 1)}, nothing, record)
    assert reached == ["websocket"]
