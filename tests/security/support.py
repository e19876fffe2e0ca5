"""Helpers for the security tests: a clock tests can move, TOTP codes, two-step sign-in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from courtyard.auth.totp import code_at
from tests.support import PASSWORD, Org, Person


class FakeClock:
    """The services' clock, moved by the test (real time, plus an offset)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, **delta: float) -> None:
        """Move time forward."""
        self.offset += timedelta(**delta)


def problem_code(response: httpx.Response) -> str:
    """The problem+json ``code`` of a refusal."""
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    return str(response.json()["code"])


async def enrol(person: Person, clock: FakeClock | None = None) -> tuple[str, list[str]]:
    """Turn on two-factor authentication for ``person``; returns (secret, recovery codes)."""
    started = await person.post("/api/v1/auth/two-factor/enrolment")
    assert started.status_code == 201, started.text
    secret = started.json()["secret"]
    now = clock() if clock else datetime.now(UTC)
    confirmed = await person.post(
        "/api/v1/auth/two-factor/enrolment/confirm", {"code": code_at(secret, now)}
    )
    assert confirmed.status_code == 200, confirmed.text
    return secret, list(confirmed.json()["recovery_codes"])


async def password_step(
    org: Org, login: str, password: str = PASSWORD, **extra: Any
) -> httpx.Response:
    """The first step of signing in, with a bearer-token session."""
    return await org.anonymous().post(
        "/api/v1/auth/sign-in",
        json={"login": login, "password": password, "session_type": "token", **extra},
    )


async def second_step(org: Org, pending_token: str, **proof: str) -> httpx.Response:
    """The second step, with the pending session's token."""
    client = org.anonymous()
    client.headers["Authorization"] = f"Bearer {pending_token}"
    return await client.post(
        "/api/v1/auth/sign-in/second-factor", json={"session_type": "token", **proof}
    )


def bearer(org: Org, token: str) -> httpx.AsyncClient:
    """A client carrying ``token``."""
    client = org.anonymous()
    client.headers["Authorization"] = f"Bearer {token}"
    return client
