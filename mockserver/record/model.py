"""What the recorder keeps of a session, and how it turns it into scenarios.

Observations come from the recording proxy (`record.proxy`) or a HAR file (`record.har`): each
submission with its answer, each poll of the task it created, and each cancel or delete of it
the application made, with the times the request left and the answer was complete.
`Recording.exchange()` says which of those a request is, by the operations of the contract
(their method and served path, server prefix and path parameters included); anything else is
not recorded. `Recording.write()` turns them into a scenario folder, one scenario per
submission plus `recorded`, which replays the session in order (a `sequence`).

Tasks are read as the contract describes them (`contracts.rules.Reader`): the status in the
provider's own words, each step keeping the word it answered (`THROTTLED`, `dreaming`) and
ordered by the phase it stands for; progress on the contract's scale (a fraction 0..1 becomes
0..100); the result wherever the contract places it (none when a content operation serves the
video); the error wherever the contract puts it (an object with code and message, a message
string and a code beside it, a string alone: a missing code becomes `generation_failed`, and
the scenario says so).

Timelines come from observations. A poll only shows that a state was reached some time between
the poll before it and this one, so each change is placed at the middle of that interval: a
client polling at the recorded rhythm sees the same states in the same order when it replays.
Steps keep the progress observed (`ramp: false`), a `completed` without results holds for as many
polls as saw it, a 404 after the task was seen becomes `disappears_after`, and poll answers that
were errors or broken become poll rules on the same poll numbers. A task the application
cancelled or deleted becomes cancelled when the target took the cancel (a step in the contract's
word for it, where it has one) and, after a delete, gone (`disappears_after`). An application
replaying cancels or deletes again, and the scenario must not get there first: the step before
a cancel holds for one poll more than saw it (the fake refuses to cancel a cancelled task), and
the task is gone from the first poll that found it gone, the latest moment the recording allows.

Callbacks (where the contract documents them and a submission gave a URL, which the recording
proxy replaced with its own endpoint): each delivery the target made, with when it arrived,
the application's answer and what it showed, is timed against the polls into the scenario's
`callbacks` key: none by the end for a task that ended is `lost`; the same event (webhook id)
taken twice by the application is `duplicate`; one that came more than `late_after` seconds after
a poll showed its state is `late` (replayed when it came), one that came while a later poll
still showed the state before is `early`. A state no poll showed is placed when its callback
came (the application trusted it and polled no more).

Nothing secret is kept: the submit body's prompt (unless `--redact-prompts`), model, aspect ratio
and audio flag; answers' bodies (no credentials in them; result URLs are replaced by the fake's
video, or kept with credential-looking query parameters redacted); of the headers, Retry-After.
Of a callback, neither the application's URL nor any header (its signature).
"""

from __future__ import annotations

import json
import math
import os
import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml

from contracts import Contract
from contracts._vocabulary import PHASE_RANK, TERMINAL_PHASES
from contracts.rules import Reader
from mockserver import conformity
from mockserver.errors import ApiError
from mockserver.forms import is_form, parse_form
from mockserver.media import Media
from mockserver.render import Renderer
from mockserver.scenarios import parse

ACTIONS = ("cancel", "delete")  # what an application may do to a task, besides polling it
SUBMIT_STATUSES = (200, 400, 401, 402, 403, 413, 422, 429, 500, 502, 503, 504)
POLL_STATUSES = (400, 401, 403, 404, 429, 500, 502, 503, 504)
KEPT_HEADERS = ("retry-after",)
MIN_LATENCY = 0.05  # seconds: below this, an answer's time is the network's, not the API's
SEQUENCE = "recorded"
LATE_AFTER = 5.0  # seconds: a callback arriving later than this after polls showed its state is late
STAND_IN_CODE = "generation_failed"  # a failure's code when the target gave none (the fake's own word for it)


@dataclass
class Answer:
    """One exchange as observed: when the request left and its answer was complete (seconds, on
    one clock per session), the status (0: no answer), the JSON body (None: none or not JSON)."""

    sent: float
    received: float
    status: int
    body: Any = None
    kind: str = "json"  # json | empty | malformed | none (no answer: the connection broke)
    headers: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # where it broke the contract

    @property
    def at(self) -> float:
        return (self.sent + self.received) / 2

    @property
    def latency(self) -> float:
        return max(0.0, self.received - self.sent)


@dataclass
class Recorded:
    n: int  # order of the submission in the session, from 1
    request: dict[str, Any]
    submit: Answer
    task_id: str | None = None
    polls: list[Answer] = field(default_factory=list)
    actions: list[tuple[str, Answer]] = field(default_factory=list)  # the application's cancels and deletes
    callback: bool = False  # the application gave a callback URL (the recorder put its own in its place)
    callbacks: list[Callback] = field(default_factory=list)  # the deliveries the target made, in order


@dataclass
class Callback:
    """A callback delivery the target made, as the recorder forwarded it to the application:
    when it arrived (the session's clock), the application's answer (0: none), its JSON body
    (None: not JSON), and what tells its copies and retries apart from other events (its
    `webhook-id`, else a digest of its body). Nothing of its headers is kept."""

    received: float
    status: int
    body: Any
    key: str


