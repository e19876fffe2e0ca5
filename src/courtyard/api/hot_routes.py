"""A page of channel history, answered without the framework's per-request machinery.

Reading history is what chat clients do most: 45 % of S5's requests, Mattermost's mix. Counted
by cProfile in the server (``python -m bench.lone_sends sqlite --kind history --cprofile F``),
Litestar's routing, dependency injection, signature model and response objects made about 40 %
of the page's Python calls, more than the statement and the 50 messages together.

:class:`HistoryFastPath` sits between the network edge (firewall, address rate limits) and the
application. An ordinary page request — ``GET /api/v1/channels/{id}/messages`` with a bearer
token and the documented query parameters written plainly — is answered here through the same
service, the same authentication and admission checks, the same JSON encoder and the same
problem documents (api/deps.py, api/firewall.py, api/errors.py). Anything else goes to the
application untouched and is answered as before: a session cookie, a parameter it would have to
interpret (a sign, a leading zero, an escape, a repeat, an unknown name, a value out of range),
a HEAD request. The route stays declared in the application, so the OpenAPI document is
unchanged. ``tests/api/test_history_fast_path.py`` compares the two answers byte for byte.
"""

from __future__ import annotations

import logging
import re

from litestar.enums import ScopeType
from litestar.serialization import encode_json
from litestar.types import (
    ASGIApp,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    Receive,
    Scope,
    Send,
)

from courtyard.api.deps import MAX_ID, check_actor, client_actor, client_of
from courtyard.api.errors import PROBLEM_JSON, UNEXPECTED, courtyard_problem, problem_body
from courtyard.api.firewall import admit_actor
from courtyard.domain.errors import CourtyardError
from courtyard.domain.messages import PageRequest
from courtyard.services.registry import Services

logger = logging.getLogger(__name__)

_HISTORY_PATH = re.compile(r"/api/v1/channels/([1-9][0-9]{0,18})/messages")
# A plain decimal: no sign, no leading zero, no escape (anything else is the application's).
_PLAIN_NUMBER = re.compile(rb"0|[1-9][0-9]{0,18}")
_BOUNDS = {
    b"limit": (1, 1000),
    b"before": (0, MAX_ID),
    b"after": (0, MAX_ID),
    b"around": (0, MAX_ID),
}
_DEFAULT_LIMIT = 50  # api/routes/messages.py: LIMIT_DEFAULT
_JSON = [(b"content-type", b"application/json")]


class HistoryFastPath:
    """ASGI: ordinary history page requests answered here, everything else passed on."""

    __slots__ = ("answered", "app", "services")

    def __init__(self, app: ASGIApp, services: Services) -> None:
        self.app = app
        self.services = services
        #: Requests answered here rather than by the application (tests, diagnostics).
        self.answered = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP and scope["method"] == "GET":
            matched = _HISTORY_PATH.fullmatch(scope["path"])
            if matched is not None and int(matched[1]) <= MAX_ID:
                request = _ordinary_request(scope)
                if request is not None:
                    self.answered += 1
                    await self._history(scope, send, int(matched[1]), *request)
                    return
        await self.app(scope, receive, send)

    async def _history(
        self,
        scope: Scope,
        send: Send,
        channel_id: int,
        secret: str,
        user_agent: str,
        page: PageRequest,
    ) -> None:
        path: str = scope["path"]
        try:
            actor = await client_actor(self.services, secret, client_of(scope, user_agent))
            check_actor(actor, unsafe=False, enrolment_allowed=False)
            await admit_actor(scope, actor)
            window = await self.services.messages.history(actor, channel_id, page)
        except CourtyardError as exc:
            status, body, headers = courtyard_problem(exc, path)
            await _respond(send, status, encode_json(body), _problem_headers(headers))
            return
        except Exception:
            logger.exception("unhandled error on GET %s", path)
            body = problem_body(*UNEXPECTED, instance=path)
            await _respond(send, 500, encode_json(body), _problem_headers(None))
            return
        await _respond(send, 200, encode_json(window), _JSON)


def _ordinary_request(scope: Scope) -> tuple[str, str, PageRequest] | None:
    """(bearer secret, user agent, page) when the request is one this path answers, else None."""
    secret = None
    user_agent = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            if secret is not None:
                return None
            scheme, _, credential = value.decode("latin-1").partition(" ")
            secret = credential.strip()
            if scheme.lower() != "bearer" or not secret:
                return None
        elif name == b"user-agent" and user_agent is None:  # the first, as Litestar reads it
            user_agent = value.decode("latin-1")
    if secret is None:
        return None
    values: dict[bytes, int] = {}
    query: bytes = scope.get("query_string", b"")
    if query:
        for pair in query.split(b"&"):
            key, _, raw = pair.partition(b"=")
            bounds = _BOUNDS.get(key)
            if bounds is None or key in values or _PLAIN_NUMBER.fullmatch(raw) is None:
                return None
            number = int(raw)
            if not bounds[0] <= number <= bounds[1]:
                return None
            values[key] = number
    page = PageRequest(
        limit=values.get(b"limit", _DEFAULT_LIMIT),
        before=values.get(b"before"),
        after=values.get(b"after"),
        around=values.get(b"around"),
    )
    return secret, user_agent or "", page


def _problem_headers(extra: dict[str, str] | None) -> list[tuple[bytes, bytes]]:
    headers = [(b"content-type", PROBLEM_JSON.encode())]
    for name, value in (extra or {}).items():
        headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))
    return headers


async def _respond(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    start: HTTPResponseStartEvent = {
        "type": "http.response.start",
        "status": status,
        "headers": [*headers, (b"content-length", str(len(body)).encode())],
    }
    await send(start)
    end: HTTPResponseBodyEvent = {"type": "http.response.body", "body": body, "more_body": False}
    await send(end)
