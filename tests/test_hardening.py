"""Shared environments: the admin API's token, limits against slow or idle clients, task
eviction, and a graceful stop on SIGTERM."""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest

from mockserver import Settings
from mockserver.admin import VERSION
from mockserver.testing import LiveServer
from tests.conftest import API_KEY, BODIES, Fake
from tests.processes import running
from tests.services import RedisServer

TOKEN = "admin-SECRET-7f3a"


def test_admin_is_open_on_loopback_without_a_token(fake: Fake) -> None:
    assert fake.admin("GET", "/tasks").status_code == 200


def test_a_token_on_loopback_is_required_everywhere_but_health(make_fake) -> None:
    fake = make_fake(admin_token=TOKEN)
    assert fake.admin("GET", "/health").status_code == 200
    refused = fake.admin("GET", "/tasks")
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "admin_token_required"
    assert fake.admin("GET", "/tasks", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert fake.admin("GET", "/tasks", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert fake.admin("POST", "/reset", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_off_loopback_the_admin_api_refuses_everything_without_a_token(make_fake) -> None:
    fake = make_fake(host="0.0.0.0")  # the settings say 0.0.0.0; the test server still binds 127.0.0.1
    assert fake.admin("GET", "/health").status_code == 200
    for method, path in (("GET", "/tasks"), ("POST", "/clock/advance"), ("GET", "/requests"), ("POST", "/reset")):
        refused = fake.admin(method, path)
        assert refused.status_code == 403, path
        assert "--admin-token" in refused.json()["error"]["message"]
    assert fake.submit().status_code == 200  # the provider API is not affected


def test_off_loopback_with_a_token(make_fake) -> None:
    fake = make_fake(host="0.0.0.0", admin_token=TOKEN)
    assert fake.admin("GET", "/tasks").status_code == 401
    assert fake.admin("GET", "/tasks", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    fake.submit()
    journal = fake.admin("GET", "/requests", headers={"Authorization": f"Bearer {TOKEN}"}).text
    assert TOKEN not in journal


def _raw(server: LiveServer, data: bytes, wait: float = 5.0) -> bytes:
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=wait) as sock:
        sock.sendall(data)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received


@pytest.fixture
def strict() -> LiveServer:
    with LiveServer(
        Settings(clock="manual", header_timeout=0.5, body_timeout=0.5, keep_alive_timeout=0.5, max_connections=40)
    ) as server:
        yield server


def _error(answer: bytes) -> tuple[int, dict]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)["error"]


def test_headers_that_never_finish_get_408(strict: LiveServer) -> None:
    status, error = _error(_raw(strict, b"GET /v1/tasks/x HTTP/1.1\r\nHost: a\r\nAuthorization: Bear"))
    assert status == 408 and "headers did not arrive within 0.5 s" in error["message"]


def test_a_silent_connection_is_closed(strict: LiveServer) -> None:
    status, _ = _error(_raw(strict, b""))
    assert status == 408


def test_a_body_that_never_finishes_gets_408(strict: LiveServer) -> None:
    head = (
        b"POST /v1/videos/generations HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer " + API_KEY.encode() + b'\r\nContent-Length: 500\r\n\r\n{"prompt": '
    )
    status, error = _error(_raw(strict, head))
    assert status == 408 and "body did not arrive within 0.5 s" in error["message"]
    assert len(strict.runtime.state.tasks) == 0


def test_idle_connections_cannot_exhaust_the_server() -> None:
    settings = Settings(clock="manual", header_timeout=2, max_connections=40)
    with LiveServer(settings) as server:
        host, port = server.url.removeprefix("http://").split(":")
        idle = [socket.create_connection((host, int(port)), timeout=10) for _ in range(60)]
        try:
            # The first 40 get 408 once silent for 2 s; the other 20 get 503 at once.
            statuses = sorted(int(sock.recv(65536).split(b" ", 2)[1]) for sock in idle)
            assert statuses.count(503) == 20 and statuses.count(408) == 40
            assert all(sock.recv(10) == b"" for sock in idle)  # and each was closed
        finally:
            for sock in idle:
                sock.close()
        assert httpx.get(f"{server.url}/__admin/health").status_code == 200


def test_a_body_still_coming_after_the_answer_closes_the_connection(strict: LiveServer) -> None:
    """A route that does not read bodies answers at once; the rest of the body must not keep the
    connection alive, one trickled byte at a time."""
    host, port = strict.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"GET /v1/tasks/x HTTP/1.1\r\nHost: a\r\nContent-Length: 100000000\r\n\r\nx")
        answer = sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 401")
        sock.sendall(b"y")
        assert sock.recv(10) == b""  # closed


def test_the_open_health_route_is_exactly_health(make_fake) -> None:
    fake = make_fake(host="0.0.0.0")
    assert fake.admin("GET", "/health").status_code == 200
    assert fake.admin("GET", "/scenarios/health").status_code == 403


BRIEF_HEALTH = {"status": "ok", "version": VERSION, "contract": {"version": "seed"}, "store": {"status": "up"}}


@pytest.mark.parametrize(
    "settings",
    [{"host": "0.0.0.0"}, {"host": "0.0.0.0", "admin_token": TOKEN}, {"admin_token": TOKEN}],
    ids=["off-loopback", "off-loopback-with-token", "token-on-loopback"],
)
def test_health_tells_a_caller_without_the_token_only_what_a_health_check_needs(make_fake, settings: dict) -> None:
    fake = make_fake(**settings)
    fake.create(scenario="fast")
    path = str(fake.runtime.contract.path)
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):  # the last: no scheme
        health = fake.admin("GET", "/health", headers=headers)
        assert health.status_code == 200
        assert health.json() == BRIEF_HEALTH, headers
        assert path not in health.text and "default" not in health.text and "fast" not in health.text
    if "admin_token" in settings:
        full = fake.admin("GET", "/health", headers={"Authorization": f"Bearer {TOKEN}"})
        assert full.status_code == 200
        body = full.json()
        assert body["contract"] == {"title": fake.runtime.contract.title, "version": "seed", "path": path}
        assert body["default_scenario"] == "default" and body["scenarios"] == len(fake.runtime.scenarios) > 1
        assert body["tasks"] == 1 and body["clock"]["mode"] == "manual"
        assert body["store"] == {"kind": "memory", "status": "up"}


