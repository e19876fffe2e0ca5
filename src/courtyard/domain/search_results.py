"""Search results: their shape, and highlighting where a query matched.

Matching reuses the indexing tokeniser, so what is highlighted is exactly what matched.
Snippets are HTML-escaped everywhere except the ``<mark>``/``</mark>`` pairs this module adds;
``highlights`` gives the same spans as code-point offsets into the message text.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import msgspec

from courtyard.domain.channels import ChannelKind
from courtyard.domain.messages import Message
from courtyard.domain.search_query import Phrase
from courtyard.domain.search_text import Token, tokenize

SNIPPET_CHARS = 200
LEAD_CHARS = 60
MARK_OPEN = "<mark>"
MARK_CLOSE = "</mark>"


def _matches_at(tokens: Sequence[Token], at: int, phrase: Phrase) -> bool:
    if at + len(phrase.terms) > len(tokens):
        return False
    for offset, term in enumerate(phrase.terms):
        actual = tokens[at + offset].term
        is_last = offset == len(phrase.terms) - 1
        if actual == term or (is_last and phrase.prefix and actual.startswith(term)):
            continue
        return False
    return True


def highlights(text: str, phrases: Sequence[Phrase]) -> list[tuple[int, int]]:
    """Merged ``[start, end)`` spans (code points) of ``text`` matched by any phrase."""
    if not phrases or not text:
        return []
    tokens = tokenize(text)
    spans: list[tuple[int, int]] = []
    for at in range(len(tokens)):
        for phrase in phrases:
            if phrase.terms and _matches_at(tokens, at, phrase):
                last = tokens[at + len(phrase.terms) - 1]
                spans.append((tokens[at].start, last.end))
    spans.sort()
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def snippet(text: str, spans: Sequence[tuple[int, int]], *, width: int = SNIPPET_CHARS) -> str:
    """An escaped excerpt of about ``width`` characters around the first match, marked up."""
    start = 0
    if spans and len(text) > width:
        start = max(0, spans[0][0] - LEAD_CHARS)
        space = text.rfind(" ", start - 15, start) if start else -1
        start = space + 1 if space >= 0 else start
    end = min(len(text), start + width)
    parts = ["…" if start > 0 else ""]
    cursor = start
    for span_start, span_end in spans:
        if span_end <= start or span_start >= end:
            continue
        s, e = max(span_start, start), min(span_end, end)
        parts.append(html.escape(text[cursor:s], quote=True))
        parts.append(MARK_OPEN + html.escape(text[s:e], quote=True) + MARK_CLOSE)
        cursor = e
    parts.append(html.escape(text[cursor:end], quote=True))
    if end < len(text):
        parts.append("…")
    return "".join(parts)


class ChannelRef(msgspec.Struct, frozen=True, kw_only=True):
    """Where a result lives (conversations have no name; show their members instead)."""

    id: int
    kind: ChannelKind
    name: str


class SearchResult(msgspec.Struct, frozen=True, kw_only=True):
    """One matching message with its context.

    ``message.thread_root_id`` names the thread of a reply (open
    ``/api/v1/messages/{thread_root_id}/thread?around={message.seq}``); a top-level message
    is in the channel's history at ``message.seq``.
    """

    message: Message
    channel: ChannelRef
    snippet: str
    highlights: list[tuple[int, int]]
    matched_file_ids: list[int]
    score: float | None = None


class SearchPage(msgspec.Struct, frozen=True, kw_only=True):
    """A page of results; pass ``next_cursor`` back as ``cursor`` for the next one."""

    results: list[SearchResult]
    order: str
    next_cursor: str | None = None
