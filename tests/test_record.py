"""`mockserver record`: a recording proxy between the reference client and a second fake acting as
the deployment, then a replay of the recording with the same client; HAR files that real
Chromium records; broken input; and other providers' APIs (the worked examples' contracts, their
official-SDK clients, a fake of the same contract as the target), recorded and replayed in their
own words. Real processes throughout (`mockserver serve`, `mockserver record`, the clients)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from contracts import Contract
from mockserver.record.model import Answer, Recording
from tests.conftest import BODIES, SUBMIT
from tests.examples import EXAMPLES, answers_conform, client_run, journal
from tests.processes import running
from tests.services import Replica, free_port

ROOT = Path(__file__).resolve().parents[1]
CLIENT = ROOT / "examples" / "reference_client.py"
DEPLOYMENT_KEY_SUFFIX = "-live-key-7f3a9c"


class Recorder:
    """`mockserver record --target ...` as a process of its own."""

    def __init__(self, target: str, out: Path, *more: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mockserver", "record", "--target", target, "--out", str(out), "--port", str(self.port), *more],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while True:
            assert self.process.poll() is None, self.process.communicate()[0]
            try:
                httpx.get(f"{self.url}/__admin/health", timeout=1)
                return
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the recorder did not listen within 20 s"
                time.sleep(0.05)

    def stop(self) -> tuple[int, str]:
        os.killpg(self.process.pid, signal.SIGTERM)
        output = self.process.communicate(timeout=30)[0]
        return self.process.returncode, output


def run_client(base: str, key: str, prompt: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ, "VEO_BASE_URL": base, "VEO_API_KEY": key, "VEO_POLL_INTERVAL": "0.25",
        "VEO_BACKOFF": "0.2", "VEO_MAX_WAIT": "60",
    }  # fmt: skip
    return subprocess.run(
        [sys.executable, str(CLIENT), prompt, "https://example.com/in.mp4"],
        env=env, capture_output=True, text=True, timeout=90, check=False,
    )  # fmt: skip


def seen(fake: str) -> dict[str, Any]:
    """What a client saw, from the journal of the fake that answered it (oldest first): the task's
    statuses in order (repeats collapsed; `completed-no-results` for the quirk), the final error
    code, and each 429 with its Retry-After."""
    entries = httpx.get(f"{fake}/__admin/requests", timeout=10).json()["requests"][::-1]
    statuses: list[str] = []
    error = None
    retry_after = []
    for entry in entries:
        if entry["status"] == 429:
            retry_after.append(entry["response_headers"].get("retry-after"))
        if entry["method"] != "GET" or entry["status"] != 200:
            continue
        body = json.loads(entry["response"])
        status = body["status"]
        if status == "completed" and not body.get("results"):
            status = "completed-no-results"
        if not statuses or statuses[-1] != status:
            statuses.append(status)
        if body.get("error"):
            error = body["error"]["code"]
    return {"statuses": statuses, "error": error, "429": retry_after}


# Shipped scenarios the deployment plays, chosen by the key map (sk-qa-<name>), in this order.
SESSION = ["default", "content-policy", "rate-limited-then-ok", "completed-before-results", "flaky-polls"]


def test_a_recording_replays_what_the_deployment_did(tmp_path: Path) -> None:
    out = tmp_path / "recording"
    deployment = Replica(["--speed", "20", "--no-access-log"]).start()
    recorded_runs = []
    try:
        recorder = Recorder(deployment.url, out)
        try:
            for name in SESSION:
                httpx.delete(f"{deployment.url}/__admin/requests", timeout=10)
                key = f"sk-qa-{name}" if name != "default" else f"sk-team{DEPLOYMENT_KEY_SUFFIX}"
                result = run_client(recorder.url, key, f"A shot for {name}")
                recorded_runs.append((result.returncode, seen(deployment.url)))
        finally:
            code, output = recorder.stop()
    finally:
        deployment.stop()
    assert code == 0, output
    assert "Recorded 7 submission(s), 5 task(s)" in output, output
    assert [run[0] for run in recorded_runs] == [0, 1, 0, 0, 0]  # the client's exit codes, as documented
    files = sorted(p.name for p in out.glob("*.yaml"))
    assert files == [
        "rec-001-completed.yaml", "rec-002-failed-content-policy-violation.yaml", "rec-003-refused-429.yaml",
        "rec-004-refused-429.yaml", "rec-005-completed.yaml", "rec-006-completed.yaml", "rec-007-completed.yaml",
        "recorded.yaml",
    ]  # fmt: skip
    text = "".join(p.read_text() for p in out.iterdir())
    assert "sk-qa-" not in text and DEPLOYMENT_KEY_SUFFIX not in text and "Bearer" not in text
    assert "A shot for default" in text  # prompts are kept by default
    validate = subprocess.run(
        [sys.executable, "-m", "mockserver", "scenarios", "validate", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert validate.returncode == 0, validate.stdout + validate.stderr
    quirk = yaml.safe_load((out / "rec-006-completed.yaml").read_text().split("\n", 1)[1])
    held = [step for step in quirk["timeline"] if step.get("results", "x") is None]
    assert len(held) == 1 and held[0]["polls"] == 1  # exactly as many polls saw it as did

    replay = Replica(["--scenarios", str(out), "--scenario", "recorded", "--no-access-log"]).start()
    try:
        for name, (code_then, saw_then) in zip(SESSION, recorded_runs, strict=True):
            httpx.delete(f"{replay.url}/__admin/requests", timeout=10)
            result = run_client(replay.url, "sk-replay-key", f"A shot for {name}")
            saw_now = seen(replay.url)
            assert result.returncode == code_then, (name, result.stdout, result.stderr)
            assert saw_now == saw_then, name
    finally:
        replay.stop()


def test_the_recorder_says_when_the_target_breaks_the_contract(tmp_path: Path) -> None:
    out = tmp_path / "drift"
    deployment = Replica(["--speed", "20", "--no-access-log"]).start()
    try:
        target = deployment.url.replace("http://", "http://qa:pwSECRET77@")  # a user and password in the URL
        recorder = Recorder(target, out)
        try:
            run_client(recorder.url, "sk-qa-cancelled-status", "A shot")
        finally:
            code, output = recorder.stop()
    finally:
        deployment.stop()
    assert code == 0, output
    assert "warning: off contract" in output and "cancelled" in output
    assert "pwSECRET77" not in output and not any("pwSECRET77" in p.read_text() for p in out.iterdir())
    (scenario_file,) = [p for p in out.glob("rec-*.yaml")]
    data = yaml.safe_load(scenario_file.read_text())
    assert "cancelled" in data["off_contract"] and data["timeline"][-1]["status"] == "cancelled"


def test_an_unreachable_target_is_refused_at_start_and_a_502_later(tmp_path: Path) -> None:
    port = free_port()
    refused = subprocess.run(
        [sys.executable, "-m", "mockserver", "record", "--target", f"http://127.0.0.1:{port}", "--out", str(tmp_path / "a")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert refused.returncode != 0 and f"cannot reach --target http://127.0.0.1:{port}" in refused.stderr
    assert "Traceback" not in refused.stderr and not (tmp_path / "a").exists()

    deployment = Replica(["--clock", "manual", "--no-access-log"]).start()
    recorder = Recorder(deployment.url, tmp_path / "b")
    deployment.stop()
    answer = httpx.post(
        recorder.url + SUBMIT, json=BODIES["seed"], headers={"Authorization": "Bearer sk-x"}, timeout=30
    )
    code, output = recorder.stop()
    assert code != 0  # nothing worth keeping: no submission got an answer
    assert answer.status_code == 502
    assert (
        answer.json()["error"]["code"] == "target_unreachable"
        and "cannot reach its target" in answer.json()["error"]["message"]
    )
    assert "Cannot reach the target" in output and "Traceback" not in output


def test_a_target_that_is_not_the_api_is_refused_and_nothing_is_kept(tmp_path: Path) -> None:
    out = tmp_path / "html"
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port := free_port()), "--bind", "127.0.0.1", "--directory", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(100):
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        recorder = Recorder(f"http://127.0.0.1:{port}", out)
        answer = httpx.post(
            recorder.url + SUBMIT, json=BODIES["seed"], headers={"Authorization": "Bearer sk-x"}, timeout=30
        )
        assert answer.status_code == 501  # passed through unchanged: Python's http.server has no POST
        code, output = recorder.stop()
    finally:
        server.terminate()
        server.wait()
    assert code != 0 and "never answered a submission with JSON" in output
    assert not any(out.glob("*.yaml"))


def test_each_change_is_placed_between_the_polls_that_saw_it() -> None:
    recording = Recording(Path("/nonexistent"), Contract.load("seed"), "a test")
    task = {"id": "task-1", "object": "video.generation.task", "model": "veo-3.1-extend", "created": 1, "type": "video"}
    recording.submission({"prompt": "p"}, Answer(0.0, 0.2, 200, {**task, "status": "pending", "progress": 0}))
    for sent, status, progress in [
        (1.0, "pending", 0),
        (3.0, "processing", 20),
        (5.0, "processing", 60),
        (7.0, "completed", 100),
    ]:
        body = {
            **task,
            "status": status,
            "progress": progress,
            "results": [{"url": "https://x/v.mp4?Signature=abc"}] if status == "completed" else None,
        }
        recording.poll("task-1", Answer(sent, sent + 0.2, 200, body))
    (data,) = [d for name, d in recording.scenarios().items() if name != "recorded"]
    # Answers at 0.1 (submit), 1.1, 3.1, 5.1, 7.1: changes at the middle of 1.1-3.1, 3.1-5.1, 5.1-7.1.
    assert [(s["at"], s["status"], s.get("progress")) for s in data["timeline"]] == [
        (0.0, "pending", None), (2.0, "processing", 20), (4.0, "processing", 60), (6.0, "completed", 100),
    ]  # fmt: skip
    assert all(s.get("ramp") is False for s in data["timeline"][:-1])  # progress as observed
    assert "results" not in data["timeline"][-1]  # the fake's own video
    kept = Recording(Path("/nonexistent"), Contract.load("seed"), "a test", keep_result_urls=True)
    kept.submissions, kept.by_task = recording.submissions, recording.by_task
    (data,) = [d for name, d in kept.scenarios().items() if name != "recorded"]
    assert data["timeline"][-1]["results"] == [{"url": "https://x/v.mp4"}]  # the query (a signature) is dropped


# HAR files.


def record_har(tmp_path: Path, browser_har: Path) -> None:
    """Real Chromium, driven by Playwright, records a HAR while a page talks to a fake."""
    import shutil

    from playwright.sync_api import sync_playwright

    fake = Replica(["--clock", "manual", "--no-access-log"]).start()
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=shutil.which("chromium"), args=["--no-sandbox", "--disable-gpu"]
            )
            context = browser.new_context(record_har_path=str(browser_har))
            page = context.new_page()
            page.goto(f"{fake.url}/__admin/health")
            task_id = page.evaluate(
                """async (body) => {
                    const r = await fetch('/v1/videos/generations', {method: 'POST', body: JSON.stringify(body),
                        headers: {'Authorization': 'Bearer sk-har-secret-key', 'Content-Type': 'application/json'}});
                    return (await r.json()).id;
                }""",
                BODIES["seed"],
            )
            poll = "async (id) => (await fetch('/v1/tasks/' + id, {headers: {'Authorization': 'Bearer sk-har-secret-key'}})).status"
            for seconds in (0, 30, 60, 60):
                httpx.post(f"{fake.url}/__admin/clock/advance", json={"seconds": seconds}, timeout=10)
                assert page.evaluate(poll, task_id) == 200
                page.wait_for_timeout(100)  # the page's own rhythm: the HAR keeps the gaps
            context.close()
            browser.close()
    finally:
        fake.stop()


def test_a_har_that_chromium_recorded_becomes_a_replayable_scenario(tmp_path: Path) -> None:
    har = tmp_path / "session.har"
    record_har(tmp_path, har)
    assert "sk-har-secret-key" in har.read_text()  # the HAR has it; the scenarios must not
    out = tmp_path / "from-har"
    result = subprocess.run(
        [sys.executable, "-m", "mockserver", "record", "--from-har", str(har), "--out", str(out)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Recorded 1 submission(s), 1 task(s)" in result.stderr
    assert re.search(r"skipped \d+ entr(y|ies): other traffic", result.stderr)  # the page itself
    assert "sk-har-secret-key" not in "".join(p.read_text() for p in out.iterdir())
    data = yaml.safe_load((out / "rec-001-completed.yaml").read_text())
    assert [s["status"] for s in data["timeline"]] == ["pending", "processing", "completed"]
    replay = Replica(
        ["--scenarios", str(out), "--scenario", "recorded", "--clock", "manual", "--no-access-log"]
    ).start()
    try:
        headers = {"Authorization": "Bearer sk-replay"}
        task_id = httpx.post(replay.url + SUBMIT, json=BODIES["seed"], headers=headers, timeout=10).json()["id"]
        view = httpx.get(f"{replay.url}/__admin/tasks/{task_id}", timeout=10).json()
        assert view["scenario"] == "rec-001-completed" and view["mix"] == "recorded"
        httpx.post(f"{replay.url}/__admin/clock/advance", json={"seconds": 60}, timeout=10)
        assert (
            httpx.get(f"{replay.url}/v1/tasks/{task_id}", headers=headers, timeout=10).json()["status"] == "completed"
        )
    finally:
        replay.stop()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("this is not json", "it is not JSON"),
        ('{"log": {"entries": [{"startedDateTime": "2026-12-02T10:00:00Z", ', "the file is cut short"),
        ('{"something": "else"}', "it is JSON but not HAR: there is no log.entries list"),
        ('{"log": {"version": "1.2", "entries": []}}', "it holds no submission"),
        ('{"log": {"entries": [{"request": {}}]}}', "log.entries[0] has no request or response"),
    ],
)
def test_a_broken_har_is_refused_with_why_and_nothing_is_written(tmp_path: Path, content: str, message: str) -> None:
    har = tmp_path / "broken.har"
    har.write_text(content)
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "mockserver", "record", "--from-har", str(har), "--out", str(out)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert message in result.stderr and str(har) in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()


def test_a_recorder_killed_mid_session_leaves_a_folder_that_replays_what_it_saw(tmp_path: Path) -> None:
    out = tmp_path / "killed"
    deployment = Replica(["--clock", "manual", "--no-access-log"]).start()
    try:
        recorder = Recorder(deployment.url, out)
        headers = {"Authorization": "Bearer sk-killed-session-key"}
        task_id = httpx.post(recorder.url + SUBMIT, json=BODIES["seed"], headers=headers, timeout=10).json()["id"]
        for seconds in (0, 30):
            httpx.post(f"{deployment.url}/__admin/clock/advance", json={"seconds": seconds}, timeout=10)
            assert httpx.get(f"{recorder.url}/v1/tasks/{task_id}", headers=headers, timeout=10).status_code == 200
        deadline = time.monotonic() + 10  # the answer goes back first; the folder follows it
        while "processing" not in "".join(p.read_text() for p in out.glob("rec-*.yaml")):
            assert time.monotonic() < deadline, "the recorder did not write the second poll"
            time.sleep(0.02)
        os.killpg(recorder.process.pid, signal.SIGKILL)  # a crash: no last write, no check
        recorder.process.communicate(timeout=10)
    finally:
        deployment.stop()
    assert sorted(p.name for p in out.iterdir()) == ["rec-001-unfinished.yaml", "recorded.yaml"]  # no temporary left
    validate = subprocess.run(
        [sys.executable, "-m", "mockserver", "scenarios", "validate", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert validate.returncode == 0, validate.stdout
    data = yaml.safe_load((out / "rec-001-unfinished.yaml").read_text())
    assert [s["status"] for s in data["timeline"]] == ["pending", "processing"]  # both polls are in
    assert "sk-killed-session-key" not in (out / "rec-001-unfinished.yaml").read_text()


def test_whatever_the_target_answers_the_folder_validates_and_keeps_no_secret(tmp_path: Path) -> None:
    """Answers a scenario cannot script as such: a 200 without a task id, progress NaN, an HTML 502
    from a gateway on a poll, a status going backwards, a submit with no answer, a 401 that echoes
    the key, a signed URL in a drift message."""
    key = "sk-live-echoed-0042"
    recording = Recording(tmp_path / "odd", Contract.load("seed"), "https://api.example.test")
    recording.secrets.add(key)
    task = {"id": "task-9", "object": "video.generation.task", "model": "veo-3.1-extend", "created": 1, "type": "video"}
    recording.submission({"prompt": "p"}, Answer(0.0, 0.1, 200, {"error": {"message": "odd"}}))  # no id
    recording.submission({"prompt": "p"}, Answer(1.0, 1.1, 0, kind="none"))  # the connection broke
    echoed = {"error": {"message": f"Invalid API key: Bearer {key}", "type": "authentication_error"}}
    recording.submission({"prompt": "p"}, Answer(2.0, 2.1, 401, echoed))
    recording.submission({"prompt": "p"}, Answer(3.0, 3.1, 200, {**task, "status": "pending", "progress": 0}))
    for sent, status, progress in [(4.0, "processing", float("nan")), (5.0, "pending", 0), (7.0, "processing", 50)]:
        recording.poll("task-9", Answer(sent, sent + 0.1, 200, {**task, "status": status, "progress": progress}))
    recording.poll("task-9", Answer(8.0, 8.1, 502, None, "malformed"))  # a gateway's HTML page
    signed = {
        **task,
        "status": "completed",
        "progress": 100,
        "results": [{"url": "https://cdn/v.mp4?X-Amz-Signature=SIG456"}],
        "extra": 1,
    }
    recording.poll("task-9", Answer(9.0, 9.1, 200, signed))
    recording.write()
    text = "".join(p.read_text() for p in (tmp_path / "odd").iterdir())
    assert key not in text and "SIG456" not in text
    validate = subprocess.run(
        [sys.executable, "-m", "mockserver", "scenarios", "validate", str(tmp_path / "odd")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert validate.returncode == 0, validate.stdout + validate.stderr
    names = sorted(p.name for p in (tmp_path / "odd").glob("rec-*.yaml"))
    assert names == [
        "rec-001-refused-200.yaml",
        "rec-002-no-answer.yaml",
        "rec-003-refused-401.yaml",
        "rec-004-completed.yaml",
    ]
    task_data = yaml.safe_load((tmp_path / "odd" / "rec-004-completed.yaml").read_text())
    assert [s["status"] for s in task_data["timeline"]] == ["pending", "processing", "processing", "completed"]
    assert task_data["polls"] == [{"on": [4], "status": 502, "error": {"message": "Recorded: HTTP 502."}}]


# Any provider's API: the worked examples' contracts (examples/contracts/), their official-SDK
# clients run unchanged through the recorder, a `mockserver serve` of the same contract at 100x as
# the "real" target playing scenarios of our own, and the recorded folder replayed at real speed.

RUNWAY_SESSION = """\
name: throttled-then-done
description: A 429 with Retry-After first; then it waits for a concurrency slot (THROTTLED), runs, succeeds.
submit:
  - times: 1
    status: 429
    error: {message: You have exceeded the daily task limit for this model., code: rate_limited}
    headers: {Retry-After: 1}
  - {}
