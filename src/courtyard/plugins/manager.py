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
    """A manager with Courtyard's hook specs and the given plugin modules/objects registered.

    Hooks run in the order the plugins are given: the modules, then the objects.
    """
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    plugins: list[tuple[Any, str | None]] = [
        (importlib.import_module(name), name) for name in modules
    ]
    plugins.extend((plugin, None) for plugin in objects)
    # pluggy calls the most recently registered plugin first: register backwards so that the
    # configured order is the calling order (tryfirst/trylast still take precedence).
    for plugin, name in reversed(plugins):
        manager.register(plugin, name=name)
    for _, name in plugins:
        if name is not None:
            logger.info("plugin loaded: %s", name)
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
    """Call an 'after' hook plugin by plugin, in order.

    A failing plugin is logged and skipped: it never breaks a committed change, and never
    keeps the plugins after it from being told.
    """
    for impl in reversed(hook.get_hookimpls()):
        try:
            impl.function(**{name: kwargs[name] for name in impl.argnames})
        except Exception:
            logger.exception(
                "plugin %s failed in hook %s", impl.plugin_name, getattr(hook, "name", hook)
            )
