"""Run a fake in this process, on a free loopback port, for tests (and the pytest plugin).

    with LiveServer(Settings(clock="manual")) as server:
        httpx.post(f"{server.url}/v1/videos/generations", ...)
        server.runtime.clock.advance(90)

The server runs under uvicorn in a background thread and is stopped on exit. A failure to start
is raised in the caller, not lost in the thread.
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType

import uvicorn

from mockserver.app import create_app
from mockserver.protocol import protocol_class
from mockserver.runtime import Runtime
from mockserver.settings import Settings


class LiveServer:
    def __init__(self, settings: Settings | None = None, *, startup_timeout: float = 10.0) -> None:
        self.settings = settings or Settings(clock="manual")
        self.app = create_app(self.settings)
        self.runtime: Runtime = self.app.state.runtime
        self._timeout = startup_timeout
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self.url = ""

    def start(self) -> LiveServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        settings = self.settings
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            lifespan="off",
            access_log=False,
            http=protocol_class(settings.header_timeout, settings.body_timeout, settings.max_connections),
            timeout_keep_alive=settings.keep_alive_timeout,
        )
        self._server = uvicorn.Server(config)

        def run() -> None:
            try:
                self._server.run(sockets=[sock])  # type: ignore[union-attr]
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                self._error = exc

        self._thread = threading.Thread(target=run, name=f"mockserver-{port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + self._timeout
        while not self._server.started:
            if self._error is not None or not self._thread.is_alive():
                raise RuntimeError(f"the mock server did not start: {self._error!r}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the mock server did not start within {self._timeout} s")
            time.sleep(0.005)
        self.url = f"http://127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
