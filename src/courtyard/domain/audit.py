"""The audit trail: entries, their canonical encoding and the hash chain.

Each entry's ``hash`` is SHA-256 over a canonical encoding of the entry (its id, time, actor,
client, action, target, outcome, details) and the previous entry's hash. Editing, deleting
or reordering any stored entry therefore breaks the chain at that entry, which
``courtyard audit verify`` reports. Pure code: no I/O.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

import msgspec

GENESIS_HASH: Final = "0" * 64
"""The ``prev_hash`` of the first entry."""

CHAIN_VERSION: Final = 1

# No float: JSON Schema cannot tell an integer from a number in a oneOf.
DetailValue = str | int | bool | None | list[str | int]
Details = dict[str, DetailValue]

# Keys that could carry a secret or a message body never enter the log, whatever a caller
# passes; values are cut short so the log cannot be used to store content.
_FORBIDDEN_KEY_PARTS = ("password", "secret", "token", "code", "text", "body", "otp")
_MAX_VALUE_CHARS = 200
_MAX_LIST_ITEMS = 50


class AuditEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One security-relevant event, as stored and as shown to administrators."""

    id: int
    time: datetime
    actor_id: int | None
    actor: str
    ip: str
    user_agent: str
    action: str
    target: str
    outcome: str
    details: Details
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Filters for listing and exporting; None means any."""

    actor_id: int | None = None
    action: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def clean_details(details: Details | None) -> Details:
    """Details safe to store: no secret-looking keys, short values."""
    cleaned: Details = {}
    for key, value in (details or {}).items():
        lowered = key.lower()
        if any(part in lowered for part in _FORBIDDEN_KEY_PARTS):
            continue
        if isinstance(value, str):
            cleaned[key[:64]] = value[:_MAX_VALUE_CHARS]
        elif isinstance(value, list):
            cleaned[key[:64]] = [
                item if isinstance(item, int) else str(item)[:_MAX_VALUE_CHARS]
                for item in value[:_MAX_LIST_ITEMS]
            ]
        else:
            cleaned[key[:64]] = value
    return cleaned


def canonical_details(details: Details) -> str:
    """The stored, hashed form of the details: JSON with sorted keys and no spaces."""
    return json.dumps(details, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def chain_hash(
    *,
    entry_id: int,
    time_micros: int,
    actor_id: int | None,
    actor: str,
    ip: str,
    user_agent: str,
    action: str,
    target: str,
    outcome: str,
    details_json: str,
    prev_hash: str,
) -> str:
    """SHA-256 (hex) of the canonical encoding of one entry and its predecessor's hash."""
    encoded = json.dumps(
        [
            CHAIN_VERSION,
            entry_id,
            time_micros,
            actor_id,
            actor,
            ip,
            user_agent,
            action,
            target,
            outcome,
            details_json,
            prev_hash,
        ],
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(encoded.encode("utf-8", "surrogatepass")).hexdigest()


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def recomputed_hash(entry: AuditEntry) -> str:
    """The hash an entry (as exported or listed) should carry given its fields and prev_hash."""
    return chain_hash(
        entry_id=entry.id,
        time_micros=(entry.time - _EPOCH) // timedelta(microseconds=1),
        actor_id=entry.actor_id,
        actor=entry.actor,
        ip=entry.ip,
        user_agent=entry.user_agent,
        action=entry.action,
        target=entry.target,
        outcome=entry.outcome,
        details_json=canonical_details(entry.details),
        prev_hash=entry.prev_hash,
    )


def exported_entry_problem(
    entry: AuditEntry, previous: AuditEntry | None, *, complete: bool
) -> str:
    """What is wrong with ``entry`` following ``previous`` in an export ('' if nothing).

    Each entry's hash is checked; links only between consecutive ids, since a filtered export
    skips entries. ``complete``: the export is unfiltered, so gaps are missing entries.
    """
    expected_id = previous.id + 1 if previous else 1
    if recomputed_hash(entry) != entry.hash:
        return "the entry's contents do not match its hash"
    if previous is not None and entry.id <= previous.id:
        return "entries are out of order"
    if entry.id == expected_id and entry.prev_hash != (previous.hash if previous else GENESIS_HASH):
        return "prev_hash does not match the previous entry's hash"
    if complete and entry.id != expected_id:
        return f"entry {expected_id} is missing (ids jump to {entry.id})"
    return ""
