"""HEAD answers like GET, without a body, on every GET route."""

from __future__ import annotations

from tests.support import Org, Person


async def test_head_matches_get_without_a_body(org: Org, alice: Person) -> None:
    for path in ("/healthz", "/readyz", "/api/v1/me", "/api/v1/channels"):
        got = await alice.client.get(path)
        head = await alice.client.head(path)
        assert head.status_code == got.status_code == 200, (path, head.status_code)
        assert head.content == b""
        assert head.headers["content-type"] == got.headers["content-type"]
        assert head.headers["x-content-type-options"] == "nosniff"


async def test_head_is_refused_where_get_would_be(org: Org) -> None:
    anonymous = org.anonymous()
    head = await anonymous.head("/api/v1/me")
    assert head.status_code == 401
    assert head.content == b""
    assert head.headers["content-type"] == "application/problem+json"
    missing = await anonymous.head("/api/v1/no-such-thing")
    assert missing.status_code == 404
