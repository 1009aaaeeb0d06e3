"""`mockserver serve` as a real process on a free loopback port, for the tests that need one."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def until_ready(process: subprocess.Popen, url: str, what: str, seconds: float, every: float = 0.05) -> None:
    """Wait until `url` answers 200, while `process` (the server behind it) runs."""
    deadline = time.monotonic() + seconds
    while True:
        assert process.poll() is None, process.communicate()
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"{what} did not answer within {seconds:g} s"
        time.sleep(every)


@contextmanager
def running(args: list[str], env: dict[str, str] | None = None) -> Iterator[tuple[str, subprocess.Popen]]:
    port = free_port()
    full_env = {**os.environ, **(env or {})}
    if "MOCKSERVER_PORT" not in (env or {}):
        args = [*args, "--port", str(port)]
    else:
        port = int(full_env["MOCKSERVER_PORT"])
    process = subprocess.Popen(
        [sys.executable, "-m", "mockserver", "serve", *args],
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        until_ready(process, f"{url}/__admin/health", "the server", 20)
        yield url, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
