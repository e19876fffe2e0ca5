"""Second factors, recovery codes and failed-attempt counters."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from courtyard.storage.repositories._base import Repository
from courtyard.storage.schema import login_attempts, recovery_codes, two_factor
from courtyard.storage.timestamps import from_micros, maybe_from_micros, to_micros


@dataclass(frozen=True, slots=True)
class TwoFactorRecord:
    """A user's TOTP enrolment; ``secret`` is sealed (encrypted)."""

    user_id: int
    secret: str
    created_at: datetime
    confirmed_at: datetime | None
    last_used_step: int | None

    @property
    def enabled(self) -> bool:
        """Confirmed with a first code."""
        return self.confirmed_at is not None


@dataclass(frozen=True, slots=True)
class AttemptState:
    """Failures counted for one key and the lockout, if any."""

    failures: int
    locked_until: datetime | None


class TwoFactorRepository(Repository):
    """TOTP enrolments and recovery codes."""

    async def get(self, user_id: int) -> TwoFactorRecord | None:
        """The user's enrolment, confirmed or not."""
        row = (
            await self.conn.execute(select(two_factor).where(two_factor.c.user_id == user_id))
        ).first()
        if row is None:
            return None
        return TwoFactorRecord(
            user_id=row.user_id,
            secret=row.secret,
            created_at=from_micros(row.created_at),
            confirmed_at=maybe_from_micros(row.confirmed_at),
            last_used_step=row.last_used_step,
        )

    async def enabled_for(self, user_id: int) -> bool:
        """Whether the user has a confirmed second factor."""
        row = (
            await self.conn.execute(
                select(two_factor.c.user_id).where(
                    two_factor.c.user_id == user_id, two_factor.c.confirmed_at.is_not(None)
                )
            )
        ).first()
        return row is not None

    async def start(self, user_id: int, sealed_secret: str, *, now: datetime) -> None:
        """Begin (or restart) an unconfirmed enrolment."""
        await self.conn.execute(delete(two_factor).where(two_factor.c.user_id == user_id))
        await self.conn.execute(
            two_factor.insert().values(
                user_id=user_id, secret=sealed_secret, created_at=to_micros(now)
            )
        )

    async def use_step(self, user_id: int, step: int) -> bool:
        """Spend a time step: False if it (or a later one) was already used."""
        result = await self.conn.execute(
            update(two_factor)
            .where(
                two_factor.c.user_id == user_id,
                (two_factor.c.last_used_step.is_(None)) | (two_factor.c.last_used_step < step),
            )
            .values(last_used_step=step)
        )
        return bool(result.rowcount)

    async def confirm(self, user_id: int, *, now: datetime) -> None:
        """Mark the enrolment confirmed."""
        await self.conn.execute(
            update(two_factor)
            .where(two_factor.c.user_id == user_id)
            .values(confirmed_at=to_micros(now))
        )

    async def remove(self, user_id: int) -> bool:
        """Delete the enrolment and recovery codes; False if there was none."""
        await self.conn.execute(delete(recovery_codes).where(recovery_codes.c.user_id == user_id))
        result = await self.conn.execute(delete(two_factor).where(two_factor.c.user_id == user_id))
        return bool(result.rowcount)

    async def replace_recovery_codes(
        self, user_id: int, code_hashes: list[str], *, now: datetime
    ) -> None:
        """Throw away the old codes and store new ones."""
        await self.conn.execute(delete(recovery_codes).where(recovery_codes.c.user_id == user_id))
        await self.conn.execute(
            recovery_codes.insert(),
            [
                {"user_id": user_id, "code_hash": code_hash, "created_at": to_micros(now)}
                for code_hash in code_hashes
            ],
        )

    async def use_recovery_code(self, user_id: int, code_hash: str, *, now: datetime) -> bool:
        """Spend one unused code; False if it is unknown, someone else's or already used."""
        result = await self.conn.execute(
            update(recovery_codes)
            .where(
                recovery_codes.c.user_id == user_id,
                recovery_codes.c.code_hash == code_hash,
                recovery_codes.c.used_at.is_(None),
            )
            .values(used_at=to_micros(now))
        )
        return bool(result.rowcount)

    async def recovery_codes_left(self, user_id: int) -> int:
        """Unused recovery codes."""
        result = await self.conn.execute(
            select(func.count())
            .select_from(recovery_codes)
            .where(recovery_codes.c.user_id == user_id, recovery_codes.c.used_at.is_(None))
        )
        return int(result.scalar_one())


class AttemptRepository(Repository):
    """Failed-attempt counters shared by every worker (the database is the meeting point)."""

    async def state(self, key: str, *, now: datetime, window: timedelta) -> AttemptState:
        """Failures within the window and any lockout for ``key``."""
        row = (
            await self.conn.execute(select(login_attempts).where(login_attempts.c.key == key))
        ).first()
        if row is None:
            return AttemptState(0, None)
        locked = maybe_from_micros(row.locked_until)
        locked = locked if locked is not None and locked > now else None
        fresh = from_micros(row.window_started_at) > now - window
        return AttemptState(row.failures if fresh else 0, locked)

    async def fail(self, key: str, *, now: datetime, window: timedelta) -> int:
        """Count one failure (a new window if the last one is over); returns the count."""
        stamp = to_micros(now)
        window_start = to_micros(now - window)
        dialect = self.conn.dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        statement = insert(login_attempts).values(
            key=key[:200], failures=1, window_started_at=stamp, locked_until=None
        )
        excluded = statement.excluded
        fresh = login_attempts.c.window_started_at > window_start
        upsert = statement.on_conflict_do_update(
            index_elements=[login_attempts.c.key],
            set_={
                "failures": case((fresh, login_attempts.c.failures + 1), else_=1),
                "window_started_at": case(
                    (fresh, login_attempts.c.window_started_at), else_=excluded.window_started_at
                ),
            },
        ).returning(login_attempts.c.failures)
        result = await self.conn.execute(upsert)
        return int(result.scalar_one())

    async def lock(self, key: str, *, until: datetime) -> None:
        """Refuse attempts for ``key`` until ``until``; the count starts again afterwards."""
        await self.conn.execute(
            update(login_attempts)
            .where(login_attempts.c.key == key[:200])
            .values(locked_until=to_micros(until), failures=0)
        )

    async def clear(self, key: str) -> None:
        """Forget failures of ``key`` (after a success)."""
        await self.conn.execute(delete(login_attempts).where(login_attempts.c.key == key[:200]))

    async def prune(self, *, before: datetime) -> int:
        """Drop counters whose window and lockout are both over."""
        stamp = to_micros(before)
        result = await self.conn.execute(
            delete(login_attempts).where(
                login_attempts.c.window_started_at < stamp,
                (login_attempts.c.locked_until.is_(None)) | (login_attempts.c.locked_until < stamp),
            )
        )
        return int(result.rowcount or 0)
