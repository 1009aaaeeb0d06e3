"""What a fake needs to know of a task API, read from its contract once.

`Shapes(contract)` finds the submit and query operations, the request fields that matter (the
model, the aspect ratio, audio on or off, an input video) and, for every answer the fake gives,
a `Node` tree: the schema resolved ($ref followed, allOf merged, a oneOf with null read as
"nullable") down to what a renderer needs: which properties, in which order, which of them it
fills from the task (`source`) and which value the document itself fixes (`const`, `default`,
`examples`, the first `enum` value).

Names tell most of it; where they cannot, small extensions do (docs/own-contract.md):
    x-mockserver-operation: submit | query        on an operation
    x-mockserver-role: model | aspect_ratio | audio | input_video    on a request body property
    x-mockserver-value: <source>                  on an answer property (one of SOURCES)
    x-mockserver-omit: true                       on an optional answer property the fake leaves out

Every problem is a `ContractError` naming the document, the JSON pointer and what is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from contracts._document import ContractError, json_content

if TYPE_CHECKING:
    from contracts._contract import Contract, Operation

# Where the fake can take an answer's value from. A property of one of these names takes it
# from there unless the document pins a const; `x-mockserver-value` names one for any property.
SOURCES = frozenset(
    {
        # the task
        "id", "object", "type", "model", "status", "progress", "created", "results", "error",
        "credits_reserved", "user_group", "estimated_time", "can_cancel", "video_duration",
        # one result
        "url", "content_type", "width", "height", "duration",
        # an error body
        "message", "code", "param", "http_status",
    }
)  # fmt: skip
ROLES = {
    "model": ("model",),
    "aspect_ratio": ("aspect_ratio",),
    "audio": ("generate_audio", "audio", "with_audio", "enable_audio"),
    "input_video": ("video_url", "video", "video_urls", "input_video"),
}
EXTENSIONS = frozenset({"x-mockserver-operation", "x-mockserver-role", "x-mockserver-value", "x-mockserver-omit"})
ABSENT = object()  # a node that fixes no value
_TYPE_ORDER = ("object", "array", "string", "integer", "number", "boolean")


def escape(part: str) -> str:
    return str(part).replace("~", "~0").replace("/", "~1")


@dataclass
class Node:
    """One schema, resolved, as a renderer fills it."""

    pointer: str
    types: tuple[str, ...] = ()  # JSON types allowed, "null" excluded
    nullable: bool = False
    source: str | None = None  # where the value comes from (by name or x-mockserver-value)
    const: Any = ABSENT
    fixed: Any = ABSENT  # default, first example or first enum value
    enum: tuple[Any, ...] | None = None
    required: bool = False  # as a property of its parent
    omit: bool = False
    properties: tuple[tuple[str, Node], ...] = ()
    items: Node | None = None
    minimum: float | None = None
    format: str | None = None
    schema: dict[str, Any] = field(default_factory=dict, repr=False)  # resolved, as written

    @property
    def kind(self) -> str:
        if self.properties or self.types[:1] == ("object",):
            return "object"
        return self.types[0] if self.types else "any"

    def find(self, name: str) -> Node | None:
        return next((node for key, node in self.properties if key == name), None)


@dataclass
class Body:
    """A request body: one schema, or one per model (a oneOf chosen by `model`)."""

    pointer: str
    schema: dict[str, Any]  # resolved: refs followed, allOf (and a branch's shared part) merged
    properties: frozenset[str] = frozenset()
    defaults: dict[str, Any] = field(default_factory=dict)
    roles: dict[str, str] = field(default_factory=dict)  # role -> field name


class Shapes:
    """The submit and query operations of a contract and the shapes of their answers."""

    def __init__(self, contract: Contract) -> None:
        self.contract = contract
        self.result_url_field = "url"  # the property of a result object that holds its URL
        self.submit = self._operation("submit")
        self.query = self._operation("query")
        if "{" not in self.query.path:
            raise self._error(_paths(self.query), "the query operation's path has no {task id} parameter")
        self.task_parameter = self.query.path.rpartition("{")[2].partition("}")[0]  # the last one: the task's
        self.created_status = 200 if "200" in self.submit.responses or "201" not in self.submit.responses else 201
        self.created = self._answer(self.submit, "the submit operation", created=True)
        self.task = self._answer(self.query, "the query operation", created=False)
        self.errors: dict[tuple[str, str], Node] = {}
        for operation in (self.submit, self.query):
            for status in operation.responses:
                if status[:1] in "45" or status == "default":
                    self.errors[(operation.operation_id, status)] = self.error_node(operation, status)
        self.invalid_status = {op.operation_id: self._invalid_status(op) for op in (self.submit, self.query)}

    # Finding things

    def _error(self, pointer: str, message: str) -> ContractError:
        return ContractError(f"{self.contract.at(pointer)}: {message}")

    def _operation(self, role: str) -> Operation:
        operations = list(self.contract.operations.values())
        marked = [op for op in operations if self.contract.spec_of(op).get("x-mockserver-operation") == role]
        for op in operations:
            value = self.contract.spec_of(op).get("x-mockserver-operation")
            if value is not None and value not in ("submit", "query"):
                raise self._error(
                    _pointer(op), f"x-mockserver-operation is {value!r}; it must be 'submit' or 'query'"
                )
        if len(marked) > 1:
            raise self._error("/paths", f"{len(marked)} operations say x-mockserver-operation: {role}; one may")
        if marked:
            return marked[0]
        by_id = self.contract.operations.get("createVideoGeneration" if role == "submit" else "getTask")
        if by_id is not None:
            return by_id
        for op in operations:
            ok = self._answer_schema(op, "200") or self._answer_schema(op, "201")
            if ok is None:
                continue
            properties = set(self.contract.resolve(ok[0], ok[1])[0].get("properties", {}))
            if role == "submit" and op.method == "POST" and "id" in properties:
                return op
            if role == "query" and op.method == "GET" and "{" in op.path and "status" in properties:
                return op
        what = (
            "no submit operation found: mark the POST that creates a task with 'x-mockserver-operation: submit' "
            "(or give it operationId createVideoGeneration, or an answer with an 'id')"
            if role == "submit"
            else "no query operation found: mark the GET that returns a task with 'x-mockserver-operation: query' "
            "(or give it operationId getTask, or a {task id} path and an answer with a 'status')"
        )
        raise self._error("/paths", what)

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

    def _answer(self, op: Operation, what: str, *, created: bool) -> Node:
        found = self._answer_schema(op, "200") or self._answer_schema(op, "201")
        if found is None:
            raise self._error(f"{_pointer(op)}/responses", f"{what} documents no JSON answer for 200 or 201")
        node = self.node(*found)
        if node.kind != "object":
            raise self._error(node.pointer, f"the answer of {what} must be an object (a task), not {node.kind}")
        for name in ("id",) if created else ("status",):
            if not any(child.source == name for _, child in node.properties):
                raise self._error(node.pointer, f"the task schema of {what} has no '{name}' property")
        results = next((child for _, child in node.properties if child.source == "results"), None)
        if results is not None:
            self._check_results(results)
            if not created and results.items is not None:
                self.result_url_field = next((name for name, c in results.items.properties if c.source == "url"), "url")
        return node

    def _check_results(self, results: Node) -> None:
        if results.kind != "array" or results.items is None:
            raise self._error(results.pointer, "'results' must be an array (of URL strings or of objects with a URL)")
        item = results.items
        if item.kind == "string":
            item.source = "url"
            return
        if item.kind != "object" or not any(child.source == "url" for _, child in item.properties):
            raise self._error(
                item.pointer,
                "the fake cannot fill these results: an item must be a URL string or an object with a 'url' "
                "property (or one marked 'x-mockserver-value: url')",
            )

    def error_node(self, op: Operation, status: str) -> Node:
        found = self._answer_schema(op, status)
        if found is None:
            return Node(f"{_pointer(op)}/responses/{status}")
        return self.node(*found)

    def _invalid_status(self, op: Operation) -> int:
        """The status the contract gives a body or parameter that breaks it: 422, else 400, else the
        first documented 4xx."""
        documented = [s for s in op.responses if s.isdigit() and s.startswith("4")]
        for preferred in ("422", "400"):
            if preferred in documented:
                return int(preferred)
        return int(min(documented)) if documented else 422

    # Resolving schemas into nodes

    def node(self, schema: Any, pointer: str, depth: int = 0, seen: frozenset[str] = frozenset()) -> Node:
        if depth > 64:
            raise self._error(pointer, "the schema nests more than 64 levels")
        ref = schema.get("$ref") if isinstance(schema, dict) else None
        if isinstance(ref, str) and ref in seen:
            return Node(pointer)  # a schema that contains itself: the fake leaves the inner one empty
        seen = seen | {ref} if isinstance(ref, str) else seen
        schema, pointer = self.contract.resolve(schema, pointer)
        if not isinstance(schema, dict):
            return Node(pointer)
        node = Node(pointer, schema=schema)
        types = schema.get("type")
        types = [types] if isinstance(types, str) else list(types or [])
        node.nullable = "null" in types or schema.get("nullable") is True
        types = [t for t in types if t != "null"]
        for key in ("oneOf", "anyOf"):
            branches = schema.get(key) or []
            real = []
            if not isinstance(branches, list):
                raise self._error(f"{pointer}/{key}", f"{key} must be a list of schemas")
            for index, branch in enumerate(branches):
                resolved, where = self.contract.resolve(branch, f"{pointer}/{key}/{index}")
                if not isinstance(resolved, dict):
                    continue
                if resolved.get("type") == "null" or resolved.get("const", 0) is None:
                    node.nullable = True
                else:
                    real.append((branch, resolved, where))
            if real:
                branch, resolved, where = real[0]
                ref = branch.get("$ref") if isinstance(branch, dict) else None
                if isinstance(ref, str) and ref in seen:
                    return Node(pointer, nullable=True)  # a schema that contains itself: left empty
                seen = seen | {ref} if isinstance(ref, str) else seen
                beside = {k: v for k, v in schema.items() if k not in ("oneOf", "anyOf", "discriminator")}
                first = self.contract._merge(beside, resolved, where) if beside else resolved
                inner = self.node(first, where, depth + 1, seen)
                inner.nullable = inner.nullable or node.nullable
                inner.pointer = pointer
                return inner
        if "const" in schema:
            node.const = schema["const"]
            if node.const is None:
                node.nullable = True
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            node.enum = tuple(schema["enum"])
            if any(value is None for value in node.enum):
                node.nullable = True
        for key in ("default", "example"):
            if key in schema and node.fixed is ABSENT:
                node.fixed = schema[key]
        if node.fixed is ABSENT and isinstance(schema.get("examples"), list) and schema["examples"]:
            node.fixed = schema["examples"][0]
        if node.fixed is ABSENT and node.enum:
            node.fixed = next((value for value in node.enum if value is not None), None)
        if not types:
            types = [t for t in _TYPE_ORDER if t == "object" and "properties" in schema or t == "array" and "items" in schema]
        node.types = tuple(sorted(types, key=lambda t: _TYPE_ORDER.index(t) if t in _TYPE_ORDER else 9))
        node.minimum = schema.get("minimum")
        node.format = schema.get("format")
        required = {name for name in schema.get("required") or [] if isinstance(name, str)}
        props = []
        properties = schema.get("properties") or {}
        if not isinstance(properties, dict):
            raise self._error(f"{pointer}/properties", "properties must be a mapping of names to schemas")
        for name, child in properties.items():
            where = f"{pointer}/properties/{escape(name)}"
            raw = _extensions(child, self.contract.resolve(child, where)[0])
            sub = self.node(child, where, depth + 1, seen)
            sub.required = name in required
            value = raw.get("x-mockserver-value")
            if value is not None:
                if not isinstance(value, str) or value not in SOURCES:
                    raise self._error(
                        where, f"x-mockserver-value is {value!r}; it must be one of {', '.join(sorted(SOURCES))}"
                    )
                if not _fits(value, sub):
                    raise self._error(
                        where, f"x-mockserver-value: {value} gives a {_NATURAL[value]}, which type {list(sub.types)} cannot hold"
                    )
                sub.source = value
            elif name in SOURCES and _fits(name, sub):
                sub.source = name
            elif name == "code" and _fits("http_status", sub):
                sub.source = "http_status"  # an error code that is a number: the HTTP status
            if raw.get("x-mockserver-omit") is True:
                if sub.required:
                    raise self._error(where, f"'{name}' is required, so x-mockserver-omit cannot leave it out")
                sub.omit = True
            props.append((name, sub))
        node.properties = tuple(props)
        if "items" in schema and isinstance(schema["items"], (dict, bool)):
            node.items = self.node(schema["items"], f"{pointer}/items", depth + 1, seen)
        return node


def read_body(contract: Contract, schema: Any, pointer: str) -> Body:
    """A request body's fields, defaults and roles (by `x-mockserver-role`, else by name)."""
    resolved, pointer = contract.resolve(schema, pointer)
    properties = resolved.get("properties", {}) if isinstance(resolved, dict) else {}
    body = Body(pointer, resolved if isinstance(resolved, dict) else {}, frozenset(properties))
    for name, prop in properties.items():
        resolved_prop, where = contract.resolve(prop, f"{pointer}/properties/{escape(name)}")
        if isinstance(resolved_prop, dict) and "default" in resolved_prop:
            body.defaults[name] = resolved_prop["default"]
        role = _extensions(prop, resolved_prop).get("x-mockserver-role")
        if role is not None:
            if not isinstance(role, str) or role not in ROLES:
                raise ContractError(f"{contract.at(where)}: x-mockserver-role is {role!r}; it must be one of {', '.join(ROLES)}")
            body.roles[role] = name
    for role, names in ROLES.items():
        if role not in body.roles:
            found = next((name for name in names if name in properties), None)
            if found is not None:
                body.roles[role] = found
    return body


