"""Channels, membership, preferences, read markers and conversations."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, delete, get, patch, post, put
from litestar.params import JSONBody, QueryParameter

from courtyard.api.deps import AppServices, CurrentActor, Cursor, Flag, Id
from courtyard.api.schemas.accounts import IdList
from courtyard.api.schemas.channels import (
    ChannelChangesBody,
    ChannelList,
    ChannelPageResponse,
    ConversationBody,
    MemberList,
    NewChannelBody,
    PreferencesBody,
    ReadBody,
    ReadMarker,
)
from courtyard.domain.channels import Channel, ChannelSummary
from courtyard.services.channels import ChannelChanges

LIMIT_DEFAULT = 100
Limit = Annotated[int, QueryParameter(ge=1, le=1000, description="Page size.")]
Query = Annotated[str | None, QueryParameter(max_length=80, description="Filter by name.")]


class ChannelsController(Controller):
    """Channels and their members."""

    path = "/api/v1/channels"
    tags = ["channels"]

    @get("/", summary="Your channels and conversations, with unread and mention counts")
    async def my_channels(self, actor: CurrentActor, services: AppServices) -> ChannelList:
        """Everything you are a member of."""
        return ChannelList(channels=await services.channels.my_channels(actor))

    @get("/browse", summary="Browse public channels")
    async def browse(
        self,
        actor: CurrentActor,
        services: AppServices,
        cursor: Cursor = 0,
        limit: Limit = LIMIT_DEFAULT,
        q: Query = None,
        include_archived: Flag = False,
        include_private: Flag = False,
    ) -> ChannelPageResponse:
        """Administrators may include private channels."""
        page = await services.channels.browse(
            actor,
            after=cursor,
            limit=limit,
            query=q,
            include_archived=include_archived,
            include_private=include_private,
        )
        return ChannelPageResponse(channels=page.channels, next_cursor=page.next_after)

    @post("/", summary="Create a channel", status_code=201)
    async def create_channel(
        self, data: JSONBody[NewChannelBody], actor: CurrentActor, services: AppServices
    ) -> Channel:
        """You join it; ``member_ids`` are added too."""
        return await services.channels.create_channel(
            actor,
            data.name,
            private=data.private,
            topic=data.topic,
            purpose=data.purpose,
            member_ids=data.member_ids,
        )

    @get("/{channel_id:int}", summary="A channel")
    async def get_channel(
        self, channel_id: Id, actor: CurrentActor, services: AppServices
    ) -> ChannelSummary:
        """With your membership and unread counts if you are a member."""
        return await services.channels.get_channel(actor, channel_id)

    @patch("/{channel_id:int}", summary="Rename, or change topic or purpose")
    async def update_channel(
        self,
        channel_id: Id,
        data: JSONBody[ChannelChangesBody],
        actor: CurrentActor,
        services: AppServices,
    ) -> Channel:
        """Members (not guests) and administrators."""
        return await services.channels.update_channel(
            actor, channel_id, ChannelChanges(data.name, data.topic, data.purpose)
        )

    @post("/{channel_id:int}/archive", summary="Archive a channel", status_code=200)
    async def archive(self, channel_id: Id, actor: CurrentActor, services: AppServices) -> Channel:
        """Read-only from now on. The creator or an administrator."""
        return await services.channels.archive(actor, channel_id, archived=True)

    @post("/{channel_id:int}/unarchive", summary="Unarchive a channel", status_code=200)
    async def unarchive(
        self, channel_id: Id, actor: CurrentActor, services: AppServices
    ) -> Channel:
        """Writable again."""
        return await services.channels.archive(actor, channel_id, archived=False)

    @post("/{channel_id:int}/join", summary="Join a public channel", status_code=200)
    async def join(self, channel_id: Id, actor: CurrentActor, services: AppServices) -> Channel:
        """Joining twice is harmless."""
        return await services.channels.join(actor, channel_id)

    @post("/{channel_id:int}/leave", summary="Leave a channel", status_code=204)
    async def leave(self, channel_id: Id, actor: CurrentActor, services: AppServices) -> None:
        """Conversations cannot be left."""
        await services.channels.leave(actor, channel_id)

    @get("/{channel_id:int}/members", summary="A channel's members")
    async def members(
        self,
        channel_id: Id,
        actor: CurrentActor,
        services: AppServices,
        cursor: Cursor = 0,
        limit: Limit = LIMIT_DEFAULT,
    ) -> MemberList:
        """Ordered by user id."""
        page = await services.channels.members(actor, channel_id, after=cursor, limit=limit)
        return MemberList(members=page.members, next_cursor=page.next_after)

    @post("/{channel_id:int}/members", summary="Add members", status_code=200)
    async def add_members(
        self, channel_id: Id, data: JSONBody[IdList], actor: CurrentActor, services: AppServices
    ) -> Channel:
        """Members may add people; only administrators add guests."""
        return await services.channels.add_members(actor, channel_id, data.user_ids)

    @delete("/{channel_id:int}/members/{user_id:int}", summary="Remove a member", status_code=204)
    async def remove_member(
        self, channel_id: Id, user_id: Id, actor: CurrentActor, services: AppServices
    ) -> None:
        """The channel's creator or an administrator."""
        await services.channels.remove_member(actor, channel_id, user_id)

    @put("/{channel_id:int}/preferences", summary="Mute or star a channel for yourself")
    async def preferences(
        self,
        channel_id: Id,
        data: JSONBody[PreferencesBody],
        actor: CurrentActor,
        services: AppServices,
    ) -> ChannelSummary:
        """Only affects you."""
        return await services.channels.set_preferences(
            actor, channel_id, muted=data.muted, starred=data.starred
        )

    @post("/{channel_id:int}/read", summary="Move your read marker", status_code=200)
    async def mark_read(
        self, channel_id: Id, data: JSONBody[ReadBody], actor: CurrentActor, services: AppServices
    ) -> ReadMarker:
        """Forwards marks read; backwards marks unread."""
        seq = await services.reading.mark_read(actor, channel_id, data.seq)
        return ReadMarker(channel_id=channel_id, last_read_seq=seq)


class ConversationsController(Controller):
    """Direct and group conversations."""

    path = "/api/v1/conversations"
    tags = ["channels"]

    @post("/", summary="Open a direct or group conversation", status_code=200)
    async def open_conversation(
        self, data: JSONBody[ConversationBody], actor: CurrentActor, services: AppServices
    ) -> Channel:
        """The same people always get the same conversation."""
        return await services.conversations.open_conversation(actor, data.user_ids)