timeline:
  - {at: 0, status: PENDING}
  - {at: 10, status: THROTTLED}
  - {at: 25, status: RUNNING, progress: 20, ramp: false}
  - {at: 40, status: RUNNING, progress: 70, ramp: false}
  - {at: 55, status: SUCCEEDED}
---
name: flagged
description: Runs, then fails with Runway's failure and failureCode.
timeline:
  - {at: 0, status: PENDING}
  - {at: 10, status: RUNNING, progress: 30, ramp: false}
  - {at: 25, status: FAILED, error: {code: SAFETY.OUTPUT.TEXT, message: The output was flagged by our moderation.}}
"""

OPENAI_SESSION = """\
name: done
description: Queued, in progress, completed; the video comes from the content operation, not the task.
timeline:
  - {at: 0, status: queued}
  - {at: 15, status: in_progress, progress: 25, ramp: false}
  - {at: 30, status: in_progress, progress: 80, ramp: false}
  - {at: 45, status: completed}
"""

REPLICATE_SESSION = """\
name: broken
description: Fails; Replicate's error is a string, with no code.
timeline:
  - {at: 0, status: starting}
  - {at: 15, status: processing}
  - {at: 30, status: failed, error: {code: E6716, message: "Director: unexpected error handling prediction (E6716)"}}
