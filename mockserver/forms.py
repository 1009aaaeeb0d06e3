"""Request bodies sent as forms: `multipart/form-data` and `application/x-www-form-urlencoded`.

Some official SDKs send a create request as a form (OpenAI's `videos.create` always sends
multipart, the reference image as a file part). `parse_form` reads such a body into the JSON object
the contract's request schema describes, so that it is validated like a JSON body:

    "5"  -> 5     for an integer       "true" / "1" -> True   for a boolean
    "5.5" -> 5.5  for a number         '{"a": 1}'   -> {...}  for an object (JSON text)
    a string stays a string wherever the property allows one (OpenAI's `seconds: "8"` is a string enum)
    repeated names and `name[]` -> a list (items coerced); `name[key]` -> an object's property
    a file part -> "<file input.png, 1234 bytes, image/png>" (the fake never stores uploads)

Names the schema does not know are kept, as strings: the contract's validator decides about them.
Without a schema every value stays a string. Everything is read with the standard library; a body
that cannot be read is refused with `ApiError(400)` saying what was received and what to send
instead, and nothing else is ever raised.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from urllib.parse import parse_qsl, unquote

from mockserver.errors import ApiError
from mockserver.intake import MAX_DEPTH, deeper_than, encodable

MAX_FIELDS = 1000
_MAX_BRACKETS = 8  # keys in one name: a[b][c]...
Resolve = Callable[[dict[str, Any]], dict[str, Any]]

_FORM_HINT = "send the body as 'multipart/form-data' or 'application/x-www-form-urlencoded' (or as JSON)"
_INTEGER = re.compile(r"-?[0-9]{1,4000}")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]{0,4000})(?:\.[0-9]{1,4000})?(?:[eE][+-]?[0-9]{1,6})?")
_BOOLEANS = {"true": True, "false": False, "1": True, "0": False}
_NULLS = frozenset({"", "null"})
_ALL_KINDS = frozenset({"string", "integer", "number", "boolean", "null", "object", "array"})
_NAME = re.compile(r"([^\[\]]+)((?:\[[^\[\]]*\])+)")
_KEY = re.compile(r"\[([^\[\]]*)\]")
_UTF8 = frozenset({"utf-8", "utf8", "us-ascii", "ascii"})
_TEXT_SUBTYPES = ("json", "xml", "x-www-form-urlencoded")
_IDENTITY_ENCODINGS = frozenset({"7bit", "8bit", "binary"})
_BROWSER_ESCAPES = re.compile(r"%(22|0A|0D)", re.IGNORECASE)  # how browsers and httpx write '"', LF, CR in names
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def is_form(content_type: str | None) -> str | None:
    """The form a Content-Type names: "multipart" (multipart/form-data), "urlencoded"
    (application/x-www-form-urlencoded) or None."""
    if not content_type:
        return None
    media_type = content_type.partition(";")[0].strip().lower()
    if media_type == "multipart/form-data":
        return "multipart"
    if media_type == "application/x-www-form-urlencoded":
        return "urlencoded"
    return None


def parse_form(
    content_type: str, raw: bytes, schema: dict[str, Any] | None, resolve: Resolve | None = None
) -> dict[str, Any]:
    """The form body `raw` as the JSON object `schema` (an object schema, resolved at the property
    level; `resolve` follows a deeper {"$ref": ...}) describes; ApiError(400) when it cannot be read."""
    kind = is_form(content_type)
    if kind is None:
        raise ApiError(400, f"Unsupported Content-Type {content_type[:80]!r}; {_FORM_HINT}.")
    fields = _multipart(content_type, raw) if kind == "multipart" else _urlencoded(content_type, raw)
    return _Shaper(schema, resolve).build(fields)


# -- urlencoded ----------------------------------------------------------------------------------


def _urlencoded(content_type: str, raw: bytes) -> list[tuple[str, str]]:
    charset = _parameters(content_type)[1].get("charset", "utf-8").lower()
    if charset not in _UTF8:
        raise ApiError(400, f"Unsupported charset {charset[:40]!r}; send the form encoded in UTF-8.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(
            400, f"The form body is not valid UTF-8 (bad byte at offset {exc.start}); send it percent-encoded."
        ) from None
    try:
        fields = parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict", max_num_fields=MAX_FIELDS)
    except UnicodeDecodeError:
        raise ApiError(400, f"{_bad_percent(text)} send text percent-encoded from UTF-8.") from None
    except ValueError:
        raise ApiError(
            400, f"The form has more than {MAX_FIELDS} fields; this fake reads at most {MAX_FIELDS}."
        ) from None
    for name, _ in fields:
        if not name:
            raise ApiError(400, "The form has a field with no name ('=value'); send 'name=value'.")
    return fields


def _bad_percent(text: str) -> str:
    """Which field's name or value decodes to bytes that are not UTF-8 (the slow path of an error)."""
    for field in text.split("&"):
        name, _, value = field.partition("=")
        for part, what in ((name, "name"), (value, "value")):
            try:
                unquote(part.replace("+", " "), errors="strict")
            except UnicodeDecodeError:
                shown = unquote(name.replace("+", " "), errors="replace")[:60]
                return f"The {what} of form field {shown!r} is percent-encoded bytes that are not valid UTF-8;"
    return "A percent-encoded field is not valid UTF-8;"


