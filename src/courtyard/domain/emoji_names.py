"""Reactions are single Unicode emoji (including skin tones, ZWJ sequences and flags)."""

from __future__ import annotations

from emoji import EMOJI_DATA, STATUS, is_emoji

from courtyard.domain.errors import InvalidInput

_FULLY_QUALIFIED: dict[str, str] = {
    data["en"]: symbol
    for symbol, data in EMOJI_DATA.items()
    if data["status"] == STATUS["fully_qualified"]
}


def _refuse() -> InvalidInput:
    return InvalidInput("emoji must be a single Unicode emoji", field="emoji", code="invalid_emoji")


def clean_reaction_emoji(value: str) -> str:
    """Exactly one emoji, in its fully-qualified form, so that one emoji is one reaction.

    "\u2764" and "\u2764\ufe0f" render as the same heart; storing both would show two
    identical groups and let one person react twice. A bare component (a skin-tone or hair
    swatch) is part of an emoji, not an emoji of its own.
    """
    candidate = value.strip()
    if "\x00" in candidate or len(candidate) > 32 or not is_emoji(candidate):
        raise _refuse()
    data = EMOJI_DATA[candidate]
    if data["status"] == STATUS["component"]:
        raise _refuse()
    return _FULLY_QUALIFIED.get(data["en"], candidate)
