"""Ids leak nothing, and no valid credentials means no data.

Case 37 of ``BAD-INPUTS.md``: for every id-bearing route, an object the caller may not see
answers *exactly* like an id that does not exist (same status, same problem body apart from
``instance``), for a non-member and for a guest. A deactivated user's credentials and
requests without credentials get 401 everywhere. Nothing the refused requests attempt is
stored.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.api.files_support import image_bytes
from tests.support import PASSWORD, Org, Person

PROBLEM_JSON = "application/problem+json"
PROBLEM_FIELDS = {"type", "title", "status", "code", "detail"}
THUMBS_UP = "%F0%9F%91%8D"
# Far above anything a test run creates, yet inside both databases' 64-bit integers.
MISSING_BASE = 2**62


@dataclass(frozen=True)
class Route:
    """One request, with ``{placeholders}`` for the ids of a scene."""

    name: str
    method: str
    path: str
    body: Any = None
    guests_only: bool = False

    def request(self, ids: dict[str, int]) -> tuple[str, str, Any]:
        """Method, path and body with the placeholders filled in."""
        return self.method, self.path.format(**ids), _fill(self.body, ids)


def _fill(value: Any, ids: dict[str, int]) -> Any:
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        return ids[value[1:-1]]
    if isinstance(value, dict):
        return {key: _fill(item, ids) for key, item in value.items()}
    if isinstance(value, list):
        return [_fill(item, ids) for item in value]
    return value


CHANNEL = "/api/v1/channels/{channel}"
MESSAGE = "/api/v1/messages/{message}"

ID_ROUTES = [
    Route("get channel", "GET", CHANNEL),
    Route("change topic", "PATCH", CHANNEL, {"topic": "hijacked"}),
    Route("rename", "PATCH", CHANNEL, {"name": "hijacked"}),
    Route("archive", "POST", CHANNEL + "/archive"),
    Route("unarchive", "POST", CHANNEL + "/unarchive"),
    Route("history", "GET", CHANNEL + "/messages"),
    Route("history around", "GET", CHANNEL + "/messages?around=1&limit=5"),
    # A page other than ``around`` carries its own access facts (docs/adr/0015): each form.
    Route("history before", "GET", CHANNEL + "/messages?before=5&limit=5"),
    Route("history after", "GET", CHANNEL + "/messages?after=0&limit=5"),
    Route("post message", "POST", CHANNEL + "/messages", {"text": "intruder"}),
    Route(
        "post with client id",
        "POST",
        CHANNEL + "/messages",
        {"text": "intruder", "client_message_id": "probe-1"},
    ),
    Route(
        "post thread reply with the root",
        "POST",
        CHANNEL + "/messages",
        {"text": "intruder", "thread_root_id": "{message}"},
    ),
    Route(
        "reply from own channel to the hidden root",
        "POST",
        "/api/v1/channels/{home}/messages",
        {"text": "intruder", "thread_root_id": "{message}"},
    ),
    Route("members", "GET", CHANNEL + "/members"),
    Route("add member", "POST", CHANNEL + "/members", {"user_ids": ["{viewer}"]}),
    Route("remove a member", "DELETE", CHANNEL + "/members/{alice}"),
    Route("remove yourself", "DELETE", CHANNEL + "/members/{viewer}"),
    Route("pins", "GET", CHANNEL + "/pins"),
    Route("read to newest", "POST", CHANNEL + "/read", {}),
    Route("read to seq", "POST", CHANNEL + "/read", {"seq": 1}),
    Route("join", "POST", CHANNEL + "/join"),
    Route("leave", "POST", CHANNEL + "/leave"),
    Route("preferences", "PUT", CHANNEL + "/preferences", {"muted": True, "starred": True}),
    Route("get message", "GET", MESSAGE),
    Route("get reply", "GET", "/api/v1/messages/{reply}"),
    Route("edit message", "PATCH", MESSAGE, {"text": "hijacked"}),
    Route("delete message", "DELETE", MESSAGE),
    Route("delete reply", "DELETE", "/api/v1/messages/{reply}"),
    Route("thread", "GET", MESSAGE + "/thread"),
    Route("thread of a reply", "GET", "/api/v1/messages/{reply}/thread"),
    Route("versions", "GET", MESSAGE + "/versions"),
    Route("react", "PUT", MESSAGE + "/reactions/" + THUMBS_UP),
    Route("unreact", "DELETE", MESSAGE + "/reactions/" + THUMBS_UP),
    Route("pin", "PUT", MESSAGE + "/pin"),
    Route("unpin", "DELETE", MESSAGE + "/pin"),
    Route("file", "GET", "/api/v1/files/{file}"),
    Route("file content", "GET", "/api/v1/files/{file}/content"),
    Route("file range", "GET", "/api/v1/files/{file}/content?download=true"),
    Route("file thumbnail", "GET", "/api/v1/files/{file}/thumbnail"),
    Route(
        "attach someone's file",
        "POST",
        "/api/v1/channels/{home}/messages",
        {"text": "mine now", "file_ids": ["{file}"]},
    ),
    Route("end someone's session", "DELETE", "/api/v1/auth/sessions/{session}"),
    Route("revoke someone's token", "DELETE", "/api/v1/auth/tokens/{token}"),
    Route("profile", "GET", "/api/v1/users/{alice}", guests_only=True),
    Route("open a conversation", "POST", "/api/v1/conversations", {"user_ids": ["{alice}"]}, True),
]

OTHER_ROUTES = [
    Route("me", "GET", "/api/v1/me"),
    Route("change profile", "PATCH", "/api/v1/me", {"display_name": "Changed"}),
    Route("set status", "PUT", "/api/v1/me/status", {"text": "away"}),
    Route("my channels", "GET", "/api/v1/channels"),
    Route("browse", "GET", "/api/v1/channels/browse"),
    Route("create channel", "POST", "/api/v1/channels", {"name": "while-deactivated"}),
    Route("directory", "GET", "/api/v1/users"),
    Route("conversation", "POST", "/api/v1/conversations", {"user_ids": ["{alice}"]}),
    Route("sessions", "GET", "/api/v1/auth/sessions"),
    Route("tokens", "GET", "/api/v1/auth/tokens"),
    Route("new token", "POST", "/api/v1/auth/tokens", {"name": "again", "scopes": ["read"]}),
    Route("sign out", "POST", "/api/v1/auth/sign-out"),
    Route("sign out elsewhere", "POST", "/api/v1/auth/sessions/revoke-others"),
    Route("search", "GET", "/api/v1/search?q=secret"),
    Route("upload", "POST", "/api/v1/files", {"file": "x"}),
]


@dataclass
class Scene:
    """What one viewer must not see: Alice's channel, a thread in it, her credentials."""

    viewer: Person
    ids: dict[str, int]
    missing: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        hidden = ("channel", "message", "reply", "alice", "session", "token", "file")
        self.missing = {
            **self.ids,
            **{key: MISSING_BASE + n for n, key in enumerate(hidden, start=1)},
        }


