"""Messages, history, threads, edit history, reactions and pins."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, HttpMethod, Response, delete, get, patch, post, put, route
from litestar.params import JSONBody, PathParameter, QueryParameter

from courtyard.api.deps import MAX_ID, AppServices, CurrentActor, Id
from courtyard.api.schemas.messages import (
    EditBody,
    MessageList,
    ReactionList,
    SendBody,
    ThreadResponse,
    VersionList,
)
from courtyard.domain.messages import HistoryPage, Message, PageRequest

Seq = Annotated[int | None, QueryParameter(ge=0, le=MAX_ID)]
LIMIT_DEFAULT = 50
Limit = Annotated[int, QueryParameter(ge=1, le=1000, description="Messages per page.")]
Emoji = Annotated[str, PathParameter(max_length=64, description="One Unicode emoji, URL-encoded.")]


class ChannelMessagesController(Controller):
    """A channel's history and posting to it."""

    path = "/api/v1/channels/{channel_id:int}"
    tags = ["messages"]

    @get("/messages", summary="A page of channel history")
    async def history(
        self,
        channel_id: Id,
        actor: CurrentActor,
        services: AppServices,
        limit: Limit = LIMIT_DEFAULT,
        before: Seq = None,
        after: Seq = None,
        around: Seq = None,
    ) -> HistoryPage:
        """Latest by default, or ``before``/``after``/``around`` a sequence number; ascending."""
        return await services.messages.history(
            actor, channel_id, PageRequest(limit=limit, before=before, after=after, around=around)
        )

    @post("/messages", summary="Post a message", status_code=201)
    async def send(
        self, channel_id: Id, data: JSONBody[SendBody], actor: CurrentActor, services: AppServices
    ) -> Response[Message]:
        """201 with the new message; 200 with the original when ``client_message_id`` repeats."""
        sent = await services.messages.send_message(
            actor,
            channel_id,
            data.text,
            client_message_id=data.client_message_id,
            thread_root_id=data.thread_root_id,
            file_ids=data.file_ids,
        )
        return Response(sent.message, status_code=201 if sent.created else 200)

    @get("/pins", summary="Pinned messages")
    async def pins(self, channel_id: Id, actor: CurrentActor, services: AppServices) -> MessageList:
        """Most recently pinned first."""
        return MessageList(messages=await services.reactions.pinned_messages(actor, channel_id))


class MessagesController(Controller):
    """One message and what hangs off it."""

    path = "/api/v1/messages/{message_id:int}"
    tags = ["messages"]

    @get("/", summary="A message")
    async def get_message(
        self, message_id: Id, actor: CurrentActor, services: AppServices
    ) -> Message:
        """404 unless you can see its channel."""
        return await services.messages.get_message(actor, message_id)

    @patch("/", summary="Edit your message")
    async def edit(
        self, message_id: Id, data: JSONBody[EditBody], actor: CurrentActor, services: AppServices
    ) -> Message:
        """The previous text is kept in the edit history."""
        return await services.messages.edit_message(actor, message_id, data.text)

    @delete("/", summary="Delete a message", status_code=200)
    async def remove(self, message_id: Id, actor: CurrentActor, services: AppServices) -> Message:
        """Your own, or anyone's as an administrator. The text is gone for users."""
        return await services.messages.delete_message(actor, message_id)

    @get("/thread", summary="A thread: its root and a page of replies")
    async def thread(
        self,
        message_id: Id,
        actor: CurrentActor,
        services: AppServices,
        limit: Limit = LIMIT_DEFAULT,
        before: Seq = None,
        after: Seq = None,
        around: Seq = None,
    ) -> ThreadResponse:
        """Replies in ascending order; the latest page by default."""
        root, replies = await services.messages.thread(
            actor, message_id, PageRequest(limit=limit, before=before, after=after, around=around)
        )
        return ThreadResponse(root=root, replies=replies)

    @get("/versions", summary="Edit history")
    async def versions(
        self, message_id: Id, actor: CurrentActor, services: AppServices
    ) -> VersionList:
        """The author and administrators only."""
        return VersionList(versions=await services.messages.versions(actor, message_id))

    @put("/reactions/{emoji:str}", summary="React with an emoji")
    async def react(
        self, message_id: Id, emoji: Emoji, actor: CurrentActor, services: AppServices
    ) -> ReactionList:
        """One reaction per person per emoji; repeating it changes nothing."""
        groups = await services.reactions.add_reaction(actor, message_id, emoji)
        return ReactionList(message_id=message_id, reactions=groups)

    @delete("/reactions/{emoji:str}", summary="Remove your reaction", status_code=200)
    async def unreact(
        self, message_id: Id, emoji: Emoji, actor: CurrentActor, services: AppServices
    ) -> ReactionList:
        """Removing a reaction that is not there changes nothing."""
        groups = await services.reactions.remove_reaction(actor, message_id, emoji)
        return ReactionList(message_id=message_id, reactions=groups)

    @route(
        "/reactions",
        http_method=[HttpMethod.PUT, HttpMethod.DELETE],
        include_in_schema=False,
        status_code=200,
    )
    async def react_without_emoji(
        self, message_id: Id, actor: CurrentActor, services: AppServices
    ) -> ReactionList:
        """``/reactions/`` with an empty emoji: the same 422 as any other non-emoji."""
        groups = await services.reactions.add_reaction(actor, message_id, "")
        return ReactionList(message_id=message_id, reactions=groups)

    @put("/pin", summary="Pin a message")
    async def pin(self, message_id: Id, actor: CurrentActor, services: AppServices) -> Message:
        """Any member of the channel."""
        return await services.reactions.pin(actor, message_id, pinned=True)

    @delete("/pin", summary="Unpin a message", status_code=200)
    async def unpin(self, message_id: Id, actor: CurrentActor, services: AppServices) -> Message:
        """Any member of the channel."""
        return await services.reactions.pin(actor, message_id, pinned=False)
