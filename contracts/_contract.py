"""A loaded contract: the bundled document plus request validators compiled once.

`Contract.load("seed" | "current" | path)` reads and bundles the document and compiles, for every
operation, a JSON-Schema validator for its JSON request body and for each query parameter.
Validation then costs one `is_valid` call on the hot path; only a failing value pays for the
detailed error (`Violation`), which names the offending field in `param` the way the provider's
422 answers do.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema_rs

from contracts._document import BUILTIN_DIR, ContractError, form_kind, json_content, load_bundle, server_prefix
from contracts._protocol import Shapes
from contracts._shape import EXTENSIONS, Body, escape, read_body

_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
# Headers HTTP itself carries (the security scheme's, the body's): never checked as parameters.
_TRANSPORT_HEADERS = frozenset({"authorization", "content-type", "content-length", "accept", "host", "user-agent"})


@dataclass(frozen=True)
class Violation:
    """Why a value does not satisfy the contract, phrased for the provider's 422 body."""

    message: str
    param: str | None


@dataclass(frozen=True)
class QueryParameter:
    name: str
    required: bool
    schema_type: str | None
    validator: jsonschema_rs.Validator
    schema: dict[str, Any] = field(default_factory=dict)  # resolved


@dataclass(frozen=True)
class ResponseSpec:
    """What the contract says one status of an operation answers with."""

    status: str
    body: jsonschema_rs.Validator | None
    headers: dict[str, jsonschema_rs.Validator]
    error_type: str | None  # the `error.type` constant of an error body, if it pins one

    def problems(self, body: Any, headers: dict[str, str] | None = None) -> list[str]:
        found = []
        if self.body is not None:
            for error in self.body.iter_errors(body):
                error = best_error(error)
                where = "/".join(str(part) for part in error.instance_path)
                found.append(f"body{'/' + where if where else ''}: {describe_error(error)}")
        for name, value in (headers or {}).items():
            validator = self.headers.get(name.lower())
            if validator is not None and not validator.is_valid(
                _coerce(value, "integer") if value.isdigit() else value
            ):
                found.append(f"header {name}: {value!r} does not match the contract")
        return found


@dataclass(frozen=True)
class HeaderParameter:
    name: str  # lower case, as ASGI gives header names
    shown: str  # as the contract spells it
    required: bool
    schema_type: str | None
    validator: jsonschema_rs.Validator
    expected: str  # what a valid value is, for the message


