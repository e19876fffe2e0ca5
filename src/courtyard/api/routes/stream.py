"""REST companions of the event stream: initial state and presence."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import get
from litestar.params import QueryParameter

from courtyard.api.deps import MAX_ID, AppServices, CurrentActor
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
