"""A task's state, computed from (scenario, seconds since submit, polls seen): nothing is pushed.

`observe()` is the one entry point. Between two steps progress rises linearly when the earlier
step ramps (the default while `processing`). A step with `polls: N` is held until N polls have
returned it, whatever the clock says, which is how "completed before the results are attached,
filled in on the next poll" is expressed. Because the clock only moves forward, poll counts only
grow and the timeline was checked at load time, a task's status never moves backward, its
progress never falls and a terminal state is final.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from typing import Any

from mockserver.scenarios import UNSET, Scenario


@dataclass(frozen=True, slots=True)
class State:
    step: int  # index into the timeline; -1 before the first step
    status: str
    progress: int
    results: Any = None  # as the step says: UNSET (the fake's video), None or a list
    error: dict[str, str] | None = None


BEFORE_FIRST_STEP = State(-1, "pending", 0)


def observe(scenario: Scenario, elapsed: float, reads: dict[int, int], *, poll: bool = True) -> State:
    """The state at `elapsed` seconds after submit.

    `reads` is the task's count, per held step, of the polls that returned it. A poll
    (`poll=True`) adds to it; a peek (admin views, downloads) leaves it as it is.
    """
    timeline = scenario.timeline
    index = bisect_right(scenario.times, elapsed) - 1
    if index < 0:
        return BEFORE_FIRST_STEP
    for held in scenario.held_steps:
        if held > index:
            break
        if reads.get(held, 0) < timeline[held].polls:
            index = held
            break
    step = timeline[index]
    if poll and step.polls:
        reads[index] = reads.get(index, 0) + 1
    progress = step.progress
    if step.ramp and index + 1 < len(timeline):
        following = timeline[index + 1]
        span = following.at - step.at
        if span > 0 and following.progress > progress:
            fraction = min(elapsed - step.at, span) / span
            progress += int((following.progress - progress) * fraction)
    return State(index, step.status, progress, step.results, step.error)


def final_state(scenario: Scenario) -> State:
    """The state the lifecycle ends in (what a poll sees once every step has been played)."""
    last = len(scenario.timeline) - 1
    step = scenario.timeline[last]
    return State(last, step.status, step.progress, step.results, step.error)


def is_attached(state: State) -> bool:
    """Completed with a result a client can download."""
    return state.status == "completed" and state.results is not None


__all__ = ["BEFORE_FIRST_STEP", "State", "UNSET", "final_state", "is_attached", "observe"]
