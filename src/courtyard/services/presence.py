"""Presence queries, with the same visibility rules as the directory."""

from __future__ import annotations

from courtyard.domain.users import Actor
from courtyard.realtime.gateway import Realtime
from courtyard.services.context import ServiceContext

MAX_IDS = 500


class Presence:
    """Who is online, for people the viewer may see."""

    def __init__(self, ctx: ServiceContext, realtime: Realtime) -> None:
        self._ctx = ctx
        self._realtime = realtime

    async def visible_user_ids(self, viewer_id: int, user_ids: list[int]) -> list[int]:
        """The ``user_ids`` whose presence the viewer may follow (guests: shared channels only)."""
        wanted = sorted(set(user_ids))[:MAX_IDS]
        async with self._ctx.storage.snapshot() as uow:
            viewer = await uow.users.get(viewer_id)
            if viewer is None:
                return []
            if not viewer.role.is_guest:
                return wanted
            visible = [viewer_id] if viewer_id in wanted else []
            for user_id in wanted:
                if user_id != viewer_id and await uow.channels.shares_channel(viewer_id, user_id):
                    visible.append(user_id)
        return visible

    async def statuses(self, actor: Actor, user_ids: list[int]) -> dict[int, str]:
        """online / away / offline for each visible user (invisible ids are left out)."""
        visible = await self.visible_user_ids(actor.user_id, user_ids)
        return self._realtime.presence_of(visible)
