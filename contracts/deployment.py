"""Check any deployment of the API (the real one, a staging proxy, the fake) against a contract.

    check = DeploymentCheck(base_url, token, Contract.load("current"), billable=0)
    for event in check.run():          # ProbeStarted, Polled, ProbeFinished, RunFinished
        ...                            # nothing here prints; reporters consume the events

By default it spends nothing. Every request it sends either carries no valid key, or asks for a
task that does not exist, or has a body the contract says must be refused: malformed JSON, the
wrong content type, a missing required field, a value of the wrong type or outside its enum.
The submissions go from the safest to the least safe, and stop at the first one the deployment
accepts, answers with a 5xx or leaves unanswered: such a deployment may have created one task
(a proxy that adds its own key could, even for a request sent with none), and the report says
so. That one counts against `billable` too.

With `billable=N` it also submits at most N valid tasks (never more, whatever happens: a submit
that fails or times out is counted as spent and never retried) and follows them, side by side,
to a terminal state within a polling budget, checking every answer against the contract and the
lifecycle rules, and downloading each result.

Every response is checked with schemathesis's checks (status code, content type, headers,
schema) through `contracts.conformance`. The token never appears in events or reports: requests
are recorded with `Authorization: Bearer ***`, and any echo of the token in a body is masked.
"""

from __future__ import annotations

import json
import random
import shlex
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from contracts._contract import Contract, Operation
from contracts._shape import example_of
from contracts.conformance import ContractViolation, ResponseValidator
from contracts.ids import IdMaker
from contracts.rules import Reader

MASK = "***"
INVALID_KEY = "mockserver-check-invalid-key"
UNKNOWN_TASK = "task-unified-1700000000-mchk0000"
BODY_EXCERPT = 2000


@dataclass
class Exchange:
    """One request and what came back, with the token masked."""

    method: str
    url: str
    headers: dict[str, str]
    body: str | None
    status: int | None = None
    response: str = ""
    elapsed: float = 0.0
    error: str | None = None

    def curl(self) -> str:
        parts = ["curl", "-sS", "-X", self.method, self.url]
        for name, value in self.headers.items():
            parts += ["-H", f"{name}: {value}"]
        if self.body is not None:
            parts += ["--data-raw", self.body]
        return " ".join(shlex.quote(part) for part in parts)


@dataclass
class Finding:
    check: str
    message: str
    exchange: Exchange


@dataclass
class ProbeResult:
    name: str
    description: str
    exchanges: list[Exchange] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    duration: float = 0.0
    repeats: int = 0  # findings not listed again because an identical one already is

    @property
    def ok(self) -> bool:
        return not self.findings

    def add(self, finding: Finding) -> None:
        """Keep a finding once: the same problem on every poll of a task is one problem."""
        if any(f.check == finding.check and f.message == finding.message for f in self.findings):
            self.repeats += 1
        else:
            self.findings.append(finding)


@dataclass
class Report:
    base_url: str
    contract: str
    billable: int
    probes: list[ProbeResult] = field(default_factory=list)
    spent: int = 0  # tasks that may have been created (and billed)
    duration: float = 0.0

    @property
    def ok(self) -> bool:
        return all(probe.ok for probe in self.probes)

    @property
    def findings(self) -> list[Finding]:
        return [finding for probe in self.probes for finding in probe.findings]


@dataclass
class ProbeStarted:
    name: str
    description: str


@dataclass
class Polled:
    probe: str
    task_id: str
    status: str | None
    progress: int | None
    polls: int


@dataclass
class ProbeFinished:
    result: ProbeResult


@dataclass
class RunFinished:
    report: Report


Event = ProbeStarted | Polled | ProbeFinished | RunFinished


@dataclass
class _Probe:
    name: str
    description: str
    method: str
    path: str
    expected: frozenset[int]
    key: str | None = None  # "token", "invalid" or None
    body: Any = None
    raw: bytes | None = None
    content_type: str | None = "application/json"
    field: str | None = None  # the body field the probe breaks


