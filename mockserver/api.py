"""The provider's API as the fake plays it, one handler per operation the contract documents.

Submit:   bearer key -> headers -> body (JSON or a form) -> contract -> scenario -> its answer for
          this key's n-th submission -> task stored (when the answer creates one) -> answer.
Query:    bearer key -> headers, query parameters -> task (404 once it is gone) -> the
          scenario's answer for this poll, or the state at the clock's now.
Content:  task -> succeeded with the fake's own video and not expired -> its bytes (or a still).
Cancel:   task -> running and cancellable -> cancelled (else the contract's refusal).
Delete:   task -> cancelled if it ran, then gone.
List:     the key's tasks, newest first, paged and filtered as the contract documents.
Download: `/files/{id}.mp4`, the result URL a task's `results` carry (no key, as a CDN's).
"""

from __future__ import annotations

import asyncio
import json
import logging
from bisect import bisect_left
from collections.abc import Awaitable, Callable
from time import monotonic
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from contracts import Operation
from contracts._callbacks import FILTER_WORDS
from contracts._shape import ROLES
from mockserver import lifecycle
from mockserver.errors import ApiError
from mockserver.faults import FaultyResponse
from mockserver.forms import is_form, parse_form
from mockserver.incoming import Incoming
from mockserver.intake import bearer_key, read_body, read_json, whole_number
from mockserver.journal import ERROR_CODE_KEY, FAULT_KEY, NOW_KEY, SCENARIO_KEY, TASK_KEY, key_id
from mockserver.matching import SCENARIO_HEADER
from mockserver.media import STILL_TYPES, Clip, clip_spec, serve
from mockserver.render import Renderer
from mockserver.responses import JsonBytes, JsonResponse
from mockserver.runtime import Runtime
from mockserver.scenarios import UNSET, Answer
from mockserver.state import Found, Submission
from mockserver.state.task import Task, gone

Handler = Callable[[Incoming], Awaitable[Response]]
LIST_WINDOW = 1000  # a key's newest tasks a list operation pages through
CALLBACK_NAMES = frozenset(ROLES["callback_url"])  # a request field that asks for callbacks, by its name
logger = logging.getLogger("mockserver")


def _matches(task: dict[str, Any], wanted: dict[str, str]) -> bool:
    """Whether a task answer has each value a list's filters ask for (as query text: true, 5, queued)."""
    for name, text in wanted.items():
        value = task.get(name)
        if (json.dumps(value) if isinstance(value, bool) or value is None else str(value)) != text:
            return False
    return True


def _facts(fields: Any) -> Callable[[dict[str, Any]], tuple[Any, Any, tuple[Any, ...]]]:
    """A function, generated once per kind of request body, that reads what the fake needs of a
    body: (model, audio, (duration, size, resolution, aspect ratio)), each from its role's field
    (one object down, such as `input.duration`, when the role is there) or its default."""

    def read(role: str, default: Any) -> str:
        path = fields.roles.get(role) if fields is not None else None
        if path is None:
            return repr(default)
        if len(path) == 1:
            return f"b.get({path[0]!r}, {default!r})"
        return f"_in(b, {path[0]!r}, {path[1]!r}, {fields.role_defaults.get(role, default)!r})"

    clip = ", ".join(read(role, None) for role in ("duration", "size", "resolution", "aspect_ratio"))
    source = f"def facts(b):\n    return {read('model', '')}, {read('audio', True)}, ({clip},)\n"
    namespace: dict[str, Any] = {"_in": _nested}
    exec(compile(source, "<request facts>", "exec"), namespace)  # noqa: S102
    return namespace["facts"]


def _nested(body: dict[str, Any], outer: str, inner: str, default: Any) -> Any:
    value = body.get(outer)
    return value.get(inner, default) if isinstance(value, dict) else default


def _short(value: Any) -> bool:
    """A value worth remembering a clip by: a number, or a short string (not a list, not an object)."""
    return value is None or isinstance(value, (int, float)) or (isinstance(value, str) and len(value) <= 64)


