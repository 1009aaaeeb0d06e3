"""Does a scenario keep the fake inside its contract?

At start-up every scripted answer is checked against the loaded contract: each error status a
submit or poll answer uses must be documented for that operation, with a body and headers that
match; each timeline step, rendered as the task a poll would return, must match the task schema.
A scenario that breaks the contract on purpose (an undocumented 502, a `cancelled` status) says
so with `off_contract: <why>`; one that breaks it by mistake is refused, and one that claims
`off_contract` but conforms is refused too, so the label can be trusted.

Under a contract of the user's own, the shipped scenarios are not refused but sorted:
`unplayable` says which of them the contract cannot play and why (a status it does not
document, an error code it does not allow, results scripted in another form), and the fake
serves the others.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from contracts import Contract, ContractError, Operation
from contracts._shape import example_of
from mockserver.lifecycle import State
from mockserver.render import Renderer
from mockserver.scenarios import Answer, Scenario, ScenarioError
from mockserver.state.task import Task
from mockserver.yamlfile import field_name


def _sample_model(contract: Contract) -> str:
    """A model a task of this contract could have: one of its body's models (the default first),
    else one its task schema names, else ours."""
    submit = contract.submit
    if submit.branches:
        return next(iter(submit.branches))
    default = submit.body.value(sample_request(contract), "model") if submit.body else None
    if isinstance(default, str):
        return default
    node = contract.shapes.task.find("model")
    named = [*(node.enum or ()), node.fixed] if node is not None else []
    return next((value for value in named if isinstance(value, str)), "veo-3.1-extend")


def sample_request(contract: Contract) -> dict[str, Any]:
    """A request body as a client could send it: each field's default, else its first example,
    else its first enum value (nested objects likewise)."""

    def sample(schema: Any, depth: int = 0, required: bool = False) -> Any:
        schema = contract.resolve(schema, "")[0] if isinstance(schema, dict) else {}
        if not isinstance(schema, dict) or depth > 8:
            return None
        given = example_of(schema)
        if given is not None:
            return given
        if isinstance(schema.get("properties"), dict):
            needed = set(schema.get("required") or ())
            found = {name: sample(prop, depth + 1, name in needed) for name, prop in schema["properties"].items()}
            return {name: value for name, value in found.items() if value is not None}
        if required:  # a value the client must send, that the document gives no example of
            kind = schema.get("type")
            if kind == "string" or (isinstance(kind, list) and "string" in kind):
                text = "https://example.com/sample" if schema.get("format") in ("uri", "url") else "sample"
                return text.ljust(int(schema.get("minLength", 0)), "x")
            if kind in ("integer", "number"):
                return schema.get("minimum", 1)
            if kind == "boolean":
                return True
        return None

    body = contract.submit.body
    found = sample(body.schema) if body is not None else None
    return found if isinstance(found, dict) else {}


def sample_task(contract: Contract, renderer: Renderer, scenario: Scenario) -> Task:
    """A task of this contract as the fake would make it, for the start-up checks."""
    request = sample_request(contract)
    return Task(
        renderer.sample_id,
        1757165031,
        0.0,
        scenario,
        _sample_model(contract),
        "16:9",
        True,
        "key-sample",
        request=request,
    )


def _answer_problems(operation: Operation, answer: Answer, renderer: Renderer) -> list[str]:
    if answer.status == 200:
        return []
    spec = operation.answer(answer.status)
    if spec is None:
        documented = ", ".join(sorted(operation.answers))
        return [
            f"HTTP {answer.status} is not documented for {operation.method} {operation.path} (documented: {documented})"
        ]
    body = renderer.error_body(operation.operation_id, answer.status, answer.error or {}, own=False)
    return spec.problems(body, dict(answer.headers))


def problems(scenario: Scenario, contract: Contract, renderer: Renderer) -> list[tuple[tuple[Any, ...], str]]:
    """(where in the scenario, what breaks the contract) for every scripted answer that does."""
    found: list[tuple[tuple[Any, ...], str]] = []
    submit, query = contract.submit, contract.query
    for index, answer in enumerate(scenario.submit):
        where = ("submit", index) if len(scenario.submit) > 1 else ("submit",)
        found += [(where, problem) for problem in _answer_problems(submit, answer, renderer)]
    for index, rule in enumerate(scenario.polls):
        found += [(("polls", index), problem) for problem in _answer_problems(query, rule.answer, renderer)]
    task_schema = query.answer(200)
    sample = sample_task(contract, renderer, scenario)
    for index, step in enumerate(scenario.timeline):
        state = State(index, step.phase, step.progress, step.results, step.error, step.word)
        body = renderer.task(sample, state, "http://mock.test")
        if task_schema is not None:
            found += [(("timeline", index), problem) for problem in task_schema.problems(body)]
    return found


def check_answers(contract: Contract, renderer: Renderer, scenario: Scenario) -> None:
    """The answers the fake makes of its own (the submit answer, its own errors: a missing key, a
    body that breaks the contract, an unknown task) fit the contract; else the contract asks for
    something the fake cannot fill, and `ContractError` says where and what."""
    shapes = contract.shapes
    sample = sample_task(contract, renderer, scenario)
    spec = contract.submit.answer(shapes.created_status)
    found = spec.problems(renderer.created(sample, 45, "http://mock.test")) if spec is not None else []
    if found:
        raise ContractError(
            f"{contract.path}: at {shapes.created.pointer}: the fake cannot fill this submit answer: {found[0]}"
        )
    cancelled = State(-2, "cancelled", 10)
    checks: list[tuple[Operation, int, Any, str]] = []
    if shapes.list is not None and shapes.page is not None:
        item = renderer.task(sample, State(0, "queued", 0), "http://mock.test")
        page = renderer.page(
            [item],
            {"has_more": False, "first_id": sample.id, "last_id": sample.id, "total": 1, "limit": 20, "offset": 0},
        )
        checks.append((shapes.list, 200, page, shapes.page.node.pointer))
    if shapes.cancel is not None:  # a cancelled task is polled like any other
        checks.append((shapes.query, 200, renderer.task(sample, cancelled, "http://mock.test"), shapes.task.pointer))
    for kind, outcome in shapes.outcomes.items():
        if outcome.node is not None:
            body = renderer.outcome(kind, sample, cancelled, "http://mock.test")
            checks.append((shapes.operations[kind], outcome.status, body, outcome.node.pointer))
    for operation, status, body, pointer in checks:
        answer = operation.answer(status)
        found = answer.problems(body) if answer is not None else []
        if found:
            raise ContractError(f"{contract.path}: at {pointer}: the fake cannot fill this answer: {found[0]}")
    for operation in shapes.operations.values():
        for code in operation.error_statuses:
            own = {"message": "A sample error.", "code": "sample_code", "param": None}
            body = renderer.error_body(operation.operation_id, int(code), own, own=True)
            found = operation.answers[code].problems(body) if body is not None else []
            if found:
                pointer = shapes.errors[(operation.operation_id, code)].pointer
                raise ContractError(
                    f"{contract.path}: at {pointer}: the fake cannot fill its own HTTP {code} answer: {found[0]}"
                )


def unplayable(scenarios: dict[str, Scenario], contract: Contract, renderer: Renderer) -> dict[str, str]:
    """Name -> why, for each scenario that would break `contract` (and is not marked
    `off_contract`), and each mix or sequence that plays one of them."""
    found: dict[str, str] = {}
    for name, scenario in scenarios.items():
        broken = problems(scenario, contract, renderer) if scenario.off_contract is None else []
        if broken:
            path, problem = broken[0]
            found[name] = f"{field_name(path)}: {problem}"
    changed = True
    while changed:  # a mix of a left-out scenario cannot play either
        changed = False
        for name, scenario in scenarios.items():
            missing = next((member for _, _, member in scenario.members() if member in found), None)
            if name not in found and missing is not None:
                found[name] = f"plays '{missing}', which this contract cannot play"
                changed = True
    return found


def leave_out(
    scenarios: dict[str, Scenario], contract: Contract, renderer: Renderer, shipped_dir: Path
) -> tuple[dict[str, str], frozenset[str]]:
    """Under a contract of the user's own: the shipped scenarios (those read from `shipped_dir`)
    it cannot play, removed from `scenarios`, with why; and the names of the shipped ones kept,
    whose `off_contract` labels speak of our contract, not this one. A scenario of the user's own
    whose mix or sequence needs a left-out one is refused (`ScenarioError`)."""
    if contract.shipped:
        return {}, frozenset()
    shipped = {name: s for name, s in scenarios.items() if Path(s.source).parent == shipped_dir}
    reasons = unplayable(shipped, contract, renderer)
    for name in reasons:
        del scenarios[name]
    for scenario in scenarios.values():
        for where, name, member in scenario.members():
            if member in reasons:
                raise ScenarioError(
                    scenario.source,
                    scenario.lines.get(where),
                    name,
                    f"'{member}' is a shipped scenario {contract.path} cannot play: {reasons[member]}",
                )
    return reasons, frozenset(shipped) - frozenset(reasons)


def check(
    scenarios: dict[str, Scenario], contract: Contract, renderer: Renderer, lenient: frozenset[str] = frozenset()
) -> None:
    """Refuse a scenario that breaks the contract unawares, or that says `off_contract` but
    conforms (except the `lenient` ones: shipped scenarios under a contract of the user's own)."""
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
        if (
            not found
            and scenario.off_contract is not None
            and not scenario.mix
            and not scenario.sequence
            and scenario.name not in lenient
        ):
            raise ScenarioError(
                scenario.source,
                where.get(("off_contract",)),
                "off_contract",
                "every answer this scenario scripts conforms to the contract; remove 'off_contract'",
            )
