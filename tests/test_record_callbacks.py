"""`mockserver record` and callbacks: the recorder puts an endpoint of its own in the submission's
callback URL, forwards each delivery to the application's URL unchanged (verified with the
reference Standard Webhooks library against the target's secret), and records when deliveries
came against what polls showed (`callbacks: late | early | duplicate | lost`); a replay on a
manual clock delivers when the target did. Real servers throughout: the target and the replay are
the fake under Replicate's contract (its `webhook` takes http URLs) on a manual clock, served by
uvicorn in this process (`LiveServer`); the recorder is a `mockserver record` process; the
application's receiver an http.server on a free loopback port."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from standardwebhooks import Webhook

from mockserver.settings import Settings
from mockserver.testing import LiveServer
from tests.examples import EXAMPLES
from tests.test_record import Recorder

CONTRACT = str(EXAMPLES / "replicate.yaml")
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
KEY = "sk-live-cb-5e1f0a"
AUTH = {"Authorization": f"Bearer {KEY}"}
SUBMIT = "/v1/models/lightricks/ltx-2.5-fast/predictions"
APP_TOKEN = "app-hook-token-93c1"  # in the application's callback URL: never written by the recorder

TARGET_SCENARIOS = """\
name: late
description: Succeeds at 10 s; its callback comes 20 s later.
timeline:
  - {at: 0, status: starting}
  - {at: 5, status: processing}
  - {at: 10, status: succeeded}
callbacks: {late: 20}
---
name: early
description: Succeeds at 10 s; its callback comes at 5 s, while polls still say processing.
timeline:
  - {at: 0, status: starting}
  - {at: 5, status: processing}
  - {at: 10, status: succeeded}
callbacks: {early: 5}
---
name: twice
description: Succeeds at 10 s; its callback is delivered twice, one webhook id.
timeline:
  - {at: 0, status: starting}
  - {at: 5, status: processing}
  - {at: 10, status: succeeded}
callbacks: {duplicate: 2}
---
name: lost
description: Succeeds at 10 s; its callback never comes.
timeline:
  - {at: 0, status: starting}
  - {at: 5, status: processing}
  - {at: 10, status: succeeded}
callbacks: {lost: true}
"""


class Receiver:
    """The application's callback receiver: what reached it (path with query, headers, raw body)."""

    def __init__(self) -> None:
        self.got: list[tuple[str, dict[str, str], bytes]] = []
        got = self.got

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                got.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/replicate?token={APP_TOKEN}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    try:
        yield found
    finally:
        found.close()


@contextmanager
def fake(scenarios: Path, scenario: str = "default", secret: str | None = SECRET) -> Iterator[str]:
    """A fake of Replicate's API on a manual clock (in this process, on a free loopback port)."""
    settings = Settings(
        contract=CONTRACT, scenario_dirs=(scenarios,), default_scenario=scenario, clock="manual",
        callback_secret=secret, log_level="warning",
    )  # fmt: skip
    with LiveServer(settings) as server:
        yield server.url


def advance(fake: str, seconds: float) -> None:
    httpx.post(f"{fake}/__admin/clock/advance", json={"seconds": seconds}, timeout=10).raise_for_status()


def settle(fake: str) -> None:
    assert httpx.post(f"{fake}/__admin/callbacks/settle", json={"timeout": 5}, timeout=10).json()["settled"]


