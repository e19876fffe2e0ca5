"""How parsed searches and documents are written in each database's syntax.

Pure functions, no I/O: FTS5 MATCH expressions and ``tsquery``/``tsvector`` literals from
parsed terms (letters and digits only, so user input never reaches either syntax directly),
the channel scope term, PostgreSQL's word-pair terms for phrases, and the relevance score
SQLite's search uses (see ``repositories.search`` and ADR 0010).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

from courtyard.domain.search_query import Phrase

# Marks a document's channel term. Terms are letters and digits only, so no word or query
# can produce or match it.
SCOPE_MARK = "\u00a7"
# Joins the two terms of a pair term (``pull¶request``); terms never contain it.
PAIR_MARK = "\u00b6"


def _fts5_phrase(phrase: Phrase) -> str:
    rendered = '"' + " ".join(phrase.terms) + '"'
    return rendered + " *" if phrase.prefix else rendered


def _tsquery_phrase(phrase: Phrase) -> str:
    parts = ["'" + term.replace("'", "''").replace("\\", "\\\\") + "'" for term in phrase.terms]
    if phrase.prefix:
        parts[-1] += ":*"
    return "(" + " <-> ".join(parts) + ")"


def _pairable(term: str) -> bool:
    # Terms are letters and digits; the ASCII ones are English (stemmed) and de-accented
    # Latin words and numbers, whose common words make phrases of two common words. Paired
    # scripts (CJK) are indexed as character pairs already; pairs of those would add about
    # two terms per character for queries that are selective without them.
    return term.isascii()


def pair_term(first: str, second: str) -> str:
    """The pair term of two adjacent ASCII terms (PostgreSQL's ``search_pairs``)."""
    return f"{first}{PAIR_MARK}{second}"


def pair_terms(terms: Sequence[str]) -> list[str]:
    """Distinct pair terms of the adjacent ASCII terms, in first-seen order."""
    return list(
        dict.fromkeys(pair_term(a, b) for a, b in pairwise(terms) if _pairable(a) and _pairable(b))
    )


def pairs_tsquery(include: Sequence[Phrase]) -> str | None:
    """A tsquery of every pair term the included phrases need (a phrase ending in a prefix
    needs its last pair as a prefix), or None when they need none.

    A document matching the phrases holds all of these pairs, so requiring them never
    changes the results; it lets the GIN index of pairs find the few documents that hold
    the words next to each other instead of every document that holds them all."""
    needed: dict[str, None] = {}
    for phrase in include:
        last = len(phrase.terms) - 2
        for i, (a, b) in enumerate(pairwise(phrase.terms)):
            if _pairable(a) and _pairable(b):
                prefix = ":*" if phrase.prefix and i == last else ""
                needed[f"'{pair_term(a, b)}'{prefix}"] = None
    return " & ".join(needed) or None


def scope_term(channel_id: int) -> str:
    """The term a document carries for its channel: never a word (``§`` is not a letter)."""
    return f"{SCOPE_MARK}{channel_id}"


def fts5_match(
    include: Sequence[Phrase], exclude: Sequence[Phrase] = (), channel_ids: Sequence[int] = ()
) -> str:
    """An FTS5 MATCH expression: every included phrase, in one of the channels (if given),
    none of the excluded."""
    expression = " AND ".join(_fts5_phrase(p) for p in include)
    if channel_ids:
        scope = " OR ".join(f'"{scope_term(c)}"' for c in sorted(set(channel_ids)))
        expression = f"{expression} AND ({scope})" if expression else f"({scope})"
    if exclude:
        excluded = " OR ".join(_fts5_phrase(p) for p in exclude)
        expression = f"({expression}) NOT ({excluded})" if expression else excluded
    return expression


def tsquery(
    include: Sequence[Phrase], exclude: Sequence[Phrase] = (), channel_ids: Sequence[int] = ()
) -> str:
    """A tsquery literal: every included phrase, in one of the channels (if given), none of
    the excluded."""
    expression = " & ".join(_tsquery_phrase(p) for p in include)
    if channel_ids:
        scope = " | ".join(f"'{scope_term(c)}'" for c in sorted(set(channel_ids)))
        expression = f"{expression} & ({scope})" if expression else f"({scope})"
    if exclude:
        excluded = " | ".join(_tsquery_phrase(p) for p in exclude)
        expression = f"{expression} & !({excluded})" if expression else excluded
    return expression


def rank_documents(
    documents: Sequence[tuple[int, str]], include: Sequence[Phrase]
) -> list[tuple[int, float]]:
    """Documents (id, space-separated terms) best first, ties newest first.

    BM25's term-frequency saturation and length normalisation (k1 = 1.2, b = 0.75) summed over
    the included phrases, with the window's average length; no inverse document frequency,
    since every document here contains every included phrase (as PostgreSQL's ``ts_rank_cd``
    uses none). The channel scope term is not counted in a document's length."""
    if not documents:
        return []
    k1, b = 1.2, 0.75
    # Terms are letters and digits: with every separator doubled, " term " (or " prefix" for
    # a prefix) counts whole-term occurrences, repeated neighbours included, in C.
    needles = [" " + "  ".join(p.terms) + ("" if p.prefix else " ") for p in include]
    padded = [(message_id, " " + body.replace(" ", "  ") + " ") for message_id, body in documents]
    # Terms are separated by single spaces; the scope term, when present, is not counted.
    lengths = [body.count(" ") + (0 if SCOPE_MARK in body else 1) for _, body in documents]
    average = max(1.0, sum(lengths) / len(lengths))
    scored = []
    for (message_id, body), length in zip(padded, lengths, strict=True):
        norm = k1 * (1 - b + b * length / average)
        score = 0.0
        for needle in needles:
            frequency = body.count(needle)
            score += frequency * (k1 + 1) / (frequency + norm)
        scored.append((message_id, score))
    scored.sort(key=lambda pair: (-pair[1], -pair[0]))
    return scored


def tsvector_literal(terms: Sequence[str]) -> str:
    """A tsvector literal with 1-based positions (PostgreSQL merges repeated terms)."""
    return " ".join(
        "'" + term.replace("'", "''").replace("\\", "\\\\") + f"':{position}"
        for position, term in enumerate(terms, start=1)
    )