# -- multipart -----------------------------------------------------------------------------------


def _parameters(header: str) -> tuple[str, dict[str, str]]:
    """A header's value (lowercased) and its parameters (names lowercased, quoted strings unquoted)."""
    value, _, rest = header.partition(";")
    parameters: dict[str, str] = {}
    at, end = 0, len(rest)
    while at < end:
        equals, semicolon = rest.find("=", at), rest.find(";", at)
        if semicolon < 0:
            semicolon = end
        if equals < 0 or equals > semicolon:  # a name without a value
            at = semicolon + 1
            continue
        name = rest[at:equals].strip().lower()
        at = equals + 1
        while at < end and rest[at] in " \t":
            at += 1
        if at < end and rest[at] == '"':
            chars = []
            at += 1
            while at < end and rest[at] != '"':
                if rest[at] == "\\" and at + 1 < end:
                    at += 1
                chars.append(rest[at])
                at += 1
            text = "".join(chars)
            semicolon = rest.find(";", at)
            at = end if semicolon < 0 else semicolon
        else:
            text = rest[at:semicolon].strip()
            at = semicolon
        at += 1
        if name and name not in parameters:
            parameters[name] = text
    return value.strip().lower(), parameters


def _boundary(content_type: str) -> bytes:
    boundary = _parameters(content_type)[1].get("boundary")
    example = "'Content-Type: multipart/form-data; boundary=<the line that separates the parts>'"
    if boundary is None:
        raise ApiError(
            400,
            f"The Content-Type {content_type[:120]!r} has no boundary parameter; send {example} "
            "(HTTP clients add it when they build a multipart body: do not set the header by hand).",
        )
    if not 1 <= len(boundary) <= 200 or not boundary.isascii() or not boundary.isprintable():
        raise ApiError(
            400, f"The multipart boundary {boundary[:80]!r} is not 1 to 70 printable ASCII characters; send {example}."
        )
    return boundary.encode("ascii")


def _delimiters(data: bytes, delimiter: bytes, newline: bytes) -> Iterator[tuple[int, int | None]]:
    """(where each delimiter line starts, where the part after it starts, or None for the closing
    one). A delimiter followed on its line by anything but spaces is part of the content."""
    at = 0
    while True:
        found = data.find(delimiter, at)
        if found < 0:
            return
        after = found + len(delimiter)
        if data.startswith(b"--", after):
            yield found, None
            return
        end = data.find(newline, after, after + 256 + len(newline))
        if end >= 0 and not data[after:end].strip(b" \t"):
            yield found, end + len(newline)
            at = end + len(newline)
        else:
            at = after


def _multipart(content_type: str, raw: bytes) -> list[tuple[str, str | _File]]:
    boundary = _boundary(content_type)
    shown = boundary.decode()[:80]
    if raw.startswith(b"--" + boundary):  # where the first boundary line starts
        first = 0
    else:
        first = raw.find(b"\n--" + boundary)
        first += 1 if first >= 0 else 0
    if first < 0:
        raise ApiError(
            400,
            f"The multipart body does not contain its boundary line '--{shown}' (from the Content-Type); "
            "send the parts separated by it, or the Content-Type of the body you send.",
        )
    end = raw.find(b"\n", first + 2 + len(boundary))  # CRLF as the RFC says; bare LF from hand-made bodies
    newline = b"\n" if end > 0 and raw[end - 1 : end] != b"\r" else b"\r\n"
    data = newline + raw
    fields: list[tuple[str, str | _File]] = []
    start: int | None = None
    closed = False
    for at, after in _delimiters(data, newline + b"--" + boundary, newline):
        if start is not None:
            if len(fields) >= MAX_FIELDS:
                raise ApiError(400, f"The form has more than {MAX_FIELDS} parts; this fake reads at most {MAX_FIELDS}.")
            fields.append(_part(data[start:at], newline, len(fields) + 1))
        if after is None:
            closed = True
            break
        start = after
    if not closed:
        raise ApiError(
            400,
            f"The multipart body ends without its closing boundary line '--{shown}--'; "
            "send the whole body (was it cut short?).",
        )
    return fields