@dataclass
class World:
    """Alice's private and public channels, and the people who look at them."""

    org: Org
    alice: Person
    scenes: dict[str, Scene]
    private: dict[str, int]


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """A problem+json refusal with every RFC 9457 member."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].split(";")[0] == PROBLEM_JSON
    body = response.json()
    assert body.keys() >= PROBLEM_FIELDS, body
    assert body["status"] == status
    return dict(body)


async def thread_in(alice: Person, channel_id: int) -> dict[str, int]:
    """A root with a reply, a reaction, a pin, an edit and an image attached to the reply, so
    every route has data to leak."""
    root = await alice.send(channel_id, "secret root")
    upload = await alice.client.post(
        "/api/v1/files", files={"file": ("secret.png", image_bytes("PNG"), "image/png")}
    )
    assert upload.status_code == 201, upload.text
    reply = await alice.send(
        channel_id, "secret reply", thread_root_id=root["id"], file_ids=[upload.json()["id"]]
    )
    for method, path, body in (
        ("PUT", f"/api/v1/messages/{root['id']}/reactions/{THUMBS_UP}", None),
        ("PUT", f"/api/v1/messages/{root['id']}/pin", None),
        ("PATCH", f"/api/v1/messages/{root['id']}", {"text": "secret root, edited"}),
    ):
        response = await alice.client.request(method, path, json=body)
        assert response.status_code == 200, response.text
    return {
        "channel": channel_id,
        "message": root["id"],
        "reply": reply["id"],
        "file": upload.json()["id"],
    }


@pytest.fixture(scope="module")
async def world(org: Org) -> World:
    """Built once: the refused requests below must not change it, and each test checks that."""
    alice = await org.person("alice")
    bob = await org.person("bob")
    guest = await org.person("guest", role="guest")
    private = await alice.create_channel(private=True, topic="secret plans")
    public = await alice.create_channel(topic="open plans")
    private_ids = await thread_in(alice, private["id"])
    public_ids = await thread_in(alice, public["id"])
    sessions = (await alice.get("/api/v1/auth/sessions")).json()["sessions"]
    token = await alice.post("/api/v1/auth/tokens", {"name": "ci", "scopes": ["read"]})
    assert token.status_code == 201, token.text
    alice_ids = {
        "alice": alice.id,
        "session": next(s["id"] for s in sessions if s["current"]),
        "token": token.json()["token"]["id"],
    }
    bob_home = await bob.create_channel()
    guest_home = await org.owner.create_channel(private=True, member_ids=[guest.id])
    bob_ids = {"viewer": bob.id, "home": bob_home["id"], **alice_ids}
    guest_ids = {"viewer": guest.id, "home": guest_home["id"], **alice_ids}
    return World(
        org=org,
        alice=alice,
        scenes={
            "bob/private": Scene(bob, {**private_ids, **bob_ids}),
            "guest/private": Scene(guest, {**private_ids, **guest_ids}),
            "guest/public": Scene(guest, {**public_ids, **guest_ids}),
        },
        private=private_ids,
    )


async def alice_state(alice: Person, ids: dict[str, int]) -> dict[str, Any]:
    """Everything a refused request on Alice's objects could have changed, as she sees it."""
    channel = f"/api/v1/channels/{ids['channel']}"
    paths = [
        channel,
        f"{channel}/messages",
        f"{channel}/members",
        f"{channel}/pins",
        f"/api/v1/messages/{ids['message']}",
        f"/api/v1/messages/{ids['message']}/thread",
        f"/api/v1/messages/{ids['message']}/versions",
        "/api/v1/channels",
        "/api/v1/auth/tokens",
    ]
    state: dict[str, Any] = {}
    for path in paths:
        response = await alice.get(path)
        assert response.status_code == 200, (path, response.text)
        state[path] = response.json()
    sessions = (await alice.get("/api/v1/auth/sessions")).json()["sessions"]
    state["sessions"] = sorted(s["id"] for s in sessions)
    return state


