"""An offline fake of the veo-3.1-extend video generation API, with scripted task lifecycles.

The names below are imported on first use, so that the command's help (`mockserver --help`,
`mockserver serve --help`...) and the light modules do not pull in the whole server."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mockserver.app import create_app
    from mockserver.runtime import Runtime
    from mockserver.scenarios import Scenario, ScenarioError
    from mockserver.settings import Settings

__all__ = ["Runtime", "Scenario", "ScenarioError", "Settings", "create_app"]
_WHERE = {
    "create_app": "mockserver.app",
    "Runtime": "mockserver.runtime",
    "Scenario": "mockserver.scenarios",
    "ScenarioError": "mockserver.scenarios",
    "Settings": "mockserver.settings",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mockserver' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
