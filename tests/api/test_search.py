"""Search: semantics (CJK, stemming, phrases, operators), visibility, freshness, bad input.

The whole module runs on SQLite and on PostgreSQL (``--db``); the assertions are the same, so
both databases must find the same messages. Every test scopes its searches with ``in:#…`` or
words of its own, because the organisation is shared.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.support import Org, Person, QueryCounter, unique


async def search(person: Person, q: str, **params: Any) -> dict[str, Any]:
    response = await person.get("/api/v1/search", params={"q": q, **params})
    assert response.status_code == 200, response.text
    return dict(response.json())


async def texts(person: Person, q: str, **params: Any) -> list[str]:
    return [r["message"]["text"] for r in (await search(person, q, **params))["results"]]


async def test_chinese_substrings_of_any_length_are_found(alice: Person) -> None:
    channel = await alice.create_channel()
    scope = f"in:#{channel['name']}"
    target = "我们非常重视数据安全问题"
    await alice.send(channel["id"], target)
    await alice.send(channel["id"], "数据库迁移失败了")
    await alice.send(channel["id"], "今天天气很好")
    assert await texts(alice, f"数据安全 {scope}") == [target]
    # Two characters: the query that SQLite 3.40's trigram LIKE silently answers with zero
    # rows. Courtyard never uses trigram LIKE; this must keep working (regression test).
    assert await texts(alice, f"安全 {scope}") == [target]
    assert sorted(await texts(alice, f"数据 {scope}")) == sorted([target, "数据库迁移失败了"])
    # One character, in the middle and at the very end of a run.
    assert await texts(alice, f"视 {scope}") == [target]
    assert await texts(alice, f"题 {scope}") == [target]
    assert await texts(alice, f"重视数据安全问题 {scope}") == [target]
    # Characters that appear, but not next to each other, do not match.
    assert await texts(alice, f"数据问题 {scope}") == []
    assert await texts(alice, f"安全数据 {scope}") == []


async def test_mixed_chinese_english_and_japanese(alice: Person) -> None:
    channel = await alice.create_channel()
    scope = f"in:#{channel['name']}"
    mixed = "Python数据分析 report 已经 deployed 到 staging"
    japanese = "データベースの移行が完了しました"
    korean = "데이터베이스 마이그레이션 완료"
    for text in (mixed, japanese, korean):
        await alice.send(channel["id"], text)
    assert await texts(alice, f"数据分析 {scope}") == [mixed]
    assert await texts(alice, f"python数据 {scope}") == [mixed]
    assert await texts(alice, f"deploying 已经 {scope}") == [mixed]
    assert await texts(alice, f"移行 {scope}") == [japanese]
    assert await texts(alice, f"データ {scope}") == [japanese]
    assert await texts(alice, f"마이그레이션 {scope}") == [korean]
    assert await texts(alice, f"이터 {scope}") == [korean]


async def test_english_words_are_stemmed_and_folded(alice: Person) -> None:
    channel = await alice.create_channel()
    scope = f"in:#{channel['name']}"
    deployed = "We DEPLOYED the new servers on Friday"
    cafe = "Meet at the Café at noon"
    await alice.send(channel["id"], deployed)
    await alice.send(channel["id"], cafe)
    await alice.send(channel["id"], "nothing relevant here")
    assert await texts(alice, f"deploying {scope}") == [deployed]
    assert await texts(alice, f"deployment server {scope}") == [deployed]
    assert await texts(alice, f"cafe {scope}") == [cafe]
    assert await texts(alice, f"CAFÉ {scope}") == [cafe]
    assert await texts(alice, f"depl* {scope}") == [deployed]


async def test_phrases_exclusions_and_prefixes(alice: Person) -> None:
    channel = await alice.create_channel()
    scope = f"in:#{channel['name']}"
    first = "the release notes are ready"
    second = "notes about the release"
    third = "release blockers: none"
    for text in (first, second, third):
        await alice.send(channel["id"], text)
    assert await texts(alice, f'"release notes" {scope}') == [first]
    assert sorted(await texts(alice, f"release notes {scope}")) == sorted([first, second])
    assert await texts(alice, f"release -notes {scope}") == [third]
    assert await texts(alice, f'release -"release notes" {scope}') == [third, second]
    assert await texts(alice, f"-release {scope}") == []
    # An unbalanced quote runs to the end of the query.
    assert await texts(alice, f'{scope} "release notes') == [first]


async def test_operators_from_in_dates_has_is(org: Org, alice: Person, bob: Person) -> None:
    channel = await alice.create_channel(member_ids=[bob.id])
    other = await alice.create_channel(member_ids=[bob.id])
    tag = unique("tag").replace("-", "")
    scope = f"in:#{channel['name']}"
    from_alice = await alice.send(channel["id"], f"{tag} plain from alice")
    await bob.send(channel["id"], f"{tag} from bob with https://example.com/x link")
    root = await alice.send(channel["id"], f"{tag} a thread root")
    await bob.send(channel["id"], f"{tag} a reply", thread_root_id=root["id"])
    pinned = await bob.send(channel["id"], f"{tag} pin me")
    assert (await alice.put(f"/api/v1/messages/{pinned['id']}/pin")).status_code == 200
    await alice.send(other["id"], f"{tag} elsewhere")

    assert await texts(alice, f"{tag} from:@{alice.username} {scope}") == [
        f"{tag} a thread root",
        f"{tag} plain from alice",
    ]
    assert len(await texts(alice, f"{tag} from:{bob.username} from:{alice.username}")) == 6
    assert await texts(alice, f"{tag} in:#{other['name']}") == [f"{tag} elsewhere"]
    assert len(await texts(alice, f"{tag} in:#{other['name']} {scope}")) == 6
    assert await texts(alice, f"{tag} has:link") == [
        f"{tag} from bob with https://example.com/x link"
    ]
    assert await texts(alice, f"{tag} is:pinned") == [f"{tag} pin me"]
    assert await texts(alice, f"{tag} is:thread") == [f"{tag} a reply", f"{tag} a thread root"]
    # Operators alone (no words) list matching messages too.
    assert await texts(alice, f"{scope} is:pinned") == [f"{tag} pin me"]
    assert await texts(alice, f"{tag} from:@nobody-{tag}") == []
    assert await texts(alice, f"{tag} in:#no-such-{tag}") == []

    today = datetime.now(UTC).date()
    assert len(await texts(alice, f"{tag} on:{today.isoformat()}")) == 6
    yesterday = (today - timedelta(days=1)).isoformat()
    tomorrow = (today + timedelta(days=1)).isoformat()
    assert len(await texts(alice, f"{tag} after:{yesterday} before:{tomorrow}")) == 6
    assert await texts(alice, f"{tag} before:{today.isoformat()}") == []
    assert await texts(alice, f"{tag} after:{today.isoformat()}") == []
    result = (await search(alice, f"{tag} from:@{alice.username} is:thread"))["results"]
    assert [r["message"]["id"] for r in result] == [root["id"]]
    assert from_alice["id"] not in [r["message"]["id"] for r in result]


async def test_results_carry_context_and_escaped_highlighted_snippets(
    alice: Person, bob: Person
) -> None:
    channel = await alice.create_channel(member_ids=[bob.id])
    root = await alice.send(channel["id"], "root of the thread")
    long_text = "x " * 150 + "<script>alert(1)</script> the DEPLOYMENT & rollback " + "y " * 150
    reply = await bob.send(channel["id"], long_text, thread_root_id=root["id"])
    page = await search(alice, f"deploy rollback in:#{channel['name']}")
    (result,) = page["results"]
    assert result["message"]["id"] == reply["id"]
    assert result["message"]["thread_root_id"] == root["id"]
    assert result["channel"] == {"id": channel["id"], "kind": "public", "name": channel["name"]}
    snippet = result["snippet"]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in snippet
    assert "<mark>DEPLOYMENT</mark> &amp; <mark>rollback</mark>" in snippet
    assert snippet.replace("<mark>", "").replace("</mark>", "").count("<") == 0
    assert snippet.startswith("…")
    assert snippet.endswith("…")
    assert len(snippet) < 320
    start, end = result["highlights"][0]
    assert long_text[start:end] == "DEPLOYMENT"


async def test_search_sees_exactly_what_access_rules_allow(
    org: Org, alice: Person, bob: Person, carol: Person, guest: Person, admin: Person
) -> None:
    tag = unique("vis").replace("-", "")
    public = await alice.create_channel()
    private = await alice.create_channel(private=True, member_ids=[bob.id])
    direct = await alice.post("/api/v1/conversations", {"user_ids": [bob.id]})
    assert direct.status_code in (200, 201), direct.text
    await alice.send(public["id"], f"{tag} public")
    await alice.send(private["id"], f"{tag} private")
    await alice.send(direct.json()["id"], f"{tag} direct")
    assert sorted(await texts(alice, tag)) == [f"{tag} direct", f"{tag} private", f"{tag} public"]
    assert sorted(await texts(bob, tag)) == [f"{tag} direct", f"{tag} private", f"{tag} public"]
    # A non-member reads public channels, never private ones or others' conversations.
    assert await texts(carol, tag) == [f"{tag} public"]
    assert await texts(admin, tag) == [f"{tag} public"]
    # Guests read only channels they were added to.
    assert await texts(guest, tag) == []
    assert await texts(guest, f"{tag} in:#{public['name']}") == []
    assert await texts(carol, f"{tag} in:#{private['name']}") == []
    # Removed from the private channel: nothing from it any more, by any query.
    removed = await alice.delete(f"/api/v1/channels/{private['id']}/members/{bob.id}")
    assert removed.status_code in (200, 204), removed.text
    assert sorted(await texts(bob, tag)) == [f"{tag} direct", f"{tag} public"]
    assert await texts(bob, f"{tag} in:#{private['name']}") == []
    assert await texts(bob, f"in:#{private['name']} from:@{alice.username}") == []


async def test_edits_and_deletions_show_at_once(alice: Person) -> None:
    channel = await alice.create_channel()
    scope = f"in:#{channel['name']}"
    message = await alice.send(channel["id"], "the quarterly numbers look bad")
    assert len(await texts(alice, f"quarterly {scope}")) == 1
    edited = await alice.patch(f"/api/v1/messages/{message['id']}", {"text": "the yearly plan"})
    assert edited.status_code == 200
    assert await texts(alice, f"quarterly {scope}") == []
    assert await texts(alice, f"yearly {scope}") == ["the yearly plan"]
    assert (await alice.delete(f"/api/v1/messages/{message['id']}")).status_code == 200
    assert await texts(alice, f"yearly {scope}") == []
    assert await texts(alice, scope) == []


async def test_pages_by_date_and_by_relevance(alice: Person) -> None:
    channel = await alice.create_channel()
    scope = f"in:#{channel['name']}"
    sent = [await alice.send(channel["id"], f"paging item number {n}") for n in range(7)]
    strong = await alice.send(channel["id"], "paging paging paging paging strongly")
    seen: list[int] = []
    cursor = None
    for _ in range(5):
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = await search(alice, f"paging {scope}", **params)
        seen.extend(r["message"]["id"] for r in page["results"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted([m["id"] for m in [*sent, strong]], reverse=True)

    ranked = await search(alice, f"paging {scope}", order="relevance", limit=3)
    assert ranked["order"] == "relevance"
    assert ranked["results"][0]["message"]["id"] == strong["id"]
    assert ranked["results"][0]["score"] >= ranked["results"][1]["score"]
    rest = await search(
        alice, f"paging {scope}", order="relevance", limit=3, cursor=ranked["next_cursor"]
    )
    ids = [r["message"]["id"] for r in ranked["results"] + rest["results"]]
    assert len(set(ids)) == 6
    wrong = await alice.get(
        "/api/v1/search", params={"q": "paging", "order": "date", "cursor": ranked["next_cursor"]}
    )
    assert wrong.status_code == 400


async def test_search_cost_does_not_grow_with_results(alice: Person, queries: QueryCounter) -> None:
    channel = await alice.create_channel()
    for n in range(12):
        await alice.send(channel["id"], f"counting queries {n}")
    with queries.counting() as one:
        await search(alice, f"counting in:#{channel['name']}", limit=1)
    with queries.counting() as many:
        await search(alice, f"counting in:#{channel['name']}", limit=12)
    assert one.count == many.count, many.statements
    assert many.count <= 10, many.statements


@pytest.mark.parametrize(
    "q",
    [
        '"unbalanced',
        'a "b',
        "!:*&|()<->",
        "'; DROP TABLE messages; --",
        "% _ %% __",
        "a* * ** -* -",
        "NEAR(a b) OR c AND NOT d",
        "\\ \\\\ ''' \"\"",
        "foo:bar baz:",
        "col:body {body}: ^a",
        "\u200b\u202e",
        "🙂 🎉",
    ],
)
async def test_syntax_of_either_database_is_just_text(alice: Person, q: str) -> None:
    started = time.monotonic()
    response = await alice.get("/api/v1/search", params={"q": q})
    assert response.status_code == 200, response.text
    assert isinstance(response.json()["results"], list)
    assert time.monotonic() - started < 2


@pytest.mark.parametrize(
    ("q", "code"),
    [
        (" ".join(f"w{i}" for i in range(5_000)), "query_too_long"),
        ("x" * 60_000, "query_too_long"),
        (" ".join(f"w{i}" for i in range(40)), "query_too_complex"),
        ("has:nothing", "unknown_operator_value"),
        ("is:weird", "unknown_operator_value"),
        ("before:yesterday", "invalid_date"),
        ("on:2026-02-30", "invalid_date"),
        ("from:", "missing_operator_value"),
        ("   ", "empty_query"),
    ],
)
async def test_unusable_queries_are_a_clear_400(alice: Person, q: str, code: str) -> None:
    started = time.monotonic()
    response = await alice.get("/api/v1/search", params={"q": q})
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == code
    assert time.monotonic() - started < 2


@pytest.mark.parametrize(
    "q", [" ".join(f"w{i}" for i in range(10_000)), "数" * 100_000, "a " * 50_000]
)
async def test_huge_queries_in_a_body_are_a_clear_400(alice: Person, q: str) -> None:
    started = time.monotonic()
    response = await alice.post("/api/v1/search", {"q": q})
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "query_too_long"
    assert time.monotonic() - started < 2


async def test_search_by_body_matches_search_by_url(alice: Person) -> None:
    channel = await alice.create_channel()
    await alice.send(channel["id"], "posted search works too")
    q = f"posted in:#{channel['name']}"
    by_body = await alice.post("/api/v1/search", {"q": q, "limit": 5})
    assert by_body.status_code == 200, by_body.text
    assert by_body.json() == await search(alice, q, limit=5)


async def test_bad_cursor_and_parameters(alice: Person) -> None:
    for params, status in (
        ({"q": "x", "cursor": "!!!"}, 400),
        ({"q": "x", "cursor": "ZDpub3QtYS1udW1iZXI"}, 400),
        ({"q": "x", "order": "sideways"}, 422),
        ({"q": "x", "limit": 0}, 422),
        ({}, 422),
    ):
        response = await alice.get("/api/v1/search", params=params)
        assert response.status_code == status, (params, response.text)


async def test_search_needs_a_signed_in_user(org: Org) -> None:
    response = await org.anonymous().get("/api/v1/search", params={"q": "anything"})
    assert response.status_code == 401
