"""The store's interface and the values it passes: see `mockserver.state`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from mockserver.clock import ClockReading, Mode
from mockserver.journal import Entry
from mockserver.scenarios import Scenario
from mockserver.state.task import Task


class StoreUnavailable(Exception):
    """The shared store cannot be reached (or answered too slowly). The message names the store
    without its password."""


@dataclass(slots=True)  # not frozen: built on every request, and frozen costs a setattr per field
class Submission:
    """A valid submission, and what the request alone says about its scenario."""

    key_id: str
    model: str
    aspect_ratio: str
    generate_audio: bool
    header: Scenario | None = None  # named by X-Mock-Scenario: wins over everything
    fallback: Scenario | None = None  # from the key map or a match rule: used when nothing is pushed
    fallback_by: str = "default"  # "key" or "rule"
    seconds: float = 7.0  # the clip the request chose
    width: int = 1280
    height: int = 720
    request: dict[str, Any] | None = None  # kept on the task when the contract's answers echo it
    ids: Any = None  # an `ids.IdMaker` for task ids shaped like the contract's (None: today's)
    callback_url: str | None = None  # where the client asked for callbacks (when the contract documents them)
    callback_events: frozenset[str] | None = None  # the phases it asked them for (None: the contract's)
    trace: str | None = None  # the submit's W3C traceparent, when tracing is on (mockserver.tracing)


@dataclass(slots=True)  # not frozen: built on every request, and frozen costs a setattr per field
class Submitted:
    scenario: Scenario
    selected_by: str  # header, pushed, key, rule or default
    via: str | None  # the mix the scenario was drawn from
    count: int  # this key's submissions of this scenario since the last reset, this one included
    task: Task | None  # None when the scripted answer creates no task
    now: float


@dataclass(slots=True)  # not frozen: built on every request, and frozen costs a setattr per field
class Found:
    task: Task
    now: float
    gone: bool  # its scenario made it disappear, or it is past the retention: a client gets 404
    since: float = -1.0  # a counted poll, with the store metered: real seconds since the task's last one (-1: none)


@dataclass(slots=True)
class Ending:
    """A task whose lifecycle may have ended by now, not yet counted as finished by any replica."""

    member: str  # its entry in the store's ledger of tasks not yet counted
    scenario: str
    due: float  # scenario time at which it was due to be looked at
    task: Task | None  # None: its facts are gone (past the retention)
    status: str = ""  # what the counter decided: the terminal phase, or "expired"
    due_text: str = ""  # `due` exactly as a shared store wrote it (to make it due again only if unchanged)


Change = Callable[[Task, float], None]


@dataclass(slots=True)
class Delivery:
    """A callback to deliver: one event of one task, its next attempt due at scenario time `due`.
    Copies of a delivery (a duplicate) share its `webhook_id`; so do all its attempts."""

    id: str
    task_id: str
    event: str  # the phase it tells of: running, succeeded, failed, cancelled...
    webhook_id: str
    url: str
    due: float  # scenario time of the next attempt
    at: float  # scenario time of the state its body shows
    attempt: int = 1  # the next attempt's number
    copy: int = 1  # which copy, for a scripted duplicate
    fault: str | None = None  # "lost" or "bad_signature", as the task's scenario scripts
    redelivery: bool = False  # asked for through the admin API
    base: str = ""  # where result URLs in its body point (the base URL the task was submitted at)
    trace: str | None = None  # the submit's W3C traceparent (its task's): each attempt continues that trace


@dataclass(slots=True)
class Attempt:
    """One delivery attempt, as `GET /__admin/callbacks` shows it."""

    task_id: str
    event: str
    attempt: int
    time: float  # scenario time
    wall_time: float
    webhook_id: str
    url: str  # credentials in it replaced
    outcome: str  # delivered, retrying, failed, refused, lost
    status: int | None = None  # the receiver's
    error: str | None = None
    duration_ms: float = 0.0
    copy: int = 1

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


class Store(Protocol):
    kind: str
    on_reset: Callable[[], None] | None  # called when another replica resets a shared store
    vocabulary: Any  # the contract's status words (a `contracts._vocabulary.Vocabulary`), for scenarios it reads
    lists: bool  # whether the contract lists tasks: then each key's newest tasks are indexed
    metered: bool  # whether the metrics are on: polls keep their real time, new tasks enter the ledger

    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def status(self) -> dict[str, Any]: ...

    def estimate_now(self) -> float:
        """Scenario time now, as this process last knew it (no round trip; for journal stamps)."""
        ...

    async def clock_reading(self) -> ClockReading: ...
    async def advance(self, seconds: float) -> ClockReading: ...
    async def configure_clock(self, mode: Mode | None, speed: float | None) -> ClockReading: ...

    async def submit(self, submission: Submission) -> Submitted:
        """Choose the scenario (header, else pushed, else fallback, else default; a mix draws a
        member), count the submission for (scenario, key), and create the task when the answer
        for that count creates one: all at once."""
        ...

    async def poll(self, task_id: str, *, count: bool, retained: bool = True) -> Found | None:
        """The task, counting a client poll (`count`) unless it is gone; None if unknown."""
        ...

    async def update(self, task_id: str, change: Change) -> Found | None:
        """Apply `change(task, now)` (which may raise) to the task, atomically."""
        ...

    async def tasks_now(self) -> tuple[list[Task], float]:
        """Every task not past its retention, in the order they were created, and the clock's reading."""
        ...

    async def newest_tasks(self, limit: int) -> tuple[list[Task], int, float]:
        """Up to `limit` of the newest tasks not past their retention, newest first; how many tasks
        the store holds; the clock's reading. Cheap with any number of tasks (the dashboard)."""
        ...

    async def tasks_of(self, key_id: str, limit: int) -> tuple[list[Task], float]:
        """Up to `limit` of the newest tasks of one API key (by its id) not past their retention,
        newest first (a client's list operation), and the clock's reading."""
        ...

    async def counts(self) -> dict[str, int]: ...

    # Tasks that ended, counted once (facts like polls: one replica claims each).

    async def ending(self, limit: int) -> tuple[list[Ending], int, float]:
        """Up to `limit` tasks of the ledger due to be looked at by the clock's reading (their
        lifecycle's end, a change, a look again); how many tasks the ledger holds (not counted
        yet); the reading."""
        ...

    async def ended(self, done: list[Ending], later: list[tuple[Ending, float]]) -> list[Ending]:
        """Take `done` out of the ledger, each once whichever replica asks: those this call took
        (count these); look at `later` again at those scenario times (unless changed meanwhile)."""
        ...

    def journal_dropped(self) -> int:
        """Journal entries this process recorded that its bound pushed out (or that were lost)."""
        ...

    # Callbacks (facts like polls: due deliveries are claimed by one replica, their attempts kept).

    async def schedule(self, task_id: str, deliveries: list[Delivery], *, replan: bool = False) -> None:
        """Add deliveries; with `replan`, first drop the task's deliveries not yet attempted."""
        ...

    async def claim(self, limit: int, lease: float) -> tuple[list[Delivery], float, float | None]:
        """Up to `limit` deliveries due now, leased to this process for `lease` real seconds (a
        shared store gives a delivery back to the others when its lease ends unsettled: the
        process died); the clock's reading; when the next one is due (scenario time), or None."""
        ...

    async def settle(self, delivery: Delivery, attempt: Attempt, retry_at: float | None) -> None:
        """Record an attempt; due again at `retry_at`, or done."""
        ...

    async def attempts(self, task_id: str | None = None, limit: int | None = None) -> list[Attempt]:
        """Delivery attempts, most recent first (of one task, if given)."""
        ...

    async def pending(self, task_id: str | None = None) -> list[Delivery]:
        """Deliveries not done yet, soonest first (of one task, if given)."""
        ...

    async def started(self, task_id: str) -> dict[str, str]:
        """The events of a task whose delivery has been attempted, each with its webhook id."""
        ...

    async def register(self, scenario: Scenario) -> None:
        """Make a scenario added at run time playable by name (until the next reset)."""
        ...

    async def push(self, scenario: Scenario, count: int) -> None: ...
    async def pushed(self) -> list[tuple[Scenario, int]]: ...
    async def clear_pushed(self) -> None: ...
    async def set_default(self, scenario: Scenario) -> None: ...
    async def default(self) -> Scenario: ...

    def record(self, *fields: Any) -> None:
        """Add a journal entry (`Entry` fields after `id`), credentials already replaced."""
        ...

    def sent(self) -> Awaitable[None] | None:
        """What an answer must wait for so as not to overtake its journal entry (None: nothing)."""
        ...

    async def flush(self) -> None:
        """Wait until every entry recorded so far can be read by every replica."""
        ...

    async def journal_entries(self, limit: int | None = None) -> list[Entry]:
        """The journal, most recent first (the newest `limit` entries only, if given)."""
        ...

    async def clear_journal(self) -> None: ...
    async def reset(self) -> None: ...
