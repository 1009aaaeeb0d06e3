"""The JSON bodies of the provider API, shaped by the contract and filled from a task.

`contracts` reads the document into `Node` trees once (`Contract.shapes`); here each tree is
compiled, once, into a function of a *context*: the values the fake supplies, by source name
(`id`, `status`, `results`, `credits_reserved`, `message`...). A property takes its value from
the context when it has a source there, else the value the document fixes (const, default,
first example, first enum value), else null or the smallest value of its type; an optional
property whose value would be null is left out, and one marked `x-mockserver-omit` always is.
So an answer has exactly the properties the loaded contract defines.

Three kinds of context:
- a task (the submit answer and every poll): values from the task, its state and scenario;
- a scripted error (a scenario's error answer, a failed task's `error`): what the scenario
  wrote wins, the contract fills the rest, and the conformity check judges the result;
- the fake's own error (a body that breaks the contract, a missing key): the contract's pinned
  `type` and `code` win over the fake's words, so a dialect keeps its own codes. (A context's
  `WEAK` set names the values that give way like that.)

The functions are generated as Python source at start-up (`compile_node`). The poll answer's
reads the task and its state directly (`TASK_BINDINGS`), without building a context; the submit
answer is rendered once more at start-up into a %-template (markers stand for the values that
change), so each submit only formats a string.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from contracts import Contract
from contracts._shape import ABSENT, Node
from mockserver.errors import STATUS_TYPES, ApiError
from mockserver.lifecycle import State
from mockserver.media import Media
from mockserver.responses import JsonResponse
from mockserver.scenarios import TERMINAL, UNSET
from mockserver.state.task import Task

_quote = json.encoder.encode_basestring  # the JSON string of a str, as the json module writes it
_ENCODE = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode
OMIT = object()  # a property left out of the answer
WEAK = "\x00weak"  # context key: the sources whose values give way to what the contract pins
_MARK = re.compile(r'"@@mock:(\w+)@@"')
_FILLS = {  # the JSON text of each value of the submit answer that changes, from the task `t` and estimate `e`
    "id": "q(t.id)",
    "created": "str(t.created)",
    "model": "q(t.model)",
    "estimated_time": "str(e)",
    "credits_reserved": "enc(number(t.scenario.credits_reserved))",
}

Fill = Callable[[dict[str, Any]], Any]


class Verbatim(list):  # type: ignore[type-arg]
    """Results a scenario scripted: sent as written."""


def _minimal(node: Node) -> Any:
    kind = node.kind
    if kind == "array":
        return []
    if kind == "string":
        return {"uri": "https://example.com/", "date-time": "1970-01-01T00:00:00Z"}.get(node.format or "", "")
    if kind in ("integer", "number"):
        return node.minimum if node.minimum is not None else 0
    if kind == "boolean":
        return False
    return None


# The poll answer's sources as expressions of the task `t`, its state `s`, results `r` and error
# `e`: the function rendering it reads them directly, without a context dict (the hot path).
TASK_BINDINGS = {
    "id": "t.id",
    "model": "t.model",
    "status": "s.status",
    "progress": "s.progress",
    "created": "t.created",
    "results": "r",
    "error": "e",
    "credits_reserved": "t.scenario.credits_reserved",
    "user_group": "'default'",
    "estimated_time": "t.scenario.estimated_time(t.scenario.submit[0])",
    "can_cancel": "s.status not in TERMINAL",
    "video_duration": "D",
}


def compile_node(
    node: Node, bindings: dict[str, str] | None = None, parameters: str = "c", **names: Any
) -> Callable[..., Any]:
    """A function of a context that gives this node's value (OMIT: leave the property out).

    The function is generated as Python source once, at start-up, and compiled: an answer is then
    built by straight-line code and dict displays, as fast as one written by hand for its shape.
    The rules, per property: a value from the context under its source wins, unless the source
    is WEAK in that context and the document pins a value (const, or an enum the value is not
    in); no value: the document's (const, default, first example, first enum value), an object
    built from its own properties, or null; an optional property whose value would be null is
    left out; a required non-nullable one gets the smallest value of its type.

    With `bindings` (source -> Python expression of `parameters`, with `names` in scope), the
    top-level function reads its values from those expressions instead of a context."""
    generator = _Generator()
    name = generator.function(node, whole=True, bindings=bindings, parameters=parameters)
    namespace: dict[str, Any] = {"A": ABSENT, "OMIT": OMIT, "WEAK": WEAK, "E": frozenset(), "Verbatim": Verbatim, **names}
    namespace["K"] = generator.constants
    exec(compile("\n".join(generator.lines), f"<render {node.pointer or '/'}>", "exec"), namespace)  # noqa: S102
    return namespace[name]  # type: ignore[no-any-return]


class _Generator:
    """Writes the Python source of the functions that render nodes (see `compile_node`)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.constants: list[Any] = []
        self.count = 0
        self.bindings: dict[str, str] | None = None

    def constant(self, value: Any) -> str:
        if value is None or isinstance(value, (bool, int)) or (isinstance(value, str) and len(value) < 200):
            return repr(value)
        self.constants.append(value)
        return f"K[{len(self.constants) - 1}]"

    def fresh(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def function(
        self, node: Node, *, whole: bool, bindings: dict[str, str] | None = None, parameters: str = "c"
    ) -> str:
        """A function of a context: the node's value (`whole`), or the object its properties
        build from that context (a scripted object, a result item)."""
        name = self.fresh("_render")
        body: list[str] = []
        outer, self.bindings = self.bindings, bindings
        result = self.value(node, body, 1) if whole else self.build(node, body, 1)
        self.bindings = outer
        head = [] if bindings is not None else ["    W = c.get(WEAK, E)"]
        self.lines += [f"def {name}({parameters}):", *head, *body, f"    return {result}", ""]
        return name

    @staticmethod
    def omittable(node: Node) -> bool:
        if node.required:
            return False
        if node.source is not None:
            return True
        return not _builds(node) and _fixed(node) is None

    def build(self, node: Node, out: list[str], depth: int) -> str:
        """Statements that build the object of a node's properties into a variable; its name."""
        pad = "    " * depth
        target = self.fresh("o")
        pending: list[str] = []
        started = False
        for key, child in node.properties:
            if child.omit:
                continue
            value = self.value(child, out, depth)
            if not self.omittable(child) and not started:
                pending.append(f"{key!r}: {value}")
                continue
            if not started:
                out.append(f"{pad}{target} = {{{', '.join(pending)}}}")
                started = True
            if self.omittable(child):
                out.append(f"{pad}if {value} is not OMIT:")
                out.append(f"{pad}    {target}[{key!r}] = {value}")
            else:
                out.append(f"{pad}{target}[{key!r}] = {value}")
        if not started:
            out.append(f"{pad}{target} = {{{', '.join(pending)}}}")
        return target

    def absent(self, node: Node, out: list[str], depth: int) -> str:
        """An expression (or a variable built by statements) for a node the context gives no value."""
        if _builds(node):
            return self.build(node, out, depth)
        fixed = _fixed(node)
        if fixed is None and not node.required:
            return "OMIT"
        return self.constant(fixed)

    def value(self, node: Node, out: list[str], depth: int) -> str:
        """Statements that put the node's value into a variable (or a plain expression); its name."""
        if node.source is None:
            return self.absent(node, out, depth)
        pad = "    " * depth
        var = self.fresh("v")
        source = repr(node.source)
        if self.bindings is not None:  # values read from expressions: always there, never weak
            if node.source not in self.bindings:
                return self.absent(node, out, depth)
            out.append(f"{pad}{var} = {self.bindings[node.source]}")
            out.append(f"{pad}if {var} is None:")
        else:
            out.append(f"{pad}{var} = c.get({source}, A)")
            pinned = []
            if node.const is not ABSENT:
                pinned.append(f"{source} in W")
            elif node.enum is not None:
                pinned.append(f"({source} in W and {var} not in {self.constant(tuple(node.enum))})")
            out.append(f"{pad}if {var} is A{''.join(' or ' + test for test in pinned)}:")
            branch: list[str] = []
            found = self.absent(node, branch, depth + 1)
            out += branch or []
            if found != var:
                out.append(f"{pad}    {var} = {found}")
            out.append(f"{pad}elif {var} is None:")
        if node.required:
            none = "None" if node.nullable else self.constant(_minimal(node))
        else:
            none = "OMIT"
        out.append(f"{pad}    {var} = {none}")
        if _builds(node):
            scripted = self.function(node, whole=False)
            out.append(f"{pad}elif type({var}) is dict:")
            out.append(f"{pad}    {var} = {scripted}({var})")
        if node.items is not None:
            item = self.function(node.items, whole=True)
            out.append(f"{pad}elif type({var}) is list:")
            out.append(f"{pad}    {var} = [{item}(i) for i in {var}]")
        if node.kind == "integer":
            out.append(f"{pad}elif type({var}) is float and {var}.is_integer():")
            out.append(f"{pad}    {var} = int({var})")
        return var


def _builds(node: Node) -> bool:
    """Whether a node with no value is built from its own properties."""
    return node.kind == "object" and bool(node.properties) and node.const is ABSENT


def _fixed(node: Node) -> Any:
    """What the document fixes for a node: const, else default, first example or first enum
    value, else null (nullable) or the smallest value of its type."""
    if node.const is not ABSENT:
        return node.const
    if node.fixed is not ABSENT:
        return node.fixed
    return None if node.nullable or node.kind == "object" else _minimal(node)


class Renderer:
    def __init__(self, contract: Contract, media: Media) -> None:
        shapes = contract.shapes
        self.media = media
        self._duration = media.clip_for("16:9", True).duration
        self._task = compile_node(shapes.task, TASK_BINDINGS, "t, s, r, e", TERMINAL=TERMINAL, D=self._duration)
        self._created = compile_node(shapes.created)
        statuses = [node.enum for node in (shapes.created.find("status"), shapes.task.find("status")) if node and node.enum]
        documented = statuses[0] if statuses else ("pending",)
        self.first_status = "pending" if "pending" in documented else documented[0]
        self._errors: dict[str, dict[str, Fill]] = {}
        compiled: dict[str, Fill] = {}  # statuses that share an error schema share its function
        for (operation_id, status_code), node in shapes.errors.items():
            if node.properties or node.types:
                if node.pointer not in compiled:
                    compiled[node.pointer] = compile_node(node)
                self._errors.setdefault(operation_id, {})[status_code] = compiled[node.pointer]
        self.invalid_status = shapes.invalid_status
        # the submit answer's template: markers for what changes, everything else as it renders
        marked = {name: f"@@mock:{name}@@" for name in ("id", "created", "model", "estimated_time", "credits_reserved")}
        text = _ENCODE(self._created({**self._task_context_constants(), **marked})).replace("%", "%%")
        filled = ", ".join(_FILLS[name] for name in _MARK.findall(text))
        namespace = {"q": _quote, "enc": _ENCODE, "number": _number}
        source = f"def created_json(t, e):\n    return (T % ({filled}{',' if filled else ''})).encode('utf-8')\n"
        exec(compile(source, "<render submit answer>", "exec"), {**namespace, "T": _MARK.sub("%s", text)}, namespace)  # noqa: S102
        self._created_json: Callable[[Task, int], bytes] = namespace["created_json"]  # type: ignore[assignment]

    def _task_context_constants(self) -> dict[str, Any]:
        """What a new task is, in the submit answer: values the contract may pin otherwise."""
        constants = {
            "status": self.first_status,
            "progress": 0,
            "results": None,
            "error": None,
            "user_group": "default",
            "can_cancel": True,
            "video_duration": self._duration,
        }
        return {**constants, WEAK: frozenset(constants)}

    def created_json(self, task: Task, estimated_time: int) -> bytes:
        """`created()`, already encoded: the same JSON, made faster on the submit path (a
        template of the rendered answer, its changing values filled in)."""
        return self._created_json(task, estimated_time)

    def created(self, task: Task, estimated_time: int) -> dict[str, Any]:
        """The answer to a successful submit, as the contract shapes it."""
        return self._created(
            {
                **self._task_context_constants(),
                "id": task.id,
                "created": task.created,
                "model": task.model,
                "estimated_time": estimated_time,
                "credits_reserved": task.scenario.credits_reserved,
            }
        )

    def results(self, task: Task, state: State, base_url: str) -> list[Any] | None:
        if state.status != "completed" or state.results is None:
            return None
        if state.results is not UNSET:
            return Verbatim(state.results)
        clip = self.media.clip_for(task.aspect_ratio, task.generate_audio)
        return [
            {
                "url": f"{base_url}/files/{task.id}.mp4",
                "content_type": "video/mp4",
                "width": clip.width,
                "height": clip.height,
                "duration": clip.duration,
            }
        ]

    def task(self, task: Task, state: State, base_url: str) -> dict[str, Any]:
        """`GET /v1/tasks/{task_id}`: the task as its scenario says it is now."""
        error = state.error if state.error is not None and state.status in ("failed", "cancelled") else None
        return self._task(task, state, self.results(task, state, base_url), error)  # type: ignore[no-any-return]

    def error_body(self, operation_id: str, status: int, fields: dict[str, Any], *, own: bool) -> Any:
        """An error answer of an operation as the contract shapes it for `status`; None when the
        contract documents no body for it (the fake's own shape is used then). `fields` are
        message, type, code, param; `own` says they are the fake's words, not a scenario's."""
        documented = self._errors.get(operation_id)
        if documented is None:
            return None
        key = str(status)
        fill = documented.get(key) or documented.get(f"{key[0]}XX") or documented.get("default")
        if fill is None:
            return None
        context = {"type": STATUS_TYPES.get(status, "invalid_request_error"), **fields, "http_status": status}
        context[WEAK] = frozenset(context) if own else frozenset() if "type" in fields else frozenset({"type"})
        return fill(context)

    def error(self, operation_id: str, error: ApiError) -> JsonResponse:
        """The fake's own error on a provider route, in the contract's words where it has them."""
        fields = {"message": error.message, "type": error.type, "code": error.code, "param": error.param}
        body = self.error_body(operation_id, error.status, fields, own=True)
        return JsonResponse(error.body() if body is None else body, status_code=error.status, headers=error.headers)

    def scripted_error(self, operation_id: str, status: int, error: dict[str, Any], headers: dict[str, str]) -> JsonResponse:
        """A scenario's error answer: what it wrote, with what the contract requires filled in."""
        body = self.error_body(operation_id, status, error, own=False)
        if body is None:
            body = ApiError(status, **{"message": "", **error}).body()
        return JsonResponse(body, status_code=status, headers=headers)


def _number(value: float) -> float | int:
    return int(value) if isinstance(value, float) and value.is_integer() else value
