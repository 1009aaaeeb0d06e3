"""Scenario files: safe YAML, validated against `scenario.schema.json`, then checked for sense.

A scenario scripts what a task goes through (README, "Scenario format"): how submit is answered
(once, or a sequence counted per API key), which polls get errors or connection faults, the
lifecycle timeline, latency, and when the task or its video disappears. A scenario may instead be
a weighted `mix` of other scenarios. Everything is checked when the files are loaded, so a broken
file stops the server before it answers anything:

    ScenarioError (ValueError)      file, line and field of the first problem

`load_directories()` reads every `*.yaml` / `*.yml` scenario file of some folders (`keys.yaml`
is a key map, see `mockserver.keymap`); `load_file()` reads one file, which may hold several
scenarios as YAML documents separated by `---`.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema_rs

from contracts import best_error, describe_error
from contracts._vocabulary import PHASE_RANK, PHASES, TERMINAL_PHASES, Vocabulary
from mockserver.faults import Delay, Fault
from mockserver.journal import key_id
from mockserver.yamlfile import Document, FileProblem, read_documents

SCHEMA_PATH = Path(__file__).with_name("scenario.schema.json")
KEYMAP_FILE = "keys.yaml"
DEFAULT_RESULT_URL_TTL = 24 * 3600.0
DEFAULT_CREDITS = 5

TERMINAL = TERMINAL_PHASES  # the phases a task ends in
UNSET: Any = type("Unset", (), {"__repr__": lambda self: "UNSET"})()

_SCHEMA = json.loads(SCHEMA_PATH.read_text())
_VALIDATOR = jsonschema_rs.Draft202012Validator(_SCHEMA)


class ScenarioError(FileProblem):
    """A scenario file is unreadable or invalid. `str()` reads `file:line: field: problem`."""


@dataclass(frozen=True)
class Rule:
    api_key: str | None = None
    prompt_contains: str | None = None
    prompt_regex: re.Pattern[str] | None = None
    model: str | None = None
    aspect_ratio: str | None = None

    @property
    def prompt_only(self) -> bool:
        """Whether the rule only looks for a marker in the prompt (the common case)."""
        return self.prompt_contains is not None and not (
            self.api_key or self.prompt_regex or self.model or self.aspect_ratio
        )

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
        """The rule for people to read; an API key shows as its fingerprint, never in clear."""
        out = {k: v for k, v in vars(self).items() if v is not None and k not in ("prompt_regex", "api_key")}
        if self.api_key is not None:
            out["api_key"] = key_id(self.api_key)
        if self.prompt_regex is not None:
            out["prompt_regex"] = self.prompt_regex.pattern
        return out


@dataclass(frozen=True)
class Answer:
    """How one request is answered instead of (or besides) the normal answer."""

    status: int = 200
    estimated_time: int | None = None
    error: dict[str, Any] | None = None
    headers: tuple[tuple[str, str], ...] = ()
    creates_task: bool = False
    fault: Fault | None = None
    times: int | None = None

    @property
    def makes_task(self) -> bool:
        """Whether the provider created the task (a reset or empty answer leaves no trace of one)."""
        if self.creates_task:
            return True
        return self.status == 200 and (self.fault is None or self.fault.kind not in ("reset", "empty"))

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status}
        for name in ("times", "estimated_time", "error", "fault"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value.describe() if isinstance(value, Fault) else value
        if self.headers:
            out["headers"] = dict(self.headers)
        if self.creates_task:
            out["creates_task"] = True
        return out


ACCEPT = Answer()


@dataclass(frozen=True)
class PollRule:
    """Polls (1-based, per task) answered with `answer` instead of the task."""

    numbers: frozenset[int]
    first: int
    answer: Answer
    every: bool = False

    def applies(self, poll: int) -> bool:
        return self.every or poll <= self.first or poll in self.numbers


@dataclass(frozen=True)
class Step:
    at: float
    status: str  # as the scenario writes it
    progress: int
    ramp: bool
    polls: int = 0
    results: Any = UNSET  # UNSET: the fake's own video; None: not attached yet; list: as given
    error: dict[str, str] | None = None
    phase: str = "queued"  # what the status means: queued, running, succeeded, failed or cancelled
    word: str | None = None  # the word of the contract the step answers with (its phase's, or one scripted)


@dataclass(frozen=True)
class CallbackFaults:
    """How a scenario's callbacks go wrong (all off: they are delivered as the contract says)."""

    lost: bool = False
    duplicate: int = 1  # copies of each delivery, one webhook id
    late: float = 0.0  # scenario seconds after the state
    early: float = 0.0  # scenario seconds before polls show the state
    bad_signature: bool = False


