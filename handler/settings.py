"""Reading a config dataclass out of model-config.yaml's ``handler`` section."""

from __future__ import annotations

from dataclasses import fields
from typing import Any


def own_settings(config_class: type, settings: dict[str, Any]) -> dict[str, Any]:
    """The entries of ``settings`` that name fields of the dataclass ``config_class``; the
    section holds the keys of several configs, and each takes only its own."""
    names = {f.name for f in fields(config_class)}
    return {k: v for k, v in settings.items() if k in names}
