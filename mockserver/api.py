"""The provider's API as the fake plays it, one handler per route.

Submit:   bearer key -> JSON body -> contract -> scenario -> its answer for this key's n-th
          submission -> task stored (when the answer creates one) -> answer, maybe faulty.
Query:    bearer key -> query parameters -> task (404 once it disappears) -> the scenario's
          answer for this poll, or the state at the clock's now.
Download: task -> completed with the fake's own video and not expired -> MP4 bytes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mockserver import lifecycle
from mockserver.errors import ApiError
from mockserver.faults import FaultyResponse
from mockserver.incoming import Incoming
from mockserver.intake import bearer_key, read_json
from mockserver.journal import FAULT_KEY, NOW_KEY, SCENARIO_KEY, TASK_KEY, key_id
from mockserver.matching import SCENARIO_HEADER
from mockserver.media import serve
from mockserver.render import Renderer
from mockserver.responses import JsonBytes
from mockserver.runtime import Runtime
from mockserver.scenarios import UNSET, Answer
from mockserver.state import Found, Submission

ID_HINT = "Task ids look like 'task-unified-1757165031-uyujaw3d' and come from POST /v1/videos/generations."


Handler = Callable[[Incoming], Awaitable[Response]]


def _answer(request: Incoming, answer: Answer, normal: Response | None, render: Renderer, operation_id: str) -> Response:
    """The scripted answer: the normal response or the scripted error, delivered with its fault."""
    if answer.status == 200:
        response = normal if normal is not None else Response(b"")
    else:
        response = render.scripted_error(operation_id, answer.status, answer.error or {}, dict(answer.headers))
    if answer.fault is None:
        return response
    request.scope[FAULT_KEY] = answer.fault.kind
    return FaultyResponse(response, answer.fault)


class ProviderApi:
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        contract = runtime.contract
        self.submit_operation, self.query_operation = contract.submit, contract.query
        self.submit_id, self.query_id = contract.submit.operation_id, contract.query.operation_id
        self.invalid_submit = runtime.render.invalid_status[self.submit_id]
        self.invalid_query = runtime.render.invalid_status[self.query_id]
        self.task_parameter = contract.shapes.task_parameter
        self.created_status = contract.shapes.created_status
        self.body = contract.submit.body

    def routes(self) -> list[BaseRoute]:
        submit, query = self.submit_operation, self.query_operation
        return [
            Route(submit.path, self.route(self.submit, self.submit_id), methods=[submit.method]),
            Route(query.path, self.route(self.query, self.query_id), methods=[query.method]),
            Route("/files/{task_id}.mp4", self.route(self.download, None, "task_id"), methods=["GET", "HEAD"]),
        ]

    def route(
        self, handler: Handler, operation_id: str | None, parameter: str | None = None
    ) -> Callable[[Request], Awaitable[Response]]:
        """A Starlette endpoint for a handler that reads an `Incoming`; for an operation of the
        contract (`operation_id`), its errors in the contract's words."""
        parameter = parameter or self.task_parameter

        async def endpoint(request: Request) -> Response:
            try:
                return await handler(Incoming(request.scope, request.receive, request.path_params.get(parameter)))
            except ApiError as error:
                if operation_id is None:
                    raise
                return self.rt.render.error(operation_id, error)

        return endpoint

    def error(self, handler: Handler, error: ApiError) -> Response:
        """The fake's own error for a request the fast path served."""
        return self.rt.render.error(self.submit_id if handler == self.submit else self.query_id, error)

    async def submit(self, request: Incoming) -> Response:
        api_key = bearer_key(request, self.rt.accepted_keys)
        body = await read_json(request, self.rt.settings.max_body_bytes)
        violation = self.submit_operation.check_body(body)
        if violation is not None:
            raise ApiError(self.invalid_submit, violation.message, param=violation.param)
        fields = self.body if self.submit_operation.model_field is None else self.submit_operation.shape_of(body)
        roles = fields.roles if fields is not None else {}
        if fields is not None and fields.defaults:
            body = {**fields.defaults, **body}  # the request as the provider reads it
        selector = self.rt.selector
        if self.rt.unshared:
            await self.rt.share()
        header = selector.header(request.header(SCENARIO_HEADER))
        fallback, fallback_by = (None, "default") if header is not None else selector.fallback(api_key, body)
        submitted = await self.rt.state.submit(
            Submission(
                key_id=key_id(api_key),
                model=str(body.get(roles.get("model", "model"), "")),
                aspect_ratio=str(body.get(roles.get("aspect_ratio", "aspect_ratio"), "16:9")),
                generate_audio=bool(body.get(roles.get("audio", "generate_audio"), True)),
                header=header,
                fallback=fallback,
                fallback_by=fallback_by,
            )
        )
        scenario = submitted.scenario
        request.scope[SCENARIO_KEY] = scenario.name
        request.scope[NOW_KEY] = submitted.now
        if scenario.latency:
            await self.rt.delay(scenario, "submit")
        answer = scenario.submit_answer(submitted.count)
        normal = None
        if submitted.task is not None:
            request.scope[TASK_KEY] = submitted.task.id
            normal = JsonBytes(
                self.rt.render.created_json(submitted.task, scenario.estimated_time(answer)), self.created_status
            )
        return _answer(request, answer, normal, self.rt.render, self.submit_id)

    async def _found(self, request: Incoming, *, count: bool = False, retained: bool = True) -> Found:
        """The task a client asks for; 404 once its scenario makes it disappear, or (`retained`)
        once it is past the task retention, evicted or not yet."""
        task_id = request.task_id or ""
        request.scope[TASK_KEY] = task_id
        found = await self.rt.state.poll(task_id, count=count, retained=retained)
        if found is None or found.gone:
            raise self.rt.unknown_task(task_id, ID_HINT)
        request.scope[SCENARIO_KEY] = found.task.scenario.name
        request.scope[NOW_KEY] = found.now
        return found

    async def query(self, request: Incoming) -> Response:
        bearer_key(request, self.rt.accepted_keys)
        if request.query_string or self.query_operation.requires_query:
            violation = self.query_operation.check_query(request.query_params())
            if violation is not None:
                raise ApiError(self.invalid_query, violation.message, param=violation.param)
        poll = request.method == "GET"  # a HEAD peeks: it must not use up a held step
        found = await self._found(request, count=poll)
        task = found.task
        if task.scenario.latency:
            await self.rt.delay(task.scenario, "poll")
        answer = task.scenario.poll_answer(task.polls) if poll else None
        if answer is not None and answer.status != 200:
            return _answer(request, answer, None, self.rt.render, self.query_id)
        state = lifecycle.task_state(task, found.now, poll=poll)
        base_url = self.rt.base_url(request) if state.status == "completed" else ""  # only results need it
        normal = JsonBytes.of(self.rt.render.task(task, state, base_url))
        return normal if answer is None else _answer(request, answer, normal, self.rt.render, self.query_id)

    async def download(self, request: Incoming) -> Response:
        found = await self._found(request, retained=False)  # an old URL answers 403 (expired) until the task is evicted
        task, now = found.task, found.now
        await self.rt.delay(task.scenario, "download")
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
