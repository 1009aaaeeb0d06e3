"""Serve the fake under uvicorn: one process, or `--workers N` processes on one port.

    check(settings)   build the app and start its store once, before anything listens: a broken
                      scenario, a store that cannot be reached or a replica that does not play
                      what the others play stops `serve` here, with the reason
    run(settings)     serve until SIGTERM or Ctrl-C

With several workers, uvicorn's supervisor starts each in a process of its own (multiprocessing's
spawn) and hands it its configuration, pickled, through a pipe: a `WorkerConfig` that carries the
settings and builds the app in the worker. The settings (a store URL's password, the admin token,
the callback secret) never go through an environment variable, a command line or a file, and the
supervisor drops the `MOCKSERVER_*` variables from the environment the workers inherit. The
workers share nothing but the store, which is why several workers need a shared one.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess

from mockserver.app import MockApp, create_app
from mockserver.protocol import MockHttpProtocol, protocol_class
from mockserver.settings import Settings


def check(settings: Settings) -> MockApp:
    """The app, after its store started once (and stopped again: the server starts it anew)."""
    app = create_app(settings)
    state = app.state.runtime.state

    async def start_and_stop() -> None:
        await state.start()
        await state.close()

    asyncio.run(start_and_stop())
    return app


def _config_options(settings: Settings) -> dict[str, Any]:
    return {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        "lifespan": "on",
        "server_header": False,
        "proxy_headers": False,  # result URLs follow the Host header or --public-url, not X-Forwarded-*
        "timeout_keep_alive": settings.keep_alive_timeout,
        "access_log": False,  # the fake writes its own (mockserver.accesslog): uvicorn's costs half the throughput
    }


class WorkerConfig(uvicorn.Config):
    """uvicorn's configuration for `--workers`, with the settings in it: the supervisor pickles it
    to each worker it starts (or restarts) through a pipe, and the worker builds its app from it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        super().__init__(
            "mockserver.serving:worker_app",  # never imported: load_app() below makes the app
            factory=True,
            workers=settings.workers,
            http="mockserver.protocol:MockHttpProtocol",
            **_config_options(settings),
        )

    def load_app(self) -> Callable[[], MockApp]:
        """Called in the worker: the factory of its app (uvicorn calls it once)."""
        return lambda: worker_app(self.settings)


def run(settings: Settings, app: MockApp) -> None:
    """Serve until stopped. With several workers this process's `MOCKSERVER_*` variables are removed
    from its own environment first (the workers would inherit them, a store password included):
    the command line's `serve` needs them no more once `settings` is made."""
    if settings.workers == 1:
        http = protocol_class(settings.header_timeout, settings.body_timeout, settings.max_connections)
        uvicorn.Server(uvicorn.Config(app, http=http, **_config_options(settings))).run()
        return
    config = WorkerConfig(settings)
    for name in [name for name in os.environ if name.startswith("MOCKSERVER_")]:
        del os.environ[name]  # the workers get their settings from the config, not the environment
    sock = config.bind_socket()
    try:
        Multiprocess(config, sockets=[sock]).run()  # what uvicorn.run(workers=N) does, with this config
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()


def worker_app(settings: Settings) -> MockApp:
    """The app of one worker process."""
    MockHttpProtocol.header_timeout = settings.header_timeout
    MockHttpProtocol.body_timeout = settings.body_timeout
    MockHttpProtocol.max_connections = settings.max_connections
    return create_app(settings)
