"""Other providers' async task APIs, played by the same lifecycle engine.

The worked examples (examples/contracts/openai-videos.yaml, runway.yaml, replicate.yaml) are
served by real `mockserver serve` processes, and their clients, written with each provider's
official SDK (openai, runwayml, replicate) and run unchanged, go through success, a failed task, a
429 and a cancel; every answer the fake gave is checked against that provider's contract, and the
clip each downloaded is read back: its duration and size are the requested ones.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.examples import EXAMPLES, answers_conform, client_run, journal, mockserver_cli
from tests.mp4 import read
from tests.processes import running


class Provider:
    def __init__(self, contract: str, client: str, ask: list[str], clip: tuple[float, int, int], words: dict[str, str]):
        self.contract = EXAMPLES / contract
        self.client = client
        self.ask = ask  # the flags that choose the clip
        self.clip = clip  # (seconds, width, height) the clip must have
        self.words = words  # phase -> the provider's word


PROVIDERS = {
    "openai": Provider(
        "openai-videos.yaml", "openai_videos_client.py", ["--seconds", "8", "--size", "1280x720"], (8.0, 1280, 720),
        {"queued": "queued", "running": "in_progress", "succeeded": "completed", "failed": "failed"},
    ),
    "runway": Provider(
        "runway.yaml", "runway_client.py", ["--ratio", "720:1280", "--duration", "10"], (10.0, 720, 1280),
        {"queued": "PENDING", "running": "RUNNING", "succeeded": "SUCCEEDED", "failed": "FAILED", "cancelled": "CANCELLED"},
    ),
    "replicate": Provider(
        "replicate.yaml", "replicate_client.py", ["--duration", "5", "--aspect-ratio", "9:16", "--resolution", "720p"],
        (5.0, 720, 1280),
        {"queued": "starting", "running": "processing", "succeeded": "succeeded", "failed": "failed", "cancelled": "canceled"},
    ),
}  # fmt: skip


@pytest.fixture(scope="module", params=sorted(PROVIDERS))
def served(request: pytest.FixtureRequest) -> Iterator[tuple[Provider, str]]:
    """One real `mockserver serve` per provider's contract, its clock at 100x."""
    provider = PROVIDERS[request.param]
    with running(["--contract", str(provider.contract), "--speed", "100"]) as (url, _):
        yield provider, url


def _play(url: str, scenario: str) -> None:
    httpx.post(f"{url}/__admin/reset").raise_for_status()
    httpx.put(f"{url}/__admin/scenarios/default", json={"scenario": scenario}).raise_for_status()


def _statuses(url: str) -> list[Any]:
    """The status of every task answer the fake gave, in order."""
    found = []
    for entry in journal(url):
        if entry["status"] == 200 and entry["response"].startswith("{"):
            body = httpx.Response(200, content=entry["response"].encode()).json()
            if isinstance(body, dict) and "status" in body and entry["method"] == "GET":
                found.append(body["status"])
    return found


def test_the_official_sdk_completes_and_the_clip_follows_the_request(
    served: tuple[Provider, str], tmp_path: Path
) -> None:
    provider, url = served
    _play(url, "default")
    out = tmp_path / "out.mp4"
    run = client_run(url, provider.client, *provider.ask, "--output", str(out))
    assert run.returncode == 0, run.stdout + run.stderr
    seconds, width, height = provider.clip
    movie = read(out.read_bytes())
    assert max(movie.sizes) == (width, height) and round(movie.duration, 2) == seconds
    assert "vide" in movie.handlers
    statuses = _statuses(url)
    assert statuses[0] == provider.words["queued"] and statuses[-1] == provider.words["succeeded"]
    assert provider.words["running"] in statuses  # the provider's own words, in order
    assert answers_conform(url, provider.contract) >= 3


@pytest.mark.parametrize(
    ("scenario", "expected"),
    [("content-policy", 1), ("rate-limited-then-ok", 0)],
    ids=["failed-task", "429-then-ok"],
)
def test_the_official_sdk_meets_a_failure_and_a_429(served: tuple[Provider, str], scenario: str, expected: int) -> None:
    provider, url = served
    _play(url, scenario)
    run = client_run(url, provider.client)
    assert run.returncode == expected, run.stdout + run.stderr
    entries = journal(url)
    if scenario == "content-policy":
        assert "content safety policy" in run.stdout + run.stderr  # the scenario's message reached the client
        assert _statuses(url)[-1] == provider.words["failed"]
    else:
        submits = [e for e in entries if e["method"] == "POST"]
        assert [e["status"] for e in submits[:-1]] == [429] * (len(submits) - 1) and len(submits) > 1
        assert submits[-1]["status"] // 100 == 2  # it waited Retry-After, then its task was accepted
        assert all(float(e["response_headers"]["retry-after"]) > 0 for e in submits[:-1])
    assert answers_conform(url, provider.contract) >= 2


