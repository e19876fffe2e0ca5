"""Rules for user-supplied text: names, message bodies, emails.

Every check raises :class:`InvalidInput` naming the field, so that the API answers with a
precise 422 and nothing is stored.
"""

from __future__ import annotations

import re
import unicodedata

from courtyard.domain.errors import InvalidInput

# Format characters that reorder or hide text: used to spoof names ("moc.elgoog" tricks,
# invisible duplicates). U+200D (zero-width joiner) stays allowed because emoji need it.
_BIDI_AND_INVISIBLE = frozenset(
    "\u200b\u200c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2060\u2066\u2067\u2068\u2069\ufeff"
)
_ALLOWED_FORMAT = frozenset("\u200d")
USERNAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9._-]{0,30}[a-z0-9])?$")
_EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s.]{1,63}$")


def _reject_nul(value: str, field: str) -> None:
    if "\x00" in value:
        raise InvalidInput(f"{field} must not contain NUL characters", field=field, code="nul")


def clean_name(value: str, *, field: str, max_length: int, allow_empty: bool = False) -> str:
    """Normalise a single-line human-readable name (display name, channel name, topic).

    NFC-normalised and stripped; control, bidi-override and invisible characters are refused.
    """
    _reject_nul(value, field)
    text = unicodedata.normalize("NFC", value).strip()
    if not text and not allow_empty:
        raise InvalidInput(f"{field} must not be empty", field=field, code="empty")
    if len(text) > max_length:
        raise InvalidInput(
            f"{field} must be at most {max_length} characters", field=field, code="too_long"
        )
    for char in text:
        category = unicodedata.category(char)
        if category in ("Cc", "Cs", "Co", "Cn") or char in _BIDI_AND_INVISIBLE:
            raise InvalidInput(
                f"{field} contains a control or invisible character (U+{ord(char):04X})",
                field=field,
                code="forbidden_character",
            )
        if category == "Cf" and char not in _ALLOWED_FORMAT:
            raise InvalidInput(
                f"{field} contains a formatting character (U+{ord(char):04X})",
                field=field,
                code="forbidden_character",
            )
    return text


def clean_username(value: str) -> str:
    """Usernames are the @mention handle: lower-case ASCII letters, digits, '.', '_', '-'."""
    _reject_nul(value, "username")
    name = value.strip().lower()
    if not USERNAME_RE.fullmatch(name):
        raise InvalidInput(
            "username must be 1-32 characters of a-z, 0-9, '.', '_' or '-', "
            "starting and ending with a letter or digit",
            field="username",
            code="invalid_username",
        )
    if name in RESERVED_USERNAMES:
        raise InvalidInput(f"username '{name}' is reserved", field="username", code="reserved")
    return name


RESERVED_USERNAMES = frozenset({"all", "channel", "here", "everyone", "system", "courtyard"})


def clean_email(value: str) -> str:
    """A plausible address (one '@', a dotted domain, no spaces), domain lower-cased."""
    _reject_nul(value, "email")
    email = value.strip()
    if len(email) > 254 or not _EMAIL_RE.fullmatch(email):
        raise InvalidInput("email is not a valid address", field="email", code="invalid_email")
    local, _, domain = email.rpartition("@")
    return f"{local}@{domain.lower()}"


def clean_message_text(value: str, *, max_length: int) -> str:
    """Message bodies: multi-line markdown; no NUL or C0 controls besides tab and newline."""
    _reject_nul(value, "text")
    text = value.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise InvalidInput("text must not be empty", field="text", code="empty")
    if len(text) > max_length:
        raise InvalidInput(
            f"text must be at most {max_length} characters", field="text", code="too_long"
        )
    for char in text:
        if char in "\n\t":
            continue
        if unicodedata.category(char) in ("Cc", "Cs"):
            raise InvalidInput(
                f"text contains a control character (U+{ord(char):04X})",
                field="text",
                code="forbidden_character",
            )
    return text


def clean_password(value: str, *, min_length: int) -> str:
    """Passwords: long enough, not absurdly long, no NUL; never normalised or stripped."""
    _reject_nul(value, "password")
    if len(value) < min_length:
        raise InvalidInput(
            f"password must be at least {min_length} characters",
            field="password",
            code="password_too_short",
        )
    if len(value) > 1024:
        raise InvalidInput(
            "password must be at most 1024 characters", field="password", code="too_long"
        )
    return value