NO_FAULTS = CallbackFaults()


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    source: str
    timeline: tuple[Step, ...] = ()
    rules: tuple[Rule, ...] = ()
    submit: tuple[Answer, ...] = (ACCEPT,)
    polls: tuple[PollRule, ...] = ()
    mix: tuple[tuple[str, float], ...] = ()
    sequence: tuple[str, ...] = ()  # instead of a lifecycle: the n-th submission plays the n-th of these
    latency: dict[str, Delay] = field(default_factory=dict)
    disappears_after: float | None = None
    result_url_ttl: float = DEFAULT_RESULT_URL_TTL
    credits_reserved: float = DEFAULT_CREDITS
    off_contract: str | None = None
    cancellable: bool = True  # whether a cancel operation may cancel its tasks while they run
    callbacks: CallbackFaults = NO_FAULTS
    lines: dict[tuple[Any, ...], int] = field(default_factory=dict, repr=False, compare=False)
    data: Any = field(default=None, repr=False, compare=False)  # as read from its file
    digest: str = field(default="", repr=False, compare=False)  # of `data`: equal scenarios, equal digests
    # Derived once from the timeline, for the request path:
    times: tuple[float, ...] = field(init=False, repr=False)
    held_steps: tuple[int, ...] = field(init=False, repr=False)
    completes_at: float | None = field(init=False, repr=False)  # when the result is first attached
    ends_at: float | None = field(init=False, repr=False)  # when the lifecycle turns terminal
    starts_at: float | None = field(init=False, repr=False)  # when it leaves the queue

    def __post_init__(self) -> None:
        derived = {
            "times": tuple(step.at for step in self.timeline),
            "held_steps": tuple(i for i, step in enumerate(self.timeline) if step.polls),
            "completes_at": next(
                (s.at for s in self.timeline if s.phase == "succeeded" and s.results is not None), None
            ),
            "ends_at": next((s.at for s in self.timeline if s.phase in TERMINAL), None),
            "starts_at": next((s.at for s in self.timeline if s.phase != "queued"), None),
        }
        for name, value in derived.items():
            object.__setattr__(self, name, value)

    def members(self) -> list[tuple[tuple[Any, ...], str, str]]:
        """The scenarios a mix or a sequence plays: (where in the file, field name, scenario name)."""
        found = [(("mix", i, "scenario"), f"mix[{i}].scenario", name) for i, (name, _) in enumerate(self.mix)]
        return found + [(("sequence", i), f"sequence[{i}]", name) for i, name in enumerate(self.sequence)]

    def submit_answer(self, count: int) -> Answer:
        """The answer to the `count`-th submission (1-based) of one API key."""
        seen = 0
        for answer in self.submit:
            if answer.times is None:
                return answer
            seen += answer.times
            if count <= seen:
                return answer
        return self.submit[-1]

    def poll_answer(self, poll: int) -> Answer | None:
        for rule in self.polls:
            if rule.applies(poll):
                return rule.answer
        return None

    def estimated_time(self, answer: Answer) -> int:
        if answer.estimated_time is not None:
            return answer.estimated_time
        return math.ceil(self.ends_at) if self.ends_at is not None else 45