def test_the_official_sdk_cancels(served: tuple[Provider, str]) -> None:
    """A cancel (Replicate's POST .../cancel) or a delete (Runway's and OpenAI's DELETE) of a running
    task: cancelled, or gone; the admin API shows it."""
    provider, url = served
    _play(url, "default")
    run = client_run(url, provider.client, "--cancel")
    task_id = next(e["task_id"] for e in journal(url) if e["method"] == "POST" and e["task_id"])
    view = httpx.get(f"{url}/__admin/tasks/{task_id}").json()
    assert view["phase"] == "cancelled", view
    if "cancelled" in provider.words and provider.contract.name == "replicate.yaml":
        assert run.returncode == 1 and view["task"]["status"] == provider.words["cancelled"], run.stderr
    else:  # a delete: the task is gone for its client
        assert run.returncode == 4 and view["deleted"], run.stdout + run.stderr
    assert answers_conform(url, provider.contract) >= 2


def test_the_official_sdk_lists_its_tasks(served: tuple[Provider, str]) -> None:
    """OpenAI's and Replicate's clients page through their tasks; Runway documents no list, and the
    fake serves none (its client knows it has none)."""
    provider, url = served
    _play(url, "fast")
    for _ in range(2):
        assert client_run(url, provider.client).returncode == 0
    run = client_run(url, provider.client, "--list")
    if provider.contract.name == "runway.yaml":
        assert run.returncode == 2 and "lists tasks" in run.stderr
        unserved = httpx.get(f"{url}/v1/tasks", headers={"Authorization": "Bearer sk-x"})
        assert unserved.status_code in (404, 405) and "GET /v1/tasks/{id}" in unserved.text
        return
    assert run.returncode == 0, run.stderr
    assert "listed: 2" in run.stdout, run.stdout
    assert answers_conform(url, provider.contract) >= 3


def test_check_finds_the_fake_keeping_each_contract_and_drift_from_it(
    served: tuple[Provider, str], tmp_path: Path
) -> None:
    """`mockserver check` judges a deployment of any of these APIs: the fake keeps each contract;
    checked against a copy whose word for a finished task differs, it breaks it (drift found)."""
    provider, url = served
    _play(url, "fast")
    args = ["--base-url", url, "--token", "sk-check", "--billable", "1", "--poll-interval", "0.05", "--max-wait", "20"]
    kept = mockserver_cli("check", "--contract", str(provider.contract), *args)
    assert kept.returncode == 0, kept.stdout + kept.stderr
    done = provider.words["succeeded"]
    drifted = tmp_path / provider.contract.name
    drifted.write_text(provider.contract.read_text().replace(done, "finished" if done.islower() else "FINISHED"))
    found = mockserver_cli("check", "--contract", str(drifted), *args)
    assert found.returncode == 1 and done in found.stdout, found.stdout + found.stderr


def test_fuzz_client_judges_an_official_sdk_client(tmp_path: Path) -> None:
    """`mockserver fuzz-client` plays generated behaviours in Runway's protocol to the Runway client
    (the completed-before-results class is left out: Runway's SUCCEEDED task requires its output)."""
    command = [sys.executable, str(EXAMPLES / "clients" / "runway_client.py")]
    env = [
        "--env",
        "BASE_URL={base_url}",
        "--env",
        "API_KEY={api_key}",
        "--env",
        "POLL_INTERVAL=0.05",
        "--env",
        "MAX_WAIT=10",
    ]
    run = mockserver_cli(
        "fuzz-client", "--contract", str(EXAMPLES / "runway.yaml"), "--examples", "3", "--seed", "1", "--time-limit", "20",
        "--out", str(tmp_path), "--json", str(tmp_path / "report.json"), *env, "--", *command,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert [example["class"] for example in report["examples"]] == ["plain", "rate-limited", "failed"]
    assert all(example["passed"] for example in report["examples"])
