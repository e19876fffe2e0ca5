"""Strict JSON request bodies.

Stricter than the JSON grammar where lenient parsing has hurt chat servers: invalid UTF-8,
lone surrogates, NUL characters, duplicate keys, absurd nesting, giant numbers and the
non-JSON constants ``NaN``/``Infinity`` are all refused with a 400 before any handler runs.

Litestar converts the parsed body into the handler's ``data`` type in lax mode (because path
and query values arrive as text), which would quietly accept ``"5"`` for an integer or ``1``
for a boolean. Bodies are therefore also checked against that type in strict mode here, so
type confusion is a 422.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
from litestar import Request
from litestar.datastructures import State
from litestar.exceptions import ValidationException
from litestar.types import Empty

from courtyard.domain.errors import MalformedRequest, UnsupportedMediaType

MAX_DEPTH = 32


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise MalformedRequest(f"duplicate key {key!r} in JSON object", code="duplicate_key")
        result[key] = value
    return result


def _refuse_constant(name: str) -> Any:
    raise MalformedRequest(f"{name} is not valid JSON", code="invalid_json")


def _check_string(value: str) -> None:
    if "\x00" in value:
        raise MalformedRequest("strings must not contain NUL (\\u0000)", code="nul_character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise MalformedRequest(
            "strings must not contain lone surrogates", code="invalid_unicode"
        ) from None


def _check_values(root: Any) -> None:
    stack: list[tuple[Any, int]] = [(root, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise MalformedRequest(
                f"JSON nested deeper than {MAX_DEPTH} levels", code="json_too_deep"
            )
        if isinstance(value, str):
            _check_string(value)
        elif isinstance(value, dict):
            for key, item in value.items():
                _check_string(key)
                stack.append((item, depth + 1))
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)


def parse_strict_json(body: bytes) -> Any:
    """Parse a request body, refusing anything ambiguous or dangerous downstream."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedRequest("the body is not valid UTF-8", code="invalid_utf8") from None
    try:
        value = json.loads(
            text, object_pairs_hook=_no_duplicate_keys, parse_constant=_refuse_constant
        )
    except RecursionError:
        raise MalformedRequest("JSON nested too deeply", code="json_too_deep") from None
    except json.JSONDecodeError as exc:
        raise MalformedRequest(
            f"invalid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})", code="invalid_json"
        ) from None
    except ValueError:
        # e.g. an integer literal with thousands of digits
        raise MalformedRequest("invalid JSON number", code="invalid_json") from None
    _check_values(value)
    return value


def check_body_type(value: Any, target: Any) -> None:
    """Refuse a parsed body that only fits ``target`` after lax coercion (e.g. "5" for 5)."""
    try:
        msgspec.convert(value, target, strict=True, str_keys=True)
    except msgspec.ValidationError as exc:
        message, _, where = str(exc).partition(" - at `")
        key = where.rstrip("`").removeprefix("$").removeprefix(".") or "data"
        raise ValidationException(
            detail=f"{key}: {message}",
            extra=[{"key": key, "message": message, "source": "body"}],
        ) from None


def _body_type(request: Request[Any, Any, State]) -> Any:
    """The type the route handler declares for ``data``, if it has one."""
    handler = request.scope.get("route_handler")
    if handler is None:
        return None
    field = handler.parsed_fn_signature.parameters.get("data")
    return None if field is None else field.annotation


def is_json_media_type(content_type: str) -> bool:
    """application/json, or any application/*+json."""
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


class StrictJSONRequest(Request[Any, Any, State]):
    """A Litestar request whose JSON body goes through :func:`parse_strict_json`.

    JSON endpoints also require a JSON content type: this refuses cross-site HTML form posts
    (which can only send form or text/plain bodies) before any cookie is honoured.
    """

    async def json(self) -> Any:
        """The parsed body (cached)."""
        if self._json is Empty:
            body = await self.body()
            if not body:
                self._json = None
            else:
                content_type = self.headers.get("content-type", "")
                if not is_json_media_type(content_type):
                    raise UnsupportedMediaType(
                        "send the body as application/json", code="json_required"
                    )
                encoding = self.headers.get("content-encoding", "identity").strip().lower()
                if encoding not in ("", "identity"):
                    raise UnsupportedMediaType(
                        "compressed request bodies are not accepted",
                        code="content_encoding_unsupported",
                    )
                value = parse_strict_json(body)
                target = _body_type(self)
                if target is not None:
                    check_body_type(value, target)
                self._json = value
            self._connection_state.json = self._json
        return self._json
