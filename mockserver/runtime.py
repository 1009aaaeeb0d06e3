"""Everything one fake server holds, built once from the settings before it answers anything.

Building a `Runtime` loads and compiles the contract, loads and checks every scenario file and
reads the media clips; any mistake raises here (`ContractError`, `ScenarioError`, `ValueError`),
so a broken set-up never starts serving.
"""

from __future__ import annotations

from starlette.requests import Request

from contracts import Contract
from mockserver.clock import Clock
from mockserver.journal import Journal
from mockserver.media import Media
from mockserver.scenarios import Scenario, ScenarioError, load_directories
from mockserver.settings import Settings
from mockserver.store import TaskStore


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.contract = Contract.load(settings.contract)
        self.scenarios: dict[str, Scenario] = load_directories(settings.scenario_directories)
        if not self.scenarios:
            folders = ", ".join(str(d) for d in settings.scenario_directories) or "(none)"
            raise ScenarioError(folders, None, None, "no scenario files (*.yaml) found")
        self.default = self.scenario(settings.default_scenario)
        self.clock = Clock(settings.clock, settings.speed, settings.clock_start)
        self.store = TaskStore(settings.seed)
        self.journal = Journal(settings.journal_size)
        self.media = Media()
        self.public_url = settings.public_url.rstrip("/") if settings.public_url else None

    def scenario(self, name: str) -> Scenario:
        try:
            return self.scenarios[name]
        except KeyError:
            raise ValueError(
                f"no scenario named {name!r}; loaded: {', '.join(sorted(self.scenarios))}"
            ) from None

    def base_url(self, request: Request) -> str:
        """Where result URLs point: the configured public URL, else the host the client used."""
        if self.public_url is not None:
            return self.public_url
        return str(request.base_url).rstrip("/")

    def reset(self) -> None:
        """Forget every task and journal entry and restore the configured default scenario."""
        self.store.clear()
        self.journal.clear()
        self.default = self.scenario(self.settings.default_scenario)
