"""Everything one fake server holds, built once from the settings before it answers anything.

Building a `Runtime` loads and compiles the contract, loads and checks every scenario file and
key map and reads the media clips; any mistake raises here (`ContractError`, `ScenarioError`,
`KeyMapError`, `ValueError`), so a broken set-up never starts serving. The run-time controls
(default scenario, pushed scenarios, forced task states) live here too, so the admin API and
the pytest plugin share one implementation.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.requests import Request

from contracts import Contract
from mockserver import conformity, lifecycle
from mockserver.clock import Clock
from mockserver.errors import ApiError
from mockserver.journal import Journal
from mockserver.keymap import key_map_files, load_key_maps
from mockserver.matching import Selector
from mockserver.media import Media
from mockserver.render import Renderer
from mockserver.scenarios import KEYMAP_FILE, Scenario, ScenarioError, check_mixes, load_directories
from mockserver.settings import SHIPPED_SCENARIOS, Settings
from mockserver.store import Task, TaskStore


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.contract = Contract.load(settings.contract)
        directories = settings.scenario_directories
        self.scenarios: dict[str, Scenario] = load_directories(directories)
        if not directories:
            raise ValueError("no scenario folders: --no-shipped-scenarios needs at least one --scenarios DIR")
        if not self.scenarios:
            folders = ", ".join(str(d) for d in directories)
            raise ScenarioError(folders, None, None, "no scenario files (*.yaml or *.yml) found")
        if settings.default_scenario not in self.scenarios:
            raise ValueError(
                f"no scenario named {settings.default_scenario!r}; loaded: {', '.join(sorted(self.scenarios))}"
            )
        try:
            self.accepted_keys = re.compile(settings.api_keys)
        except re.error as exc:
            raise ValueError(f"--api-keys {settings.api_keys!r} is not a regular expression: {exc}") from None
        sources: dict[str, Path] = {}
        keys = load_key_maps(key_map_files(directories, settings.keys), self.scenarios, sources)
        shipped = SHIPPED_SCENARIOS / KEYMAP_FILE
        unusable = sorted({str(sources[key]) for key in keys if sources[key] != shipped and not self.accepted_keys.fullmatch(key)})
        if unusable:
            raise ValueError(
                f"{', '.join(unusable)}: some keys do not match --api-keys {settings.api_keys!r}, so no client could use them"
            )
        self.selector = Selector(self.scenarios, self.scenarios[settings.default_scenario], keys, settings.seed)
        self._loaded = dict(self.scenarios)  # what reset goes back to
        self.clock = Clock(settings.clock, settings.speed, settings.clock_start)
        self.store = TaskStore(settings.seed, settings.task_retention, settings.gc_freeze)
        self.journal = Journal(settings.journal_size)
        self.media = Media()
        self.render = Renderer(self.contract, self.media)
        conformity.check(self.scenarios, self.contract, self.render)
        if settings.public_url is not None and not settings.public_url.startswith(("http://", "https://")):
            raise ValueError(f"the public URL must be an absolute http(s) URL, got {settings.public_url!r}")
        self.public_url = settings.public_url.rstrip("/") if settings.public_url else None
        self.submissions: Counter[tuple[str, str]] = Counter()  # (scenario, key_id) -> submits, bounded
        self.random = random.Random(settings.seed)  # latency samples
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        self.errors: list[BaseException] = []  # unexpected failures, for the pytest plugin

    @property
    def default(self) -> Scenario:
        return self.selector.default

    def base_url(self, request: Request) -> str:
        """Where result URLs point: the configured public URL, else the host the client used."""
        if self.public_url is not None:
            return self.public_url
        return str(request.base_url).rstrip("/")

    async def delay(self, scenario: Scenario, kind: str) -> None:
        latency = scenario.latency.get(kind)
        if latency is not None:
            await self.sleep(latency.sample(self.random))

    # Run-time controls, shared by the admin API and the pytest plugin.

    def add_scenario(self, scenario: Scenario) -> Scenario:
        """Load one more scenario at run time (or replace one of the same name), checked against
        the contract like those read at start-up."""
        conformity.check({scenario.name: scenario}, self.contract, self.render)
        if scenario.mix:
            check_mixes({**self.scenarios, scenario.name: scenario})
        self.scenarios[scenario.name] = scenario
        self.selector.refresh()
        return scenario

    def set_default(self, name: str) -> Scenario:
        self.selector.default = self.selector.named(name)
        return self.selector.default

    def push(self, name: str, count: int = 1) -> None:
        if count < 1:
            raise ApiError(422, f"'count' must be at least 1, got {count}.", param="count")
        self.selector.push(name, count)

    @staticmethod
    def unknown_task(task_id: str, hint: str = "") -> ApiError:
        return ApiError(404, f"No task with id {task_id[:100]!r}. {hint}".rstrip(), code="task_not_found")

    def task(self, task_id: str, hint: str = "") -> Task:
        task = self.store.get(task_id)
        if task is None:
            raise self.unknown_task(task_id, hint)
        return task

    def _live(self, task: Task, action: str) -> lifecycle.State:
        state = lifecycle.task_state(task, self.clock.now(), poll=False)
        if lifecycle.is_terminal(state):
            raise ApiError(
                409, f"Cannot {action} task {task.id}: it is already {state.status}, and terminal is final.", code="task_terminal"
            )
        return state

    def fail_task(self, task_id: str, code: str = "generation_failed", message: str | None = None) -> Task:
        task = self.task(task_id)
        self._live(task, "fail")
        lifecycle.force_failed(task, self.clock.now(), code, message or f"Failed by the admin API with {code}.")
        return task

    def complete_task(self, task_id: str) -> Task:
        task = self.task(task_id)
        self._live(task, "complete")
        lifecycle.force_completed(task, self.clock.now())
        return task

    def stall_task(self, task_id: str) -> Task:
        task = self.task(task_id)
        self._live(task, "stall")
        lifecycle.stall(task, self.clock.now())
        return task

    def resume_task(self, task_id: str) -> Task:
        task = self.task(task_id)
        lifecycle.resume(task, self.clock.now())
        return task

    def task_view(self, task: Task, base_url: str) -> dict[str, Any]:
        """A task as the admin API shows it: how it was chosen, where it stands, and what a poll
        would return now. Looking never counts as a poll."""
        now = self.clock.now()
        state = lifecycle.task_state(task, now, poll=False)
        timeline = task.scenario.timeline
        following = None
        if task.forced is None and task.frozen is None and state.step + 1 < len(timeline):
            following = {"at": timeline[state.step + 1].at, "status": timeline[state.step + 1].status}
        return {
            "id": task.id,
            "scenario": task.scenario.name,
            "mix": task.via,
            "selected_by": task.selected_by,
            "key_id": task.key_id,
            "created": task.created,
            "elapsed": round(lifecycle.age(task, now), 3),
            "polls": task.polls,
            "forced": task.forced is not None,
            "stalled": task.frozen is not None,
            "request": {"model": task.model, "aspect_ratio": task.aspect_ratio, "generate_audio": task.generate_audio},
            "step": state.step,
            "next_step": following,
            "task": self.render.task(task, state, base_url),
        }

    def task_views(self, base_url: str, status: str | None = None, scenario: str | None = None) -> list[dict[str, Any]]:
        views = [self.task_view(task, base_url) for task in self.store]
        return [
            view
            for view in views
            if (status is None or view["task"]["status"] == status) and (scenario is None or view["scenario"] == scenario)
        ]

    def reset(self) -> None:
        """Forget every task, journal entry, counter, run-time choice and scenario added at run time.
        The clock goes back to its
        configured mode and speed but keeps its reading: scenario time never runs backward."""
        self.store = TaskStore(self.settings.seed, self.settings.task_retention, self.settings.gc_freeze)
        self.scenarios.clear()
        self.scenarios.update(self._loaded)
        self.selector.refresh()
        self.journal.clear()
        self.clock.configure(mode=self.settings.clock, speed=self.settings.speed)
        self.selector.reset()
        self.submissions.clear()
        self.random = random.Random(self.settings.seed)
        self.errors.clear()
