"""The error vocabulary of Courtyard.

Every refusal the server can give is one of these, each with a stable machine-readable
``code``. Only ``courtyard.api.errors`` maps them to HTTP statuses::

    CourtyardError
     ├── InvalidInput        the request is well-formed but a value breaks a rule
     ├── MalformedRequest    the request cannot be parsed (bad JSON, bad encoding)
     ├── Unauthenticated     no valid credentials were presented
     ├── PermissionDenied    the actor is known but may not do this
     ├── NotFound            missing, or invisible to the actor (never says which)
     ├── Conflict            the change collides with existing state
     ├── PayloadTooLarge     the body is over a configured limit
     ├── UnsupportedMediaType
     ├── RateLimited         too many requests; retry later
     ├── Rejected            a plugin hook refused the change
     └── Unavailable         a service this needs (e.g. the virus scanner) is not answering
"""

from __future__ import annotations


class CourtyardError(Exception):
    """Base of every error a client may see; ``code`` is stable across releases."""

    code: str = "error"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.field = field


class InvalidInput(CourtyardError):
    """A value breaks a domain rule (too long, empty, wrong characters...)."""

    code = "invalid_input"


class MalformedRequest(CourtyardError):
    """The request body or parameters cannot be parsed at all."""

    code = "malformed_request"


class Unauthenticated(CourtyardError):
    """No valid session or token was presented."""

    code = "unauthenticated"


class PermissionDenied(CourtyardError):
    """The actor can see the object but is not allowed to perform the action."""

    code = "permission_denied"


class NotFound(CourtyardError):
    """The object does not exist or the actor may not know that it exists."""

    code = "not_found"


class Conflict(CourtyardError):
    """The change collides with existing state (duplicate name, already set up...)."""

    code = "conflict"


class PayloadTooLarge(CourtyardError):
    """The request body exceeds the configured limit."""

    code = "payload_too_large"


class UnsupportedMediaType(CourtyardError):
    """The request body is not in a media type the endpoint accepts."""

    code = "unsupported_media_type"


class RateLimited(CourtyardError):
    """Too many attempts; ``retry_after`` seconds until the next may succeed."""

    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class Rejected(CourtyardError):
    """A plugin hook (moderation, compliance) refused the change."""

    code = "rejected_by_policy"


class Unavailable(CourtyardError):
    """A service the request depends on (the virus scanner) cannot answer; retry later."""

    code = "unavailable"
