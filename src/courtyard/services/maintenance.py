"""Database upkeep as a use case: run the backend's optimize steps and audit the run.

Only the operator starts it, from the shell (``courtyard database optimize``); there is no
HTTP route. Every run is in the audit log, a refused one too, with what each step did.
"""

from __future__ import annotations

import logging

from courtyard.domain.audit import Details
from courtyard.services.audit import FAILURE, Audit
from courtyard.services.context import ServiceContext
from courtyard.storage import upkeep
from courtyard.storage.upkeep import ProgressCallback, StepDone, UpkeepRefused

__all__ = ["Maintenance", "ProgressCallback", "StepDone", "UpkeepRefused"]

logger = logging.getLogger(__name__)

OPTIMIZED = "database.optimized"


class Maintenance:
    """Whole-database upkeep (storage/upkeep.py has the steps and their reasons)."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx

    async def optimize_database(
        self,
        *,
        vacuum: bool = False,
        lock_timeout_s: float = 30.0,
        progress: ProgressCallback | None = None,
        details: Details | None = None,
    ) -> list[StepDone]:
        """Run the steps; ``details`` (who ran it, how) go into the audit entry."""
        database = self._ctx.storage.database
        entry: Details = {**(details or {}), "backend": database.dialect, "vacuum": vacuum}
        audit = Audit(self._ctx)
        try:
            steps = await upkeep.optimize(
                database, vacuum=vacuum, lock_timeout_s=lock_timeout_s, progress=progress
            )
        except UpkeepRefused as exc:
            try:
                await audit.record(
                    None, OPTIMIZED, outcome=FAILURE, details={**entry, "reason": str(exc)}
                )
            except Exception as failure:
                # What refused the step (SQLite's write lock held by another program) can
                # refuse the audit entry too; the operator is told, and nothing had changed.
                logger.warning("could not audit a refused optimize: %s", failure)
                raise UpkeepRefused(
                    f"{exc} (the refusal could not be written to the audit log: {failure})"
                ) from None
            raise
        done: list[str | int] = [f"{s.name}: {s.detail} ({s.seconds:.1f} s)" for s in steps]
        await audit.record(None, OPTIMIZED, details={**entry, "steps": done})
        return steps
