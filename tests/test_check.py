"""`mockserver check`: passes on the fake, fails with a usable message on every kind of drift,
never spends more than it is allowed, and never shows the token."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from contracts import Contract
from contracts.deployment import DeploymentCheck, Report, RunFinished
from mockserver import Settings
from mockserver.testing import LiveServer
from tests.drift import DRIFTS, RewriteAnswers

TOKEN = "sk-live-VERY-SECRET-0042"
CONTRACTS = Path(__file__).parents[1] / "contracts" / "openapi"


def run_check(server: LiveServer, contract: str | Path = "seed", billable: int = 0, **options: Any) -> Report:
    """Run the check against a fake on a manual clock: waiting between polls moves that clock."""
    check = DeploymentCheck(
        server.url, TOKEN, Contract.load(contract), billable=billable, poll_interval=5, max_wait=1200,
        sleep=lambda seconds: server.runtime.state.clock.advance(seconds), **options,
    )  # fmt: skip
    events = list(check.run())
    assert isinstance(events[-1], RunFinished)
    return events[-1].report


def messages(report: Report) -> str:
    return "\n".join(f"{f.check}: {f.message}" for f in report.findings)


@contextmanager
def drifted(name: str, **settings: Any) -> Iterator[LiveServer]:
    server = LiveServer(Settings(clock="manual", **settings))
    server.app = RewriteAnswers(server.app, DRIFTS[name])
    with server:
        yield server


def drifted_contract(tmp_path: Path, change: str) -> Path:
    """A copy of the seed contract where the server has relaxed a rule."""
    (tmp_path / "common.yaml").write_text((CONTRACTS / "common.yaml").read_text())
    seed = (CONTRACTS / "seed.yaml").read_text()
    assert change in seed
    (tmp_path / "seed.yaml").write_text(seed.replace(change, "required: [model, video]"))
    return tmp_path / "seed.yaml"


@pytest.mark.parametrize("contract", ["seed", "current"])
def test_the_fake_passes_the_free_check(contract: str) -> None:
    with LiveServer(Settings(clock="manual", contract=contract)) as server:
        report = run_check(server, contract)
        assert report.ok, messages(report)
        assert report.spent == 0
        assert len(report.probes) >= 14
        assert server.runtime.state.tasks.__len__() == 0  # nothing was created


@pytest.mark.parametrize("contract", ["seed", "current"])
def test_the_fake_passes_the_billable_check(contract: str) -> None:
    with LiveServer(Settings(clock="manual", contract=contract)) as server:
        report = run_check(server, contract, billable=3)
        assert report.ok, messages(report)
        assert report.spent == 3 and len(server.runtime.state.tasks) == 3
        billable = [probe for probe in report.probes if probe.name.startswith("billable")]
        statuses = [json.loads(e.response)["status"] for e in billable[0].exchanges[1:-1]]
        assert statuses[0] == "pending" and statuses[-1] == "completed" and "processing" in statuses
        assert billable[0].exchanges[-1].status == 206  # the video downloaded (its first 64 KiB)


@pytest.mark.parametrize("scenario", ["content-policy", "completed-before-results", "flaky-polls"])
def test_the_billable_check_follows_the_realities_the_contract_allows(scenario: str) -> None:
    with LiveServer(Settings(clock="manual", default_scenario=scenario)) as server:
        report = run_check(server, billable=1)
        if scenario == "flaky-polls":  # a documented 500/429/503 on a poll is a finding: the deployment failed a poll
            assert {f.check for f in report.findings} == {"expected_status"}
        else:
            assert report.ok, messages(report)


def test_a_task_that_never_ends_exhausts_the_polling_budget() -> None:
    with LiveServer(Settings(clock="manual", default_scenario="never-finishes")) as server:
        report = run_check(server, billable=1)
    assert [f.check for f in report.findings] == ["polling_budget"]
    assert "still 'processing' when the polling budget ran out" in report.findings[0].message


def test_the_current_fake_fails_the_seed_check_naming_the_fields() -> None:
    with LiveServer(Settings(clock="manual", contract="current")) as server:
        report = run_check(server, "seed")
    assert not report.ok and report.spent == 0
    assert "The probe left out or broke 'video', and the deployment refused it naming 'video_url'" in messages(report)


def test_the_seed_fake_fails_the_current_check_naming_the_fields() -> None:
    with LiveServer(Settings(clock="manual", contract="seed")) as server:
        report = run_check(server, "current")
    assert not report.ok and report.spent == 0
    assert "The probe left out or broke 'video_url', and the deployment refused it naming 'video'" in messages(report)


def test_a_valid_body_of_the_other_version_is_refused_in_billable_mode() -> None:
    with LiveServer(Settings(clock="manual", contract="current")) as server:
        report = run_check(server, "seed", billable=1)
    billable = next(p for p in report.probes if p.name == "billable-task-1")
    assert (
        "Received HTTP 422 (invalid_request_error: Missing required field 'video_url'. The body also has 'video'"
        in (billable.findings[0].message)
    )


@pytest.mark.parametrize(
    ("drift", "billable", "expected"),
    [
        ("renamed-status", 1, '"running" is not one of'),
        ("missing-object", 1, '"object" is a required property'),
        ("results-shape", 1, "/components/schemas/Task/properties/results"),
        (
            "500-for-malformed-body",
            0,
            "Received HTTP 500 (server_error: Internal server error); the contract expects 400",
        ),
        ("error-shape", 0, '"error" is a required property'),
    ],
)
def test_each_drifted_server_fails_with_a_precise_message(drift: str, billable: int, expected: str) -> None:
    with drifted(drift) as server:
        report = run_check(server, billable=billable)
    assert not report.ok
    assert expected in messages(report), messages(report)


def test_a_200_for_a_body_missing_prompt_fails_and_stops_spending(tmp_path: Path) -> None:
    contract = drifted_contract(tmp_path, "required: [model, prompt, video]")
    with LiveServer(Settings(clock="manual", contract=str(contract))) as server:
        report = run_check(server, "seed")
        accepted = len(server.runtime.state.tasks)
    finding = next(f for f in report.findings if f.exchange.body and '"prompt"' not in f.exchange.body)
    assert "Received HTTP 200; the contract expects 422 here." in finding.message
    assert report.spent == 1 and accepted == 1  # it stopped at the first body it should not have accepted


def test_billable_never_exceeds_its_budget(tmp_path: Path) -> None:
    contract = drifted_contract(tmp_path, "required: [model, prompt, video]")
    with LiveServer(Settings(clock="manual", contract=str(contract), default_scenario="fast")) as server:
        report = run_check(server, "seed", billable=2)
        created = len(server.runtime.state.tasks)
    assert report.spent == 2 and created == 2  # one probe it should have refused, one billable task


def test_submits_that_fail_are_not_retried() -> None:
    with LiveServer(Settings(clock="manual", default_scenario="server-error-task-created")) as server:
        report = run_check(server, billable=3)
        posts = server.runtime.state.journal.select(method="POST")
        from_token = [e for e in posts if e.status in (200, 500) and '"prompt"' in e.body]
    assert report.spent == 3 and len(from_token) == 3


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mockserver", "check", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "MOCKSERVER_CHECK_TOKEN": TOKEN, "COLUMNS": "200", **(env or {})},
    )


def test_the_cli_passes_on_the_fake_and_writes_reports(tmp_path: Path) -> None:
    (tmp_path / "instant.yaml").write_text(
        "name: instant\ndescription: Done at once.\ntimeline:\n  - {at: 0, status: pending}\n  - {at: 0, status: completed}\n"
    )
    with LiveServer(Settings(clock="manual", scenario_dirs=(tmp_path,), default_scenario="instant")) as server:
        result = _cli(
            "--base-url",
            server.url,
            "--billable",
            "3",
            "--junit",
            str(tmp_path / "j.xml"),
            "--json",
            str(tmp_path / "r.json"),
        )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "The deployment keeps its contract." in result.stdout
    assert "up to 3 billable task(s)" in result.stdout
    suite = ET.parse(tmp_path / "j.xml").getroot()
    assert suite.get("failures") == "0" and int(suite.get("tests")) >= 18
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["ok"] is True and data["spent"] == 3


def test_the_cli_reports_failures_with_a_masked_curl_line(tmp_path: Path) -> None:
    with drifted("error-shape") as server:
        result = _cli("--base-url", server.url, "--junit", str(tmp_path / "j.xml"), "--json", str(tmp_path / "r.json"))
    assert result.returncode == 1
    out = result.stdout
    assert "The deployment breaks its contract." in out
    assert "Reproduce: curl -sS -X GET" in out and "'Authorization: Bearer ***'" in out
    assert "Request:  POST" in out and "Received: HTTP 401" in out
    suite = ET.parse(tmp_path / "j.xml").getroot()
    assert int(suite.get("failures")) >= 1
    failure = suite.find("testcase/failure")
    assert failure is not None and "Reproduce: curl" in failure.text
    for text in (out, result.stderr, (tmp_path / "j.xml").read_text(), (tmp_path / "r.json").read_text()):
        assert TOKEN not in text


def test_a_token_the_server_echoes_back_is_masked(tmp_path: Path) -> None:
    def echo(method: str, path: str, status: int, body: Any) -> tuple[int, Any]:
        if status == 404:
            return 404, {"error": {"message": f"no task for key {TOKEN}", "type": "not_found"}}
        return status, body

    server = LiveServer(Settings(clock="manual"))
    server.app = RewriteAnswers(server.app, echo)
    with server:
        result = _cli("--base-url", server.url, "--json", str(tmp_path / "r.json"))
    assert result.returncode == 0
    report = (tmp_path / "r.json").read_text()
    assert "no task for key ***" in report and TOKEN not in report + result.stdout


def test_the_cli_needs_a_token() -> None:
    result = _cli("--base-url", "http://127.0.0.1:9", env={"MOCKSERVER_CHECK_TOKEN": ""})
    assert result.returncode == 2 and "MOCKSERVER_CHECK_TOKEN" in result.stderr


def test_an_unreachable_deployment_is_a_usage_error_not_drift() -> None:
    result = _cli("--base-url", "http://127.0.0.1:9", "--timeout", "2")
    assert result.returncode == 2
    assert "cannot reach http://127.0.0.1:9: ConnectError" in result.stderr and "Traceback" not in result.stderr
    assert "breaks its contract" not in result.stdout


def test_a_base_url_without_a_scheme_is_refused() -> None:
    result = _cli("--base-url", "127.0.0.1:9")
    assert result.returncode == 2 and "must start with http:// or https://" in result.stderr


def test_a_refused_key_is_said_plainly_and_nothing_more_is_sent() -> None:
    with LiveServer(Settings(clock="manual")) as server:
        result = _cli("--base-url", server.url, "--billable", "1", env={"MOCKSERVER_CHECK_TOKEN": "not-a-key"})
        sent = server.runtime.state.journal.recorded
    assert result.returncode == 2
    assert "refused the API key (HTTP 401" in result.stderr and "Nothing else was sent" in result.stderr
    assert sent == 1 and "not-a-key" not in result.stdout + result.stderr


def test_a_status_outside_the_enum_is_reported_once_and_not_waited_on() -> None:
    with LiveServer(Settings(clock="manual", default_scenario="cancelled-status")) as server:
        report = run_check(server, billable=1)
    task = next(p for p in report.probes if p.name == "billable-task-1")
    assert [f.check for f in task.findings] == ["contract", "lifecycle"] and "cancelled" in task.findings[0].message
    assert len(task.exchanges) < 10  # it stopped following the task once its status left the enum


def test_a_token_echoed_anywhere_is_masked_in_every_report(tmp_path: Path) -> None:
    """In a task's error (a lifecycle finding), and across the point where bodies are cut short."""

    def echo(method: str, path: str, status: int, body: Any) -> tuple[int, Any]:
        if method == "GET" and status == 200 and isinstance(body, dict):
            body["error"] = {"code": "x", "message": f"key {TOKEN} refused", "type": "task_error"}
        if status == 404:
            return 404, {"error": {"message": "p" * 1990 + TOKEN, "type": "not_found"}}
        return status, body

    server = LiveServer(Settings(clock="manual", default_scenario="fast"))
    server.app = RewriteAnswers(server.app, echo)
    with server:
        result = _cli("--base-url", server.url, "--billable", "1", "--poll-interval", "0.05", "--max-wait", "0.2",
                      "--junit", str(tmp_path / "j.xml"), "--json", str(tmp_path / "r.json"))  # fmt: skip
    everything = result.stdout + result.stderr + (tmp_path / "j.xml").read_text() + (tmp_path / "r.json").read_text()
    assert "lifecycle" in everything and "key *** refused" in everything
    assert TOKEN not in everything and TOKEN[:-1] not in everything


