"""The `mockserver` command as a user runs it: a real process on a loopback port."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import API_KEY, BODIES
from tests.mp4 import read
from tests.processes import free_port, running

SCRIPT = Path(sys.executable).with_name("mockserver")


def test_serve_plays_a_lifecycle_and_serves_the_video() -> None:
    with (
        running(["--clock", "manual", "--seed", "1"]) as (url, process),
        httpx.Client(base_url=url, headers={"Authorization": f"Bearer {API_KEY}"}) as client,
    ):
        body = {**BODIES["seed"], "aspect_ratio": "9:16"}
        task_id = client.post("/v1/videos/generations", json=body).json()["id"]
        statuses = []
        for _ in range(10):
            statuses.append(client.get(f"/v1/tasks/{task_id}").json()["status"])
            client.post("/__admin/clock/advance", json={"seconds": 10})
        assert statuses[0] == "pending" and "processing" in statuses and statuses[-1] == "completed"
        video = client.get(client.get(f"/v1/tasks/{task_id}").json()["results"][0]["url"])
        assert video.status_code == 200 and max(read(video.content).sizes) == (720, 1280)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=10)
        # uvicorn shuts down gracefully, then re-raises SIGTERM so supervisors see why it stopped
        assert process.returncode in (0, -signal.SIGTERM)
        assert "Finished server process" in stderr and "Traceback" not in stderr


def test_options_come_from_mockserver_variables() -> None:
    port = free_port()
    env = {
        "MOCKSERVER_PORT": str(port),
        "MOCKSERVER_CONTRACT": "current",
        "MOCKSERVER_CLOCK": "manual",
        "MOCKSERVER_SCENARIO": "fast",
    }
    with running([], env=env) as (url, _):
        health = httpx.get(f"{url}/__admin/health").json()
        assert health["contract"]["version"] == "current"
        assert health["default_scenario"] == "fast" and health["clock"]["mode"] == "manual"
        submitted = httpx.post(
            f"{url}/v1/videos/generations", json=BODIES["current"], headers={"Authorization": f"Bearer {API_KEY}"}
        )
        assert submitted.status_code == 200


def test_a_flag_wins_over_its_variable() -> None:
    with running(["--contract", "seed", "--clock", "manual"], env={"MOCKSERVER_CONTRACT": "current"}) as (url, _):
        assert httpx.get(f"{url}/__admin/health").json()["contract"]["version"] == "seed"


def test_serve_refuses_to_start_with_a_broken_scenario(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("name: bad\ndescription: d\ntimeline:\n  - {at: 0, status: pendng}\n")
    result = subprocess.run(
        [sys.executable, "-m", "mockserver", "serve", "--scenarios", str(tmp_path), "--port", str(free_port())],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert f"{tmp_path / 'bad.yaml'}:4: timeline[0].status:" in result.stderr
    assert "Traceback" not in result.stderr
    assert "Uvicorn running" not in result.stderr


def test_serve_refuses_an_unknown_contract() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mockserver", "serve", "--contract", "v9"],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "neither a shipped name" in result.stderr


def test_scenarios_list_shows_every_scenario_with_its_description() -> None:
    result = subprocess.run(
        [str(SCRIPT), "scenarios", "list"],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert result.returncode == 0, result.stderr
    for name in (
        "default",
        "fast",
        "content-policy",
        "generation-timeout",
        "completed-before-results",
        "never-finishes",
    ):
        assert name in result.stdout
    assert "[mock:content-policy]" in result.stdout
    assert "content_policy_violation" in result.stdout


def test_scenarios_validate_reports_each_file(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("name: good\ndescription: d\ntimeline:\n  - {at: 0, status: pending}\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\ndescription: d\ntimeline:\n  - {at: 0, status: failed}\n")
    result = subprocess.run(
        [str(SCRIPT), "scenarios", "validate", str(good), str(bad)],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert f"ok       {good} (good)" in result.stdout
    assert f"invalid  {bad}:4: timeline[0]: missing required field 'error'" in result.stdout
    shipped = subprocess.run(
        [str(SCRIPT), "scenarios", "validate", "scenarios"],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
        cwd=Path(__file__).parents[1],
    )
    assert shipped.returncode == 0, shipped.stdout


@pytest.mark.parametrize("args", [["--speed", "0"], ["--port", "70000"], ["--clock", "fast"]])
def test_bad_options_are_refused_by_the_cli(args: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mockserver", "serve", *args], check=False, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert "Invalid value" in result.stderr


def test_the_access_log_never_shows_credentials() -> None:
    with running(["--clock", "manual"]) as (url, process):
        httpx.get(f"{url}/v1/tasks/task-unified-1-aaaaaaaa", params={"api_key": "sk-live-LEAK-ME", "x": "1"})
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=10)
    assert "GET /v1/tasks/task-unified-1-aaaaaaaa?api_key=%5Bredacted%5D&x=1" in stdout  # uvicorn's access log
    assert "LEAK-ME" not in stdout + stderr


def test_requests_too_broken_for_the_app_still_get_the_provider_shape() -> None:
    with running(["--clock", "manual"]) as (url, _):
        host, port = url.removeprefix("http://").split(":")
        for raw in (b"FOO / HTTP/1.1\r\nHost: x\r\n\r\n", b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"):
            with socket.create_connection((host, int(port)), timeout=10) as sock:
                sock.sendall(raw)
                answer = b""
                while chunk := sock.recv(65536):
                    answer += chunk
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 400") and b"application/json" in head
            assert json.loads(body)["error"]["type"] == "invalid_request_error"


HEAVY = ("starlette", "uvicorn", "redis", "jinja2", "jsonschema_rs", "hypothesis", "schemathesis", "httpx")


@pytest.mark.parametrize("args", [["--help"], ["serve", "--help"], ["check", "--help"], ["fuzz-client", "--help"]])
def test_help_imports_none_of_the_server(args: list[str]) -> None:
    """A command's help is read before anything runs: it loads no web framework, store client or generator."""
    code = (
        "import sys\nfrom mockserver.cli import main\ntry:\n    main(sys.argv[1:], prog_name='mockserver')\n"
        f"except SystemExit:\n    pass\nprint('loaded:', sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, *args], check=False, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and "Usage: mockserver" in result.stdout, result.stderr
    assert "loaded: []" in result.stdout, result.stdout[-300:]


def test_version() -> None:
    result = subprocess.run([str(SCRIPT), "--version"], check=False, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and result.stdout.startswith("mockserver, version ")


def test_scenarios_validate_checks_the_contract(tmp_path: Path) -> None:
    (tmp_path / "gateway.yaml").write_text("name: gateway\ndescription: d\nsubmit: {status: 502}\n")
    result = subprocess.run(
        [str(SCRIPT), "scenarios", "validate", str(tmp_path)], check=False, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 1
    assert "gateway.yaml:3: submit: would break the contract (seed.yaml): HTTP 502 is not documented" in result.stdout
    (tmp_path / "gateway.yaml").write_text(
        "name: gateway\ndescription: d\noff_contract: proxies answer 502\nsubmit: {status: 502}\n"
    )
    result = subprocess.run(
        [str(SCRIPT), "scenarios", "validate", str(tmp_path)], check=False, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0 and "(gateway) [off contract]" in result.stdout


def test_a_store_url_shows_without_its_password_however_it_is_spelled() -> None:
    from mockserver.settings import mask_url

    for url, shown in [
        ("redis://:4242#s3cret@127.0.0.1:6391/0", "redis://:***@127.0.0.1:6391/0"),
        ("redis://user:p@ss/w?rd@h:1/2", "redis://user:***@h:1/2"),
        ("rediss://only-a-secret@h:6380", "rediss://***@h:6380"),
        ("redis://h:1/0?password=abc&db=1", "redis://h:1/0?password=***&db=1"),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
    ]:
        assert mask_url(url) == shown
    result = subprocess.run(
        [sys.executable, "-m", "mockserver", "serve", "--port", "0"],
        env={**os.environ, "MOCKSERVER_STORE": "redis://:topsecret#x@127.0.0.1:1/0"},
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and "topsecret" not in result.stdout + result.stderr
    assert "redis://:***@127.0.0.1:1/0" in result.stderr