@dataclass
class Operation:
    operation_id: str
    method: str
    path: str  # as the document writes it (a key of /paths)
    route: str = ""  # the path the API serves: the server URL's path prefix, then `path`
    body_validator: jsonschema_rs.Validator | None = None
    forms: dict[str, tuple[jsonschema_rs.Validator, Body]] = field(default_factory=dict)  # form kind -> schema
    json_body: bool = True  # whether the body may come as JSON (else only as a form)
    query: tuple[QueryParameter, ...] = ()
    requires_query: bool = False  # whether any query parameter is required
    headers: tuple[HeaderParameter, ...] = ()  # header parameters the contract documents
    path_parameters: tuple[str, ...] = ()  # in the order the path names them
    parameters: dict[tuple[str, str], dict[str, Any]] = field(
        default_factory=dict
    )  # (in, name) -> the parameter, resolved
    responses: dict[str, Any] = field(default_factory=dict)
    answers: dict[str, ResponseSpec] = field(default_factory=dict)
    body: Body | None = None  # the request body's fields: defaults, roles
    model_field: str | None = None  # with a body chosen by model: the field that picks it
    branches: dict[str, tuple[jsonschema_rs.Validator, Body]] = field(default_factory=dict)  # model -> its body

    @property
    def body_properties(self) -> frozenset[str]:
        return self.body.properties if self.body is not None else frozenset()

    @property
    def body_defaults(self) -> dict[str, Any]:
        return self.body.defaults if self.body is not None else {}

    @property
    def error_statuses(self) -> list[str]:
        """The 4xx and 5xx statuses the operation documents (exact codes, not ranges)."""
        return [status for status in self.responses if status.isdigit() and status[0] in "45"]

    @functools.cached_property
    def path_regex(self) -> re.Pattern[str]:
        """Matches a request path of this operation (as served), with a group per path parameter
        (made once: a submit whose path names the model matches it on every request)."""
        pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.route or self.path))
        return re.compile(f"^{pattern}$")

    def check_headers(self, headers: dict[bytes, bytes]) -> Violation | None:
        """Check the header parameters the contract documents: present when required, and valid."""
        for parameter in self.headers:
            raw = headers.get(parameter.name.encode("latin-1"))
            if raw is None:
                if parameter.required:
                    return Violation(f"Missing required header '{parameter.shown}'.", parameter.shown)
                continue
            value = _coerce(raw.decode("latin-1"), parameter.schema_type)
            if not parameter.validator.is_valid(value):
                return Violation(
                    f"Invalid value for header '{parameter.shown}': {raw.decode('latin-1')[:80]!r} is not {parameter.expected}.",
                    parameter.shown,
                )
        return None

    def path_for(self, task_id: str) -> str:
        """The served path of this operation for a task (its last path parameter)."""
        before, _, after = self.route.rpartition("{" + self.path_parameters[-1] + "}")
        return f"{before}{task_id}{after}"

    def check_form(self, kind: str, body: Any) -> Violation | None:
        """`check_body` for a body sent as a form (`kind`: multipart or urlencoded)."""
        validator, shape = self.forms[kind]
        return None if validator.is_valid(body) else _first_violation(validator, body, shape.properties)

    def answer(self, status: int) -> ResponseSpec | None:
        """The documented response for `status` (exact code, then `4XX`-style ranges, then default)."""
        return self.answers.get(str(status)) or self.answers.get(f"{str(status)[0]}XX") or self.answers.get("default")

    def check_body(self, body: Any) -> Violation | None:
        """None when `body` satisfies the request schema, else the first violation (for a body
        chosen by model: of the branch its model picks)."""
        if self.model_field is not None and isinstance(body, dict):
            # the model picks the branch: validate against it alone (validators ignore the
            # discriminator, and a body may fit another model's branch, or several)
            name = self.model_field
            model = body.get(name)
            allowed = ", ".join(repr(model) for model in self.branches)
            if model is None:
                return Violation(f"Missing required field '{name}'. It picks the body; one of: {allowed}.", name)
            branch = self.branches.get(model) if isinstance(model, str) else None
            if branch is None:
                return Violation(
                    f"Invalid value for '{name}': {json.dumps(model)[:80]} is not one of: {allowed}.", name
                )
            validator, shape = branch
            return None if validator.is_valid(body) else _first_violation(validator, body, shape.properties)
        if self.body_validator is None or self.body_validator.is_valid(body):
            return None
        return _first_violation(self.body_validator, body, self.body_properties)

    def shape_of(self, body: dict[str, Any]) -> Body | None:
        """The fields (defaults, roles) of a valid request body: of its model's branch, if any."""
        if self.model_field is not None:
            branch = self.branches.get(body.get(self.model_field))  # type: ignore[arg-type]
            return branch[1] if branch is not None else None
        return self.body

    def check_query(self, params: dict[str, str]) -> Violation | None:
        """Check raw query strings against the declared parameters (coercing booleans and numbers)."""
        for parameter in self.query:
            raw = params.get(parameter.name)
            if raw is None:
                if parameter.required:
                    return Violation(f"Missing required query parameter '{parameter.name}'.", parameter.name)
                continue
            value = _coerce(raw, parameter.schema_type)
            if not parameter.validator.is_valid(value):
                error = next(iter(parameter.validator.iter_errors(value)))
                said = describe_error(error) if value is not raw or parameter.schema_type in (None, "string") else None
                said = said or f"{raw[:80]!r} is not {parameter.schema_type or 'a valid value'}"
                return Violation(f"Invalid value for query parameter '{parameter.name}': {said}.", parameter.name)
        return None


