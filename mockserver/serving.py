"""Serve the fake under uvicorn: one process, or `--workers N` processes on one port.

    check(settings)   build the app and start its store once, before anything listens: a broken
                      scenario, a store that cannot be reached or a replica that does not play
                      what the others play stops `serve` here, with the reason
    run(settings)     serve until SIGTERM or Ctrl-C

With several workers, uvicorn starts each in a process of its own and each builds its app with
`worker_app()` from the settings this process hands down in `MOCKSERVER_WORKER_SETTINGS`. They
share nothing but the store, which is why several workers need a shared one.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import uvicorn

from mockserver.app import MockApp, create_app
from mockserver.protocol import MockHttpProtocol, protocol_class
from mockserver.settings import Settings

WORKER_SETTINGS = "MOCKSERVER_WORKER_SETTINGS"


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


def run(settings: Settings, app: MockApp) -> None:
    if settings.workers == 1:
        http = protocol_class(settings.header_timeout, settings.body_timeout, settings.max_connections)
        uvicorn.Server(uvicorn.Config(app, http=http, **_config_options(settings))).run()
        return
    os.environ[WORKER_SETTINGS] = settings.to_json()
    uvicorn.run(
        "mockserver.serving:worker_app",
        factory=True,
        workers=settings.workers,
        http="mockserver.protocol:MockHttpProtocol",
        **_config_options(settings),
    )


def worker_app() -> MockApp:
    """The app of one worker process (uvicorn calls this in each)."""
    settings = Settings.from_json(os.environ[WORKER_SETTINGS])
    MockHttpProtocol.header_timeout = settings.header_timeout
    MockHttpProtocol.body_timeout = settings.body_timeout
    MockHttpProtocol.max_connections = settings.max_connections
    return create_app(settings)
