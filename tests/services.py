"""Real components for the tests, each on a free loopback port, stopped afterwards: a Redis server
(Debian's `redis-server`, persistence off) and `mockserver serve` replicas on it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Self

import httpx
import redis

from tests.processes import free_port

REDIS_MISSING = "redis-server is not installed: `make test` installs it (apt-get install redis-server)"


class RedisServer:
    """A redis-server process of our own. `stop()`/`start()` keep its port, so a fake that uses it
    sees the same URL come back; `pause()`/`resume()` freeze it (SIGSTOP), as a hung Redis."""

    def __init__(self, password: str | None = None) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(REDIS_MISSING)
        self.binary = binary
        self.password = password
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, password=self.password, decode_responses=True)

    def start(self) -> RedisServer:
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        if self.password:
            args += ["--requirepass", self.password]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                if self.client().ping():
                    return self
            except redis.exceptions.ConnectionError:
                pass
            assert self.process.poll() is None, "redis-server exited at start"
            assert time.monotonic() < deadline, "redis-server did not answer within 10 s"
            time.sleep(0.02)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            if sig == signal.SIGTERM:
                self.resume()
            self.process.send_signal(sig)
            self.process.wait(timeout=10)
        self.process = None

    def pause(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Replica:
    """`mockserver serve` as a process of its own, on a free port (or a port it had before)."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None, port: int | None = None) -> None:
        self.args = args
        self.env = {**os.environ, **(env or {})}
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[str] | None = None
        self.output = ""

    def start(self, wait: bool = True) -> Replica:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mockserver", "serve", "--port", str(self.port), *self.args],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        if wait:
            deadline = time.monotonic() + 20
            while True:
                if self.process.poll() is not None:
                    self.output += self.process.communicate()[0]
                    raise AssertionError(f"the replica exited: {self.output}")
                try:
                    if httpx.get(f"{self.url}/__admin/health", timeout=1).status_code == 200:
                        return self
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "the replica did not answer within 20 s"
                time.sleep(0.05)
        return self

    def wait(self, timeout: float = 20) -> int:
        assert self.process is not None
        self.output += self.process.communicate(timeout=timeout)[0]
        return self.process.returncode

    def stop(self, sig: int = signal.SIGTERM) -> str:
        """Stop it (SIGKILL: as a crash or an OOM kill) and return everything it printed."""
        if self.process is not None:
            if self.process.poll() is None:
                os.killpg(self.process.pid, sig)
            try:
                self.output += self.process.communicate(timeout=15)[0]
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.output += self.process.communicate()[0]
            self.process = None
        return self.output


@contextmanager
def replicas(count: int, args: list[str], env: dict[str, str] | None = None) -> Iterator[list[Replica]]:
    started: list[Replica] = []
    try:
        for _ in range(count):
            started.append(Replica(args, env).start())
        yield started
    finally:
        for replica in started:
            replica.stop()