def _schema_problem(document: Document) -> ScenarioError | None:
    errors = sorted(_VALIDATOR.iter_errors(document.data), key=lambda e: len(list(e.instance_path)), reverse=True)
    if not errors:
        return None
    error = best_error(errors[0])
    path = tuple(error.instance_path)
    kind = error.kind
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.Required):
        return document.problem(path, f"missing required field '{kind.property}'", ScenarioError)
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.AdditionalProperties):
        unexpected = list(kind.unexpected)
        return document.problem((*path, unexpected[0]), _unknown_fields(unexpected, error.schema_path), ScenarioError)
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.Enum):
        return document.problem(path, describe_error(error), ScenarioError)
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.OneOfNotValid):
        return document.problem(path, f"{json.dumps(error.instance)} is not a valid value here", ScenarioError)
    message = error.message
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.Type) and isinstance(error.instance, str):
        try:
            float(error.instance)
            message += f" (YAML read {error.instance} as text: write numbers like 1.5e+3 with a dot and a sign)"
        except ValueError:
            pass
    return document.problem(path, message, ScenarioError)


def _allowed_fields(schema_path: list[Any]) -> list[str]:
    node: Any = _SCHEMA
    for part in list(schema_path)[:-1]:
        node = node[part]
        if isinstance(node, dict) and "$ref" in node:
            node = _SCHEMA["$defs"][node["$ref"].rsplit("/", 1)[1]]
    return sorted(node.get("properties", {})) if isinstance(node, dict) else []


def _unknown_fields(unexpected: list[str], schema_path: Any) -> str:
    allowed = _allowed_fields(list(schema_path))
    message = "unknown field " + ", ".join(repr(name) for name in unexpected)
    guesses = [guess for name in unexpected for guess in difflib.get_close_matches(name, allowed, n=1)]
    if guesses:
        message += f" (did you mean {', '.join(repr(g) for g in guesses)}?)"
    return message + (f"; allowed here: {', '.join(allowed)}" if allowed else "")


