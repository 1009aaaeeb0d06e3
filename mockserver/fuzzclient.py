"""`mockserver fuzz-client`: generated server behaviours against a client, in any language.

For each behaviour hypothesis generates (`contracts.strategies.behaviours`), the fake plays it as
its default scenario, the client command runs with `MOCK_BASE_URL` and `MOCK_API_KEY` in its
environment (plus `--env` mappings), and `contracts.client_properties` judges the run from the
request journal, the exit status and the output. On a failure hypothesis shrinks the behaviour
to the smallest that still breaks the client; the runner writes it as a scenario file with a
one-line command that replays it.

The first runs cover the classes of behaviour the properties judge (`contracts.strategies.CLASSES`),
one each, in their order, so that even a small budget meets a 429 on submit, a task completed
before its results, a failed task and the rest; the remaining runs let hypothesis explore every
behaviour, classes combined. Each class run is its own small hypothesis search, so a failure
found there is shrunk too (within its class). With fewer examples than classes, the first
classes are covered and the report says which were not.

Under a contract that documents callbacks, the fake signs them with a secret of the run's own
(given to the client as `MOCK_CALLBACK_SECRET`, and `{callback_secret}` in `--env`), and a client
that gives a callback URL (seen in its first run) also meets the callback classes
(`contracts.strategies.CALLBACK_CLASSES`: lost, duplicated, late, early, badly signed), played
right after the first; exploring then adds a callback fault to some behaviours. Each run's
delivery attempts (`GET /__admin/callbacks`) and outgoing journal entries go to the judge (the
`callbacks` property) and to the report, so a receiver that answers 5xx shows its retries.

    FuzzRun(options).run()       -> FuzzReport        (events go to `on_event`; nothing prints)
"""

from __future__ import annotations

import base64
import json
import os
import shlex
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, Phase, Verbosity, given, seed, settings
from hypothesis.errors import FlakyFailure, FlakyReplay

from contracts import Contract
from contracts.client_properties import FINAL, PROPERTY_NAMES, Broken, ClientRun, Judge, Properties
from contracts.strategies import CALLBACK_CLASSES, behaviours, classes, with_callbacks
from mockserver import conformity
from mockserver.scenarios import ScenarioError, parse
from mockserver.settings import Settings
from mockserver.testing import LiveServer
from mockserver.yamlfile import field_name, read_documents

API_KEY = "sk-fuzz-client"
OUTPUT_LIMIT = 20_000


@dataclass
class FuzzOptions:
    command: list[str]
    examples: int = 100
    seed: int | None = None
    time_limit: float = 30.0
    out: Path = Path("fuzz-client-failures")
    env: dict[str, str] = field(default_factory=dict)  # NAME -> value with {base_url} / {api_key}
    speed: float = 20.0
    contract: str = "seed"
    properties: Properties = field(default_factory=Properties)
    strategy: dict[str, Any] = field(default_factory=dict)  # options for behaviours()
    replay: Path | None = None
    callback_ca: Path | None = None  # a certificate the fake trusts for the client's HTTPS receiver


@dataclass
class Example:
    number: int
    description: str
    passed: bool
    duration: float
    broken: list[Broken] = field(default_factory=list)
    phase: str = "generate"  # generate, shrink (after a first failure) or replay
    run: ClientRun | None = None
    kind: str | None = None  # the behaviour class this run covers; None while exploring (or replaying)

    @property
    def callbacks(self) -> list[dict[str, Any]]:
        """The run's callback delivery attempts, oldest first."""
        return self.run.attempts if self.run is not None else []


@dataclass
class Failure:
    behaviour: dict[str, Any]
    run: ClientRun
    broken: list[Broken]
    scenario_file: Path | None = None
    replay: str = ""


@dataclass
class FuzzReport:
    examples: list[Example] = field(default_factory=list)
    failure: Failure | None = None
    duration: float = 0.0
    flaky: bool = False
    classes: list[str] = field(default_factory=list)  # every class the strategy can draw, in coverage order
    callbacks_note: str | None = None  # why no callback behaviour was played, when none was

    @property
    def ok(self) -> bool:
        return self.failure is None

    @property
    def covered(self) -> list[str]:
        """The behaviour classes this run played, in coverage order."""
        played = {example.kind for example in self.examples}
        return [kind for kind in self.classes if kind in played]

    @property
    def generated(self) -> list[Example]:
        return [example for example in self.examples if example.number > 0]


