"""Our lifecycle rules as schemathesis checks, registered on import (needs the `check` extra).

    task_lifecycle_rules    a task body on its own, and every later poll of the same task
                            against the earlier one (`contracts.rules`)
    submit_answer_rules     a 200 to submit is a new pending task whose id carries `created`

They sit beside schemathesis's own checks (server errors, status codes, content types, headers,
schemas, negative and positive data) and never repeat them: a body that is the wrong shape is
theirs to report; these look only at what a schema cannot say.
"""

from __future__ import annotations

import re
from typing import Any

import schemathesis
from schemathesis import Case, CheckContext, Response

from contracts.rules import task_problems, transition_problems

_ID_NUMBER = re.compile(r"^task-unified-(\d+)-")


def _json(response: Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None  # not JSON: schemathesis's content-type and schema checks report that


@schemathesis.check
class task_lifecycle_rules:
    """Status never moves backward, progress never falls, terminal is final; error and results
    match the status."""

    def __init__(self) -> None:
        self.seen: dict[str, dict[str, Any]] = {}

    def after_response(self, ctx: CheckContext, response: Response, case: Case) -> bool | None:
        if case.method.upper() != "GET" or response.status_code != 200:
            return None
        task = _json(response)
        if not isinstance(task, dict) or not isinstance(task.get("id"), str):
            return None
        problems = task_problems(task)
        before = self.seen.get(task["id"])
        if before is not None:
            problems += transition_problems(before, task)
        self.seen[task["id"]] = task
        if problems:
            raise AssertionError("Task lifecycle rule broken:\n" + "\n".join(f"- {p}" for p in problems))
        return True


@schemathesis.check
def submit_answer_rules(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """A successful submit answers a pending task at progress 0 whose id embeds `created`."""
    if case.method.upper() != "POST" or response.status_code != 200:
        return None
    task = _json(response)
    if not isinstance(task, dict):
        return None
    problems = []
    match = _ID_NUMBER.match(str(task.get("id", "")))
    if match and task.get("created") is not None and int(match.group(1)) != task.get("created"):
        problems.append(f"id {task.get('id')!r} does not carry created={task.get('created')}")
    if task.get("status") != "pending" or task.get("progress") != 0:
        problems.append(f"a new task is {task.get('status')!r} at {task.get('progress')}%; expected pending at 0%")
    if problems:
        raise AssertionError("Submit answer rule broken:\n" + "\n".join(f"- {p}" for p in problems))
    return True