@dataclass
class _Seen:
    """A state of the task as observed: by the submit's answer, a poll (`poll`), or a cancel or
    delete of the application (`action`: it changed then, not somewhere since the observation
    before); `implied`: no answer showed it, the contract's cancelled word stands for it."""

    at: float  # seconds since the submission was sent
    body: dict[str, Any]
    poll: bool = False
    action: str | None = None  # "cancel" or "delete"
    implied: bool = False
    callback: bool = False  # a callback's body, where no poll showed its state: it changed when it was sent


def kept_headers(headers: Any) -> dict[str, str]:
    return {name.title(): value for name, value in headers.items() if name.lower() in KEPT_HEADERS}


def _accepted(status: int) -> bool:
    return 200 <= status < 300


def task_id_of(answer: Answer) -> str | None:
    body = answer.body
    if _accepted(answer.status) and isinstance(body, dict) and isinstance(body.get("id"), str) and body["id"]:
        return body["id"]
    return None


def _pattern(template: str) -> re.Pattern[str]:
    """A path template as a regular expression, a group per parameter (as `Operation.path_regex`)."""
    return re.compile("^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$")


def _at(body: Any, path: tuple[str, ...]) -> Any:
    for name in path:
        body = body.get(name) if isinstance(body, dict) else None
    return body


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[^\s\"',;]+")
_URL_QUERY = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^\s\"'?#]+|/[^\s\"'?#]*)\?[^\s\"'#]*")


def _clean(text: str, secrets: set[str] | None = None) -> str:
    """Text from the target, fit for the disk: credentials it may echo (a known key, anything after
    Bearer or Basic) and URLs' query strings (signatures) removed, lone surrogates replaced."""
    for secret in secrets or ():
        if secret:
            text = text.replace(secret, "[redacted]")
    text = _URL_QUERY.sub(r"\1?[query removed]", _BEARER.sub(r"\1 [redacted]", text))
    return text.encode("utf-8", "replace").decode("utf-8")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "unknown"


def _seconds(value: float) -> float:
    return round(max(0.0, value), 3)


def _error(body: Any, status: int, secrets: set[str] | None = None) -> dict[str, Any]:
    """The message and code of an error answer, wherever the provider puts them: an `error`
    object, an `error` string, or a problem's `detail` (or a `message`) and `code` at the top."""
    error = body.get("error") if isinstance(body, dict) else None
    message = code = None
    if isinstance(error, dict):
        message, code = _text(error.get("message")), _text(error.get("code"))
    elif isinstance(error, str):
        message = _text(error)
    elif isinstance(body, dict):
        message = next((found for name in ("detail", "message", "title") if (found := _text(body.get(name)))), None)
        code = _text(body.get("code"))
    out: dict[str, Any] = {}
    if message is not None:
        out["message"] = _clean(message[:500], secrets)
    if code is not None:
        out["code"] = _clean(code[:100], secrets)
    out.setdefault("message", f"Recorded: HTTP {status}.")
    return out


def _retry_after(headers: dict[str, str]) -> dict[str, Any]:
    value = headers.get("Retry-After")
    if value is None:
        return {}
    return {"Retry-After": int(value) if value.strip().isdigit() else value.strip()}


