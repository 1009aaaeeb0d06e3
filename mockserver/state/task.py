"""What the fake keeps of one task: the facts its lifecycle needs, never a computed state.

A task keeps its scenario, when it was created, the request fields that shape its result, how
many polls it has had and how many polls have seen each held step, and what the admin API
forced on it. `mockserver.lifecycle.task_state` computes its state from these on every read, so
two replicas reading the same facts at the same clock reading cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mockserver.scenarios import Scenario


@dataclass(slots=True, eq=False)
class Task:
    id: str
    created: int
    created_at: float
    scenario: Scenario
    model: str
    aspect_ratio: str
    generate_audio: bool
    key_id: str
    seconds: float = 7.0  # the clip the task makes: its duration and size, as the request chose
    width: int = 1280
    height: int = 720
    request: dict[str, Any] | None = None  # the request body, kept when the contract's answers echo it
    callback_url: str | None = None  # where the client asked for its callbacks (the contract documents them)
    callback_events: frozenset[str] | None = None  # the phases it asked callbacks for (None: the contract's)
    trace: str | None = (
        None  # the submit's W3C traceparent, kept when tracing is on: its lifecycle and callbacks join it
    )
    via: str | None = None  # the mix the scenario was drawn from, if any
    selected_by: str = "default"
    polls: int = 0
    reads: dict[int, int] | None = None  # polls per held step; made on the first one
    forced: Any = None  # a lifecycle State the admin API fixed for good
    completed_at: float | None = None  # elapsed seconds at a forced completion
    frozen: float | None = None  # elapsed seconds at which the admin API stalled it
    version: int = 0  # bumped by every change (shared stores compare it before writing)
    deleted: bool = False  # a client deleted it: gone from then on
    counted: bool = False  # its end is counted in the metrics (the memory store's claim)
    polled_at: float = 0.0  # real time (monotonic) of its last counted poll, with the memory store metered


def age(task: Task, now: float) -> float:
    """Scenario seconds the task has lived, not counting time it spent stalled by the admin API."""
    return task.frozen if task.frozen is not None else now - task.created_at


def lifetime(task: Task) -> float:
    """Scenario seconds after its creation at which the task's lifecycle ends (0 if it never does)."""
    ends = task.scenario.ends_at or 0.0
    if task.forced is not None or task.frozen is not None:
        ends = max(ends, task.completed_at or 0.0, task.frozen or 0.0)
    return ends


def expired(task: Task, now: float, retention: float) -> bool:
    """Whether the task is past its retention: `retention` scenario seconds after its lifecycle ends."""
    return now - task.created_at - lifetime(task) > retention


def gone(task: Task, now: float, retention: float | None) -> bool:
    """Whether a client asking for the task gets 404: its scenario made it disappear, or (when
    `retention` is given) it is past the retention, evicted or not yet."""
    if task.deleted:
        return True
    limit = task.scenario.disappears_after
    if limit is not None and age(task, now) >= limit:
        return True
    return retention is not None and expired(task, now, retention)


def due_to_end(scenario: Scenario, retention: float) -> float:
    """Scenario seconds after its creation by which a task of this scenario may have ended, left
    alone: its lifecycle's end or when it disappears, whichever comes first; else its retention."""
    ends = [at for at in (scenario.ends_at, scenario.disappears_after) if at is not None]
    return min(ends) if ends else retention
