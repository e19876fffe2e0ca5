"""What makes a password acceptable: length, not a common password, not trivially guessable.

The common-password list and the strength estimate come from zxcvbn (MIT licence; its
bundled list holds the 30,000 most common passwords from leaked password sets). Nothing
leaves the server: the check is offline.
"""

from __future__ import annotations

from functools import lru_cache

from zxcvbn import zxcvbn
from zxcvbn.frequency_lists import FREQUENCY_LISTS

from courtyard.domain.errors import InvalidInput

MAX_PASSWORD_CHARS = 1024
# zxcvbn refuses more than 72 characters (its cost grows with length); a password that long
# is judged by its first 72, which decide any realistic one.
_STRENGTH_PREFIX = 72


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The bundled list of common and breached passwords (lower case)."""
    return frozenset(word.lower() for word in FREQUENCY_LISTS["passwords"])


def check_password(
    value: str,
    *,
    min_length: int,
    min_strength: int,
    user_inputs: tuple[str, ...] = (),
) -> str:
    """``value`` if it passes every rule, else InvalidInput naming the rule (field password).

    ``min_strength`` is zxcvbn's score (0-4) below which a password is refused; ``user_inputs``
    (username, email, display name) count as guessable words.
    """
    if "\x00" in value:
        raise InvalidInput("password must not contain NUL characters", field="password")
    if len(value) < min_length:
        raise InvalidInput(
            f"password must be at least {min_length} characters",
            field="password",
            code="password_too_short",
        )
    if len(value) > MAX_PASSWORD_CHARS:
        raise InvalidInput(
            "password must be at most 1024 characters", field="password", code="too_long"
        )
    folded = value.lower()
    common = common_passwords()
    if folded in common or folded.replace(" ", "") in common:
        raise InvalidInput(
            "this password is on the list of common or breached passwords; choose another",
            field="password",
            code="password_too_common",
        )
    if min_strength > 0:
        inputs = [item for item in user_inputs if item]
        result = zxcvbn(value[:_STRENGTH_PREFIX], user_inputs=inputs)
        if int(result["score"]) < min_strength:
            hint = result["feedback"].get("warning") or "add more unrelated words"
            raise InvalidInput(
                f"this password is too easy to guess ({hint.rstrip('.')}); "
                "a few unrelated words make a strong one",
                field="password",
                code="password_too_weak",
            )
    return value
