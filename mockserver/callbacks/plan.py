"""When a task's callbacks are due, from its scenario and its facts: nothing is pushed by timers.

An event is a phase the contract delivers callbacks for (terminal ones by default; the request
may narrow them, as Replicate's `webhook_events_filter` does). Its delivery is due when the
task reaches that phase: the scenario step's time, or the moment the admin API (or a client's
cancel) forced it. A stalled task has none due until it runs on. The scenario's callback faults
shift or spoil each delivery: `late` and `early` move it, `duplicate` makes copies with one
webhook id, `lost` and `bad_signature` mark it.
"""

from __future__ import annotations

import secrets

from contracts._callbacks import Callbacks
from mockserver.lifecycle import BEFORE_FIRST_STEP, State, ended_at
from mockserver.scenarios import TERMINAL
from mockserver.state.base import Delivery
from mockserver.state.task import Task


def events(task: Task, spec: Callbacks) -> frozenset[str]:
    """The phases a task's client gets callbacks for: those its request's filter names (where the
    contract has one, as Replicate's `webhook_events_filter`), else the contract's."""
    return spec.events if task.callback_events is None else task.callback_events


def reached(task: Task) -> dict[str, float]:
    """Each phase the task reaches, with when (scenario time): as its scenario plays, up to the
    moment a state was forced on it, then that state. A stalled task reaches nothing more until
    it is resumed."""
    if task.frozen is not None:
        return {}
    found: dict[str, float] = {"queued": task.created_at}
    until = task.completed_at if task.forced is not None else None
    for step in task.scenario.timeline:
        if until is not None and step.at >= until:
            break
        if step.phase not in found:
            found[step.phase] = task.created_at + step.at
        if step.phase in TERMINAL:
            break
    if task.forced is not None:
        ended = ended_at(task, task.forced)
        if ended is not None:
            found.setdefault(task.forced.phase, task.created_at + ended)
    return found


def state_of(task: Task, event: str) -> State:
    """What a delivery for `event` shows: the state a poll saw when the task reached it (the
    forced one, or the first step of that phase), whatever the task has become since."""
    forced = task.forced
    if forced is not None and forced.phase == event:
        return forced
    for index, step in enumerate(task.scenario.timeline):
        if step.phase == event:
            return State(index, step.phase, step.progress, step.results, step.error, step.word)
    return BEFORE_FIRST_STEP if event == "queued" else State(-1, event, 0)


def plan(task: Task, spec: Callbacks, base: str, started: dict[str, str] | None = None) -> list[Delivery]:
    """The deliveries to make for a task's events that have not been attempted yet (`started`:
    event -> its webhook id); `base`: where result URLs in their bodies point."""
    if task.callback_url is None:
        return []
    faults = task.scenario.callbacks
    wanted = events(task, spec)
    out: list[Delivery] = []
    for event, at in reached(task).items():
        if event not in wanted or (started and event in started):
            continue
        due = at + faults.late if faults.late else max(task.created_at, at - faults.early)
        fault = "lost" if faults.lost else "bad_signature" if faults.bad_signature else None
        webhook_id = "msg_" + secrets.token_hex(12)
        for copy in range(1, faults.duplicate + 1):
            out.append(
                Delivery(
                    secrets.token_hex(8),
                    task.id,
                    event,
                    webhook_id,
                    task.callback_url,
                    due,
                    at,
                    1,
                    copy,
                    fault,
                    False,
                    base,
                    task.trace,
                )
            )
    return out
