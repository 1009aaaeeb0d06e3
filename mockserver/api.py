"""The provider's API as the fake plays it, one handler per route.

Submit:   bearer key -> JSON body -> contract -> scenario -> its answer for this key's n-th
          submission -> task stored (when the answer creates one) -> answer, maybe faulty.
Query:    bearer key -> query parameters -> task (404 once it disappears) -> the scenario's
          answer for this poll, or the state at the clock's now.
Download: task -> completed with the fake's own video and not expired -> MP4 bytes.
"""

from __future__ import annotations

from typing import Any

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mockserver import lifecycle
from mockserver.errors import ApiError
from mockserver.faults import FaultyResponse
from mockserver.incoming import Incoming
from mockserver.intake import bearer_key, read_json
from mockserver.journal import FAULT_KEY, SCENARIO_KEY, TASK_KEY, key_id
from mockserver.matching import SCENARIO_HEADER
from mockserver.media import serve
from mockserver.responses import JsonBytes, JsonResponse
from mockserver.runtime import Runtime
from mockserver.scenarios import UNSET, Answer, Scenario
from mockserver.store import Task

ID_HINT = "Task ids look like 'task-unified-1757165031-uyujaw3d' and come from POST /v1/videos/generations."


Handler = Callable[[Incoming], Awaitable[Response]]


def route(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """A Starlette endpoint for a handler that reads an `Incoming`."""

    async def endpoint(request: Request) -> Response:
        return await handler(Incoming(request.scope, request.receive, request.path_params.get("task_id")))

    return endpoint


def _answer(request: Incoming, answer: Answer, normal: Response | None) -> Response:
    """The scripted answer: the normal response or the scripted error, delivered with its fault."""
    if answer.status == 200:
        response = normal if normal is not None else Response(b"")
    else:
        response = ApiError(answer.status, headers=dict(answer.headers), **answer.error).response()
    if answer.fault is None:
        return response
    request.scope[FAULT_KEY] = answer.fault.kind
    return FaultyResponse(response, answer.fault)


class ProviderApi:
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self.submit_operation = runtime.contract.operation("createVideoGeneration")
        self.query_operation = runtime.contract.operation("getTask")
        self.defaults = self.submit_operation.body_defaults

    def routes(self) -> list[BaseRoute]:
        submit, query = self.submit_operation, self.query_operation
        return [
            Route(submit.path, route(self.submit), methods=[submit.method]),
            Route(query.path, route(self.query), methods=[query.method]),
            Route("/files/{task_id}.mp4", route(self.download), methods=["GET", "HEAD"]),
        ]

    async def submit(self, request: Incoming) -> Response:
        api_key = bearer_key(request, self.rt.accepted_keys)
        body = await read_json(request, self.rt.settings.max_body_bytes)
        violation = self.submit_operation.check_body(body)
        if violation is not None:
            raise ApiError(422, violation.message, param=violation.param)
        body = {**self.defaults, **body}  # the request as the provider reads it
        scenario, selected_by, via = self.rt.selector.choose(request.header(SCENARIO_HEADER), api_key, body)
        request.scope[SCENARIO_KEY] = scenario.name
        await self.rt.delay(scenario, "submit")
        key = key_id(api_key)
        if len(self.rt.submissions) >= 100_000:  # any key is accepted: do not grow for ever
            self.rt.submissions.clear()
        self.rt.submissions[(scenario.name, key)] += 1
        answer = scenario.submit_answer(self.rt.submissions[(scenario.name, key)])
        normal = None
        if answer.makes_task:
            task = self._create(scenario, key, body, selected_by, via)
            request.scope[TASK_KEY] = task.id
            normal = JsonBytes(self.rt.render.created_json(task, scenario.estimated_time(answer)))
        return _answer(request, answer, normal)

    def _create(self, scenario: Scenario, key: str, body: dict[str, Any], selected_by: str, via: str | None) -> Task:
        now = self.rt.clock.now()
        created = int(now)
        self.rt.store.evict(now)
        task = Task(
            id=self.rt.store.new_id(created),
            created=created,
            created_at=now,
            scenario=scenario,
            model=str(body.get("model", "")),
            aspect_ratio=str(body.get("aspect_ratio", "16:9")),
            generate_audio=bool(body.get("generate_audio", True)),
            key_id=key,
            via=via,
            selected_by=selected_by,
        )
        return self.rt.store.add(task)

    def _task(self, request: Incoming, retained: bool = True) -> Task:
        """The task a client asks for; 404 once its scenario makes it disappear, or (`retained`)
        once it is past the task retention, evicted or not yet."""
        task_id = request.task_id or ""
        request.scope[TASK_KEY] = task_id
        task = self.rt.task(task_id, hint=ID_HINT)
        now = self.rt.clock.now()
        limit = task.scenario.disappears_after
        if (limit is not None and lifecycle.age(task, now) >= limit) or (retained and self.rt.store.expired(task, now)):
            raise self.rt.unknown_task(task_id, ID_HINT)
        request.scope[SCENARIO_KEY] = task.scenario.name
        return task

    async def query(self, request: Incoming) -> Response:
        bearer_key(request, self.rt.accepted_keys)
        if request.query_string or self.query_operation.requires_query:
            violation = self.query_operation.check_query(request.query_params())
            if violation is not None:
                raise ApiError(422, violation.message, param=violation.param)
        task = self._task(request)
        poll = request.method == "GET"  # a HEAD peeks: it must not use up a held step
        if poll:
            task.polls += 1
        await self.rt.delay(task.scenario, "poll")
        answer = task.scenario.poll_answer(task.polls) if poll else None
        if answer is not None and answer.status != 200:
            return _answer(request, answer, None)
        state = lifecycle.task_state(task, self.rt.clock.now(), poll=poll)
        base_url = self.rt.base_url(request) if state.status == "completed" else ""  # only results need it
        normal = JsonResponse(self.rt.render.task(task, state, base_url))
        return normal if answer is None else _answer(request, answer, normal)

    async def download(self, request: Incoming) -> Response:
        task = self._task(request, retained=False)  # an old URL answers 403 (expired) until the task is evicted
        await self.rt.delay(task.scenario, "download")
        now = self.rt.clock.now()
        state = lifecycle.task_state(task, now, poll=False)
        if state.status != "completed" or state.results is not UNSET:
            raise ApiError(404, f"Task {task.id} has no video at this URL (it is {state.status}).", code="not_ready")
        expires = lifecycle.result_expires_at(task)
        if expires is not None and now >= expires:
            raise ApiError(
                403,
                f"This result URL expired {now - expires:.0f} s ago: result URLs serve for "
                f"{task.scenario.result_url_ttl:.0f} s of scenario time after the task completes.",
                code="url_expired",
            )
        return serve(request, self.rt.media.clip_for(task.aspect_ratio, task.generate_audio))
