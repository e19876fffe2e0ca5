"""Text analysis for search: the one tokeniser both databases index and query with.

Courtyard does not rely on a database's own tokeniser, so SQLite and PostgreSQL find exactly
the same messages: every document and every query is cut into *terms* here, and the
databases only match whole terms (SQLite FTS5 with its ``ascii`` tokenizer over
space-separated terms; PostgreSQL with a ``tsvector`` written term by term).

- Words in alphabetic scripts are NFKC-normalised, case-folded, stripped of Latin diacritics
  and, when plain ASCII letters, reduced to their English stem (Snowball/Porter2):
  ``deploying`` and ``deployed`` are both ``deploy``.
- Scripts written without spaces (Chinese, Japanese, Korean, Thai, Lao, Khmer, Myanmar) are
  cut into overlapping character pairs (bigrams) followed by the run's last character alone:
  ``数据安全`` is ``数据 据安 安全 全``. A query of two or more such characters is the phrase of
  its bigrams; a single character is a prefix (``安*`` matches every bigram starting with it
  and the closing single character), so any substring is found, with no dictionary.

Each term keeps the span of the original text it came from, for highlighting.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import Stemmer

# Scripts without spaces between words: indexed as character bigrams.
_PAIRED = (
    "\u0e00-\u0eff"  # Thai, Lao
    "\u1000-\u109f"  # Myanmar
    "\u1100-\u11ff"  # Hangul Jamo
    "\u1780-\u17ff"  # Khmer
    "\u3040-\u30ff"  # Hiragana, Katakana
    "\u3130-\u318f"  # Hangul compatibility Jamo
    "\u31f0-\u31ff"  # Katakana extensions
    "\u3400-\u4dbf"  # CJK extension A
    "\u4e00-\u9fff"  # CJK unified ideographs
    "\uac00-\ud7af"  # Hangul syllables
    "\uf900-\ufaff"  # CJK compatibility ideographs
    "\uff66-\uff9f"  # half-width Katakana
    "\U00020000-\U0002fa1f"  # CJK extensions B-F, compatibility supplement
)
_TOKEN_RE = re.compile(f"([{_PAIRED}]+)|([^\\W_{_PAIRED}]+)")
_WORD_RE = re.compile(r"[^\W_]+")

MAX_TERM_CHARS = 64
# PostgreSQL keeps term positions up to 16,383; both databases index the same prefix.
MAX_TERMS = 16_000

_stemmer = Stemmer.Stemmer("english")


@dataclass(frozen=True, slots=True)
class Token:
    """One indexed term and the span ``[start, end)`` of the original text it came from."""

    term: str
    start: int
    end: int


@lru_cache(maxsize=65_536)
def normalise_word(word: str) -> tuple[str, ...]:
    """The terms of one word: folded, de-accented when that leaves ASCII, stemmed if English."""
    folded = unicodedata.normalize("NFKC", word).casefold()
    terms = []
    for part in _WORD_RE.findall(folded):
        plain = "".join(
            c for c in unicodedata.normalize("NFKD", part) if not unicodedata.combining(c)
        )
        if plain.isascii():
            part = plain
        if part.isascii() and part.isalpha():
            part = _stemmer.stemWord(part)
        terms.append(part[:MAX_TERM_CHARS])
    return tuple(terms)


def _paired_char(char: str) -> str:
    return unicodedata.normalize("NFKC", char)


def tokenize(text: str, *, limit: int = MAX_TERMS) -> list[Token]:
    """Every term of ``text`` in order, at most ``limit`` of them."""
    tokens: list[Token] = []
    for match in _TOKEN_RE.finditer(text):
        start = match.start()
        if match.group(1):
            run = match.group(1)
            chars = [_paired_char(c) for c in run]
            for i in range(len(chars) - 1):
                tokens.append(Token(chars[i] + chars[i + 1], start + i, start + i + 2))
            tokens.append(Token(chars[-1], start + len(run) - 1, start + len(run)))
        else:
            for term in normalise_word(match.group(2)):
                tokens.append(Token(term, start, match.end()))
        if len(tokens) >= limit:
            return tokens[:limit]
    return tokens


def query_terms(chunk: str) -> tuple[tuple[str, ...], bool]:
    """The terms a query word or phrase must match in order, and whether the last is a prefix.

    A run of paired-script characters is known to end only where the chunk continues with
    another word; at the chunk's end the document may go on, so the closing single character
    is left out (or, for a single character, becomes a prefix).
    """
    terms: list[str] = []
    prefix = False
    matches = list(_TOKEN_RE.finditer(chunk))
    for index, match in enumerate(matches):
        last = index == len(matches) - 1
        if match.group(1):
            chars = [_paired_char(c) for c in match.group(1)]
            terms.extend(chars[i] + chars[i + 1] for i in range(len(chars) - 1))
            if not last:
                terms.append(chars[-1])
            elif len(chars) == 1:
                terms.append(chars[0])
                prefix = True
        else:
            terms.extend(normalise_word(match.group(2)))
    return tuple(terms), prefix


def prefix_terms(word: str) -> tuple[str, ...]:
    """Terms of a ``word*`` query: folded like documents but not stemmed (a prefix of a stem
    would miss forms the stemmer changes)."""
    folded = unicodedata.normalize("NFKC", word).casefold()
    terms = []
    for part in _WORD_RE.findall(folded):
        plain = "".join(
            c for c in unicodedata.normalize("NFKD", part) if not unicodedata.combining(c)
        )
        terms.append((plain if plain.isascii() else part)[:MAX_TERM_CHARS])
    return tuple(terms)


_LINK_RE = re.compile(r"(?i)\b(?:https?://|www\.)[^\s<>]+")


def has_link(text: str) -> bool:
    """Whether a message contains a web link (for ``has:link``)."""
    return _LINK_RE.search(text) is not None
