"""Network rules as pure values: CIDR allow/deny lists, the client address behind proxies,
and token buckets.

Nothing here does I/O. The HTTP edge (``courtyard.api.firewall``), the authentication
dependency and the event socket all ask :meth:`FirewallPolicy.evaluate` the same question, so
``courtyard firewall test`` prints exactly the verdict a request would get.

Semantics (order-independent, so a reader can check a rule set by eye):

* The policy has a *global* scope and any number of named rules. A rule applies to a request
  when its ``surfaces`` (if any) meet the request's surfaces and its ``roles`` (if any) contain
  the caller's role. Rules with ``roles`` can only be judged after authentication.
* In every applicable scope, an address in ``deny`` is refused; a non-empty ``allow`` refuses
  every address outside it. All applicable scopes must let the address through: a deny
  anywhere wins.
"""

from __future__ import annotations

import functools
import ipaddress
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Where a request goes. One request may touch several (a token upload: api, files, tokens).
SURFACES = frozenset({"api", "auth", "admin", "tokens", "events", "files", "web"})
ROLES = frozenset({"owner", "admin", "member", "guest"})


class RuleError(ValueError):
    """A rule cannot be understood (bad CIDR, unknown surface or role)."""


def parse_network(text: str) -> IPNetwork:
    """A CIDR block (``10.0.0.0/8``, ``fd00::/8``) or a single address (a /32 or /128)."""
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise RuleError(f"{text!r} is not an IP address or CIDR block") from None


def parse_address(text: str) -> IPAddress | None:
    """An IP address, tolerating ``[v6]`` brackets, a zone id and an IPv4-mapped IPv6 form;
    None when ``text`` is not an address."""
    if len(text) > _LONGEST_ADDRESS:  # also keeps attacker-sized strings out of the cache
        return None
    return _parse_address(text)


# "[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255%zone-name]" with room to spare.
_LONGEST_ADDRESS = 80