def _coerce(raw: str, schema_type: str | None) -> Any:
    if schema_type == "boolean":
        return {"true": True, "false": False, "1": True, "0": False}.get(raw.lower(), raw)
    if schema_type in ("integer", "number"):
        try:
            return int(raw) if schema_type == "integer" else float(raw)
        except ValueError:
            return raw
    return raw


def _shorten(message: str, limit: int = 200) -> str:
    """Validator messages quote the value; a huge value must not be echoed back whole."""
    return message if len(message) <= limit else message[: limit - 3] + "..."


_PICKS = (jsonschema_rs.ValidationErrorKind.Constant, jsonschema_rs.ValidationErrorKind.Enum)


def best_error(error: jsonschema_rs.ValidationError) -> jsonschema_rs.ValidationError:
    """For `oneOf`, the error of the branch that fits the value's type, searched recursively."""
    kind = error.kind
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.OneOfNotValid):
        branches = [list(branch) for branch in kind.context]
        fitting = [
            branch
            for branch in branches
            if branch and not all(isinstance(e.kind, jsonschema_rs.ValidationErrorKind.Type) for e in branch)
        ]
        # a branch chosen by a discriminator (its `status` const) is the one whose const the value meets
        chosen = [
            branch
            for branch in fitting
            if not any(isinstance(e.kind, _PICKS) and len(list(e.instance_path)) == 1 for e in branch)
        ]
        fitting = chosen or fitting
        if fitting:
            deepest = max((e for branch in fitting for e in branch), key=lambda e: len(list(e.instance_path)))
            return best_error(deepest)
    return error


def describe_error(error: jsonschema_rs.ValidationError) -> str:
    """The validator's message (of the fitting `oneOf` branch), with every allowed value of an
    enum listed, and kept short."""
    error = best_error(error)
    kind = error.kind
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.Enum):
        allowed = ", ".join(json.dumps(option) for option in kind.options)
        return _shorten(f"{json.dumps(error.instance)} is not one of: {allowed}")
    return _shorten(error.message)


def _first_violation(validator: jsonschema_rs.Validator, body: Any, known: frozenset[str]) -> Violation:
    error = next(iter(validator.iter_errors(body)), None)
    if error is None:  # a validator that said no but names nothing
        return Violation("The request body does not match the contract.", None)
    path = ".".join(str(part) for part in error.instance_path)
    kind = error.kind
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.Required):
        name = kind.property
        param = f"{path}.{name}" if path else name
        message = f"Missing required field '{param}'."
        unknown = sorted(set(body) - known) if isinstance(body, dict) and not path and known else []
        if unknown:
            listed = ", ".join(f"'{item}'" for item in unknown)
            message += f" The body also has {listed}, which this contract does not define."
        return Violation(message, param)
    if not path:
        return Violation(f"The request body is invalid: {describe_error(error)}.", None)
    return Violation(f"Invalid value for '{path}': {describe_error(error)}.", path)


