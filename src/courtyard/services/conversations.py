"""Direct and group conversations: the same set of people always maps to one conversation."""

from __future__ import annotations

import hashlib

from courtyard.domain.channels import Channel, ChannelKind
from courtyard.domain.errors import InvalidInput
from courtyard.domain.events import Audience, ChannelCreated
from courtyard.domain.users import Actor
from courtyard.services.access import access_user
from courtyard.services.context import ServiceContext
from courtyard.storage.errors import UniqueViolation
from courtyard.storage.unit_of_work import UnitOfWork


def conversation_key(user_ids: set[int]) -> str:
    """The identity of a conversation: a digest of its sorted participant ids (fixed length)."""
    joined = ",".join(str(user_id) for user_id in sorted(user_ids))
    return hashlib.sha256(joined.encode()).hexdigest()


class Conversations:
    """Opening direct messages and group DMs."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx

    async def open_conversation(self, actor: Actor, user_ids: list[int]) -> Channel:
        """The conversation between the actor and ``user_ids``, created on first use.

        One other person (or none: notes to self) makes a direct message; two to seven others
        make a group conversation.
        """
        participants = set(user_ids) | {actor.user_id}
        limit = self._ctx.policy.max_group_members
        if len(participants) > limit:
            raise InvalidInput(
                f"a conversation has at most {limit} people",
                field="user_ids",
                code="too_many_participants",
            )
        key = conversation_key(participants)
        async with self._ctx.storage.snapshot() as uow:
            existing = await uow.channels.by_dm_key(key)
            if existing is None:
                await self._check_participants(uow, actor, participants)
        if existing is not None:
            return existing
        try:
            return await self._create(actor, participants, key)
        except UniqueViolation:
            # Someone opened the same conversation at the same moment: use theirs.
            async with self._ctx.storage.snapshot() as uow:
                existing = await uow.channels.by_dm_key(key)
            assert existing is not None
            return existing

    async def _check_participants(
        self, uow: UnitOfWork, actor: Actor, participants: set[int]
    ) -> None:
        found = await uow.users.get_many(participants)
        for user_id in sorted(participants):
            # Visibility first: a guest must not learn whether a hidden id exists or is active.
            await access_user(uow, actor, user_id)
            record = found.get(user_id)
            if record is None or not record.is_active:
                raise InvalidInput(
                    f"user {user_id} does not exist or is deactivated",
                    field="user_ids",
                    code="unknown_user",
                )

    async def _create(self, actor: Actor, participants: set[int], key: str) -> Channel:
        kind = ChannelKind.DIRECT if len(participants) <= 2 else ChannelKind.GROUP
        now = self._ctx.clock()
        async with self._ctx.storage.transaction() as uow:
            channel = await uow.channels.insert(
                kind=kind, name="", created_by=actor.user_id, now=now, dm_key=key
            )
            for user_id in sorted(participants):
                await uow.channels.add_member(channel.id, user_id, now=now, last_read_seq=0)
            created = await uow.channels.get(channel.id)
            assert created is not None
            uow.outbox.append(
                ChannelCreated(channel=created),
                Audience(channel_id=created.id, joined=tuple(sorted(participants))),
            )
        return created
