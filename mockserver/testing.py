"""Run a fake in this process, on a free loopback port, for tests (and the pytest plugin).

    with LiveServer(Settings(clock="manual")) as server:
        httpx.post(f"{server.url}/v1/videos/generations", ...)
        server.call(server.runtime.advance(90))

The server runs under uvicorn in a background thread, with its own event loop, and is stopped
on exit. `call(coroutine)` runs one of the runtime's controls on that loop and returns its
result (the store belongs to the loop: with Redis, its connection does). A failure to start is
raised in the caller, not lost in the thread. `Settings(store="redis://...")` runs it on a
shared store, as it is deployed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket
import threading
import time
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, Self, TypeVar

import uvicorn

from mockserver.app import create_app
from mockserver.protocol import protocol_class
from mockserver.runtime import Runtime
from mockserver.settings import Settings

T = TypeVar("T")


class LiveServer:
    def __init__(self, settings: Settings | None = None, *, startup_timeout: float = 10.0) -> None:
        self.settings = settings or Settings(clock="manual")
        self.app = create_app(self.settings)
        self.runtime: Runtime = self.app.state.runtime
        self._timeout = startup_timeout
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.url = ""

    def start(self) -> Self:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        settings = self.settings
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            lifespan="on",
            access_log=False,
            http=protocol_class(settings.header_timeout, settings.body_timeout, settings.max_connections),
            timeout_keep_alive=settings.keep_alive_timeout,  # type: ignore[arg-type]  # seconds, a float will do
        )
        self._server = uvicorn.Server(config)

        factory = config.get_loop_factory() or asyncio.new_event_loop  # uvloop when installed, as `serve` runs

        def run() -> None:
            loop = factory()
            self._loop = loop
            try:
                loop.run_until_complete(
                    self.runtime.state.start()
                )  # a store that cannot start fails here, with its reason
                loop.run_until_complete(self._server.serve(sockets=[sock]))  # type: ignore[union-attr]
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                self._error = exc
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name=f"mockserver-{port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + self._timeout
        while not self._server.started:
            if self._error is not None or not self._thread.is_alive():
                self._thread.join(timeout=5)
                raise RuntimeError(f"the mock server did not start: {self._error!r}") from self._error
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the mock server did not start within {self._timeout} s")
            time.sleep(0.005)
        self.url = f"http://127.0.0.1:{port}"
        return self

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run a coroutine (a runtime control) on the server's event loop; return its result or
        raise its exception here."""
        if self._loop is None or not self._loop.is_running():
            coroutine.close()
            raise RuntimeError("the mock server is not running")
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"the mock server did not answer within {timeout} s") from None

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
