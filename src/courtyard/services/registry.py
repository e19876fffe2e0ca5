"""All services, built together from one context (the composition root calls this)."""

from __future__ import annotations

from dataclasses import dataclass

from courtyard.realtime.gateway import Realtime
from courtyard.services.accounts import Accounts
from courtyard.services.audit import Audit
from courtyard.services.channels import Channels
from courtyard.services.context import ServiceContext
from courtyard.services.conversations import Conversations
from courtyard.services.files import Files
from courtyard.services.maintenance import Maintenance
from courtyard.services.messages import Messages
from courtyard.services.presence import Presence
from courtyard.services.reactions import Reactions
from courtyard.services.reading import Reading
from courtyard.services.search import Search
from courtyard.services.sessions import Sessions
from courtyard.services.setup import Setup
from courtyard.services.state import State
from courtyard.services.tokens import Tokens
from courtyard.services.two_factor import TwoFactor


@dataclass(frozen=True, slots=True)
class Services:
    """The use cases, grouped by capability."""

    context: ServiceContext
    sessions: Sessions
    setup: Setup
    accounts: Accounts
    channels: Channels
    conversations: Conversations
    messages: Messages
    reactions: Reactions
    reading: Reading
    presence: Presence
    state: State
    realtime: Realtime
    files: Files
    search: Search
    audit: Audit
    two_factor: TwoFactor
    tokens: Tokens
    maintenance: Maintenance

    @classmethod
    def build(
        cls,
        ctx: ServiceContext,
        realtime: Realtime,
        *,
        files: Files | None = None,
        search: Search | None = None,
    ) -> Services:
        """Wire every service to the shared context (files and search come configured from
        the composition root; without them, defaults with a temporary file store)."""
        files = files or Files.with_defaults(ctx)
        sessions = Sessions(ctx)
        realtime.add_listener(sessions.cache.on_event)
        channels = Channels(ctx)
        return cls(
            context=ctx,
            sessions=sessions,
            setup=Setup(ctx, sessions),
            accounts=Accounts(ctx, sessions),
            channels=channels,
            conversations=Conversations(ctx),
            messages=Messages(ctx, max_files_per_message=files.rules.max_files_per_message),
            reactions=Reactions(ctx),
            reading=Reading(ctx),
            presence=Presence(ctx, realtime),
            state=State(ctx, channels),
            realtime=realtime,
            files=files,
            search=search or Search(ctx),
            audit=Audit(ctx),
            two_factor=TwoFactor(ctx, sessions),
            tokens=Tokens(ctx, sessions),
            maintenance=Maintenance(ctx),
        )
