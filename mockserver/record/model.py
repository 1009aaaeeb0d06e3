"""What the recorder keeps of a session, and how it turns it into scenarios.

Observations come from the recording proxy (`record.proxy`) or a HAR file (`record.har`): each
submission with its answer, and each poll of the task it created, with the times the request
left and the answer was complete. `Recording.write()` turns them into a scenario folder, one
scenario per submission plus `recorded`, which replays the session in order (a `sequence`).

Timelines come from observations. A poll only shows that a state was reached some time between
the poll before it and this one, so each change is placed at the middle of that interval: a
client polling at the recorded rhythm sees the same states in the same order when it replays.
Steps keep the progress observed (`ramp: false`), a `completed` without results holds for as many
polls as saw it, a 404 after the task was seen becomes `disappears_after`, and poll answers that
were errors or broken become poll rules on the same poll numbers.

Nothing secret is kept: the submit body's prompt (unless `--redact-prompts`), model, aspect ratio
and audio flag; answers' bodies (no credentials in them; result URLs are replaced by the fake's
video, or kept with credential-looking query parameters redacted); of the headers, Retry-After.
"""

from __future__ import annotations

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
from mockserver import conformity
from mockserver.media import Media
from mockserver.render import Renderer
from mockserver.scenarios import parse

STATUSES = ("pending", "processing", "completed", "failed", "cancelled")
RANK = {"pending": 0, "processing": 1, "completed": 2, "failed": 2, "cancelled": 2}
TERMINAL = ("completed", "failed", "cancelled")
SUBMIT_STATUSES = (200, 400, 401, 402, 403, 413, 422, 429, 500, 502, 503, 504)
POLL_STATUSES = (400, 401, 403, 404, 429, 500, 502, 503, 504)
KEPT_HEADERS = ("retry-after",)
MIN_LATENCY = 0.05  # seconds: below this, an answer's time is the network's, not the API's
SEQUENCE = "recorded"


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


def kept_headers(headers: Any) -> dict[str, str]:
    return {name.title(): value for name, value in headers.items() if name.lower() in KEPT_HEADERS}


