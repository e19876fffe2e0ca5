"""The single organisation row."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from courtyard.domain.users import Organization
from courtyard.storage.repositories._base import Repository
from courtyard.storage.schema import organization
from courtyard.storage.timestamps import from_micros, to_micros


class OrganizationRepository(Repository):
    """Reads and writes of the ``organization`` table (at most one row)."""

    async def get(self) -> Organization | None:
        """The organisation, or None before setup."""
        row = (await self.conn.execute(select(organization).where(organization.c.id == 1))).first()
        if row is None:
            return None
        return Organization(name=row.name, created_at=from_micros(row.created_at))

    async def create(self, name: str, *, now: datetime) -> Organization:
        """Create the organisation; the primary key makes a second one impossible."""
        await self.conn.execute(
            organization.insert().values(id=1, name=name, created_at=to_micros(now))
        )
        return Organization(name=name, created_at=now)
