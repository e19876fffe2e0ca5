"""Password rules: length, the common-password list and guessability, on every way to set one."""

from __future__ import annotations

import pytest

from tests.security.support import problem_code
from tests.support import PASSWORD, Org, Person, unique

CASES = [
    ("short pass", "password_too_short"),
    ("password1234", "password_too_common"),
    ("Qwertyuiop123", "password_too_common"),
    ("aaaaaaaaaaaaaaaa", "password_too_weak"),
]


@pytest.mark.parametrize(("password", "code"), CASES)
async def test_creating_a_user_refuses_bad_passwords(org: Org, password: str, code: str) -> None:
    name = unique("pw")
    response = await org.owner.post("/api/v1/users", {"username": name, "password": password})
    assert response.status_code == 422
    assert problem_code(response) == code
    assert "password" in response.json()["detail"]
    assert (await org.owner.get("/api/v1/users", params={"q": name})).json()["users"] == []


async def test_a_password_made_of_the_username_is_too_weak(org: Org) -> None:
    name = unique("kestrel")
    response = await org.owner.post("/api/v1/users", {"username": name, "password": name + name})
    assert response.status_code == 422 and problem_code(response) == "password_too_weak"


@pytest.mark.parametrize(("password", "code"), CASES)
async def test_changing_a_password_refuses_bad_ones(org: Org, password: str, code: str) -> None:
    person = await org.person("changer")
    response = await person.post(
        "/api/v1/auth/password", {"current_password": PASSWORD, "new_password": password}
    )
    assert response.status_code == 422 and problem_code(response) == code
    assert (await org.sign_in(person.username)).id == person.id


async def test_accepting_an_invite_refuses_a_common_password(org: Org, admin: Person) -> None:
    invite = await admin.post("/api/v1/invites", {"role": "member"})
    assert invite.status_code == 201, invite.text
    response = await org.anonymous().post(
        "/api/v1/invites/accept",
        json={
            "token": invite.json()["token"],
            "username": unique("invitee"),
            "password": "password1234",
            "session_type": "token",
        },
    )
    assert response.status_code == 422 and problem_code(response) == "password_too_common"
    assert "common" in response.json()["detail"]


async def test_an_administrator_reset_follows_the_rules(org: Org) -> None:
    person = await org.person("reset")
    response = await org.owner.post(
        f"/api/v1/users/{person.id}/password", {"new_password": "password1234"}
    )
    assert response.status_code == 422 and problem_code(response) == "password_too_common"
