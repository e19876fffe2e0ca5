"""Find @mentions in markdown text, ignoring code spans and fenced code blocks."""

from __future__ import annotations

import re
from dataclasses import dataclass

_FENCE_RE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)
_CODE_SPAN_RE = re.compile(r"(`+)(?:(?!\1).)+?\1", re.DOTALL)
_MENTION_RE = re.compile(r"(?<![\w@./-])@([a-z0-9](?:[a-z0-9._-]{0,30}[a-z0-9])?)", re.IGNORECASE)
CHANNEL_WIDE = frozenset({"channel", "all", "everyone"})


@dataclass(frozen=True, slots=True)
class Mentions:
    """What a message mentions: user handles, and whether it notifies the whole channel."""

    usernames: frozenset[str]
    channel_wide: bool
    here: bool


def find_mentions(text: str) -> Mentions:
    """Extract @username, @channel/@all/@everyone and @here mentions outside code."""
    prose = _CODE_SPAN_RE.sub(" ", _FENCE_RE.sub(" ", text))
    usernames: set[str] = set()
    channel_wide = here = False
    for match in _MENTION_RE.finditer(prose):
        handle = match.group(1).lower().rstrip(".")
        if handle in CHANNEL_WIDE:
            channel_wide = True
        elif handle == "here":
            here = True
        else:
            usernames.add(handle)
    return Mentions(frozenset(usernames), channel_wide, here)