class _Builder:
    def __init__(self, document: Document, vocabulary: Vocabulary) -> None:
        self.document = document
        self.data: dict[str, Any] = document.data
        self.vocabulary = vocabulary

    def fail(self, path: tuple[Any, ...], problem: str) -> ScenarioError:
        return self.document.problem(path, problem, ScenarioError)

    def rules(self) -> tuple[Rule, ...]:
        rules = []
        for index, item in enumerate(self.data.get("match", [])):
            pattern = None
            if "prompt_regex" in item:
                try:
                    pattern = re.compile(item["prompt_regex"])
                except re.error as exc:
                    raise self.fail(
                        ("match", index, "prompt_regex"), f"not a valid regular expression: {exc}"
                    ) from None
            rules.append(Rule(**{**item, "prompt_regex": pattern}))
        return tuple(rules)

    def answer(self, raw: dict[str, Any], path: tuple[Any, ...], default_status: int) -> Answer:
        status = raw.get("status", default_status)
        fault = Fault.parse(raw["fault"]) if "fault" in raw else None
        if status == 200:
            for key in ("error", "headers"):
                if key in raw:
                    raise self.fail((*path, key), "only meaningful with an error status (a 'status' other than 200)")
        elif "estimated_time" in raw:
            raise self.fail((*path, "estimated_time"), "only meaningful when 'status' is 200")
        if raw.get("creates_task") and status < 500 and fault is None:
            raise self.fail(
                (*path, "creates_task"),
                "only a 5xx or a connection fault can leave a task behind (a 200 always creates one; a 4xx, 429 included, never does)",
            )
        error = None
        if status != 200:
            # the error's `type` and any field the contract requires come from the contract (mockserver.render)
            error = {"message": f"Simulated HTTP {status} from the mock scenario.", **raw.get("error", {})}
        headers = tuple((str(k), str(v)) for k, v in raw.get("headers", {}).items())
        return Answer(
            status, raw.get("estimated_time"), error, headers, bool(raw.get("creates_task")), fault, raw.get("times")
        )

    def submit(self) -> tuple[Answer, ...]:
        raw = self.data.get("submit", {})
        if isinstance(raw, dict):
            if "times" in raw:
                raise self.fail(("submit", "times"), "'times' belongs to an entry of a submit sequence (a list)")
            return (self.answer(raw, ("submit",), 200),)
        answers = tuple(self.answer(item, ("submit", i), 200) for i, item in enumerate(raw))
        for index, answer in enumerate(answers[:-1]):
            if answer.times is None:
                raise self.fail(
                    ("submit", index), "every entry but the last needs 'times' (how many submissions it answers)"
                )
        return answers

    def polls(self) -> tuple[PollRule, ...]:
        rules = []
        for index, raw in enumerate(self.data.get("polls", [])):
            path = ("polls", index)
            if "on" in raw and "first" in raw:
                raise self.fail(
                    path, "say which polls with 'on: [3, 4]' or 'first: N', not both (neither means every poll)"
                )
            if "status" not in raw and "fault" not in raw:
                raise self.fail(path, "say what those polls get: a 'status' (with an optional error) or a 'fault'")
            answer = self.answer(raw, path, 200)
            every = "on" not in raw and "first" not in raw
            rules.append(PollRule(frozenset(raw.get("on", ())), raw.get("first", 0), answer, every))
        return tuple(rules)

    def timeline(self) -> tuple[Step, ...]:
        steps: list[Step] = []
        for index, item in enumerate(self.data.get("timeline", [])):
            steps.append(self.step(index, item, steps[-1] if steps else None))
        return tuple(steps)

    def _phase(self, path: tuple[Any, ...], word: str) -> tuple[str, str]:
        """(the phase, the word answered for it) of a step's status."""
        found = self.vocabulary.resolve(word)
        if found is None:
            known = f"the contract's words ({', '.join(self.vocabulary.words)}), " if self.vocabulary.documented else ""
            raise self.fail(
                (*path, "status"),
                f"'{word}' is not one of the statuses this fake knows: {known}the phases ({', '.join(PHASES)}) "
                "or today's words (pending, processing, completed, failed, cancelled)",
            )
        phase, scripted = found
        return phase, scripted or self.vocabulary.word(phase)

    def step(self, index: int, item: dict[str, Any], previous: Step | None) -> Step:
        path = ("timeline", index)
        status = item["status"]
        phase, word = self._phase(path, status)
        if previous is not None:
            before = self.data["timeline"][index - 1]["status"]
            if item["at"] < previous.at:
                raise self.fail(
                    (*path, "at"),
                    f"{item['at']} is earlier than the step before ({previous.at}); steps go forward in time",
                )
            if previous.phase in ("failed", "cancelled"):
                raise self.fail((*path, "status"), f"nothing can follow a '{before}' step: terminal is final")
            if previous.phase == "succeeded" and phase != "succeeded":
                raise self.fail((*path, "status"), f"'{status}' cannot follow '{before}': terminal is final")
            if PHASE_RANK[phase] < PHASE_RANK[previous.phase]:
                raise self.fail((*path, "status"), f"'{status}' cannot follow '{before}': status never moves backward")
        default = 0 if previous is None else previous.progress
        progress = item.get("progress", 100 if phase == "succeeded" else (0 if phase == "queued" else default))
        if previous is not None and progress < previous.progress:
            raise self.fail(
                (*path, "progress"), f"{progress} is below the step before ({previous.progress}); progress never falls"
            )
        attached = previous.results if previous is not None and previous.phase == "succeeded" else None
        if attached is not None and item.get("results", UNSET) != attached:
            raise self.fail((*path, "results"), "once a step has attached results, later steps keep the same results")
        if "results" in item and phase != "succeeded":
            raise self.fail((*path, "results"), "only a 'completed' step has results")
        if phase == "failed" and "error" not in item:
            raise self.fail(path, "missing required field 'error' (a 'failed' step says why: code and message)")
        if "error" in item and phase not in ("failed", "cancelled"):
            raise self.fail((*path, "error"), "only a 'failed' (or 'cancelled') step has an error")
        return Step(
            at=float(item["at"]),
            status=status,
            phase=phase,
            progress=progress,
            ramp=item.get("ramp", phase == "running"),
            polls=item.get("polls", 0),
            results=item.get("results", UNSET),
            error=dict(item["error"]) if "error" in item else None,
            word=word,
        )

    def build(self) -> Scenario:
        data = self.data
        timeline = self.timeline()
        submit = self.submit()
        mix = tuple((item["scenario"], float(item["weight"])) for item in data.get("mix", []))
        sequence = tuple(data.get("sequence", ()))
        for key in ("mix", "sequence"):
            if key in data and ("timeline" in data or "submit" in data or "polls" in data):
                raise self.fail((key,), f"a {key} only names other scenarios; put timeline, submit and polls in those")
        if mix and sequence:
            raise self.fail(("sequence",), "a scenario has a mix or a sequence, not both")
        if not mix and not sequence and not timeline and any(answer.makes_task for answer in submit):
            raise self.fail(
                (), "missing required field 'timeline' (or 'mix' or 'sequence'): this scenario creates tasks"
            )
        faults = data.get("callbacks", {})
        if "late" in faults and "early" in faults:
            raise self.fail(("callbacks", "early"), "a callback is late or early, not both")
        if faults.get("lost") and len(faults) > 1:
            others = ", ".join(sorted(set(faults) - {"lost"}))
            raise self.fail(("callbacks", "lost"), f"a lost callback is never delivered: {others} would mean nothing")
        latency = {kind: Delay.parse(value) for kind, value in data.get("latency", {}).items()}
        for kind, delay in latency.items():
            if delay.problem:
                raise self.fail(("latency", kind), delay.problem)
        return Scenario(
            name=data["name"],
            description=" ".join(data["description"].split()),
            source=self.document.source,
            timeline=timeline,
            rules=self.rules(),
            submit=submit,
            polls=self.polls(),
            mix=mix,
            sequence=sequence,
            latency=latency,
            disappears_after=data.get("disappears_after"),
            lines=self.document.lines,
            result_url_ttl=float(data.get("result_url_ttl", DEFAULT_RESULT_URL_TTL)),
            credits_reserved=data.get("credits_reserved", DEFAULT_CREDITS),
            off_contract=data.get("off_contract"),
            cancellable=data.get("cancellable", True),
            callbacks=CallbackFaults(**data["callbacks"]) if "callbacks" in data else NO_FAULTS,
            data=data,
            digest=hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16],
        )


