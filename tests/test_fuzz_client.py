"""`mockserver fuzz-client`: the reference client passes generated behaviours; each deliberately
broken client is caught with the right property and a small, replayable scenario."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from contracts import Contract
from contracts.client_properties import ClientRun, Judge, Properties
from contracts.strategies import CLASSES, behaviours, classes
from mockserver.fuzzclient import FuzzOptions, FuzzRun
from mockserver.fuzzreport import ConsoleProgress
from mockserver.scenarios import parse

ROOT = Path(__file__).parents[1]
REFERENCE = [sys.executable, str(ROOT / "examples" / "reference_client.py")]
BROKEN = [sys.executable, str(ROOT / "tests" / "clients" / "broken.py")]
# The reference client reads its own variable names: mapped with --env.
REFERENCE_ENV = {
    "VEO_BASE_URL": "{base_url}",
    "VEO_API_KEY": "{api_key}",
    "VEO_POLL_INTERVAL": "0.1",
    "VEO_MAX_WAIT": "2",
    "VEO_BACKOFF": "0.1",
}
# Short lifecycles on a fast clock keep each run well under a second.
QUICK = {"max_steps": 3, "max_step_seconds": 10.0}


def fuzz(command: list[str], tmp_path: Path, **options: Any) -> Any:
    settings_ = {"examples": 60, "seed": 1, "time_limit": 4, "speed": 200.0, "out": tmp_path, "strategy": QUICK}
    return FuzzRun(FuzzOptions(command=command, **{**settings_, **options})).run()


def test_every_generated_behaviour_is_a_scenario_the_fake_accepts() -> None:
    from mockserver import Settings, create_app

    runtime = create_app(Settings(clock="manual")).state.runtime

    @settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
    @given(behaviour=behaviours())
    def check(behaviour: dict[str, Any]) -> None:
        runtime.add_scenario(parse(yaml.safe_load(yaml.safe_dump(behaviour)), "<generated>"))

    check()


def test_the_reference_client_passes_generated_behaviours(tmp_path: Path) -> None:
    # The time limit leaves room for the client's own limits: two Retry-After waits and VEO_MAX_WAIT.
    report = fuzz(REFERENCE, tmp_path, examples=25, time_limit=12, speed=100.0, env=REFERENCE_ENV)
    assert report.ok, report.failure and report.failure.broken
    assert len(report.generated) == 25 and all(example.passed for example in report.generated)
    assert report.covered == list(CLASSES)  # including a task completed before its results
    assert not list(tmp_path.iterdir())  # nothing to replay


# What each behaviour class looks like in the description a user sees for each run.
CLASS_IN_DESCRIPTION = {
    "plain": r"^Generated: submit accepted; \d+ steps, ends completed at",
    "rate-limited": r"submit 429 x\d \(Retry-After \d\); then accepted",
    "results-later": r"ends completed before its results, filled in later",
    "failed": r"ends failed \(\w+\)",
    "ambiguous-5xx": r"submit 50[03] x1 \(task created anyway\); then accepted",
    "submit-refused": r"submit (401|402|422 \(\w+\)|500|503);",
    "poll-errors": r"poll \d: (500|503|429)",
    "broken-polls": r"poll \d: (reset|empty|malformed|truncated)",
    "dropped-connection": r"submit (reset|empty) x1 \(task created anyway\); then accepted",
    "disappears": r"disappears after",
    "rate-limited-no-retry-after": r"submit 429 x\d; then accepted",
    "slow": r"latency (0\.[1-3])/(0\.[1-3]) s",
}


def test_a_small_budget_plays_every_behaviour_class_first(tmp_path: Path) -> None:
    # The client does nothing and nothing is judged: this is about which behaviours are played.
    options = {"time_limit": 4, "speed": 200.0, "out": tmp_path, "properties": Properties(enabled=frozenset())}
    report = FuzzRun(FuzzOptions(command=["true"], examples=25, seed=7, **options)).run()
    assert len(report.generated) == 25 and report.covered == list(CLASSES)
    for number, kind in enumerate(CLASSES, start=1):  # one of each, in order, before exploring
        example = report.generated[number - 1]
        assert example.kind == kind and re.search(CLASS_IN_DESCRIPTION[kind], example.description), example.description
    assert all(example.kind is None for example in report.generated[len(CLASSES) :])
    # Exploring starts from the simplest behaviour, which the first class run already played: not again.
    assert report.generated[len(CLASSES)].description != report.generated[0].description

    small = FuzzRun(FuzzOptions(command=["true"], examples=5, seed=7, **options)).run()
    console = Console(record=True, width=200)
    ConsoleProgress(console, FuzzOptions(command=["true"], examples=5)).summary(small)
    shown = " ".join(console.export_text().split())
    missed = ", ".join(list(CLASSES)[5:])
    assert f"5 of the {len(CLASSES)} behaviour classes were played; not {missed}." in shown
    assert f"Give --examples {len(CLASSES)} or more to cover them all." in shown


@pytest.mark.parametrize(
    ("bug", "property_", "shape"),
    [
        ("poll-after-failed", "stops-polling", lambda b: b["timeline"][-1]["status"] == "failed"),
        ("ignore-retry-after", "retry-after", lambda b: "Retry-After" in json.dumps(b)),
        ("success-on-completed", "no-early-success", lambda b: any(s.get("results", 1) is None for s in b["timeline"])),
        ("crash-on-completed", "waits-for-results", lambda b: any(s.get("results", 1) is None for s in b["timeline"])),
        ("tight-loop", "poll-rate", lambda b: len(b["timeline"]) <= 3),
        ("invalid-body", "valid-requests", lambda b: "submit" not in b and "polls" not in b),
    ],
)
def test_each_broken_client_is_caught_with_a_small_replayable_scenario(
    tmp_path: Path, bug: str, property_: str, shape: Any
) -> None:
    # The runner's own time limit is not what these clients get wrong: leave it out of the judging.
    properties = Properties().without("time-limit")
    report = fuzz([*BROKEN, bug], tmp_path / "out", examples=25, env={"MOCK_MAX_WAIT": "1"}, properties=properties)
    failure = report.failure
    assert failure is not None, f"{bug} was not caught in {len(report.examples)} runs"
    assert failure.broken[0].property == property_, [b.message for b in failure.broken]
    if property_ == "waits-for-results":  # what the user sees: the crash, and why it is the client's
        assert failure.run.exit_code == 1 and "TypeError" in failure.run.output
        assert "answered 'completed' without results" in failure.broken[0].message
        assert "exited 1; a completed task without results is not done yet" in failure.broken[0].message
    written = yaml.safe_load(failure.scenario_file.read_text())
    assert written["name"] == f"fuzz-{property_}" and property_ in written["description"]
    assert shape(written), written
    assert len(failure.scenario_file.read_text().splitlines()) <= 30  # shrunk: no noise left
    assert failure.replay.startswith(f"mockserver fuzz-client --replay {failure.scenario_file}")
    assert (
        "--min-poll-interval 0.05 --polls-after-terminal 1" in failure.replay and "--skip time-limit" in failure.replay
    )
    replayed = FuzzRun(
        FuzzOptions(command=[*BROKEN, bug], replay=failure.scenario_file, time_limit=4, speed=200.0,
                    env={"MOCK_MAX_WAIT": "1"}, properties=properties)
    ).run()  # fmt: skip
    assert replayed.failure is not None and replayed.failure.broken[0].property == property_


def test_a_client_that_never_runs_does_not_pass(tmp_path: Path) -> None:
    report = fuzz(["false"], tmp_path, examples=5)
    assert report.failure is not None and report.failure.broken[0].property == "submits"
    assert "exited 1 without submitting anything" in report.failure.broken[0].message


def test_a_command_that_does_not_exist_is_a_usage_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mockserver", "fuzz-client", "--examples", "1", "--", str(tmp_path / "no-such-client")],
        check=False, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2 and "no such executable" in result.stderr and "Traceback" not in result.stderr


def test_replaying_a_broken_file_names_its_file_and_line(tmp_path: Path) -> None:
    broken = tmp_path / "bad.yaml"
    broken.write_text("name: bad\ndescription: d\ntimeline:\n  - {at: 0, status: pendng}\n")
    result = subprocess.run(
        [sys.executable, "-m", "mockserver", "fuzz-client", "--replay", str(broken), "--", *BROKEN, "tight-loop"],
        check=False, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2 and f"{broken}:4: timeline[0].status" in result.stderr


def test_the_cli_shows_the_broken_property_requests_and_replay(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mockserver", "fuzz-client", "--examples", "20", "--seed", "2", "--speed", "200",
         "--time-limit", "10", "--out", str(tmp_path / "out"), "--json", str(tmp_path / "report.json"),
         "--", *BROKEN, "tight-loop"],
        check=False, capture_output=True, text=True, timeout=300, env={**__import__("os").environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert "The client broke 'poll-rate'" in out
    assert "The client's requests" in out and "GET  /v1/tasks/task-unified-" in out
    assert "Replay it with:" in out and "--replay" in out
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["ok"] is False and data["failure"]["broken"][0]["property"] == "poll-rate"
    assert data["seconds_per_run"] > 0


def test_the_cli_passes_a_good_client_with_its_own_variable_names(tmp_path: Path) -> None:
    env = [arg for name, value in REFERENCE_ENV.items() for arg in ("--env", f"{name}={value}")]
    result = subprocess.run(
        [sys.executable, "-m", "mockserver", "fuzz-client", "--examples", "5", "--seed", "4", "--speed", "200",
         "--time-limit", "10", "--out", str(tmp_path), *env, "--", *REFERENCE],
        check=False, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "The client kept every property." in result.stdout


def _entry(method: str, path: str, status: int, at: float, **extra: Any) -> dict[str, Any]:
    base = {
        "method": method, "path": path, "status": status, "wall_time": at, "time": at, "duration_ms": 1.0,
        "headers": {"content-type": "application/json"}, "key_id": "key-1", "query": "", "body": "",
        "task_id": None, "response": "", "response_headers": {}, "fault": None,
    }  # fmt: skip
    return {**base, **extra}


SUBMIT_BODY = json.dumps({"model": "veo-3.1-extend", "prompt": "p", "video": "https://example.com/v.mp4"})


def test_the_judge_accepts_a_retry_the_client_announced() -> None:
    entries = [
        _entry("POST", "/v1/videos/generations", 500, 0.0, body=SUBMIT_BODY),
        _entry("POST", "/v1/videos/generations", 200, 1.0, body=SUBMIT_BODY, task_id="t"),
    ]
    judge = Judge(Contract.load("seed"), Properties().without("no-early-success"))
    assert [b.property for b in judge.judge(ClientRun(entries, 1, output="HTTP 500: retrying"))] == []
    assert [b.property for b in judge.judge(ClientRun(entries, 1, output=""))] == ["no-duplicate-submit"]


def test_the_judge_wants_the_announcement_between_the_two_submissions() -> None:
    entries = [
        _entry("POST", "/v1/videos/generations", 503, 10.0, body=SUBMIT_BODY),
        _entry("POST", "/v1/videos/generations", 200, 12.0, body=SUBMIT_BODY, task_id="t"),
    ]
    judge = Judge(Contract.load("seed"), Properties().without("no-early-success"))
    before = ClientRun(entries, 1, "retrying a poll\n", lines=[(5.0, "retrying a poll\n")])
    assert [b.property for b in judge.judge(before)] == ["no-duplicate-submit"]
    between = ClientRun(entries, 1, "submit got 503: retrying\n", lines=[(11.0, "submit got 503: retrying\n")])
    assert judge.judge(between) == []


def test_valid_requests_are_judged_from_the_fakes_own_answers(mockserver: Any) -> None:
    headers = {"Authorization": f"Bearer {mockserver.api_key}"}
    long_prompt = "\u4e2d" * 3000  # a valid body over the journal's 4 KiB preview
    body = {"model": "veo-3.1-extend", "prompt": long_prompt, "video": "https://example.com/v.mp4"}
    task_id = httpx.post(f"{mockserver.url}/v1/videos/generations", json=body, headers=headers).json()["id"]
    judge = Judge(mockserver.runtime.contract)
    entries = [e.to_json() for e in reversed(mockserver.requests())]
    assert judge.judge(ClientRun(entries, 1), only=("valid-requests",)) == []
    httpx.get(f"{mockserver.url}/v1/tasks/{task_id}?sync_upstream=", headers=headers)  # refused: 422
    entries = [e.to_json() for e in reversed(mockserver.requests())]
    broken = judge.judge(ClientRun(entries, 1), only=("valid-requests",))
    assert broken and "refused (HTTP 422)" in broken[0].message and "sync_upstream" in broken[0].message


def test_a_client_that_leaves_children_behind_does_not_hang_the_run(tmp_path: Path) -> None:
    marker = "31.4159"
    report = fuzz(["sh", "-c", f"sleep {marker} & exit 3"], tmp_path, examples=2)
    assert report.failure is not None and report.failure.broken[0].property == "submits"
    leftover = subprocess.run(["pgrep", "-f", f"sleep {marker}"], check=False, capture_output=True, text=True)
    assert leftover.stdout == ""  # its whole process group was stopped


def test_the_judge_measures_retry_after_from_the_end_of_the_answer() -> None:
    entries = [
        _entry("POST", "/v1/videos/generations", 429, 0.0, body=SUBMIT_BODY, response_headers={"retry-after": "2"}),
        _entry("POST", "/v1/videos/generations", 200, 1.96, body=SUBMIT_BODY, task_id="t"),
    ]
    judge = Judge(Contract.load("seed"), Properties().without("no-early-success"))
    assert [b.property for b in judge.judge(ClientRun(entries, 1))] == []  # within the 50 ms tolerance
    entries[1]["wall_time"] = 1.5
    broken = judge.judge(ClientRun(entries, 1))
    assert broken[0].property == "retry-after" and "1.50 s later; expected at least 2 s" in broken[0].message


def test_the_judge_wants_a_poll_after_a_completed_without_results() -> None:
    task = {"id": "t", "status": "completed", "progress": 50, "results": None}
    done = {**task, "progress": 100, "results": [{"url": "https://example.com/v.mp4"}]}
    submit = _entry("POST", "/v1/videos/generations", 200, 0.0, body=SUBMIT_BODY, task_id="t")
    early = _entry("GET", "/v1/tasks/t", 200, 1.0, task_id="t", response=json.dumps(task))
    later = _entry("GET", "/v1/tasks/t", 200, 2.0, task_id="t", response=json.dumps(done))
    judge = Judge(Contract.load("seed"))
    crashed = judge.judge(ClientRun([submit, early], 1, "TypeError: 'NoneType' object is not subscriptable"))
    assert [b.property for b in crashed] == ["waits-for-results"]
    assert crashed[0].message == (
        "Task t answered 'completed' without results (progress 50) on poll 1, and the client polled it no more "
        "and exited 1; a completed task without results is not done yet: its results come on a later poll."
    )
    assert [b.property for b in judge.judge(ClientRun([submit, early], 0))] == ["no-early-success", "waits-for-results"]
    assert judge.judge(ClientRun([submit, early, later], 0)) == []  # waited, and got its results
    # Polled on through the quirk, then gave up at its own deadline: not taking 'completed' as final.
    assert judge.judge(ClientRun([submit, early, {**early, "wall_time": 1.5, "time": 1.5}], 5)) == []
    # Stopped by the runner: time-limit says so, not this property.
    stopped = ClientRun([submit, early], None, stopped="time-limit", time_limit=4)
    assert [b.property for b in judge.judge(stopped)] == ["time-limit"]


def client(base_url: str, api_key: str, sleep: Any) -> int:
    """A small client written the way a user would, with its sleep injectable."""
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {api_key}"}) as http:
        body = {"model": "veo-3.1-extend", "prompt": "p", "video": "https://example.com/v.mp4"}
        for _ in range(3):
            response = http.post("/v1/videos/generations", json=body)
            if response.status_code != 429:
                break
            sleep(float(response.headers.get("retry-after", "2")))
        if response.status_code != 200:
            return 2
        task_id = response.json()["id"]
        for _ in range(200):
            sleep(5)
            polled = http.get(f"/v1/tasks/{task_id}")
            if polled.status_code == 404:
                return 4
            if polled.status_code != 200:
                continue
            task = polled.json()
            if task["status"] == "completed" and task["results"]:
                return 0
            if task["status"] not in ("pending", "processing", "completed"):
                return 1
        return 5


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(  # stratified: each class of behaviour as likely as any other
    behaviour=st.sampled_from(classes(faults=False, latency=False)).flatmap(
        lambda kind: behaviours(kind=kind, faults=False, latency=False)
    )
)
def test_in_process_a_python_client_under_generated_behaviours(mockserver: Any, behaviour: dict[str, Any]) -> None:
    """The in-process way: the pytest fixture plays each behaviour on the manual clock, and the
    client's sleeps move that clock, so hundreds of lifecycles take seconds."""
    mockserver.play(behaviour)
    exit_code = client(mockserver.url, mockserver.api_key, sleep=mockserver.advance)
    assert mockserver.judge(exit_code) == []
