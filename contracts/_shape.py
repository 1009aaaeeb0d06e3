"""A schema of the contract read into what a renderer needs: `Node` trees, and request `Body`s.

`Resolver(contract).node(schema, pointer)` resolves a schema ($ref followed, allOf merged, a
oneOf with null read as "nullable") down to which properties, in which order, which of them the
fake fills from the task (`source`) and which value the document itself fixes (`const`,
`default`, `examples`, the first `enum` value). `read_body` reads a request body's fields, their
defaults and their roles (which field is the model, the prompt, the duration...).

Names tell most of it (`SOURCES`, and `ALIASES` for the names providers use: `createdAt`,
`failureCode`, `detail`...); where they cannot, small extensions do (docs/own-contract.md):
    x-mockserver-operation: submit | query | content | cancel | delete | list     on an operation
    x-mockserver-role: model | prompt | aspect_ratio | audio | input_video | duration | size |
                       resolution | callback_url | callback_events       on a request property
    x-mockserver-role: result_url                         on the answer property that holds the video
    x-mockserver-value: <source>                          on an answer property (one of SOURCES)
    x-mockserver-omit: true                               on an optional answer property to leave out
    x-mockserver-status: {WORD: phase}                    on the status schema (contracts._vocabulary)
    x-mockserver-callbacks: {events, timeout, retries}    on the submit operation (contracts._callbacks)

Every problem is a `ContractError` naming the document, the JSON pointer and what is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from contracts._document import ContractError

if TYPE_CHECKING:
    from contracts._contract import Contract

# Where the fake can take an answer's value from, with the JSON type of what it gives. A
# property of one of these names (or of an alias) takes it from there unless the document pins
# a const; `x-mockserver-value` names one for any property.
NATURAL = {
    # the task
    "id": "string", "object": "string", "type": "string", "model": "string", "status": "string",
    "progress": "integer", "created": "integer", "results": "array", "result_url": "string",
    "error": "object", "error_message": "string", "error_code": "string",
    "credits_reserved": "number", "user_group": "string", "estimated_time": "integer", "can_cancel": "boolean",
    "video_duration": "number", "seconds": "number", "size": "string", "prompt": "string", "request": "object",
    "started_at": "integer", "completed_at": "integer", "expires_at": "integer",
    "self_url": "string", "cancel_url": "string", "content_url": "string", "deleted": "boolean",
    # one result (and the task's own clip)
    "url": "string", "content_type": "string", "width": "integer", "height": "integer", "duration": "number",
    # an error body
    "message": "string", "code": "string", "param": "string", "http_status": "integer", "reason": "string",
    # a page of tasks
    "items": "array", "has_more": "boolean", "first_id": "string", "last_id": "string", "next": "string",
    "previous": "string", "total": "integer", "limit": "integer", "offset": "integer",
}  # fmt: skip
SOURCES = frozenset(NATURAL)
# Times: an integer (Unix seconds) or a string (RFC 3339), whichever the property's type says.
TIMES = frozenset({"created", "started_at", "completed_at", "expires_at"})
# Values a string property can also hold as text ("4" seconds).
AS_TEXT = frozenset({"seconds", "video_duration", "duration", "width", "height", *TIMES})

# Other names providers give the fake's sources: the first source whose type fits is taken.
ALIASES: dict[str, tuple[str, ...]] = {
    **{name: ("created",) for name in ("created_at", "createdAt", "created_time", "creation_time", "createTime")},
    **{name: ("started_at",) for name in ("startedAt", "started_time", "start_time")},
    **{name: ("completed_at",) for name in ("completedAt", "finished_at", "finishedAt", "ended_at", "endedAt",
                                              "end_time", "completed_time")},
    **{name: ("expires_at",) for name in ("expiresAt", "expiry", "expires", "expire_time")},
    **{name: ("error_message",) for name in ("failure", "failure_reason", "failureReason", "errorMessage",
                                               "fail_reason", "failReason")},
    **{name: ("error_code",) for name in ("failureCode", "failure_code", "errorCode", "fail_code")},
    "error": ("error", "error_message"),
    "detail": ("message",),
    "title": ("reason",),
    "status": ("status", "http_status"),
    "state": ("status",),
    "code": ("code", "http_status"),
    **{name: ("self_url",) for name in ("get", "self", "status_url", "polling_url", "poll_url", "self_url")},
    **{name: ("cancel_url",) for name in ("cancel", "cancel_url")},
    **{name: ("content_url",) for name in ("content_url", "download_url")},
    "hasMore": ("has_more",),
    "firstId": ("first_id",),
    "lastId": ("last_id",),
    **{name: ("next",) for name in ("next_cursor", "nextCursor", "next_page_token", "nextPageToken")},
    "prev": ("previous",),
    **{name: ("total",) for name in ("count", "total_count", "totalCount")},
}  # fmt: skip

ROLES = {
    "model": ("model", "model_name", "modelId", "model_id"),
    "prompt": ("prompt", "promptText", "prompt_text", "text"),
    "aspect_ratio": ("aspect_ratio", "aspectRatio"),
    "audio": ("generate_audio", "audio", "with_audio", "enable_audio", "generateAudio"),
    "input_video": ("video_url", "video", "video_urls", "input_video", "videoUri"),
    "duration": ("duration", "seconds", "duration_seconds", "durationSeconds", "video_duration", "length"),
    "size": ("size", "ratio", "dimensions"),
    "resolution": ("resolution", "quality"),
    "callback_url": ("callback_url", "callbackUrl", "callBackUrl", "webhook_url", "webhookUrl", "webhook",
                     "notify_url", "notifyUrl", "notification_url"),
    "callback_events": ("webhook_events_filter", "callback_events", "webhook_events", "callbackEvents"),
}  # fmt: skip
ANSWER_ROLES = frozenset({"result_url"})  # x-mockserver-role values on an answer property
EXTENSIONS = frozenset(
    {"x-mockserver-operation", "x-mockserver-role", "x-mockserver-value", "x-mockserver-omit", "x-mockserver-status",
     "x-mockserver-callbacks"}
)  # fmt: skip
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
    pinned: Any = ABSENT  # what an optional property may be given: const or default only
    enum: tuple[Any, ...] | None = None
    required: bool = False  # as a property of its parent
    omit: bool = False
    gate: bool = False  # holds the result: null (or left out) until the task has one
    properties: tuple[tuple[str, Node], ...] = ()
    items: Node | None = None
    minimum: float | None = None
    maximum: float | None = None
    format: str | None = None
    extensions: dict[str, Any] = field(default_factory=dict, repr=False)  # its x-mockserver-* keys
    schema: dict[str, Any] = field(default_factory=dict, repr=False)  # resolved, as written

    @property
    def kind(self) -> str:
        if self.properties or self.types[:1] == ("object",):
            return "object"
        return self.types[0] if self.types else "any"

    def find(self, name: str) -> Node | None:
        return next((node for key, node in self.properties if key == name), None)

    def walk(self, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Node]]:
        """Every node below this one through object properties, with its path of names."""
        found = []
        for name, child in self.properties:
            found.append(((*path, name), child))
            found += child.walk((*path, name))
        return found

    def words(self) -> list[tuple[str, str]]:
        """The strings this node allows (its const or enum), each with its JSON pointer."""
        if isinstance(self.const, str):
            return [(self.const, f"{self.pointer}/const")]
        return [(v, f"{self.pointer}/enum/{i}") for i, v in enumerate(self.enum or ()) if isinstance(v, str)]


def example_of(schema: Any) -> Any:
    """A value the document itself gives a (resolved) schema: its const, default, example, first
    of its examples or first enum value; None when it gives none."""
    if not isinstance(schema, dict):
        return None
    for key in ("const", "default", "example"):
        if key in schema:
            return schema[key]
    for key in ("examples", "enum"):
        if isinstance(schema.get(key), list) and schema[key]:
            return schema[key][0]
    return None


def fits(source: str, node: Node) -> bool:
    """Whether what `source` gives is of a type the node allows (any, when it names none)."""
    natural = NATURAL[source]
    if not node.types or natural in node.types:
        return True
    if natural in ("integer", "number") and bool({"integer", "number"} & set(node.types)):
        return True
    return source in AS_TEXT and "string" in node.types


@dataclass
class Body:
    """A request body: one schema, or one per model (a oneOf chosen by `model`)."""

    pointer: str
    schema: dict[str, Any]  # resolved: refs followed, allOf (and a branch's shared part) merged
    properties: frozenset[str] = frozenset()
    defaults: dict[str, Any] = field(default_factory=dict)
    roles: dict[str, tuple[str, ...]] = field(default_factory=dict)  # role -> the path of its field
    role_defaults: dict[str, Any] = field(default_factory=dict)  # role -> the default of a nested field
    plain: bool = True  # the prompt, model and aspect ratio are fields of those names (match rules read them so)
    clip_roles: tuple[str, ...] = ()  # of duration, size, resolution and aspect_ratio, those the body has

    def value(self, body: dict[str, Any], role: str, default: Any = None) -> Any:
        """The value a request gives a role (the field's default when it gives none)."""
        path = self.roles.get(role)
        if path is None:
            return default
        value: Any = body
        for name in path:
            if not isinstance(value, dict) or name not in value:
                return self.role_defaults.get(role, default)
            value = value[name]
        return value


class Resolver:
    """Schemas of one contract into `Node`s (every problem a ContractError with the pointer)."""

    def __init__(self, contract: Contract) -> None:
        self.contract = contract

    def error(self, pointer: str, message: str) -> ContractError:
        return ContractError(f"{self.contract.at(pointer)}: {message}")

    def node(self, schema: Any, pointer: str, depth: int = 0, seen: frozenset[str] = frozenset()) -> Node:
        if depth > 64:
            raise self.error(pointer, "the schema nests more than 64 levels")
        ref = schema.get("$ref") if isinstance(schema, dict) else None
        if isinstance(ref, str) and ref in seen:
            return Node(pointer)  # a schema that contains itself: the fake leaves the inner one empty
        seen = seen | {ref} if isinstance(ref, str) else seen
        written = schema
        schema, pointer = self.contract.resolve(schema, pointer)
        if not isinstance(schema, dict):
            return Node(pointer)
        node = Node(pointer, schema=schema, extensions=extensions(written, schema))
        types = schema.get("type")
        types = [types] if isinstance(types, str) else list(types or [])
        node.nullable = "null" in types or schema.get("nullable") is True
        types = [t for t in types if t != "null"]
        for key in ("oneOf", "anyOf"):
            branches = schema.get(key) or []
            real = []
            if not isinstance(branches, list):
                raise self.error(f"{pointer}/{key}", f"{key} must be a list of schemas")
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
                inner.extensions = {**inner.extensions, **node.extensions}
                return inner
        if "const" in schema:
            node.const = schema["const"]
            if node.const is None:
                node.nullable = True
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            node.enum = tuple(schema["enum"])
            if any(value is None for value in node.enum):
                node.nullable = True
        if "default" in schema:
            node.pinned = schema["default"]
        for key in ("default", "example"):
            if key in schema and node.fixed is ABSENT:
                node.fixed = schema[key]
        if node.fixed is ABSENT and isinstance(schema.get("examples"), list) and schema["examples"]:
            node.fixed = schema["examples"][0]
        if node.fixed is ABSENT and node.enum:
            node.fixed = next((value for value in node.enum if value is not None), None)
        if not types:
            types = [
                t for t in _TYPE_ORDER if t == "object" and "properties" in schema or t == "array" and "items" in schema
            ]
        node.types = tuple(sorted(types, key=lambda t: _TYPE_ORDER.index(t) if t in _TYPE_ORDER else 9))
        node.minimum = schema.get("minimum")
        node.maximum = schema.get("maximum")
        node.format = schema.get("format")
        required = {name for name in schema.get("required") or [] if isinstance(name, str)}
        props = []
        properties = schema.get("properties") or {}
        if not isinstance(properties, dict):
            raise self.error(f"{pointer}/properties", "properties must be a mapping of names to schemas")
        for name, child in properties.items():
            where = f"{pointer}/properties/{escape(name)}"
            sub = self.node(child, where, depth + 1, seen)
            sub.required = name in required
            self._source(name, sub, where)
            if sub.extensions.get("x-mockserver-omit") is True:
                if sub.required:
                    raise self.error(where, f"'{name}' is required, so x-mockserver-omit cannot leave it out")
                sub.omit = True
            props.append((name, sub))
        node.properties = tuple(props)
        if "items" in schema and isinstance(schema["items"], (dict, bool)):
            node.items = self.node(schema["items"], f"{pointer}/items", depth + 1, seen)
        return node

    def _source(self, name: str, node: Node, where: str) -> None:
        """Where the property `name` takes its value from: x-mockserver-value (or the role
        result_url), else its name, else an alias whose type fits."""
        value = node.extensions.get("x-mockserver-value")
        role = node.extensions.get("x-mockserver-role")
        if role is not None:
            if role not in ANSWER_ROLES:
                raise self.error(
                    where,
                    f"x-mockserver-role is {role!r}; on an answer property it must be one of {', '.join(sorted(ANSWER_ROLES))} "
                    f"(request roles go on request properties)",
                )
            if not fits("result_url", node):
                raise self.error(
                    where,
                    f"x-mockserver-role: result_url marks where the video's URL goes: the type {list(node.types)} "
                    "cannot hold a URL; mark a string property (or the string items of an array) instead",
                )
            value = value or "result_url"
        if value is not None:
            if not isinstance(value, str) or value not in SOURCES:
                raise self.error(
                    where, f"x-mockserver-value is {value!r}; it must be one of {', '.join(sorted(SOURCES))}"
                )
            if not fits(value, node):
                raise self.error(
                    where,
                    f"x-mockserver-value: {value} gives a {NATURAL[value]}, which type {list(node.types)} cannot hold",
                )
            node.source = value
            return
        for candidate in ((name,) if name in SOURCES else ()) + ALIASES.get(name, ()):
            if fits(candidate, node):
                node.source = candidate
                return


def extensions(written: Any, resolved: Any) -> dict[str, Any]:
    """The x-mockserver-* keys of a schema: those written beside a `$ref` win over the target's."""
    found = {k: v for k, v in resolved.items() if k.startswith("x-mockserver-")} if isinstance(resolved, dict) else {}
    if isinstance(written, dict):
        found.update((k, v) for k, v in written.items() if k.startswith("x-mockserver-"))
    return found


def read_body(contract: Contract, schema: Any, pointer: str) -> Body:
    """A request body's fields, defaults and roles (by `x-mockserver-role`, else by name: a field
    of the body, else of an object field one level down, such as `input.prompt`)."""
    resolved, pointer = contract.resolve(schema, pointer)
    properties = resolved.get("properties", {}) if isinstance(resolved, dict) else {}
    body = Body(pointer, resolved if isinstance(resolved, dict) else {}, frozenset(properties))
    nested: dict[str, dict[str, Any]] = {}  # an object field's own properties, resolved
    for name, prop in properties.items():
        resolved_prop, where = contract.resolve(prop, f"{pointer}/properties/{escape(name)}")
        if not isinstance(resolved_prop, dict):
            continue
        if "default" in resolved_prop:
            body.defaults[name] = resolved_prop["default"]
        _role(contract, body, prop, resolved_prop, where, (name,))
        if isinstance(resolved_prop.get("properties"), dict):
            nested[name] = {}
            for inner, inner_prop in resolved_prop["properties"].items():
                inner_resolved, inner_where = contract.resolve(inner_prop, f"{where}/properties/{escape(inner)}")
                if isinstance(inner_resolved, dict):
                    nested[name][inner] = inner_resolved
                    _role(contract, body, inner_prop, inner_resolved, inner_where, (name, inner))
    for role, names in ROLES.items():
        if role in body.roles:
            continue
        found = next((name for name in names if name in properties), None)
        if found is not None:
            body.roles[role] = (found,)
            continue
        for outer, inner_props in nested.items():
            found = next((name for name in names if name in inner_props), None)
            if found is not None:
                body.roles[role] = (outer, found)
                if "default" in inner_props[found]:
                    body.role_defaults[role] = inner_props[found]["default"]
                break
    body.plain = all(body.roles.get(role, (role,)) == (role,) for role in ("prompt", "model", "aspect_ratio"))
    body.clip_roles = tuple(role for role in ("duration", "size", "resolution", "aspect_ratio") if role in body.roles)
    return body


def _role(
    contract: Contract, body: Body, written: Any, resolved: dict[str, Any], where: str, path: tuple[str, ...]
) -> None:
    role = extensions(written, resolved).get("x-mockserver-role")
    if role is None:
        return
    if not isinstance(role, str) or role not in ROLES:
        raise ContractError(
            f"{contract.at(where)}: x-mockserver-role is {role!r}; on a request property it must be one of {', '.join(ROLES)}"
        )
    body.roles[role] = path
    if len(path) > 1 and "default" in resolved:
        body.role_defaults[role] = resolved["default"]