def test_a_token_with_a_stray_newline_is_refused_without_showing_it() -> None:
    result = _cli("--base-url", "http://127.0.0.1:9", env={"MOCKSERVER_CHECK_TOKEN": TOKEN + "\n"})
    assert result.returncode == 2 and "stray newline" in result.stderr
    assert TOKEN not in result.stdout + result.stderr


def test_a_deployment_answering_5xx_to_submissions_costs_at_most_one() -> None:
    def fail(method: str, path: str, status: int, body: Any) -> tuple[int, Any]:
        if method == "POST":
            return 500, {"error": {"message": "boom", "type": "server_error"}}
        return status, body

    server = LiveServer(Settings(clock="manual"))
    server.app = RewriteAnswers(server.app, fail)
    with server:
        report = run_check(server, billable=2)
        sent = len(server.runtime.state.journal.select(method="POST"))
    assert report.spent == 2 and sent == 2  # one probe, then one billable task: never more than the budget


def test_a_proxy_that_adds_its_own_key_costs_at_most_one(tmp_path: Path) -> None:
    """A deployment that accepts submissions without a (valid) key: the first such probe counts
    as spent, and no other submission is sent in the free mode."""
    contract = drifted_contract(tmp_path, "required: [model, prompt, video]")
    with LiveServer(Settings(clock="manual", contract=str(contract), api_keys=r".*")) as server:
        server.app = _keyless(server.app)
        report = run_check(server, "seed")
        created = len(server.runtime.state.tasks)
    assert report.spent == 1 and created == 1


