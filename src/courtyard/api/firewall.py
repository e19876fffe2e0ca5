"""Courtyard's own firewall and rate limits at the ASGI edge, before authentication.

:class:`Firewall` holds the current :class:`~courtyard.domain.network.FirewallPolicy` and
swaps it atomically when the configuration changes (SIGHUP or a new file modification time);
every check reads the policy once, so a request never sees half a reload.

:class:`NetworkEdge` is the raw ASGI middleware. For each HTTP request it

1. finds the client address (the direct peer, or — only when the peer is a trusted proxy —
   the rightmost untrusted hop of ``Forwarded`` / ``X-Forwarded-For``) and puts it in
   ``scope["client"]``, so everything downstream (sessions, audit) sees the real client;
2. refuses addresses the firewall's pre-authentication rules reject (403 ``network_not_allowed``);
3. takes a token from the address's bucket for the route class (429 ``rate_limited``);
4. leaves an :class:`EdgeContext` in the scope for :func:`admit_actor`, which the
   authentication dependency calls once the user (and so the role) is known: per-role rules
   and per-user buckets.

The event socket is not an ASGI app (see api/websocket.py); it calls :meth:`Firewall.judge`
and the same limits directly.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from litestar import Request
from litestar.datastructures import State
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send, WebSocketCloseEvent

from courtyard.api.deps import AppServices, provide_actor
from courtyard.api.middleware import send_problem
from courtyard.api.ratelimit import EVENTS_PATH, bearer_from, route_class, surfaces_for
from courtyard.domain.audit import Details
from courtyard.domain.errors import PermissionDenied, RateLimited
from courtyard.domain.network import FirewallPolicy, IPAddress, Verdict
from courtyard.domain.users import Actor
from courtyard.services.ratelimit import RateLimits, SecurityEventSink

logger = logging.getLogger(__name__)

EDGE_KEY = "courtyard.edge"
NETWORK_NOT_ALLOWED = "network_not_allowed"


class Firewall:
    """The live firewall policy, reloadable without a restart."""

    def __init__(
        self,
        policy: FirewallPolicy,
        *,
        loader: Callable[[], FirewallPolicy] | None = None,
        watched: Path | None = None,
        poll_seconds: float = 0.0,
        on_event: SecurityEventSink | None = None,
    ) -> None:
        self.policy = policy
        self._loader = loader
        self._watched = watched
        self._poll = poll_seconds
        self._mtime = _mtime(watched)
        self._task: asyncio.Task[None] | None = None
        self.on_event = on_event
        self.reloads = 0

    def judge(
        self,
        address: IPAddress | None,
        surfaces: frozenset[str],
        role: str | None = None,
        *,
        stage: str = "edge",
    ) -> Verdict:
        """The current policy's verdict (see FirewallPolicy.evaluate)."""
        return self.policy.evaluate(address, surfaces, role, stage=stage)

    def client_address(self, peer: str, headers: Iterable[tuple[bytes, bytes]]) -> IPAddress | None:
        """The client behind ``peer`` given the request's raw headers."""
        headers = list(headers)
        xff = [v.decode("latin-1") for k, v in headers if k == b"x-forwarded-for"]
        fwd = [v.decode("latin-1") for k, v in headers if k == b"forwarded"]
        return self.policy.client_address(peer, xff, fwd)

    async def reload(self, reason: str) -> bool:
        """Re-read the rules; keep the old ones if the new configuration is invalid.
        Returns whether the policy changed. Audited either way."""
        if self._loader is None:
            return False
        try:
            policy = self._loader()
        except Exception as exc:  # a typo in the file must not open or close the gates
            logger.error("firewall reload (%s) failed; keeping the previous rules: %s", reason, exc)
            await self._record("firewall.reload_failed", {"reason": reason, "error": str(exc)})
            return False
        changed = policy != self.policy
        self.policy = policy
        self.reloads += 1
        logger.warning(
            "firewall rules reloaded (%s): %s", reason, "changed" if changed else "unchanged"
        )
        await self._record(
            "firewall.reloaded",
            {"reason": reason, "changed": changed, "rules": list(describe(policy))},
        )
        return changed

    async def _record(self, kind: str, details: Details) -> None:
        if self.on_event is None:
            return
        try:
            await self.on_event(kind, details)
        except Exception:
            logger.warning("could not audit %s", kind, exc_info=True)

    async def start(self) -> None:
        """Watch the configuration file's modification time (cheap: one stat per poll)."""
        if self._loader is not None and self._watched is not None and self._poll > 0:
            self._task = asyncio.create_task(self._watch(), name="firewall-watch")

    async def stop(self) -> None:
        """Stop watching."""
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._poll)
            mtime = _mtime(self._watched)
            if mtime != self._mtime:
                self._mtime = mtime
                await self.reload("configuration file changed")

    def reload_on_sighup(self, loop: asyncio.AbstractEventLoop) -> None:
        """Reload when the process gets SIGHUP (``systemctl reload``)."""
        loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(self.reload("SIGHUP")))


