"""The hooks a plugin may implement. Every hook is documented in docs/plugins.md (tested).

Implement them with ``@courtyard.plugins.hookimpl`` in a module or object, and list it under
``plugins.modules`` in the configuration.
"""

from __future__ import annotations

import pluggy

from courtyard.domain.channels import Channel
from courtyard.domain.messages import Message
from courtyard.domain.users import Actor

PROJECT = "courtyard"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def courtyard_before_message_stored(
    actor: Actor, channel: Channel, text: str, thread_root_id: int | None
) -> str | None:
    """Inspect a new message before it is stored.

    Return a replacement text to rewrite it, None to leave it, or raise
    ``courtyard.domain.errors.Rejected`` to refuse it (the sender gets a 422 with your message).
    Runs inside the send transaction: keep it fast and never do network I/O here.
    """


@hookspec
def courtyard_after_message_stored(actor: Actor, channel: Channel, message: Message) -> None:
    """React to a message that has been committed (bots, notifications, indexing)."""


@hookspec
def courtyard_before_message_edited(
    actor: Actor, channel: Channel, message: Message, new_text: str
) -> str | None:
    """Inspect an edit before it is stored; same contract as ``before_message_stored``."""


@hookspec
def courtyard_after_message_edited(actor: Actor, channel: Channel, message: Message) -> None:
    """React to a committed edit."""