---
name: slow
description: Starts, processes for a long time (long enough to be cancelled).
timeline:
  - {at: 0, status: starting}
  - {at: 15, status: processing}
  - {at: 600, status: succeeded}
"""


def provider_words(entries: list[dict[str, Any]]) -> list[str]:
    """The status words of the task answers a fake gave to polls (its journal's `entries`), in
    order, repeats collapsed."""
    found: list[str] = []
    for entry in entries:
        if entry["method"] == "GET" and entry["status"] == 200 and entry["response"].startswith("{"):
            word = json.loads(entry["response"]).get("status")
            if isinstance(word, str) and (not found or found[-1] != word):
                found.append(word)
    return found


def record_and_replay(
    tmp_path: Path, contract: str, client: str, session: str, plan: list[tuple[str, list[str]]], speed: int = 100
) -> tuple[Path, str, list[tuple[int, list[str], str]], list[tuple[int, list[str], str]], int]:
    """Record each run of `plan` (a scenario of `session` the target plays, the client's flags)
    through the recorder, then replay the folder and run the same again. (folder, the recorder's
    output, the runs recorded, the runs replayed: exit status, words polled, stdout; how many
    replayed answers were checked against the contract)."""
    contract_path = str(EXAMPLES / contract)
    (tmp_path / "target").mkdir()
    (tmp_path / "target" / "session.yaml").write_text(session)
    out = tmp_path / "recording"
    recorded = []
    target_args = ["--contract", contract_path, "--scenarios", str(tmp_path / "target"), "--speed", str(speed)]
    with running(target_args) as (target, _):
        recorder = Recorder(target, out, "--contract", contract_path)
        try:
            for scenario, flags in plan:
                httpx.post(f"{target}/__admin/reset", timeout=10).raise_for_status()
                chosen = httpx.put(f"{target}/__admin/scenarios/default", json={"scenario": scenario}, timeout=10)
                chosen.raise_for_status()
                run = client_run(recorder.url, client, *flags)
                recorded.append((run.returncode, provider_words(journal(target)), run.stdout))
        finally:
            code, output = recorder.stop()
    assert code == 0, output
    replayed = []
    with running(["--contract", contract_path, "--scenarios", str(out), "--scenario", "recorded"]) as (replay, _):
        for _, flags in plan:
            before = len(journal(replay))
            run = client_run(replay, client, *flags)
            replayed.append((run.returncode, provider_words(journal(replay)[before:]), run.stdout))
        checked = answers_conform(replay, Path(contract_path))
    return out, output, recorded, replayed, checked


def scenario_file(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def test_a_runway_session_replays_in_runway_s_words(tmp_path: Path) -> None:
    """THROTTLED, progress 0..1, a failure in `failure` + `failureCode`, a 429 with Retry-After:
    recorded from Runway's protocol, replayed in it to the same client."""
    plan = [("throttled-then-done", []), ("flagged", [])]
    # speed 20: each state lasts half a second or more, real time, recorded and replayed, so a loaded
    # machine's client (polling every 0.05 s) still sees the short first PENDING in the replay
    out, output, recorded, replayed, checked = record_and_replay(
        tmp_path, "runway.yaml", "runway_client.py", RUNWAY_SESSION, plan, speed=20
    )
    assert "Recorded 3 submission(s), 2 task(s)" in output and "--contract" in output, output
    assert [run[0] for run in recorded] == [0, 1]  # succeeded; failed
    assert recorded[0][1] == ["PENDING", "THROTTLED", "RUNNING", "SUCCEEDED"]
    assert sorted(p.name for p in out.glob("*.yaml")) == [
        "rec-001-refused-429.yaml", "rec-002-completed.yaml", "rec-003-failed-safety-output-text.yaml", "recorded.yaml",
    ]  # fmt: skip
    refused = scenario_file(out / "rec-001-refused-429.yaml")
    assert refused["submit"]["status"] == 429 and refused["submit"]["headers"] == {"Retry-After": 1}
    assert refused["submit"]["error"]["message"] == "You have exceeded the daily task limit for this model."
    done = scenario_file(out / "rec-002-completed.yaml")
    assert [s["status"] for s in done["timeline"]] == ["PENDING", "THROTTLED", "RUNNING", "RUNNING", "SUCCEEDED"]
    assert [s.get("progress") for s in done["timeline"] if s["status"] == "RUNNING"] == [20, 70]  # 0.2 and 0.7
    assert "results" not in done["timeline"][-1]  # the fake's own video, in `output`
    failed = scenario_file(out / "rec-003-failed-safety-output-text.yaml")
    assert failed["timeline"][-1]["status"] == "FAILED"
    assert failed["timeline"][-1]["error"] == {
        "code": "SAFETY.OUTPUT.TEXT", "message": "The output was flagged by our moderation.",
    }  # fmt: skip
    assert "sk-example" not in "".join(p.read_text() for p in out.iterdir())
    for (code_then, saw_then, _), (code_now, saw_now, printed) in zip(recorded, replayed, strict=True):
        assert (code_now, saw_now) == (code_then, saw_then), printed
    assert "THROTTLED" in replayed[0][1]
    assert "failureCode: SAFETY.OUTPUT.TEXT" in replayed[1][2]
    assert checked >= 10


def test_an_openai_session_with_a_delete_replays_and_the_deleted_task_is_gone(tmp_path: Path) -> None:
    """OpenAI's Videos API: the server prefix (/v1), a multipart submit, a video served by a content
    operation (not in the task, downloaded through the recorder), and a delete: gone in the replay."""
    plan = [("done", []), ("done", ["--cancel"])]
    out, output, recorded, replayed, checked = record_and_replay(
        tmp_path, "openai-videos.yaml", "openai_videos_client.py", OPENAI_SESSION, plan
    )
    assert "Recorded 2 submission(s), 2 task(s)" in output and "delete of submission 2" in output, output
    assert [run[0] for run in recorded] == [0, 4]  # completed and downloaded; deleted and gone
    assert sorted(p.name for p in out.glob("*.yaml")) == [
        "rec-001-completed.yaml", "rec-002-deleted.yaml", "recorded.yaml",
    ]  # fmt: skip
    done = scenario_file(out / "rec-001-completed.yaml")
    assert [s["status"] for s in done["timeline"]] == ["queued", "in_progress", "in_progress", "completed"]
    assert "results" not in done["timeline"][-1]  # no result in the task: nothing held back either
    assert "A calico cat playing a piano" in done["description"]  # the prompt, read from the multipart form
    deleted = scenario_file(out / "rec-002-deleted.yaml")
    assert [s["status"] for s in deleted["timeline"]] == ["queued"]  # OpenAI has no word for cancelled
    assert deleted["disappears_after"] > 0 and "deleted it" in deleted["description"]
    for (code_then, saw_then, _), (code_now, saw_now, printed) in zip(recorded, replayed, strict=True):
        assert (code_now, saw_now) == (code_then, saw_then), printed
    assert replayed[0][1] == ["queued", "in_progress", "completed"] and "content:" in replayed[0][2]
    assert "gone: video_" in replayed[1][2]
    assert checked >= 8


def test_a_replicate_session_with_a_cancel_replays_cancelled(tmp_path: Path) -> None:
    """Replicate: a submit path with parameters (the model), 201, an error that is a string with no
    code (a stand-in, said so), and a cancel whose answer is the prediction: canceled in the replay."""
    plan = [("broken", []), ("slow", ["--cancel"])]
    out, output, recorded, replayed, checked = record_and_replay(
        tmp_path, "replicate.yaml", "replicate_client.py", REPLICATE_SESSION, plan
    )
    assert "Recorded 2 submission(s), 2 task(s)" in output and "cancel of submission 2" in output, output
    assert [run[0] for run in recorded] == [1, 1]  # failed; canceled, as asked
    assert sorted(p.name for p in out.glob("*.yaml")) == [
        "rec-001-failed-generation-failed.yaml", "rec-002-cancelled.yaml", "recorded.yaml",
    ]  # fmt: skip
    failed = scenario_file(out / "rec-001-failed-generation-failed.yaml")
    assert failed["timeline"][-1]["error"] == {
        "code": "generation_failed", "message": "Director: unexpected error handling prediction (E6716)",
    }  # fmt: skip
    assert "came without a code" in failed["description"] and "lightricks/ltx-2.5-fast" in failed["description"]
    cancelled = scenario_file(out / "rec-002-cancelled.yaml")
    assert cancelled["timeline"][-1]["status"] == "canceled" and "by the application" in cancelled["description"]
    assert cancelled["timeline"][-2]["polls"] == 1  # held: the client's own cancel in the replay comes first
    for (code_then, saw_then, _), (code_now, saw_now, printed) in zip(recorded, replayed, strict=True):
        assert (code_now, saw_now) == (code_then, saw_then), printed
    assert "Director: unexpected error" in replayed[0][2] and "canceled: " in replayed[1][2]
    assert checked >= 6


def test_a_har_of_a_provider_session_imports_and_replays(tmp_path: Path) -> None:
    """Chromium records a HAR while a page speaks OpenAI's protocol (a multipart submit, polls, the
    content download, a second job deleted); `--from-har` makes it scenarios the fake replays."""
    import shutil

    from playwright.sync_api import sync_playwright

    contract = str(EXAMPLES / "openai-videos.yaml")
    (tmp_path / "target").mkdir()
    (tmp_path / "target" / "session.yaml").write_text(OPENAI_SESSION)
    har = tmp_path / "session.har"
    target_args = [
        "--contract", contract, "--scenarios", str(tmp_path / "target"), "--scenario", "done", "--speed", "100",
    ]  # fmt: skip
    with running(target_args) as (url, _), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox", "--disable-gpu"])
        context = browser.new_context(record_har_path=str(har))
        page = context.new_page()
        page.goto(f"{url}/__admin/health")
        outcome = page.evaluate(
            """async () => {
                const headers = {'Authorization': 'Bearer sk-har-secret-key'};
                const create = async () => {
                    const form = new FormData();
                    form.append('prompt', 'A HAR shot of a lighthouse');
                    form.append('seconds', '4');
                    form.append('size', '1280x720');
                    return (await fetch('/v1/videos', {method: 'POST', body: form, headers})).json();
                };
                const video = await create();
                let job = video;
                while (job.status === 'queued' || job.status === 'in_progress') {
                    await new Promise(resolve => setTimeout(resolve, 50));
                    job = await (await fetch('/v1/videos/' + video.id, {headers})).json();
                }
                const content = await fetch('/v1/videos/' + video.id + '/content', {headers});
                const bytes = (await content.arrayBuffer()).byteLength;
                const other = await create();
                const deleted = await fetch('/v1/videos/' + other.id, {method: 'DELETE', headers});
                const gone = await fetch('/v1/videos/' + other.id, {headers});
                return [job.status, bytes > 0, deleted.status, gone.status];
            }"""
        )
        context.close()
        browser.close()
    assert outcome == ["completed", True, 200, 404]
    out = tmp_path / "from-har"
    result = subprocess.run(
        [sys.executable, "-m", "mockserver", "record", "--from-har", str(har), "--out", str(out),
         "--contract", contract],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Recorded 2 submission(s), 2 task(s)" in result.stderr
    assert "skipped 2 entries: other traffic" in result.stderr  # the page and the content download
    assert "sk-har-secret-key" not in "".join(p.read_text() for p in out.iterdir())
    done = scenario_file(out / "rec-001-completed.yaml")
    assert [s["status"] for s in done["timeline"]] == ["queued", "in_progress", "in_progress", "completed"]
    assert "A HAR shot of a lighthouse" in done["description"]  # read from the multipart body in the HAR
    deleted = scenario_file(out / "rec-002-deleted.yaml")
    replay_args = ["--contract", contract, "--scenarios", str(out), "--scenario", "recorded", "--clock", "manual"]
    with running(replay_args) as (replay, _):
        headers = {"Authorization": "Bearer sk-replay"}
        ids = [
            httpx.post(f"{replay}/v1/videos", json={"prompt": "again"}, headers=headers, timeout=10).json()["id"]
            for _ in range(2)
        ]
        assert httpx.get(f"{replay}/v1/videos/{ids[1]}", headers=headers, timeout=10).json()["status"] == "queued"
        httpx.post(f"{replay}/__admin/clock/advance", json={"seconds": 5}, timeout=10).raise_for_status()
        assert httpx.get(f"{replay}/v1/videos/{ids[0]}", headers=headers, timeout=10).json()["status"] == "completed"
        assert httpx.get(f"{replay}/v1/videos/{ids[1]}", headers=headers, timeout=10).status_code == 404
        assert answers_conform(replay, Path(contract)) >= 4
    assert deleted["disappears_after"] < 5


def test_each_provider_s_operations_and_tasks_are_read_as_its_contract_says() -> None:
    """Which requests are recorded (method and served path), and a task read in the provider's
    words: Runway's THROTTLED and fraction progress, a delete that cancels then makes it gone;
    Replicate's error string, whose missing code gets a stand-in that the description names."""
    runway = Recording(Path("/nonexistent"), Contract.load(EXAMPLES / "runway.yaml"), "a test")
    openai = Recording(Path("/nonexistent"), Contract.load(EXAMPLES / "openai-videos.yaml"), "a test")
    replicate = Recording(Path("/nonexistent"), Contract.load(EXAMPLES / "replicate.yaml"), "a test")
    assert runway.exchange("POST", "/v1/image_to_video") == ("submit", None)
    assert runway.exchange("GET", "/v1/tasks/t-1") == ("query", "t-1")
    assert runway.exchange("DELETE", "/v1/tasks/t-1") == ("delete", "t-1")
    assert openai.exchange("POST", "/v1/videos") == ("submit", None)  # the server's prefix, /v1
    assert openai.exchange("POST", "/videos") == ("submit", None)  # a --target that has the prefix already
    assert openai.exchange("GET", "/v1/videos/video_1/content") is None  # a download: passed through
    assert openai.exchange("GET", "/v1/videos") is None  # a list
    assert replicate.exchange("POST", "/v1/models/lightricks/ltx-2.5-fast/predictions") == ("submit", None)
    assert replicate.exchange("POST", "/v1/predictions/p-1/cancel") == ("cancel", "p-1")

    task = {"id": "t-1", "createdAt": "2026-12-06T10:15:02.312Z", "estimatedCost": {"credits": 25}}
    request = {
        "model": "gen4_turbo", "promptImage": "https://x/i.jpg", "promptText": "Leaves drift", "ratio": "1280:720",
    }  # fmt: skip
    runway.submission(request, Answer(0.0, 0.1, 200, {"id": "t-1", "estimatedCost": {"credits": 25}}))
    states = [(1.0, "PENDING", None), (3.0, "THROTTLED", None), (5.0, "RUNNING", 0.29), (7.0, "RUNNING", 0.9)]
    for sent, word, progress in states:
        body = {**task, "status": word, **({"progress": progress} if progress is not None else {})}
        runway.poll("t-1", Answer(sent, sent + 0.1, 200, body))
    runway.action("delete", "t-1", Answer(8.0, 8.1, 204, None, "empty"))
    runway.poll("t-1", Answer(8.5, 8.6, 404, {"error": "Could not find Task"}))
    (data,) = [d for name, d in runway.scenarios().items() if name != "recorded"]
    assert data["name"] == "rec-001-deleted"
    assert [(s["at"], s["status"], s.get("progress")) for s in data["timeline"]] == [
        (0.0, "PENDING", None), (2.0, "THROTTLED", None), (4.0, "RUNNING", 29), (6.0, "RUNNING", 90),
        (8.0, "CANCELLED", 90),
    ]  # fmt: skip
    assert data["disappears_after"] == 8.5  # the first poll that found it gone
    assert "gen4_turbo" in data["description"] and "'Leaves drift'" in data["description"]

    prediction = {"id": "p-1", "model": "lightricks/ltx-2.5-fast", "version": "hidden", "input": {}, "output": None,
                  "data_removed": False, "created_at": "2026-12-06T10:15:02.312Z", "urls": {}}  # fmt: skip
    path = "/v1/models/lightricks/ltx-2.5-fast/predictions"
    replicate.submission({"input": {"prompt": "p"}}, Answer(0.0, 0.1, 201, {**prediction, "status": "starting"}), path)
    replicate.poll("p-1", Answer(1.0, 1.1, 200, {**prediction, "status": "processing"}))
    replicate.poll("p-1", Answer(3.0, 3.1, 200, {**prediction, "status": "failed", "error": "Out of memory"}))
    (data,) = [d for name, d in replicate.scenarios().items() if name != "recorded"]
    assert data["name"] == "rec-001-failed-generation-failed"
    assert data["timeline"][-1]["error"] == {"code": "generation_failed", "message": "Out of memory"}
    assert "without a code" in data["description"] and "lightricks/ltx-2.5-fast" in data["description"]

    # A `state` for the status (`dreaming`), the video under `assets.video` (kept without its query).
    dream_contract = Contract.load(ROOT / "tests" / "contracts" / "dream.yaml")
    dream = Recording(Path("/nonexistent"), dream_contract, "a test", keep_result_urls=True)
    assert dream.exchange("POST", "/dream-machine/v1/generations/video") == ("submit", None)
    assert dream.exchange("DELETE", "/dream-machine/v1/generations/g-1") == ("delete", "g-1")
    generation = {"id": "g-1", "created_at": "2026-12-06T10:15:02Z", "request": {"prompt": "A dream"}, "assets": None}
    dream.submission({"prompt": "A dream"}, Answer(0.0, 0.1, 202, {**generation, "state": "queued"}))
    dream.poll("g-1", Answer(1.0, 1.1, 200, {**generation, "state": "dreaming"}))
    video = {"video": "https://cdn.dream.test/g-1.mp4?sig=SECRET9"}
    dream.poll("g-1", Answer(3.0, 3.1, 200, {**generation, "state": "completed", "assets": video}))
    (data,) = [d for name, d in dream.scenarios().items() if name != "recorded"]
    timeline = [(s["at"], s["status"]) for s in data["timeline"]]
    assert timeline == [(0.0, "queued"), (0.5, "dreaming"), (2.0, "completed")]
    assert data["timeline"][-1]["results"] == ["https://cdn.dream.test/g-1.mp4"]