class _File:
    """A file part, as far as the fake cares."""

    __slots__ = ("placeholder",)

    def __init__(self, filename: str | None, size: int, media_type: str) -> None:
        name = _CONTROL.sub("?", filename)[:100] if filename else ""
        self.placeholder = f"<file {name + ', ' if name else ''}{size} bytes, {_CONTROL.sub('?', media_type)[:100]}>"


def _headers(block: bytes, newline: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    name = ""
    for line in block.decode("utf-8", "replace").split(newline.decode()):
        if line[:1] in (" ", "\t") and name:  # an obsolete folded line
            headers[name] += " " + line.strip()
            continue
        name, colon, value = line.partition(":")
        name = name.strip().lower()
        if not colon or not name:
            raise ApiError(
                400, f"A multipart part has the header line {line[:80]!r}; part headers are 'Name: value' lines."
            )
        headers.setdefault(name, value.strip())
    return headers


def _part(part: bytes, newline: bytes, number: int) -> tuple[str, str | _File]:
    if part.startswith(newline):
        headers: dict[str, str] = {}
        content = part[len(newline) :]
    else:
        end = part.find(newline + newline)
        if end < 0:
            raise ApiError(
                400,
                f"Part {number} of the multipart body has no blank line after its headers; "
                "send the headers, an empty line, then the value.",
            )
        headers = _headers(part[:end], newline)
        content = part[end + 2 * len(newline) :]
    disposition, parameters = _parameters(headers.get("content-disposition", ""))
    name = _BROWSER_ESCAPES.sub(_unescape, parameters.get("name", ""))
    if disposition != "form-data" or not name:
        found = repr(headers["content-disposition"][:80]) if "content-disposition" in headers else "none"
        raise ApiError(
            400,
            f"Part {number} of the multipart body has no field name (Content-Disposition: {found}); "
            "send 'Content-Disposition: form-data; name=\"<field>\"'.",
        )
    encoding = headers.get("content-transfer-encoding", "binary").lower()
    if encoding not in _IDENTITY_ENCODINGS:
        raise ApiError(
            400,
            f"Part {name[:60]!r} has 'Content-Transfer-Encoding: {encoding[:40]}'; send the value's bytes as they are.",
        )
    filename = _filename(parameters)
    media_type, type_parameters = _parameters(headers.get("content-type") or "")
    if filename is not None or (media_type and not _textual(media_type)):
        return name, _File(filename, len(content), media_type or "application/octet-stream")
    charset = type_parameters.get("charset", "utf-8").lower()
    if charset not in _UTF8:
        raise ApiError(
            400, f"Part {name[:60]!r} is in charset {charset[:40]!r}; send text fields in UTF-8.", param=name[:200]
        )
    try:
        return name, content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(
            400,
            f"The value of form field {name[:60]!r} is not valid UTF-8 (bad byte at offset {exc.start}); "
            "send text fields in UTF-8, or a file with a filename.",
            param=name[:200],
        ) from None


def _unescape(match: re.Match[str]) -> str:
    return chr(int(match.group(1), 16))


def _filename(parameters: dict[str, str]) -> str | None:
    extended = parameters.get("filename*")  # RFC 5987: UTF-8''name%20with%20spaces
    if extended is not None:
        charset, _, encoded = extended.partition("'")
        latin = charset.strip().lower() in ("iso-8859-1", "latin1", "latin-1")  # the only other charset RFC 5987 names
        return unquote(encoded.partition("'")[2], encoding="latin-1" if latin else "utf-8", errors="replace")
    filename = parameters.get("filename")
    return None if filename is None else _BROWSER_ESCAPES.sub(_unescape, filename)


def _textual(media_type: str) -> bool:
    main, _, sub = media_type.partition("/")
    return main == "text" or sub.rpartition("+")[2] in _TEXT_SUBTYPES


# -- shaping by the schema -----------------------------------------------------------------------


_NOTHING = object()
Option = tuple[frozenset[str] | None, tuple[Any, ...] | None]  # (types it allows, or any; its enum, or any value)


class _Shaper:
    """Turns (name, value) pairs into the object the schema describes."""

    def __init__(self, schema: dict[str, Any] | None, resolve: Resolve | None) -> None:
        self.resolve = resolve
        self.properties: dict[str, Any] | None = None
        if isinstance(schema, dict):
            self.properties = {}
            for found in self._flatten(schema):  # a body's own properties, then those of its branches
                properties = found.get("properties")
                if isinstance(properties, dict):
                    for name, value in properties.items():
                        self.properties.setdefault(name, value)

    def _resolved(self, schema: Any) -> Any:
        if isinstance(schema, dict) and "$ref" in schema and self.resolve is not None:
            try:
                return self.resolve(schema)
            except (KeyError, ValueError, TypeError, LookupError):
                return schema
        return schema

    def _flatten(self, schema: Any, depth: int = 0) -> list[dict[str, Any]]:
        """A schema and the branches of its anyOf / oneOf / allOf, $refs followed (at most 64 of
        them, so that a schema that refers to itself ends)."""
        found: list[dict[str, Any]] = []
        pending = [(schema, depth)]
        while pending and len(found) < 64:
            schema, depth = pending.pop(0)
            schema = self._resolved(schema)
            if not isinstance(schema, dict) or depth > 8:
                continue
            found.append(schema)
            for keyword in ("allOf", "anyOf", "oneOf"):
                branches = schema.get(keyword)
                if isinstance(branches, list):
                    pending += [(branch, depth + 1) for branch in branches[:64]]
        return found

    def _options(self, schema: Any) -> list[Option]:
        """What a property allows, branch by branch; [] when it allows anything."""
        options: list[Option] = []
        for part in self._flatten(schema):
            kinds = part.get("type")
            allowed = {kinds} if isinstance(kinds, str) else set()
            if isinstance(kinds, list):
                allowed = {kind for kind in kinds if isinstance(kind, str)}
            enum = part.get("enum") if isinstance(part.get("enum"), list) else None
            if "const" in part:
                enum = [part["const"]]
            if not allowed and enum is not None:
                allowed = {_kind(value) for value in enum}
            if part.get("nullable") is True and allowed:
                allowed.add("null")
            if allowed or enum is not None:
                options.append((frozenset(allowed) if allowed else None, tuple(enum) if enum is not None else None))
        return options

    def _items(self, schema: Any) -> Any:
        for part in self._flatten(schema):
            if "items" in part:
                return part["items"]
        return None

    def _child(self, schema: Any, key: str) -> Any:
        """The schema of property `key` of an object schema (or of its additionalProperties)."""
        for part in self._flatten(schema):
            properties = part.get("properties")
            if isinstance(properties, dict) and key in properties:
                return properties[key]
        for part in self._flatten(schema):
            if isinstance(part.get("additionalProperties"), dict):
                return part["additionalProperties"]
        return None

    def build(self, fields: Sequence[tuple[str, str | _File]]) -> dict[str, Any]:
        groups: dict[tuple[str, ...], tuple[list[str | _File], bool]] = {}
        for name, field in fields:
            path, listed = self._path(name)
            groups.setdefault(path, ([], listed))[0].append(field)
        body: dict[str, Any] = {}
        for path, (values, listed) in groups.items():
            texts = [part.placeholder if isinstance(part, _File) else part for part in values]
            if self.properties is None or path[0] not in self.properties:
                value: Any = texts if listed or len(texts) > 1 else texts[0]
            else:
                schema = self.properties[path[0]]
                for key in path[1:]:
                    schema = self._child(schema, key)
                value = self._value(texts, listed, schema)
            _place(body, path, value)
        return body

    def _path(self, name: str) -> tuple[tuple[str, ...], bool]:
        """The keys a field name stands for, and whether it ends in [] (a list): 'a[b][]' -> ('a', 'b'), True.
        Brackets count only on a name the schema knows without them."""
        match = _NAME.fullmatch(name)
        if match is None or self.properties is None or name in self.properties or match.group(1) not in self.properties:
            return (name,), False
        keys = _KEY.findall(match.group(2))
        if len(keys) > _MAX_BRACKETS or "" in keys[:-1]:
            return (name,), False
        options = self._options(self.properties[match.group(1)])
        if keys[0] and options and not any(kinds is None or "object" in kinds for kinds, _ in options):
            return (name,), False  # a[b] for a property that is no object: a name of its own
        listed = keys[-1] == ""
        return (match.group(1), *(keys[:-1] if listed else keys)), listed

    def _value(self, texts: list[str], listed: bool, schema: Any) -> Any:
        options = self._options(schema)
        if listed or len(texts) > 1:
            if not options or any(kinds is None or "array" in kinds for kinds, _ in options):
                items = self._items(schema)
                item_options = self._options(items)
                return [self._coerce(text, item_options, items) for text in texts]
            return [self._coerce(text, options, schema) for text in texts]  # the validator says it is one value
        return self._coerce(texts[0], options, schema)

    def _coerce(self, text: str, options: list[Option], schema: Any, depth: int = 0) -> Any:
        """The first reading of `text` that an option allows: as it is, a number, a boolean, null, JSON;
        else a list of it, for an array; else the first of a type allowed (its enum then refuses it)."""
        if not options or depth > _MAX_BRACKETS:
            return text
        fitting = (value for kind, value in _readings(text, options) if any(_fits(kind, value, o) for o in options))
        found = next(fitting, _NOTHING)
        if found is not _NOTHING:
            return found
        if any(kinds is not None and "array" in kinds for kinds, _ in options):
            items = self._items(schema)
            return [self._coerce(text, self._options(items), items, depth + 1)]
        typed = (
            value for kind, value in _readings(text, options) if any(_fits(kind, value, (k, None)) for k, _ in options)
        )
        return next(typed, text)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


_NUMBERS = frozenset({"integer", "number"})


def _fits(kind: str, value: Any, option: Option) -> bool:
    """Whether a reading of type `kind` is of a type the option allows and, if it has an enum, in it."""
    kinds, enum = option
    if kinds is not None and kind not in kinds:
        whole = kind == "integer" or (kind == "number" and value == int(value))
        if not (kind in _NUMBERS and ("number" in kinds or ("integer" in kinds and whole))):
            return False
    if enum is None:
        return True
    for choice in enum:
        other = _kind(choice)
        if (other == kind or (other in _NUMBERS and kind in _NUMBERS)) and choice == value:
            return True
    return False


def _readings(text: str, options: list[Option]) -> Iterator[tuple[str, Any]]:
    """The ways `text` can be read, in order of preference (each only for a type some option allows)."""
    kinds: set[str] = set().union(*(kinds or _ALL_KINDS for kinds, _ in options))
    if "string" in kinds:
        yield "string", text
    if kinds & {"integer", "number"}:
        if _INTEGER.fullmatch(text):
            yield "integer", int(text)
        elif _NUMBER.fullmatch(text):
            number = float(text)
            if math.isfinite(number):
                yield "number", number
    if "boolean" in kinds and text.lower() in _BOOLEANS:
        yield "boolean", _BOOLEANS[text.lower()]
    if "null" in kinds and text.lower() in _NULLS:
        yield "null", None
    if kinds & {"object", "array"} and text.lstrip()[:1] in ("{", "["):
        value = _json(text)
        if value is not None:
            yield _kind(value), value


def _json(text: str) -> Any:
    try:
        value = _DECODER.decode(text)
    except (ValueError, RecursionError):
        return None
    if deeper_than(value, MAX_DEPTH):
        raise ApiError(400, "A form field holds JSON nested too deeply to be a request.")
    if "\\u" in text.lower() and not encodable(value):
        raise ApiError(
            400, "A form field's JSON escapes a lone UTF-16 surrogate (like \\ud800), which is not a character."
        )
    return value


def _place(body: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    """Put `value` at `path` in `body`; ApiError when a name is sent both as a value and as an object."""
    where = body
    for key in path[:-1]:
        where = where.setdefault(key, {})
        if not isinstance(where, dict):
            break
    else:
        if path[-1] not in where:
            where[path[-1]] = value
            return
    raise ApiError(
        400,
        f"The form sends {path[0][:60]!r} both as a value and as an object ('{path[0][:60]}[key]=...'); "
        "send one or the other.",
        param=path[0][:200],
    )
