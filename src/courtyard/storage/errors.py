"""Storage-level failures that services may act on without knowing the driver."""

from __future__ import annotations


class UniqueViolation(Exception):
    """An insert or update hit a unique constraint; ``constraint`` names it when known."""

    def __init__(self, constraint: str | None = None) -> None:
        super().__init__(constraint or "unique constraint violated")
        self.constraint = constraint
