"""schemathesis, through its Python API, against the fake in-process: its own checks plus our
lifecycle rules, positive and negative data, and stateful runs that follow the link from submit
to query. Both contract versions; zero failures."""

from __future__ import annotations

import json

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

import contracts.checks  # noqa: F401 - registers the lifecycle rules
from mockserver import Settings, create_app

KEY = {"Authorization": "Bearer sk-schemathesis"}


def load(contract: str) -> schemathesis.BaseSchema:
    app = create_app(Settings(clock="manual", contract=contract, seed=1))
    schema = schemathesis.openapi.from_asgi("/__admin/contract", app)
    schema.config.update(headers=KEY)
    schema.config.generation.update(modes=list(schemathesis.GenerationMode))
    return schema


SEED, CURRENT = load("seed"), load("current")


@SEED.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_fake_conforms_to_the_seed_contract(case: schemathesis.Case) -> None:
    case.call_and_validate()


@CURRENT.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_fake_conforms_to_the_current_contract(case: schemathesis.Case) -> None:
    case.call_and_validate()


@pytest.mark.parametrize("schema", [SEED, CURRENT], ids=["seed", "current"])
def test_stateful_runs_follow_the_link_from_submit_to_query(schema: schemathesis.BaseSchema) -> None:
    machine = schema.as_state_machine()
    machine.run(
        settings=settings(
            max_examples=40, stateful_step_count=8, deadline=None, suppress_health_check=list(HealthCheck)
        )
    )


def test_the_suite_can_fail_on_a_broken_answer() -> None:
    """The same checks, on a fake whose submit answer lost its `object` field, report it."""
    app = create_app(Settings(clock="manual"))
    created = app.state.runtime.render.created
    app.state.runtime.render.created_json = lambda task, eta: json.dumps(
        {k: v for k, v in created(task, eta).items() if k != "object"}
    ).encode()
    schema = schemathesis.openapi.from_asgi("/__admin/contract", app)
    operation = schema["/v1/videos/generations"]["POST"]
    case = operation.Case(
        body={"model": "veo-3.1-extend", "prompt": "p", "video": "https://example.com/v.mp4"},
        headers={**KEY, "Content-Type": "application/json"},
    )
    with pytest.raises(schemathesis.errors.FailureGroup, match="object"):
        case.call_and_validate()


def test_the_lifecycle_rules_can_fail() -> None:
    """Our registered check notices a task whose progress falls between two polls."""
    from mockserver import lifecycle

    app = create_app(Settings(clock="manual"))
    runtime = app.state.runtime
    schema = schemathesis.openapi.from_asgi("/__admin/contract", app)
    submit = schema["/v1/videos/generations"]["POST"].Case(
        body={"model": "veo-3.1-extend", "prompt": "p", "video": "https://example.com/v.mp4"},
        headers={**KEY, "Content-Type": "application/json"},
    )
    task_id = submit.call().json()["id"]
    runtime.state.clock.advance(60)
    query = schema["/v1/tasks/{task_id}"]["GET"]
    first = query.Case(path_parameters={"task_id": task_id}, headers=KEY)
    first.call_and_validate()
    task = runtime.state.tasks.get(task_id)
    task.forced = lifecycle.State(3, "running", 1)  # progress drops from about 60 to 1
    second = query.Case(path_parameters={"task_id": task_id}, headers=KEY)
    with pytest.raises(schemathesis.errors.FailureGroup, match="progress fell"):
        second.call_and_validate()
