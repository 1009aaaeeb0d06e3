"""An offline fake of the veo-3.1-extend video generation API, with scripted task lifecycles."""

from mockserver.app import create_app
from mockserver.runtime import Runtime
from mockserver.scenarios import Scenario, ScenarioError
from mockserver.settings import Settings

__all__ = ["Runtime", "Scenario", "ScenarioError", "Settings", "create_app"]
