"""REST companions of the event stream: initial state and presence."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import get
from litestar.params import QueryParameter

from courtyard.api.deps import MAX_ID, AppServices, CurrentActor, Id
from courtyard.domain.channels import ChannelSummary
from courtyard.domain.users import User

UserIds = Annotated[
    list[Annotated[int, msgspec.Meta(ge=1, le=MAX_ID)]],
    QueryParameter(max_items=500, description="Repeat ?ids=1&ids=2 (at most 500)."),
]


class StateResponse(msgspec.Struct, kw_only=True):
    """Your profile and channels, and the stream position they reflect."""

    user: User
    channels: list[ChannelSummary]
    position: int
    events_url: str = "/api/v1/events"


class PresenceEntry(msgspec.Struct, kw_only=True):
    """One user's presence."""

    user_id: int
    status: str


class PresenceResponse(msgspec.Struct, kw_only=True):
    """Presence of the requested users you may see."""

    presence: list[PresenceEntry]


class ReceiptsResponse(msgspec.Struct, kw_only=True):
    """Who has read a message ("seen by"), where the channel keeps receipts."""

    message_id: int
    available: bool
    read_by: list[int]


@get(
    "/api/v1/messages/{message_id:int}/receipts",
    tags=["messages"],
    summary="Who has read a message",
)
async def receipts(message_id: Id, actor: CurrentActor, services: AppServices) -> ReceiptsResponse:
    """Members (other than the author) whose read marker reached the message."""
    result = await services.reading.receipts(actor, message_id)
    return ReceiptsResponse(
        message_id=result.message_id, available=result.available, read_by=result.read_by
    )


@get("/api/v1/state", tags=["events"], summary="Initial state for a client")
async def initial_state(actor: CurrentActor, services: AppServices) -> StateResponse:
    """Load this, then open `/api/v1/events?since=<position>` and apply the events that follow."""
    state = await services.state.initial_state(actor)
    return StateResponse(user=state.user, channels=state.channels, position=state.position)


@get("/api/v1/presence", tags=["events"], summary="Presence of some users")
async def presence(actor: CurrentActor, services: AppServices, ids: UserIds) -> PresenceResponse:
    """online, away or offline; people you may not see are left out."""
    statuses = await services.presence.statuses(actor, ids)
    return PresenceResponse(
        presence=[
            PresenceEntry(user_id=user_id, status=status) for user_id, status in statuses.items()
        ]
    )
