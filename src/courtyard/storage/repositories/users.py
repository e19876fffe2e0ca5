"""Users: profiles, roles, password hashes and deactivation."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, or_, select, update

from courtyard.domain.roles import Role
from courtyard.domain.users import CustomStatus, User
from courtyard.storage.repositories._base import Repository, translating_unique
from courtyard.storage.schema import memberships, users
from courtyard.storage.timestamps import maybe_from_micros, maybe_to_micros, to_micros


@dataclass(frozen=True, slots=True)
class UserRecord:
    """Everything stored about a user, including secrets that never leave the services."""

    id: int
    username: str
    email: str | None
    display_name: str
    role: Role
    is_bot: bool
    bot_owner_id: int | None
    password_hash: str | None
    title: str
    timezone: str
    status: CustomStatus | None
    created_at: datetime
    deactivated_at: datetime | None
    credentials_changed_at: datetime
    send_read_receipts: bool = True

    @property
    def is_active(self) -> bool:
        """Deactivated users cannot sign in or use tokens."""
        return self.deactivated_at is None

    def public(self, *, include_email: bool) -> User:
        """The profile as another user sees it."""
        return User(
            id=self.id,
            username=self.username,
            display_name=self.display_name,
            role=self.role,
            is_bot=self.is_bot,
            title=self.title,
            timezone=self.timezone,
            status=self.status,
            email=self.email if include_email else None,
            created_at=self.created_at,
            deactivated=self.deactivated_at is not None,
            bot_owner_id=self.bot_owner_id,
            send_read_receipts=self.send_read_receipts if include_email else None,
        )


def _record(row: Row[Any]) -> UserRecord:
    status = None
    if row.status_emoji is not None or row.status_text:
        status = CustomStatus(
            emoji=row.status_emoji,
            text=row.status_text,
            expires_at=maybe_from_micros(row.status_expires_at),
        )
    return UserRecord(
        id=row.id,
        username=row.username,
        email=row.email,
        display_name=row.display_name,
        role=Role(row.role),
        is_bot=bool(row.is_bot),
        bot_owner_id=row.bot_owner_id,
        password_hash=row.password_hash,
        title=row.title,
        timezone=row.timezone,
        status=status,
        created_at=maybe_from_micros(row.created_at),  # type: ignore[arg-type]
        deactivated_at=maybe_from_micros(row.deactivated_at),
        credentials_changed_at=maybe_from_micros(row.credentials_changed_at),  # type: ignore[arg-type]
        send_read_receipts=bool(row.send_read_receipts),
    )


@dataclass(frozen=True, slots=True)
class NewUser:
    """The fields needed to create a user."""

    username: str
    display_name: str
    role: Role
    email: str | None = None
    password_hash: str | None = None
    is_bot: bool = False
    bot_owner_id: int | None = None


class UserRepository(Repository):
    """Reads and writes of the ``users`` table."""

    async def insert(self, new: NewUser, *, now: datetime) -> UserRecord:
        """Create a user; raises UniqueViolation on a taken username or email."""
        stamp = to_micros(now)
        result = await translating_unique(
            self.conn.execute(
                users.insert()
                .values(
                    username=new.username,
                    email=new.email,
                    email_key=new.email.lower() if new.email else None,
                    display_name=new.display_name,
                    role=new.role.value,
                    is_bot=new.is_bot,
                    bot_owner_id=new.bot_owner_id,
                    password_hash=new.password_hash,
                    title="",
                    timezone="",
                    status_text="",
                    created_at=stamp,
                    updated_at=stamp,
                    credentials_changed_at=stamp,
                )
                .returning(users)
            )
        )
        return _record(result.one())

    async def get(self, user_id: int) -> UserRecord | None:
        """A user by id, active or not."""
        row = (await self.conn.execute(select(users).where(users.c.id == user_id))).first()
        return _record(row) if row else None

    async def get_many(self, user_ids: Iterable[int]) -> dict[int, UserRecord]:
        """Users by id, in one query."""
        ids = sorted(set(user_ids))
        if not ids:
            return {}
        rows = await self.conn.execute(select(users).where(users.c.id.in_(ids)))
        return {row.id: _record(row) for row in rows}

    async def by_username(self, username: str) -> UserRecord | None:
        """A user by exact (already lower-cased) username."""
        row = (await self.conn.execute(select(users).where(users.c.username == username))).first()
        return _record(row) if row else None

    async def by_usernames(self, usernames: Iterable[str]) -> list[UserRecord]:
        """Users by username, in one query."""
        names = sorted(set(usernames))
        if not names:
            return []
        rows = await self.conn.execute(select(users).where(users.c.username.in_(names)))
        return [_record(row) for row in rows]

    async def by_login(self, login: str) -> UserRecord | None:
        """A user by username or email address (case-insensitive)."""
        key = login.strip().lower()
        row = (
            await self.conn.execute(
                select(users).where(or_(users.c.username == key, users.c.email_key == key))
            )
        ).first()
        return _record(row) if row else None

    async def count_by_role(self, role: Role) -> int:
        """How many active users hold ``role``."""
        return int(
            (
                await self.conn.execute(
                    select(func.count())
                    .select_from(users)
                    .where(users.c.role == role.value, users.c.deactivated_at.is_(None))
                )
            ).scalar_one()
        )

    async def lock_active_owners(self) -> list[int]:
        """Lock the active owners' rows until commit (PostgreSQL; SQLite has one writer).

        Changes that must keep at least one owner take this lock first, so two of them cannot
        both see "another owner remains" and each remove one.
        """
        rows = await self.conn.execute(
            select(users.c.id)
            .where(users.c.role == Role.OWNER.value, users.c.deactivated_at.is_(None))
            .order_by(users.c.id)
            .with_for_update()
        )
        return [row.id for row in rows]

    async def list_page(
        self,
        *,
        after_id: int,
        limit: int,
        query: str | None,
        include_deactivated: bool,
        sharing_channels_with: int | None,
    ) -> list[UserRecord]:
        """A page of the directory ordered by id.

        ``sharing_channels_with`` restricts the page to people who share a channel with that
        user (what a guest may see).
        """
        stmt = select(users).where(users.c.id > after_id).order_by(users.c.id).limit(limit)
        if not include_deactivated:
            stmt = stmt.where(users.c.deactivated_at.is_(None))
        if query:
            pattern = (
                "%"
                + query.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                + "%"
            )
            stmt = stmt.where(
                or_(
                    users.c.username.like(pattern, escape="\\"),
                    func.lower(users.c.display_name).like(pattern, escape="\\"),
                )
            )
        if sharing_channels_with is not None:
            mine = select(memberships.c.channel_id).where(
                memberships.c.user_id == sharing_channels_with
            )
            shared = select(memberships.c.user_id).where(memberships.c.channel_id.in_(mine))
            stmt = stmt.where(or_(users.c.id.in_(shared), users.c.id == sharing_channels_with))
        rows = await self.conn.execute(stmt)
        return [_record(row) for row in rows]

    async def update_profile(self, user_id: int, changes: dict[str, Any], *, now: datetime) -> None:
        """Write profile columns (display_name, title, timezone, status_*)."""
        await self.conn.execute(
            update(users).where(users.c.id == user_id).values(**changes, updated_at=to_micros(now))
        )

    async def set_status(self, user_id: int, status: CustomStatus | None, *, now: datetime) -> None:
        """Set or clear the custom status."""
        await self.update_profile(
            user_id,
            {
                "status_emoji": status.emoji if status else None,
                "status_text": status.text if status else "",
                "status_expires_at": maybe_to_micros(status.expires_at) if status else None,
            },
            now=now,
        )

    async def set_role(self, user_id: int, role: Role, *, now: datetime) -> None:
        """Change a user's organisation role."""
        await self.update_profile(user_id, {"role": role.value}, now=now)

    async def set_password_hash(self, user_id: int, password_hash: str, *, now: datetime) -> None:
        """Store a new password hash and mark credentials as changed."""
        await self.update_profile(
            user_id,
            {"password_hash": password_hash, "credentials_changed_at": to_micros(now)},
            now=now,
        )

    async def rehash_password(self, user_id: int, password_hash: str) -> None:
        """Upgrade a hash to current parameters without touching anything else."""
        await self.conn.execute(
            update(users).where(users.c.id == user_id).values(password_hash=password_hash)
        )

    async def set_deactivated(self, user_id: int, *, at: datetime | None, now: datetime) -> None:
        """Deactivate (``at`` given) or reactivate (``at`` None) a user."""
        await self.update_profile(user_id, {"deactivated_at": maybe_to_micros(at)}, now=now)

    async def ids_of_active(self, user_ids: Sequence[int]) -> set[int]:
        """Which of ``user_ids`` exist and are active."""
        if not user_ids:
            return set()
        rows = await self.conn.execute(
            select(users.c.id).where(
                users.c.id.in_(list(user_ids)), users.c.deactivated_at.is_(None)
            )
        )
        return {row.id for row in rows}
