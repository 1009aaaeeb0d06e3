"""The access log: uvicorn's format, credentials redacted, off with --no-access-log, and never in
the way of an answer, even when nobody reads the server's standard output."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time

import httpx

from tests.conftest import API_KEY, BODIES, SUBMIT
from tests.processes import free_port

LINE = re.compile(r'^INFO:     127\.0\.0\.1:\d+ - "(\w+) (\S+) HTTP/1\.1" (\d{3}) [A-Za-z ]+$')


def _serve(*args: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "mockserver", "serve", "--port", str(port), "--clock", "manual", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            httpx.get(f"{url}/__admin/health", timeout=1)
            return process, url
        except httpx.TransportError:
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.05)


def _stop(process: subprocess.Popen[bytes]) -> list[str]:
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=15)
    return out.decode().splitlines()


def test_one_line_per_request_in_uvicorns_format() -> None:
    process, url = _serve()
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {API_KEY}"}) as client:
        task_id = client.post(SUBMIT, json=BODIES["seed"]).json()["id"]
        client.get(f"/v1/tasks/{task_id}", params={"token": "sk-live-SECRET"})
        client.get("/no/such/route")
    lines = [line for line in _stop(process) if LINE.match(line)]
    seen = [LINE.match(line).groups() for line in lines]  # type: ignore[union-attr]
    assert ("GET", "/__admin/health", "200") in seen
    assert ("POST", SUBMIT, "200") in seen
    assert ("GET", f"/v1/tasks/{task_id}?token=%5Bredacted%5D", "200") in seen
    assert ("GET", "/no/such/route", "404") in seen
    assert not any("SECRET" in line for line in lines)


def test_no_access_log_means_none() -> None:
    process, url = _serve("--no-access-log")
    httpx.get(f"{url}/v1/tasks/task-unified-1-aaaaaaaa", headers={"Authorization": f"Bearer {API_KEY}"})
    assert not any(LINE.match(line) for line in _stop(process))


def test_a_reader_that_never_reads_does_not_stop_the_answers() -> None:
    """Standard output is a pipe nobody reads (a stuck log collector): once its 64 KiB are full a
    log that writes from the event loop would stop the server; this one goes on answering."""
    process, url = _serve()
    try:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=5) as client:
            statuses = {client.get("/v1/tasks/task-unified-1-aaaaaaaa").status_code for _ in range(3000)}
        assert statuses == {404}  # ~300 KB of log lines: the pipe filled long before
        lines = _stop(process)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert len([line for line in lines if LINE.match(line)]) > 500
    assert any("access log lines were dropped" in line for line in lines) or len(lines) >= 3000
