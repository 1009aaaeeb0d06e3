"""Lifecycle rules: what the documents say about a task beyond the shape of one response.

    reader = Reader.of(contract)              how a contract's tasks read: status words, result, error
    reader.task_problems(task)                one task body on its own
    reader.transition_problems(before, after) two polls of the same task, in order

Each returns a list of problems (empty when the rule holds), phrased as "received ... expected".
Used by the schemathesis checks in `contracts.checks`, by `mockserver check` and by the client
properties. The module-level functions read tasks in today's words (`pending`, `processing`,
`completed`, `failed`, `results`, `error`).

Rules, in phases (each contract's words map onto them, `contracts._vocabulary`):
- the error is set exactly when the task failed; the result is not there until it succeeded;
- succeeded with no result yet is the documented quirk of the shipped API: allowed, but it must
  be filled in by a later poll (`transition_problems` and `mockserver check` follow it up);
- the status never moves backward (queued < running < succeeded | failed | cancelled), progress
  never falls, a terminal status is final, and attached results do not go away (their URLs may
  be signed anew on each poll).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from contracts._vocabulary import PHASE_RANK, TERMINAL_PHASES, Vocabulary

if TYPE_CHECKING:
    from contracts._contract import Contract

# Today's words, as the shipped contracts speak them.
RANK = {"pending": 0, "processing": 1, "completed": 2, "failed": 2}
TERMINAL = frozenset({"completed", "failed"})


def _at(task: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = task
    for name in path:
        value = value.get(name) if isinstance(value, dict) else None
    return value


@dataclass(frozen=True)
class Reader:
    """How a task answer of one contract reads: its status words, where its result and its
    error are (None: not in the task at all)."""

    vocabulary: Vocabulary
    status: str  # the property that holds the status word
    result: Callable[[dict[str, Any]], tuple[str, ...] | None]  # where the result is, for a task
    error: Callable[[dict[str, Any]], tuple[str, ...] | None]  # where the error is, for a task
    url: Callable[[dict[str, Any]], str | None] | None = None  # the result's URL

    @classmethod
    def ours(cls) -> Reader:
        shipped = {word: phase for word, phase in Vocabulary.ours().words.items() if phase != "cancelled"}
        vocabulary = Vocabulary(shipped, dict(Vocabulary.ours().canonical))  # the shipped contracts' enum
        return cls(vocabulary, "status", lambda task: ("results",), lambda task: ("error",))

    @classmethod
    def of(cls, contract: Contract | None) -> Reader:
        if contract is None:
            return cls.ours()
        shapes = contract.shapes
        # where each task shape holds its error (read once: the rules run on every poll of a check)
        errors = {
            id(shape): next(
                (path for path, node in shape.node.walk() if node.source in ("error", "error_message")), None
            )
            for shape in shapes.tasks
        }

        def result(task: dict[str, Any]) -> tuple[str, ...] | None:
            shape = shapes.shape_for(str(task.get(shapes.status_name)))
            return shape.place[:1] if shape.place else None

        def error(task: dict[str, Any]) -> tuple[str, ...] | None:
            return errors[id(shapes.shape_for(str(task.get(shapes.status_name))))]

        return cls(shapes.vocabulary, shapes.status_name, result, error, shapes.result_url)

    def phase(self, task: dict[str, Any]) -> str | None:
        return self.vocabulary.phase_of_answer(task.get(self.status))

    def has_result(self, task: dict[str, Any]) -> bool:
        place = self.result(task)
        return place is not None and _at(task, place) not in (None, [], "")

    def is_done(self, task: dict[str, Any]) -> bool:
        """Terminal for a client: failed or cancelled, or succeeded with its result (where the task
        carries one: a contract that serves the video through a content operation has none)."""
        phase = self.phase(task)
        if phase in ("failed", "cancelled"):
            return True
        return phase == "succeeded" and (self.result(task) is None or self.has_result(task))

    def task_problems(self, task: dict[str, Any]) -> list[str]:
        status, phase = task.get(self.status), self.phase(task)
        where = self.error(task)
        error = _at(task, where) if where is not None else None
        problems = []
        if phase == "failed" and where is not None and not error:
            problems.append(
                f"status is {status!r} but {'.'.join(where)} is {error!r}; expected the failure's code and message"
            )
        if phase not in ("failed", "cancelled") and error:
            problems.append(
                f"status is {status!r} but {'.'.join(where or ())} is set ({error!r}); expected null unless failed"
            )
        place = self.result(task)
        if place is not None:
            results = _at(task, place)
            if phase != "succeeded" and results is not None:
                problems.append(f"status is {status!r} but {'.'.join(place)} are set; expected null until completed")
            if phase == "succeeded" and isinstance(results, list) and not results:
                problems.append(
                    f"status is {status!r} with an empty {'.'.join(place)} list; expected at least one result"
                )
        return problems

    def transition_problems(self, before: dict[str, Any], after: dict[str, Any]) -> list[str]:
        problems = []
        old, new = before.get(self.status), after.get(self.status)
        old_phase, new_phase = self.phase(before), self.phase(after)
        if old_phase in PHASE_RANK and new_phase in PHASE_RANK and PHASE_RANK[new_phase] < PHASE_RANK[old_phase]:
            problems.append(f"status went back from {old!r} to {new!r}; expected it never to move backward")
        if old_phase in TERMINAL_PHASES and (new_phase != old_phase or (old_phase == new_phase and new != old)):
            problems.append(f"status changed from terminal {old!r} to {new!r}; expected a terminal status to be final")
        old_progress, new_progress = before.get("progress"), after.get("progress")
        if (
            isinstance(old_progress, (int, float))
            and isinstance(new_progress, (int, float))
            and new_progress < old_progress
        ):
            problems.append(f"progress fell from {old_progress} to {new_progress}; expected it never to fall")
        place = self.result(before)
        if place is not None and _at(before, place) is not None and _at(after, self.result(after) or place) is None:
            problems.append(f"{'.'.join(place)} went back to null after they were attached; expected them to stay")
        return problems


_OURS = Reader.ours()


def is_done(task: dict[str, Any]) -> bool:
    """Terminal for a client: failed, or completed with its results attached (today's words)."""
    return _OURS.is_done(task)


def task_problems(task: dict[str, Any]) -> list[str]:
    return _OURS.task_problems(task)


def transition_problems(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return _OURS.transition_problems(before, after)
