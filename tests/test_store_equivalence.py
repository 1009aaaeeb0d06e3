"""The two stores play every behaviour alike: the Redis store's Lua scripts count polls, held-step
reads, submissions, disappearances and expiry exactly as the memory store's Python does.
Generated behaviours (submit sequences, poll errors, held steps, disappearing tasks) are played
on both, with the same requests, admin actions (fail, complete, stall, resume) and peeks at the
same clock readings, and every answer must be the same."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.strategies import behaviours
from mockserver.scenarios import parse
from mockserver.settings import Settings
from mockserver.testing import LiveServer
from tests.conftest import BODIES, SUBMIT
from tests.services import RedisServer

START = 1_800_000_000.0
HEADERS = {"Authorization": "Bearer sk-equivalence"}
_ID = re.compile(r"task-unified-\d+-[a-z0-9]{8}")


@pytest.fixture(scope="module")
def both(redis_server: RedisServer) -> Iterator[tuple[LiveServer, LiveServer]]:
    with ExitStack() as stack:
        common = {"clock": "manual", "clock_start": START, "seed": 3, "task_retention": 150.0}
        memory = stack.enter_context(LiveServer(Settings(**common)))
        shared = stack.enter_context(LiveServer(Settings(**common, store=redis_server.url, store_prefix="equivalence")))
        yield memory, shared


ACTIONS = [None, "fail", "complete", "stall", "resume", "head"]


def _play(server: LiveServer, behaviour: dict[str, Any], script: list[tuple[int, float, int, str | None]]) -> list[Any]:
    runtime = server.runtime
    server.call(runtime.reset())
    runtime.add_scenario(parse(behaviour, "<generated>"))
    server.call(runtime.set_default(behaviour["name"]))
    seen: list[Any] = []
    with httpx.Client(base_url=server.url, headers=HEADERS, timeout=10) as client:
        task_ids: list[str] = []
        for submits, advance, polls, action in script:
            for _ in range(submits):
                answer = client.post(SUBMIT, json=BODIES["seed"])
                seen.append((answer.status_code, answer.headers.get("retry-after"), _ID.sub("ID", answer.text)))
                if answer.status_code == 200:
                    task_ids.append(answer.json()["id"])
            if action == "head" and task_ids:
                seen.append(client.head(f"/v1/tasks/{task_ids[0]}").status_code)
            elif action and task_ids:
                answer = client.post(f"/__admin/tasks/{task_ids[-1]}/{action}", json={"code": "resource_exhausted"})
                seen.append((answer.status_code, answer.json().get("task", {}).get("status")))
            server.call(runtime.advance(advance))
            for _ in range(polls):
                for task_id in task_ids:
                    answer = client.get(f"/v1/tasks/{task_id}")
                    seen.append((answer.status_code, _ID.sub("ID", answer.text.replace(server.url, "URL"))))
        views = server.call(runtime.task_views(server.url))
        seen.append([(view["polls"], view["step"], view["scenario"], view["selected_by"]) for view in views])
        newest, _, _ = server.call(runtime.state.newest_tasks(500))  # the dashboard's: newest first, live ones
        seen.append([(task.created_at, task.scenario.name, task.polls) for task in newest])
    return seen


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    behaviour=behaviours(faults=False, latency=False),
    script=st.lists(
        st.tuples(
            st.integers(0, 2),
            st.sampled_from([0.0, 0.5, 3.0, 10.0, 45.0, 200.0]),
            st.integers(0, 3),
            st.sampled_from(ACTIONS),
        ),
        min_size=1,
        max_size=6,
    ),
)
def test_memory_and_redis_answer_alike(
    both: tuple[LiveServer, LiveServer], behaviour: dict[str, Any], script: list
) -> None:
    memory, shared = both
    script = [(1, 0.0, 0, None), *script]
    assert _play(shared, behaviour, script) == _play(memory, behaviour, script)
