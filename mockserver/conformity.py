"""Does a scenario keep the fake inside its contract?

At start-up every scripted answer is checked against the loaded contract: each error status a
submit or poll answer uses must be documented for that operation, with a body and headers that
match; each timeline step, rendered as the task a poll would return, must match the task schema.
A scenario that breaks the contract on purpose (an undocumented 502, a `cancelled` status) says
so with `off_contract: <why>`; one that breaks it by mistake is refused, and one that claims
`off_contract` but conforms is refused too, so the label can be trusted.
"""

from __future__ import annotations

from typing import Any

from contracts import Contract, Operation
from mockserver.lifecycle import State
from mockserver.render import Renderer
from mockserver.scenarios import Answer, Scenario, ScenarioError
from mockserver.state.task import Task
from mockserver.yamlfile import field_name

_SAMPLE_ID = "task-unified-1757165031-abcd1234"


def _answer_problems(operation: Operation, answer: Answer) -> list[str]:
    if answer.status == 200:
        return []
    spec = operation.answer(answer.status)
    if spec is None:
        documented = ", ".join(sorted(operation.answers))
        return [f"HTTP {answer.status} is not documented for {operation.method} {operation.path} (documented: {documented})"]
    return spec.problems({"error": answer.error}, dict(answer.headers))


def problems(scenario: Scenario, contract: Contract, renderer: Renderer) -> list[tuple[tuple[Any, ...], str]]:
    """(where in the scenario, what breaks the contract) for every scripted answer that does."""
    found: list[tuple[tuple[Any, ...], str]] = []
    submit, query = contract.operation("createVideoGeneration"), contract.operation("getTask")
    for index, answer in enumerate(scenario.submit):
        where = ("submit", index) if len(scenario.submit) > 1 else ("submit",)
        found += [(where, problem) for problem in _answer_problems(submit, answer)]
    for index, rule in enumerate(scenario.polls):
        found += [(("polls", index), problem) for problem in _answer_problems(query, rule.answer)]
    task_schema = query.answer(200)
    sample = Task(_SAMPLE_ID, 1757165031, 0.0, scenario, "veo-3.1-extend", "16:9", True, "key-sample")
    for index, step in enumerate(scenario.timeline):
        body = renderer.task(sample, State(index, step.status, step.progress, step.results, step.error), "http://mock.test")
        if task_schema is not None:
            found += [(("timeline", index), problem) for problem in task_schema.problems(body)]
    return found


def check(scenarios: dict[str, Scenario], contract: Contract, renderer: Renderer) -> None:
    for scenario in scenarios.values():
        found = problems(scenario, contract, renderer)
        where = scenario.lines
        if found and scenario.off_contract is None:
            path, problem = found[0]
            line = next((where[p] for p in (path, path[:1]) if p in where), None)
            raise ScenarioError(
                scenario.source,
                line,
                field_name(path),
                f"would break the contract ({contract.path.name}): {problem}. "
                "If that is the point, say why with 'off_contract: <reason>'.",
            )
        if not found and scenario.off_contract is not None and not scenario.mix and not scenario.sequence:
            raise ScenarioError(
                scenario.source,
                where.get(("off_contract",)),
                "off_contract",
                "every answer this scenario scripts conforms to the contract; remove 'off_contract'",
            )
