"""The JSON bodies of the provider API, shaped by the contract and filled from a task.

`contracts` reads the document into `Node` trees once (`Contract.shapes`); here each tree is
compiled once (`mockserver.codegen`) into a function that fills it: a property takes its value
from the fake when it has a source (`id`, `status`, `results`, `created`, `message`...), else
the value the document fixes, or it is left out. So an answer has exactly the properties the
loaded contract defines, in the contract's words: the status is the phase's word in the
contract's vocabulary (or the word a scenario's step scripted), the video's URL goes where the
task schema puts it, a task that is a oneOf by status is rendered by the branch of its word.

Four kinds of answer:
- a task (the submit answer, every poll, a cancel that answers the task, an item of a list): the
  poll answer's function reads the task `t`, its state `s`, results `r`, error `e` and base URL
  `b` directly (`TASK_BINDINGS`); the submit answer, when its sources allow, is rendered once
  more at start-up into a %-template (markers for the values that change);
- a scripted error (a scenario's error answer): what the scenario wrote wins, the contract fills
  the rest, and the conformity check judges the result;
- the fake's own error (a body that breaks the contract, a missing key): the contract's pinned
  `type` and `code` win over the fake's words, so a dialect keeps its own codes (a context's
  `WEAK` set names the values that give way like that);
- a page of tasks, and what a cancel or delete answers.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from typing import Any

from contracts import Contract, ContractError
from contracts._protocol import TaskShape, status_node
from contracts._shape import Node
from contracts.ids import IdMaker
from mockserver.codegen import OMIT, WEAK, Verbatim, compile_node
from mockserver.errors import STATUS_TYPES, ApiError
from mockserver.lifecycle import State, ended_at
from mockserver.media import Media
from mockserver.responses import JsonResponse
from mockserver.scenarios import TERMINAL, UNSET
from mockserver.state.task import Task

__all__ = ["OMIT", "WEAK", "Renderer", "Verbatim"]


class _Whole(dict):
    """A value rendered already (not `dict` itself: generated functions rebuild only plain dicts)."""


_quote = json.encoder.encode_basestring  # the JSON string of a str, as the json module writes it
_ENCODE = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode
_MARK = re.compile(r'"@@mock:(\w+)@@"')
_FILLS = {  # the JSON text of each value of the submit answer that changes, from the task `t` and estimate `e`
    "id": "q(t.id)",
    "created": "str(t.created)",
    "model": "q(t.model)",
    "estimated_time": "str(e)",
    "credits_reserved": "enc(number(t.scenario.credits_reserved))",
    "can_cancel": "('true' if t.scenario.cancellable else 'false')",
}
# Sources the submit answer's template can hold: those above, and those a new task always has.
_URL_SOURCES = frozenset({"self_url", "cancel_url", "content_url"})
_VARYING = frozenset({"video_duration", "seconds", "duration", "size", "width", "height", "prompt", *_URL_SOURCES})
_TEMPLATED = frozenset({*_FILLS, "status", "progress", "results", "result_url", "error", "error_message", "error_code",
                        "user_group"})  # fmt: skip

Fill = Callable[[dict[str, Any]], Any]

# The poll answer's sources as expressions of the task `t`, its state `s`, results `r`, error `e`
# and base URL `b`: the function rendering it reads them directly, without a context dict.
TASK_BINDINGS = {
    "id": "t.id",
    "model": "(t.model or None)",
    "status": "(s.word or WORD[s.phase])",
    "progress": "s.progress",
    "created": "t.created",
    "results": "r",
    "result_url": "URL(r)",
    "error": "e",
    "error_message": "(e['message'] if e else None)",
    "error_code": "(e.get('code') if e else None)",
    "credits_reserved": "t.scenario.credits_reserved",
    "user_group": "'default'",
    "estimated_time": "t.scenario.estimated_time(t.scenario.submit[0])",
    "can_cancel": "(s.phase not in TERMINAL and t.scenario.cancellable)",
    "video_duration": "NUMBER(t.seconds)",
    "seconds": "NUMBER(t.seconds)",
    "duration": "NUMBER(t.seconds)",
    "size": "f'{t.width}x{t.height}'",
    "width": "t.width",
    "height": "t.height",
    "prompt": "PROMPT(t.request)",
    "request": "t.request",
    "started_at": "STARTED(t, s)",
    "completed_at": "ENDED(t, s)",
    "expires_at": "EXPIRES(t, s)",
    "self_url": "(b + ROUTES['query'](t.id))",
    "cancel_url": "(b + ROUTES['cancel'](t.id))",
    "content_url": "(b + ROUTES['content'](t.id))",
}


def _id_maker(contract: Contract) -> IdMaker:
    """Task ids shaped like the contract's `id` (a uuid, a pattern, a prefix), else today's."""
    shapes = contract.shapes
    node = shapes.task.find("id") or shapes.created.find("id")
    try:
        return IdMaker.from_schema(node.schema if node is not None else None)
    except ValueError as exc:
        raise ContractError(
            f"{contract.at(node.pointer if node else '')}: the fake cannot make task ids: {exc}"
        ) from None


def _number(value: float) -> float | int:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _first_url(results: Any) -> str | None:
    if not results:
        return None
    first = results[0]
    return first if isinstance(first, str) else first.get("url") if isinstance(first, dict) else None


def _sources(node: Node) -> set[str]:
    found = {node.source} if node.source else set()
    for _, child in node.properties:
        found |= _sources(child)
    if node.items is not None:
        found |= _sources(node.items)
    return found


class Renderer:
    def __init__(self, contract: Contract, media: Media) -> None:
        shapes = contract.shapes
        self.shapes = shapes
        self.media = media
        self.ids = _id_maker(contract)
        self.sample_id = self.ids.make(1757165031, random.Random(0).getrandbits)  # for the start-up checks
        self.vocabulary = shapes.vocabulary
        self.words = dict(self.vocabulary.canonical)
        self.first_status = self.words["queued"]
        body = contract.submit.body
        routes = {kind: op.path_for for kind, op in shapes.operations.items() if kind in ("query", "cancel", "content")}
        self.routes = routes
        progress = [node for shape in shapes.tasks for _, node in shape.node.walk() if node.source == "progress"]
        fraction = bool(progress) and all(node.maximum is not None and node.maximum <= 1 for node in progress)
        names = {
            "TERMINAL": TERMINAL,
            "WORD": self.words,
            "URL": _first_url,
            "NUMBER": _number,
            "PROMPT": (lambda request: body.value(request, "prompt")) if body is not None else (lambda request: None),
            "STARTED": self._started,
            "ENDED": self._ended,
            "EXPIRES": self._expires,
            "ROUTES": routes,
            "E_REQUEST": {},
        }
        bindings = dict(TASK_BINDINGS)
        if fraction:
            bindings["progress"] = "(s.progress / 100)"
        has_model = body is not None and "model" in body.roles
        if contract.submit.model_field is not None or (
            has_model and (body.roles["model"][0] in body.defaults or "model" in body.role_defaults)  # type: ignore[union-attr]
        ):
            bindings["model"] = "t.model"  # always there: the request's, or the contract's default
        for kind in ("cancel", "content"):
            if kind not in shapes.operations:
                bindings[f"{kind}_url"] = "None"  # the contract has no such operation: no URL to give
        self._tasks: dict[str, Callable[..., Any]] = {}
        self._task_default: Callable[..., Any] | None = None
        for shape in shapes.tasks:
            render = compile_node(shape.node, bindings, "t, s, r, e, b", **names)
            if shape.words is None or self._task_default is None:
                self._task_default = render
            for word in shape.words or ():
                self._tasks[word] = render
        self._created = compile_node(shapes.created)
        self._callback: Callable[..., Any] | None = None  # a documented delivery body (None: the task)
        spec = shapes.callbacks
        if spec is not None and spec.body is not None:
            words = spec.event_words or {}
            event = {"event": "EVENT.get(s.phase, EVENT_OTHER)", "webhook_id": "w", "task": "TASK(t, s, b)"}
            self._callback = compile_node(
                spec.body, {**bindings, **event}, "t, s, r, e, b, w", **names, EVENT=words,
                EVENT_OTHER=next(iter(words.values()), None), TASK=self._whole_task,
            )  # fmt: skip
        used = set().union(*(_sources(shape.node) for shape in shapes.tasks)) | _sources(shapes.created)
        # what of the request a task keeps: the fields its answers echo (None: nothing; all of it for `request`)
        self.echoes: frozenset[str] | None = frozenset(source[8:] for source in used if source.startswith("request:"))
        if "prompt" in used and body is not None and "prompt" in body.roles:
            self.echoes |= {body.roles["prompt"][0]}
        if "request" in used and body is not None:
            self.echoes = frozenset(body.properties) | self.echoes
        self.echoes = self.echoes or None
        self.needs_base_url = bool(_URL_SOURCES & used)
        self._errors: dict[str, dict[str, Fill]] = {}
        self._error_media = shapes.error_media
        compiled: dict[str, Fill] = {}  # statuses that share an error schema share its function
        for (operation_id, status_code), node in shapes.errors.items():
            if node.properties or node.types:
                if node.pointer not in compiled:
                    compiled[node.pointer] = compile_node(node)
                self._errors.setdefault(operation_id, {})[status_code] = compiled[node.pointer]
        self.invalid_status = shapes.invalid_status
        # Where the contract's errors have a shape of their own (not {"error": {...}}), an error it
        # does not document (a 409, an unknown route) takes the shape most of its errors have.
        counts: dict[str, int] = {}
        for node in shapes.errors.values():
            if node.properties or node.types:
                counts[node.pointer] = counts.get(node.pointer, 0) + 1
        common = max(counts, key=counts.__getitem__, default=None)
        nodes = {node.pointer: node for node in shapes.errors.values()}
        own_shape = common is not None and (nodes[common].find("error") or Node("")).kind == "object"
        self._fallback = compiled[common] if common is not None and not own_shape else None
        self._fallback_media = next(
            (self._error_media[key] for key, node in shapes.errors.items() if node.pointer == common),
            "application/json",
        ).split(";")[0]
        self._page = compile_node(shapes.page.node) if shapes.page is not None else None
        self._outcomes = {
            kind: compile_node(outcome.node) for kind, outcome in shapes.outcomes.items() if outcome.node is not None
        }
        self._outcome_tasks = frozenset(
            kind for kind, outcome in shapes.outcomes.items() if outcome.node is not None and status_node(outcome.node)
        )
        self._created_json = self._template() if self._templated(shapes.created) else None

    # The pieces of a task

    @staticmethod
    def _started(task: Task, state: State) -> int | None:
        if state.phase == "queued":
            return None
        starts = task.scenario.starts_at or 0.0
        ended = ended_at(task, state)
        if ended is not None and ended < starts:
            return None  # it ended (cancelled, failed) before it ever started
        return int(task.created_at + starts)

    @staticmethod
    def _ended(task: Task, state: State) -> int | None:
        ended = ended_at(task, state)
        return None if ended is None else int(task.created_at + ended)

    @staticmethod
    def _expires(task: Task, state: State) -> int | None:
        ended = ended_at(task, state) if state.phase == "succeeded" else None
        return None if ended is None else int(task.created_at + ended + task.scenario.result_url_ttl)

    def word(self, state: State) -> str:
        """The status word a task in this state answers with."""
        return state.word or self.words[state.phase]

    def results(self, task: Task, state: State, base_url: str) -> list[Any] | None:
        if state.phase != "succeeded" or state.results is None:
            return None
        if state.results is not UNSET:
            return Verbatim(state.results)
        return [
            {
                "url": f"{base_url}/files/{task.id}.mp4",
                "content_type": "video/mp4",
                "width": task.width,
                "height": task.height,
                "duration": _number(task.seconds),
            }
        ]

    def task(self, task: Task, state: State, base_url: str) -> dict[str, Any]:
        """The task as its scenario says it is now, as a poll sees it."""
        error = state.error if state.error is not None and state.phase in ("failed", "cancelled") else None
        if self._tasks:  # a oneOf by status: the branch of its word
            render = self._tasks.get(state.word or self.words[state.phase], self._task_default)
        else:
            render = self._task_default
        return render(task, state, self.results(task, state, base_url), error, base_url)  # type: ignore[misc]

    def _whole_task(self, task: Task, state: State, base_url: str) -> dict[str, Any]:
        """The task inside a documented callback envelope, as a poll renders it (a dict of its own
        kind, which the envelope's function takes as it is)."""
        return _Whole(self.task(task, state, base_url))

    def callback(self, task: Task, state: State, base_url: str, webhook_id: str) -> Any:
        """What a callback delivery for this state carries: the contract's documented body, else
        the task as a poll sees it."""
        if self._callback is None:
            return self.task(task, state, base_url)
        error = state.error if state.error is not None and state.phase in ("failed", "cancelled") else None
        return self._callback(task, state, self.results(task, state, base_url), error, base_url, webhook_id)

    def shape(self, state: State) -> TaskShape:
        return self.shapes.shape_for(self.word(state))

    # The submit answer

    def _constants(self) -> dict[str, Any]:
        """What every new task is, in the submit answer: values the contract may pin otherwise."""
        constants = {
            "status": self.first_status,
            "progress": 0,
            "results": None,
            "result_url": None,
            "error": None,
            "error_message": None,
            "error_code": None,
            "user_group": "default",
        }
        return {**constants, WEAK: frozenset([*constants, "can_cancel"])}

    def _context(self, task: Task, estimated_time: int, base_url: str) -> dict[str, Any]:
        """The submit answer's values for a new task."""
        values = {
            "id": task.id,
            "created": task.created,
            "model": task.model or None,
            "estimated_time": estimated_time,
            "credits_reserved": task.scenario.credits_reserved,
            "video_duration": _number(task.seconds),
            "seconds": _number(task.seconds),
            "duration": _number(task.seconds),
            "size": f"{task.width}x{task.height}",
            "width": task.width,
            "height": task.height,
            "request": task.request,
            "prompt": self.shapes.submit.body.value(task.request or {}, "prompt") if self.shapes.submit.body else None,
            **{f"request:{name}": value for name, value in (task.request or {}).items()},
        }
        if base_url or self.needs_base_url:
            values.update({f"{kind}_url": base_url + route(task.id) for kind, route in self.routes.items()})
            values["self_url"] = values.pop("query_url")
        return {**self._constants(), **values, "can_cancel": task.scenario.cancellable}

    def _templated(self, node: Node) -> bool:
        """Whether the submit answer can be a template: every value that changes from task to task
        is one of `_FILLS` (sources the context has no value for are the document's constants),
        and a time is a number."""
        found = {source for source in _sources(node) if source in _VARYING or source.startswith("request")}
        created = [child for _, child in node.walk() if child.source == "created"]
        return not found and all(child.kind != "string" for child in created)

    def _template(self) -> Callable[[Task, int], bytes]:
        marked = {name: f"@@mock:{name}@@" for name in _FILLS}
        sample = {**self._constants(), **marked}
        text = _ENCODE(self._created(sample)).replace("%", "%%")
        filled = ", ".join(_FILLS[name] for name in _MARK.findall(text))
        namespace = {"q": _quote, "enc": _ENCODE, "number": _number}
        source = f"def created_json(t, e):\n    return (T % ({filled}{',' if filled else ''})).encode('utf-8')\n"
        exec(compile(source, "<render submit answer>", "exec"), {**namespace, "T": _MARK.sub("%s", text)}, namespace)  # noqa: S102
        return namespace["created_json"]  # type: ignore[return-value]

    def created_json(self, task: Task, estimated_time: int, base_url: str = "") -> bytes:
        """`created()`, already encoded: the same JSON, made faster on the submit path where a
        template can hold it (the changing values filled into the rendered answer)."""
        if self._created_json is not None:
            return self._created_json(task, estimated_time)
        return _ENCODE(self.created(task, estimated_time, base_url)).encode("utf-8")

    def created(self, task: Task, estimated_time: int, base_url: str = "") -> dict[str, Any]:
        """The answer to a successful submit, as the contract shapes it."""
        return self._created(self._context(task, estimated_time, base_url))

    # Pages and outcomes

    def page(self, items: list[dict[str, Any]], values: dict[str, Any]) -> dict[str, Any]:
        """A page of tasks (already rendered), with the paging values (has_more, next...)."""
        assert self._page is not None
        return self._page({**values, "items": Verbatim(items)})

    def outcome(self, kind: str, task: Task, state: State, base_url: str) -> Any:
        """What a cancel or delete answers: the task as it is now, where the answer is a task;
        else the documented object (id, deleted...); None for no body."""
        if kind in self._outcome_tasks:  # the answer is the task
            return self.task(task, state, base_url)
        if kind not in self._outcomes:
            return None
        context = {**self._context(task, 0, base_url), "deleted": kind == "delete", "status": self.word(state)}
        return self._outcomes[kind](context)

    # Errors

    def error_body(self, operation_id: str | None, status: int, fields: dict[str, Any], *, own: bool) -> Any:
        """An error answer of an operation as the contract shapes it for `status`; None when the
        contract documents no body for it (the fake's own shape is used then). `fields` are
        message, type, code, param; `own` says they are the fake's words, not a scenario's."""
        fill = self._error_fill(operation_id, status)
        if fill is None:
            return None
        context = {
            "type": STATUS_TYPES.get(status, "invalid_request_error"),
            **fields,
            "http_status": status,
            "reason": _REASONS.get(status, "Error"),
        }
        context["error_message"], context["error_code"] = (
            context.get("message"),
            context.get("code"),
        )  # an error that is a string
        context[WEAK] = frozenset(context) if own else frozenset() if "type" in fields else frozenset({"type"})
        return fill(context)

    def _error_fill(self, operation_id: str | None, status: int) -> Fill | None:
        documented = self._errors.get(operation_id or "") or {}
        key = str(status)
        return documented.get(key) or documented.get(f"{key[0]}XX") or documented.get("default") or self._fallback

    def _media(self, operation_id: str | None, status: int) -> str:
        key, op = str(status), operation_id or ""
        media = self._error_media
        found = media.get((op, key)) or media.get((op, f"{key[0]}XX")) or media.get((op, "default"))
        return found.split(";")[0].strip() if found else self._fallback_media

    def _documents(self, operation_id: str, status: int) -> bool:
        documented = self._errors.get(operation_id) or {}
        return str(status) in documented or f"{str(status)[0]}XX" in documented or "default" in documented

    def any_error(self, error: ApiError) -> JsonResponse:
        """An error of no operation (an unknown route, a wrong method) in the provider's shape."""
        if self._fallback is None:
            return error.response()
        return self.error(None, error)

    def error(self, operation_id: str | None, error: ApiError) -> JsonResponse:
        """The fake's own error on a provider route, in the contract's words where it has them. A
        bad request (400: not JSON, the wrong Content-Type) to an operation that documents 422 but
        no 400 gets the 422."""
        if (
            error.status == 400
            and operation_id is not None
            and not self._documents(operation_id, 400)
            and self._documents(operation_id, 422)
        ):
            error = ApiError(422, error.message, code=error.code, param=error.param, headers=error.headers)
        fields = {"message": error.message, "type": error.type, "code": error.code, "param": error.param}
        body = self.error_body(operation_id, error.status, fields, own=True)
        if body is None:
            return JsonResponse(error.body(), status_code=error.status, headers=error.headers)
        return JsonResponse(
            body, status_code=error.status, headers=error.headers, media_type=self._media(operation_id, error.status)
        )

    def scripted_error(
        self, operation_id: str, status: int, error: dict[str, Any], headers: dict[str, str]
    ) -> JsonResponse:
        """A scenario's error answer: what it wrote, with what the contract requires filled in."""
        body = self.error_body(operation_id, status, error, own=False)
        if body is None:
            return JsonResponse(
                ApiError(status, **{"message": "", **error}).body(), status_code=status, headers=headers
            )
        return JsonResponse(body, status_code=status, headers=headers, media_type=self._media(operation_id, status))


_REASONS = {
    400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 409: "Conflict", 410: "Gone", 413: "Payload Too Large", 415: "Unsupported Media Type",
    416: "Range Not Satisfiable", 422: "Unprocessable Entity", 429: "Too Many Requests", 500: "Internal Server Error",
    502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout",
}  # fmt: skip
