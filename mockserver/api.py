"""The provider's API as the fake plays it, one handler per route.

Submit: bearer key -> JSON body -> contract -> scenario -> task stored -> answer.
Query:  bearer key -> query parameters -> task -> state at the clock's now -> answer.
Download: task -> completed with the fake's own video and not expired -> MP4 bytes.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from mockserver import render
from mockserver.errors import ApiError
from mockserver.intake import bearer_key, read_json
from mockserver.journal import SCENARIO_KEY, TASK_KEY, key_id
from mockserver.lifecycle import observe
from mockserver.matching import SCENARIO_HEADER, choose
from mockserver.media import serve
from mockserver.runtime import Runtime
from mockserver.scenarios import UNSET, Scenario
from mockserver.store import Task

ID_HINT = "Task ids look like 'task-unified-1757165031-uyujaw3d' and come from POST /v1/videos/generations."


class ProviderApi:
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self.submit_operation = runtime.contract.operation("createVideoGeneration")
        self.query_operation = runtime.contract.operation("getTask")
        self.defaults = self.submit_operation.body_defaults

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/v1/videos/generations", self.submit, methods=["POST"]),
            Route("/v1/tasks/{task_id}", self.query, methods=["GET"]),
            Route("/files/{task_id}.mp4", self.download, methods=["GET", "HEAD"]),
        ]

    async def submit(self, request: Request) -> Response:
        api_key = bearer_key(request)
        body = await read_json(request, self.rt.settings.max_body_bytes)
        violation = self.submit_operation.check_body(body)
        if violation is not None:
            raise ApiError(422, violation.message, param=violation.param)
        scenario = choose(self.rt.scenarios, self.rt.default, request.headers.get(SCENARIO_HEADER), api_key, body)
        request.scope[SCENARIO_KEY] = scenario.name
        behaviour = scenario.submit
        if behaviour.status == 200 or behaviour.creates_task:
            task = self._create(scenario, api_key, body)
            request.scope[TASK_KEY] = task.id
        if behaviour.status != 200:
            raise ApiError(behaviour.status, headers=dict(behaviour.headers), **behaviour.error)
        return JSONResponse(render.task_created(task))

    def _create(self, scenario: Scenario, api_key: str, body: dict) -> Task:
        now = self.rt.clock.now()
        created = int(now)
        defaults = self.defaults
        task = Task(
            id=self.rt.store.new_id(created),
            created=created,
            created_at=now,
            scenario=scenario,
            model=body.get("model") or defaults.get("model", ""),
            aspect_ratio=body.get("aspect_ratio") or defaults.get("aspect_ratio", "16:9"),
            generate_audio=body.get("generate_audio", defaults.get("generate_audio", True)),
            key_id=key_id(api_key),
        )
        return self.rt.store.add(task)

    def _task(self, request: Request) -> Task:
        task_id = request.path_params["task_id"]
        request.scope[TASK_KEY] = task_id
        task = self.rt.store.get(task_id)
        if task is None:
            raise ApiError(404, f"No task with id {task_id[:100]!r}. {ID_HINT}", code="task_not_found")
        request.scope[SCENARIO_KEY] = task.scenario.name
        return task

    async def query(self, request: Request) -> Response:
        bearer_key(request)
        violation = self.query_operation.check_query(request.query_params)
        if violation is not None:
            raise ApiError(422, violation.message, param=violation.param)
        task = self._task(request)
        state = observe(task.scenario, self.rt.clock.now() - task.created_at, task.reads)
        task.polls += 1
        return JSONResponse(render.task_body(task, state, self.rt.base_url(request), self.rt.media))

    async def download(self, request: Request) -> Response:
        task = self._task(request)
        now = self.rt.clock.now()
        state = observe(task.scenario, now - task.created_at, task.reads, poll=False)
        if state.status != "completed" or state.results is not UNSET:
            raise ApiError(404, f"Task {task.id} has no video at this URL (it is {state.status}).", code="not_ready")
        completed = task.scenario.completes_at or 0.0
        expires = task.created_at + completed + task.scenario.result_url_ttl
        if now >= expires:
            raise ApiError(
                403,
                f"This result URL expired {now - expires:.0f} s ago: result URLs serve for "
                f"{task.scenario.result_url_ttl:.0f} s of scenario time after the task completes.",
                code="url_expired",
            )
        return serve(request, self.rt.media.clip_for(task.aspect_ratio, task.generate_audio))
