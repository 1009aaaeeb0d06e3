"""Properties a client of the API must keep, judged from what it sent and how it ended.

The evidence is the fake's request journal for one run (entries as `Entry.to_json()` gives
them, oldest first: what the client sent, when, and what it got back), the client's exit status
and its output. Every property can be switched off or tuned through `Properties`.

    submits              the client submits its generation (a client that crashes on start, or
                         never calls the API, keeps no property by doing nothing)
    valid-requests       every request is one the contract describes, authenticated, with a
                         body and parameters the contract accepts
    poll-rate            polls of one task are at least `min_poll_interval` seconds apart
    stops-polling        at most `polls_after_terminal` polls of a task once it answered a
                         terminal state (failed, completed with results, or gone)
    no-early-success     exit status 0 only after receiving the task completed with results
    exit-code            exit status 0 when it received the task completed with results;
                         non-zero when the task failed or every submission was refused
    waits-for-results    after a task first answers `completed` without results (a documented
                         quirk: the results are attached on a later poll), the client polls it
                         again before it ends; ending right after that answer (a crash reading
                         the null results, or taking `completed` as final) breaks it
    retry-after          after a 429 with Retry-After: N, the next request of that kind waits N s
    no-duplicate-submit  no second submission after one that may have created the task (a 200,
                         a 5xx or no answer), unless the client said so (`ambiguous_retry_pattern`)
                         in its output between the two
    callbacks            for a client that gives a callback URL: it reaches the right outcome
                         whatever the callbacks do (a lost, late or badly signed callback is
                         covered by polling; one that told it the task completed is acted on),
                         refuses a callback whose signature does not verify (a 4xx), and handles
                         a callback delivered twice with one webhook id once (its result is not
                         downloaded again, and its output names that webhook id on one line only,
                         besides lines that say it was a duplicate)
    time-limit           the client ends within the time limit

The callbacks are judged from the fake's outgoing journal entries (`ClientRun.callbacks`: each
delivery attempt, its body, its fault and the receiver's status) and the deliveries still to
come (`ClientRun.pending`, with the scenario clock's reading `ClientRun.now`).
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from typing import Any

from contracts._contract import Contract
from contracts.rules import Reader

PROPERTY_NAMES = (
    "submits",
    "valid-requests",
    "poll-rate",
    "stops-polling",
    "no-early-success",
    "exit-code",
    "waits-for-results",
    "retry-after",
    "no-duplicate-submit",
    "callbacks",
    "time-limit",
)
TOLERANCE = 0.05  # seconds of timing slack when judging waits


@dataclass(frozen=True)
class Properties:
    """Which properties to judge, and their knobs."""

    enabled: frozenset[str] = frozenset(PROPERTY_NAMES)
    min_poll_interval: float = 0.05
    polls_after_terminal: int = 1
    ambiguous_retry_pattern: str = r"(?i)\b(retry|retrying|resubmit\w*|duplicate)\b"
    duplicate_callback_pattern: str = r"(?i)\b(duplicates?|already|seen|ignor\w*|again|skip\w*)\b"

    def without(self, *names: str) -> Properties:
        unknown = set(names) - set(PROPERTY_NAMES)
        if unknown:
            raise ValueError(f"unknown properties: {', '.join(sorted(unknown))}; known: {', '.join(PROPERTY_NAMES)}")
        return Properties(
            self.enabled - set(names), self.min_poll_interval, self.polls_after_terminal, self.ambiguous_retry_pattern,
            self.duplicate_callback_pattern,
        )  # fmt: skip


@dataclass
class ClientRun:
    entries: list[dict[str, Any]]
    exit_code: int | None  # None when the client was stopped before it ended
    output: str = ""
    duration: float = 0.0
    time_limit: float = 0.0
    stopped: str | None = None  # "time-limit", or "broken" when stopped as soon as a property broke
    lines: list[tuple[float, str]] = field(default_factory=list)  # output lines with when they came
    # The callbacks of this run (a client that gave a callback URL): the fake's outgoing journal
    # entries, oldest first; the deliveries still to come (Delivery.to_json()); the scenario clock
    # when the client ended; and the delivery attempts as `GET /__admin/callbacks` lists them.
    callbacks: list[dict[str, Any]] = field(default_factory=list)
    pending: list[dict[str, Any]] = field(default_factory=list)
    now: float = 0.0
    attempts: list[dict[str, Any]] = field(default_factory=list)


# Properties that, once broken, stay broken whatever the client does next: a runner may stop
# the client as soon as one of them breaks.
FINAL = ("valid-requests", "poll-rate", "stops-polling", "retry-after", "no-duplicate-submit")


@dataclass
class Broken:
    """A property the client broke, with the requests that show it."""

    property: str
    message: str
    evidence: list[dict[str, Any]] = field(default_factory=list)

    def __repr__(self) -> str:  # short, for assertion messages: the evidence is in the object
        return f"Broken({self.property!r}: {self.message})"


def _answer(entry: dict[str, Any]) -> Any:
    try:
        return json.loads(entry.get("response") or "null")
    except ValueError:
        return None


def _said(answer: Any) -> str | None:
    """The message of an error body, whatever its shape ({error: {message}}, {error: "..."},
    problem details' `detail`, a top-level `message`)."""
    if not isinstance(answer, dict):
        return None
    error = answer.get("error")
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return error["message"]
    for found in (error, answer.get("detail"), answer.get("message")):
        if isinstance(found, str) and found:
            return found
    return None


class Judge:
    """`timebase` is the clock waits are measured on: "wall_time" (real seconds, for a client in
    another process) or "time" (scenario seconds, for an in-process client whose sleeps move the
    fake's manual clock)."""

    def __init__(self, contract: Contract, properties: Properties | None = None, timebase: str = "wall_time") -> None:
        if timebase not in ("wall_time", "time"):
            raise ValueError(f"timebase must be 'wall_time' or 'time', got {timebase!r}")
        self.timebase = timebase
        self.properties = properties or Properties()
        self.submit = contract.submit
        self.query = contract.query
        self.reader = Reader.of(contract)
        self._submit_path = self.submit.path_regex
        self._poll_path = self.query.path_regex
        shapes = contract.shapes
        self._content = shapes.content.path_regex if shapes.content is not None else None
        self._others = [
            (op.method, op.path_regex) for kind, op in shapes.operations.items() if kind in ("cancel", "delete", "list")
        ]

    def _arrived(self, entry: dict[str, Any]) -> float:
        return entry[self.timebase]

    def _ended(self, entry: dict[str, Any]) -> float:
        took = entry["duration_ms"] / 1000 if self.timebase == "wall_time" else 0.0
        return entry[self.timebase] + took

    def kind(self, entry: dict[str, Any]) -> str:
        """submit, poll, download (the result or the content operation), api (another operation
        the contract documents: cancel, delete, list) or other."""
        method, path = entry["method"], entry["path"]
        if method == self.submit.method and self._submit_path.match(path):
            return "submit"
        if self._poll_path.match(path) and method in (self.query.method, "HEAD"):
            return "poll"
        if method in ("GET", "HEAD") and (
            path.startswith("/files/") or (self._content is not None and self._content.match(path))
        ):
            return "download"
        if any(method == other and pattern.match(path) for other, pattern in self._others):
            return "api"
        return "other"

    def _is_terminal(self, entry: dict[str, Any]) -> bool:
        """Whether this poll told the client its task is over."""
        if entry["status"] == 404:
            return True
        task = _answer(entry)
        return entry["status"] == 200 and isinstance(task, dict) and self.reader.is_done(task)

    def _results_pending(self, entry: dict[str, Any]) -> bool:
        """Whether this poll answered the task succeeded before its result was attached."""
        task = _answer(entry)
        if entry["status"] != 200 or not isinstance(task, dict) or self.reader.phase(task) != "succeeded":
            return False
        return self.reader.result(task) is not None and not self.reader.has_result(task)

    def _completed(self, entry: dict[str, Any]) -> bool:
        task = _answer(entry)
        return (
            entry["status"] == 200
            and isinstance(task, dict)
            and self.reader.phase(task) == "succeeded"
            and self.reader.is_done(task)
        )

    def judge(self, run: ClientRun, only: tuple[str, ...] = PROPERTY_NAMES) -> list[Broken]:
        found: list[Broken] = []
        checks = {
            "submits": self._submits,
            "valid-requests": self._valid_requests,
            "poll-rate": self._poll_rate,
            "stops-polling": self._stops_polling,
            "no-early-success": self._no_early_success,
            "exit-code": self._exit_code,
            "waits-for-results": self._waits_for_results,
            "retry-after": self._retry_after,
            "no-duplicate-submit": self._no_duplicate_submit,
            "callbacks": self._callbacks,
            "time-limit": self._time_limit,
        }
        for name, check in checks.items():
            if name in self.properties.enabled and name in only:
                found += check(run)
        return found

    def _submits(self, run: ClientRun) -> list[Broken]:
        if run.stopped is None and not any(self.kind(entry) == "submit" for entry in run.entries):
            return [
                Broken(
                    "submits",
                    f"The client exited {run.exit_code} without submitting anything; expected one submission "
                    "(did it start? see its output).",
                )
            ]
        return []

    def _valid_requests(self, run: ClientRun) -> list[Broken]:
        """Judged from the fake's own answers: it validates every request against the contract,
        and refuses an invalid one before any scenario is chosen (so `scenario` is empty); a
        refusal a scenario scripted names its scenario."""
        created = {e["task_id"] for e in run.entries if self.kind(e) == "submit" and e.get("task_id")}
        for entry in run.entries:
            kind = self.kind(entry)
            problem = None
            if kind == "other":
                problem = f"sent {entry['method']} {entry['path']}, which the API does not have"
            elif (
                kind in ("submit", "poll", "api")
                and entry["status"] in (400, 401, 413, 422)
                and entry.get("scenario") is None
            ):
                said = _said(_answer(entry)) or f"HTTP {entry['status']}"
                problem = (
                    f"sent {entry['method']} {entry['path']}, which the fake refused (HTTP {entry['status']}): {said}"
                )
            elif kind == "poll" and entry["status"] == 404 and entry.get("task_id") not in created:
                problem = f"polled {entry['path']}, a task id no submission of this run returned"
            if problem:
                return [Broken("valid-requests", f"The client {problem}.", [entry])]
        return []

    def _polls_by_task(self, run: ClientRun) -> dict[str, list[dict[str, Any]]]:
        polls: dict[str, list[dict[str, Any]]] = {}
        for entry in run.entries:
            if self.kind(entry) == "poll" and entry.get("task_id"):
                polls.setdefault(entry["task_id"], []).append(entry)
        return polls

    def _poll_rate(self, run: ClientRun) -> list[Broken]:
        limit = self.properties.min_poll_interval
        for task_id, polls in self._polls_by_task(run).items():
            gaps = [
                (self._arrived(later) - self._ended(earlier), earlier, later)
                for earlier, later in itertools.pairwise(polls)
            ]
            fast = [gap for gap in gaps if gap[0] < limit]
            if fast:
                smallest = min(fast, key=lambda gap: gap[0])
                return [
                    Broken(
                        "poll-rate",
                        f"The client polled task {task_id} {len(polls)} times; {len(fast)} poll(s) came less than "
                        f"{limit:g} s after the answer to the one before (the closest {max(smallest[0], 0) * 1000:.1f} ms apart).",
                        [smallest[1], smallest[2]],
                    )
                ]
        return []

    def _stops_polling(self, run: ClientRun) -> list[Broken]:
        allowed = self.properties.polls_after_terminal
        for task_id, polls in self._polls_by_task(run).items():
            ended = next((index for index, entry in enumerate(polls) if self._is_terminal(entry)), None)
            if ended is not None and len(polls) - ended - 1 > allowed:
                extra = len(polls) - ended - 1
                what = (
                    f"HTTP {polls[ended]['status']}"
                    if polls[ended]["status"] == 404
                    else f"'{(_answer(polls[ended]) or {}).get('status')}'"
                )
                return [
                    Broken(
                        "stops-polling",
                        f"Task {task_id} answered {what} (terminal) on poll {ended + 1}, and the client polled it "
                        f"{extra} more time(s); at most {allowed} expected.",
                        polls[ended : ended + 3],
                    )
                ]
        return []

    def _no_early_success(self, run: ClientRun) -> list[Broken]:
        told = any(self._completed_callback(e) for e in _received(run.callbacks))  # one the receiver took
        if (
            run.exit_code == 0
            and not told
            and not any(self.kind(e) == "poll" and self._completed(e) for e in run.entries)
        ):
            polls = [e for e in run.entries if self.kind(e) == "poll"]
            last = (
                f"; the last poll answered {polls[-1]['status']} {(_answer(polls[-1]) or {}).get('status', '')}"
                if polls
                else ""
            )
            return [
                Broken(
                    "no-early-success",
                    f"The client exited 0 (success) without ever receiving its task completed with results{last}.",
                    polls[-2:],
                )
            ]
        return []

    def _exit_code(self, run: ClientRun) -> list[Broken]:
        completed = [e for e in run.entries if self.kind(e) == "poll" and self._completed(e)]
        if completed and run.exit_code not in (0, None):
            return [
                Broken(
                    "exit-code",
                    f"The client received its task completed with results, then exited {run.exit_code}; expected 0.",
                    completed[:1],
                )
            ]
        return []

    def _waits_for_results(self, run: ClientRun) -> list[Broken]:
        """Judged only when the client ended on its own: a client the runner stopped is judged by
        time-limit (or by the property that stopped it). Only the first such answer counts, so a
        client that keeps polling through the quirk and gives up later, at its own deadline, keeps
        this property."""
        if run.stopped is not None or run.exit_code is None:
            return []
        for task_id, polls in self._polls_by_task(run).items():
            first = next((index for index, entry in enumerate(polls) if self._results_pending(entry)), None)
            if first is not None and first == len(polls) - 1:
                progress = (_answer(polls[first]) or {}).get("progress")
                return [
                    Broken(
                        "waits-for-results",
                        f"Task {task_id} answered 'completed' without results (progress {progress}) on poll "
                        f"{first + 1}, and the client polled it no more and exited {run.exit_code}; a completed task "
                        "without results is not done yet: its results come on a later poll.",
                        polls[first:],
                    )
                ]
        return []

    def _retry_after(self, run: ClientRun) -> list[Broken]:
        for index, entry in enumerate(run.entries):
            wait = entry.get("response_headers", {}).get("retry-after")
            if entry["status"] != 429 or wait is None or not wait.isdigit():
                continue
            kind = self.kind(entry)
            following = next(
                (
                    e
                    for e in run.entries[index + 1 :]
                    if self.kind(e) == kind and (kind != "poll" or e.get("task_id") == entry.get("task_id"))
                ),
                None,
            )
            if following is not None:
                gap = self._arrived(following) - self._ended(entry)
                if gap + TOLERANCE < int(wait):
                    return [
                        Broken(
                            "retry-after",
                            f"A {kind} got 429 with Retry-After: {wait}, and the client sent the next {kind} "
                            f"{gap:.2f} s later; expected at least {wait} s.",
                            [entry, following],
                        )
                    ]
        return []

    def _announced(self, run: ClientRun, after: float, before: float) -> bool:
        """Whether the client said it is retrying between two moments (from its timed output lines;
        without them, anywhere in its output)."""
        pattern = self.properties.ambiguous_retry_pattern
        if not run.lines:
            return re.search(pattern, run.output) is not None
        return any(after <= at <= before and re.search(pattern, text) for at, text in run.lines)

    def _no_duplicate_submit(self, run: ClientRun) -> list[Broken]:
        submits = [e for e in run.entries if self.kind(e) == "submit"]
        for index, entry in enumerate(submits[:-1]):
            may_have_created = entry["status"] == 200 or entry["status"] >= 500 or entry["status"] == 0
            if not may_have_created:
                continue
            following = submits[index + 1]
            if entry["status"] != 200 and self._announced(run, entry["wall_time"], following["wall_time"]):
                continue  # the client said, before doing it, that it is retrying an ambiguous submission
            outcome = (
                "was accepted"
                if entry["status"] == 200
                else (f"got HTTP {entry['status']}" if entry["status"] else "got no answer")
            )
            return [
                Broken(
                    "no-duplicate-submit",
                    f"Submission {index + 1} {outcome}, so it may have created (and billed) a task, and the client "
                    f"submitted again{'' if entry['status'] == 200 else ' without saying so'}.",
                    [entry, following],
                )
            ]
        return []

    def _callbacks(self, run: ClientRun) -> list[Broken]:
        """Judged from what the fake delivered (or meant to) and what the client did about it."""
        if not run.callbacks and not run.pending:
            return []
        for entry in run.callbacks:
            if entry.get("fault") == "bad_signature" and 200 <= entry["status"] < 300:
                return [
                    Broken(
                        "callbacks",
                        f"The client's receiver answered HTTP {entry['status']} to a callback whose webhook-signature does "
                        f"not verify (webhook-id {_webhook_id(entry)}, signed with another secret); it must refuse it "
                        "(a 4xx) and act on nothing it says.",
                        [entry],
                    )
                ]
        received = _received(run.callbacks)
        found = self._duplicate_processed(run, received)
        if found:
            return found
        if run.stopped not in (None, "time-limit"):
            return []  # stopped for another property: that one says what went wrong
        ended = "was still running at the time limit" if run.stopped else f"exited {run.exit_code}"
        told = next((e for e in received if self._completed_callback(e)), None)
        if told is not None and run.exit_code != 0:
            how = {"duplicate": "one of its copies ", "redelivery": "a redelivery "}.get(told.get("fault") or "", "")
            return [
                Broken(
                    "callbacks",
                    f"A callback told the client its task {told.get('task_id')} completed with results ({how}webhook-id "
                    f"{_webhook_id(told)}, answered HTTP {told['status']}), and the client {ended}; expected exit 0. A "
                    "callback can come before polls show its state: trust its body, or poll until they do.",
                    [told],
                )
            ]
        polled_out = any(self.kind(e) == "poll" and self._is_terminal(e) for e in run.entries)
        if polled_out or any(self._is_done_answer(e) for e in received):
            return []
        over = [e for e in run.callbacks if self._is_done_answer(e)]
        late = [
            d
            for d in run.pending
            if d.get("event") in ("succeeded", "failed", "cancelled") and d.get("at", 0) <= run.now
        ]
        if not over and not late:
            return []  # the task was not over when the client ended: nothing to learn yet
        task_id = (over or late)[0].get("task_id")
        polls = [e for e in run.entries if self.kind(e) == "poll" and e.get("task_id") == task_id]
        last = (
            f"; the last answered {(_answer(polls[-1]) or {}).get(self.reader.status, polls[-1]['status'])!r}"
            if polls
            else ""
        )
        return [
            Broken(
                "callbacks",
                f"Task {task_id} was over, and its callback {_what_became(over, late, run.now)}; the client never learnt "
                f"the outcome: it polled the task {len(polls)} time(s){last}, and {ended}. A callback can be lost or "
                "late: poll as a fallback.",
                over[-2:],
            )
        ]

    def _completed_callback(self, entry: dict[str, Any]) -> bool:
        """Whether a callback's body shows its task completed with results."""
        task = _body(entry)
        return isinstance(task, dict) and self.reader.phase(task) == "succeeded" and self.reader.is_done(task)

    def _is_done_answer(self, entry: dict[str, Any]) -> bool:
        """Whether a callback's body shows its task over (failed, cancelled, completed with results)."""
        task = _body(entry)
        return isinstance(task, dict) and self.reader.is_done(task)

    def _duplicate_processed(self, run: ClientRun, received: list[dict[str, Any]]) -> list[Broken]:
        """A webhook id the receiver took more than once, handled more than once: its result
        downloaded again after the first, or named on more output lines than one (lines that say
        it was a duplicate, seen or ignored aside)."""
        by_id: dict[str, list[dict[str, Any]]] = {}
        for entry in received:
            by_id.setdefault(_webhook_id(entry), []).append(entry)
        for webhook_id, copies in by_id.items():
            if len(copies) < 2:
                continue
            task_id = copies[0].get("task_id") or ""
            downloads = [
                e for e in run.entries
                if self.kind(e) == "download" and task_id and task_id in e["path"] and e["wall_time"] >= copies[0]["wall_time"]
            ]  # fmt: skip
            if len(downloads) > 1:
                return [
                    Broken(
                        "callbacks",
                        f"The callback of task {task_id} (webhook-id {webhook_id}) was delivered {len(copies)} times, and "
                        f"the client downloaded its result {len(downloads)} times after it: it processed a duplicate "
                        "again. Deliveries are at least once: deduplicate by webhook-id.",
                        [*copies[:2], *downloads[:2]],
                    )
                ]
            quiet = re.compile(self.properties.duplicate_callback_pattern)
            named = [text.strip() for _, text in run.lines if webhook_id in text and not quiet.search(text)]
            if not run.lines:
                named = [text for text in run.output.splitlines() if webhook_id in text and not quiet.search(text)]
            if len(named) > 1:
                shown = "; ".join(repr(text[:100]) for text in named[:3])
                return [
                    Broken(
                        "callbacks",
                        f"The callback of task {task_id} (webhook-id {webhook_id}) was delivered {len(copies)} times, and "
                        f"the client's output names it on {len(named)} lines that do not say it was a duplicate ({shown}): "
                        "it processed a duplicate again. Deliveries are at least once: deduplicate by webhook-id.",
                        copies[:2],
                    )
                ]
        return []

    def _time_limit(self, run: ClientRun) -> list[Broken]:
        if run.stopped == "time-limit":
            return [
                Broken(
                    "time-limit",
                    f"The client was still running after {run.time_limit:g} s and was stopped.",
                    run.entries[-2:],
                )
            ]
        return []


def _webhook_id(entry: dict[str, Any]) -> str:
    headers = entry.get("headers") or {}
    return str(headers.get("webhook-id") or "(none)")


def _body(entry: dict[str, Any]) -> Any:
    try:
        return json.loads(entry.get("body") or "null")
    except ValueError:
        return None


def _received(callbacks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The callbacks the receiver took (a 2xx) that it could trust (signed as they should be)."""
    return [e for e in callbacks if 200 <= e["status"] < 300 and e.get("fault") != "bad_signature"]


def _what_became(over: list[dict[str, Any]], late: list[dict[str, Any]], now: float) -> str:
    """What became of a task's callbacks, in words: lost, refused, not answered, late."""
    if late and not over:
        wait = late[0]["due"] - now
        return f"was late (due {wait:.0f} scenario seconds after the client ended)"
    faults = {e.get("fault") for e in over}
    if "lost" in faults:
        return "was lost (never delivered)"
    statuses = [e["status"] for e in over]
    refused = ", ".join(f"HTTP {status}" if status else "no answer" for status in statuses[:4])
    bad = " (its signature did not verify)" if "bad_signature" in faults else ""
    return f"was not taken: {len(over)} attempt(s) answered {refused}{bad}"