def without_instance(body: dict[str, Any]) -> dict[str, Any]:
    """The problem body minus the one member allowed to differ (it echoes the path)."""
    return {key: value for key, value in body.items() if key != "instance"}


UNIFORM_CASES = [
    pytest.param(scene, route, id=f"{scene}:{route.name}")
    for scene in ("bob/private", "guest/private", "guest/public")
    for route in ID_ROUTES
    if scene.startswith("guest") or not route.guests_only
]


@pytest.mark.parametrize(("scene_name", "route"), UNIFORM_CASES)
async def test_hidden_ids_answer_exactly_like_missing_ids(
    world: World, scene_name: str, route: Route
) -> None:
    scene = world.scenes[scene_name]
    before = await alice_state(world.alice, scene.ids)
    method, path, body = route.request(scene.ids)
    hidden = await scene.viewer.client.request(method, path, json=body)
    method, path, body = route.request(scene.missing)
    missing = await scene.viewer.client.request(method, path, json=body)

    assert_problem(missing, 404)
    assert hidden.status_code == missing.status_code, hidden.text
    assert hidden.headers["content-type"] == missing.headers["content-type"]
    assert without_instance(hidden.json()) == without_instance(missing.json())
    assert await alice_state(world.alice, scene.ids) == before


async def test_the_scene_is_visible_to_its_owner(world: World) -> None:
    """The 404s above are about who asks: Alice reaches every one of those objects."""
    ids = world.private
    for path in (
        f"/api/v1/channels/{ids['channel']}/messages",
        f"/api/v1/messages/{ids['message']}/thread",
        f"/api/v1/messages/{ids['reply']}",
        f"/api/v1/files/{ids['file']}/content",
        f"/api/v1/files/{ids['file']}/thumbnail",
    ):
        assert (await world.alice.get(path)).status_code == 200


# --- deactivated users -----------------------------------------------------------------------


@dataclass
class Deactivated:
    """Dave, a member of Alice's private channel, deactivated with two live-looking secrets."""

    username: str
    session: httpx.AsyncClient
    token: httpx.AsyncClient
    ids: dict[str, int]


@pytest.fixture(scope="module")
async def deactivated(org: Org, world: World) -> AsyncIterator[Deactivated]:
    """Dave signs in, creates a personal token, and is then deactivated by the owner."""
    dave = await org.person("dave")
    channel = world.private["channel"]
    added = await world.alice.post(f"/api/v1/channels/{channel}/members", {"user_ids": [dave.id]})
    assert added.status_code == 200, added.text
    home = await dave.create_channel()
    issued = await dave.post("/api/v1/auth/tokens", {"name": "cli", "scopes": ["read", "write"]})
    assert issued.status_code == 201, issued.text
    sessions = (await dave.get("/api/v1/auth/sessions")).json()["sessions"]
    assert (await dave.get(f"/api/v1/channels/{channel}/messages")).status_code == 200
    gone = await org.owner.post(f"/api/v1/users/{dave.id}/deactivate")
    assert gone.status_code == 200, gone.text
    token_client = httpx.AsyncClient(
        base_url=org.server.url,
        headers={"Authorization": f"Bearer {issued.json()['secret']}"},
        timeout=30,
    )
    ids = {
        **world.scenes["bob/private"].ids,
        "viewer": dave.id,
        "home": home["id"],
        "session": sessions[0]["id"],
    }
    yield Deactivated(username=dave.username, session=dave.client, token=token_client, ids=ids)
    await token_client.aclose()


