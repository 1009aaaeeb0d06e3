"""Safe YAML with line numbers, for files a person writes (scenarios, key maps).

`read_documents(path)` returns each YAML document of the file with an index from its paths
(`("timeline", 2, "status")`) to line numbers, so a problem can be reported as file:line: field.
Only safe YAML is read (no Python tags); files over `MAX_FILE_BYTES` and documents with more
than `MAX_NODES` nodes once aliases are expanded (alias bombs) are refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, overload

import yaml

MAX_FILE_BYTES = 256 * 1024
MAX_NODES = 20_000

Lines = dict[tuple[Any, ...], int]
_STR = "tag:yaml.org,2002:str"
_BOOL = "tag:yaml.org,2002:bool"


class _Loader(yaml.SafeLoader):
    """Safe YAML where only true/false are booleans (as in YAML 1.2): `on`, `no`, `yes` stay text."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


class FileProblem(ValueError):
    """A person-written file is unreadable or wrong. `str()` reads `file:line: field: problem`."""

    def __init__(self, source: str, line: int | None, field: str | None, problem: str) -> None:
        self.source, self.line, self.field, self.problem = source, line, field, problem
        where = f"{source}:{line}" if line else source
        super().__init__(f"{where}: {field}: {problem}" if field else f"{where}: {problem}")


_Problem = TypeVar("_Problem", bound=FileProblem)


@dataclass(frozen=True)
class Document:
    source: str
    data: Any
    lines: Lines

    @overload
    def problem(self, path: tuple[Any, ...], message: str) -> FileProblem: ...
    @overload
    def problem(self, path: tuple[Any, ...], message: str, kind: type[_Problem]) -> _Problem: ...
    def problem(self, path: tuple[Any, ...], message: str, kind: type[FileProblem] = FileProblem) -> FileProblem:
        """An error (of `kind`) located at `path` (or its nearest ancestor that has a line)."""
        probe = tuple(path)
        while probe and probe not in self.lines:
            probe = probe[:-1]
        return kind(self.source, self.lines.get(probe), field_name(path), message)


def field_name(path: tuple[Any, ...] | list[Any]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


class _NodeProblem(ValueError):
    def __init__(self, node: yaml.Node, path: tuple[Any, ...], message: str) -> None:
        super().__init__(message)
        self.line, self.path = node.start_mark.line + 1, path


def _check_scalar(node: yaml.ScalarNode, path: tuple[Any, ...]) -> None:
    try:
        node.value.encode("utf-8")
    except UnicodeEncodeError:
        raise _NodeProblem(node, path, "holds a lone UTF-16 surrogate escape, which is not a character") from None
    if node.tag == "tag:yaml.org,2002:float" and node.value.lower().lstrip("+-") in (".inf", ".nan"):
        raise _NodeProblem(node, path, f"{node.value} is not a usable number")


def _index(node: yaml.Node, path: tuple[Any, ...], lines: Lines, budget: list[int]) -> None:
    budget[0] -= 1
    if budget[0] < 0:
        raise ValueError(f"more than {MAX_NODES} YAML nodes once aliases are expanded (an alias bomb?)")
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.ScalarNode):
        _check_scalar(node, path)
    elif isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            if key_node.tag != _STR:
                raise _NodeProblem(key_node, path, f"the key {key_node.value!r} must be text (quote it)")
            if key_node.value in seen:
                raise _NodeProblem(key_node, (*path, key_node.value), "appears twice in this mapping")
            seen.add(key_node.value)
            lines[(*path, key_node.value)] = key_node.start_mark.line + 1
            _index(value_node, (*path, key_node.value), lines, budget)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _index(item, (*path, index), lines, budget)


def read_documents(path: Path, kind: type[FileProblem] = FileProblem, *, secret_keys: bool = False) -> list[Document]:
    """Every YAML document of the file. With `secret_keys` (key maps, whose keys are API keys), a
    problem names its line but never the key."""
    source = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise kind(source, None, None, f"file is {size} bytes; the limit is {MAX_FILE_BYTES}")
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise kind(source, None, None, f"cannot read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise kind(source, None, None, f"not UTF-8 text: {exc.reason}") from exc
    loader = _Loader(text)
    documents = []
    try:
        while loader.check_node():
            node = loader.get_node()
            assert node is not None  # check_node() said one follows
            lines: Lines = {}
            _index(node, (), lines, [MAX_NODES])
            documents.append(Document(source, loader.construct_document(node), lines))
    except _NodeProblem as exc:
        field = "an API key" if secret_keys else field_name(exc.path)
        raise kind(source, exc.line, field, str(exc)) from exc
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise kind(source, line, None, f"not valid YAML: {exc.problem}") from exc
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        raise kind(source, None, None, f"not valid YAML: {exc}") from exc
    finally:
        loader.dispose()
    if not documents:
        raise kind(source, None, None, "the file is empty")
    return documents
