"""Building the plugin manager and calling hooks with Courtyard's conventions."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable
from typing import Any

import pluggy

from courtyard.plugins import hookspecs

logger = logging.getLogger(__name__)


def build_plugin_manager(
    modules: Iterable[str] = (), objects: Iterable[Any] = ()
) -> pluggy.PluginManager:
    """A manager with Courtyard's hook specs and the given plugin modules/objects registered."""
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    for name in modules:
        module = importlib.import_module(name)
        manager.register(module, name=name)
        logger.info("plugin loaded: %s", name)
    for plugin in objects:
        manager.register(plugin)
    return manager


def chain_text_hook(hook: Any, text_argument: str, **kwargs: Any) -> str:
    """Call a 'before' hook plugin by plugin, each seeing the previous one's rewrite.

    ``text_argument`` names the parameter that carries the text (``text`` or ``new_text``).
    Exceptions (e.g. ``Rejected``) propagate to the caller and abort the change.
    """
    text = str(kwargs.pop(text_argument))
    for impl in reversed(hook.get_hookimpls()):
        arguments = {name: kwargs[name] for name in impl.argnames if name != text_argument}
        if text_argument in impl.argnames:
            arguments[text_argument] = text
        result = impl.function(**arguments)
        if result is not None:
            text = str(result)
    return text


def call_after_hook(hook: Any, **kwargs: Any) -> None:
    """Call an 'after' hook; a failing plugin is logged, never breaks a committed change."""
    try:
        hook(**kwargs)
    except Exception:
        logger.exception("plugin hook %s failed", getattr(hook, "name", hook))
