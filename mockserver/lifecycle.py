"""A task's state, computed from (scenario, seconds since submit, polls seen): nothing is pushed.

`observe()` is the one entry point. Between two steps progress rises linearly when the earlier
step ramps (the default while `processing`). A step with `polls: N` is held until N polls have
returned it, whatever the clock says, which is how "completed before the results are attached,
filled in on the next poll" is expressed. Because the clock only moves forward, poll counts only
grow and the timeline was checked at load time, a task's status never moves backward, its
progress never falls and a terminal state is final.

The admin API can step in (`task_state` honours it): force a terminal state (`force_failed`,
`force_completed`, refused once the task is terminal) or stop the task's time (`stall`) and let
it run on from where it stood (`resume`).
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from typing import Any

from mockserver.scenarios import TERMINAL, UNSET, Scenario
from mockserver.state.task import Task, age


@dataclass(frozen=True, slots=True)
class State:
    step: int  # index into the timeline; -1 before the first step
    phase: str  # queued, running, succeeded, failed or cancelled
    progress: int
    results: Any = None  # as the step says: UNSET (the fake's video), None or a list
    error: dict[str, str] | None = None
    word: str | None = None  # the contract's word the step scripted, if not the phase's own


BEFORE_FIRST_STEP = State(-1, "queued", 0)


def observe(scenario: Scenario, elapsed: float, reads: dict[int, int] | None, *, poll: bool = True) -> State:
    """The state at `elapsed` seconds after submit.

    `reads` is the task's count, per held step, of the polls that returned it. A poll
    (`poll=True`) adds to it; a peek (admin views, downloads) leaves it as it is.
    """
    timeline = scenario.timeline
    index = bisect_right(scenario.times, elapsed) - 1
    if index < 0:
        return BEFORE_FIRST_STEP
    counts = reads or {}
    for held in scenario.held_steps:
        if held > index:
            break
        if counts.get(held, 0) < timeline[held].polls:
            index = held
            break
    step = timeline[index]
    if poll and step.polls:
        if reads is None:
            raise ValueError("counting a poll needs the task's reads dict")
        reads[index] = reads.get(index, 0) + 1
    progress = step.progress
    if step.ramp and index + 1 < len(timeline):
        following = timeline[index + 1]
        span = following.at - step.at
        if span > 0 and following.progress > progress:
            fraction = min(elapsed - step.at, span) / span
            progress += int((following.progress - progress) * fraction)
    return State(index, step.phase, progress, step.results, step.error, step.word)


FORCED_STEP = -2


def task_state(task: Task, now: float, *, poll: bool = True) -> State:
    """The task's state now: forced by the admin API, or as its scenario plays."""
    if task.forced is not None:
        return task.forced
    if poll and task.scenario.held_steps and task.reads is None:
        task.reads = {}
    return observe(task.scenario, age(task, now), task.reads, poll=poll)


def is_terminal(state: State) -> bool:
    return state.phase in TERMINAL


def result_expires_at(task: Task) -> float | None:
    """Scenario time after which the task's own video URL stops serving."""
    completed = task.completed_at if task.completed_at is not None else task.scenario.completes_at
    if completed is None:
        return None
    return task.created_at + completed + task.scenario.result_url_ttl


def force_failed(task: Task, now: float, code: str, message: str) -> State:
    current = task_state(task, now, poll=False)
    task.completed_at = age(task, now)
    task.forced = State(
        FORCED_STEP, "failed", current.progress, None, {"code": code, "message": message}
    )  # the contract adds `type`
    return task.forced


def force_completed(task: Task, now: float) -> State:
    task.completed_at = age(task, now)
    task.forced = State(FORCED_STEP, "succeeded", 100, UNSET, None)
    return task.forced


def cancel(task: Task, now: float) -> State:
    """A client cancelled the task: it stops where it stood, cancelled."""
    current = task_state(task, now, poll=False)
    task.completed_at = age(task, now)
    task.forced = State(FORCED_STEP, "cancelled", current.progress, None, None)
    return task.forced


def delete(task: Task, now: float) -> None:
    """A client deleted the task: cancelled first if it was still running; from now on it is gone."""
    if not is_terminal(task_state(task, now, poll=False)):
        cancel(task, now)
    task.deleted = True


def ended_at(task: Task, state: State) -> float | None:
    """Seconds after submit at which the task reached its terminal state (None while it runs)."""
    if state.phase not in TERMINAL:
        return None
    if task.forced is not None and task.completed_at is not None:
        return task.completed_at
    step = task.scenario.timeline[state.step] if state.step >= 0 else None
    if state.phase == "succeeded":
        return task.scenario.completes_at if task.scenario.completes_at is not None else (step.at if step else None)
    return step.at if step is not None else None


def stall(task: Task, now: float) -> None:
    if task.frozen is None:
        task.frozen = now - task.created_at


def resume(task: Task, now: float) -> None:
    if task.frozen is not None:
        task.created_at = now - task.frozen
        task.frozen = None