class Recording:
    """A session being recorded into `out`. `write()` brings the folder up to date: every file
    is written whole to a temporary name and renamed into place, and only files whose content
    changed are written, so a crash at any moment leaves every file complete."""

    def __init__(
        self,
        out: Path,
        contract: Contract,
        source: str,
        *,
        keep_result_urls: bool = False,
        redact_prompts: bool = False,
        late_after: float = LATE_AFTER,
        warn: Callable[[str], None] = lambda message: None,
    ) -> None:
        self.out = out
        self.contract = contract
        self.shapes = contract.shapes
        self.submit_op = contract.submit
        self.query_op = contract.query
        self.reader = Reader.of(contract)
        self.vocabulary = self.shapes.vocabulary
        self.cancelled_word = next((w for w, phase in self.vocabulary.words.items() if phase == "cancelled"), None)
        progress = [node for shape in self.shapes.tasks for _, node in shape.node.walk() if node.source == "progress"]
        # as the fake renders it (mockserver.render): a contract whose progress is at most 1 counts in fractions
        self.progress_scale = 100 if progress and all(n.maximum is not None and n.maximum <= 1 for n in progress) else 1
        self.routes = self._routes()
        self.source = source
        self.keep_result_urls = keep_result_urls
        self.redact_prompts = redact_prompts
        self.late_after = late_after  # seconds after polls showed a state from which its callback is late
        self.warn = warn
        self.submissions: list[Recorded] = []
        self.by_task: dict[str, Recorded] = {}
        self.written: dict[str, str] = {}  # file name -> content last written
        self.started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        self._warned: set[str] = set()
        self._renderer: Renderer | None = None  # made when first needed (it reads the video clips)
        self.secrets: set[str] = set()  # credentials seen in requests: scrubbed from anything written
        self._built: dict[int, tuple[tuple[Any, ...], dict[str, Any]]] = {}  # n -> (what it was built from, data)
        self._texts: dict[str, tuple[dict[str, Any], str]] = {}  # name -> (data, its YAML)

    # Recognising.

    def _routes(self) -> list[tuple[str, str, list[re.Pattern[str]], str | None]]:
        """(kind, method, path patterns, the parameter that names the task) of each operation
        recorded: submit, query, cancel, delete. A path matches as the API serves it (with the
        server's prefix: OpenAI's /v1/videos) or as the document writes it (a target given with
        its prefix already, https://api.openai.com/v1)."""
        found = []
        for kind in ("submit", "query", *ACTIONS):
            op = self.shapes.operations.get(kind)
            if op is None:
                continue
            patterns = [op.path_regex] + ([_pattern(op.path)] if op.route and op.route != op.path else [])
            found.append((kind, op.method, patterns, op.path_parameters[-1] if kind != "submit" else None))
        return found

    def exchange(self, method: str, path: str) -> tuple[str, str | None] | None:
        """What a request is: ("submit", None), or ("query" | "cancel" | "delete", task id); None
        for anything else (a download, a list, another route), which is not recorded."""
        for kind, wanted, patterns, parameter in self.routes:
            if method != wanted:
                continue
            for pattern in patterns:
                match = pattern.match(path)
                if match is not None:
                    return kind, (match.group(parameter) if parameter else None)
        return None

    def request_body(self, content_type: str | None, raw: bytes) -> Any:
        """A submission's body as the contract reads it: JSON, or a form the submit documents
        (OpenAI's SDK sends multipart); None when it cannot be read."""
        kind = is_form(content_type)
        if kind is not None and kind in self.submit_op.forms:
            try:
                return parse_form(content_type or "", raw, self.submit_op.forms[kind][1].schema)
            except (ApiError, ValueError, RecursionError):
                return None
        try:
            return json.loads(raw) if raw.strip() else None
        except (ValueError, RecursionError):
            return None

    # Observing.

    def _check(self, operation: Any, answer: Answer, what: str) -> None:
        if answer.kind != "json" or answer.status == 0:
            return
        spec = operation.answer(answer.status)
        if spec is None:
            answer.problems.append(f"{what} answered {answer.status}, a status the contract does not document")
        else:
            answer.problems += [f"{what} ({answer.status}): {p}" for p in spec.problems(answer.body, answer.headers)]
        task = answer.body if isinstance(answer.body, dict) and _accepted(answer.status) else {}
        status = task.get(self.reader.status)
        if isinstance(status, str) and self.vocabulary.resolve(status) is None:
            answer.problems.append(f"{what}: status {status!r}, which the contract does not define")
        answer.problems[:] = [_clean(problem, self.secrets)[:400] for problem in answer.problems]
        for problem in answer.problems:
            if problem not in self._warned:
                self._warned.add(problem)
                self.warn(f"off contract: {problem}")

    def submission(self, body: Any, answer: Answer, path: str | None = None, callback: bool = False) -> Recorded:
        """A submission (`path`: where it went, for a model named by the path, as Replicate's;
        `callback`: it gave a callback URL, which the recorder replaced with its own)."""
        request = body if isinstance(body, dict) else {}
        fields = self.submit_op.shape_of(request) if request else None
        roles = fields.roles if fields is not None else {}  # where this contract keeps each (Runway: promptText)
        kept: dict[str, Any] = {}
        for name, role in (("model", "model"), ("aspect_ratio", "aspect_ratio"), ("generate_audio", "audio")):
            value = _at(request, roles.get(role, (name,)))
            if isinstance(value, (str, int, float, bool)):
                kept[name] = _clean(value[:100], self.secrets) if isinstance(value, str) else value
        if "model" not in kept and path is not None and self.submit_op.path_parameters and "model" not in roles:
            patterns = next(patterns for kind, _, patterns, _ in self.routes if kind == "submit")
            named = next((match for pattern in patterns if (match := pattern.match(path))), None)
            if named is not None:  # as the fake reads it: owner/name
                kept["model"] = _clean("/".join(named.groups())[:100], self.secrets)
        prompt = _at(request, roles.get("prompt", ("prompt",)))
        if not self.redact_prompts and isinstance(prompt, str):
            kept["prompt"] = _clean(prompt[:300], self.secrets)
        recorded = Recorded(len(self.submissions) + 1, kept, answer, callback=callback)
        self._check(self.submit_op, answer, f"submission {recorded.n}")
        recorded.task_id = task_id_of(answer)
        self.submissions.append(recorded)
        if recorded.task_id is not None:
            self.by_task[recorded.task_id] = recorded
        return recorded

    def poll(self, task_id: str, answer: Answer) -> Recorded | None:
        recorded = self.by_task.get(task_id)
        if recorded is None:
            return None  # a task this session did not submit
        recorded.polls.append(answer)
        self._check(self.query_op, answer, f"poll {len(recorded.polls)} of submission {recorded.n}")
        return recorded

    def action(self, kind: str, task_id: str, answer: Answer) -> Recorded | None:
        """A cancel or a delete the application made of a task of this session."""
        recorded = self.by_task.get(task_id)
        if recorded is None:
            return None
        recorded.actions.append((kind, answer))
        self._check(self.shapes.operations[kind], answer, f"{kind} of submission {recorded.n}")
        return recorded

    def delivered(self, recorded: Recorded, callback: Callback) -> None:
        """A callback the target delivered for a submission's task (and the recorder forwarded)."""
        recorded.callbacks.append(callback)

    def callback_phase(self, body: Any) -> tuple[str, dict[str, Any]] | None:
        """The phase a callback's body shows, and the task in it: the body itself (a task as a
        poll renders it, Replicate's), or the task in an envelope's `data`."""
        for task in (body, body.get("data") if isinstance(body, dict) else None):
            if isinstance(task, dict):
                phase = self.reader.phase(task)
                if phase is not None:
                    return phase, task
        return None

    # Scenarios.

    def scenarios(self) -> dict[str, dict[str, Any]]:
        built = {}
        for recorded in self.submissions:
            made_from = (
                len(recorded.polls), len(recorded.actions), recorded.task_id, len(self.secrets), len(recorded.callbacks)
            )  # fmt: skip
            cached = self._built.get(recorded.n)
            if cached is None or cached[0] != made_from:  # only a submission that moved is built again
                cached = (made_from, self._safe_scenario(recorded))
                self._built[recorded.n] = cached
            built[cached[1]["name"]] = cached[1]
        if built:
            built[SEQUENCE] = {
                "name": SEQUENCE,
                "description": (
                    f"The session recorded from {self.source} on {self.started}, replayed in order: the n-th "
                    f"submission of each API key since the fake started (or was reset) plays the n-th recorded "
                    f"submission ({len(built)} in all; after the last, the last again)."
                ),
                "sequence": list(built),
            }
        return built

    def _safe_scenario(self, rec: Recorded) -> dict[str, Any]:
        """The scenario of one submission; if what the target did cannot be made into one the fake
        loads (a bug of ours, or an answer nothing can script), a stand-in that says so."""
        try:
            return self._scenario(rec)
        except Exception as exc:  # noqa: BLE001 - a recording must go on whatever the target sent
            reason = _clean(str(exc), self.secrets)[:300]
            self.warn(f"submission {rec.n} could not be made into a scenario: {reason}")
            return {
                "name": f"rec-{rec.n:03d}-unreadable",
                "description": f"Recorded from {self.source} on {self.started}: submission {rec.n} of the session "
                f"could not be made into a scenario ({reason}); it replays as a 500.",
                "submit": {"status": 500, "error": {"message": "Recorded: this submission could not be replayed."}},
            }

    def _scenario(self, rec: Recorded) -> dict[str, Any]:
        notes: list[str] = []
        problems = [p for answer in (rec.submit, *rec.polls) for p in answer.problems]
        data: dict[str, Any] = {"name": "", "description": ""}
        submit_latency = rec.submit.latency
        if rec.task_id is None:
            data["submit"] = self._refusal(rec.submit, notes)
            outcome = f"refused-{rec.submit.status}" if rec.submit.status else "no-answer"
            summary = (
                f"the submission got {rec.submit.status}" + (f" (Retry-After {rec.submit.headers['Retry-After']})"
                if "Retry-After" in rec.submit.headers else "")
                if rec.submit.status else "the submission got no answer (the connection broke)"
            )  # fmt: skip
        else:
            outcome, summary = self._lifecycle(rec, data, notes)
        latency = {}
        if submit_latency >= MIN_LATENCY:
            latency["submit"] = min(300.0, _seconds(submit_latency))
        poll_latencies = [p.latency for p in rec.polls if p.status]
        if poll_latencies and statistics.median(poll_latencies) >= MIN_LATENCY:
            latency["poll"] = min(300.0, _seconds(statistics.median(poll_latencies)))
        if latency:
            data["latency"] = latency
        data["name"] = f"rec-{rec.n:03d}-{outcome}"
        request = ", ".join(str(rec.request[k]) for k in ("model", "aspect_ratio") if k in rec.request)
        prompt = f" Prompt: {rec.request['prompt']!r}." if "prompt" in rec.request else ""
        data["description"] = (
            f"Recorded from {self.source} on {self.started}: submission {rec.n} of the session"
            f"{' (' + request + ')' if request else ''}; {summary}.{prompt}" + ("".join(f" {note}" for note in notes))
        )
        drift = "The target broke the contract: " + "; ".join(dict.fromkeys(problems))[:800] if problems else ""
        breaks = self._breaks_contract(data)
        if breaks:
            data["off_contract"] = drift or f"Replays what the target did, which the contract does not allow: {breaks}"
        elif drift:  # what the scenario scripts is within the contract: the drift is told, not played
            data["description"] += f" {drift}."
        data["description"] = _clean(data["description"], self.secrets)
        parse(data, f"recording ({data['name']})", vocabulary=self.vocabulary)  # refuses here what the loader would
        return data

    def _breaks_contract(self, data: dict[str, Any]) -> str:
        """Where the scenario, as built, breaks the contract ("" when it does not)."""
        if self._renderer is None:
            self._renderer = Renderer(self.contract, Media())
        scenario = parse(
            {**data, "off_contract": "checking"}, f"recording ({data['name']})", vocabulary=self.vocabulary
        )
        found = conformity.problems(scenario, self.contract, self._renderer)
        return "; ".join(problem for _, problem in found)[:500]

    def _refusal(self, answer: Answer, notes: list[str]) -> dict[str, Any]:
        if answer.status == 0:
            return {"fault": "reset"}  # no answer reached the application either
        if answer.kind != "json" and answer.status == 200:
            return {"fault": "malformed" if answer.kind == "malformed" else "empty"}
        if _accepted(answer.status):  # JSON, but no task id in it: nothing a client can poll
            notes.append(f"The target answered {answer.status} without a task id; it replays as a 500.")
            return {
                "status": 500,
                "error": {"message": f"Recorded: the target answered {answer.status} without a task id."},
            }
        status = answer.status
        if status not in SUBMIT_STATUSES:
            replaced = 500 if status >= 500 else 400
            notes.append(f"The target answered {status}, which a scenario cannot script; it replays as {replaced}.")
            status = replaced
        out: dict[str, Any] = {"status": status}
        if status != 200:
            out["error"] = _error(answer.body, answer.status, self.secrets)
        headers = _retry_after(answer.headers)
        if headers:
            out["headers"] = headers
        return out

    def _lifecycle(self, rec: Recorded, data: dict[str, Any], notes: list[str]) -> tuple[str, str]:
        start = rec.submit.sent  # the fake makes the task when the submit arrives, and reads a poll when it arrives
        submit: dict[str, Any] = {}
        info = rec.submit.body.get("task_info") if isinstance(rec.submit.body, dict) else None
        if isinstance(info, dict) and isinstance(info.get("estimated_time"), int) and info["estimated_time"] >= 0:
            submit["estimated_time"] = info["estimated_time"]
        if submit:
            data["submit"] = submit
        observed = [_Seen(0.0, rec.submit.body)]
        acted, deleted = self._actions(rec, observed, notes)
        rules: list[dict[str, Any]] = []
        gone_at: float | None = None
        last_ok = 0.0
        for number, poll in enumerate(rec.polls, start=1):
            at = poll.sent - start
            # a 404 is the task gone when it says so in JSON, or whatever its body after a delete (a HAR
            # often holds no body the page did not read)
            gone = poll.kind == "json" or (deleted is not None and poll.sent >= deleted.received)
            if _accepted(poll.status) and poll.kind == "json" and isinstance(poll.body, dict):
                observed.append(_Seen(at, poll.body, poll=True))
                last_ok, gone_at = at, None
            elif poll.status == 404 and gone and all(p.status == 404 for p in rec.polls[number:]):
                if gone_at is None:
                    gone_at = (last_ok + at) / 2
            else:
                rules.append(self._poll_rule(number, poll, notes))
        shown = {self.reader.phase(seen.body) for seen in observed}
        for callback in self._first_deliveries(rec):
            found = self.callback_phase(callback.body)
            if found is not None and found[0] not in shown:  # the application trusted the callback, and polled no more
                shown.add(found[0])
                observed.append(_Seen(callback.received - start, found[1], callback=True))
        observed.sort(key=lambda seen: seen.at)
        if deleted is not None:
            # gone from the first poll that found it gone (else from the delete's answer): the latest
            # moment the recording allows, so that an application deleting again in a replay comes first
            after = [p for p in rec.polls if p.sent >= deleted.received]
            found_gone = [p.sent for p in after if p.status == 404]
            if after and not found_gone:
                notes.append(f"The target still answered the task after the delete at {deleted.sent - start:.1f} s.")
                deleted = None
            else:
                gone_at = max(gone_at or 0.0, (found_gone[0] if found_gone else deleted.received) - start)
        if rules:
            merged: dict[str, dict[str, Any]] = {}
            for rule in rules:  # one rule per distinct answer, with every poll number it answered
                key = repr({k: v for k, v in rule.items() if k != "on"})
                if key in merged:
                    merged[key]["on"] += rule["on"]
                else:
                    merged[key] = rule
            data["polls"] = list(merged.values())
        steps, quirk = self._steps(observed, notes)
        data["timeline"] = steps
        faults = self._callback_faults(rec, steps, notes)
        if faults:
            data["callbacks"] = faults
        if gone_at is not None:
            data["disappears_after"] = _seconds(max(gone_at, steps[-1]["at"] + 0.001))
        credits = [
            b["usage"]["credits_reserved"] for b in (seen.body for seen in observed)
            if isinstance(b.get("usage"), dict) and isinstance(b["usage"].get("credits_reserved"), (int, float))
            and not isinstance(b["usage"]["credits_reserved"], bool)
            and math.isfinite(b["usage"]["credits_reserved"]) and b["usage"]["credits_reserved"] >= 0
        ]  # fmt: skip
        if credits:
            data["credits_reserved"] = credits[-1]
        final = steps[-1]
        phase = self._phase(final)
        polls = len(rec.polls)
        if deleted is not None:
            return "deleted", (
                f"the application deleted it at {deleted.sent - start:.1f} s ({final['status']} then); it answered "
                f"404 from {data['disappears_after']:.1f} s on ({polls} polls)"
            )
        if gone_at is not None:
            return "disappeared", f"the task answered 404 from {gone_at:.1f} s on ({polls} polls)"
        if phase == "failed":
            code = final["error"]["code"]
            return f"failed-{_slug(code)}", f"failed with {code} at {final['at']:.1f} s ({polls} polls)"
        if phase == "succeeded" and final.get("results", 0) is None:
            return "completed-no-results", (
                f"the recording ended while it was {final['status']} without results ({polls} polls)"
            )
        if phase == "succeeded":
            extra = f"; {quirk} poll(s) saw it {final['status']} before the results were attached" if quirk else ""
            return "completed", f"{final['status']} at {final['at']:.1f} s ({polls} polls{extra})"
        if phase == "cancelled":
            by = " by the application" if acted else ""
            return "cancelled", f"{final['status']}{by} at {final['at']:.1f} s ({polls} polls)"
        return "unfinished", f"the recording ended while it was {final['status']} ({polls} polls)"

    def _actions(self, rec: Recorded, observed: list[_Seen], notes: list[str]) -> tuple[bool, Answer | None]:
        """Add what the application's cancels and deletes did to the observations: the task its
        answer carries (Replicate's cancel answers the prediction), else the contract's
        cancelled word at that moment (nothing where it has none: OpenAI's delete). Whether one of
        them was taken, and the first delete taken."""
        start = rec.submit.sent
        taken = False
        deleted = None
        for kind, answer in rec.actions:
            at = answer.sent - start
            if not _accepted(answer.status):
                got = answer.status or "no answer"
                notes.append(f"The application's {kind} at {at:.1f} s got {got}; not replayed.")
                continue
            body = answer.body if isinstance(answer.body, dict) and self.reader.phase(answer.body) is not None else None
            if body is not None:
                observed.append(_Seen(at, body, action=kind))
            elif self.cancelled_word is not None:
                observed.append(_Seen(at, {self.reader.status: self.cancelled_word}, action=kind, implied=True))
            taken = True
            if kind == "delete" and deleted is None:
                deleted = answer
        return taken, deleted

    def _first_deliveries(self, rec: Recorded) -> list[Callback]:
        """The first delivery of each event (one webhook id, or one body): its copies and retries after."""
        first: dict[str, Callback] = {}
        for callback in rec.callbacks:
            first.setdefault(callback.key, callback)
        return list(first.values())

    def _callback_faults(self, rec: Recorded, steps: list[dict[str, Any]], notes: list[str]) -> dict[str, Any]:
        """The scenario's `callbacks` key, from when the target's callbacks arrived against what
        polls showed: none by the end for a task that ended (`lost`), the same event delivered
        again after the application took it (`duplicate`), one that arrived more than
        `late_after` seconds after a poll showed its state (`late`: replayed when it arrived),
        one that arrived while polls still showed the state before (`early`)."""
        if not rec.callback:
            return {}
        start = rec.submit.sent
        reached: dict[str, float] = {}  # phase -> when the scenario reaches it
        for step in steps:
            reached.setdefault(self._phase(step), step["at"])
        polled = [
            (poll.sent - start, phase) for poll in rec.polls
            if _accepted(poll.status) and isinstance(poll.body, dict) and (phase := self.reader.phase(poll.body))
        ]  # fmt: skip
        if not rec.callbacks:
            ended = [phase for phase in reached if phase in TERMINAL_PHASES]
            if ended:
                notes.append(
                    f"The application asked for callbacks; none had arrived when the recording ended, though the "
                    f"task was {steps[-1]['status']} from {reached[ended[0]]:.1f} s: replayed as lost."
                )
                return {"lost": True}
            return {}
        out: dict[str, Any] = {}
        copies = max(
            sum(1 for c in rec.callbacks if c.key == first.key and _accepted(c.status)) for first in rec.callbacks
        )
        if copies > 1:
            out["duplicate"] = min(10, copies)
        shifts: list[tuple[bool, str, float]] = []  # (terminal, late | early, seconds)
        for first in self._first_deliveries(rec):
            at = first.received - start
            tries = sum(1 for c in rec.callbacks if c.key == first.key)
            answered = ", ".join(str(c.status or "no answer") for c in rec.callbacks if c.key == first.key)
            found = self.callback_phase(first.body)
            if found is None or found[0] not in reached:
                notes.append(f"A callback arrived at {at:.1f} s with no state the recording knows; not timed.")
                continue
            phase, task = found
            word = task.get(self.reader.status)
            times = "once" if tries == 1 else f"{tries} times"
            said = f"The callback for {word} arrived at {at:.1f} s ({times}; the application answered {answered})"
            rank = PHASE_RANK[phase]
            before = [p_at for p_at, p in polled if PHASE_RANK[p] < rank]
            after = [p_at for p_at, p in polled if PHASE_RANK[p] >= rank]
            if before and max(before) > at and reached[phase] - at > 0:
                shift = reached[phase] - at
                shifts.append((phase in TERMINAL_PHASES, "early", shift))
                notes.append(f"{said}, before a poll at {max(before):.1f} s still showed the state before: early.")
            elif after and at > min(after) + self.late_after and at - reached[phase] > 0:
                shift = at - reached[phase]
                shifts.append((phase in TERMINAL_PHASES, "late", shift))
                notes.append(f"{said}, {at - min(after):.1f} s after a poll showed it: late.")
            else:
                notes.append(f"{said}.")
        shifts.sort(key=lambda shift: not shift[0])  # the terminal event's timing first
        if shifts:
            _, kind, seconds = shifts[0]
            seconds = min(_seconds(seconds), 2592000.0 if kind == "late" else 86400.0)
            if seconds > 0:
                out[kind] = seconds
        return out

    def _phase(self, step: dict[str, Any]) -> str:
        found = self.vocabulary.resolve(step["status"])
        assert found is not None  # a step is only made of a word the vocabulary resolves
        return found[0]

    def _poll_rule(self, number: int, poll: Answer, notes: list[str]) -> dict[str, Any]:
        rule: dict[str, Any] = {"on": [number]}
        if poll.status == 0:
            rule["fault"] = "reset"
        elif poll.kind in ("malformed", "empty") and _accepted(poll.status):
            rule["fault"] = poll.kind
        else:
            status = poll.status
            if status not in POLL_STATUSES:
                replaced = 500 if status >= 500 or _accepted(status) else 400
                notes.append(f"Poll {number} got {status}, which a scenario cannot script; it replays as {replaced}.")
                status = replaced
            rule["status"] = status
            rule["error"] = _error(poll.body, poll.status, self.secrets)
            headers = _retry_after(poll.headers)
            if headers:
                rule["headers"] = headers
        return rule

    def _failure(self, body: dict[str, Any]) -> tuple[str | None, str | None]:
        """The code and message of a failed task, wherever the contract puts them: an error object
        (`code`, `message`), or a message string (Runway's `failure`, Replicate's `error`) with
        its code beside it (Runway's `failureCode`) or none."""
        value = _at(body, self.reader.error(body) or ("error",))
        code = message = None
        if isinstance(value, dict):
            code, message = _text(value.get("code")), _text(value.get("message"))
        elif isinstance(value, str):
            message = _text(value)
        if code is None:
            shape = self.shapes.shape_for(str(body.get(self.reader.status)))
            codes = [_text(_at(body, path)) for path, node in shape.node.walk() if node.source == "error_code"]
            code = next((found for found in codes if found), None)
        return code, message

    def _results(self, body: dict[str, Any]) -> tuple[bool, list[Any] | None]:
        """Whether the task carries its result at all (not when a content operation serves the
        video), and what it carries now, as a list (None: nothing yet)."""
        shape = self.shapes.shape_for(str(body.get(self.reader.status)))
        if shape.place is None:
            return False, None
        value = _at(body, shape.place)
        if isinstance(value, list):
            return True, value or None
        return True, [value] if isinstance(value, (str, dict)) and value else None

    def _steps(self, observed: list[_Seen], notes: list[str]) -> tuple[list[dict[str, Any]], int]:
        steps: list[dict[str, Any]] = []
        phases: list[str] = []  # of each step
        previous_key: tuple[Any, ...] | None = None
        previous_at = 0.0
        top = 0
        quirk = 0
        polled = 0  # polls that saw the last step
        for seen in observed:
            at, body = seen.at, seen.body
            word = body.get(self.reader.status)  # `status`, or what the contract calls it (`state`)
            found = self.vocabulary.resolve(word) if isinstance(word, str) else None
            if found is None or (steps and PHASE_RANK[found[0]] < PHASE_RANK[phases[-1]]):
                if found is not None and not seen.implied:
                    before = steps[-1]["status"]
                    notes.append(f"The target went back from {before} to {word} at {at:.1f} s; not replayed.")
                previous_at = at  # off contract (said so) or backwards: replayed as the state before it
                continue
            phase = found[0]
            if seen.implied and steps and phases[-1] in TERMINAL_PHASES:
                continue  # cancelled or deleted once it had ended: nothing changed
            progress = body.get("progress")
            if isinstance(progress, int | float) and not isinstance(progress, bool) and math.isfinite(progress):
                progress = int(round(progress * self.progress_scale, 6))  # Runway's 0.4 is 40
            else:
                progress = 100 if phase == "succeeded" else top
            progress = max(0, min(100, progress))
            if progress < top:
                notes.append(f"Progress fell from {top} to {progress} at {at:.1f} s; it replays as {top}.")
                progress = top
            holds, results = self._results(body)
            attached = not holds or results is not None
            code, message = self._failure(body) if phase == "failed" else (None, None)
            key = (word, progress, attached, code)
            if key == previous_key:
                if steps and steps[-1].get("results", 0) is None:  # one more poll saw it succeeded without results
                    steps[-1]["polls"] += 1
                    quirk += 1
                polled += seen.poll
                previous_at = at
                continue
            if steps and phases[-1] in TERMINAL_PHASES and not (phases[-1] == "succeeded" == phase):
                notes.append(f"After {steps[-1]['status']}, the target answered {word} at {at:.1f} s; not replayed.")
                break
            if steps and phases[-1] == "succeeded" == phase and steps[-1].get("results", 0) is not None:
                break  # succeeded with results, then succeeded again: nothing more to replay
            if not steps and seen.action and at > 0:  # cancelled before any poll: it was as created until then
                steps.append({"at": 0.0, "status": self.vocabulary.word("queued"), "ramp": False})
                phases.append("queued")
            if seen.action == "cancel" and phase == "cancelled" and steps and "polls" not in steps[-1]:
                # the step before holds for one poll more than saw it: an application that cancels again in a
                # replay (the fake refuses to cancel a cancelled task) does so before the scenario does
                steps[-1]["polls"] = polled + 1
                notes.append(
                    f"The application cancelled it at {at:.1f} s, after {polled} poll(s) saw it {steps[-1]['status']}: "
                    f"that step holds for {polled + 1} poll(s), so that an application cancelling again in a replay "
                    "does it first."
                )
            # after succeeded-without-results, the hold's poll count alone decides; an action's change is when it was
            # made; a poll's, between the observation before and this one
            held = bool(steps) and steps[-1].get("results", 0) is None
            middle = steps[-1]["at"] if held else at if seen.action or seen.callback else (previous_at + at) / 2
            step: dict[str, Any] = {
                "at": 0.0 if not steps else _seconds(max(middle, steps[-1]["at"])),
                "status": word,
            }
            if progress:
                step["progress"] = progress
            if phase not in TERMINAL_PHASES:
                step["ramp"] = False
            if phase == "succeeded":
                if not attached:
                    step["results"] = None
                    step["polls"] = 1
                    quirk += 1
                elif self.keep_result_urls and results:
                    step["results"] = [self._result(item) for item in results]
            if phase == "failed":
                if code is None:
                    notes.append(
                        f"The failure at {at:.1f} s came without a code; it replays with the code {STAND_IN_CODE}."
                    )
                step["error"] = {
                    "code": _clean((code or STAND_IN_CODE)[:100], self.secrets),
                    "message": _clean((message or "Recorded: the task failed.")[:500], self.secrets),
                }
            steps.append(step)
            phases.append(phase)
            top, previous_key, previous_at, polled = progress, key, at, int(seen.poll)
        if not steps:
            steps.append({"at": 0.0, "status": self.vocabulary.word("queued")})
        if steps[0]["at"] != 0:
            steps[0]["at"] = 0.0
        return steps, quirk

    def _result(self, item: Any) -> dict[str, Any] | str:
        """A result kept with --keep-result-urls: its URL without the query string (signatures and
        tokens live there), and of its other fields only plain numbers and the content type. A
        result that is a plain URL string (a contract whose results are strings) stays one."""
        url = item if isinstance(item, str) else item.get("url") if isinstance(item, dict) else None
        if not isinstance(url, str) or not url:
            return "about:blank" if isinstance(item, str) else {"url": "about:blank"}
        bare = urlunsplit(urlsplit(url)._replace(query="", fragment=""))
        if isinstance(item, str):
            return bare
        kept: dict[str, Any] = {"url": bare}
        if isinstance(item, dict):
            for name in ("content_type", "width", "height", "duration"):
                value = item.get(name)
                if isinstance(value, (int, float, str)) and not isinstance(value, bool) and len(str(value)) < 100:
                    kept[name] = value
        return kept

    # Writing.

    def files(self) -> dict[str, str]:
        out = {}
        name = self.contract.path.stem if self.contract.shipped else self.contract.path.name
        served = "" if name == "seed" else f"--contract {name} "
        header = (
            f"# Recorded by `mockserver record` from {self.source}. "
            f"Replay: mockserver serve {served}--scenarios <this folder> --scenario recorded\n"
        )
        texts = {}
        for name, data in self.scenarios().items():
            known = self._texts.get(name)
            if known is None or known[0] is not data:  # a submission that did not move keeps its text
                known = (data, header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100))
            texts[name] = known
            out[f"{name}.yaml"] = known[1]
        self._texts = texts
        return out

    def write(self, files: dict[str, str] | None = None) -> list[str]:
        """Bring the folder up to date with `files` (default: `self.files()`, made now); return the
        names of the files written."""
        files = self.files() if files is None else files
        if not files:
            return []
        self.out.mkdir(parents=True, exist_ok=True)
        written = []
        ordered = [name for name in files if name != f"{SEQUENCE}.yaml"] + [f"{SEQUENCE}.yaml"]
        for name in ordered:  # the sequence last: every scenario it names exists first
            if self.written.get(name) != files[name]:
                _atomic_write(self.out / name, files[name])
                self.written[name] = files[name]
                written.append(name)
        for name in list(self.written):
            if name not in files:  # renamed (its outcome became known): the old file goes
                (self.out / name).unlink(missing_ok=True)
                del self.written[name]
        return written


def _atomic_write(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
