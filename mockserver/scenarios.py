"""Scenario files: safe YAML, validated against `scenario.schema.json`, then checked for sense.

A scenario scripts one task lifecycle (see README, "Scenario format"). Everything is checked when
the files are loaded, so a broken file stops the server before it answers anything:

    ScenarioError (ValueError)      file, line and field of the first problem

`load_directory()` reads every `*.yaml` / `*.yml` file of a folder; `load_file()` reads one.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema_rs
import yaml

from mockserver.errors import STATUS_TYPES

SCHEMA_PATH = Path(__file__).with_name("scenario.schema.json")
MAX_FILE_BYTES = 256 * 1024
MAX_NODES = 20_000
DEFAULT_RESULT_URL_TTL = 24 * 3600.0
DEFAULT_CREDITS = 5

STATUS_RANK = {"pending": 0, "processing": 1, "completed": 2, "failed": 2}
TERMINAL = frozenset({"completed", "failed"})
UNSET: Any = type("Unset", (), {"__repr__": lambda self: "UNSET"})()

_VALIDATOR = jsonschema_rs.Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))



class ScenarioError(ValueError):
    """A scenario file is unreadable or invalid. `str()` reads `file:line: field: problem`."""

    def __init__(self, source: str, line: int | None, field: str | None, problem: str) -> None:
        self.source, self.line, self.field, self.problem = source, line, field, problem
        where = f"{source}:{line}" if line else source
        super().__init__(f"{where}: {field}: {problem}" if field else f"{where}: {problem}")


@dataclass(frozen=True)
class Rule:
    api_key: str | None = None
    prompt_contains: str | None = None
    prompt_regex: re.Pattern[str] | None = None
    model: str | None = None
    aspect_ratio: str | None = None

    def matches(self, api_key: str, body: dict[str, Any]) -> bool:
        prompt = body.get("prompt")
        prompt = prompt if isinstance(prompt, str) else ""
        return (
            (self.api_key is None or self.api_key == api_key)
            and (self.prompt_contains is None or self.prompt_contains in prompt)
            and (self.prompt_regex is None or self.prompt_regex.search(prompt) is not None)
            and (self.model is None or self.model == body.get("model"))
            and (self.aspect_ratio is None or self.aspect_ratio == body.get("aspect_ratio"))
        )

    def describe(self) -> dict[str, str]:
        out = {k: v for k, v in vars(self).items() if v is not None and k != "prompt_regex"}
        if self.prompt_regex is not None:
            out["prompt_regex"] = self.prompt_regex.pattern
        return out


@dataclass(frozen=True)
class Submit:
    status: int = 200
    estimated_time: int | None = None
    error: dict[str, Any] | None = None
    headers: tuple[tuple[str, str], ...] = ()
    creates_task: bool = False


@dataclass(frozen=True)
class Step:
    at: float
    status: str
    progress: int
    ramp: bool
    polls: int = 0
    results: Any = UNSET  # UNSET: the fake's own video; None: not attached yet; list: as given
    error: dict[str, str] | None = None


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    source: str
    timeline: tuple[Step, ...]
    rules: tuple[Rule, ...] = ()
    submit: Submit = field(default_factory=Submit)
    result_url_ttl: float = DEFAULT_RESULT_URL_TTL
    credits_reserved: float = DEFAULT_CREDITS
    times: tuple[float, ...] = field(init=False, repr=False)
    held_steps: tuple[int, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "times", tuple(step.at for step in self.timeline))
        object.__setattr__(self, "held_steps", tuple(i for i, step in enumerate(self.timeline) if step.polls))

    @property
    def completes_at(self) -> float | None:
        """Scenario time at which the result is first attached, if it ever is."""
        for step in self.timeline:
            if step.status == "completed" and step.results is not None:
                return step.at
        return None

    @property
    def estimated_time(self) -> int:
        if self.submit.estimated_time is not None:
            return self.submit.estimated_time
        end = next((s.at for s in self.timeline if s.status in TERMINAL), None)
        return math.ceil(end) if end is not None else 45


def _line_index(node: yaml.Node, path: tuple[Any, ...], lines: dict[tuple[Any, ...], int], budget: list[int]) -> None:
    budget[0] -= 1
    if budget[0] < 0:
        raise ValueError("too many YAML nodes (is it an alias bomb?)")
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            _line_index(value_node, (*path, key_node.value), lines, budget)
            lines[(*path, key_node.value)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _line_index(item, (*path, index), lines, budget)


def _read_yaml(path: Path) -> tuple[Any, dict[tuple[Any, ...], int]]:
    source = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ScenarioError(source, None, None, f"file is {size} bytes; the limit is {MAX_FILE_BYTES}")
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(source, None, None, f"cannot read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ScenarioError(source, None, None, f"not UTF-8 text: {exc.reason}") from exc
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise ScenarioError(source, None, None, "the file is empty")
        lines: dict[tuple[Any, ...], int] = {}
        _line_index(node, (), lines, [MAX_NODES])
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise ScenarioError(source, line, None, f"not valid YAML: {exc.problem}") from exc
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        if isinstance(exc, ScenarioError):
            raise
        raise ScenarioError(source, None, None, f"not valid YAML: {exc}") from exc
    finally:
        loader.dispose()
    return data, lines


def _field(path: tuple[Any, ...] | list[Any]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


class _Checker:
    def __init__(self, source: str, lines: dict[tuple[Any, ...], int]) -> None:
        self.source, self.lines = source, lines

    def fail(self, path: tuple[Any, ...], problem: str) -> ScenarioError:
        probe = tuple(path)
        while probe and probe not in self.lines:
            probe = probe[:-1]
        return ScenarioError(self.source, self.lines.get(probe), _field(path), problem)


def _schema_error(data: Any, check: _Checker) -> ScenarioError | None:
    errors = sorted(_VALIDATOR.iter_errors(data), key=lambda e: len(list(e.instance_path)), reverse=True)
    if not errors:
        return None
    error = errors[0]
    path = tuple(error.instance_path)
    kind = error.kind
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.Required):
        return check.fail(path, f"missing required field '{kind.property}'")
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.AdditionalProperties):
        unexpected = ", ".join(repr(p) for p in kind.unexpected)
        return check.fail(path, f"unknown field {unexpected}; see mockserver/scenario.schema.json for the allowed ones")
    return check.fail(path, error.message)


def _build_rules(raw: list[dict[str, Any]], check: _Checker) -> tuple[Rule, ...]:
    rules = []
    for index, item in enumerate(raw):
        pattern = None
        if "prompt_regex" in item:
            try:
                pattern = re.compile(item["prompt_regex"])
            except re.error as exc:
                raise check.fail(("match", index, "prompt_regex"), f"not a valid regular expression: {exc}") from None
        rules.append(Rule(**{**item, "prompt_regex": pattern}))
    return tuple(rules)


def _build_submit(raw: dict[str, Any], check: _Checker) -> Submit:
    status = raw.get("status", 200)
    if status == 200:
        for key in ("error", "headers", "creates_task"):
            if key in raw:
                raise check.fail(("submit", key), "only meaningful with an error status (submit.status other than 200)")
        return Submit(estimated_time=raw.get("estimated_time"))
    if "estimated_time" in raw:
        raise check.fail(("submit", "estimated_time"), "only meaningful when submit.status is 200")
    error = {"type": STATUS_TYPES[status], "message": f"Simulated HTTP {status} from the mock scenario.", **raw.get("error", {})}
    headers = tuple((str(k), str(v)) for k, v in raw.get("headers", {}).items())
    return Submit(status, None, error, headers, bool(raw.get("creates_task", False)))


def _build_timeline(raw: list[dict[str, Any]], check: _Checker) -> tuple[Step, ...]:
    steps: list[Step] = []
    for index, item in enumerate(raw):
        path = ("timeline", index)
        status = item["status"]
        previous = steps[-1] if steps else None
        if previous is not None:
            if item["at"] < previous.at:
                raise check.fail((*path, "at"), f"{item['at']} is earlier than the step before ({previous.at}); steps go forward in time")
            if previous.status == "failed":
                raise check.fail((*path, "status"), "nothing can follow a 'failed' step: terminal is final")
            if previous.status == "completed" and status != "completed":
                raise check.fail((*path, "status"), f"'{status}' cannot follow 'completed': terminal is final")
            if STATUS_RANK[status] < STATUS_RANK[previous.status]:
                raise check.fail((*path, "status"), f"'{status}' cannot follow '{previous.status}': status never moves backward")
        default = 0 if previous is None else previous.progress
        progress = item.get("progress", 100 if status == "completed" else (0 if status == "pending" else default))
        if previous is not None and progress < previous.progress:
            raise check.fail((*path, "progress"), f"{progress} is below the step before ({previous.progress}); progress never falls")
        if "results" in item and status != "completed":
            raise check.fail((*path, "results"), "only a 'completed' step has results")
        if status == "failed" and "error" not in item:
            raise check.fail(path, "missing required field 'error' (a 'failed' step says why: code and message)")
        if "error" in item and status != "failed":
            raise check.fail((*path, "error"), "only a 'failed' step has an error")
        error = {"type": "task_error", **item["error"]} if "error" in item else None
        steps.append(
            Step(
                at=float(item["at"]),
                status=status,
                progress=progress,
                ramp=item.get("ramp", status == "processing"),
                polls=item.get("polls", 0),
                results=item.get("results", UNSET),
                error=error,
            )
        )
    return tuple(steps)


def parse(data: Any, source: str, lines: dict[tuple[Any, ...], int] | None = None) -> Scenario:
    """Build a Scenario from already-loaded data (as YAML would give it)."""
    check = _Checker(source, lines or {})
    problem = _schema_error(data, check)
    if problem is not None:
        raise problem
    return Scenario(
        name=data["name"],
        description=data["description"].strip(),
        source=source,
        timeline=_build_timeline(data["timeline"], check),
        rules=_build_rules(data.get("match", []), check),
        submit=_build_submit(data.get("submit", {}), check),
        result_url_ttl=float(data.get("result_url_ttl", DEFAULT_RESULT_URL_TTL)),
        credits_reserved=data.get("credits_reserved", DEFAULT_CREDITS),
    )


def load_file(path: Path) -> Scenario:
    data, lines = _read_yaml(path)
    return parse(data, str(path), lines)


def scenario_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        raise ScenarioError(str(directory), None, None, "not a directory of scenario files")
    return sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def load_directories(directories: list[Path]) -> dict[str, Scenario]:
    """Load every scenario of each folder in order; a later folder may replace a name of an earlier one."""
    scenarios: dict[str, Scenario] = {}
    for directory in directories:
        seen: dict[str, str] = {}
        for path in scenario_files(directory):
            scenario = load_file(path)
            if scenario.name in seen:
                raise ScenarioError(
                    str(path), None, "name", f"'{scenario.name}' is already the name of {seen[scenario.name]}"
                )
            seen[scenario.name] = str(path)
            scenarios[scenario.name] = scenario
    return scenarios