EVERY_ROUTE = [pytest.param(route, id=route.name) for route in [*ID_ROUTES, *OTHER_ROUTES]]


@pytest.mark.parametrize("route", EVERY_ROUTE)
@pytest.mark.parametrize("credential", ["session", "token"])
async def test_deactivated_users_credentials_get_401_on_every_route(
    world: World, deactivated: Deactivated, credential: str, route: Route
) -> None:
    client = deactivated.session if credential == "session" else deactivated.token
    before = await alice_state(world.alice, world.private)
    method, path, body = route.request(deactivated.ids)
    response = await client.request(method, path, json=body)
    problem = assert_problem(response, 401)
    # Deactivation deleted the session; the personal token survives but its owner is inactive.
    assert problem["code"] == (
        "session_expired" if credential == "session" else "account_deactivated"
    )
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert await alice_state(world.alice, world.private) == before


async def test_deactivated_user_cannot_sign_in_again(org: Org, deactivated: Deactivated) -> None:
    listed = await org.owner.get(f"/api/v1/users/{deactivated.ids['viewer']}")
    assert listed.json()["deactivated"] is True
    response = await org.anonymous().post(
        "/api/v1/auth/sign-in",
        json={"login": deactivated.username, "password": PASSWORD, "session_type": "token"},
    )
    assert assert_problem(response, 401)["code"] == "account_deactivated"


# --- no credentials --------------------------------------------------------------------------


@pytest.mark.parametrize("route", EVERY_ROUTE)
async def test_requests_without_credentials_get_401_with_www_authenticate(
    world: World, route: Route
) -> None:
    before = await alice_state(world.alice, world.private)
    method, path, body = route.request(world.scenes["bob/private"].ids)
    response = await world.org.anonymous().request(method, path, json=body)
    problem = assert_problem(response, 401)
    assert problem["code"] == "not_signed_in"
    assert response.headers["www-authenticate"] == 'Bearer realm="courtyard"'
    assert await alice_state(world.alice, world.private) == before


@pytest.mark.parametrize(
    ("headers", "cookies", "code"),
    [
        ({"Authorization": "Bearer not-a-real-token"}, {}, "invalid_token"),
        ({"Authorization": "Bearer cys_" + "A" * 43}, {}, "session_expired"),
        ({"Authorization": "Bearer cyp_" + "A" * 43}, {}, "invalid_token"),
        ({"Authorization": "Bearer"}, {}, "invalid_authorization_header"),
        ({"Authorization": "Basic YWxpY2U6cGFzc3dvcmQ="}, {}, "invalid_authorization_header"),
        ({"Authorization": "Token abc"}, {}, "invalid_authorization_header"),
        ({}, {"courtyard_session": "forged"}, "invalid_token"),
    ],
    ids=[
        "garbage",
        "unknown-session",
        "unknown-token",
        "empty-bearer",
        "basic",
        "other-scheme",
        "cookie",
    ],
)
async def test_bad_credentials_get_401_with_www_authenticate(
    world: World, headers: dict[str, str], cookies: dict[str, str], code: str
) -> None:
    before = await alice_state(world.alice, world.private)
    client = world.org.anonymous()
    client.cookies.update(cookies)
    channel = world.private["channel"]
    for method, path, body in (
        ("GET", f"/api/v1/channels/{channel}/messages", None),
        ("POST", f"/api/v1/channels/{channel}/messages", {"text": "x"}),
    ):
        response = await client.request(method, path, json=body, headers=headers)
        problem = assert_problem(response, 401)
        assert problem["code"] == code
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert await alice_state(world.alice, world.private) == before


async def test_signed_out_token_gets_401(org: Org) -> None:
    erin = await org.person("erin")
    assert (await erin.post("/api/v1/auth/sign-out")).status_code == 204
    response = await erin.get("/api/v1/me")
    assert_problem(response, 401)
    assert "www-authenticate" in response.headers


async def test_lowercase_bearer_scheme_is_accepted(world: World) -> None:
    """The scheme is case-insensitive (RFC 9110): the refusals above are not about spelling."""
    client = world.org.anonymous()
    response = await client.get(
        "/api/v1/me", headers={"Authorization": f"bearer {world.alice.token}"}
    )
    assert response.status_code == 200, response.text
