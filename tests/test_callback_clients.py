"""Real clients that take a callback URL, run unchanged in their own processes against a real
`mockserver serve`: Replicate's official SDK (`replicate_client.py --webhook`, verifying with
`replicate.webhooks.validate`) and the upstream dialect's httpx client (`upstream_client.py
--callback`, an HTTPS receiver with a certificate made here by `openssl`, verifying with
`standardwebhooks`); and `mockserver fuzz-client` judging callbacks (the `callbacks` property)."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from contracts.client_properties import Properties
from mockserver.fuzzclient import FuzzOptions, FuzzRun
from tests.examples import EXAMPLES, journal
from tests.processes import running

SECRET = "whsec_" + base64.b64encode(b"callback-clients-test-secret!!!!").decode()
CLIENTS = EXAMPLES / "clients"
WEBHOOK_CLIENT = [sys.executable, str(Path(__file__).parent / "clients" / "webhook.py")]


def _client(url: str, name: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    variables = {"BASE_URL": url, "API_KEY": "sk-example", "POLL_INTERVAL": "0.05", "MAX_WAIT": "20", **env}
    return subprocess.run(
        [sys.executable, str(CLIENTS / name), *args], env={**os.environ, **variables},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def _play(url: str, scenario: str) -> None:
    httpx.post(f"{url}/__admin/reset").raise_for_status()
    httpx.put(f"{url}/__admin/scenarios/default", json={"scenario": scenario}).raise_for_status()


def _attempts(url: str) -> list[dict]:
    return list(reversed(httpx.get(f"{url}/__admin/callbacks").json()["attempts"]))


@pytest.fixture(scope="module")
def replicate() -> Iterator[str]:
    args = ["--contract", str(EXAMPLES / "replicate.yaml"), "--speed", "100"]
    with running(args, env={"MOCKSERVER_CALLBACK_SECRET": SECRET}) as (url, _):
        yield url


@pytest.mark.parametrize("scenario", ["callback-duplicate", "callback-lost", "callback-early"])
def test_the_replicate_sdk_takes_its_outcome_from_a_verified_webhook(replicate: str, scenario: str) -> None:
    _play(replicate, scenario)
    fallback = "1" if scenario == "callback-lost" else "5"  # the task completes at 0.9 s: after its webhook, if any
    run = _client(replicate, "replicate_client.py", "--webhook", CALLBACK_SECRET=SECRET, WEBHOOK_POLL_INTERVAL=fallback)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "video: " in run.stdout
    attempts = _attempts(replicate)
    downloads = [e for e in journal(replicate) if e["method"] == "GET" and e["path"].startswith("/files/")]
    assert len(downloads) == 1  # the outcome handled once, whatever the callbacks did
    submit = next(e for e in journal(replicate) if e["method"] == "POST" and "predictions" in e["path"])
    asked = json.loads(submit["body"])
    assert asked["webhook_events_filter"] == ["completed"] and asked["webhook"].startswith("http://127.0.0.1:")
    if scenario == "callback-lost":
        assert [a["outcome"] for a in attempts] == ["lost"]
        assert "outcome by polling" in run.stderr and "outcome by webhook" not in run.stderr
        return
    webhook_id = attempts[0]["webhook_id"]
    assert f"outcome by webhook {webhook_id}: prediction" in run.stderr, run.stderr
    if scenario == "callback-duplicate":
        assert [(a["outcome"], a["webhook_id"]) for a in attempts] == [("delivered", webhook_id)] * 2
        assert run.stderr.count(f"webhook {webhook_id}: duplicate, ignored") == 1, run.stderr
    if scenario == "callback-early":  # the webhook came before polls said so: it polled until they did
        assert "the API still says processing; polling until it shows the webhook's state" in run.stderr


def test_the_replicate_sdk_refuses_a_bad_signature_and_polls(replicate: str) -> None:
    _play(replicate, "callback-bad-signature")
    run = _client(replicate, "replicate_client.py", "--webhook", CALLBACK_SECRET=SECRET, WEBHOOK_POLL_INTERVAL="1")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "refused (InvalidSignatureError: Webhook signature is invalid)" in run.stderr
    assert "outcome by polling" in run.stderr
    attempts = _attempts(replicate)
    # the fake retried: every attempt the receiver answered was refused with 401; retries due after the client
    # had its outcome by polling and exited find its receiver gone or going (refused, or cut off mid-answer)
    answered = [a for a in attempts if a["status"] is not None]
    assert len(answered) >= 2 and all(a["status"] == 401 for a in answered), attempts
    assert all(a["error"] and a["outcome"] != "delivered" for a in attempts if a["status"] is None), attempts
    assert _client(replicate, "replicate_client.py", "--webhook").returncode == 2  # no secret: it cannot verify


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA, and a leaf it signed for IP:127.0.0.1 (the receiver's), made by openssl."""
    where = tmp_path_factory.mktemp("tls")
    curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    _openssl("req", "-x509", *curve, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=Test CA",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign", cwd=where)  # fmt: skip
    _openssl("req", *curve, "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=127.0.0.1", cwd=where)
    (where / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    _openssl("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "leaf.pem", "-days", "2", "-extfile", "ext.cnf", cwd=where)  # fmt: skip
    return where


@pytest.mark.parametrize("trusted", [True, False], ids=["callback-ca", "untrusted"])
def test_the_upstream_client_takes_its_callback_over_https(certificate: Path, trusted: bool) -> None:
    args = ["--contract", str(EXAMPLES / "upstream-dialect.yaml"), "--speed", "100", "--callback-secret", SECRET]
    if trusted:
        args += ["--callback-ca", str(certificate / "ca.pem")]
    tls = {"CALLBACK_CERT": str(certificate / "leaf.pem"), "CALLBACK_KEY": str(certificate / "leaf.key")}
    with running(args) as (url, _):
        _play(url, "callback-duplicate")
        fallback = "5" if trusted else "1"
        run = _client(
            url, "upstream_client.py", "--callback", CALLBACK_SECRET=SECRET, CALLBACK_POLL_INTERVAL=fallback, **tls
        )
        assert run.returncode == 0, run.stdout + run.stderr
        attempts = _attempts(url)
        submit = next(e for e in journal(url) if e["method"] == "POST")
        assert json.loads(submit["body"])["callback_url"].startswith("https://127.0.0.1:")
    assert "verified with standardwebhooks" in run.stderr
    if trusted:
        webhook_id = attempts[0]["webhook_id"]
        first, *copies = [a["outcome"] for a in attempts]
        # the event went out twice with one webhook-id; the copy finds the client listening (it ignores it) or, on
        # a loaded machine, gone once it had its outcome and exited (then retried, never taken for a delivery)
        assert first == "delivered" and copies and set(copies) <= {"delivered", "retrying", "failed"}, attempts
        assert run.stderr.count(f"outcome by callback {webhook_id}: task task-unified-") == 1, run.stderr
        assert run.stderr.count(f"callback {webhook_id}: duplicate, ignored") == copies.count("delivered"), run.stderr
    else:  # the fake does not trust the receiver's certificate: no delivery, and the client polled
        # none delivered; the first failed on the certificate. Retries due after the client has exited (it polled
        # and ended) find its receiver gone or going (refused, or cut off): never a delivery.
        assert attempts and "CERTIFICATE_VERIFY_FAILED" in attempts[0]["error"], attempts
        for attempt in attempts:
            assert attempt["status"] is None and attempt["outcome"] != "delivered", attempt
            assert attempt["error"], attempt
        assert "outcome by polling" in run.stderr


# fuzz-client judging callbacks

REPLICATE_ENV = {
    "BASE_URL": "{base_url}", "API_KEY": "{api_key}", "CALLBACK_SECRET": "{callback_secret}",
    "POLL_INTERVAL": "0.05", "MAX_WAIT": "10", "WEBHOOK_POLL_INTERVAL": "0.5",
}  # fmt: skip
CALLBACK_KINDS = [
    "plain",
    "callback-lost",
    "callback-duplicate",
    "callback-late",
    "callback-early",
    "callback-bad-signature",
]


def _fuzz(command: list[str], tmp_path: Path, **options: object) -> object:
    settings_ = {
        "examples": 6, "seed": 1, "time_limit": 8, "speed": 100.0, "out": tmp_path,
        "contract": str(EXAMPLES / "replicate.yaml"), "strategy": {"max_steps": 3, "max_step_seconds": 10.0},
    }  # fmt: skip
    return FuzzRun(FuzzOptions(command=command, **{**settings_, **options})).run()  # type: ignore[arg-type]


def test_fuzz_client_plays_callbacks_to_the_replicate_sdk_and_it_keeps_the_property(tmp_path: Path) -> None:
    command = [sys.executable, str(CLIENTS / "replicate_client.py"), "--webhook"]
    report = _fuzz(command, tmp_path, env=REPLICATE_ENV, time_limit=15)
    assert report.ok, report.failure and report.failure.broken
    assert [e.kind for e in report.examples] == CALLBACK_KINDS
    outcomes = {e.kind: [a["outcome"] for a in e.callbacks] for e in report.examples}
    assert outcomes["callback-lost"] == ["lost"]
    # the event went out twice; the copy finds the receiver listening, or gone once the client has its result and
    # exits (on a loaded machine): then it is retried, never taken for a delivery
    first, *copies = outcomes["callback-duplicate"]
    assert first == "delivered" and copies and set(copies) <= {"delivered", "retrying", "failed"}, outcomes
    assert outcomes["callback-bad-signature"][-1] == "failed" and outcomes["callback-late"] == []
    assert report.callbacks_note is None


@pytest.mark.parametrize(
    ("mode", "fault", "said"),
    [
        ("twice", {"duplicate": 2}, r"downloaded its result [23] times after it: it processed a duplicate again"),
        (
            "no-fallback",
            {"lost": True},
            r"its callback was lost \(never delivered\); the client never learnt the outcome",
        ),
        (
            "accept-any",
            {"bad_signature": True},
            r"answered HTTP 200 to a callback whose webhook-signature does not verify",
        ),
    ],
    ids=["duplicate-processed-twice", "lost-not-covered", "bad-signature-accepted"],
)
def test_fuzz_client_catches_a_client_that_mishandles_callbacks(
    tmp_path: Path, mode: str, fault: dict, said: str
) -> None:
    """Each mishandling, replayed as the scenario the search would write (the search itself is above)."""
    scenario = tmp_path / "callback.yaml"
    timeline = [{"at": 0, "status": "pending"}, {"at": 30, "status": "completed"}]
    scenario.write_text(json.dumps({"name": "cb", "description": "d", "timeline": timeline, "callbacks": fault}))
    properties = Properties().without("time-limit")
    # the lost case runs until the time limit (the client waits for ever): long enough for a loaded
    # machine to start the client, submit and see the task end on the fake's clock
    report = _fuzz([*WEBHOOK_CLIENT, mode], tmp_path, replay=scenario, time_limit=4, properties=properties)
    failure = report.failure
    assert failure is not None, report.examples[0].run.output
    # the callbacks property says what the client did (a client misled by a forged callback may break others too)
    assert any(b.property == "callbacks" and re.search(said, b.message) for b in failure.broken), failure.broken


def test_fuzz_client_reports_the_retries_of_a_failing_receiver(tmp_path: Path) -> None:
    report = _fuzz([*WEBHOOK_CLIENT, "fail-first"], tmp_path, examples=1)
    assert report.ok, report.failure and report.failure.broken
    attempts = report.examples[0].callbacks
    assert [(a["outcome"], a["status"], a["attempt"]) for a in attempts] == [
        ("retrying", 500, 1),
        ("delivered", 200, 2),
    ]


def test_fuzz_client_says_when_it_plays_no_callbacks(tmp_path: Path) -> None:
    nothing = Properties(enabled=frozenset())
    seed = _fuzz(["true"], tmp_path, examples=1, contract="seed", properties=nothing)
    assert seed.callbacks_note == "The contract documents no callbacks: no callback behaviour was played."
    silent = _fuzz(["true"], tmp_path, examples=2, properties=nothing)  # documents them; the client asks for none
    assert "the client gave no callback URL in its first run" in (silent.callbacks_note or "")
    assert [e.kind for e in silent.examples] == ["plain", "rate-limited"]
