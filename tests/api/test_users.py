"""The directory, profiles and status, creating users, roles, deactivation and password resets."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import select

from courtyard.app import build_services
from courtyard.services.context import utc_now
from courtyard.services.registry import Services
from courtyard.storage.schema import events
from tests.support import PASSWORD, LiveServer, Org, Person, QueryCounter, unique

NEW_PASSWORD = "an administrator chose this one"


# --- helpers ----------------------------------------------------------------------------------
def problem_code(response: httpx.Response) -> str:
    """The stable error code of a problem+json response."""
    assert response.headers["content-type"] == "application/problem+json", response.text
    return str(response.json()["code"])


async def sign_in(org: Org, login: str, password: str = PASSWORD) -> httpx.Response:
    """A raw token sign-in attempt."""
    return await org.anonymous().post(
        "/api/v1/auth/sign-in",
        json={"login": login, "password": password, "session_type": "token"},
    )


async def directory(person: Person, **params: Any) -> dict[str, Any]:
    """One page of GET /api/v1/users."""
    response = await person.get("/api/v1/users", params=params)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def whole_directory(person: Person, **params: Any) -> list[dict[str, Any]]:
    """Every user the person can see, following next_cursor."""
    users: list[dict[str, Any]] = []
    cursor = 0
    while True:
        page = await directory(person, cursor=cursor, limit=200, **params)
        users.extend(page["users"])
        if page["next_cursor"] is None:
            return users
        cursor = page["next_cursor"]


@asynccontextmanager
async def server_later(org: Org, offset: timedelta) -> AsyncIterator[LiveServer]:
    """A second server over the same database whose service clock runs ``offset`` ahead."""
    services = build_services(org.server.settings)
    ctx = dataclasses.replace(services.context, clock=lambda: utc_now() + offset)
    later = LiveServer(
        Services.build(ctx, services.realtime, files=services.files), org.server.settings
    )
    await later.start()
    try:
        yield later
    finally:
        await later.stop()


async def set_role(actor: Person, user_id: int, role: str) -> httpx.Response:
    """PUT /api/v1/users/{id}/role."""
    return await actor.put(f"/api/v1/users/{user_id}/role", {"role": role})


# --- the directory ----------------------------------------------------------------------------
async def test_directory_pages_with_cursor_until_next_cursor_is_null(
    org: Org, alice: Person
) -> None:
    tag = unique("page").replace("-", "")
    made = [
        (
            await org.owner.post(
                "/api/v1/users",
                {"username": unique("p"), "password": PASSWORD, "display_name": f"{tag} {n}"},
            )
        ).json()["id"]
        for n in range(5)
    ]
    seen: list[int] = []
    pages = []
    cursor = 0
    while True:
        page = await directory(alice, q=tag, limit=2, cursor=cursor)
        pages.append(len(page["users"]))
        seen.extend(u["id"] for u in page["users"])
        if page["next_cursor"] is None:
            break
        assert page["next_cursor"] == page["users"][-1]["id"]
        cursor = page["next_cursor"]
    assert pages == [2, 2, 1]
    assert seen == sorted(made)

    exact = await directory(alice, q=tag, limit=5)
    assert len(exact["users"]) == 5
    assert exact["next_cursor"] is None, "no phantom next page when the page is exactly full"


async def test_directory_page_costs_constant_queries(
    org: Org, alice: Person, queries: QueryCounter
) -> None:
    with queries.counting() as small:
        await directory(alice, limit=2)
    with queries.counting() as large:
        await directory(alice, limit=50)
    assert small.count == large.count, large.statements
    assert large.count <= 4, large.statements


async def test_directory_rejects_bad_page_parameters(alice: Person) -> None:
    for params in ({"limit": 0}, {"limit": 1001}, {"cursor": -1}, {"q": "x" * 65}):
        response = await alice.get("/api/v1/users", params=params)
        assert response.status_code == 422, params


async def test_directory_filter_is_case_insensitive_and_literal(org: Org, alice: Person) -> None:
    tag = unique("find").replace("-", "")
    user = (
        await org.owner.post(
            "/api/v1/users",
            {"username": unique("u"), "password": PASSWORD, "display_name": f"Zoë {tag.upper()}"},
        )
    ).json()
    by_display = await directory(alice, q=tag.lower())
    assert [u["id"] for u in by_display["users"]] == [user["id"]]
    by_username = await directory(alice, q=user["username"].upper())
    assert [u["id"] for u in by_username["users"]] == [user["id"]]
    # LIKE wildcards are matched literally, not as patterns.
    # (Other tests share this organisation, so every pattern includes this test's tag.)
    for pattern in (f"{tag[:3]}%{tag[-3:]}", f"{tag[:-1]}_", f"{tag}%"):
        assert (await directory(alice, q=pattern))["users"] == [], pattern


async def test_directory_shows_email_only_to_self_and_admins(org: Org, admin: Person) -> None:
    alice = await org.person("alice", email=f"{unique('alice')}@example.com")
    bob = await org.person("bob", email=f"{unique('bob')}@example.com")
    alice_view = {u["id"]: u for u in await whole_directory(alice, q="")}
    assert alice_view[alice.id]["email"] is not None
    assert alice_view[bob.id]["email"] is None
    assert all(u["email"] is None for uid, u in alice_view.items() if uid != alice.id)
    admin_view = {u["id"]: u for u in await whole_directory(admin)}
    assert admin_view[bob.id]["email"].startswith("bob-")

    assert (await alice.get(f"/api/v1/users/{bob.id}")).json()["email"] is None
    assert (await alice.get(f"/api/v1/users/{alice.id}")).json()["email"] is not None
    assert (await alice.get("/api/v1/me")).json()["email"] is not None
    assert (await admin.get(f"/api/v1/users/{bob.id}")).json()["email"] is not None


async def test_guest_sees_only_people_who_share_a_channel(
    guest: Person, admin: Person, alice: Person, bob: Person
) -> None:
    await admin.create_channel(private=True, member_ids=[guest.id, alice.id])
    visible = {u["id"] for u in await whole_directory(guest)}
    assert visible == {guest.id, admin.id, alice.id}
    assert {u["id"] for u in await whole_directory(guest, q=bob.username)} == set()
    assert (await guest.get(f"/api/v1/users/{alice.id}")).status_code == 200
    hidden = await guest.get(f"/api/v1/users/{bob.id}")
    assert hidden.status_code == 404
    missing = await guest.get("/api/v1/users/999999999")
    assert hidden.json()["detail"] == missing.json()["detail"], "hidden looks like missing"
    # Members see the whole directory, including the guest.
    assert guest.id in {u["id"] for u in await whole_directory(bob)}


async def test_deactivated_users_are_listed_only_on_request_and_only_to_admins(
    org: Org, admin: Person, alice: Person
) -> None:
    gone = await org.person("gone")
    assert (await admin.post(f"/api/v1/users/{gone.id}/deactivate")).status_code == 200
    assert gone.id not in {u["id"] for u in await whole_directory(admin)}
    with_gone = await whole_directory(admin, include_deactivated="true")
    assert next(u for u in with_gone if u["id"] == gone.id)["deactivated"] is True
    member_view = await whole_directory(alice, include_deactivated="true")
    assert gone.id not in {u["id"] for u in member_view}
    # The profile itself stays readable (history shows who wrote what).
    profile = await alice.get(f"/api/v1/users/{gone.id}")
    assert profile.status_code == 200 and profile.json()["deactivated"] is True


# --- profiles and status ----------------------------------------------------------------------
async def test_update_me_changes_display_name_title_and_timezone(alice: Person) -> None:
    changed = await alice.patch(
        "/api/v1/me",
        {"display_name": "  Alice Liddell ", "title": "Head of Wonder", "timezone": "Europe/Paris"},
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["display_name"], body["title"], body["timezone"]) == (
        "Alice Liddell",
        "Head of Wonder",
        "Europe/Paris",
    )
    partial = await alice.patch("/api/v1/me", {"title": ""})
    assert partial.json()["title"] == ""
    assert partial.json()["display_name"] == "Alice Liddell", "omitted fields stay"
    assert (await alice.get("/api/v1/me")).json()["timezone"] == "Europe/Paris"


async def test_profile_change_is_announced_without_the_email_address(org: Org) -> None:
    email = f"{unique('private')}@example.com"
    alice = await org.person("alice", email=email)
    changed = await alice.patch("/api/v1/me", {"title": "Announced"})
    assert changed.json()["email"] == email, "the change's author sees their own address"
    async with org.server.services.context.storage.snapshot() as uow:
        rows = await uow.conn.execute(
            select(events.c.payload, events.c.all_members)
            .where(events.c.type == "user.updated")
            .order_by(events.c.position.desc())
            .limit(50)
        )
        announced = [
            (orjson.loads(row.payload), row.all_members)
            for row in rows
            if orjson.loads(row.payload)["user"]["id"] == alice.id
        ]
    assert announced, "a profile change emits user.updated"
    payload, all_members = announced[0]
    assert payload["user"]["title"] == "Announced"
    assert payload["user"]["email"] is None
    assert email not in orjson.dumps(payload).decode()
    assert all_members is True


async def test_update_me_is_refused_when_a_value_is_invalid(alice: Person) -> None:
    before = (await alice.get("/api/v1/me")).json()
    for body, code in (
        ({"timezone": "Mars/Olympus_Mons"}, "invalid_timezone"),
        ({"timezone": "europe/paris"}, "invalid_timezone"),
        ({"display_name": "   "}, "empty"),
        ({"display_name": "evil\u202eeman"}, "forbidden_character"),
    ):
        refused = await alice.patch("/api/v1/me", {"title": "should not stick", **body})
        assert refused.status_code == 422, body
        assert problem_code(refused) == code
    too_long = await alice.patch("/api/v1/me", {"display_name": "x" * 65})
    assert too_long.status_code == 422
    assert (await alice.get("/api/v1/me")).json() == before


async def test_status_can_be_set_and_cleared(alice: Person, bob: Person) -> None:
    until = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    set_ = await alice.put(
        "/api/v1/me/status", {"emoji": "🌴", "text": "On holiday", "expires_at": until.isoformat()}
    )
    assert set_.status_code == 200, set_.text
    status = set_.json()["status"]
    assert status["emoji"] == "🌴" and status["text"] == "On holiday"
    assert datetime.fromisoformat(status["expires_at"]) == until
    assert (await bob.get(f"/api/v1/users/{alice.id}")).json()["status"]["text"] == "On holiday"

    cleared = await alice.put("/api/v1/me/status", {"text": ""})
    assert cleared.status_code == 200
    assert cleared.json()["status"] is None
    assert (await bob.get(f"/api/v1/users/{alice.id}")).json()["status"] is None


async def test_status_is_refused_when_it_expires_in_the_past_or_the_emoji_is_not_one(
    alice: Person,
) -> None:
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    refused = await alice.put("/api/v1/me/status", {"text": "Gone", "expires_at": past})
    assert refused.status_code == 422
    assert refused.json()["field"] == "expires_at"
    not_emoji = await alice.put("/api/v1/me/status", {"emoji": "smile", "text": "hi"})
    assert not_emoji.status_code == 422
    assert problem_code(not_emoji) == "invalid_emoji"
    assert (await alice.get("/api/v1/me")).json()["status"] is None


async def test_status_is_no_longer_shown_once_it_has_expired(
    org: Org, alice: Person, bob: Person
) -> None:
    until = datetime.now(UTC) + timedelta(hours=1)
    set_ = await alice.put(
        "/api/v1/me/status", {"emoji": "🍽", "text": "Lunch", "expires_at": until.isoformat()}
    )
    assert set_.status_code == 200, set_.text
    async with server_later(org, timedelta(hours=1, minutes=1)) as later:
        for viewer in (alice, bob):
            client = httpx.AsyncClient(base_url=later.url, headers=viewer.client.headers)
            try:
                profile = await client.get(f"/api/v1/users/{alice.id}")
                assert profile.json()["status"] is None, profile.json()["status"]
                listed = await client.get("/api/v1/users", params={"q": alice.username})
                assert [u["status"] for u in listed.json()["users"]] == [None]
            finally:
                await client.aclose()
    still = (await bob.get(f"/api/v1/users/{alice.id}")).json()["status"]
    assert still is not None and still["text"] == "Lunch", "before the expiry it shows"


async def test_status_expiry_without_a_timezone_is_refused_not_a_server_error(
    alice: Person,
) -> None:
    naive = (datetime.now(UTC) + timedelta(days=1)).replace(tzinfo=None).isoformat()
    response = await alice.put("/api/v1/me/status", {"text": "Busy", "expires_at": naive})
    assert response.status_code == 422, response.text


async def test_admin_can_edit_others_but_members_cannot(
    admin: Person, alice: Person, bob: Person
) -> None:
    edited = await admin.patch(f"/api/v1/users/{bob.id}", {"title": "Night shift"})
    assert edited.status_code == 200
    assert edited.json()["title"] == "Night shift"
    refused = await alice.patch(f"/api/v1/users/{bob.id}", {"title": "Intern"})
    assert refused.status_code == 403
    assert problem_code(refused) == "admin_required"
    assert (await bob.get("/api/v1/me")).json()["title"] == "Night shift"
    missing = await admin.patch("/api/v1/users/999999999", {"title": "x"})
    assert missing.status_code == 404


# --- creating users ---------------------------------------------------------------------------
async def test_create_user_refuses_taken_usernames_and_emails_in_any_case(
    org: Org, admin: Person
) -> None:
    name = unique("dup")
    email = f"{unique('dup')}@example.com"
    first = await admin.post(
        "/api/v1/users", {"username": name, "password": PASSWORD, "email": email}
    )
    assert first.status_code == 201
    assert first.json()["email"] == email
    same_name = await admin.post("/api/v1/users", {"username": name.upper(), "password": PASSWORD})
    assert same_name.status_code == 409
    assert problem_code(same_name) == "username_taken"
    same_email = await admin.post(
        "/api/v1/users",
        {"username": unique("other"), "password": PASSWORD, "email": email.upper()},
    )
    assert same_email.status_code == 409
    assert problem_code(same_email) == "email_taken"
    for bad in ({"username": "Has Space"}, {"username": "all"}, {"password": "short"}):
        body = {"username": unique("ok"), "password": PASSWORD, **bad}
        assert (await admin.post("/api/v1/users", body)).status_code == 422, bad
    assert (await sign_in(org, name)).status_code == 200


async def test_members_cannot_create_users(alice: Person) -> None:
    refused = await alice.post("/api/v1/users", {"username": unique("x"), "password": PASSWORD})
    assert refused.status_code == 403
    assert problem_code(refused) == "admin_required"


# --- roles ------------------------------------------------------------------------------------
async def test_only_the_owner_grants_admin(
    org: Org, owner: Person, admin: Person, alice: Person, bob: Person
) -> None:
    for role in ("admin", "owner"):
        refused = await set_role(admin, bob.id, role)
        assert refused.status_code == 403, role
        assert problem_code(refused) == "role_not_allowed"
    direct = await admin.post(
        "/api/v1/users", {"username": unique("x"), "password": PASSWORD, "role": "admin"}
    )
    assert problem_code(direct) == "role_not_allowed"
    assert (await bob.get("/api/v1/me")).json()["role"] == "member"

    granted = await set_role(owner, alice.id, "admin")
    assert granted.status_code == 200
    assert granted.json()["role"] == "admin"
    # The new role applies to Alice's existing session at once.
    made = await alice.post("/api/v1/users", {"username": unique("y"), "password": PASSWORD})
    assert made.status_code == 201
    # ...but one admin cannot demote another.
    demote = await set_role(admin, alice.id, "member")
    assert problem_code(demote) == "role_not_allowed"


async def test_admins_manage_members_and_guests(admin: Person, bob: Person) -> None:
    to_guest = await set_role(admin, bob.id, "guest")
    assert to_guest.status_code == 200
    assert (await bob.get("/api/v1/me")).json()["role"] == "guest"
    back = await set_role(admin, bob.id, "member")
    assert back.json()["role"] == "member"


async def test_members_cannot_change_roles(alice: Person, bob: Person) -> None:
    for target, role in ((bob.id, "guest"), (alice.id, "admin")):
        refused = await set_role(alice, target, role)
        assert refused.status_code == 403
        assert problem_code(refused) == "admin_required"
    assert (await alice.get("/api/v1/me")).json()["role"] == "member"


async def test_last_owner_cannot_be_demoted_or_deactivated(fresh_org: Org) -> None:
    owner = fresh_org.owner
    demote = await set_role(owner, owner.id, "admin")
    assert demote.status_code == 409
    assert problem_code(demote) == "last_owner"
    deactivate = await owner.post(f"/api/v1/users/{owner.id}/deactivate")
    assert deactivate.status_code == 409
    assert problem_code(deactivate) == "last_owner"
    assert (await owner.get("/api/v1/me")).json()["role"] == "owner"

    heir = await fresh_org.person("heir")
    assert (await set_role(owner, heir.id, "owner")).status_code == 200
    stepped_down = await set_role(owner, owner.id, "member")
    assert stepped_down.status_code == 200
    # The heir is now the last owner, and the former owner no longer decides.
    assert problem_code(await set_role(heir, heir.id, "member")) == "last_owner"
    assert problem_code(await set_role(owner, heir.id, "member")) == "admin_required"


async def test_admin_cannot_touch_owners(fresh_org: Org) -> None:
    owner = fresh_org.owner
    admin = await fresh_org.person("admin", role="admin")
    for response in (
        await set_role(admin, owner.id, "member"),
        await admin.post(f"/api/v1/users/{owner.id}/deactivate"),
        await admin.post(f"/api/v1/users/{owner.id}/password", {"new_password": NEW_PASSWORD}),
    ):
        assert response.status_code == 403, response.text
        assert problem_code(response) == "role_not_allowed"
    assert (await owner.get("/api/v1/me")).status_code == 200


async def test_deactivated_owner_can_be_demoted_when_an_active_owner_remains(
    fresh_org: Org,
) -> None:
    owner = fresh_org.owner
    second = await fresh_org.person("second")
    assert (await set_role(owner, second.id, "owner")).status_code == 200
    assert (await owner.post(f"/api/v1/users/{second.id}/deactivate")).status_code == 200
    demoted = await set_role(owner, second.id, "member")
    assert demoted.status_code == 200, demoted.text
    assert demoted.json()["role"] == "member"
    again = await owner.post(f"/api/v1/users/{second.id}/deactivate")
    assert again.status_code == 200, "deactivating twice changes nothing and is harmless"


async def test_two_owners_demoting_each_other_at_once_leave_one_owner(
    fresh_org: Org, db_backend: str, request: pytest.FixtureRequest
) -> None:
    owner = fresh_org.owner
    other = await fresh_org.person("co-owner")
    assert (await set_role(owner, other.id, "owner")).status_code == 200
    for _ in range(5):
        results = await asyncio.gather(
            set_role(owner, other.id, "member"), set_role(other, owner.id, "member")
        )
        statuses = sorted(r.status_code for r in results)
        owners = [u for u in await whole_directory(owner) if u["role"] == "owner"]
        assert len(owners) == 1, (statuses, owners)
        # The loser is refused either as the last owner or, if it authenticated after the
        # winner's commit, as a member who may no longer change roles.
        assert statuses[0] == 200 and statuses[1] in (403, 409), statuses
        # Put both back as owners for the next round.
        survivor = owner if owners[0]["id"] == owner.id else other
        loser = other if survivor is owner else owner
        assert (await set_role(survivor, loser.id, "owner")).status_code == 200


# --- deactivation -----------------------------------------------------------------------------
async def test_deactivation_ends_sessions_at_once_and_keeps_history(
    org: Org, admin: Person, alice: Person, bob: Person
) -> None:
    channel = await bob.create_channel(member_ids=[alice.id])
    said = await alice.send(channel["id"], "remember me")
    laptop = await org.sign_in(alice.username)

    done = await admin.post(f"/api/v1/users/{alice.id}/deactivate")
    assert done.status_code == 200
    assert done.json()["deactivated"] is True
    for client in (alice, laptop):
        refused = await client.get("/api/v1/me")
        assert refused.status_code == 401
        assert problem_code(refused) in ("account_deactivated", "session_expired")
    assert problem_code(await sign_in(org, alice.username)) == "account_deactivated"

    assert (await bob.get(f"/api/v1/users/{alice.id}")).json()["deactivated"] is True
    history = (await bob.get(f"/api/v1/channels/{channel['id']}/messages")).json()["messages"]
    assert [(m["id"], m["sender_id"], m["text"]) for m in history] == [
        (said["id"], alice.id, "remember me")
    ]

    back = await admin.post(f"/api/v1/users/{alice.id}/reactivate")
    assert back.status_code == 200
    assert back.json()["deactivated"] is False
    assert (await alice.get("/api/v1/me")).status_code == 401, "old sessions stay ended"
    again = await sign_in(org, alice.username)
    assert again.status_code == 200
    assert again.json()["user"]["deactivated"] is False


async def test_deactivated_user_cannot_be_added_to_channels(
    admin: Person, alice: Person, bob: Person
) -> None:
    assert (await admin.post(f"/api/v1/users/{bob.id}/deactivate")).status_code == 200
    refused = await alice.post("/api/v1/channels", {"name": unique("chan"), "member_ids": [bob.id]})
    assert refused.status_code == 422


async def test_members_cannot_deactivate_reactivate_or_reset_passwords(
    org: Org, admin: Person, alice: Person, bob: Person
) -> None:
    for path, body in (
        (f"/api/v1/users/{bob.id}/deactivate", None),
        (f"/api/v1/users/{bob.id}/reactivate", None),
        (f"/api/v1/users/{bob.id}/password", {"new_password": NEW_PASSWORD}),
    ):
        refused = await alice.post(path, body)
        assert refused.status_code == 403, path
        assert problem_code(refused) == "admin_required"
    assert (await bob.get("/api/v1/me")).status_code == 200
    # Admins cannot deactivate other admins either (only the owner manages admins).
    other_admin = await org.person("admin", role="admin")
    refused = await admin.post(f"/api/v1/users/{other_admin.id}/deactivate")
    assert refused.status_code == 403
    assert problem_code(refused) == "role_not_allowed"
    assert (await other_admin.get("/api/v1/me")).status_code == 200


async def test_admin_password_reset_ends_that_users_sessions(
    org: Org, admin: Person, alice: Person, bob: Person
) -> None:
    short = await admin.post(f"/api/v1/users/{alice.id}/password", {"new_password": "short"})
    assert short.status_code == 422
    assert (await alice.get("/api/v1/me")).status_code == 200

    reset = await admin.post(f"/api/v1/users/{alice.id}/password", {"new_password": NEW_PASSWORD})
    assert reset.status_code == 204
    ended = await alice.get("/api/v1/me")
    assert ended.status_code == 401
    assert problem_code(ended) == "session_expired"
    assert (await bob.get("/api/v1/me")).status_code == 200, "only that user's sessions end"
    assert (await admin.get("/api/v1/me")).status_code == 200
    assert problem_code(await sign_in(org, alice.username)) == "invalid_credentials"
    assert (await sign_in(org, alice.username, NEW_PASSWORD)).status_code == 200
