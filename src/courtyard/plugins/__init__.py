"""Extension points: pluggy hook specifications and the plugin manager."""

from courtyard.plugins.hookspecs import hookimpl

__all__ = ["hookimpl"]
