"""The search query language: words, "phrases", -exclusions and operators.

``deploy "release notes" -staging from:@alice in:#ops after:2026-01-31 has:file is:pinned``

Every word must match (AND). A quoted phrase matches its words in order; an unbalanced quote
runs to the end of the query. ``-word`` and ``-"a phrase"`` exclude. ``word*`` matches words
starting with ``word``. Operators: ``from:`` and ``in:`` (repeat them to allow several),
``before:``/``after:``/``on:`` a ``YYYY-MM-DD`` date (UTC), ``has:file``, ``has:link``,
``is:pinned``, ``is:thread``. Anything else that contains a colon is plain text (``12:30``,
``http://…``). Characters that are neither letters nor digits only separate words, so the
full-text syntax of either database can never be injected.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from courtyard.domain.errors import MalformedRequest
from courtyard.domain.search_text import prefix_terms, query_terms

MAX_QUERY_CHARS = 1000
MAX_QUERY_PARTS = 32
MAX_QUERY_TERMS = 128

OPERATORS = frozenset({"from", "in", "before", "after", "on", "has", "is"})
HAS_VALUES = frozenset({"file", "link"})
IS_VALUES = frozenset({"pinned", "thread"})


@dataclass(frozen=True, slots=True)
class Phrase:
    """Terms that must appear next to each other, in order; the last may be a prefix."""

    terms: tuple[str, ...]
    prefix: bool = False


@dataclass(slots=True)
class SearchQuery:
    """A parsed query: what to match, what to exclude, and the filters."""

    include: list[Phrase] = field(default_factory=list)
    exclude: list[Phrase] = field(default_factory=list)
    from_users: list[str] = field(default_factory=list)
    in_channels: list[str] = field(default_factory=list)
    since: datetime | None = None
    until: datetime | None = None
    has: set[str] = field(default_factory=set)
    is_: set[str] = field(default_factory=set)

    @property
    def has_filters(self) -> bool:
        """Whether anything besides words narrows the results."""
        return bool(
            self.from_users or self.in_channels or self.since or self.until or self.has or self.is_
        )

    @property
    def is_empty(self) -> bool:
        """Nothing to search for: no words and no filters (exclusions alone match too much)."""
        return not self.include and not self.has_filters


def _refuse(message: str, code: str) -> MalformedRequest:
    return MalformedRequest(message, code=code, field="q")


def _split(query: str) -> list[tuple[bool, bool, str]]:
    """(negated, quoted, text) parts; an unbalanced quote runs to the end."""
    parts: list[tuple[bool, bool, str]] = []
    i, n = 0, len(query)
    while i < n:
        if query[i].isspace():
            i += 1
            continue
        negated = query[i] == "-" and i + 1 < n and not query[i + 1].isspace()
        if negated:
            i += 1
        if query[i] == '"':
            end = query.find('"', i + 1)
            end = n if end < 0 else end
            parts.append((negated, True, query[i + 1 : end]))
            i = end + 1
            continue
        start = i
        while i < n and not query[i].isspace():
            if query[i] == '"':
                if not query[start:i].endswith(":"):
                    break  # a phrase starts here
                end = query.find('"', i + 1)  # key:"quoted value"
                i = n if end < 0 else end + 1
                continue
            i += 1
        parts.append((negated, False, query[start:i]))
    return parts


def _date(value: str, key: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _refuse(f"{key}: expects a date as YYYY-MM-DD", "invalid_date") from None


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _apply_operator(result: SearchQuery, key: str, value: str) -> None:
    value = value.strip().strip('"').strip()
    if not value:
        raise _refuse(f"{key}: needs a value", "missing_operator_value")
    if key == "from":
        result.from_users.append(value.removeprefix("@").lower())
    elif key == "in":
        result.in_channels.append(value.removeprefix("#"))
    elif key == "before":
        result.until = _earliest(result.until, _midnight(_date(value, key)))
    elif key == "after":
        result.since = _latest(result.since, _midnight(_date(value, key)) + timedelta(days=1))
    elif key == "on":
        day = _midnight(_date(value, key))
        result.since = _latest(result.since, day)
        result.until = _earliest(result.until, day + timedelta(days=1))
    elif key == "has":
        if value.lower() not in HAS_VALUES:
            raise _refuse(f"has: expects one of {sorted(HAS_VALUES)}", "unknown_operator_value")
        result.has.add(value.lower())
    elif value.lower() not in IS_VALUES:
        raise _refuse(f"is: expects one of {sorted(IS_VALUES)}", "unknown_operator_value")
    else:
        result.is_.add(value.lower())


def _earliest(a: datetime | None, b: datetime) -> datetime:
    return b if a is None else min(a, b)


def _latest(a: datetime | None, b: datetime) -> datetime:
    return b if a is None else max(a, b)


def _phrase(text: str) -> Phrase | None:
    if text.endswith("*") and not text.endswith("**"):
        stem_part, _, last = text[:-1].rpartition(" ")
        lead = query_terms(stem_part)[0] if stem_part else ()
        tail = prefix_terms(last)
        if tail:
            return Phrase(lead + tail, prefix=True)
    terms, prefix = query_terms(text)
    return Phrase(terms, prefix) if terms else None


def parse_query(query: str) -> SearchQuery:
    """Parse a query; MalformedRequest (400) for what cannot be understood or is too big."""
    if len(query) > MAX_QUERY_CHARS:
        raise _refuse(f"queries are limited to {MAX_QUERY_CHARS} characters", "query_too_long")
    parts = _split(query)
    if len(parts) > MAX_QUERY_PARTS:
        raise _refuse(
            f"queries are limited to {MAX_QUERY_PARTS} words and operators", "query_too_complex"
        )
    result = SearchQuery()
    for negated, quoted, text in parts:
        key, colon, value = text.partition(":")
        if not quoted and colon and key.lower() in OPERATORS and not negated:
            _apply_operator(result, key.lower(), value)
            continue
        phrase = _phrase(text)
        if phrase is None:
            continue  # punctuation only: nothing to match
        (result.exclude if negated else result.include).append(phrase)
    total = sum(len(p.terms) for p in (*result.include, *result.exclude))
    if total > MAX_QUERY_TERMS:
        raise _refuse(f"queries are limited to {MAX_QUERY_TERMS} terms", "query_too_complex")
    return result
