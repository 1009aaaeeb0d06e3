"""What a fake needs to know of a task API, read from its contract once.

`Shapes(contract)` finds the operations of the protocol (`submit` and `query`, and the `content`,
`cancel`, `delete` and `list` operations the contract documents: by `x-mockserver-operation`,
else by operationId, else by their shape beside the query), the shapes of their answers
(`Node` trees, `contracts._shape`), the status vocabulary (`contracts._vocabulary`), where the
video's URL goes in a task (`results`, `output`, `assets.video`, `url`, a marked property, or
nowhere when a content operation serves it) and, for a task that is a oneOf by status, one
shape per status word.

Every problem is a `ContractError` naming the document, the JSON pointer and what to change.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from contracts._callbacks import Callbacks, mark_event, read_callbacks
from contracts._document import json_content
from contracts._shape import Node, Resolver, escape, fits
from contracts._vocabulary import Vocabulary, build

if TYPE_CHECKING:
    from contracts._contract import Contract, Operation

KINDS = ("submit", "query", "content", "cancel", "delete", "list")
# operationIds that say what an operation is (the word anywhere in it, any case)
_ID_WORDS = {
    "submit": ("create", "submit", "generate", "predict", "start"),
    "query": ("get", "retrieve", "status", "fetch", "read", "poll", "describe"),
    "content": ("content", "download"),
    "cancel": ("cancel", "abort", "stop"),
    "delete": ("delete", "remove"),
    "list": ("list", "search"),
}
# Names of a task's property that hold the video, in the order they are looked for.
RESULT_NAMES = ("results", "output", "outputs", "result", "video_url", "videos", "video", "assets", "url", "uri",
                "file_url", "download_url")  # fmt: skip
_URL_NAMES = ("url", "uri", "video", "video_url", "href", "download_url", "file_url")  # inside an object holding it
_PAGE_ITEMS = ("data", "items", "results", "tasks", "videos", "generations", "predictions", "jobs")
_PARAMS = {
    "limit": ("limit", "page_size", "pageSize", "per_page", "perPage", "max_results", "maxResults", "size"),
    "cursor": ("after", "cursor", "starting_after", "startingAfter", "page_token", "pageToken", "next_token", "continuation_token"),
    "offset": ("offset", "skip"),
    "page": ("page",),
    "order": ("order", "sort", "sort_order", "sortOrder", "direction"),
}  # fmt: skip
_STILL_WORDS = ("thumb", "image", "poster", "preview", "sprite", "still", "cover")


@dataclass
class TaskShape:
    """The task answer for some status words (all of them, unless the task is a oneOf by status)."""

    words: frozenset[str] | None
    node: Node
    place: tuple[str, ...] | None  # path to the node that holds the video's URL (None: not in the task)


@dataclass
class Page:
    """A list operation: its answer and the query parameters that page and filter it."""

    node: Node
    items: str  # the answer's property that holds the page of tasks
    limit: str | None = None
    cursor: str | None = None
    offset: str | None = None
    page: str | None = None
    order: str | None = None
    filters: tuple[str, ...] = ()  # query parameters named like a task property (status, model)
    default_limit: int = 20
    max_limit: int = 100
    next_is_url: bool = False  # `next`/`previous` are URLs of the next page (else cursors)


@dataclass
class Content:
    """A content operation: the variant parameter and which of its values is the video."""

    variant: str | None = None
    video: str | None = None
    media: dict[str, str] = field(default_factory=dict)  # "video" -> the media type the video is answered as
    stills: tuple[str, ...] = ()  # the picture types the contract documents (image/webp, image/jpeg...)

    def still_type(self, variant: str | None, makeable: Iterable[str]) -> str:
        """The documented picture type to answer a still variant with, among those the fake can
        make (a sprite sheet is a JPEG where that is documented), else PNG."""
        possible = [media for media in self.stills if media in set(makeable)]
        if variant is not None and "sprite" in variant.lower() and "image/jpeg" in possible:
            return "image/jpeg"
        return possible[0] if possible else "image/png"


@dataclass
class Outcome:
    """The answer of a cancel or delete: its status and shape (None: no body)."""

    status: int
    node: Node | None
    media: str = "application/json"


class Shapes:
    """The operations of a contract and the shapes of their answers."""

    def __init__(self, contract: Contract) -> None:
        self.contract = contract
        self.resolver = Resolver(contract)
        self.operations = self._operations()
        self.submit = self.operations["submit"]
        self.query = self.operations["query"]
        self.content: Operation | None = self.operations.get("content")
        self.cancel: Operation | None = self.operations.get("cancel")
        self.delete: Operation | None = self.operations.get("delete")
        self.list: Operation | None = self.operations.get("list")
        for kind in ("query", "content", "cancel", "delete"):
            op = self.operations.get(kind)
            if op is not None and not op.path_parameters:
                raise self._error(
                    f"/paths/{escape(op.path)}",
                    f"the {kind} operation's path has no {{task id}} parameter: give it one "
                    f"(for example {op.path.rstrip('/')}/{{id}}) or do not mark it x-mockserver-operation: {kind}",
                )
        self.task_parameter = self.query.path_parameters[-1]  # the last one: the task's
        documented = [s for s in ("200", "201", "202") if s in self.submit.responses]
        self.created_status = int(documented[0]) if documented else 200
        self.created = self._answer(self.submit, "the submit operation", created=True)
        self.location = "location" in self._headers(self.submit, str(self.created_status))
        self.tasks = self._task_shapes()
        self.task = self.tasks[0].node
        self.status_name = next(name for name, node in self.task.properties if node.source == "status")
        self.vocabulary = self._vocabulary()
        self.result_url_field = "url"  # the property of a result object that holds its URL
        for shape in self.tasks:
            shape.place = self._place_results(shape.node)
        self._place_results(self.created)  # a new task has no result yet: what holds it is null
        self._result_items()
        self.errors: dict[tuple[str, str], Node] = {}
        self.error_media: dict[tuple[str, str], str] = {}  # the JSON media type an error is documented as
        self.invalid_status: dict[str, int] = {}
        for operation in self.operations.values():
            for status in operation.responses:
                if status[:1] in "45" or status == "default":
                    self.errors[(operation.operation_id, status)] = self.error_node(operation, status)
                    response = self.contract.follow(operation.responses[status], "")[0]
                    content = response.get("content") if isinstance(response, dict) else None
                    self.error_media[(operation.operation_id, status)] = json_content(content)[0]
            self.invalid_status[operation.operation_id] = self.refusal(operation, ("422", "400"), otherwise=400)
        self.page = self._page() if self.list is not None else None
        self.content_shape = self._content() if self.content is not None else None
        self.outcomes = {kind: self._outcome(op) for kind in ("cancel", "delete") if (op := self.operations.get(kind))}
        self.request_names = self.submit.body.properties if self.submit.body is not None else frozenset()
        self._echo()
        self.callbacks: Callbacks | None = None  # read by `finish`, once the submit body's branches are known

    def finish(self) -> None:
        """What needs the submit body's branches (a oneOf by model): the callbacks."""
        self.callbacks = read_callbacks(self.contract, self.submit, self.resolver, self._error)
        if self.callbacks is not None and self.callbacks.body is not None:
            body = self.callbacks.body
            if body.pointer in {shape.node.pointer for shape in self.tasks} | {self.task.pointer}:
                self.callbacks.body = None  # the task itself: rendered as a poll renders it
            else:
                self._place_results(body)
                self.callbacks.event_words = mark_event(body)

    # Finding operations

    def _error(self, pointer: str, message: str) -> Exception:
        return self.resolver.error(pointer, message)

    def _operations(self) -> dict[str, Operation]:
        ops = list(self.contract.operations.values())
        found: dict[str, Operation] = {}
        for op in ops:
            value = self.contract.spec_of(op).get("x-mockserver-operation")
            if value is None:
                continue
            if value not in KINDS:
                raise self._error(
                    _pointer(op), f"x-mockserver-operation is {value!r}; it must be one of {', '.join(KINDS)}"
                )
            if value in found:
                raise self._error("/paths", f"2 operations say x-mockserver-operation: {value}; one may")
            found[value] = op
        taken = {id(op) for op in found.values()}
        if "query" not in found:
            found["query"] = self._guess_query(ops, taken)
            taken.add(id(found["query"]))
        if "submit" not in found:
            found["submit"] = self._guess_submit(ops, taken, found["query"])
            taken.add(id(found["submit"]))
        for kind in ("content", "cancel", "delete", "list"):
            if kind not in found:
                guessed = self._guess(kind, [op for op in ops if id(op) not in taken], found["query"])
                if guessed is not None:
                    found[kind] = guessed
                    taken.add(id(guessed))
        return found

    def _answer_properties(self, op: Operation) -> set[str]:
        for status in ("200", "201", "202"):
            found = self._answer_schema(op, status)
            if found is not None:
                resolved = self.contract.resolve(found[0], found[1])[0]
                if isinstance(resolved, dict):
                    names = set(resolved.get("properties") or {})
                    for key in ("oneOf", "anyOf"):
                        for branch in resolved.get(key) or []:
                            part = self.contract.resolve(branch, found[1])[0]
                            names |= set(part.get("properties") or {}) if isinstance(part, dict) else set()
                    return names
        return set()

    def _guess_query(self, ops: list[Operation], taken: set[int]) -> Operation:
        by_id = self.contract.operations.get("getTask")
        if by_id is not None and id(by_id) not in taken:
            return by_id
        candidates = [
            op for op in ops
            if id(op) not in taken and op.method == "GET" and op.path_parameters and {"status", "state"} & self._answer_properties(op)
        ]  # fmt: skip
        if candidates:
            # the shortest path (a content route lives below the query's), a get-like operationId first
            return min(candidates, key=lambda op: (op.path.count("/"), not _says(op, "query")))
        raise self._error(
            "/paths",
            "no query operation found: mark the GET that returns a task with 'x-mockserver-operation: query' "
            "(or give it operationId getTask, or a {task id} path and an answer with a 'status')",
        )

    def _guess_submit(self, ops: list[Operation], taken: set[int], query: Operation) -> Operation:
        by_id = self.contract.operations.get("createVideoGeneration")
        if by_id is not None and id(by_id) not in taken:
            return by_id
        task_parameter = "{" + query.path_parameters[-1] + "}"
        candidates = [
            op for op in ops
            if id(op) not in taken and op.method == "POST" and task_parameter not in op.path and "id" in self._answer_properties(op)
        ]  # fmt: skip
        if candidates:
            return min(candidates, key=lambda op: not _says(op, "submit"))
        raise self._error(
            "/paths",
            "no submit operation found: mark the POST that creates a task with 'x-mockserver-operation: submit' "
            "(or give it operationId createVideoGeneration, or an answer with an 'id')",
        )

    def _guess(self, kind: str, ops: list[Operation], query: Operation) -> Operation | None:
        """An optional operation by its shape beside the query (and its operationId's words)."""
        base = query.path
        parent = base.rsplit("/", 1)[0]
        for op in ops:
            below = op.path.startswith(base + "/") and op.path_parameters[-1:] == query.path_parameters[-1:]
            same = _template(op.path) == _template(base)
            if (
                kind == "content"
                and op.method == "GET"
                and below
                and (
                    op.path.rsplit("/", 1)[1].lower() in ("content", "download", "video", "file", "media", "result")
                    or _says(op, "content")
                )
            ):
                return op
            if (
                kind == "cancel"
                and op.method in ("POST", "PUT", "PATCH")
                and (
                    (below and op.path.rsplit("/", 1)[1].lower() in ("cancel", "abort"))
                    or (op.path_parameters and _says(op, "cancel"))
                )
            ):
                return op
            if kind == "delete" and op.method == "DELETE" and (same or (op.path_parameters and _says(op, "delete"))):
                return op
            if (
                kind == "list"
                and op.method == "GET"
                and not op.path_parameters
                and (_template(op.path) == _template(parent) or _says(op, "list"))
            ) and self._answer_schema(op, "200") is not None:
                return op
        return None

    def _answer_schema(self, op: Operation, status: str) -> tuple[Any, str] | None:
        response = op.responses.get(status)
        if response is None:
            return None
        base = f"{_pointer(op)}/responses/{status}"
        response, base = self.contract.follow(response, base)
        if not isinstance(response, dict):
            return None
        key, media = json_content(response.get("content"))
        schema = media.get("schema")
        if schema is None:
            return None
        return schema, f"{base}/content/{escape(key)}/schema"

    def _headers(self, op: Operation, status: str) -> set[str]:
        response = self.contract.follow(op.responses.get(status) or {}, "")[0]
        headers = response.get("headers") if isinstance(response, dict) else None
        return {str(name).lower() for name in headers} if isinstance(headers, dict) else set()

    def refusal(self, op: Operation, preferred: tuple[str, ...], otherwise: int | None = None) -> int:
        """The status the contract gives a refusal of this kind: the first of `preferred` the
        operation documents, else `otherwise` (else the first preferred), undocumented."""
        for status in preferred:
            if status in op.responses:
                return int(status)
        return otherwise if otherwise is not None else int(preferred[0])

    # The answers

    def _answer(self, op: Operation, what: str, *, created: bool) -> Node:
        found = next((self._answer_schema(op, s) for s in ("200", "201", "202") if self._answer_schema(op, s)), None)
        if found is None:
            raise self._error(f"{_pointer(op)}/responses", f"{what} documents no JSON answer for 200, 201 or 202")
        node = self.resolver.node(*found)
        if node.kind != "object":
            raise self._error(node.pointer, f"the answer of {what} must be an object (a task), not {node.kind}")
        if created and not any(child.source == "id" for _, child in node.properties):
            raise self._error(node.pointer, f"the task schema of {what} has no 'id' property")
        return node

    def _task_shapes(self) -> list[TaskShape]:
        """The query's task: one shape, or one per status word for a oneOf whose branches each pin
        their status (a const or an enum)."""
        found = self._answer_schema(self.query, "200")
        if found is None:
            self._answer(self.query, "the query operation", created=False)  # raises: no JSON answer
            raise AssertionError("unreachable")
        schema, pointer = self.contract.resolve(*found)
        kind = "oneOf" if isinstance(schema, dict) and schema.get("oneOf") else "anyOf"
        branches = schema.get(kind) if isinstance(schema, dict) else None
        shapes = []
        if isinstance(branches, list) and len(branches) > 1:
            beside = {k: v for k, v in schema.items() if k not in ("oneOf", "anyOf", "discriminator")}
            for index, branch in enumerate(branches):
                where = f"{pointer}/{kind}/{index}"
                part, part_pointer = self.contract.resolve(branch, where)
                if not isinstance(part, dict):
                    break
                merged = self.contract._merge(beside, part, where) if beside else part
                node = self.resolver.node(merged, part_pointer)
                status = status_node(node)
                words = [word for word, _ in status.words()] if status is not None else []
                if not words:
                    break  # not a oneOf by status: read as one schema
                shapes.append(TaskShape(frozenset(words), node, None))
            else:
                return shapes
        node = self._answer(self.query, "the query operation", created=False)
        if not any(child.source == "status" for _, child in node.properties):
            raise self._error(node.pointer, "the task schema of the query operation has no 'status' property")
        return [TaskShape(None, node, None)]

    def _vocabulary(self) -> Vocabulary:
        documented: list[tuple[str, str]] = []
        explicit: dict[str, str] = {}
        explicit_at = ""
        for node in [shape.node for shape in self.tasks] + [self.created]:
            status = status_node(node)
            if status is None:
                continue
            documented += status.words()
            mapping = status.extensions.get("x-mockserver-status")
            if mapping is not None:
                if not isinstance(mapping, dict) or not all(
                    isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()
                ):
                    raise self._error(
                        status.pointer, "x-mockserver-status must map each status word to a phase (WORD: phase)"
                    )
                explicit.update(mapping)
                explicit_at = status.pointer
        if not documented and not explicit:
            return Vocabulary.ours()
        return build(documented, explicit, explicit_at, self._error)

    def _place_results(self, node: Node) -> tuple[str, ...] | None:
        """Where the video's URL goes in this task: a node marked result_url (or results) wins,
        else the first of RESULT_NAMES the task has (for an object, its URL-named property), else
        nowhere. The holder is given its source; the objects around it hold their value only
        once the task has its result."""
        holder: Node | None
        marked = [(path, n) for path, n in node.walk() if n.source in ("result_url", "results")]
        if len(marked) > 1:
            raise self._error(marked[1][1].pointer, "the video's URL is marked twice in this task; mark one place")
        if marked:
            path, holder = marked[0]
        else:
            found = next(((name, node.find(name)) for name in RESULT_NAMES if node.find(name) is not None), None)
            if found is None:
                return None
            name, holder = found
            path = (name,)
            assert holder is not None
            if holder.kind == "object":
                inner = next(((key, holder.find(key)) for key in _URL_NAMES if holder.find(key) is not None), None)
                if inner is None or inner[1] is None or not fits("result_url", inner[1]):
                    if name in ("results", "output", "outputs", "result"):
                        raise self._error(
                            holder.pointer,
                            f"the fake cannot place the video in '{name}': give it a string (URL) property named one of "
                            f"{', '.join(_URL_NAMES)}, or mark one 'x-mockserver-role: result_url'",
                        )
                    return None
                path, holder = (name, inner[0]), inner[1]
            if holder.kind == "array":
                holder.source = "results"
            elif fits("result_url", holder):
                holder.source = "result_url"
            elif name in ("results", "output", "outputs", "result"):
                raise self._error(
                    holder.pointer,
                    f"'{name}' cannot hold the video: it must be a URL string, a list (of URL strings or of objects "
                    "with a 'url'), or an object with a URL property",
                )
            else:
                return None
        if holder.source == "results":
            self._check_results(holder)
        parent = node
        for name in path[:-1]:
            child = parent.find(name)
            assert child is not None
            child.gate = True
            parent = child
        return path

    def _check_results(self, results: Node) -> None:
        if results.kind != "array" or results.items is None:
            raise self._error(results.pointer, "'results' must be an array (of URL strings or of objects with a URL)")
        item = results.items
        if item.kind in ("string", "any"):
            item.source = "url"
            return
        if item.kind != "object" or not any(child.source == "url" for _, child in item.properties):
            raise self._error(
                item.pointer,
                "the fake cannot fill these results: an item must be a URL string or an object with a 'url' "
                "property (or one marked 'x-mockserver-value: url')",
            )

    def _result_items(self) -> None:
        for shape in self.tasks:
            holder = self.holder(shape)
            if holder is not None and holder.source == "results" and holder.items is not None:
                self.result_url_field = next((name for name, c in holder.items.properties if c.source == "url"), "url")

    def holder(self, shape: TaskShape) -> Node | None:
        """The node that holds the video's URL in a task shape."""
        if shape.place is None:
            return None
        node: Node | None = shape.node
        for name in shape.place:
            node = node.find(name) if node is not None else None
        return node

    def shape_for(self, word: str) -> TaskShape:
        """The task shape for a status word (the first shape when none names it)."""
        return next((shape for shape in self.tasks if shape.words is None or word in shape.words), self.tasks[0])

    def result_url(self, task: Any) -> str | None:
        """The video's URL in a task answer as a client reads it (None when it has none there)."""
        if not isinstance(task, dict):
            return None
        shape = self.shape_for(str(task.get(self.status_name)))
        value: Any = task
        for name in shape.place or ():
            value = value.get(name) if isinstance(value, dict) else None
        if isinstance(value, list):
            value = value[0] if value else None
        if isinstance(value, dict):
            value = value.get(self.result_url_field)
        return value if isinstance(value, str) else None

    def _echo(self) -> None:
        """A task property named like a request field, that the fake has no value of its own for,
        echoes the request (Replicate's `input`); an object named `request` echoes it whole."""
        for shape in [*self.tasks, TaskShape(None, self.created, None)]:
            for name, child in shape.node.properties:
                if child.source is not None or child.gate or (shape.place and shape.place[0] == name):
                    continue
                if name in self.request_names:
                    child.source = f"request:{name}"
                elif name in ("request", "parameters", "params") and child.kind in ("object", "any"):
                    child.source = "request"

    def error_node(self, op: Operation, status: str) -> Node:
        found = self._answer_schema(op, status)
        if found is None:
            return Node(f"{_pointer(op)}/responses/{status}")
        return self.resolver.node(*found)

    # The other operations

    def _page(self) -> Page:
        op = self.list
        assert op is not None
        found = self._answer_schema(op, "200")
        if found is None:
            raise self._error(f"{_pointer(op)}/responses", "the list operation documents no JSON answer for 200")
        node = self.resolver.node(*found)
        arrays = [(name, child) for name, child in node.properties if child.kind == "array" and child.items is not None]
        items = next((name for name, child in arrays if child.items and child.items.find("id") is not None), None)
        items = items or next((name for name in _PAGE_ITEMS if any(name == n for n, _ in arrays)), None)
        if items is None:
            raise self._error(
                node.pointer,
                "the list operation's answer has no array of tasks: give it one (data, items, results...) whose items are tasks",
            )
        holder = node.find(items)
        assert holder is not None
        holder.source = "items"
        page = Page(node, items)
        names = {parameter.name: parameter for parameter in op.query}
        for role, candidates in _PARAMS.items():
            setattr(page, role, next((name for name in candidates if name in names), None))
        if page.limit is not None:
            schema = names[page.limit].schema
            if isinstance(schema.get("default"), int):
                page.default_limit = schema["default"]
            if isinstance(schema.get("maximum"), int):
                page.max_limit = schema["maximum"]
        task_names = {name for shape in self.tasks for name, _ in shape.node.properties}
        used = {getattr(page, role) for role in _PARAMS}
        page.filters = tuple(name for name in names if name in task_names and name not in used)
        following = node.find("next") or next((c for _, c in node.properties if c.source == "next"), None)
        page.next_is_url = following is not None and (
            following.format in ("uri", "url") or "url" in str(following.schema.get("description", "")).lower()
        )
        return page

    def _content(self) -> Content:
        op = self.content
        assert op is not None
        content = Content()
        variant = next((p for p in op.query if p.name in ("variant", "type", "kind", "asset")), None)
        if variant is not None:
            content.variant = variant.name
            spec = self.contract.spec_of(op)
            schema: Any = next(
                (self.contract.resolve(self.contract._deref(p).get("schema", {}), "")[0]
                 for p in spec.get("parameters", []) if self.contract._deref(p).get("name") == variant.name),
                {},
            )  # fmt: skip
            values = [v for v in (schema.get("enum") or []) if isinstance(v, str)] if isinstance(schema, dict) else []
            default = schema.get("default") if isinstance(schema, dict) else None
            content.video = next(
                (v for v in values if "video" in v.lower()), default if isinstance(default, str) else None
            )
        response = self.contract.follow(op.responses.get("200") or {}, "")[0]
        media = list((response.get("content") or {}) if isinstance(response, dict) else {})
        videos = [m for m in media if m.startswith("video/")] or [m for m in media if "octet" in m or "binary" in m]
        stills = [m for m in media if m.startswith("image/")]
        content.media = {"video": videos[0] if videos else "video/mp4"}
        content.stills = tuple(m.split(";")[0].strip() for m in stills)
        return content

    def is_still(self, variant: str | None) -> bool:
        """Whether a content variant asks for a picture rather than the video."""
        return variant is not None and any(word in variant.lower() for word in _STILL_WORDS)

    def _outcome(self, op: Operation) -> Outcome:
        for status in ("200", "202", "204", "201"):
            if status in op.responses:
                found = self._answer_schema(op, status)
                response = self.contract.follow(op.responses[status], "")[0]
                key = json_content(response.get("content") if isinstance(response, dict) else None)[0]
                return Outcome(int(status), self.resolver.node(*found) if found else None, key)
        return Outcome(204, None)


def status_node(node: Node) -> Node | None:
    """The property of a task that holds its status (`status`, `state`, or one marked so)."""
    return next((child for _, child in node.properties if child.source == "status"), None)


def _says(op: Operation, kind: str) -> bool:
    words = re.findall(r"[a-z]+", re.sub(r"([A-Z])", r" \1", op.operation_id).lower())
    return any(word in words for word in _ID_WORDS[kind])


def _template(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path.rstrip("/"))


def _pointer(op: Operation) -> str:
    return f"/paths/{escape(op.path)}/{op.method.lower()}"
