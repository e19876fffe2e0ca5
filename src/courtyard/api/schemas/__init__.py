"""Request bodies and response envelopes of the HTTP API.

Bodies forbid unknown fields (a typo is an error, not a silent no-op). Lengths here are a
first, cheap bound; the domain applies the precise rules and names the field on failure.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

MAX_ID = 2**63 - 1
IdField = Annotated[int, msgspec.Meta(ge=1, le=MAX_ID)]
SeqField = Annotated[int, msgspec.Meta(ge=0, le=MAX_ID)]


def short(limit: int) -> object:
    """A string bound (domain rules give the precise message)."""
    return msgspec.Meta(max_length=limit)


class Body(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Base of every request body."""
