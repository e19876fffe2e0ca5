"""Ordinary history page requests are answered without the framework's per-request machinery
(api/hot_routes.py). The answers must be the framework's, byte for byte: each request here is
made twice, once as it is and once with an unknown query parameter (a cache-buster, as browsers
add), which the fast path leaves to the application and the application ignores."""

from __future__ import annotations

from typing import Any

import httpx

from courtyard.api.hot_routes import HistoryFastPath
from tests.support import Org, Person, unique

# Headers that differ between any two responses.
_PER_RESPONSE = {"date", "x-request-id", "server-timing"}


def _fast_path(org: Org) -> HistoryFastPath:
    assert org.server.application is not None
    layer: Any = org.server.application.asgi
    while not isinstance(layer, HistoryFastPath):
        layer = layer.app
    return layer


def _comparable(response: httpx.Response) -> tuple[int, list[tuple[str, str]], bytes]:
    headers = sorted((k, v) for k, v in response.headers.items() if k not in _PER_RESPONSE)
    return response.status_code, headers, response.content


async def _both(org: Org, client: httpx.AsyncClient, path: str) -> httpx.Response:
    """``path`` answered by the fast path and by the application; asserts they agree."""
    fast = _fast_path(org)
    before = fast.answered
    direct = await client.get(path)
    assert fast.answered == before + 1, f"the fast path did not answer {path}"
    joiner = "&" if "?" in path else "?"
    framework = await client.get(f"{path}{joiner}_=1")
    assert fast.answered == before + 1, "the application's request was answered by the fast path"
    assert _comparable(direct) == _comparable(framework)
    return direct


async def test_pages_are_the_applications_own_answers(org: Org, alice: Person, bob: Person) -> None:
    channel = await alice.create_channel(member_ids=[bob.id])
    sent = [await alice.send(channel["id"], f"line {n} @{bob.username}") for n in range(12)]
    await bob.put(f"/api/v1/messages/{sent[3]['id']}/reactions/%F0%9F%91%8D")
    path = f"/api/v1/channels/{channel['id']}/messages"
    latest = await _both(org, bob.client, path)
    assert latest.status_code == 200
    assert [m["seq"] for m in latest.json()["messages"]] == list(range(1, 13))
    for query in ("limit=3", "limit=1000", "before=5&limit=2", "after=10", "around=6&limit=3"):
        page = await _both(org, bob.client, f"{path}?{query}")
        assert page.status_code == 200, page.text
    around = (await bob.get(f"{path}?around=6&limit=3")).json()["messages"]
    assert [m["seq"] for m in around] == [5, 6, 7]
    reacted = (await bob.get(f"{path}?before=5&limit=1")).json()["messages"][0]
    assert reacted["reactions"] and reacted["mentioned_user_ids"] == [bob.id]


async def test_refusals_are_the_applications_own_problems(
    org: Org, alice: Person, bob: Person
) -> None:
    private = await alice.create_channel(name=unique("private"), private=True)
    missing = "/api/v1/channels/9223372036854775807/messages"
    outsider = await _both(org, bob.client, f"/api/v1/channels/{private['id']}/messages")
    assert outsider.status_code in (403, 404)
    assert outsider.headers["content-type"] == "application/problem+json"
    assert (await _both(org, bob.client, missing)).status_code == 404
    stranger = org.anonymous()
    stranger.headers["Authorization"] = "Bearer not-a-real-token"
    refused = await _both(org, stranger, f"/api/v1/channels/{private['id']}/messages")
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == 'Bearer realm="courtyard"'
    assert refused.json()["instance"] == f"/api/v1/channels/{private['id']}/messages"


async def test_what_the_fast_path_leaves_alone_still_works(org: Org, alice: Person) -> None:
    channel = await alice.create_channel()
    await alice.send(channel["id"], "only")
    path = f"/api/v1/channels/{channel['id']}/messages"
    fast = _fast_path(org)
    before = fast.answered
    odd: dict[str, int | None] = {
        "limit=050": None,  # a leading zero: the framework's to read
        "limit=%35": 200,  # an escape
        "limit=0": 422,
        "limit=1001": 422,
        "limit=5&limit=6": None,  # a repeat: whatever the framework makes of it, not a 5xx
        "before=-1": 422,
        "before=x": 422,
    }
    for query, status in odd.items():
        response = await alice.get(f"{path}?{query}")
        assert response.status_code == status or (status is None and response.status_code < 500)
    cookie_client = org.anonymous()  # no bearer: the framework checks cookies and CSRF
    assert (await cookie_client.get(path)).status_code == 401
    assert fast.answered == before
    # HEAD becomes GET at the edge (api/middleware.py), which drops the body on the way out.
    head = await alice.client.head(path)
    assert head.status_code == 200 and head.content == b"" and fast.answered == before + 1
