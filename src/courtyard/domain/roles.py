"""Organisation roles and what each may do, as pure predicates."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """A user's organisation-wide role, from most to least privileged."""

    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"
    GUEST = "guest"

    @property
    def is_admin(self) -> bool:
        """Owners and admins administer users and channels."""
        return self in (Role.OWNER, Role.ADMIN)

    @property
    def is_guest(self) -> bool:
        """Guests see only the channels they were added to."""
        return self is Role.GUEST


def may_assign_role(actor: Role, target_current: Role | None, new_role: Role) -> bool:
    """Whether ``actor`` may give ``new_role`` to someone whose role is ``target_current``.

    Only the owner may create or demote owners and admins; admins manage members and guests.
    """
    if actor is Role.OWNER:
        return True
    if actor is not Role.ADMIN:
        return False
    if new_role in (Role.OWNER, Role.ADMIN):
        return False
    return target_current not in (Role.OWNER, Role.ADMIN)
