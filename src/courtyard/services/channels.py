"""Channels: create, browse, join, leave, members, topic, archive, and the viewer's list."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from courtyard.domain.channels import Channel, ChannelKind, ChannelSummary, Member
from courtyard.domain.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from courtyard.domain.events import (
    Audience,
    ChannelArchived,
    ChannelCreated,
    ChannelUnarchived,
    ChannelUpdated,
    MemberJoined,
    MemberLeft,
)
from courtyard.domain.text import clean_name
from courtyard.domain.users import Actor
from courtyard.services.access import (
    CHANNEL_NOT_FOUND,
    ChannelAccess,
    access_channel,
    access_channel_for_admin,
    require_non_guest,
)
from courtyard.services.context import ServiceContext
from courtyard.storage.errors import UniqueViolation
from courtyard.storage.unit_of_work import UnitOfWork


@dataclass(frozen=True, slots=True)
class ChannelChanges:
    """Fields to change on a channel; None leaves a field as it is."""

    name: str | None = None
    topic: str | None = None
    purpose: str | None = None


@dataclass(frozen=True, slots=True)
class ChannelPage:
    """A page of channels and the cursor for the next (None at the end)."""

    channels: list[Channel]
    next_after: int | None


@dataclass(frozen=True, slots=True)
class MemberPage:
    """A page of a channel's members and the cursor for the next."""

    members: list[Member]
    next_after: int | None


def creation_audience(channel: Channel, joined: tuple[int, ...] = ()) -> Audience:
    """A public channel's news goes to everyone; anything else only to its members.

    ``joined`` are the members a creation adds: they become members before delivery.
    """
    if channel.kind is ChannelKind.PUBLIC:
        return Audience(channel_id=channel.id, all_members=True, joined=joined)
    return Audience(channel_id=channel.id, joined=joined)


