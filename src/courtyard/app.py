"""The composition root: the one place that turns Settings into a running application."""

from __future__ import annotations

import logging
from datetime import timedelta

from litestar import Litestar

from courtyard.api.asgi import build_asgi_app
from courtyard.api.deps import WebConfig
from courtyard.auth.passwords import Argon2Parameters, PasswordHashing
from courtyard.logs import configure_logging
from courtyard.plugins.manager import build_plugin_manager
from courtyard.services.context import Policy, ServiceContext
from courtyard.services.registry import Services
from courtyard.settings import Settings, load_settings
from courtyard.storage.engine import Database
from courtyard.storage.unit_of_work import Storage

logger = logging.getLogger(__name__)


def policy_from(settings: Settings) -> Policy:
    """The service-level rules expressed by the settings."""
    return Policy(
        max_message_chars=settings.messaging.max_message_chars,
        max_group_members=settings.messaging.max_group_members,
        password_min_length=settings.accounts.password_min_length,
        session_lifetime=timedelta(hours=settings.accounts.session_lifetime_hours),
        invite_lifetime=timedelta(hours=settings.accounts.invite_lifetime_hours),
        setup_token_lifetime=timedelta(hours=settings.accounts.setup_token_lifetime_hours),
        keep_deleted_content=settings.messaging.keep_deleted_content,
        max_page_size=settings.messaging.max_page_size,
        max_reaction_kinds=settings.messaging.max_reaction_kinds,
    )


def build_services(settings: Settings, *, plugin_objects: tuple[object, ...] = ()) -> Services:
    """Database, storage, password hashing, plugins and every service."""
    database = Database(
        settings.database_url(), pool_size=settings.database.pool_size, echo=settings.database.echo
    )
    passwords = PasswordHashing(
        Argon2Parameters(
            time_cost=settings.accounts.argon2_time_cost,
            memory_cost_kib=settings.accounts.argon2_memory_kib,
            parallelism=settings.accounts.argon2_parallelism,
        )
    )
    plugins = build_plugin_manager(settings.plugins.modules, plugin_objects)
    context = ServiceContext(
        storage=Storage(database),
        passwords=passwords,
        plugins=plugins,
        policy=policy_from(settings),
    )
    return Services.build(context)


def create_app(settings: Settings | None = None, *, services: Services | None = None) -> Litestar:
    """The ASGI application for ``settings`` (read from the environment when omitted)."""
    settings = settings or load_settings()
    configure_logging(settings.logging.level, settings.logging.format)
    services = services or build_services(settings)
    public_url = settings.server.public_url()
    web = WebConfig(
        secure_cookies=public_url.startswith("https://"),
        session_max_age=settings.accounts.session_lifetime_hours * 3600,
    )
    return build_asgi_app(
        services,
        web,
        max_body_bytes=settings.server.max_request_body_bytes,
        api_docs=settings.server.api_docs,
        on_shutdown=[services.context.storage.database.dispose],
    )