def describe(policy: FirewallPolicy) -> list[str]:
    """The rules as lines (for `courtyard firewall show` and the audit record)."""
    if not policy.enabled:
        return ["firewall disabled: every address is allowed"]
    lines = [policy.global_scope.describe()]
    lines += [rule.describe() for rule in policy.rules]
    lines.append("trusted_proxies=" + (",".join(map(str, policy.trusted_proxies)) or "-"))
    return lines


def _mtime(path: Path | None) -> float | None:
    if path is None:
        return None
    try:
        return os.stat(path).st_mtime_ns / 1e9
    except OSError:
        return None


@dataclass(frozen=True, slots=True)
class EdgeContext:
    """What the edge learned about a request, for the checks after authentication."""

    firewall: Firewall
    limits: RateLimits | None
    address: IPAddress | None
    surfaces: frozenset[str]
    route_class: str | None


class NetworkEdge:
    """Firewall and per-address rate limits for every HTTP request (raw ASGI)."""

    def __init__(self, app: ASGIApp, firewall: Firewall, limits: RateLimits | None) -> None:
        self.app = app
        self.firewall = firewall
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.WEBSOCKET:
            # The event socket is served by uvicorn's ws= protocol (api/websocket.py), which
            # applies the same rules; any ASGI WebSocket route is judged here all the same.
            client = scope.get("client")
            address = self.firewall.client_address(client[0] if client else "", scope["headers"])
            if not self.firewall.judge(address, frozenset({"api", "events"})).allowed:
                close: WebSocketCloseEvent = {
                    "type": "websocket.close",
                    "code": 1008,
                    "reason": "network_not_allowed",
                }
                await send(close)
                return
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        peer = client[0] if client else ""
        headers = list(scope["headers"])
        address = self.firewall.client_address(peer, headers)
        if (
            self.firewall.policy.trusted_proxies
            and address is not None
            and client is not None
            and str(address) != peer
        ):
            scope["client"] = (str(address), 0)
        path = scope["path"]
        method = scope["method"]
        authorization = next((v for k, v in headers if k == b"authorization"), None)
        bearer = bearer_from(authorization.decode("latin-1") if authorization else None)
        surfaces = surfaces_for(method, path, bearer)
        verdict = self.firewall.judge(address, surfaces, stage="edge")
        if not verdict.allowed:
            await refuse(send, verdict)
            return
        klass = route_class(method, path)
        if klass is not None and self.limits is not None:
            try:
                await self.limits.check_address(klass, address)
            except RateLimited as exc:
                await send_problem(
                    send,
                    429,
                    exc.code,
                    exc.message,
                    [(b"retry-after", str(exc.retry_after).encode())],
                )
                return
        cast("dict[str, Any]", scope)[EDGE_KEY] = EdgeContext(
            self.firewall, self.limits, address, surfaces, klass
        )
        await self.app(scope, receive, send)


async def refuse(send: Send, verdict: Verdict) -> None:
    """403 network_not_allowed, naming the rule (never the address lists themselves)."""
    await send_problem(
        send,
        403,
        NETWORK_NOT_ALLOWED,
        f"requests from this network are not allowed here (rule: {verdict.rule})",
    )


def network_refusal(verdict: Verdict) -> PermissionDenied:
    """The error raised when a per-role rule refuses an authenticated request."""
    return PermissionDenied(
        f"requests from this network are not allowed for your role (rule: {verdict.rule})",
        code=NETWORK_NOT_ALLOWED,
    )


async def admit_actor(scope: Any, actor: Actor) -> None:
    """After authentication: per-role firewall rules and per-user rate limits.

    Raises PermissionDenied(network_not_allowed) or RateLimited. A request that did not pass
    the edge (an in-process test client) is let through.
    """
    edge: EdgeContext | None = scope.get(EDGE_KEY)
    if edge is None:
        return
    policy = edge.firewall.policy
    if policy.has_role_rules:
        verdict = policy.evaluate(edge.address, edge.surfaces, actor.role.value, stage="role")
        if not verdict.allowed:
            raise network_refusal(verdict)
    if edge.limits is not None and edge.route_class not in (None, "auth"):
        await edge.limits.check_user(edge.route_class, actor.user_id, edge.address)


#: Something the server calls on SIGHUP (the firewall, the TLS context).
Reloadable = Callable[[str], Awaitable[Any]]


async def provide_admitted_actor(request: Request[Any, Any, State], services: AppServices) -> Actor:
    """The ``actor`` dependency: authentication (api/deps.py), then :func:`admit_actor`."""
    actor = await provide_actor(request, services)
    await admit_actor(request.scope, actor)
    return actor


SOCKET_SURFACES = frozenset({"api", "events"})


def socket_admission(
    firewall: Firewall, peer: str, headers: list[tuple[bytes, bytes]]
) -> tuple[IPAddress | None, Verdict]:
    """The event socket's edge check: its client address and the pre-authentication verdict.
    ``headers`` are the upgrade request's, as uvicorn parsed them (lower-case names)."""
    address = firewall.client_address(peer, headers)
    surfaces = SOCKET_SURFACES
    authorization = next((v for k, v in headers if k == b"authorization"), None)
    bearer = bearer_from(authorization.decode("latin-1") if authorization is not None else None)
    if bearer is not None:
        surfaces = surfaces_for("GET", EVENTS_PATH, bearer)
    return address, firewall.judge(address, surfaces, stage="edge")