class _Broke(Exception):
    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.broken[0].message)
        self.failure = failure


_BROKE: dict[str, type[_Broke]] = {}


def _broke(prop: str) -> type[_Broke]:
    """One exception class per property: hypothesis then treats each broken property as its own
    bug, and shrinking a failure of one never wanders off to another."""
    if prop not in _BROKE:
        _BROKE[prop] = type(f"Broke_{prop.replace('-', '_')}", (_Broke,), {})
    return _BROKE[prop]


def _read_lines(stream: Any, lines: list[tuple[float, str]]) -> None:
    """Collect the client's output line by line, with when each line came, up to OUTPUT_LIMIT."""
    size = 0
    for raw in iter(stream.readline, b""):
        if size < OUTPUT_LIMIT:
            text = raw.decode("utf-8", "replace")
            lines.append((time.time(), text))
            size += len(text)


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """Kill the client and anything it started (its process group), then reap it."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def _size(behaviour: dict[str, Any]) -> int:
    return len(yaml.safe_dump(behaviour))


def _results_later(contract: Contract) -> bool:
    """Whether the contract can say a task completed before its results were attached: its task
    holds them, and a succeeded task may have none yet."""
    shape = contract.shapes.shape_for(contract.shapes.vocabulary.word("succeeded"))
    holder = contract.shapes.holder(shape)
    return holder is not None and (holder.nullable or not holder.required)


def _key(behaviour: dict[str, Any]) -> str:
    return json.dumps(behaviour, sort_keys=True)


class FuzzRun:
    def __init__(self, options: FuzzOptions, on_event: Callable[[Example], None] | None = None) -> None:
        self.options = options
        self.on_event = on_event or (lambda example: None)
        contract = Contract.load(options.contract)
        self.judge = Judge(contract, options.properties)
        if not contract.shipped:  # draw only the error statuses this contract documents, where it can
            documented: dict[str, Any] = {
                kind: frozenset(int(status) for status in operation.error_statuses)
                for kind, operation in (("submit", contract.submit), ("poll", contract.query))
            }
            # whether a cancelled task has a word of the contract's own (else it is off contract), and
            # whether a task can be completed before its results are (its results in the task, nullable)
            documented["cancelled"] = "cancelled" in contract.shapes.vocabulary.words.values()
            documented["results_later"] = _results_later(contract)
            options.strategy = {"documented": documented, **options.strategy}
        self.report = FuzzReport()
        self._smallest: Failure | None = None
        self._server: LiveServer | None = None
        self.documents_callbacks = contract.shapes.callbacks is not None
        self.callback_secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()  # this run's, never reported
        self.callbacks_asked = False  # whether the client gave a callback URL (in any run so far)

    def _environment(self, base_url: str) -> dict[str, str]:
        env = {**os.environ, "MOCK_BASE_URL": base_url, "MOCK_API_KEY": API_KEY}
        if self.documents_callbacks:
            env["MOCK_CALLBACK_SECRET"] = self.callback_secret
        for name, value in self.options.env.items():
            env[name] = (
                value.replace("{base_url}", base_url).replace("{api_key}", API_KEY)
                .replace("{callback_secret}", self.callback_secret)
            )  # fmt: skip
        return env

    def play(self, behaviour: dict[str, Any], source: str | None = None, lines: dict | None = None) -> ClientRun:
        """Run the client once against the fake playing `behaviour`."""
        assert self._server is not None
        server, runtime = self._server, self._server.runtime
        server.call(runtime.reset())
        scenario = parse(behaviour, source or f"<{behaviour['name']}>", lines, runtime.vocabulary)
        found = conformity.problems(scenario, runtime.contract, runtime.render) if scenario.off_contract is None else []
        if found:  # a behaviour this contract cannot express (a quirk it forbids): still played, and labelled
            behaviour["off_contract"] = f"generated: {field_name(found[0][0])}: {found[0][1]}"
            scenario = parse(behaviour, source or f"<{behaviour['name']}>", lines, runtime.vocabulary)
        runtime.add_scenario(scenario)
        server.call(runtime.set_default(behaviour["name"]))
        started, since = time.perf_counter(), time.time()
        process = subprocess.Popen(
            self.options.command,
            env=self._environment(self._server.url),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stopping it stops what it started too
        )
        output: list[tuple[float, str]] = []
        reader = threading.Thread(target=_read_lines, args=(process.stdout, output), daemon=True)
        reader.start()
        stopped = None
        deadline = started + self.options.time_limit
        try:
            while process.poll() is None:
                if time.perf_counter() > deadline:
                    stopped = "time-limit"
                elif self.judge.judge(ClientRun(self._entries(since), None), only=FINAL):
                    stopped = "broken"  # no need to wait: what it did cannot be undone
                if stopped:
                    break
                time.sleep(0.02)
        finally:
            _stop_group(process)
            reader.join(timeout=5)
            process.stdout.close()  # type: ignore[union-attr]
        ended = time.time()
        text = "".join(line for _, line in output)[-OUTPUT_LIMIT:]
        exit_code = None if stopped else process.returncode
        entries = self._entries(since)
        run = ClientRun(
            entries, exit_code, text, time.perf_counter() - started, self.options.time_limit, stopped, output
        )
        if self.documents_callbacks:
            self._callbacks(run, since, ended)
        return run

    def _callbacks(self, run: ClientRun, since: float, ended: float) -> None:
        """What the fake delivered to the client's receiver while it ran (and what it still meant
        to): attempts made after the client ended are left out (nobody was listening)."""
        assert self._server is not None
        server, runtime = self._server, self._server.runtime
        attempts, pending = server.call(runtime.callback_attempts())
        outgoing = server.call(runtime.requests(direction="outgoing"))
        run.callbacks = [e.to_json() for e in reversed(outgoing) if since <= e.wall_time <= ended]
        run.attempts = [a.to_json() for a in reversed(attempts) if since <= a.wall_time <= ended]
        run.pending = [
            {
                "task_id": d.task_id,
                "event": d.event,
                "at": d.at,
                "due": d.due,
                "webhook_id": d.webhook_id,
                "fault": d.fault,
            }
            for d in pending
        ]
        run.now = server.call(runtime.state.clock_reading()).now
        if run.callbacks or run.pending:
            self.callbacks_asked = True

    def _entries(self, since: float) -> list[dict[str, Any]]:
        """This run's requests, oldest first: a request of an earlier, stopped client that was still
        being answered when this run began arrived before `since` and is left out."""
        assert self._server is not None
        runtime = self._server.runtime
        size = runtime.settings.journal_size
        entries = [
            entry.to_json()
            for entry in reversed(self._server.call(runtime.requests(direction="incoming")))
            if entry.wall_time >= since
        ]
        if len(entries) >= size:
            raise ValueError(f"the client sent {size} requests or more in one run: too many to judge")
        return entries

    def _example(
        self,
        behaviour: dict[str, Any],
        number: int,
        source: str | None = None,
        lines: dict | None = None,
        kind: str | None = None,
    ) -> None:
        run = self.play(behaviour, source, lines)
        broken = self.judge.judge(run)
        phase = "replay" if number == 0 else ("shrink" if self._smallest is not None else "generate")
        example = Example(number, behaviour["description"], not broken, run.duration, broken, phase, run, kind)
        self.report.examples.append(example)
        self.on_event(example)
        if broken:
            failure = Failure(behaviour, run, broken)
            if self._smallest is None or _size(behaviour) <= _size(self._smallest.behaviour):
                self._smallest = failure
            raise _broke(broken[0].property)(failure)

    def _check_command(self) -> None:
        program = self.options.command[0]
        found = shutil.which(program) if os.sep not in program else (program if os.access(program, os.X_OK) else None)
        if found is None:
            raise ValueError(f"cannot run {program!r}: no such executable (give a path, or a program on PATH)")

    def run(self) -> FuzzReport:
        self._check_command()
        started = time.perf_counter()
        settings_ = Settings(
            clock="real", speed=self.options.speed, contract=self.options.contract, seed=self.options.seed,
            journal_size=100_000, callback_secret=self.callback_secret if self.documents_callbacks else None,
            callback_ca=self.options.callback_ca,
        )  # fmt: skip
        with LiveServer(settings_) as self._server:
            try:
                if self.options.replay is not None:
                    self._replay(self.options.replay)
                else:
                    self._search()
            except _Broke as broke:
                self.report.failure = broke.failure
            except (FlakyFailure, FlakyReplay):
                self.report.flaky = True  # the client did not fail the same way twice
                self.report.failure = self._smallest
        if self.report.failure is not None and self.options.replay is None:
            self._write(self.report.failure)
        self.report.duration = time.perf_counter() - started
        return self.report

    def _replay(self, path: Path) -> None:
        (document,) = read_documents(path, ScenarioError)[:1]
        self._example(document.data, 0, str(path), document.lines)

    def _search(self) -> None:
        """One run of each behaviour class first (as many as the budget allows), then hypothesis
        explores with the rest, leaving out the behaviours the class runs already played."""
        numbers = iter(range(1, 1_000_000))
        options = self.options.strategy
        limits: dict[str, Any] = {name: options[name] for name in ("faults", "quirks", "latency") if name in options}
        limits["results_later"] = options.get("documented", {}).get("results_later", True)
        self.report.classes = classes(**limits)
        if self.documents_callbacks:  # right after the first class, which shows whether the client asks for them
            self.report.classes[1:1] = list(CALLBACK_CLASSES)
        else:
            self.report.callbacks_note = "The contract documents no callbacks: no callback behaviour was played."
        played: set[str] = set()
        index = 0
        while index < min(self.options.examples, len(self.report.classes)):
            kind = self.report.classes[index]
            if kind in CALLBACK_CLASSES:
                strategy = with_callbacks(behaviours(kind="plain", **self.options.strategy), kind)
            else:
                strategy = behaviours(kind=kind, **self.options.strategy)
            self._hypothesis(strategy, 1, numbers, played, kind)
            index += 1
            if index == 1 and self.documents_callbacks and not self.callbacks_asked:
                self.report.classes = [name for name in self.report.classes if name not in CALLBACK_CLASSES]
                self.report.callbacks_note = (
                    "The contract documents callbacks, but the client gave no callback URL in its first run: "
                    "no callback behaviour was played."
                )
        rest = self.options.examples - index
        if rest > 0:
            seen = frozenset(played)  # all passed: playing them again would spend the budget for nothing
            explore = behaviours(**self.options.strategy)
            if self.callbacks_asked:
                explore = with_callbacks(explore)
            explore = explore.filter(lambda behaviour: _key(behaviour) not in seen)
            self._hypothesis(explore, rest, numbers, played, None)

    def _hypothesis(self, strategy: Any, examples: int, numbers: Any, played: set[str], kind: str | None) -> None:
        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.explicit, Phase.generate, Phase.shrink],
            verbosity=Verbosity.quiet,
            report_multiple_bugs=False,
            print_blob=False,
        )
        @given(behaviour=strategy)
        def example(behaviour: dict[str, Any]) -> None:
            played.add(_key(behaviour))
            self._example(behaviour, next(numbers), kind=kind)

        if self.options.seed is not None:
            example = seed(self.options.seed)(example)
        example()

    def _write(self, failure: Failure) -> None:
        out = self.options.out
        out.mkdir(parents=True, exist_ok=True)
        prop = failure.broken[0].property
        behaviour = {**failure.behaviour, "name": f"fuzz-{prop}"}
        behaviour["description"] = f"Breaks the client's '{prop}' property. {failure.behaviour['description']}"
        path = out / f"{prop}.yaml"
        path.write_text(yaml.safe_dump(behaviour, sort_keys=False, allow_unicode=True))
        failure.behaviour = behaviour
        failure.scenario_file = path
        options, properties = self.options, self.options.properties
        words = ["mockserver", "fuzz-client", "--replay", str(path), "--contract", options.contract,
                 "--speed", f"{options.speed:g}", "--time-limit", f"{options.time_limit:g}",
                 "--min-poll-interval", f"{properties.min_poll_interval:g}",
                 "--polls-after-terminal", str(properties.polls_after_terminal)]  # fmt: skip
        for name, value in options.env.items():
            words += ["--env", f"{name}={value}"]
        if options.callback_ca is not None:
            words += ["--callback-ca", str(options.callback_ca)]
        for name in sorted(set(PROPERTY_NAMES) - properties.enabled):
            words += ["--skip", name]
        failure.replay = shlex.join([*words, "--", *options.command])