class Contract:
    """One OpenAPI document, bundled, with its request validators compiled."""

    def __init__(
        self, path: Path, document: dict[str, Any], origins: dict[tuple[str, str], Path] | None = None
    ) -> None:
        self.path = path
        self.origins = origins or {}
        self.document = document
        self.title: str = document.get("info", {}).get("title", path.name)
        self.version: str = str(document.get("info", {}).get("version", ""))
        self.operations: dict[str, Operation] = {}
        if not isinstance(document.get("paths"), dict) or not document["paths"]:
            raise ContractError(f"{path}: at /paths: the document has no paths (no submit or query operation)")
        self._check_references()
        self.prefix = server_prefix(document, path)
        where = "/paths"
        try:
            for route, item in document["paths"].items():
                where = f"/paths/{escape(route)}"
                item = self._deref(item)
                if not isinstance(item, dict):
                    raise ContractError(f"{path}: at {where}: a path item must be a mapping")
                shared = item.get("parameters") or []
                for method in _METHODS:
                    if method in item:
                        where = f"/paths/{escape(route)}/{method}"
                        if not isinstance(item[method], dict):
                            raise ContractError(f"{path}: at {where}: an operation must be a mapping")
                        operation = self._compile(route, method, item[method], shared)
                        self.operations[operation.operation_id] = operation
            where = "/paths"
            self.shapes = Shapes(self)
            self.submit: Operation = self.shapes.submit
            self.query: Operation = self.shapes.query
            where = f"/paths/{escape(self.submit.path)}/{self.submit.method.lower()}/requestBody"
            self._request_bodies()
            self.shapes.finish()
        except (AttributeError, TypeError, KeyError, IndexError) as exc:
            # a value of the wrong kind somewhere below `where` (a list for a mapping, a null...)
            raise ContractError(
                f"{path}: at {where}: a value is not of the kind OpenAPI 3.1 expects there "
                f"({type(exc).__name__}: {exc})"
            ) from None

    @property
    def shipped(self) -> bool:
        """Whether this is one of the contracts that ship with the toolkit (seed, current)."""
        return self.path.resolve().parent == BUILTIN_DIR.resolve()

    @classmethod
    def load(cls, name_or_path: str | Path) -> Contract:
        path, document, origins = load_bundle(name_or_path)
        return cls(path, document, origins)

    def at(self, pointer: str) -> str:
        """`FILE: at POINTER` for a message: the file a component came from (a shared file such
        as common.yaml), else the document's own."""
        parts = pointer.split("/")
        origin = (
            self.origins.get((parts[2], parts[3].replace("~1", "/").replace("~0", "~")))
            if len(parts) > 3 and parts[1] == "components"
            else None
        )
        shown = self.path if origin is None or origin == self.path.resolve() else origin
        return f"{shown}: at {pointer or '/'}"

    def _deref(self, node: Any) -> Any:
        return self.follow(node, "")[0]

    def follow(self, node: Any, pointer: str) -> tuple[Any, str]:
        """`node` with its `$ref`s followed, and the JSON pointer of where it is."""
        seen = 0
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            if not isinstance(ref, str) or not ref.startswith("#") or seen > 32:
                raise ContractError(f"{self.at(pointer)}: cannot follow reference {ref!r}")
            target = self.document
            for part in ref[1:].split("/")[1:]:
                part = part.replace("~1", "/").replace("~0", "~")
                if isinstance(target, list) and part.isdigit() and int(part) < len(target):
                    target = target[int(part)]
                elif isinstance(target, dict) and part in target:
                    target = target[part]
                else:
                    raise ContractError(f"{self.at(pointer)}: the reference {ref!r} does not resolve")
            node, pointer = target, ref[1:]
            seen += 1
        return node, pointer

    def resolve(self, schema: Any, pointer: str, depth: int = 0) -> tuple[Any, str]:
        """A schema with its `$ref`s followed (keys written beside a `$ref` kept, as OpenAPI 3.1
        reads them) and its `allOf` parts merged into one, and where it is. A boolean schema reads
        as an empty one."""
        if depth > 32:
            raise ContractError(f"{self.at(pointer)}: allOf and $ref refer to each other in a loop")
        beside = (
            {k: v for k, v in schema.items() if k != "$ref"} if isinstance(schema, dict) and "$ref" in schema else {}
        )
        schema, pointer = self.follow(schema, pointer)
        if isinstance(schema, bool):
            schema = {}
        if beside and isinstance(schema, dict):
            schema = {**schema, **beside}
        if not isinstance(schema, dict) or "allOf" not in schema:
            return schema, pointer
        if not isinstance(schema["allOf"], list):
            raise ContractError(f"{self.at(pointer + '/allOf')}: allOf must be a list of schemas")
        merged: dict[str, Any] = {key: value for key, value in schema.items() if key != "allOf"}
        for index, part in enumerate(schema["allOf"]):
            part, _ = self.resolve(part, f"{pointer}/allOf/{index}", depth + 1)
            merged = self._merge(merged, part, f"{pointer}/allOf/{index}", depth + 1)
        return merged, pointer

    def _merge(self, base: dict[str, Any], extra: Any, pointer: str, depth: int = 0) -> dict[str, Any]:
        if not isinstance(extra, dict):
            return base
        merged = {**base}
        for key, value in extra.items():
            if key == "properties" and isinstance(value, dict):
                properties = dict(merged.get("properties") or {})
                for name, prop in value.items():
                    where = f"{pointer}/properties/{escape(name)}"
                    if name in properties:
                        mine, _ = self.resolve(properties[name], where, depth + 1)
                        theirs, _ = self.resolve(prop, where, depth + 1)
                        properties[name] = (
                            self._merge(mine, theirs, where, depth + 1) if isinstance(mine, dict) else theirs
                        )
                    else:
                        properties[name] = prop
                merged["properties"] = properties
            elif key == "required" and isinstance(value, list):
                known = list(merged.get("required") or [])
                merged["required"] = [*known, *[name for name in value if name not in known]]
            else:
                merged[key] = value
        return merged

    def spec_of(self, operation: Operation) -> dict[str, Any]:
        """The operation object of the document."""
        item = self._deref(self.document["paths"][operation.path])
        return item[operation.method.lower()]

    def _check_references(self) -> None:
        """Every local `$ref` of the document resolves (else: where it is and what it names)."""
        stack: list[tuple[Any, str]] = [(self.document, "")]
        while stack:
            node, pointer = stack.pop()
            if isinstance(node, dict):
                if isinstance(node.get("$ref"), str):
                    self.follow({"$ref": node["$ref"]}, pointer)
                for key in node:
                    if isinstance(key, str) and key.startswith("x-mockserver-") and key not in EXTENSIONS:
                        raise ContractError(
                            f"{self.at(pointer)}: unknown extension {key!r}; the fake reads {', '.join(sorted(EXTENSIONS))}"
                        )
                stack.extend((value, f"{pointer}/{escape(key)}") for key, value in node.items() if key != "$ref")
            elif isinstance(node, list):
                stack.extend((value, f"{pointer}/{index}") for index, value in enumerate(node))

    def _validator(self, schema: dict[str, Any], where: str) -> jsonschema_rs.Validator:
        rooted = {**schema, "components": self.document.get("components", {})}
        try:
            return jsonschema_rs.Draft202012Validator(rooted, validate_formats=True)
        except (jsonschema_rs.ValidationError, ValueError) as exc:
            lines = str(exc).splitlines()
            found = next((line for line in lines if line.startswith("On instance")), "")
            parts = re.findall(r'\["([^"]*)"\]|\[(\d+)\]', found)
            pointer = "/" + "/".join(escape(name or index) for name, index in parts) if parts else "/"
            raise ContractError(
                f"{self.at(pointer)}: the schema of {where} does not compile: {lines[0] if lines else exc}"
            ) from None

    def _compile(self, route: str, method: str, spec: dict[str, Any], shared: list[Any]) -> Operation:
        where = f"{method.upper()} {route}"
        operation_id = spec.get("operationId") or where
        responses = spec.get("responses") or {}
        if not isinstance(responses, dict):
            raise ContractError(
                f"{self.path}: at /paths/{escape(route)}/{method}/responses: must be a mapping of statuses"
            )
        operation = Operation(
            operation_id,
            method.upper(),
            route,
            self.prefix + route,
            responses={str(k): v for k, v in responses.items()},
        )
        operation.answers = {
            status: self._response(status, self._deref(response), f"{where} response {status}")
            for status, response in operation.responses.items()
        }
        body = self._deref(spec.get("requestBody")) if spec.get("requestBody") else None
        if body:
            content = body.get("content") or {}
            key, media = json_content(content)
            schema = media.get("schema")
            base = f"/paths/{escape(route)}/{method}/requestBody/content"
            if schema is not None:
                operation.body_validator = self._validator(schema, where)
                operation.body = read_body(self, schema, f"{base}/{escape(key)}/schema")
            for key, media in content.items() if isinstance(content, dict) else ():
                kind = form_kind(str(key))
                if kind is None or not isinstance(media, dict) or media.get("schema") is None:
                    continue
                fields = read_body(self, media["schema"], f"{base}/{escape(key)}/schema")
                operation.forms[kind] = (self._validator(media["schema"], f"{where} ({key})"), fields)
                if operation.body is None:
                    operation.body = fields  # roles and defaults, when only forms are documented
            operation.json_body = schema is not None or not operation.forms
        query, headers = [], []
        for raw in [*shared, *spec.get("parameters", [])]:
            parameter = self._deref(raw)
            place = parameter.get("in")
            schema = parameter.get("schema", {})
            resolved_schema = self.resolve(schema, "")[0] if isinstance(schema, dict) else {}
            operation.parameters[(str(place), str(parameter.get("name")))] = {**parameter, "schema": resolved_schema}
            schema_type = self._deref(schema).get("type") if isinstance(schema, dict) else None
            if place == "query":
                resolved = self.resolve(schema, "")[0] if isinstance(schema, dict) else {}
                query.append(
                    QueryParameter(
                        parameter["name"],
                        bool(parameter.get("required")),
                        schema_type,
                        self._validator(schema, f"{where} query parameter {parameter['name']}"),
                        resolved if isinstance(resolved, dict) else {},
                    )
                )
            elif place == "header" and str(parameter["name"]).lower() not in _TRANSPORT_HEADERS:
                resolved = self.resolve(schema, "")[0] if isinstance(schema, dict) else {}
                options = [resolved["const"]] if "const" in resolved else resolved.get("enum") or []
                expected = (
                    "one of: " + ", ".join(repr(o) for o in options) if options else f"a valid {schema_type or 'value'}"
                )
                headers.append(
                    HeaderParameter(
                        str(parameter["name"]).lower(),
                        str(parameter["name"]),
                        bool(parameter.get("required")),
                        schema_type if isinstance(schema_type, str) else None,
                        self._validator(schema, f"{where} header {parameter['name']}"),
                        expected,
                    )
                )
        operation.query = tuple(query)
        operation.requires_query = any(parameter.required for parameter in query)
        operation.headers = tuple(headers)
        operation.path_parameters = tuple(re.findall(r"\{(\w+)\}", route))
        return operation

    def _request_bodies(self) -> None:
        """The submit body's branches when it is a oneOf chosen by model: per model, its validator
        and its fields (defaults, roles)."""
        op = self.submit
        if op.body is None:
            return
        resolved, pointer = op.body.schema, op.body.pointer
        branches = resolved.get("oneOf") or resolved.get("anyOf")
        if not branches:
            return
        if not isinstance(branches, list):
            raise ContractError(f"{self.at(pointer)}: oneOf/anyOf must be a list of schemas")
        discriminator = resolved.get("discriminator") or {}
        name = discriminator.get("propertyName", "model") if isinstance(discriminator, dict) else "model"
        mapping = discriminator.get("mapping") if isinstance(discriminator, dict) else None
        mapped: dict[str, list[str]] = {}
        for model, ref in (mapping or {}).items() if isinstance(mapping, dict) else ():
            if not isinstance(ref, str):
                raise ContractError(
                    f"{self.at(pointer + '/discriminator/mapping')}: {model!r} must map to a schema name or $ref"
                )
            ref = ref if ref.startswith("#") else f"#/components/schemas/{ref}"  # a bare schema name
            mapped.setdefault(ref, []).append(str(model))
        if not isinstance(name, str):
            raise ContractError(f"{self.at(pointer + '/discriminator/propertyName')}: must be a property name")
        op.model_field = name
        kind = "oneOf" if "oneOf" in resolved else "anyOf"
        for index, branch in enumerate(branches):
            where = f"{pointer}/{kind}/{index}"
            part, part_pointer = self.resolve(branch, where)
            ref = branch.get("$ref", "") if isinstance(branch, dict) else ""
            models = list(mapped.get(ref, []))
            if not isinstance(part, dict):
                raise ContractError(f"{self.at(where)}: a branch of the request body must be a schema object")
            prop, _ = self.resolve((part.get("properties") or {}).get(name, {}), f"{part_pointer}/properties/{name}")
            if isinstance(prop, dict):
                models += [prop["const"]] if isinstance(prop.get("const"), str) else []
                models += [value for value in prop.get("enum") or [] if isinstance(value, str)]
            if not models and discriminator and not mapping and ref.startswith("#/components/schemas/"):
                models = [ref.rsplit("/", 1)[1]]  # a discriminator without a mapping names each branch by its schema
            if not models:
                raise ContractError(
                    f"{self.at(where)}: this branch of the request body names no model: give its "
                    f"'{name}' property a const or an enum, or map it in the discriminator"
                )
            merged = self._merge(
                {key: v for key, v in resolved.items() if key not in (kind, "discriminator")}, part, where
            )
            shape = read_body(self, merged, part_pointer)
            validator = self._validator(merged, f"{op.method} {op.path} body for model {models[0]}")
            for model in dict.fromkeys(models):
                op.branches.setdefault(model, (validator, shape))

    def _error_type(self, schema: Any) -> str | None:
        """The `error.type` constant a (possibly allOf-composed) error schema pins, if any."""
        schema = self._deref(schema)
        if not isinstance(schema, dict):
            return None
        const = schema.get("properties", {}).get("error", {}).get("properties", {}).get("type", {}).get("const")
        if const is not None:
            return const
        for part in schema.get("allOf", []):
            found = self._error_type(part)
            if found is not None:
                return found
        return None

    def _response(self, status: str, response: dict[str, Any], where: str) -> ResponseSpec:
        schema = json_content(response.get("content"))[1].get("schema") if isinstance(response, dict) else None
        headers = {
            name.lower(): self._validator(self._deref(header).get("schema", {}), f"{where} header {name}")
            for name, header in response.get("headers", {}).items()
        }
        return ResponseSpec(
            status,
            self._validator(schema, where) if schema is not None else None,
            headers,
            self._error_type(schema) if schema is not None else None,
        )

    def request_schema(self, operation_id: str, model: str | None = None) -> dict[str, Any]:
        """The JSON request body schema of an operation, with each property's own schema resolved
        (for a body chosen by model: the branch of `model`, else of the first model)."""
        operation = self.operation(operation_id)
        if operation.branches:
            branch = operation.branches.get(model or "") or next(iter(operation.branches.values()))
            schema = branch[1].schema
        else:
            spec = self._find(operation_id)
            body = self._deref(spec.get("requestBody", {}))
            schema = self.resolve(json_content(body.get("content"))[1].get("schema", {}), "")[0]
        properties = {name: self.resolve(prop, "")[0] for name, prop in schema.get("properties", {}).items()}
        return {**schema, "properties": properties}

    def _find(self, operation_id: str) -> dict[str, Any]:
        operation = self.operation(operation_id)
        item = self._deref(self.document["paths"][operation.path])
        return item[operation.method.lower()]

    def operation(self, operation_id: str) -> Operation:
        try:
            return self.operations[operation_id]
        except KeyError:
            known = ", ".join(sorted(self.operations))
            raise ContractError(f"{self.path}: no operation {operation_id!r} (the document has: {known})") from None