# The JSON type of what each source gives; a property of another type does not take it.
_NATURAL = {
    "id": "string", "object": "string", "type": "string", "model": "string", "status": "string",
    "progress": "integer", "created": "integer", "results": "array", "error": "object",
    "credits_reserved": "number", "user_group": "string", "estimated_time": "integer", "can_cancel": "boolean",
    "video_duration": "number", "url": "string", "content_type": "string", "width": "integer", "height": "integer",
    "duration": "number", "message": "string", "code": "string", "param": "string", "http_status": "integer",
}  # fmt: skip


def _fits(source: str, node: Node) -> bool:
    """Whether what `source` gives is of a type the node allows (any, when it names none)."""
    natural = _NATURAL[source]
    if not node.types or natural in node.types:
        return True
    return natural in ("integer", "number") and bool({"integer", "number"} & set(node.types))


def _extensions(written: Any, resolved: Any) -> dict[str, Any]:
    """The x-mockserver-* keys of a schema: those written beside a `$ref` win over the target's."""
    found = {k: v for k, v in resolved.items() if k.startswith("x-mockserver-")} if isinstance(resolved, dict) else {}
    if isinstance(written, dict):
        found.update((k, v) for k, v in written.items() if k.startswith("x-mockserver-"))
    return found


def _pointer(op: Operation) -> str:
    return f"/paths/{escape(op.path)}/{op.method.lower()}"


def _paths(op: Operation) -> str:
    return f"/paths/{escape(op.path)}"
