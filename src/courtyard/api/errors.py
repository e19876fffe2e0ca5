"""The only place errors become HTTP: RFC 9457 problem details with a stable ``code``."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from litestar import MediaType, Request, Response
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
    ValidationException,
)
from litestar.exceptions.http_exceptions import (
    MethodNotAllowedException,
    RequestEntityTooLarge,
)
from litestar.types import ExceptionHandlersMap

from courtyard.domain.errors import (
    Conflict,
    CourtyardError,
    InvalidInput,
    MalformedRequest,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    RateLimited,
    Rejected,
    Unauthenticated,
    Unavailable,
    UnsupportedMediaType,
)

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

STATUS_BY_ERROR: dict[type[CourtyardError], int] = {
    MalformedRequest: 400,
    Unauthenticated: 401,
    PermissionDenied: 403,
    NotFound: 404,
    Conflict: 409,
    PayloadTooLarge: 413,
    UnsupportedMediaType: 415,
    InvalidInput: 422,
    Rejected: 422,
    RateLimited: 429,
    Unavailable: 503,
}


def problem_body(
    status: int,
    code: str,
    detail: str,
    *,
    instance: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The members of a problem+json document."""
    body: dict[str, Any] = {
        "type": f"urn:courtyard:problem:{code}",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "code": code,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    if extra:
        body.update(extra)
    return body


def problem(
    status: int,
    code: str,
    detail: str,
    *,
    instance: str | None = None,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[dict[str, Any]]:
    """A problem+json response."""
    body = problem_body(status, code, detail, instance=instance, extra=extra)
    return Response(content=body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _status_for(error: CourtyardError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 400


def courtyard_problem(
    exc: CourtyardError, path: str
) -> tuple[int, dict[str, Any], dict[str, str] | None]:
    """The status, problem document and extra headers for a domain or service error."""
    extra: dict[str, Any] = {}
    if exc.field:
        extra["field"] = exc.field
    headers = None
    if isinstance(exc, RateLimited):
        headers = {"Retry-After": str(exc.retry_after)}
    status = _status_for(exc)
    if status == 401:
        headers = {**(headers or {}), "WWW-Authenticate": 'Bearer realm="courtyard"'}
    return status, problem_body(status, exc.code, exc.message, instance=path, extra=extra), headers


def handle_courtyard_error(
    request: Request[Any, Any, Any], exc: CourtyardError
) -> Response[dict[str, Any]]:
    """Domain and service errors."""
    status, body, headers = courtyard_problem(exc, request.url.path)
    return Response(content=body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def handle_validation_error(
    request: Request[Any, Any, Any], exc: ValidationException
) -> Response[dict[str, Any]]:
    """Type errors in bodies, paths and queries: 422 naming each bad field."""
    errors = []
    if isinstance(exc.extra, list):
        for item in exc.extra:
            if isinstance(item, dict):
                field = str(item.get("key", ""))
                message = str(item.get("message", ""))
                if field == "data" and message == "'data'":
                    # Litestar reports a missing body as the KeyError of its parameter name.
                    message = "a JSON request body is required"
                errors.append(
                    {
                        "field": field,
                        "source": str(getattr(item.get("source"), "value", item.get("source", ""))),
                        "message": message,
                    }
                )
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors) or str(exc.detail)
    return problem(
        422, "validation_failed", detail, instance=request.url.path, extra={"errors": errors}
    )


def handle_http_error(
    request: Request[Any, Any, Any], exc: HTTPException
) -> Response[dict[str, Any]]:
    """Framework-level refusals (unknown route, wrong method, body too large...)."""
    status = exc.status_code
    code = {
        404: "not_found",
        405: "method_not_allowed",
        413: "payload_too_large",
        401: "unauthenticated",
    }.get(status, "http_error")
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail else HTTPStatus(status).phrase
    if isinstance(exc, NotFoundException):
        detail = "no such endpoint"
    if isinstance(exc, RequestEntityTooLarge):
        detail = "the request body is too large"
    headers = dict(exc.headers or {})
    if isinstance(exc, MethodNotAllowedException) and "Allow" not in headers:
        headers.pop("allow", None)
    return problem(status, code, detail, instance=request.url.path, headers=headers or None)


#: (status, code, detail) of a bug's answer.
UNEXPECTED = (500, "internal_error", "something went wrong on our side")


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """A bug: log it with the request path, tell the client nothing more."""
    logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(*UNEXPECTED, instance=request.url.path)


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    CourtyardError: handle_courtyard_error,
    ValidationException: handle_validation_error,
    NotAuthorizedException: handle_http_error,
    HTTPException: handle_http_error,
    Exception: handle_unexpected,
}

__all__ = ["EXCEPTION_HANDLERS", "PROBLEM_JSON", "MediaType", "problem"]