class Channels:
    """Channel management."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx

    async def create_channel(
        self,
        actor: Actor,
        name: str,
        *,
        private: bool,
        topic: str = "",
        purpose: str = "",
        member_ids: list[int] | None = None,
    ) -> Channel:
        """Create a public or private channel; the creator joins it, others may be added."""
        require_non_guest(actor, "create channels")
        clean = clean_name(name, field="name", max_length=80)
        kind = ChannelKind.PRIVATE if private else ChannelKind.PUBLIC
        now = self._ctx.clock()
        async with self._ctx.storage.transaction() as uow:
            try:
                channel = await uow.channels.insert(
                    kind=kind,
                    name=clean,
                    created_by=actor.user_id,
                    now=now,
                    topic=clean_name(topic, field="topic", max_length=250, allow_empty=True),
                    purpose=clean_name(purpose, field="purpose", max_length=250, allow_empty=True),
                )
            except UniqueViolation as exc:
                raise Conflict(
                    "a channel with that name exists", code="channel_name_taken", field="name"
                ) from exc
            others = sorted(set(member_ids or ()) - {actor.user_id})
            if len(others) > 1000:
                raise InvalidInput("add at most 1000 members at once", field="member_ids")
            await self._check_addable(uow, actor, others)
            await uow.channels.add_member(channel.id, actor.user_id, now=now, last_read_seq=0)
            for user_id in others:
                await uow.channels.add_member(channel.id, user_id, now=now, last_read_seq=0)
            channel = await self._reload(uow, channel.id)
            uow.outbox.append(
                ChannelCreated(channel=channel),
                creation_audience(channel, joined=(actor.user_id, *others)),
            )
        return channel

    async def get_channel(self, actor: Actor, channel_id: int) -> ChannelSummary:
        """A channel the actor may see, with their unread state if they are a member."""
        async with self._ctx.storage.snapshot() as uow:
            access = await access_channel_for_admin(uow, actor, channel_id)
            unread = mentions = 0
            if access.is_member:
                unread = (await uow.channels.unread_counts(actor.user_id, channel_id)).get(
                    channel_id, 0
                )
                mentions = (await uow.channels.mention_counts(actor.user_id, channel_id)).get(
                    channel_id, 0
                )
            channel = access.channel
            if channel.kind.is_conversation:
                channel = _with_members(channel, await uow.channels.member_ids(channel_id))
        return ChannelSummary(
            channel=channel,
            membership=access.membership,
            unread_count=unread,
            mention_count=mentions,
        )

    async def my_channels(self, actor: Actor) -> list[ChannelSummary]:
        """Every channel and conversation the actor belongs to, with unread and mention counts.

        Four queries whatever the number of channels.
        """
        async with self._ctx.storage.snapshot() as uow:
            rows = await uow.channels.channels_of(actor.user_id)
            unread = await uow.channels.unread_counts(actor.user_id)
            mentions = await uow.channels.mention_counts(actor.user_id)
            conversations = [c.id for c, _ in rows if c.kind.is_conversation]
            members = await uow.channels.conversation_member_ids(conversations)
        summaries = []
        for channel, membership in rows:
            if channel.kind.is_conversation:
                channel = _with_members(channel, members.get(channel.id, []))
            summaries.append(
                ChannelSummary(
                    channel=channel,
                    membership=membership,
                    unread_count=unread.get(channel.id, 0),
                    mention_count=mentions.get(channel.id, 0),
                )
            )
        return summaries

    async def browse(
        self,
        actor: Actor,
        *,
        after: int,
        limit: int,
        query: str | None,
        include_archived: bool,
        include_private: bool,
    ) -> ChannelPage:
        """Public channels to discover (administrators may include private ones)."""
        require_non_guest(actor, "browse channels")
        if query is not None and ("\x00" in query or len(query) > 80):
            raise InvalidInput("q must be at most 80 characters without NUL", field="q")
        limit = max(1, min(limit, self._ctx.policy.max_page_size))
        kinds = [ChannelKind.PUBLIC]
        if include_private and actor.is_admin:
            kinds.append(ChannelKind.PRIVATE)
        async with self._ctx.storage.snapshot() as uow:
            found = await uow.channels.browse(
                kinds=kinds,
                after_id=after,
                limit=limit + 1,
                query=query or None,
                include_archived=include_archived,
            )
        more = len(found) > limit
        found = found[:limit]
        return ChannelPage(channels=found, next_after=found[-1].id if more and found else None)

    async def update_channel(
        self, actor: Actor, channel_id: int, changes: ChannelChanges
    ) -> Channel:
        """Rename or change topic/purpose (members who are not guests, or administrators)."""
        values: dict[str, str] = {}
        if changes.name is not None:
            values["name"] = clean_name(changes.name, field="name", max_length=80)
        if changes.topic is not None:
            values["topic"] = clean_name(
                changes.topic, field="topic", max_length=250, allow_empty=True
            )
        if changes.purpose is not None:
            values["purpose"] = clean_name(
                changes.purpose, field="purpose", max_length=250, allow_empty=True
            )
        async with self._ctx.storage.transaction() as uow:
            access = await access_channel_for_admin(uow, actor, channel_id)
            self._require_manageable(actor, access, allow_members=True)
            if "name" in values and access.channel.kind.is_conversation:
                raise InvalidInput(
                    "direct conversations have no name", code="conversation_has_no_name"
                )
            if not values:
                return await self._reload(uow, channel_id)
            try:
                await uow.channels.update_fields(channel_id, **values)
            except UniqueViolation as exc:
                raise Conflict(
                    "a channel with that name exists", code="channel_name_taken", field="name"
                ) from exc
            channel = await self._reload(uow, channel_id)
            uow.outbox.append(ChannelUpdated(channel=channel), creation_audience(channel))
        return channel

    async def archive(self, actor: Actor, channel_id: int, *, archived: bool) -> Channel:
        """Archive (read-only) or unarchive a channel: its creator or an administrator."""
        async with self._ctx.storage.transaction() as uow:
            access = await access_channel_for_admin(uow, actor, channel_id)
            if access.channel.kind.is_conversation:
                raise InvalidInput(
                    "conversations cannot be archived", code="conversation_not_archivable"
                )
            creator = access.channel.created_by == actor.user_id and access.is_member
            if not (actor.is_admin or creator):
                raise PermissionDenied(
                    "only the creator or an administrator can archive", code="not_channel_manager"
                )
            if (access.channel.archived_at is not None) == archived:
                return access.channel
            await uow.channels.set_archived(channel_id, at=self._ctx.clock() if archived else None)
            channel = await self._reload(uow, channel_id)
            event = (
                ChannelArchived(channel=channel) if archived else ChannelUnarchived(channel=channel)
            )
            uow.outbox.append(event, creation_audience(channel))
        return channel

    async def join(self, actor: Actor, channel_id: int) -> Channel:
        """Join a public channel (not guests, not archived)."""
        async with self._ctx.storage.transaction() as uow:
            access = await access_channel(uow, actor, channel_id)
            if access.is_member:
                return await self._reload(uow, channel_id)
            require_non_guest(actor, "join channels by themselves")
            if access.channel.archived_at is not None:
                raise PermissionDenied("the channel is archived", code="channel_archived")
            channel = await self._add(uow, access.channel, actor.user_id, added_by=None)
        return channel

    async def leave(self, actor: Actor, channel_id: int) -> None:
        """Leave a channel (conversations cannot be left)."""
        async with self._ctx.storage.transaction() as uow:
            access = await access_channel(uow, actor, channel_id)
            if not access.is_member:
                raise Conflict("you are not a member of this channel", code="not_a_member")
            if access.channel.kind.is_conversation:
                raise InvalidInput(
                    "conversations cannot be left; mute them instead",
                    code="conversation_not_leavable",
                )
            await self._remove(uow, access.channel, actor.user_id, removed_by=None)

    async def add_members(self, actor: Actor, channel_id: int, user_ids: list[int]) -> Channel:
        """Add people: members of the channel or administrators; guests only by administrators."""
        if not user_ids or len(user_ids) > 1000:
            raise InvalidInput("user_ids must list 1 to 1000 people", field="user_ids")
        async with self._ctx.storage.transaction() as uow:
            access = await access_channel_for_admin(uow, actor, channel_id)
            if access.channel.kind.is_conversation:
                raise InvalidInput(
                    "start a new group conversation instead", code="conversation_members_fixed"
                )
            self._require_manageable(actor, access, allow_members=True)
            await self._check_addable(uow, actor, user_ids)
            channel = access.channel
            for user_id in sorted(set(user_ids)):
                channel = await self._add(uow, channel, user_id, added_by=actor.user_id)
        return channel

    async def remove_member(self, actor: Actor, channel_id: int, user_id: int) -> None:
        """Remove someone: the channel's creator or an administrator (or yourself: leave)."""
        if user_id == actor.user_id:
            await self.leave(actor, channel_id)
            return
        async with self._ctx.storage.transaction() as uow:
            access = await access_channel_for_admin(uow, actor, channel_id)
            if access.channel.kind.is_conversation:
                raise InvalidInput(
                    "conversation members are fixed", code="conversation_members_fixed"
                )
            creator = access.channel.created_by == actor.user_id and access.is_member
            if not (actor.is_admin or creator):
                raise PermissionDenied(
                    "only the creator or an administrator can remove members",
                    code="not_channel_manager",
                )
            if await uow.channels.membership(channel_id, user_id) is None:
                raise NotFound("that user is not a member", code="not_a_member")
            await self._remove(uow, access.channel, user_id, removed_by=actor.user_id)

    async def members(self, actor: Actor, channel_id: int, *, after: int, limit: int) -> MemberPage:
        """A page of a channel's members."""
        limit = max(1, min(limit, self._ctx.policy.max_page_size))
        async with self._ctx.storage.snapshot() as uow:
            await access_channel_for_admin(uow, actor, channel_id)
            found = await uow.channels.members_page(
                channel_id, after_user_id=after, limit=limit + 1
            )
        more = len(found) > limit
        found = found[:limit]
        return MemberPage(members=found, next_after=found[-1].user_id if more and found else None)

    async def set_preferences(
        self, actor: Actor, channel_id: int, *, muted: bool | None, starred: bool | None
    ) -> ChannelSummary:
        """Mute or star a channel for yourself."""
        flags = {k: v for k, v in (("muted", muted), ("starred", starred)) if v is not None}
        async with self._ctx.storage.transaction() as uow:
            access = await access_channel(uow, actor, channel_id)
            if not access.is_member:
                raise Conflict("you are not a member of this channel", code="not_a_member")
            if flags:
                await uow.channels.set_membership_flags(channel_id, actor.user_id, **flags)
        return await self.get_channel(actor, channel_id)

    # --- helpers --------------------------------------------------------------------------
    def _require_manageable(
        self, actor: Actor, access: ChannelAccess, *, allow_members: bool
    ) -> None:
        if access.channel.archived_at is not None:
            raise PermissionDenied("the channel is archived", code="channel_archived")
        if actor.is_admin:
            return
        if not access.is_member:
            raise PermissionDenied("join the channel first", code="not_a_member")
        if actor.is_guest or not allow_members:
            raise PermissionDenied("you cannot manage this channel", code="not_channel_manager")

    async def _check_addable(self, uow: UnitOfWork, actor: Actor, user_ids: list[int]) -> None:
        if not user_ids:
            return
        found = await uow.users.get_many(user_ids)
        for user_id in user_ids:
            record = found.get(user_id)
            if record is None or not record.is_active:
                raise InvalidInput(
                    f"user {user_id} does not exist or is deactivated",
                    field="user_ids",
                    code="unknown_user",
                )
            if record.role.is_guest and not actor.is_admin:
                raise PermissionDenied("only administrators can add guests", code="admin_required")

    async def _add(
        self, uow: UnitOfWork, channel: Channel, user_id: int, *, added_by: int | None
    ) -> Channel:
        # Newcomers start caught up: earlier history is readable but not "unread".
        membership = await uow.channels.add_member(
            channel.id, user_id, now=self._ctx.clock(), last_read_seq=channel.last_seq
        )
        if membership is None:
            return channel
        channel = await self._reload(uow, channel.id)
        member = Member(
            user_id=user_id, joined_at=membership.joined_at, last_read_seq=membership.last_read_seq
        )
        uow.outbox.append(
            MemberJoined(channel=channel, member=member, added_by=added_by),
            Audience(channel_id=channel.id, joined=(user_id,)),
        )
        return channel

    async def _remove(
        self, uow: UnitOfWork, channel: Channel, user_id: int, *, removed_by: int | None
    ) -> None:
        if await uow.channels.remove_member(channel.id, user_id):
            uow.outbox.append(
                MemberLeft(channel_id=channel.id, user_id=user_id, removed_by=removed_by),
                Audience(channel_id=channel.id, left=(user_id,)),
            )

    async def _reload(self, uow: UnitOfWork, channel_id: int) -> Channel:
        channel = await uow.channels.get(channel_id)
        if channel is None:
            raise NotFound(CHANNEL_NOT_FOUND)
        return channel


def _with_members(channel: Channel, member_ids: list[int]) -> Channel:
    return msgspec.structs.replace(channel, member_ids=member_ids)
