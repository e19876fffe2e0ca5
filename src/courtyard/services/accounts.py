"""People: creating users, invites, the directory, profiles, roles, bots and deactivation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import available_timezones

import msgspec

from courtyard.auth.password_rules import check_password
from courtyard.auth.tokens import SecretKind, hash_secret, new_secret
from courtyard.domain.emoji_names import clean_reaction_emoji
from courtyard.domain.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from courtyard.domain.events import (
    Audience,
    UserCreated,
    UserDeactivated,
    UserUpdated,
    sessions_ended,
)
from courtyard.domain.roles import Role, may_assign_role
from courtyard.domain.text import clean_email, clean_name, clean_username
from courtyard.domain.users import Actor, CustomStatus, Invite, User
from courtyard.services.access import USER_NOT_FOUND, access_user, require_admin
from courtyard.services.audit import note
from courtyard.services.context import ServiceContext
from courtyard.services.second_factor import require_recent_authentication
from courtyard.services.sessions import ClientInfo, Sessions, SignedIn, check_new_password
from courtyard.services.tokens import IssuedToken, issue_token
from courtyard.storage.errors import UniqueViolation
from courtyard.storage.repositories.users import NewUser, UserRecord
from courtyard.storage.unit_of_work import UnitOfWork

_TIMEZONES = frozenset(available_timezones())


@dataclass(frozen=True, slots=True)
class NewAccount:
    """What a person supplies to get an account."""

    username: str
    password: str
    display_name: str | None = None
    email: str | None = None


@dataclass(frozen=True, slots=True)
class ProfileChanges:
    """Profile fields to change; None leaves a field as it is."""

    display_name: str | None = None
    title: str | None = None
    timezone: str | None = None
    send_read_receipts: bool | None = None


@dataclass(frozen=True, slots=True)
class IssuedInvite:
    """A new invite; the link secret is shown once."""

    invite: Invite
    secret: str


@dataclass(frozen=True, slots=True)
class UserPage:
    """A page of the directory and the cursor for the next one (None at the end)."""

    users: list[User]
    next_after: int | None


async def register_user(
    ctx: ServiceContext, uow: UnitOfWork, account: NewAccount, *, role: Role
) -> UserRecord:
    """Validate and store a new human account inside an open unit of work."""
    username = clean_username(account.username)
    email = clean_email(account.email) if account.email else None
    display_name = clean_name(account.display_name or username, field="display_name", max_length=64)
    password = check_password(
        account.password,
        min_length=ctx.policy.password_min_length,
        min_strength=ctx.policy.security.password_min_strength,
        user_inputs=(username, email or "", display_name),
    )
    password_hash = await ctx.passwords.hash(password)
    try:
        record = await uow.users.insert(
            NewUser(
                username=username,
                display_name=display_name,
                role=role,
                email=email,
                password_hash=password_hash,
            ),
            now=ctx.clock(),
        )
    except UniqueViolation as exc:
        raise _taken(exc) from exc
    uow.outbox.append(
        UserCreated(user=record.public(include_email=False)), Audience(all_members=True)
    )
    return record


def _taken(exc: UniqueViolation) -> Conflict:
    if exc.constraint and "email" in exc.constraint:
        return Conflict("that email address is already in use", code="email_taken", field="email")
    return Conflict("that username is taken", code="username_taken", field="username")


class Accounts:
    """User administration and self-service profiles."""

    def __init__(self, ctx: ServiceContext, sessions: Sessions) -> None:
        self._ctx = ctx
        self._sessions = sessions

    # --- creating people ------------------------------------------------------------------
    async def create_user(self, actor: Actor, account: NewAccount, role: Role) -> User:
        """An administrator creates an account directly."""
        require_admin(actor)
        if not may_assign_role(actor.role, None, role):
            raise PermissionDenied(
                f"you cannot create a user with role {role}", code="role_not_allowed"
            )
        async with self._ctx.storage.transaction() as uow:
            record = await register_user(self._ctx, uow, account, role=role)
            note(
                uow,
                self._ctx,
                actor,
                "user.created",
                target=f"user:{record.id}",
                details={"username": record.username, "role": str(role)},
            )
        return self._shown(record, include_email=True)

    async def create_invite(
        self, actor: Actor, role: Role, email: str | None, expires_in_hours: int | None
    ) -> IssuedInvite:
        """An administrator creates an expiring, single-use sign-up link."""
        require_admin(actor)
        if role is Role.OWNER or not may_assign_role(actor.role, None, role):
            raise PermissionDenied(f"you cannot invite with role {role}", code="role_not_allowed")
        lifetime = self._ctx.policy.invite_lifetime
        if expires_in_hours is not None:
            if not 1 <= expires_in_hours <= 24 * 90:
                raise InvalidInput(
                    "expires_in_hours must be between 1 and 2160", field="expires_in_hours"
                )
            from datetime import timedelta

            lifetime = timedelta(hours=expires_in_hours)
        now = self._ctx.clock()
        secret = new_secret(SecretKind.INVITE)
        async with self._ctx.storage.transaction() as uow:
            record = await uow.credentials.insert_invite(
                token_hash=hash_secret(secret),
                role=role,
                email=clean_email(email) if email else None,
                created_by=actor.user_id,
                now=now,
                expires_at=now + lifetime,
            )
            note(
                uow,
                self._ctx,
                actor,
                "user.invited",
                target=f"invite:{record.id}",
                details={"role": str(role), "email": record.email},
            )
        return IssuedInvite(invite=record.public(), secret=secret)

    async def list_invites(self, actor: Actor) -> list[Invite]:
        """Every invite (administrators)."""
        require_admin(actor)
        async with self._ctx.storage.snapshot() as uow:
            return [record.public() for record in await uow.credentials.list_invites()]

    async def revoke_invite(self, actor: Actor, invite_id: int) -> None:
        """Make an unused invite link useless."""
        require_admin(actor)
        async with self._ctx.storage.transaction() as uow:
            if await uow.credentials.get_invite(invite_id) is None:
                raise NotFound("invite not found")
            await uow.credentials.revoke_invite(invite_id, now=self._ctx.clock())
            note(uow, self._ctx, actor, "invite.revoked", target=f"invite:{invite_id}")

    async def check_invite(self, secret: str) -> Invite:
        """The invite behind a link, if it can still be used."""
        async with self._ctx.storage.snapshot() as uow:
            record = await uow.credentials.invite_by_hash(hash_secret(secret))
        now = self._ctx.clock()
        if record is None or record.used_at or record.revoked_at or record.expires_at <= now:
            raise NotFound("this invite link is invalid, used or expired", code="invite_invalid")
        return record.public()

    async def accept_invite(self, secret: str, account: NewAccount, client: ClientInfo) -> SignedIn:
        """Sign up through an invite link and sign in."""
        invite = await self.check_invite(secret)
        if (
            invite.email
            and account.email
            and clean_email(account.email).lower() != invite.email.lower()
        ):
            raise InvalidInput(
                "this invite is for another email address",
                field="email",
                code="invite_email_mismatch",
            )
        email = account.email or invite.email
        async with self._ctx.storage.transaction() as uow:
            record = await register_user(
                self._ctx,
                uow,
                NewAccount(account.username, account.password, account.display_name, email),
                role=invite.role,
            )
            if not await uow.credentials.use_invite(
                invite.id, user_id=record.id, now=self._ctx.clock()
            ):
                raise NotFound(
                    "this invite link is invalid, used or expired", code="invite_invalid"
                )
            note(
                uow,
                self._ctx,
                None,
                "user.invite_accepted",
                target=f"user:{record.id}",
                ip=client.ip_address,
                user_agent=client.user_agent,
                details={"invite_id": invite.id, "username": record.username},
            )
        return await self._sessions.start_session(record.id, client)

    # --- directory and profiles -----------------------------------------------------------
    async def get_user(self, actor: Actor, user_id: int) -> User:
        """A profile the actor may see."""
        async with self._ctx.storage.snapshot() as uow:
            await access_user(uow, actor, user_id)
            record = await uow.users.get(user_id)
        if record is None:
            raise NotFound(USER_NOT_FOUND)
        return self._shown(record, include_email=actor.is_admin or actor.user_id == user_id)

    async def list_users(
        self, actor: Actor, *, after: int, limit: int, query: str | None, include_deactivated: bool
    ) -> UserPage:
        """A page of the directory (guests see only people they share a channel with)."""
        limit = max(1, min(limit, self._ctx.policy.max_page_size))
        if query is not None and ("\x00" in query or len(query) > 64):
            raise InvalidInput("q must be at most 64 characters without NUL", field="q")
        async with self._ctx.storage.snapshot() as uow:
            records = await uow.users.list_page(
                after_id=after,
                limit=limit + 1,
                query=query or None,
                include_deactivated=include_deactivated and actor.is_admin,
                sharing_channels_with=actor.user_id if actor.is_guest else None,
            )
        more = len(records) > limit
        records = records[:limit]
        users = [
            self._shown(r, include_email=actor.is_admin or r.id == actor.user_id) for r in records
        ]
        return UserPage(users=users, next_after=records[-1].id if more and records else None)

    async def update_profile(self, actor: Actor, user_id: int, changes: ProfileChanges) -> User:
        """Change display name, title or timezone (yourself, or anyone as an administrator)."""
        if actor.user_id != user_id:
            require_admin(actor)
        values: dict[str, str | bool] = {}
        if changes.send_read_receipts is not None:
            if actor.user_id != user_id:
                raise PermissionDenied(
                    "only you choose whether you send read receipts", code="own_preference"
                )
            if self._ctx.policy.read_receipts == "always" and not changes.send_read_receipts:
                raise InvalidInput(
                    "your organisation requires read receipts",
                    field="send_read_receipts",
                    code="policy_requires_receipts",
                )
            values["send_read_receipts"] = changes.send_read_receipts
        if changes.display_name is not None:
            values["display_name"] = clean_name(
                changes.display_name, field="display_name", max_length=64
            )
        if changes.title is not None:
            values["title"] = clean_name(
                changes.title, field="title", max_length=128, allow_empty=True
            )
        if changes.timezone is not None:
            if changes.timezone and changes.timezone not in _TIMEZONES:
                raise InvalidInput(
                    "timezone must be an IANA name such as Asia/Shanghai",
                    field="timezone",
                    code="invalid_timezone",
                )
            values["timezone"] = changes.timezone
        async with self._ctx.storage.transaction() as uow:
            record = await self._load(uow, user_id)
            if values:
                await uow.users.update_profile(user_id, values, now=self._ctx.clock())
                record = await self._load(uow, user_id)
                uow.outbox.append(
                    UserUpdated(user=record.public(include_email=False)), Audience(all_members=True)
                )
        return self._shown(record, include_email=True)

    async def set_status(
        self, actor: Actor, emoji: str | None, text: str, expires_at: datetime | None
    ) -> User:
        """Set (or, with no emoji and no text, clear) the actor's custom status."""
        status: CustomStatus | None = None
        clean_text = clean_name(text, field="text", max_length=128, allow_empty=True)
        if expires_at is not None and expires_at.tzinfo is None:
            raise InvalidInput(
                "expires_at needs a timezone offset, e.g. 2030-01-01T09:00:00Z",
                field="expires_at",
                code="timezone_required",
            )
        if emoji or clean_text:
            if expires_at is not None and expires_at <= self._ctx.clock():
                raise InvalidInput("expires_at must be in the future", field="expires_at")
            status = CustomStatus(
                emoji=clean_reaction_emoji(emoji) if emoji else None,
                text=clean_text,
                expires_at=expires_at,
            )
        async with self._ctx.storage.transaction() as uow:
            await uow.users.set_status(actor.user_id, status, now=self._ctx.clock())
            record = await self._load(uow, actor.user_id)
            uow.outbox.append(
                UserUpdated(user=record.public(include_email=False)), Audience(all_members=True)
            )
        return self._shown(record, include_email=True)

    async def set_role(self, actor: Actor, user_id: int, role: Role) -> User:
        """Change someone's role within what the actor's own role allows."""
        require_admin(actor)
        async with self._ctx.storage.transaction() as uow:
            record = await self._load(uow, user_id)
            if record.is_bot:
                raise InvalidInput("bots keep the member role", code="bot_role_fixed")
            await require_recent_authentication(self._ctx, uow, actor)
            if not may_assign_role(actor.role, record.role, role):
                raise PermissionDenied(f"you cannot make this user {role}", code="role_not_allowed")
            if record.role is Role.OWNER and record.is_active and role is not Role.OWNER:
                await self._keep_an_owner(uow)
            await uow.users.set_role(user_id, role, now=self._ctx.clock())
            note(
                uow,
                self._ctx,
                actor,
                "user.role_changed",
                target=f"user:{user_id}",
                details={"from": str(record.role), "to": str(role)},
            )
            uow.after_commit(lambda: self._sessions.forget_user(user_id))
            record = await self._load(uow, user_id)
            uow.outbox.append(
                UserUpdated(user=record.public(include_email=False)), Audience(all_members=True)
            )
        return self._shown(record, include_email=True)

    async def deactivate(self, actor: Actor, user_id: int) -> User:
        """Block sign-in and end every session at once; history stays."""
        require_admin(actor)
        now = self._ctx.clock()
        async with self._ctx.storage.transaction() as uow:
            record = await self._load(uow, user_id)
            if (
                not may_assign_role(actor.role, record.role, Role.MEMBER)
                and actor.user_id != user_id
            ):
                raise PermissionDenied("you cannot deactivate this user", code="role_not_allowed")
            if record.role is Role.OWNER and record.is_active:
                await self._keep_an_owner(uow)
            if record.is_active:
                await uow.users.set_deactivated(user_id, at=now, now=now)
                uow.after_commit(lambda: self._sessions.forget_user(user_id))
                await uow.credentials.delete_sessions_of(user_id)
                note(uow, self._ctx, actor, "user.deactivated", target=f"user:{user_id}")
                record = await self._load(uow, user_id)
                uow.outbox.append(
                    UserDeactivated(user=record.public(include_email=False)),
                    Audience(all_members=True),
                )
        return self._shown(record, include_email=True)

    async def reactivate(self, actor: Actor, user_id: int) -> User:
        """Allow a deactivated user to sign in again."""
        require_admin(actor)
        async with self._ctx.storage.transaction() as uow:
            record = await self._load(uow, user_id)
            if not may_assign_role(actor.role, record.role, Role.MEMBER):
                raise PermissionDenied("you cannot reactivate this user", code="role_not_allowed")
            if not record.is_active:
                await uow.users.set_deactivated(user_id, at=None, now=self._ctx.clock())
                note(uow, self._ctx, actor, "user.reactivated", target=f"user:{user_id}")
                record = await self._load(uow, user_id)
                uow.outbox.append(
                    UserUpdated(user=record.public(include_email=False)), Audience(all_members=True)
                )
        return self._shown(record, include_email=True)

    async def reset_password(self, actor: Actor | None, user_id: int, new_password: str) -> None:
        """Set a user's password (administrators, or the CLI with ``actor=None``); sessions end."""
        if actor is not None:
            require_admin(actor)
        async with self._ctx.storage.snapshot() as uow:
            target = await self._load(uow, user_id)
        check_new_password(self._ctx, new_password, target)
        new_hash = await self._ctx.passwords.hash(new_password)
        async with self._ctx.storage.transaction() as uow:
            record = await self._load(uow, user_id)
            if actor is not None and not may_assign_role(actor.role, record.role, Role.MEMBER):
                raise PermissionDenied(
                    "you cannot reset this user's password", code="role_not_allowed"
                )
            if record.is_bot:
                raise InvalidInput(
                    "bots sign in with tokens, not passwords", code="bot_has_no_password"
                )
            await uow.users.set_password_hash(user_id, new_hash, now=self._ctx.clock())
            await uow.credentials.delete_sessions_of(user_id)
            # A reset usually follows a compromise: the person's own tokens go too.
            await uow.credentials.revoke_tokens_of(user_id, now=self._ctx.clock())
            uow.outbox.append(*sessions_ended(user_id, reason="password reset"))
            note(
                uow,
                self._ctx,
                actor,
                "user.password_reset",
                target=f"user:{user_id}",
                details={} if actor is not None else {"via": "cli"},
            )
            uow.after_commit(lambda: self._sessions.forget_user(user_id))

    async def find_user_id(self, login: str) -> int:
        """A user id by username or email (command-line administration)."""
        async with self._ctx.storage.snapshot() as uow:
            record = await uow.users.by_login(login)
        if record is None:
            raise NotFound(USER_NOT_FOUND)
        return record.id

    # --- bots -----------------------------------------------------------------------------
    async def create_bot(self, actor: Actor, username: str, display_name: str | None) -> User:
        """An administrator creates a bot account (it signs in only with bot tokens)."""
        require_admin(actor)
        name = clean_username(username)
        shown = clean_name(display_name or name, field="display_name", max_length=64)
        async with self._ctx.storage.transaction() as uow:
            try:
                record = await uow.users.insert(
                    NewUser(
                        username=name,
                        display_name=shown,
                        role=Role.MEMBER,
                        is_bot=True,
                        bot_owner_id=actor.user_id,
                    ),
                    now=self._ctx.clock(),
                )
            except UniqueViolation as exc:
                raise _taken(exc) from exc
            note(
                uow,
                self._ctx,
                actor,
                "bot.created",
                target=f"user:{record.id}",
                details={"username": record.username},
            )
            uow.outbox.append(
                UserCreated(user=record.public(include_email=False)), Audience(all_members=True)
            )
        return self._shown(record, include_email=True)

    async def create_bot_token(
        self, actor: Actor, bot_id: int, name: str, scopes: list[str], expires_in_days: int | None
    ) -> IssuedToken:
        """A scoped token for a bot (administrators)."""
        require_admin(actor)
        async with self._ctx.storage.transaction() as uow:
            record = await uow.users.get(bot_id)
            if record is None or not record.is_bot:
                raise NotFound("bot not found")
            await require_recent_authentication(self._ctx, uow, actor)
            issued = await issue_token(
                self._ctx,
                uow,
                owner=record,
                created_by=actor.user_id,
                name=name,
                scopes=scopes,
                expires_in_days=expires_in_days,
                kind=SecretKind.BOT_TOKEN,
            )
            note(
                uow,
                self._ctx,
                actor,
                "token.created",
                target=f"token:{issued.token.id}",
                details={
                    "kind": "bot",
                    "owner_id": bot_id,
                    "scopes": " ".join(issued.token.scopes),
                },
            )
            return issued

    # --- helpers --------------------------------------------------------------------------
    def _shown(self, record: UserRecord, *, include_email: bool) -> User:
        """The profile as shown now: a custom status stops showing once it has expired."""
        user = record.public(include_email=include_email)
        status = user.status
        if status and status.expires_at and status.expires_at <= self._ctx.clock():
            return msgspec.structs.replace(user, status=None)
        return user

    async def _load(self, uow: UnitOfWork, user_id: int) -> UserRecord:
        record = await uow.users.get(user_id)
        if record is None:
            raise NotFound(USER_NOT_FOUND)
        return record

    async def _keep_an_owner(self, uow: UnitOfWork) -> None:
        if len(await uow.users.lock_active_owners()) <= 1:
            raise Conflict("the organisation must keep at least one owner", code="last_owner")
