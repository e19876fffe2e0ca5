"""Searching messages and file names."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from litestar import get, post
from litestar.params import JSONBody, QueryParameter

from courtyard.api.deps import AppServices, CurrentActor
from courtyard.api.schemas import Body
from courtyard.domain.search_results import SearchPage

Order = Literal["date", "relevance"]


class SearchBody(Body):
    """The same search as ``GET /api/v1/search``, for queries too long for a URL."""

    q: Annotated[str, msgspec.Meta(max_length=200_000)]
    order: Order | None = None
    cursor: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=100)] = 20


@get("/api/v1/search", summary="Search messages", tags=["search"])
async def search_messages(
    actor: CurrentActor,
    services: AppServices,
    q: Annotated[str, QueryParameter(description="The query (see docs/search.md).")],
    order: Annotated[
        Order | None,
        QueryParameter(description="Newest first (date) or best first among recent matches."),
    ] = None,
    cursor: Annotated[
        str | None, QueryParameter(max_length=64, description="next_cursor of the previous page.")
    ] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=100, description="Results per page.")] = 20,
) -> SearchPage:
    """Messages you can read that match ``q``, with highlighted snippets and their context.
    Query errors (too long, bad dates, unknown ``has:``/``is:`` values) are 400."""
    return await services.search.search(actor, q, order=order, cursor=cursor, limit=limit)


@post(
    "/api/v1/search",
    summary="Search messages (query in the body)",
    tags=["search"],
    status_code=200,
)
async def search_messages_by_body(
    data: JSONBody[SearchBody], actor: CurrentActor, services: AppServices
) -> SearchPage:
    """Like the GET form; answers 200 (nothing is created)."""
    return await services.search.search(
        actor, data.q, order=data.order, cursor=data.cursor, limit=data.limit
    )
