"""Lifecycle rules: what the documents say about a task beyond the shape of one response.

    task_problems(task)              one task body on its own
    transition_problems(before, after)   two polls of the same task, in order

Each returns a list of problems (empty when the rule holds), phrased as "received ... expected".
Used by the schemathesis checks in `contracts.checks` and by `mockserver check`.

Rules:
- `error` is an object exactly when `status` is `failed`; `results` is null unless `completed`;
- `completed` with `results: null` is the documented quirk: allowed, but it must be filled in by
  a later poll (`transition_problems` and `mockserver check` follow it up);
- status never moves backward (pending < processing < completed | failed), progress never
  falls, a terminal status is final, and attached results do not go away (their URLs may be
  signed anew on each poll).
"""

from __future__ import annotations

from typing import Any

RANK = {"pending": 0, "processing": 1, "completed": 2, "failed": 2}
TERMINAL = frozenset({"completed", "failed"})


def is_done(task: dict[str, Any]) -> bool:
    """Terminal for a client: failed, or completed with its results attached."""
    return task.get("status") == "failed" or (task.get("status") == "completed" and task.get("results") is not None)


def task_problems(task: dict[str, Any]) -> list[str]:
    status, error, results = task.get("status"), task.get("error"), task.get("results")
    problems = []
    if status == "failed" and not isinstance(error, dict):
        problems.append(f"status is 'failed' but error is {error!r}; expected the failure's code and message")
    if status != "failed" and error is not None:
        problems.append(f"status is {status!r} but error is set ({error!r}); expected null unless failed")
    if status != "completed" and results is not None:
        problems.append(f"status is {status!r} but results are set; expected null until completed")
    if status == "completed" and isinstance(results, list) and not results:
        problems.append("status is 'completed' with an empty results list; expected at least one result")
    return problems


def transition_problems(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    problems = []
    old, new = before.get("status"), after.get("status")
    if old in RANK and new in RANK and RANK[new] < RANK[old]:
        problems.append(f"status went back from {old!r} to {new!r}; expected it never to move backward")
    if old in TERMINAL and new != old:
        problems.append(f"status changed from terminal {old!r} to {new!r}; expected a terminal status to be final")
    old_progress, new_progress = before.get("progress"), after.get("progress")
    if isinstance(old_progress, int) and isinstance(new_progress, int) and new_progress < old_progress:
        problems.append(f"progress fell from {old_progress} to {new_progress}; expected it never to fall")
    if before.get("results") is not None and after.get("results") is None:
        problems.append("results went back to null after they were attached; expected them to stay")
    return problems