def test_health_on_loopback_without_a_token_says_everything(make_fake) -> None:
    fake = make_fake()
    body = fake.admin("GET", "/health").json()
    assert body["contract"]["path"] == str(fake.runtime.contract.path)
    assert {"scenarios", "default_scenario", "tasks", "clock"} <= set(body)


def test_brief_health_still_says_when_the_shared_store_is_down(make_fake) -> None:
    with RedisServer() as redis_server:
        fake = make_fake(host="0.0.0.0", store=redis_server.url)
        assert fake.admin("GET", "/health").json() == BRIEF_HEALTH
        redis_server.stop(signal.SIGKILL)  # gone: connections refused
        health = fake.admin("GET", "/health")
        assert health.status_code == 503
        assert health.json() == {**BRIEF_HEALTH, "status": "degraded", "store": {"status": "down"}}
        assert redis_server.url not in health.text and "redis" not in health.text
        redis_server.start()  # back on the same port: healthy again, without a restart
        deadline = time.monotonic() + 5
        while (health := fake.admin("GET", "/health")).status_code == 503 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert health.status_code == 200 and health.json() == BRIEF_HEALTH


def test_the_admin_token_stays_out_of_the_settings_repr() -> None:
    assert TOKEN not in repr(Settings(admin_token=TOKEN))


def test_finished_tasks_are_evicted_after_the_retention(make_fake) -> None:
    fake = make_fake(task_retention=3600)
    old = [fake.create(scenario="fast") for _ in range(5)]
    fake.advance(3600 + 5)
    assert fake.task(old[0])["status"] == "completed"  # 3600 s after completing: still kept
    fake.advance(1)
    assert fake.poll(old[0]).status_code == 404  # past the retention: gone for the client...
    assert len(fake.runtime.state.tasks) == 5
    fake.create()  # ...and evicted from memory by the next submission
    assert len(fake.runtime.state.tasks) == 1 and fake.runtime.state.tasks.evicted == 5


def test_sigterm_finishes_the_request_in_flight(tmp_path: Path) -> None:
    (tmp_path / "slow.yaml").write_text(
        "name: slow\ndescription: A submit that takes three seconds.\nlatency: {submit: 3}\ntimeline:\n  - {at: 0, status: pending}\n"
    )
    with running(["--scenarios", str(tmp_path), "--scenario", "slow"]) as (url, process):
        answers: list[httpx.Response] = []
        request = threading.Thread(
            target=lambda: answers.append(
                httpx.post(
                    f"{url}/v1/videos/generations",
                    json=BODIES["seed"],
                    headers={"Authorization": f"Bearer {API_KEY}"},
                    timeout=10,
                )
            )
        )
        request.start()
        time.sleep(1)  # the submit has arrived and is waiting out its scripted three seconds
        process.send_signal(signal.SIGTERM)
        request.join(timeout=10)
        _, stderr = process.communicate(timeout=10)
    assert answers and answers[0].status_code == 200 and answers[0].json()["status"] == "pending"
    assert process.returncode in (0, -signal.SIGTERM)
    assert "Waiting for connections to close" in stderr or "Finished server process" in stderr
    assert "Traceback" not in stderr


def test_secrets_never_reach_the_log() -> None:
    key = "sk-live-LOGLEAK-99"
    with running(["--log-level", "debug"], env={"MOCKSERVER_ADMIN_TOKEN": TOKEN}) as (url, process):
        httpx.post(f"{url}/v1/videos/generations", json=BODIES["seed"], headers={"Authorization": f"Bearer {key}"})
        httpx.post(f"{url}/v1/videos/generations", json=BODIES["seed"], headers={"Authorization": key})
        httpx.get(f"{url}/v1/tasks/x", params={"token": key})
        httpx.get(f"{url}/__admin/tasks", headers={"Authorization": f"Bearer {TOKEN}"})
        httpx.get(f"{url}/__admin/tasks", headers={"Authorization": "Bearer wrong-admin-token"})
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=10)
    for secret in (key, TOKEN, "wrong-admin-token"):
        assert secret not in stdout + stderr