def parse(
    data: Any, source: str, lines: dict[tuple[Any, ...], int] | None = None, vocabulary: Vocabulary | None = None
) -> Scenario:
    """Build a Scenario from already-loaded data (as YAML would give it). Its statuses are read
    with `vocabulary` (a contract's words, besides the phases and today's words)."""
    document = Document(source, data, lines or {})
    problem = _schema_problem(document)
    if problem is not None:
        raise problem
    return _Builder(document, vocabulary or Vocabulary.ours()).build()


def load_file(path: Path, vocabulary: Vocabulary | None = None) -> list[Scenario]:
    """Every scenario of one file (one per YAML document)."""
    return [parse(doc.data, doc.source, doc.lines, vocabulary) for doc in read_documents(path, ScenarioError)]


def scenario_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        raise ScenarioError(str(directory), None, None, "not a directory of scenario files")
    return sorted(
        p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file() and p.name != KEYMAP_FILE
    )


def check_mixes(scenarios: dict[str, Scenario]) -> None:
    """Every scenario a mix or a sequence names exists and has a lifecycle of its own."""
    for scenario in scenarios.values():
        for where, field_name, name in scenario.members():
            member = scenarios.get(name)
            if member is None or member.mix or member.sequence:
                problem = (
                    "is not a loaded scenario" if member is None else "is itself a mix or a sequence; they cannot nest"
                )
                raise ScenarioError(scenario.source, scenario.lines.get(where), field_name, f"'{name}' {problem}")


def load_directories(directories: list[Path], vocabulary: Vocabulary | None = None) -> dict[str, Scenario]:
    """Load every scenario of each folder in order; a later folder may replace a name of an earlier one."""
    scenarios: dict[str, Scenario] = {}
    for directory in directories:
        seen: dict[str, str] = {}
        for path in scenario_files(directory):
            for scenario in load_file(path, vocabulary):
                if scenario.name in seen:
                    raise ScenarioError(
                        str(path),
                        None,
                        "name",
                        f"'{scenario.name}' is already the name of a scenario in {seen[scenario.name]}",
                    )
                seen[scenario.name] = str(path)
                scenarios[scenario.name] = scenario
    check_mixes(scenarios)
    return scenarios
