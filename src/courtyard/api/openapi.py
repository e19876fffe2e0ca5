"""Completing the generated OpenAPI document with Courtyard's error responses.

Litestar documents each handler's success response; every operation can also answer with a
problem document (RFC 9457). Adding them once here keeps the routes thin and the document
honest, which schemathesis checks in CI.
"""

from __future__ import annotations

from http import HTTPStatus

from litestar import Litestar
from litestar.openapi.spec import (
    Components,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Reference,
    Schema,
)

PROBLEM_SCHEMA = Schema(
    type=OpenAPIType.OBJECT,
    description="An RFC 9457 problem document; `code` is stable and machine-readable.",
    required=["type", "title", "status", "code", "detail"],
    properties={
        "type": Schema(type=OpenAPIType.STRING),
        "title": Schema(type=OpenAPIType.STRING),
        "status": Schema(type=OpenAPIType.INTEGER),
        "code": Schema(type=OpenAPIType.STRING),
        "detail": Schema(type=OpenAPIType.STRING),
        "instance": Schema(type=OpenAPIType.STRING),
        "field": Schema(type=OpenAPIType.STRING),
        "errors": Schema(
            type=OpenAPIType.ARRAY,
            items=Schema(
                type=OpenAPIType.OBJECT,
                properties={
                    "field": Schema(type=OpenAPIType.STRING),
                    "source": Schema(type=OpenAPIType.STRING),
                    "message": Schema(type=OpenAPIType.STRING),
                },
            ),
        ),
    },
)

# Every operation may answer these; some (401 on public endpoints) are merely possible.
PROBLEM_STATUSES = (400, 401, 403, 404, 405, 409, 413, 415, 422, 429, 503)


def document_problem_responses(app: Litestar) -> None:
    """Add the problem schema and the error responses to every operation of ``app``."""
    openapi = app.openapi_schema
    components = openapi.components if isinstance(openapi.components, Components) else Components()
    schemas = dict(components.schemas or {})
    schemas["Problem"] = PROBLEM_SCHEMA
    components.schemas = schemas
    openapi.components = components
    reference = Reference(ref="#/components/schemas/Problem")
    for path_item in (openapi.paths or {}).values():
        for method in ("get", "put", "post", "delete", "patch"):
            operation = getattr(path_item, method, None)
            if operation is None:
                continue
            responses = dict(operation.responses or {})
            for status in PROBLEM_STATUSES:
                responses[str(status)] = OpenAPIResponse(
                    description=HTTPStatus(status).phrase,
                    content={"application/problem+json": OpenAPIMediaType(schema=reference)},
                )
            operation.responses = responses