def _keyless(app: Any) -> Any:
    """ASGI middleware standing for a proxy that sends its own key upstream."""

    async def proxy(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = [(k, v) for k, v in scope["headers"] if k != b"authorization"]
            scope = {**scope, "headers": [*headers, (b"authorization", b"Bearer sk-proxy-own-key")]}
        await app(scope, receive, send)

    proxy.state = app.state  # type: ignore[attr-defined]
    return proxy


def test_server_text_that_looks_like_markup_does_not_crash_the_report(tmp_path: Path) -> None:
    def markup(method: str, path: str, status: int, body: Any) -> tuple[int, Any]:
        if method == "GET" and status == 200 and isinstance(body, dict):
            body["status"] = "[/]"
        return status, body

    server = LiveServer(Settings(clock="manual", default_scenario="fast"))
    server.app = RewriteAnswers(server.app, markup)
    with server:
        result = _cli("--base-url", server.url, "--billable", "1", "--max-wait", "0.2", "--poll-interval", "0.05",
                      "--json", str(tmp_path / "r.json"))  # fmt: skip
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert json.loads((tmp_path / "r.json").read_text())["spent"] == 1


def test_a_result_url_that_redirects_is_followed() -> None:
    def redirect(method: str, path: str, status: int, body: Any) -> tuple[int, Any]:
        if method == "GET" and status == 200 and isinstance(body, dict) and body.get("results"):
            url = body["results"][0]["url"]
            body["results"][0]["url"] = url + "?redirect=1"  # answered with a 302 to the plain URL
        return status, body

    class Redirecting:
        def __init__(self, app: Any) -> None:
            self.app, self.state = app, app.state

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            if (
                scope["type"] == "http"
                and scope["path"].startswith("/files/")
                and scope.get("query_string") == b"redirect=1"
            ):
                target = scope["path"].encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 302,
                        "headers": [(b"location", target), (b"content-length", b"0")],
                    }
                )
                await send({"type": "http.response.body", "body": b""})
                return
            await self.app(scope, receive, send)

    server = LiveServer(Settings(clock="manual", default_scenario="fast"))
    server.app = Redirecting(RewriteAnswers(server.app, redirect))
    with server:
        report = run_check(server, billable=1)
    assert report.ok, messages(report)
    task = next(p for p in report.probes if p.name == "billable-task-1")
    assert task.exchanges[-1].status == 206
