"""Documentation that must stay true: a test fails when code and docs drift apart."""

from __future__ import annotations

import inspect
from pathlib import Path

from courtyard.plugins import hookspecs
from courtyard.settings import Settings, settings_reference_markdown

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_configuration_reference_is_generated_from_the_settings_model() -> None:
    written = (DOCS / "configuration.md").read_text(encoding="utf-8")
    assert written == settings_reference_markdown(), (
        "docs/configuration.md is stale: run `courtyard config docs > docs/configuration.md`"
    )


def test_every_setting_has_a_description() -> None:
    missing = []
    for name, field in Settings.model_fields.items():
        sub_fields = getattr(field.annotation, "model_fields", None)
        if sub_fields is None:
            if not field.description:
                missing.append(name)
            continue
        missing.extend(f"{name}.{key}" for key, sub in sub_fields.items() if not sub.description)
    assert missing == []


def test_every_plugin_hook_is_documented() -> None:
    text = (DOCS / "plugins.md").read_text(encoding="utf-8")
    hooks = [name for name, obj in inspect.getmembers(hookspecs) if name.startswith("courtyard_")]
    assert hooks, "no hook specs found"
    assert [hook for hook in hooks if f"`{hook}(" not in text] == []


def test_every_event_type_is_documented() -> None:
    from courtyard.domain.events import ALL_EVENT_TYPES, wire_name

    text = (DOCS / "events.md").read_text(encoding="utf-8")
    missing = [wire_name(t) for t in ALL_EVENT_TYPES if f"| `{wire_name(t)}` |" not in text]
    assert missing == []
    for ephemeral in (
        "typing",
        "presence",
        "hello",
        "caught_up",
        "resync_required",
        "pong",
        "error",
    ):
        assert f"| `{ephemeral}` |" in text, ephemeral


def test_every_close_code_is_documented() -> None:
    from courtyard.realtime import closecodes

    text = (DOCS / "events.md").read_text(encoding="utf-8")
    codes = [v for k, v in vars(closecodes).items() if k.isupper() and isinstance(v, int)]
    assert [code for code in codes if f"| {code} |" not in text] == []
