"""Reactions are single Unicode emoji (including skin tones, ZWJ sequences and flags)."""

from __future__ import annotations

import emoji

from courtyard.domain.errors import InvalidInput


def clean_reaction_emoji(value: str) -> str:
    """Accept exactly one emoji; anything else is refused with a clear error."""
    candidate = value.strip()
    if "\x00" in candidate or len(candidate) > 32 or not emoji.is_emoji(candidate):
        raise InvalidInput(
            "emoji must be a single Unicode emoji", field="emoji", code="invalid_emoji"
        )
    return candidate