def submit(base: str, webhook: str, scenario: str | None = None, fake: str | None = None) -> str:
    if scenario is not None:
        chosen = httpx.put(f"{fake}/__admin/scenarios/default", json={"scenario": scenario}, timeout=10)
        chosen.raise_for_status()
    answer = httpx.post(
        f"{base}{SUBMIT}",
        json={"input": {"prompt": f"a {scenario} shot"}, "webhook": webhook},
        headers=AUTH,
        timeout=10,
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def status(base: str, task: str) -> str:
    return httpx.get(f"{base}/v1/predictions/{task}", headers=AUTH, timeout=10).json()["status"]


def timed(folder: Path, prefix: str) -> dict[str, Any]:
    (path,) = folder.glob(f"{prefix}-*.yaml")
    return yaml.safe_load(path.read_text())


def succeeded_at(scenario: dict[str, Any]) -> float:
    return next(step["at"] for step in scenario["timeline"] if step["status"] == "succeeded")


@pytest.fixture
def target_scenarios(tmp_path: Path) -> Path:
    folder = tmp_path / "target"
    folder.mkdir()
    (folder / "callbacks.yaml").write_text(TARGET_SCENARIOS)
    return folder


def test_a_late_callback_reaches_the_application_unchanged_and_replays_when_it_came(
    tmp_path: Path, target_scenarios: Path
) -> None:
    out = tmp_path / "recording"
    with receiver() as app, fake(target_scenarios, "late") as target:
        recorder = Recorder(target, out, "--contract", CONTRACT, "--callback-late-after", "0.2")
        try:
            task = submit(recorder.url, app.url)
            assert status(recorder.url, task) == "starting"
            advance(target, 10)
            assert status(recorder.url, task) == "succeeded"
            # real time for the recorder to measure (it times deliveries on its own clock): the target's
            # lifecycle is driven by its manual clock, not waited for
            threading.Event().wait(0.4)
            advance(target, 20)  # the callback, 20 s after succeeded
            settle(target)
            guessed = httpx.post(f"{recorder.url}/__record/callbacks/guessed", content=b"{}", timeout=10)
            assert guessed.status_code == 404 and len(app.got) == 1  # an unknown token goes nowhere
        finally:
            code, output = recorder.stop()
        sent = [e for e in httpx.get(f"{target}/__admin/requests", timeout=10).json()["requests"] if e.get("outgoing")]
        submitted = next(e for e in httpx.get(f"{target}/__admin/requests", timeout=10).json()["requests"]
                         if e["method"] == "POST" and not e.get("outgoing"))  # fmt: skip
    assert code == 0, output
    # the target was given the recorder's endpoint, never the application's URL
    given = httpx.Response(200, content=submitted["body"]).json()["webhook"]
    assert given.startswith(f"{recorder.url}/__record/callbacks/") and APP_TOKEN not in submitted["body"]
    token = given.rsplit("/", 1)[1]
    assert len(token) >= 32
    assert len(sent) == 1 and sent[0]["status"] == 204  # the application's answer, passed back to the target
    # the application got it where it asked, unchanged: the reference library verifies the target's signature
    ((path, headers, body),) = app.got
    assert path == f"/hooks/replicate?token={APP_TOKEN}"
    Webhook(SECRET).verify(body, headers)
    assert httpx.Response(200, content=body).json()["status"] == "succeeded"
    assert headers["webhook-id"].startswith("msg_") and headers["user-agent"] == "veo-mockserver-callbacks"
    assert "callback 1 of submission 1 at" in output and "succeeded -> the application answered 204" in output
    scenario = timed(out, "rec-001")
    assert scenario["name"] == "rec-001-completed"
    late = scenario["callbacks"]["late"]
    assert set(scenario["callbacks"]) == {"late"} and 0.4 <= late < 5, scenario
    assert "late." in scenario["description"]
    written = "".join(p.read_text() for p in out.iterdir()) + output
    for secret in (APP_TOKEN, KEY, SECRET.removeprefix("whsec_"), headers["webhook-signature"], token):
        assert secret not in written
    due = succeeded_at(scenario) + late

    # The replay delivers when the target did (on the session's clock), signed with the replay's secret.
    with receiver() as app, fake(out, "recorded") as replay:
        task = submit(replay, app.url)
        advance(replay, succeeded_at(scenario) + 0.001)
        settle(replay)
        assert status(replay, task) == "succeeded" and app.got == []
        advance(replay, due - 0.002 - succeeded_at(scenario))
        settle(replay)
        assert app.got == []
        advance(replay, 0.003)
        settle(replay)
        ((_, headers, body),) = app.got
        Webhook(SECRET).verify(body, headers)


def test_early_duplicate_and_lost_callbacks_are_recorded_and_replayed(tmp_path: Path, target_scenarios: Path) -> None:
    out = tmp_path / "recording"
    with receiver() as app, fake(target_scenarios) as target:
        recorder = Recorder(target, out, "--contract", CONTRACT)
        try:
            # early: the callback says succeeded at 5 s, while polls say processing until 10 s
            task = submit(recorder.url, app.url, "early", target)
            assert status(recorder.url, task) == "starting"
            advance(target, 5)
            settle(target)
            assert len(app.got) == 1
            assert status(recorder.url, task) == "processing"
            advance(target, 5)
            assert status(recorder.url, task) == "succeeded"
            # twice: two copies, one webhook id, both taken by the application
            task = submit(recorder.url, app.url, "twice", target)
            assert status(recorder.url, task) == "starting"
            advance(target, 10)
            settle(target)
            assert status(recorder.url, task) == "succeeded"
            assert len(app.got) == 3 and app.got[1][1]["webhook-id"] == app.got[2][1]["webhook-id"]
            # lost: succeeded, and nothing ever comes
            task = submit(recorder.url, app.url, "lost", target)
            assert status(recorder.url, task) == "starting"
            advance(target, 10)
            settle(target)
            assert status(recorder.url, task) == "succeeded" and len(app.got) == 3
        finally:
            code, output = recorder.stop()
    assert code == 0, output
    for _, headers, body in app.got:
        Webhook(SECRET).verify(body, headers)
    early, twice, lost = (timed(out, f"rec-00{n}") for n in (1, 2, 3))
    assert set(early["callbacks"]) == {"early"} and early["callbacks"]["early"] > 0, early
    assert "early." in early["description"]
    assert twice["callbacks"] == {"duplicate": 2}, twice
    assert lost["callbacks"] == {"lost": True} and "replayed as lost" in lost["description"], lost
    early_due = succeeded_at(early) - early["callbacks"]["early"]

    with receiver() as app, fake(out, "recorded", secret=None) as replay:
        # the n-th submission plays the n-th recorded; each is submitted once the one before has played
        task = submit(replay, app.url)
        advance(replay, early_due - 0.0005)
        settle(replay)
        assert app.got == []
        advance(replay, 0.001)
        settle(replay)
        ((_, _, body),) = app.got
        assert httpx.Response(200, content=body).json()["status"] == "succeeded"
        if early_due + 0.0005 < succeeded_at(early):
            assert status(replay, task) in ("starting", "processing")  # the callback came before polls show it
        advance(replay, 10)
        assert status(replay, task) == "succeeded"
        task = submit(replay, app.url)
        advance(replay, 10)
        settle(replay)
        assert len(app.got) == 3 and app.got[1][1]["webhook-id"] == app.got[2][1]["webhook-id"]
        assert {httpx.Response(200, content=body).json()["id"] for _, _, body in app.got[1:]} == {task}
        task = submit(replay, app.url)
        advance(replay, 10)
        settle(replay)
        assert status(replay, task) == "succeeded" and len(app.got) == 3
        attempts = httpx.get(f"{replay}/__admin/callbacks", params={"task": task}, timeout=10).json()["attempts"]
        assert [a["outcome"] for a in attempts] == ["lost"]


def test_how_callbacks_are_timed_against_the_polls() -> None:
    """The rules, on a recording fed directly (times on the session's clock, in seconds): retries
    of one event are not duplicates; a callback within the threshold of the poll that showed its
    state is on time; after it, late by its distance from the state's step; an application that
    trusted the callback and polled no more has its state placed when the callback came."""
    from contracts import Contract
    from mockserver.record.model import Answer, Callback, Recording

    def prediction(status: str) -> dict[str, Any]:
        return {"id": "p1", "model": "lightricks/ltx-2.5-fast", "version": "hidden", "input": {"prompt": "x"},
                "output": "https://r/v.mp4" if status == "succeeded" else None, "status": status,
                "data_removed": False, "created_at": "2026-01-01T00:00:00Z",
                "urls": {"get": "https://r/p1", "cancel": "https://r/p1/cancel"}}  # fmt: skip

    def session(polls: list[tuple[float, str]], callbacks: list[tuple[float, int, str]]) -> dict[str, Any]:
        recording = Recording(Path("/nonexistent"), Contract.load(CONTRACT), "a test", late_after=5.0)
        recorded = recording.submission(
            {"input": {"prompt": "x"}}, Answer(0.0, 0.0, 201, prediction("starting")), callback=True
        )
        for sent, word in polls:
            recording.poll("p1", Answer(sent, sent, 200, prediction(word)))
        for received, answered, key in callbacks:
            recording.delivered(recorded, Callback(received, answered, prediction("succeeded"), key))
        (data,) = [d for name, d in recording.scenarios().items() if name != "recorded"]
        return data

    polls = [(2.0, "processing"), (4.0, "processing"), (6.0, "succeeded")]  # succeeded placed at 5.0
    retried = session(polls, [(5.5, 500, "msg_1"), (6.5, 503, "msg_1"), (8.5, 200, "msg_1")])
    assert "callbacks" not in retried and "answered 500, 503, 200" in retried["description"]  # retries, on time
    twice = session(polls, [(5.5, 200, "msg_1"), (5.6, 200, "msg_1")])
    assert twice["callbacks"] == {"duplicate": 2}
    late = session(polls, [(30.0, 200, "msg_1")])
    assert late["callbacks"] == {"late": 25.0}  # replayed at 5.0 + 25.0: when it came
    early = session(polls, [(3.0, 200, "msg_1")])  # a poll at 4.0 still said processing
    assert early["callbacks"] == {"early": 2.0}  # replayed at 5.0 - 2.0
    trusted = session([(2.0, "processing")], [(9.0, 200, "msg_1")])  # no poll after the callback
    assert [(s["at"], s["status"]) for s in trusted["timeline"]][-1] == (9.0, "succeeded")
    assert "callbacks" not in trusted
    lost = session(polls, [])
    assert lost["callbacks"] == {"lost": True}
    assert "callbacks" not in session([(2.0, "processing")], [])  # not over when the recording ended: nothing said
