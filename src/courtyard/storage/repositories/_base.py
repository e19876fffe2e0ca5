"""Shared helpers for repositories."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

import orjson
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from courtyard.storage.errors import UniqueViolation

T = TypeVar("T")


class Repository:
    """Base class: holds the unit of work's connection."""

    __slots__ = ("conn",)

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn


async def translating_unique(operation: Awaitable[T]) -> T:
    """Run a statement, turning a unique-constraint failure into :class:`UniqueViolation`."""
    try:
        return await operation
    except IntegrityError as exc:
        message = str(exc.orig).lower()
        if "unique" in message or "duplicate key" in message:
            raise UniqueViolation(_constraint_name(exc)) from exc
        raise


def _constraint_name(exc: IntegrityError) -> str | None:
    orig = exc.orig
    name = getattr(getattr(orig, "__cause__", None), "constraint_name", None)
    if isinstance(name, str):
        return name
    text = str(orig)
    # SQLite: "UNIQUE constraint failed: users.username"
    if "constraint failed:" in text:
        return text.split("constraint failed:", 1)[1].strip()
    return None


def dump_ids(ids: list[int]) -> str:
    """Serialise a list of ids to the TEXT columns that hold them."""
    return orjson.dumps(ids).decode()


def load_ids(raw: str | None) -> list[int]:
    """Inverse of :func:`dump_ids`."""
    if not raw or raw == "[]":  # most rows: no parse for the empty list
        return []
    value = orjson.loads(raw)
    return [int(item) for item in value]
