"""The audit log for administrators: ``GET /api/v1/admin/audit``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter, SkipValidation

from courtyard.api.deps import MAX_ID, AppServices
from courtyard.domain.audit import AuditEntry, AuditQuery
from courtyard.domain.users import Actor

AdminActor = NamedDependency[SkipValidation[Actor]]


class AuditPageResponse(msgspec.Struct, kw_only=True):
    """Entries newest first; pass ``next_before`` as ``before`` for the next (older) page."""

    entries: list[AuditEntry]
    next_before: int | None = None


class AuditController(Controller):
    """The tamper-evident audit trail (owners and admins)."""

    path = "/api/v1/admin/audit"
    tags = ["admin"]

    @get("/", summary="Query the audit log")
    async def list_audit(
        self,
        admin_actor: AdminActor,
        services: AppServices,
        actor_id: Annotated[
            int | None,
            QueryParameter(name="actor", ge=1, le=MAX_ID, description="Acting user's id."),
        ] = None,
        action: Annotated[
            str | None,
            QueryParameter(max_length=64, description="Action, e.g. auth.sign_in."),
        ] = None,
        outcome: Annotated[Literal["success", "failure", "denied"] | None, QueryParameter()] = None,
        since: Annotated[
            datetime | None, QueryParameter(description="Entries at or after (with offset).")
        ] = None,
        until: Annotated[
            datetime | None, QueryParameter(description="Entries before (with offset).")
        ] = None,
        before: Annotated[
            int | None, QueryParameter(ge=1, le=MAX_ID, description="Entries with ids below.")
        ] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=1000, description="Page size.")] = 50,
    ) -> AuditPageResponse:
        """Filters combine; ``since``/``until`` need a timezone offset."""
        page = await services.audit.list_entries(
            admin_actor,
            AuditQuery(actor_id=actor_id, action=action, outcome=outcome, since=since, until=until),
            before=before,
            limit=limit,
        )
        return AuditPageResponse(entries=page.entries, next_before=page.next_before)