def _answer(
    request: Incoming, answer: Answer, normal: Response | None, render: Renderer, operation_id: str
) -> Response:
    """The scripted answer: the normal response or the scripted error, delivered with its fault."""
    if answer.status == 200:
        response = normal if normal is not None else Response(b"")
    else:
        error = answer.error or {}
        response = render.scripted_error(operation_id, answer.status, error, dict(answer.headers))
        if "code" in error:
            request.scope[ERROR_CODE_KEY] = str(error["code"])
    if answer.fault is None:
        return response
    request.scope[FAULT_KEY] = answer.fault.kind
    return FaultyResponse(response, answer.fault)


class ProviderApi:
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        contract = runtime.contract
        shapes = contract.shapes
        self.shapes = shapes
        self.operations = shapes.operations
        self.submit_operation, self.query_operation = contract.submit, contract.query
        self.submit_id, self.query_id = contract.submit.operation_id, contract.query.operation_id
        self.invalid_submit = runtime.render.invalid_status[self.submit_id]
        self.invalid_query = runtime.render.invalid_status[self.query_id]
        self.task_parameter = shapes.task_parameter
        self.created_status = shapes.created_status
        self.body = contract.submit.body
        self.render = runtime.render
        self.ids = runtime.ids
        self.echoes = runtime.render.echoes
        self.submission_ids = None if self.ids.kind == "default" else self.ids  # None: today's ids, made the fast way
        # the statuses of each refusal, as the contract documents them: (not possible now, gone by)
        refusal = shapes.refusal
        self.refusals = {
            kind: (refusal(op, ("409", "404", "400")), refusal(op, ("410", "404", "403"))) if kind == "content"
            else (refusal(op, ("409", "400", "422")), 0)
            for kind, op in self.operations.items() if kind in ("content", "cancel", "delete")
        }  # fmt: skip
        # What a body says for the model, audio and the clip, read by one function per kind of body
        bodies = [
            contract.submit.body,
            *(b for _, b in contract.submit.branches.values()),
            *(b for _, b in contract.submit.forms.values()),
        ]
        self._facts = {
            id(None): _facts(None),
            **{id(fields): _facts(fields) for fields in bodies if fields is not None},
        }
        # path parameters that name the model (Replicate's {model_owner}/{model_name}), joined by '/'
        self.model_in_path = tuple(
            name
            for name in contract.submit.path_parameters
            if any(w in name.lower() for w in ("model", "owner", "name"))
        )
        self.needs_base_url = runtime.render.needs_base_url or shapes.location
        self.metrics = runtime.metrics  # None: off
        self.poll_intervals = runtime.metrics.poll_intervals if runtime.metrics is not None else None
        self.callbacks = shapes.callbacks  # None: the contract documents none
        self._clips: dict[tuple[Any, ...], tuple[float, int, int]] = {}  # what a request's values make
        self._resolve = lambda schema: contract.resolve(schema, "")[0]  # a form field's schema, $ref followed
        self.id_hint = (
            f"Task ids look like {runtime.render.sample_id!r} and come from "
            f"{self.submit_operation.method} {self.submit_operation.route}."
        )

    def routes(self) -> list[BaseRoute]:
        handlers: dict[str, Handler] = {
            "submit": self.submit, "query": self.query, "content": self.content, "cancel": self.cancel,
            "delete": self.delete, "list": self.list,
        }  # fmt: skip
        found: list[BaseRoute] = [
            Route(op.route, self.route(handlers[kind], op), methods=[op.method]) for kind, op in self.operations.items()
        ]
        found.append(Route("/files/{task_id}.mp4", self.route(self.download, None, "task_id"), methods=["GET", "HEAD"]))
        return found

    def route(
        self, handler: Handler, op: Operation | None, parameter: str | None = None
    ) -> Callable[[Request], Awaitable[Response]]:
        """A Starlette endpoint for a handler that reads an `Incoming`; for an operation of the
        contract, its errors in the contract's words."""
        parameter = parameter or (op.path_parameters[-1] if op is not None and op.path_parameters else None)

        async def endpoint(request: Request) -> Response:
            try:
                task_id = request.path_params.get(parameter) if parameter else None
                return await handler(Incoming(request.scope, request.receive, task_id))
            except ApiError as error:
                if op is None:
                    raise
                return self.render.error(op.operation_id, error)

        return endpoint

    def error(self, handler: Handler, error: ApiError) -> Response:
        """The fake's own error for a request the fast path served."""
        return self.render.error(self.submit_id if handler == self.submit else self.query_id, error)

    def _check(self, request: Incoming, op: Operation) -> None:
        """The header and query parameters the contract documents for an operation."""
        violation = op.check_headers(request._headers) if op.headers else None
        if violation is None and (request.query_string or op.requires_query):
            violation = op.check_query(request.query_params())
        if violation is not None:
            raise ApiError(self.render.invalid_status[op.operation_id], violation.message, param=violation.param)

    # Submit

    async def _read_body(self, request: Incoming) -> tuple[Any, Any]:
        """The request body as the contract describes it, and its fields (defaults, roles)."""
        op = self.submit_operation
        limit = self.rt.settings.max_body_bytes
        if op.forms:
            content_type = request.header(b"content-type")
            kind = is_form(content_type)
            if kind in op.forms:
                fields = op.forms[kind][1]
                body = parse_form(content_type or "", await read_body(request, limit), fields.schema, self._resolve)
                violation = op.check_form(kind, body)
                if violation is not None:
                    raise ApiError(self.invalid_submit, violation.message, param=violation.param)
                return body, fields
            kind_of_type = (content_type or "").split(";")[0].strip().lower()
            if not op.json_body or kind_of_type not in ("application/json", ""):
                documented = [
                    k for k in ("multipart/form-data", "application/x-www-form-urlencoded") if is_form(k) in op.forms
                ]
                documented = (["application/json"] if op.json_body else []) + documented
                listed = " or ".join(repr(k) for k in documented)
                raise ApiError(400, f"Unsupported Content-Type {str(content_type)[:80]!r}; send the body as {listed}.")
        body = await read_json(request, limit)
        violation = op.check_body(body)
        if violation is not None:
            raise ApiError(self.invalid_submit, violation.message, param=violation.param)
        return body, (self.body if op.model_field is None else op.shape_of(body))

    def _clip(self, asked: tuple[Any, ...]) -> tuple[float, int, int]:
        """(seconds, width, height) of the clip a request asks for (its duration, size, resolution
        and aspect ratio), worked out once per distinct ask of short values."""
        try:
            known = self._clips.get(asked)
        except TypeError:  # a list or an object: worked out, not kept
            return clip_spec(*asked)
        if known is None:
            known = clip_spec(*asked)
            if len(self._clips) < 4096 and all(_short(value) for value in asked):
                self._clips[asked] = known
        return known

    def _callback_asked(self, body: dict[str, Any], fields: Any) -> tuple[str | None, frozenset[str] | None]:
        """Where a request asks for its callbacks, and for which phases (None: the contract's)."""
        url = fields.value(body, "callback_url")
        if not isinstance(url, str) or not url:
            return None, None
        asked = fields.value(body, "callback_events")
        if not isinstance(asked, list):
            return url, None
        return url, frozenset().union(*(FILTER_WORDS.get(str(word).lower(), frozenset()) for word in asked))

    def _note_callback(self, body: dict[str, Any]) -> None:
        """Say once on the console that a callback URL was asked for and will not be called."""
        self.rt.callbacks.noted = True
        name = next(name for name in CALLBACK_NAMES if name in body)
        logger.warning(
            "A submit carries %r, but %s documents no callbacks: none is delivered (docs/callbacks.md says how a "
            "contract documents them). Said once.", name, self.rt.contract.path,
        )  # fmt: skip

    async def submit(self, request: Incoming) -> Response:
        api_key = bearer_key(request, self.rt.accepted_keys)
        op = self.submit_operation
        if op.headers or op.requires_query:
            self._check(request, op)
        body, fields = await self._read_body(request)
        if fields is not None and fields.defaults:
            body = {**fields.defaults, **body}  # the request as the provider reads it
        model, audio, asked = self._facts[id(fields)](body)
        aspect_ratio = asked[3]
        from_path = self.model_in_path and (fields is None or "model" not in fields.roles)
        if from_path:
            match = op.path_regex.match(request.path)  # the model named by the path (owner/name)
            model = "/".join(match.group(name) for name in self.model_in_path) if match else model
        seconds, width, height = self._clip(asked)
        derived = str(aspect_ratio) if aspect_ratio is not None else ("9:16" if height > width else "16:9")
        selector = self.rt.selector
        if self.rt.unshared:
            await self.rt.share()
        header = selector.header(request.header(SCENARIO_HEADER))
        if header is not None:
            fallback, fallback_by = None, "default"
        else:  # rules read the prompt, model and aspect ratio wherever this contract keeps them
            seen = body if fields is None or (fields.plain and not from_path and aspect_ratio is not None) else {
                "prompt": fields.value(body, "prompt"), "model": model, "aspect_ratio": derived
            }  # fmt: skip
            fallback, fallback_by = selector.fallback(api_key, seen)
        echoed = None if self.echoes is None else {k: v for k, v in body.items() if k in self.echoes}
        callback_url = callback_events = None
        if self.callbacks is not None and fields is not None:
            callback_url, callback_events = self._callback_asked(body, fields)
        elif not self.rt.callbacks.noted and not CALLBACK_NAMES.isdisjoint(body):
            self._note_callback(body)
        submitted = await self.rt.state.submit(
            # positional: a dozen keyword arguments cost more than the rest of the call on this path
            Submission(
                key_id(api_key),
                str(model),
                derived,
                bool(audio),
                header,
                fallback,
                fallback_by,
                seconds,
                width,
                height,
                echoed,
                self.submission_ids,
                callback_url,
                callback_events,
            )
        )
        scenario = submitted.scenario
        request.scope[SCENARIO_KEY] = scenario.name
        request.scope[NOW_KEY] = submitted.now
        if self.metrics is not None and submitted.task is not None:
            self.metrics.task_created(scenario.name, submitted.task.model)
        if scenario.latency:
            await self.rt.delay(scenario, "submit")
        answer = scenario.submit_answer(submitted.count)
        normal = None
        if submitted.task is not None:
            task = submitted.task
            request.scope[TASK_KEY] = task.id
            estimate = scenario.estimated_time(answer)
            if self.needs_base_url:
                base_url = self.rt.base_url(request)
                normal = JsonBytes(self.render.created_json(task, estimate, base_url), self.created_status)
            else:
                base_url = ""
                normal = JsonBytes(self.render.created_json(task, estimate), self.created_status)
            if self.shapes.location:
                normal.raw_headers.append((b"location", (base_url + self.render.routes["query"](task.id)).encode()))
            if callback_url is not None:
                await self.rt.callbacks.submitted(task, base_url or self.rt.base_url(request))
        return _answer(request, answer, normal, self.render, self.submit_id)

    # Query

    async def _found(self, request: Incoming, *, count: bool = False, retained: bool = True) -> Found:
        """The task a client asks for; 404 once its scenario makes it disappear, a client deleted
        it, or (`retained`) once it is past the task retention, evicted or not yet."""
        task_id = request.task_id or ""
        request.scope[TASK_KEY] = task_id
        found = await self.rt.state.poll(task_id, count=count, retained=retained)
        if found is None or found.gone:
            raise self.rt.unknown_task(task_id, self.id_hint)
        request.scope[SCENARIO_KEY] = found.task.scenario.name
        request.scope[NOW_KEY] = found.now
        return found

    async def query(self, request: Incoming) -> Response:
        bearer_key(request, self.rt.accepted_keys)
        op = self.query_operation
        if request.query_string or op.requires_query or op.headers:
            self._check(request, op)
        poll = request.method != "HEAD"  # a HEAD peeks: it must not use up a held step
        found = await self._found(request, count=poll)
        task = found.task
        since = found.since
        if since >= 0 and (keyed := self.poll_intervals) is not None:  # keyed.observe(key id, since), in place
            child = keyed.children.get(task.key_id) or keyed.add(task.key_id)
            child.seen = monotonic()
            child.counts[bisect_left(child.bounds, since)] += 1
            child.sum += since
        if task.scenario.latency:
            await self.rt.delay(task.scenario, "poll")
        answer = task.scenario.poll_answer(task.polls) if poll else None
        if answer is not None and answer.status != 200:
            return _answer(request, answer, None, self.render, self.query_id)
        state = lifecycle.task_state(task, found.now, poll=poll)
        base_url = self.rt.base_url(request) if state.phase == "succeeded" or self.needs_base_url else ""
        normal = JsonBytes.of(self.render.task(task, state, base_url))
        return normal if answer is None else _answer(request, answer, normal, self.render, self.query_id)

    # Content, cancel, delete

    def _video(self, task: Task, now: float, refusals: tuple[int, int]) -> None:
        """Refuse a task whose video cannot be had, with the first status of `refusals` while it is
        not done (or has another's results), the second once its result expired."""
        state = lifecycle.task_state(task, now, poll=False)
        if state.phase != "succeeded" or state.results is not UNSET:
            done = self.render.words["succeeded"]
            raise ApiError(
                refusals[0],
                f"Task {task.id} has no video here yet: it is {self.render.word(state)}, and its video is served once "
                f"it is {done} (with the fake's own video).",
                code="not_ready",
            )
        expires = lifecycle.result_expires_at(task)
        if expires is not None and now >= expires:
            raise ApiError(
                refusals[1],
                f"The video of task {task.id} expired {now - expires:.0f} s ago: it serves for "
                f"{task.scenario.result_url_ttl:.0f} s of scenario time after the task completes.",
                code="url_expired",
            )

    async def _clip_of(self, task: Task, still: str | None = None) -> Clip:
        """The task's clip (or a still of it, of that media type). The first time one is asked for,
        it is made in a worker thread (tens of milliseconds of pure Python, which yields the
        interpreter every few milliseconds): other requests go on being served meanwhile."""
        media = self.rt.media
        if still is not None:
            kept = media.kept_still(task.width, task.height, still)
            if kept is not None:
                return kept
            return await asyncio.to_thread(media.still, task.width, task.height, still)
        kept = media.kept(task.seconds, task.width, task.height, task.generate_audio)
        if kept is not None:
            return kept
        return await asyncio.to_thread(media.clip, task.seconds, task.width, task.height, task.generate_audio)

    async def content(self, request: Incoming) -> Response:
        op = self.operations["content"]
        bearer_key(request, self.rt.accepted_keys)
        self._check(request, op)
        found = await self._found(request, retained=False)
        shape = self.shapes.content_shape
        assert shape is not None
        variant = request.query_params().get(shape.variant) if shape.variant else None
        self._video(found.task, found.now, self.refusals["content"])
        await self.rt.delay(found.task.scenario, "download")
        if self.shapes.is_still(variant):
            return serve(request, await self._clip_of(found.task, shape.still_type(variant, STILL_TYPES)))
        return serve(request, await self._clip_of(found.task), shape.media["video"])

    async def _outcome(self, request: Incoming, kind: str, change: Callable[[Task, float], object]) -> Response:
        op = self.operations[kind]
        bearer_key(request, self.rt.accepted_keys)
        self._check(request, op)
        await self._found(request)  # 404 for a task that is gone
        changed = await self.rt.change_task(request.task_id or "", kind, change, self.refusals[kind][0], client=True)
        state = lifecycle.task_state(changed.task, changed.now, poll=False)
        base_url = self.rt.base_url(request)
        outcome = self.shapes.outcomes[kind]
        body = self.render.outcome(kind, changed.task, state, base_url)
        if body is None:
            return Response(status_code=outcome.status)
        return JsonResponse(body, status_code=outcome.status, media_type=outcome.media.split(";")[0])

    async def cancel(self, request: Incoming) -> Response:
        return await self._outcome(request, "cancel", lifecycle.cancel)

    async def delete(self, request: Incoming) -> Response:
        return await self._outcome(request, "delete", lifecycle.delete)

    # List

    async def list(self, request: Incoming) -> Response:
        op = self.operations["list"]
        api_key = bearer_key(request, self.rt.accepted_keys)
        self._check(request, op)
        page = self.shapes.page
        assert page is not None
        params = request.query_params()
        invalid = self.render.invalid_status[op.operation_id]
        limit = whole_number(params.get(page.limit, "")) if page.limit else None
        limit = min(max(limit if limit is not None else page.default_limit, 1), page.max_limit)
        tasks, now = await self.rt.state.tasks_of(key_id(api_key), LIST_WINDOW)
        if page.order and params.get(page.order, "").lower() in ("asc", "ascending", "oldest"):
            tasks.reverse()
        base_url = self.rt.base_url(request)
        retention = self.rt.settings.task_retention
        live = [task for task in tasks if not gone(task, now, retention)]

        def render(task: Task) -> dict[str, Any]:
            return self.render.task(task, lifecycle.task_state(task, now, poll=False), base_url)

        shown: dict[str, dict[str, Any]] = {}  # task id -> its answer, for tasks rendered already
        wanted = {name: params[name] for name in page.filters if name in params}
        if wanted:  # filters compare what a client would read in each task
            shown = {task.id: body for task in live if _matches(body := render(task), wanted)}
            live = [task for task in live if task.id in shown]
        start = 0
        if page.cursor and params.get(page.cursor):
            cursor = params[page.cursor]
            start = next((index + 1 for index, task in enumerate(live) if task.id == cursor), -1)
            if start < 0:
                raise ApiError(
                    invalid, f"No task {cursor[:100]!r} to page after: '{page.cursor}' takes the last id of the page before.",
                    param=page.cursor,
                )  # fmt: skip
        elif page.offset and params.get(page.offset):
            start = whole_number(params[page.offset]) or 0
        elif page.page and params.get(page.page):
            start = max((whole_number(params[page.page]) or 1) - 1, 0) * limit
        items = [shown.get(task.id) or render(task) for task in live[start : start + limit]]
        has_more = len(live) > start + limit
        values: dict[str, Any] = {
            "has_more": has_more,
            "first_id": items[0].get("id") if items else None,
            "last_id": items[-1].get("id") if items else None,
            "total": len(live),
            "limit": limit,
            "offset": start,
        }
        following = live[start + limit - 1].id if has_more else None
        if page.next_is_url and following is not None and page.cursor:
            kept = {name: value for name, value in params.items() if name not in (page.cursor, page.offset, page.page)}
            values["next"] = base_url + op.route + "?" + urlencode({**kept, page.cursor: following})
        elif following is not None:
            values["next"] = following
        return JsonBytes.of(self.render.page(items, values))

    # The result URL

    async def download(self, request: Incoming) -> Response:
        found = await self._found(request, retained=False)  # an old URL answers 403 (expired) until the task is evicted
        task, now = found.task, found.now
        await self.rt.delay(task.scenario, "download")
        # as a storage service answers: not found, then forbidden. An early callback's video is
        # there when the callback says so: only the API's polls lag (callback-early).
        self._video(task, now + task.scenario.callbacks.early, (404, 403))
        return serve(request, await self._clip_of(task))