def task_id_of(answer: Answer) -> str | None:
    body = answer.body
    if answer.status == 200 and isinstance(body, dict) and isinstance(body.get("id"), str) and body["id"]:
        return body["id"]
    return None


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
    error = body.get("error") if isinstance(body, dict) else None
    out: dict[str, Any] = {}
    if isinstance(error, dict):
        if isinstance(error.get("message"), str) and error["message"].strip():
            out["message"] = _clean(error["message"][:500], secrets)
        if isinstance(error.get("code"), str) and error["code"]:
            out["code"] = _clean(error["code"][:100], secrets)
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
        warn: Callable[[str], None] = lambda message: None,
    ) -> None:
        self.out = out
        self.contract = contract
        self.submit_op = contract.submit
        self.query_op = contract.query
        self.source = source
        self.keep_result_urls = keep_result_urls
        self.redact_prompts = redact_prompts
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

    # Observing.

    def _check(self, operation: Any, answer: Answer, what: str) -> None:
        if answer.kind != "json" or answer.status == 0:
            return
        spec = operation.answer(answer.status)
        if spec is None:
            answer.problems.append(f"{what} answered {answer.status}, a status the contract does not document")
        else:
            answer.problems += [f"{what} ({answer.status}): {p}" for p in spec.problems(answer.body, answer.headers)]
        status = answer.body.get("status") if isinstance(answer.body, dict) and answer.status == 200 else None
        if isinstance(status, str) and status not in STATUSES:
            answer.problems.append(f"{what}: status {status!r}, which the contract does not define")
        answer.problems[:] = [_clean(problem, self.secrets)[:400] for problem in answer.problems]
        for problem in answer.problems:
            if problem not in self._warned:
                self._warned.add(problem)
                self.warn(f"off contract: {problem}")

    def submission(self, body: Any, answer: Answer) -> Recorded:
        request = body if isinstance(body, dict) else {}
        kept = {k: request[k] for k in ("model", "aspect_ratio", "generate_audio") if k in request}
        if not self.redact_prompts and isinstance(request.get("prompt"), str):
            kept["prompt"] = _clean(request["prompt"][:300], self.secrets)
        recorded = Recorded(len(self.submissions) + 1, kept, answer)
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

    # Scenarios.

    def scenarios(self) -> dict[str, dict[str, Any]]:
        built = {}
        for recorded in self.submissions:
            made_from = (len(recorded.polls), recorded.task_id, len(self.secrets))
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
        parse(data, f"recording ({data['name']})")  # refuses here what the loader would refuse
        return data

    def _breaks_contract(self, data: dict[str, Any]) -> str:
        """Where the scenario, as built, breaks the contract ("" when it does not)."""
        if self._renderer is None:
            self._renderer = Renderer(self.contract, Media())
        scenario = parse({**data, "off_contract": "checking"}, f"recording ({data['name']})")
        found = conformity.problems(scenario, self.contract, self._renderer)
        return "; ".join(problem for _, problem in found)[:500]

    def _refusal(self, answer: Answer, notes: list[str]) -> dict[str, Any]:
        if answer.status == 0:
            return {"fault": "reset"}  # no answer reached the application either
        if answer.kind != "json" and answer.status == 200:
            return {"fault": "malformed" if answer.kind == "malformed" else "empty"}
        if answer.status == 200:  # JSON, but no task id in it: nothing a client can poll
            notes.append("The target answered 200 without a task id; it replays as a 500.")
            return {"status": 500, "error": {"message": "Recorded: the target answered 200 without a task id."}}
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
        observed: list[tuple[float, dict[str, Any]]] = [(0.0, rec.submit.body)]
        rules: list[dict[str, Any]] = []
        gone_at: float | None = None
        last_ok = 0.0
        for number, poll in enumerate(rec.polls, start=1):
            at = poll.sent - start
            if poll.status == 200 and poll.kind == "json" and isinstance(poll.body, dict):
                observed.append((at, poll.body))
                last_ok, gone_at = at, None
            elif poll.status == 404 and poll.kind == "json" and all(p.status == 404 for p in rec.polls[number:]):
                if gone_at is None:
                    gone_at = (last_ok + at) / 2
            else:
                rules.append(self._poll_rule(number, poll, notes))
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
        if gone_at is not None:
            data["disappears_after"] = _seconds(max(gone_at, steps[-1]["at"] + 0.001))
        credits = [
            b["usage"]["credits_reserved"] for _, b in observed
            if isinstance(b.get("usage"), dict) and isinstance(b["usage"].get("credits_reserved"), (int, float))
            and not isinstance(b["usage"]["credits_reserved"], bool)
            and math.isfinite(b["usage"]["credits_reserved"]) and b["usage"]["credits_reserved"] >= 0
        ]  # fmt: skip
        if credits:
            data["credits_reserved"] = credits[-1]
        final = steps[-1]
        polls = len(rec.polls)
        if gone_at is not None:
            return "disappeared", f"the task answered 404 from {gone_at:.1f} s on ({polls} polls)"
        if final["status"] == "failed":
            code = final["error"]["code"]
            return f"failed-{_slug(code)}", f"failed with {code} at {final['at']:.1f} s ({polls} polls)"
        if final["status"] == "completed" and final.get("results", 0) is None:
            return "completed-no-results", f"the recording ended while it was completed without results ({polls} polls)"
        if final["status"] == "completed":
            extra = f"; {quirk} poll(s) saw it completed before the results were attached" if quirk else ""
            return "completed", f"completed at {final['at']:.1f} s ({polls} polls{extra})"
        if final["status"] == "cancelled":
            return "cancelled", f"cancelled at {final['at']:.1f} s ({polls} polls)"
        return "unfinished", f"the recording ended while it was {final['status']} ({polls} polls)"

    def _poll_rule(self, number: int, poll: Answer, notes: list[str]) -> dict[str, Any]:
        rule: dict[str, Any] = {"on": [number]}
        if poll.status == 0:
            rule["fault"] = "reset"
        elif poll.kind in ("malformed", "empty") and poll.status == 200:
            rule["fault"] = poll.kind
        else:
            status = poll.status
            if status not in POLL_STATUSES:
                replaced = 500 if status >= 500 or status == 200 else 400
                notes.append(f"Poll {number} got {status}, which a scenario cannot script; it replays as {replaced}.")
                status = replaced
            rule["status"] = status
            rule["error"] = _error(poll.body, poll.status, self.secrets)
            headers = _retry_after(poll.headers)
            if headers:
                rule["headers"] = headers
        return rule

    def _steps(
        self, observed: list[tuple[float, dict[str, Any]]], notes: list[str]
    ) -> tuple[list[dict[str, Any]], int]:
        steps: list[dict[str, Any]] = []
        previous_key: tuple[Any, ...] | None = None
        previous_at = 0.0
        top = 0
        quirk = 0
        for at, body in observed:
            status = body.get("status")
            if status not in STATUSES or (steps and RANK[status] < RANK[steps[-1]["status"]]):
                if status in STATUSES:
                    notes.append(
                        f"The target went back from {steps[-1]['status']} to {status} at {at:.1f} s; not replayed."
                    )
                previous_at = at  # off contract (said so) or backwards: replayed as the state before it
                continue
            progress = body.get("progress")
            usable = isinstance(progress, (int, float)) and not isinstance(progress, bool) and math.isfinite(progress)
            progress = int(progress) if usable else top
            progress = max(0, min(100, progress))
            if progress < top:
                notes.append(f"Progress fell from {top} to {progress} at {at:.1f} s; it replays as {top}.")
                progress = top
            results = body.get("results")
            error = body.get("error") if isinstance(body.get("error"), dict) else None
            key = (status, progress, bool(results), (error or {}).get("code"))
            if key == previous_key:
                if steps and steps[-1].get("results", 0) is None:  # one more poll saw completed without results
                    steps[-1]["polls"] += 1
                    quirk += 1
                previous_at = at
                continue
            if steps and steps[-1]["status"] in TERMINAL and not (steps[-1]["status"] == "completed" == status):
                notes.append(f"After {steps[-1]['status']}, the target answered {status} at {at:.1f} s; not replayed.")
                break
            if (
                steps
                and steps[-1]["status"] == "completed"
                and status == "completed"
                and steps[-1].get("results", 0) is not None
            ):
                break  # completed with results, then completed again: nothing more to replay
            held = bool(steps) and steps[-1].get("results", 0) is None  # after completed-without-results: the
            middle = steps[-1]["at"] if held else (previous_at + at) / 2  # hold's poll count alone decides
            step: dict[str, Any] = {
                "at": 0.0 if not steps else _seconds(max(middle, steps[-1]["at"])),
                "status": status,
            }
            if progress:
                step["progress"] = progress
            if status not in TERMINAL:
                step["ramp"] = False
            if status == "completed":
                if not results:
                    step["results"] = None
                    step["polls"] = 1
                    quirk += 1
                elif self.keep_result_urls and isinstance(results, list):
                    step["results"] = [self._result(item) for item in results]
            if status == "failed":
                code = (error or {}).get("code") or "generation_failed"
                message = (error or {}).get("message") or "Recorded: the task failed."
                step["error"] = {"code": str(code)[:100], "message": str(message)[:500]}
            steps.append(step)
            top, previous_key, previous_at = progress, key, at
        if not steps:
            steps.append({"at": 0.0, "status": "pending"})
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
        header = f"# Recorded by `mockserver record` from {self.source}. Replay: mockserver serve --scenarios <this folder> --scenario recorded\n"
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
