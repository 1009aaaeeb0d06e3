"""Answer shapes compiled into Python functions, once, at start-up.

`compile_node(node)` turns a `contracts._shape.Node` tree into a function of a *context* (the
values the fake supplies, by source name: `id`, `status`, `message`...) that returns the answer:
straight-line code and dict displays, as fast as one written by hand for its shape. With
`bindings` (source -> a Python expression of the function's parameters) the function reads its
values from those expressions instead of a context: the poll answer reads the task and its state
directly, without building a dict.

The rules, per property:
- a value from the context under its source wins, unless the source is WEAK in that context and
  the document pins a value (const, or an enum the value is not in);
- no value: the document's const or default; for a required property also its first example or
  enum value, an object built from its own properties, null, or the smallest value of its type;
- an optional property that would be null, or that has no value to give (only an example, an
  enum, an object with nothing inside), is left out; one marked `x-mockserver-omit` always is;
- a property that holds the video (`gate`) is null, or left out, until the task has a result;
- a time is Unix seconds, or RFC 3339 text where the property is a string; a duration or a size
  is text where the property is a string (`"4"`).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

from contracts._shape import ABSENT, AS_TEXT, TIMES, Node

OMIT = object()  # a property left out of the answer
WEAK = "\x00weak"  # context key: the sources whose values give way to what the contract pins


class Verbatim(list):
    """Values sent as they are (results a scenario scripted, tasks already rendered)."""


def iso(value: Any) -> Any:
    """Unix seconds as RFC 3339 text (UTC, milliseconds), as most APIs write times."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        moment = datetime.datetime.fromtimestamp(value, datetime.UTC)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return value


def text(value: Any) -> Any:
    """A number as the text a string property holds (`4`, `5.5`)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value


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


def compile_node(
    node: Node, bindings: dict[str, str] | None = None, parameters: str = "c", **names: Any
) -> Callable[..., Any]:
    """A function of a context (or of `parameters`, with `bindings`) that gives this node's value
    (OMIT: leave the property out). `names` are in scope of the bindings' expressions."""
    generator = _Generator()
    name = generator.function(node, whole=True, bindings=bindings, parameters=parameters)
    namespace: dict[str, Any] = {
        "A": ABSENT, "OMIT": OMIT, "WEAK": WEAK, "E": frozenset(), "Verbatim": Verbatim, "ISO": iso, "TXT": text, **names,
    }  # fmt: skip
    namespace["K"] = generator.constants
    exec(compile("\n".join(generator.lines), f"<render {node.pointer or '/'}>", "exec"), namespace)  # noqa: S102
    return namespace[name]


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
        return node.source is not None or node.gate or not _has_value(node)

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
        if node.required:
            return self.build(node, out, depth) if _builds(node) else self.constant(_fixed(node))
        value = node.const if node.const is not ABSENT else node.pinned
        if value is not ABSENT:
            return "OMIT" if value is None else self.constant(value)
        if _builds(node) and _inside(node):
            return self.build(node, out, depth)
        return "OMIT"

    def value(self, node: Node, out: list[str], depth: int) -> str:
        """Statements that put the node's value into a variable (or a plain expression); its name."""
        if node.gate:
            return self.gated(node, out, depth)
        if node.source is None:
            return self.absent(node, out, depth)
        pad = "    " * depth
        var = self.fresh("v")
        source = repr(node.source)
        if self.bindings is not None:  # values read from expressions: always there, never weak
            expression = self.bindings.get(node.source)
            if expression is None and node.source.startswith("request:"):
                expression = f"(t.request or E_REQUEST).get({node.source[8:]!r})"
            if expression is None:
                return self.absent(node, out, depth)
            out.append(f"{pad}{var} = {self.converted(node, expression)}")
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
            none = "None" if node.nullable else self.constant(_fixed(node))
        else:
            none = "OMIT"
        out.append(f"{pad}    {var} = {none}")
        if self.bindings is None and self.conversion(node) is not None:
            out.append(f"{pad}elif {var} is not OMIT:")
            out.append(f"{pad}    {var} = {self.conversion(node)}({var})")
        if node.source.startswith("request"):
            return var  # the request, echoed as the client sent it: not rebuilt
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

    def gated(self, node: Node, out: list[str], depth: int) -> str:
        """A node that holds the video: null (left out when optional) until there is a result."""
        pad = "    " * depth
        var = self.fresh("g")
        results = "r" if self.bindings is not None else "c.get('results')"
        out.append(f"{pad}if {results} is None:")
        out.append(f"{pad}    {var} = {'None' if node.required else 'OMIT'}")
        out.append(f"{pad}else:")
        inner: list[str] = []
        ungated = Node(**{**vars(node), "gate": False})
        found = self.value(ungated, inner, depth + 1)
        out += inner
        out.append(f"{pad}    {var} = {found}")
        return var

    @staticmethod
    def conversion(node: Node) -> str | None:
        """The function that writes a source's value as this node's type holds it (or None)."""
        if node.kind != "string" or node.source is None:
            return None
        if node.source in TIMES:
            return "ISO"
        if node.source in AS_TEXT:
            return "TXT"
        return None

    def converted(self, node: Node, expression: str) -> str:
        conversion = self.conversion(node)
        return f"{conversion}({expression})" if conversion is not None else expression


def _builds(node: Node) -> bool:
    """Whether a node with no value is built from its own properties."""
    return node.kind == "object" and bool(node.properties) and node.const is ABSENT


def _has_value(node: Node) -> bool:
    """Whether an optional node has something to give: a source, a const or default, or (an
    object) a property that has (or must have) a value."""
    if node.source is not None or node.gate or node.const is not ABSENT or node.pinned is not ABSENT:
        return True
    return _builds(node) and _inside(node)


def _inside(node: Node) -> bool:
    """Whether an object has a property that has (or must have) a value."""
    return any(not child.omit and (child.required or _has_value(child)) for _, child in node.properties)


def _fixed(node: Node) -> Any:
    """What the document fixes for a required node: const, else default, first example or first
    enum value, else null (nullable) or the smallest value of its type."""
    if node.const is not ABSENT:
        return node.const
    if node.fixed is not ABSENT:
        return node.fixed
    return None if node.nullable or node.kind == "object" else _minimal(node)
