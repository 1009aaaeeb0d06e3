"""Shared fixtures: a fake server (real uvicorn on a loopback port, or in-process over ASGI)
behind a client that checks every response against the loaded contract."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal

from contracts import Contract
from contracts.conformance import ResponseValidator
from mockserver import Settings, create_app
from mockserver.runtime import Runtime
from mockserver.testing import LiveServer
from tests.services import RedisServer

API_KEY = "sk-test-a1b2c3d4e5f6"
SUBMIT = "/v1/videos/generations"
BODIES = {
    "seed": {"model": "veo-3.1-extend", "prompt": "The camera pans on", "video": "https://example.com/in.mp4"},
    "current": {"model": "veo-3.1-extend", "prompt": "The camera pans on", "video_url": "https://example.com/in.mp4"},
}
_VALIDATORS: dict[str, ResponseValidator] = {}


def validator_for(contract: str) -> ResponseValidator:
    if contract not in _VALIDATORS:
        _VALIDATORS[contract] = ResponseValidator(Contract.load(contract))
    return _VALIDATORS[contract]


class Fake:
    """A running fake and a client for it. Every response to a contract operation is validated
    (pass check_contract=False for a scenario that is off the contract on purpose), and any
    unexpected failure inside the server is raised in the test."""

    def __init__(self, runtime: Runtime, client: httpx.Client | httpx.AsyncClient, portal: BlockingPortal | None):
        self.runtime = runtime
        self.client = client
        self.portal = portal
        self.contract = runtime.settings.contract
        self.validator = validator_for(self.contract)
        self.body = dict(BODIES.get(self.contract, BODIES["seed"]))

    def request(self, method: str, path: str, *, check_contract: bool = True, **kwargs: Any) -> httpx.Response:
        if self.portal is not None:
            response = self.portal.call(lambda: self.client.request(method, path, **kwargs))
        else:
            response = self.client.request(method, path, **kwargs)
        if self.runtime.errors:
            raise self.runtime.errors.pop(0)
        if check_contract:
            self.validator.validate(response)
        return response

    def submit(
        self,
        body: Any = None,
        *,
        key: str | None = API_KEY,
        scenario: str | None = None,
        headers: dict[str, str] | None = None,
        **overrides: Any,
    ) -> httpx.Response:
        sent = {**self.body, **overrides} if body is None else body
        all_headers = dict(headers or {})
        if key is not None:
            all_headers["Authorization"] = f"Bearer {key}"
        if scenario is not None:
            all_headers["X-Mock-Scenario"] = scenario
        return self.request("POST", SUBMIT, json=sent, headers=all_headers)

    def create(self, scenario: str | None = None, **overrides: Any) -> str:
        response = self.submit(scenario=scenario, **overrides)
        assert response.status_code == 200, response.text
        return response.json()["id"]

    def poll(self, task_id: str, key: str | None = API_KEY, **params: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return self.request("GET", f"/v1/tasks/{task_id}", headers=headers, params=params)

    def task(self, task_id: str) -> dict[str, Any]:
        response = self.poll(task_id)
        assert response.status_code == 200, response.text
        return response.json()

    def advance(self, seconds: float) -> dict[str, Any]:
        response = self.request("POST", "/__admin/clock/advance", json={"seconds": seconds})
        assert response.status_code == 200, response.text
        return response.json()

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.request(method, f"/__admin{path}", **kwargs)


def start_fake(stack: ExitStack, settings: Settings, transport: str = "uvicorn") -> Fake:
    if transport == "uvicorn":
        server = stack.enter_context(LiveServer(settings))
        client = stack.enter_context(httpx.Client(base_url=server.url, timeout=10))
        return Fake(server.runtime, client, None)
    app = create_app(settings)
    portal = stack.enter_context(start_blocking_portal())
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fake.test")
    stack.callback(lambda: portal.call(client.aclose))
    return Fake(app.state.runtime, client, portal)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A real redis-server of the session's own (persistence off), on a free loopback port."""
    with RedisServer() as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer, request: pytest.FixtureRequest) -> str:
    """The session's Redis, emptied for this test."""
    redis_server.client().flushall()
    return redis_server.url


@pytest.fixture(scope="session")
def _shared_fakes(redis_server: RedisServer) -> Iterator[dict[str, Fake]]:
    with ExitStack() as stack:
        settings = Settings(clock="manual", seed=7)
        fakes = {transport: start_fake(stack, settings, transport) for transport in ("uvicorn", "asgi")}
        shared = Settings(clock="manual", seed=7, store=redis_server.url, store_prefix="shared-fake")
        fakes["redis"] = start_fake(stack, shared, "uvicorn")
        yield fakes


@pytest.fixture(params=["uvicorn", "asgi", "redis"])
def fake(request: pytest.FixtureRequest, _shared_fakes: dict[str, Fake]) -> Fake:
    """The default fake (seed contract, shipped scenarios, manual clock), reset for this test;
    over real uvicorn and in-process with the memory store, and over uvicorn with the Redis store."""
    chosen = _shared_fakes[request.param]
    assert chosen.admin("POST", "/reset").status_code == 200
    return chosen


@pytest.fixture
def live(_shared_fakes: dict[str, Fake]) -> Fake:
    """The default fake over real uvicorn only, reset for this test."""
    chosen = _shared_fakes["uvicorn"]
    assert chosen.admin("POST", "/reset").status_code == 200
    return chosen


@pytest.fixture
def make_fake() -> Iterator[Any]:
    """Start a fake with other settings (stopped after the test): make_fake(contract="current")."""
    with ExitStack() as stack:

        def make(transport: str = "uvicorn", **settings: Any) -> Fake:
            settings.setdefault("clock", "manual")
            return start_fake(stack, Settings(**settings), transport)

        yield make
