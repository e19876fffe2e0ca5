"""Turning a new session into a response: cookie for browsers, bearer token for API clients."""

from __future__ import annotations

from datetime import UTC, datetime

from litestar import Response
from litestar.datastructures import Cookie

from courtyard.api.deps import CSRF_COOKIE, SESSION_COOKIE, WebConfig, csrf_token_for
from courtyard.api.schemas.accounts import SessionType, SignedInResponse
from courtyard.services.sessions import SignedIn


def session_response(
    signed_in: SignedIn, session_type: SessionType, web: WebConfig, *, status_code: int = 200
) -> Response[SignedInResponse]:
    """The body and cookies for a fresh session (or a pending one awaiting the second
    factor: no profile, and its cookie lives only as long as the pending sign-in)."""
    pending = signed_in.second_factor_required
    user = None if pending else signed_in.user
    if session_type == "token":
        body = SignedInResponse(
            user=user,
            session_id=signed_in.session_id,
            expires_at=signed_in.expires_at,
            token=signed_in.secret,
            second_factor_required=pending,
        )
        return Response(body, status_code=status_code)
    csrf = csrf_token_for(signed_in.secret)
    body = SignedInResponse(
        user=user,
        session_id=signed_in.session_id,
        expires_at=signed_in.expires_at,
        csrf_token=csrf,
        second_factor_required=pending,
    )
    max_age = web.session_max_age
    if pending:
        max_age = max(1, int((signed_in.expires_at - datetime.now(UTC)).total_seconds()))
    cookies = [
        Cookie(
            key=SESSION_COOKIE,
            value=signed_in.secret,
            httponly=True,
            samesite="lax",
            secure=web.secure_cookies,
            max_age=max_age,
            path="/",
        ),
        Cookie(
            key=CSRF_COOKIE,
            value=csrf,
            httponly=False,
            samesite="strict",
            secure=web.secure_cookies,
            max_age=max_age,
            path="/",
        ),
    ]
    return Response(body, status_code=status_code, cookies=cookies)


def clear_session_cookies(web: WebConfig) -> list[Cookie]:
    """Cookies that delete the session cookies."""
    return [
        Cookie(
            key=name,
            value="",
            max_age=0,
            path="/",
            secure=web.secure_cookies,
            httponly=name == SESSION_COOKIE,
        )
        for name in (SESSION_COOKIE, CSRF_COOKIE)
    ]