@functools.lru_cache(maxsize=8192)
def _parse_address(text: str) -> IPAddress | None:
    # Cached: the same clients come back, and parsing is most of the edge's cost.
    value = text.strip()
    if value.startswith("[") and "]" in value:
        value = value[1 : value.index("]")]
    value = value.split("%", 1)[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _networks(values: Iterable[str]) -> tuple[IPNetwork, ...]:
    return tuple(parse_network(v) for v in values)


def _first_match(address: IPAddress, networks: Sequence[IPNetwork]) -> IPNetwork | None:
    for network in networks:
        if address.version == network.version and address in network:
            return network
    return None


@dataclass(frozen=True, slots=True)
class Scope:
    """A named set of allow and deny blocks, applying to some surfaces and roles (or all)."""

    name: str
    allow: tuple[IPNetwork, ...] = ()
    deny: tuple[IPNetwork, ...] = ()
    surfaces: frozenset[str] = frozenset()
    roles: frozenset[str] = frozenset()

    @classmethod
    def parse(
        cls,
        name: str,
        *,
        allow: Iterable[str] = (),
        deny: Iterable[str] = (),
        surfaces: Iterable[str] = (),
        roles: Iterable[str] = (),
    ) -> Scope:
        """Validate and build a scope from configuration strings."""
        surface_set = frozenset(s.strip().lower() for s in surfaces)
        if unknown := surface_set - SURFACES:
            raise RuleError(
                f"rule {name!r}: unknown surface {sorted(unknown)[0]!r} "
                f"(known: {', '.join(sorted(SURFACES))})"
            )
        role_set = frozenset(r.strip().lower() for r in roles)
        if unknown := role_set - ROLES:
            raise RuleError(
                f"rule {name!r}: unknown role {sorted(unknown)[0]!r} "
                f"(known: {', '.join(sorted(ROLES))})"
            )
        try:
            return cls(name, _networks(allow), _networks(deny), surface_set, role_set)
        except RuleError as exc:
            raise RuleError(f"rule {name!r}: {exc}") from None

    def applies(self, surfaces: frozenset[str], role: str | None) -> bool:
        """Whether this scope judges a request to ``surfaces`` by someone in ``role``."""
        if self.surfaces and not (self.surfaces & surfaces):
            return False
        if self.roles:
            return role is not None and role in self.roles
        return True

    def judge(self, address: IPAddress) -> Verdict | None:
        """A refusal, or None when this scope lets ``address`` through."""
        if (hit := _first_match(address, self.deny)) is not None:
            return Verdict(False, self.name, f"{hit} is on the deny list of {self.name}", hit)
        if self.allow and _first_match(address, self.allow) is None:
            return Verdict(False, self.name, f"not on the allow list of {self.name}", None)
        return None

    def describe(self) -> str:
        """One line for `courtyard firewall show`."""
        parts = [self.name]
        if self.surfaces:
            parts.append("surfaces=" + ",".join(sorted(self.surfaces)))
        if self.roles:
            parts.append("roles=" + ",".join(sorted(self.roles)))
        parts.append("allow=" + (",".join(map(str, self.allow)) or "*"))
        parts.append("deny=" + (",".join(map(str, self.deny)) or "-"))
        return "  ".join(parts)


@dataclass(frozen=True, slots=True)
class Verdict:
    """Allowed or not, and the scope (and block) that decided."""

    allowed: bool
    rule: str
    reason: str
    network: IPNetwork | None = None


ALLOWED = Verdict(True, "-", "no rule refuses this address")


@dataclass(frozen=True, slots=True)
class FirewallPolicy:
    """Courtyard's own firewall: a global scope plus named per-surface or per-role rules."""

    enabled: bool = False
    global_scope: Scope = field(default_factory=lambda: Scope("global"))
    rules: tuple[Scope, ...] = ()
    trusted_proxies: tuple[IPNetwork, ...] = ()

    @property
    def has_role_rules(self) -> bool:
        """Whether anything needs judging after authentication."""
        return self.enabled and any(rule.roles for rule in self.rules)

    def evaluate(
        self,
        address: IPAddress | None,
        surfaces: frozenset[str],
        role: str | None = None,
        *,
        stage: str = "all",
    ) -> Verdict:
        """The verdict for ``address`` reaching ``surfaces`` as ``role``.

        ``stage`` "edge" judges only rules without roles (nobody is authenticated yet),
        "role" only rules with roles (after authentication), "all" both (the CLI's question).
        An address that cannot be parsed is refused whenever any rule applies.
        """
        if not self.enabled:
            return ALLOWED
        scopes: list[Scope] = []
        if stage in ("edge", "all"):
            scopes.append(self.global_scope)
        for rule in self.rules:
            if rule.roles and stage == "edge":
                continue
            if not rule.roles and stage == "role":
                continue
            if rule.applies(surfaces, role):
                scopes.append(rule)
        for scope in scopes:
            if address is None:
                if scope.allow or scope.deny:
                    return Verdict(False, scope.name, "the client address is unknown")
                continue
            if (refusal := scope.judge(address)) is not None:
                return refusal
        return ALLOWED

    def is_trusted_proxy(self, address: IPAddress | None) -> bool:
        """Whether ``address`` is a configured reverse proxy."""
        return address is not None and _first_match(address, self.trusted_proxies) is not None

    def client_address(
        self, peer: str, forwarded_for: Sequence[str] = (), forwarded: Sequence[str] = ()
    ) -> IPAddress | None:
        """The client's address: the direct peer, unless that is a trusted proxy — then the
        rightmost untrusted hop of ``Forwarded`` (RFC 7239) or, failing that,
        ``X-Forwarded-For``. Headers from untrusted peers are ignored (anyone can send them)."""
        direct = parse_address(peer)
        if not self.is_trusted_proxy(direct):
            return direct
        hops = _forwarded_hops(forwarded) if forwarded else []
        if not hops:
            hops = [h.strip() for value in forwarded_for for h in value.split(",")]
        for hop in reversed(hops):
            address = parse_address(hop)
            if address is None:
                # Garbage at the point where the chain stops being trusted: don't guess.
                return None
            if not self.is_trusted_proxy(address):
                return address
        # Every hop is a proxy of ours: the leftmost one is the best we know.
        return parse_address(hops[0]) if hops else direct


def _forwarded_hops(values: Sequence[str]) -> list[str]:
    hops: list[str] = []
    for value in values:
        for element in value.split(","):
            for pair in element.split(";"):
                key, _, raw = pair.strip().partition("=")
                if key.strip().lower() == "for":
                    hop = raw.strip().strip('"')
                    if hop.startswith("[") and "]" in hop:
                        hop = hop[1 : hop.index("]")]
                    elif hop.count(":") == 1:  # IPv4 with a port
                        hop = hop.split(":", 1)[0]
                    hops.append(hop)
    return hops


@dataclass(frozen=True, slots=True)
class Limit:
    """``rate`` tokens per second, at most ``burst`` saved up."""

    rate: float
    burst: int


@dataclass(slots=True)
class TokenBucket:
    """A token bucket: ``burst`` tokens, refilled at ``rate`` per second."""

    rate: float
    burst: float
    tokens: float
    stamp: float

    @classmethod
    def full(cls, rate: float, burst: float, now: float) -> TokenBucket:
        """A bucket that has not been touched yet."""
        return cls(rate, burst, burst, now)

    def take(self, now: float, cost: float = 1.0) -> float:
        """Take ``cost`` tokens; returns 0.0 when allowed, else the seconds to wait."""
        elapsed = max(0.0, now - self.stamp)
        self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
        self.stamp = now
        if self.tokens >= cost:
            self.tokens -= cost
            return 0.0
        return (cost - self.tokens) / self.rate

    def idle_until(self) -> float:
        """When the bucket will be full again (and can be forgotten)."""
        return self.stamp + (self.burst - self.tokens) / self.rate


def retry_after_seconds(wait: float) -> int:
    """``Retry-After`` as whole seconds, never 0 for a refusal."""
    return max(1, math.ceil(wait))
