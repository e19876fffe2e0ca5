"""Liveness and readiness probes."""

from __future__ import annotations

import msgspec
from litestar import Response, get

from courtyard.api.deps import AppServices


class Health(msgspec.Struct):
    """Probe answer."""

    status: str


@get("/healthz", tags=["operations"], summary="The process is up")
async def healthz() -> Health:
    """Always 200 while the process serves requests."""
    return Health(status="ok")


@get("/readyz", tags=["operations"], summary="The database is reachable")
async def readyz(services: AppServices) -> Response[Health]:
    """200 when the database answers, 503 otherwise."""
    ready = await services.context.storage.database.ping()
    return Response(
        Health(status="ready" if ready else "unavailable"), status_code=200 if ready else 503
    )