@dataclass
class _Tracked:
    """A billable task being followed."""

    probe: ProbeResult
    task_id: str
    started: float
    polls: int = 0
    last: dict[str, Any] | None = None
    done: bool = False


class CheckAborted(Exception):
    """The check cannot say anything about the contract (the deployment is out of reach, or
    refuses the key): a usage problem, not drift."""


class DeploymentCheck:
    def __init__(
        self,
        base_url: str,
        token: str,
        contract: Contract,
        *,
        billable: int = 0,
        poll_interval: float = 5.0,
        max_wait: float = 900.0,
        video_url: str | None = None,
        timeout: float = 30.0,
        client: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if billable < 0:
            raise ValueError("billable must be 0 or more")
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"the base URL must start with http:// or https://, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.contract = contract
        self.validator = ResponseValidator(contract)
        self.billable = billable
        self.poll_interval = poll_interval
        self.max_wait = max_wait
        self._owns_client = client is None
        self.client = client or httpx.Client(timeout=timeout, follow_redirects=False)
        self.sleep = sleep
        self.submit = contract.submit
        self.query = contract.query
        self.reader = Reader.of(contract)
        if contract.prefix and self.base_url.endswith(contract.prefix):
            self.base_url = self.base_url[: -len(contract.prefix)]  # the routes carry the server's path
        self.unknown_task = _unknown_task(contract)
        self.submit_path = _filled(contract.submit)  # a model named in the path, filled in
        self.headers = _header_values(contract)  # what the contract requires on every request (an API version)
        self.model_field = contract.submit.model_field  # a body chosen by model: the first model's
        self.model = next(iter(contract.submit.branches), None)
        self.schema = contract.request_schema(contract.submit.operation_id, self.model)
        self.url_field = contract.shapes.result_url_field
        self.invalid = frozenset({contract.shapes.invalid_status[contract.submit.operation_id]})
        # a body that is not JSON at all: 400, or 422 where the contract documents 422 and no 400
        responses = contract.submit.responses
        self.bad_request = frozenset({422}) if "400" not in responses and "422" in responses else frozenset({400})
        self.valid_body = self._valid_body(video_url)
        self.report = Report(self.base_url, contract.version or str(contract.path), billable)
        self._tracked: list[_Tracked] = []

    # Building requests from the contract.

    def _valid_body(self, video_url: str | None) -> dict[str, Any]:
        """The required fields, plus any optional one the contract gives an example for (the model)."""
        body = {}
        required = self.schema.get("required", [])
        for name, prop in self.schema.get("properties", {}).items():
            if name == self.model_field:
                body[name] = self.model
                continue
            if name not in required and "example" not in prop and not prop.get("examples"):
                continue
            if prop.get("format") == "uri" and video_url:
                body[name] = video_url
            elif "example" in prop or prop.get("examples"):
                body[name] = prop.get("example", (prop.get("examples") or [None])[0])
            elif "default" in prop:
                body[name] = prop["default"]
            elif prop.get("enum"):
                body[name] = prop["enum"][0]
            else:
                raise ValueError(f"the contract gives no example for the required field {name!r}")
        return body

    def _probes(self) -> list[_Probe]:
        submit, query = self.submit_path, self.query.path_for(self.unknown_task)
        body = self.valid_body
        probes = [
            _Probe(
                "submit-without-key",
                "Submit a valid body with no API key",
                "POST",
                submit,
                frozenset({401}),
                None,
                body,
            ),
            _Probe(
                "submit-invalid-key",
                "Submit a valid body with an invalid API key",
                "POST",
                submit,
                frozenset({401}),
                "invalid",
                body,
            ),
            _Probe("query-without-key", "Query a task with no API key", "GET", query, frozenset({401})),
            _Probe(
                "query-invalid-key", "Query a task with an invalid API key", "GET", query, frozenset({401}), "invalid"
            ),
            _Probe(
                "query-unknown-task", "Query a task id that does not exist", "GET", query, frozenset({404}), "token"
            ),
        ]
        # The other operations the contract documents, where asking costs nothing: a list, and the
        # content, cancel or delete of a task that does not exist.
        shapes = self.contract.shapes
        if shapes.list is not None:
            route = shapes.list.route
            probes.append(_Probe("list-without-key", "List tasks with no API key", "GET", route, frozenset({401})))
            probes.append(_Probe("list", "List tasks", "GET", route, frozenset({200}), "token"))
        for kind in ("content", "cancel", "delete"):
            op = shapes.operations.get(kind)
            if op is not None:
                path = op.path_for(self.unknown_task)
                probes.append(
                    _Probe(f"{kind}-unknown-task", f"Ask the {kind} of a task id that does not exist", op.method, path,
                           frozenset({404}), "token")
                )  # fmt: skip
        # Ordered from the safest to the least safe: a field with a default may be filled in by a
        # lenient server, and some servers parse JSON whatever its Content-Type says.
        required = self.schema.get("required", [])
        properties = self.schema.get("properties", {})
        essential = [name for name in required if "default" not in properties[name]]
        defaulted = [name for name in required if "default" in properties[name]]
        risky = [
            _Probe("submit-malformed-json", "Submit a body that is not JSON", "POST", submit, self.bad_request, "token", raw=b'{"prompt": '),
            _Probe("submit-empty-body", "Submit an empty body", "POST", submit, self.bad_request, "token", raw=b""),
            _Probe("submit-array-body", "Submit a JSON array instead of an object", "POST", submit, self.bad_request | self.invalid, "token", body=[body]),
        ]  # fmt: skip
        risky += [self._missing(name, body) for name in essential]
        risky += [
            self._wrong_type(name, body) for name in essential if not _types(properties[name]) & {"integer", "number"}
        ]
        risky.append(
            _Probe("submit-wrong-content-type", "Submit JSON sent as text/plain", "POST", submit, self.bad_request, "token",
                   raw=json.dumps(body).encode(), content_type="text/plain")
        )  # fmt: skip
        risky += [self._missing(name, body) for name in defaulted]
        risky += [
            self._wrong_type(name, body) for name in defaulted if not _types(properties[name]) & {"integer", "number"}
        ]
        for name, prop in properties.items():
            if prop.get("enum"):
                risky.append(
                    _Probe(f"submit-bad-{name}", f"Submit '{name}' outside its enum", "POST", submit,
                           self.invalid, "token", {**body, name: "mockserver-check-not-allowed"}, field=name)
                )  # fmt: skip
        return probes + risky

    def _missing(self, name: str, body: dict[str, Any]) -> _Probe:
        broken = {key: value for key, value in body.items() if key != name}
        return _Probe(f"submit-missing-{name}", f"Submit without the required field '{name}'", "POST",
                      self.submit_path, self.invalid, "token", broken, field=name)  # fmt: skip

    def _wrong_type(self, name: str, body: dict[str, Any]) -> _Probe:
        return _Probe(f"submit-wrong-type-{name}", f"Submit '{name}' as a number", "POST", self.submit_path,
                      self.invalid, "token", {**body, name: 12345}, field=name)  # fmt: skip

    # Sending and judging.

    def _mask(self, text: str) -> str:
        """The text with the token, and its escaped spellings, replaced by ***."""
        if not self.token:
            return text
        for spelling in {self.token, repr(self.token)[1:-1], json.dumps(self.token)[1:-1]}:
            text = text.replace(spelling, MASK)
        return text

    def _add(self, probe: ProbeResult, finding: Finding) -> None:
        """Every finding goes through here: its message is masked before anything can show it."""
        finding.message = self._mask(finding.message)
        probe.add(finding)

    def _send(self, method: str, path: str, key: str | None, body: Any = None, raw: bytes | None = None,
              content_type: str | None = None, url: str | None = None, headers: dict[str, str] | None = None,
              follow: bool = False) -> tuple[Exchange, httpx.Response | None]:  # fmt: skip
        target = url or f"{self.base_url}{path}"
        documented = self.headers if url is None or url.startswith(self.base_url + "/") else {}  # to the API only
        sent = {**documented, **(headers or {})}
        shown = dict(sent)
        if key == "token":
            sent["Authorization"], shown["Authorization"] = f"Bearer {self.token}", f"Bearer {MASK}"
        elif key == "invalid":
            sent["Authorization"] = shown["Authorization"] = f"Bearer {INVALID_KEY}"
        content = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        if content is not None and content_type:
            sent["Content-Type"] = shown["Content-Type"] = content_type
        exchange = Exchange(
            method, target, shown, self._mask(content.decode("utf-8", "replace")) if content is not None else None
        )
        started = time.perf_counter()
        try:
            response = self.client.request(method, target, headers=sent, content=content, follow_redirects=follow)
        except httpx.HTTPError as exc:
            exchange.elapsed = time.perf_counter() - started
            exchange.error = f"{type(exc).__name__}: {self._mask(str(exc))}"
            return exchange, None
        exchange.elapsed = time.perf_counter() - started
        exchange.status = response.status_code
        exchange.response = self._mask(response.text)[:BODY_EXCERPT]  # mask first: a cut could split the token
        return exchange, response

    def _judge(self, result: ProbeResult, exchange: Exchange, response: httpx.Response | None, expected: frozenset[int] | None) -> None:  # fmt: skip
        result.exchanges.append(exchange)
        if response is None:
            self._add(result, Finding("transport", f"No answer: {exchange.error}", exchange))
            return
        if expected is not None and response.status_code not in expected:
            wanted = " or ".join(str(s) for s in sorted(expected))
            error = _json(response)
            said = ""
            if isinstance(error, dict) and isinstance(error.get("error"), dict):
                said = f" ({error['error'].get('type')}: {self._mask(str(error['error'].get('message')))[:300]})"
            self._add(
                result,
                Finding(
                    "expected_status",
                    f"Received HTTP {response.status_code}{said}; the contract expects {wanted} here.",
                    exchange,
                ),
            )
        try:
            self.validator.validate(response)
        except ContractViolation as violation:
            self._add(result, Finding("contract", self._mask(_strip_reproduce(str(violation))), exchange))

    def _check_param(self, result: ProbeResult, probe: _Probe, exchange: Exchange, response: httpx.Response | None) -> None:  # fmt: skip
        """A refusal that names, in `param`, a field the contract does not define points at drift."""
        if response is None or response.status_code not in self.invalid or probe.field is None:
            return
        try:
            param = response.json().get("error", {}).get("param")
        except (ValueError, AttributeError):
            return
        known = set(self.schema.get("properties", {}))
        if isinstance(param, str) and param != probe.field and param.split(".")[0] not in known:
            self._add(
                result,
                Finding(
                    "refused_field",
                    f"The probe left out or broke '{probe.field}', and the deployment refused it naming "
                    f"'{param}', a field this contract does not define: the deployment expects another "
                    f"version of the request body than {self.contract.path.name}.",
                    exchange,
                ),
            )

    def _run_probe(self, probe: _Probe) -> ProbeResult:
        result = ProbeResult(probe.name, probe.description)
        started = time.perf_counter()
        exchange, response = self._send(probe.method, probe.path, probe.key, probe.body, probe.raw, probe.content_type)
        self._judge(result, exchange, response, probe.expected)
        self._check_param(result, probe, exchange, response)
        if probe.method == self.submit.method and probe.path == self.submit_path and _may_have_billed(response):
            self.report.spent += 1
        result.duration = time.perf_counter() - started
        return result

    # The billable part.

    def _poll(self, tracked: _Tracked) -> Event | None:
        """One poll of a billable task, judged; None once it is over."""
        path = self.query.path_for(tracked.task_id)
        sync = "?sync_upstream=true" if any(p.name == "sync_upstream" for p in self.query.query) else ""
        exchange, response = self._send("GET", path, "token", url=f"{self.base_url}{path}{sync}")
        self._judge(tracked.probe, exchange, response, frozenset({200}))
        tracked.polls += 1
        task = _json(response) if response is not None and response.status_code == 200 else None
        if not isinstance(task, dict):
            return Polled(tracked.probe.name, tracked.task_id, None, None, tracked.polls)
        reader = self.reader
        problems = reader.task_problems(task) + (reader.transition_problems(tracked.last, task) if tracked.last else [])
        for problem in problems:
            self._add(tracked.probe, Finding("lifecycle", problem, exchange))
        tracked.last = task
        if reader.is_done(task):
            if reader.phase(task) == "succeeded":
                self._download(tracked.probe, task, tracked.task_id)
            tracked.done = True
        elif reader.phase(task) is None:
            tracked.done = True  # a status outside the enum (reported above): nothing to wait for
        return Polled(tracked.probe.name, tracked.task_id, task.get(reader.status), task.get("progress"), tracked.polls)

    def _download(self, probe: ProbeResult, task: dict[str, Any], task_id: str) -> None:
        content = self.contract.shapes.content
        if content is not None and self.reader.result(task) is None:
            # the video comes through the API's content operation, with the key
            path = content.path_for(task_id)
            exchange, response = self._send("GET", path, "token", headers={**self.headers, "Range": "bytes=0-65535"})
        else:
            url = self.reader.url(task) if self.reader.url is not None else None
            if not isinstance(url, str):
                return  # the shape is wrong: the contract check has said so
            # The result lives on a CDN, which may redirect; it gets no key, so following is safe.
            exchange, response = self._send("GET", "", None, url=url, headers={"Range": "bytes=0-65535"}, follow=True)
        probe.exchanges.append(exchange)
        if response is None:
            self._add(probe, Finding("download", f"The result URL did not answer: {exchange.error}", exchange))
        elif response.status_code not in (200, 206) or not response.content:
            self._add(
                probe,
                Finding(
                    "download",
                    f"The result URL answered HTTP {response.status_code}; expected 200 or 206 with the video.",
                    exchange,
                ),
            )
        elif not response.headers.get("content-type", "").startswith(
            ("video/", "application/octet-stream", "binary/octet-stream")
        ):
            self._add(
                probe,
                Finding(
                    "download",
                    f"The result URL served {response.headers.get('content-type')!r}; expected a video.",
                    exchange,
                ),
            )

    def _submit_task(self, index: int) -> Iterator[Event]:
        probe = ProbeResult(
            f"billable-task-{index}", f"Submit valid task {index} of {self.billable} and follow it to the end"
        )
        yield ProbeStarted(probe.name, probe.description)
        self.report.spent += 1  # counted before sending: a submit is never retried
        exchange, response = self._send(
            "POST", self.submit_path, "token", self.valid_body, content_type="application/json"
        )
        created_status = self.contract.shapes.created_status
        self._judge(probe, exchange, response, frozenset({created_status}))
        created = _json(response) if response is not None and response.status_code == created_status else None
        probe.duration = exchange.elapsed
        if isinstance(created, dict) and isinstance(created.get("id"), str):
            self._tracked.append(_Tracked(probe, created["id"], time.perf_counter() - exchange.elapsed))
        else:
            yield from self._finish(probe)

    def _finish(self, probe: ProbeResult) -> Iterator[Event]:
        self.report.probes.append(probe)
        yield ProbeFinished(probe)

    def _follow_all(self) -> Iterator[Event]:
        """Poll every live task in turn, one round per interval, until each ends or the budget runs out."""
        deadline = time.monotonic() + self.max_wait
        rounds = max(1, int(self.max_wait / self.poll_interval) + 1) if self.poll_interval > 0 else 10_000
        for _ in range(rounds):
            live = [tracked for tracked in self._tracked if not tracked.done]
            if not live:
                return
            for tracked in live:
                event = self._poll(tracked)
                if event is not None:
                    yield event
                if tracked.done:
                    tracked.probe.duration = time.perf_counter() - tracked.started
                    yield from self._finish(tracked.probe)
            if all(tracked.done for tracked in self._tracked) or time.monotonic() > deadline:
                break
            self.sleep(self.poll_interval)
        for tracked in self._tracked:
            if not tracked.done:
                status = tracked.last.get(self.reader.status) if tracked.last else "unknown"
                self._add(tracked.probe, Finding("polling_budget", f"Task {tracked.task_id} was still {status!r} when the polling budget ran "
                            f"out ({tracked.polls} polls, {self.max_wait:g} s); expected completed or failed.",
                            tracked.probe.exchanges[-1])
                )  # fmt: skip
                tracked.probe.duration = time.perf_counter() - tracked.started
                tracked.done = True
                yield from self._finish(tracked.probe)

    def run(self) -> Iterator[Event]:
        try:
            yield from self._run()
        finally:
            if self._owns_client:
                self.client.close()

    def _preflight(self) -> None:
        """One free request first: is the deployment there, and does it take the key?"""
        path = self.query.path_for(self.unknown_task)
        exchange, response = self._send("GET", path, "token")
        if response is None:
            raise CheckAborted(f"cannot reach {self.base_url}: {exchange.error}")
        if response.status_code == 401:
            raise CheckAborted(
                f"{self.base_url} refused the API key (HTTP 401 to {exchange.method} {path}): check "
                "MOCKSERVER_CHECK_TOKEN. Nothing else was sent."
            )

    def _run(self) -> Iterator[Event]:
        self._preflight()
        started = time.perf_counter()
        for probe in self._probes():
            if self.report.spent and probe.path == self.submit_path:
                continue  # a submission may already have cost something: send no more of them
            yield ProbeStarted(probe.name, probe.description)
            result = self._run_probe(probe)
            self.report.probes.append(result)
            yield ProbeFinished(result)
        for index in range(1, self.billable + 1):
            if self.report.spent >= self.billable:
                break  # the budget covers tasks a broken probe may have created too
            yield from self._submit_task(index)
        yield from self._follow_all()
        self.report.duration = time.perf_counter() - started
        yield RunFinished(self.report)


def _unknown_task(contract: Contract) -> str:
    """A task id no deployment has: shaped like the contract's ids, so that it reaches the lookup."""
    node = contract.shapes.task.find("id")
    try:
        maker = IdMaker.from_schema(node.schema if node is not None else None)
    except ValueError:
        return UNKNOWN_TASK
    if maker.kind == "default":
        return UNKNOWN_TASK
    return maker.make(1700000000, random.Random(0x6D63686B).getrandbits)


def _filled(op: Operation) -> str:
    """An operation's served path with its path parameters (a model's owner and name) filled with
    the values the contract gives them (const, default, example, first enum value)."""
    path = op.route
    for name in op.path_parameters:
        parameter = op.parameters.get(("path", name), {})
        value = example_of(parameter.get("schema"))
        value = value if value is not None else parameter.get("example", "sample")
        path = path.replace("{" + name + "}", str(value))
    return path


def _header_values(contract: Contract) -> dict[str, str]:
    """A valid value for each required header parameter of the submit and query operations (its
    const, default, example or first enum value)."""
    values: dict[str, str] = {}
    for op in (contract.submit, contract.query):
        for parameter in op.headers:
            spec = op.parameters.get(("header", parameter.shown), {})
            value = example_of(spec.get("schema"))
            value = value if value is not None else spec.get("example")
            if parameter.required and value is not None:
                values.setdefault(parameter.shown, str(value))
    return values


def _may_have_billed(response: httpx.Response | None) -> bool:
    """A submission accepted, answered 5xx, or not answered at all may have created a task."""
    return response is None or response.is_success or response.status_code >= 500


def _types(schema: dict[str, Any]) -> set[str]:
    kind = schema.get("type")
    return set(kind) if isinstance(kind, list) else ({kind} if isinstance(kind, str) else set())


def _json(response: httpx.Response | None) -> Any:
    if response is None:
        return None
    try:
        return response.json()
    except ValueError:
        return None


def _strip_reproduce(text: str) -> str:
    """schemathesis ends its report with its own curl line; ours, masked, is in the finding."""
    return text.split("\nReproduce with:", 1)[0].strip()
