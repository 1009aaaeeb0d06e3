"""Everything one fake server holds, built once from the settings before it answers anything.

Building a `Runtime` loads and compiles the contract, loads and checks every scenario file and
key map, reads the media clips and opens the store; any mistake raises here (`ContractError`,
`ScenarioError`, `KeyMapError`, `ValueError`), so a broken set-up never starts serving. The
run-time controls (default scenario, pushed scenarios, forced task states, the clock, reset)
live here too, so the admin API, the dashboard and the pytest plugin share one implementation.
They are coroutines: with a shared store each is a round trip to it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from starlette.requests import Request

from contracts import Contract
from mockserver import conformity, lifecycle
from mockserver.attempts import WrongTokens
from mockserver.callbacks import Dispatcher
from mockserver.clock import ClockError, ClockReading, Mode
from mockserver.errors import ApiError
from mockserver.journal import Entry, key_id, select
from mockserver.keymap import key_map_files, load_key_maps
from mockserver.matching import Selector
from mockserver.media import Media
from mockserver.metrics import Metrics
from mockserver.render import Renderer
from mockserver.scenarios import KEYMAP_FILE, Scenario, ScenarioError, check_mixes, load_directories
from mockserver.settings import SHIPPED_SCENARIOS, Settings
from mockserver.state import Found, Store, StoreUnavailable, open_store
from mockserver.state.base import Attempt, Delivery, Ending
from mockserver.state.task import Task, gone

if TYPE_CHECKING:
    from mockserver.tracing import Tracing

logger = logging.getLogger("mockserver")
FINISH_PAGE = 500  # ledger entries looked at per store call when counting ended tasks
LOOK_AGAIN = 30.0  # scenario seconds before a task that had not ended when due is looked at again
COUNT_EVERY = 2.0  # real seconds between two counts of ended tasks (a scrape counts too)
SCRAPE_PAGES = 2  # pages a scrape or an overview counts before it answers (the loop counts the rest)


class Addressed(Protocol):
    """A request as the fast path reads it (mockserver.incoming.Incoming): its base URL, a property."""

    @property
    def base_url(self) -> Any: ...


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.wrong_tokens = WrongTokens()  # wrong admin tokens per address: the admin API's and the sign-in form's
        self.contract = Contract.load(settings.contract)
        self.vocabulary = self.contract.shapes.vocabulary
        directories = settings.scenario_directories
        self.scenarios: dict[str, Scenario] = load_directories(directories, self.vocabulary)
        self.media = Media()
        self.render = Renderer(self.contract, self.media)
        self.ids = self.render.ids
        self.left_out = self._leave_out_unplayable()
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
        keys = load_key_maps(key_map_files(directories, settings.keys), {**self.scenarios, **self.left_out}, sources)
        keys = {key: name for key, name in keys.items() if name not in self.left_out}
        shipped = SHIPPED_SCENARIOS / KEYMAP_FILE
        unusable = sorted(
            {str(sources[key]) for key in keys if sources[key] != shipped and not self.accepted_keys.fullmatch(key)}
        )
        if unusable:
            raise ValueError(
                f"{', '.join(unusable)}: some keys do not match --api-keys {settings.api_keys!r}, so no client could use them"
            )
        self.selector = Selector(self.scenarios, keys, self.left_out_reasons)
        self._loaded = dict(self.scenarios)  # what reset goes back to
        conformity.check_answers(self.contract, self.render, self.scenarios[settings.default_scenario])
        conformity.check(self.scenarios, self.contract, self.render, lenient=self.lenient)
        if settings.public_url is not None and not settings.public_url.startswith(("http://", "https://")):
            raise ValueError(f"the public URL must be an absolute http(s) URL, got {settings.public_url!r}")
        self.public_url = settings.public_url.rstrip("/") if settings.public_url else None
        self.errors: list[BaseException] = []  # unexpected failures, for the pytest plugin
        self.state: Store = open_store(settings.store, settings, self.scenarios, self.fingerprint())
        self.state.on_reset = self._forget_added
        self.state.vocabulary = self.vocabulary
        self.state.lists = self.contract.shapes.list is not None
        self.metrics = Metrics() if settings.metrics else None
        self.tracing: Tracing | None = None  # set by the app when traces go out (mockserver.tracing)
        if self.metrics is not None:
            self.state.metered = True
            self.metrics.journal_dropped = self.state.journal_dropped
            if self.state.kind != "memory":
                setattr(self.state, "calls", self.metrics.store_call)  # noqa: B010 - the Redis store times its calls
        self.callbacks = Dispatcher(
            settings, self.contract.shapes.callbacks, self.state, self.render, self.errors, self.metrics
        )
        self._counting: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None  # one count at a time, per loop
        self._counter: asyncio.Task[None] | None = None
        self.random = random.Random(settings.seed)  # latency samples
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        self.unshared: dict[str, Scenario] = {}  # added at run time, not yet registered with the store

    def _leave_out_unplayable(self) -> dict[str, Scenario]:
        """Under a contract of the user's own, the shipped scenarios it cannot play are left out
        (`mockserver scenarios validate --contract` lists them with the reason); the user's own
        scenario files are held to the contract, and refused if they break it."""
        before = dict(self.scenarios)
        self.left_out_reasons, self.lenient = conformity.leave_out(
            self.scenarios, self.contract, self.render, SHIPPED_SCENARIOS
        )
        name = self.settings.default_scenario
        if name in self.left_out_reasons:
            raise ValueError(
                f"the default scenario {name!r} cannot play under {self.contract.path}: {self.left_out_reasons[name]} "
                "(choose another with --scenario)"
            )
        return {name: before[name] for name in self.left_out_reasons}

    def fingerprint(self) -> dict[str, str]:
        """What every replica on one shared store must have in common, as digests: the contract,
        each scenario loaded at start-up, the key map and the settings that change answers."""

        def digest(value: Any) -> str:
            return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]

        settings = self.settings
        parts = {
            "contract": f"{self.contract.title} {self.contract.version} {digest(self.contract.document)}",
            "key map": digest(sorted((key_id(key), name) for key, name in self.selector.keys.items())),
            "settings": digest(
                [settings.api_keys, settings.default_scenario, settings.clock, settings.speed, settings.task_retention]
                + ([] if settings.metrics else ["no metrics"])  # the ledger of ended tasks needs every replica
            ),
        }
        parts.update({f"scenario {name}": scenario.digest for name, scenario in self._loaded.items()})
        return parts

    def base_url(self, request: Request | Addressed) -> str:
        """Where result URLs point: the configured public URL, else the host the client used."""
        if self.public_url is not None:
            return self.public_url
        return str(request.base_url).rstrip("/")

    async def delay(self, scenario: Scenario, kind: str) -> None:
        latency = scenario.latency.get(kind)
        if latency is not None:
            await self.sleep(latency.sample(self.random))

    # Run-time controls, shared by the admin API, the dashboard and the pytest plugin.

    def add_scenario(self, scenario: Scenario) -> Scenario:
        """Load one more scenario at run time (or replace one of the same name), checked against
        the contract like those read at start-up. It lives in this process (reset forgets it)."""
        conformity.check({scenario.name: scenario}, self.contract, self.render)
        if scenario.mix or scenario.sequence:
            check_mixes({**self.scenarios, scenario.name: scenario})
        self.scenarios[scenario.name] = scenario
        self.selector.refresh()
        self.unshared[scenario.name] = scenario
        return scenario

    async def share(self) -> None:
        """Tell the store about the scenarios added at run time (a shared store lets every replica
        play them); done before the store is next asked to choose one."""
        while self.unshared:
            name, scenario = next(iter(self.unshared.items()))
            await self.state.register(scenario)
            if self.unshared.get(name) is scenario:
                del self.unshared[name]

    async def default(self) -> Scenario:
        return await self.state.default()

    async def set_default(self, name: str) -> Scenario:
        scenario = self.selector.named(name)
        await self.share()
        await self.state.set_default(scenario)
        return scenario

    async def push(self, name: str, count: int = 1) -> None:
        if count < 1:
            raise ApiError(422, f"'count' must be at least 1, got {count}.", param="count")
        scenario = self.selector.named(name)
        await self.share()
        await self.state.push(scenario, count)

    async def pushed(self) -> list[tuple[Scenario, int]]:
        return await self.state.pushed()

    async def clear_pushed(self) -> None:
        await self.state.clear_pushed()

    # The clock.

    async def clock(self) -> ClockReading:
        return await self.state.clock_reading()

    async def now(self) -> float:
        return (await self.state.clock_reading()).now

    async def advance(self, seconds: float) -> ClockReading:
        """Move scenario time forward (ClockError for a step back or past the year 9999); the
        callbacks that became due are on their way (`settle_callbacks` waits for them)."""
        reading = await self.state.advance(seconds)
        self.callbacks.wake()
        return reading

    async def configure_clock(self, mode: Mode | None = None, speed: float | None = None) -> ClockReading:
        if mode not in (None, "real", "manual"):
            raise ClockError(f"mode must be 'real' or 'manual', got {mode!r}")
        reading = await self.state.configure_clock(mode, speed)
        self.callbacks.wake()
        return reading

    # Tasks.

    @staticmethod
    def unknown_task(task_id: str, hint: str = "") -> ApiError:
        return ApiError(404, f"No task with id {task_id[:100]!r}. {hint}".rstrip(), code="task_not_found")

    async def change_task(
        self,
        task_id: str,
        action: str,
        change: Callable[[Task, float], object],
        refusal: int = 409,
        *,
        client: bool = False,
    ) -> Found:
        """Change a task (atomically), unless it is terminal (a resume or a delete is fine then) or
        (a client's cancel) its scenario says it cannot be cancelled: then `refusal`, in the
        provider's shape."""

        def live_then_change(task: Task, now: float) -> None:
            state = lifecycle.task_state(task, now, poll=False)
            word = self.render.word(state)
            if lifecycle.is_terminal(state) and action not in ("resume", "delete"):
                raise ApiError(
                    refusal,
                    f"Cannot {action} task {task.id}: it is already {word}, and terminal is final.",
                    code="task_terminal",
                )
            if client and action == "cancel" and not task.scenario.cancellable:
                raise ApiError(
                    refusal,
                    f"Cannot cancel task {task.id}: its scenario ({task.scenario.name}) says its tasks cannot be cancelled.",
                    code="not_cancellable",
                )
            change(task, now)

        found = await self.state.update(task_id, live_then_change)
        if found is None:
            raise self.unknown_task(task_id)
        if found.task.callback_url is not None:
            await self.callbacks.changed(found.task)
        return found

    async def fail_task(self, task_id: str, code: str = "generation_failed", message: str | None = None) -> Found:
        text = message or f"Failed by the admin API with {code}."
        return await self.change_task(task_id, "fail", lambda task, now: lifecycle.force_failed(task, now, code, text))

    async def complete_task(self, task_id: str) -> Found:
        return await self.change_task(task_id, "complete", lifecycle.force_completed)

    async def stall_task(self, task_id: str) -> Found:
        return await self.change_task(task_id, "stall", lifecycle.stall)

    async def resume_task(self, task_id: str) -> Found:
        return await self.change_task(task_id, "resume", lifecycle.resume)

    async def act_on_task(
        self, task_id: str, action: str, code: str = "generation_failed", message: str | None = None
    ) -> Found:
        """One of the task actions by name (the admin API's and the dashboard's buttons)."""
        if action == "fail":
            return await self.fail_task(task_id, code, message)
        changes = {
            "complete": self.complete_task, "stall": self.stall_task, "resume": self.resume_task, "cancel": self.cancel_task,
        }  # fmt: skip
        if action not in changes:
            raise ApiError(
                404,
                f"Unknown task action {action[:40]!r}; use fail, complete, stall or resume, or cancel.",
                code="unknown_route",
            )
        return await changes[action](task_id)

    async def cancel_task(self, task_id: str) -> Found:
        """Cancel a running task, as a client's cancel would (whatever its scenario says)."""
        return await self.change_task(task_id, "cancel", lifecycle.cancel)

    async def task(self, task_id: str) -> Found:
        found = await self.state.poll(task_id, count=False, retained=False)
        if found is None:
            raise self.unknown_task(task_id)
        return found

    def task_view(self, found: Found, base_url: str) -> dict[str, Any]:
        """A task as the admin API shows it: how it was chosen, where it stands, and what a poll
        would return now. Looking never counts as a poll."""
        task, now = found.task, found.now
        state = lifecycle.task_state(task, now, poll=False)
        timeline = task.scenario.timeline
        following = None
        if task.forced is None and task.frozen is None and state.step + 1 < len(timeline):
            step = timeline[state.step + 1]
            following = {"at": step.at, "status": step.word or self.render.words[step.phase], "phase": step.phase}
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
            "request": {
                "model": task.model,
                "aspect_ratio": task.aspect_ratio,
                "generate_audio": task.generate_audio,
                "seconds": task.seconds,
                "size": f"{task.width}x{task.height}",
            },
            "phase": state.phase,
            "deleted": task.deleted,
            "step": state.step,
            "next_step": following,
            "task": self.render.task(task, state, base_url),
        }

    async def task_views(
        self, base_url: str, status: str | None = None, scenario: str | None = None
    ) -> list[dict[str, Any]]:
        tasks, now = await self.state.tasks_now()
        views = [self.task_view(Found(task, now, False), base_url) for task in tasks]
        return [
            view
            for view in views
            if (status is None or view["task"].get(self.contract.shapes.status_name) == status)
            and (scenario is None or view["scenario"] == scenario)
        ]

    # Callbacks.

    async def callback_attempts(self, task_id: str | None = None) -> tuple[list[Attempt], list[Delivery]]:
        """Delivery attempts made, most recent first, and deliveries still to make, soonest first
        (of one task, if given)."""
        return await self.state.attempts(task_id), await self.state.pending(task_id)

    async def redeliver(self, task_id: str, event: str | None = None, url: str | None = None) -> Delivery:
        found = await self.task(task_id)
        return await self.callbacks.redeliver(found.task, found.now, event, url)

    async def settle_callbacks(self, timeout: float = 30.0) -> bool:
        """Wait until every delivery due at the clock's reading has been attempted (a test's
        `advance` then sees what a receiver got); False after `timeout` real seconds."""
        return await self.callbacks.settle(timeout)

    # Tasks that ended (the metrics).

    async def count_finished(self, pages: int | None = None) -> None:
        """Count the tasks that ended since the last count: those in the store's ledger due by now
        (their lifecycle's end, or a change), whose state is terminal (or that are forgotten: past
        the retention, or their scenario made them disappear). Each is taken out of the ledger once,
        whichever replica asks, so a task is counted once across replicas. Called every
        `COUNT_EVERY` seconds (every page due) and before the metrics are read (at most `pages`
        pages, so a scrape never waits for a backlog: the loop takes the rest). One count runs at
        a time in a process."""
        metrics = self.metrics
        if metrics is None:
            return
        loop = asyncio.get_running_loop()
        if self._counting is None or self._counting[0] is not loop:
            self._counting = (loop, asyncio.Lock())
        retention = self.settings.task_retention
        async with self._counting[1]:
            while pages is None or pages > 0:
                if pages is not None:
                    pages -= 1
                found, held, now = await self.state.ending(FINISH_PAGE)
                done: list[Ending] = []
                later: list[tuple[Ending, float]] = []
                for ending in found:
                    status = "expired" if ending.task is None else _ended(ending.task, now, retention)
                    if status is None:
                        later.append((ending, now + LOOK_AGAIN))
                    else:
                        ending.status = status
                        done.append(ending)
                taken = await self.state.ended(done, later) if found else []
                for ending in taken:
                    metrics.task_finished(
                        ending.scenario, ending.status, None if ending.task is None else ending.task.polls
                    )
                    if self.tracing is not None and ending.task is not None and ending.status != "expired":
                        # its lifecycle span, once across replicas (the `otel` extra, docs/tracing.md)
                        self.tracing.task_finished(ending.task, lifecycle.task_state(ending.task, now, poll=False), now)
                metrics.live = max(held - len(taken), 0)
                if len(found) < FINISH_PAGE:
                    return

    def start_counting(self) -> None:
        """Count ended tasks every `COUNT_EVERY` real seconds in this event loop (with the metrics on)."""
        if self.metrics is not None and (self._counter is None or self._counter.done()):
            self._counter = asyncio.get_running_loop().create_task(self._count_often(), name="mockserver-metrics")

    async def stop_counting(self) -> None:
        if self._counter is not None:
            self._counter.cancel()
            await asyncio.gather(self._counter, return_exceptions=True)
            self._counter = None

    async def _count_often(self) -> None:
        while True:
            await asyncio.sleep(COUNT_EVERY)
            try:
                await self.count_finished()
            except StoreUnavailable:
                pass  # counted once the store is back
            except Exception as exc:
                self.errors.append(exc)
                logger.exception("metrics: counting the tasks that ended failed")

    # The journal.

    async def requests(
        self,
        method: str | None = None,
        path: str | None = None,
        task_id: str | None = None,
        status: int | None = None,
        direction: str | None = None,
    ) -> list[Entry]:
        """Journal entries matching every filter given, most recent first (`path` may end in `*`;
        `direction`: `incoming` or `outgoing`, the callbacks the fake sent)."""
        return select(await self.state.journal_entries(), method, path, task_id, status, direction)

    async def clear_journal(self) -> None:
        await self.state.clear_journal()

    async def reset(self) -> None:
        """Forget every task, journal entry, counter, run-time choice and scenario added at run time.
        The clock goes back to its configured mode and speed but keeps its reading: scenario time
        never runs backward."""
        await self.state.reset()
        self._forget_added()
        self.random = random.Random(self.settings.seed)
        self.errors.clear()

    def _forget_added(self) -> None:
        """Back to the scenarios loaded at start-up (also when another replica reset the store)."""
        self.unshared.clear()
        self.scenarios.clear()
        self.scenarios.update(self._loaded)
        self.selector.refresh()


def _ended(task: Task, now: float, retention: float) -> str | None:
    """How a task ended by `now`: its terminal phase, `expired` if it is forgotten without one, or
    None while it runs (a held step waiting for polls, stalled by the admin API)."""
    state = lifecycle.task_state(task, now, poll=False)
    if lifecycle.is_terminal(state):
        return state.phase
    return "expired" if gone(task, now, retention) else None
