"""pytest plugin: the fake in-process, on a free loopback port, with a manual clock.

Installed with the package (entry point `pytest11`), it gives every test suite a `mockserver`
fixture. One server runs per session; each test gets it reset (no tasks, empty journal, the
configured default scenario) and, after the test, any unexpected failure inside the server is
raised in that test instead of vanishing into a log.

    def test_my_client_survives_a_rate_limit(mockserver):
        mockserver.push("rate-limited-then-ok", count=3)     # the next 3 submissions play it
        result = my_client.generate(base_url=mockserver.url, api_key=mockserver.api_key)
        assert mockserver.count(method="POST", path="/v1/videos/generations") == 3

Override the `mockserver_settings` fixture (session scope) to change contract, scenarios, key
maps or store: `return Settings(clock="manual", contract="current", scenario_dirs=(Path("qa"),))`,
or `Settings(clock="manual", store="redis://127.0.0.1:6379/0")` to test against the set-up you
deploy.
"""

from __future__ import annotations

import time
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import pytest

from contracts.client_properties import Broken, ClientRun, Judge, Properties
from mockserver.journal import Entry
from mockserver.runtime import Runtime
from mockserver.scenarios import parse
from mockserver.settings import Settings
from mockserver.testing import LiveServer

TEST_API_KEY = "sk-test-mockserver"
T = TypeVar("T")


class MockServer:
    """A running fake for one test: its URL, and every admin control as a Python call."""

    def __init__(self, server: LiveServer) -> None:
        self._server = server
        self.url = server.url
        self.api_key = TEST_API_KEY

    @property
    def runtime(self) -> Runtime:
        return self._server.runtime

    def _call(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return self._server.call(coroutine, timeout)

    # The clock.
    def advance(self, seconds: float) -> float:
        """Move scenario time forward; returns the new reading."""
        return self._call(self.runtime.advance(seconds)).now

    def now(self) -> float:
        return self._call(self.runtime.now())

    # Scenarios.
    def set_default(self, name: str) -> None:
        """The scenario for tasks that no header, pushed scenario, key or rule selects."""
        self._call(self.runtime.set_default(name))

    def push(self, name: str, count: int = 1) -> None:
        """Play `name` for the next `count` submissions, whoever sends them."""
        self._call(self.runtime.push(name, count))

    # Tasks.
    def tasks(self, status: str | None = None, scenario: str | None = None) -> list[dict[str, Any]]:
        return self._call(self.runtime.task_views(self.url, status, scenario))

    def task(self, task_id: str) -> dict[str, Any]:
        return self.runtime.task_view(self._call(self.runtime.task(task_id)), self.url)

    def fail(self, task_id: str, code: str = "generation_failed", message: str | None = None) -> None:
        self._call(self.runtime.fail_task(task_id, code, message))

    def complete(self, task_id: str) -> None:
        self._call(self.runtime.complete_task(task_id))

    def cancel(self, task_id: str) -> None:
        """Cancel a running task now, as a client's cancel would."""
        self._call(self.runtime.cancel_task(task_id))

    def stall(self, task_id: str) -> None:
        self._call(self.runtime.stall_task(task_id))

    def resume(self, task_id: str) -> None:
        self._call(self.runtime.resume_task(task_id))

    # Callbacks (where the contract documents them and the client gave a URL).
    def callbacks(self, task_id: str | None = None) -> list[dict[str, Any]]:
        """Delivery attempts, most recent first (of one task, if given): task_id, event, attempt,
        time, webhook_id, url, outcome (delivered, retrying, failed, refused, lost), status, error."""
        attempts, _ = self._call(self.runtime.callback_attempts(task_id))
        return [attempt.to_json() for attempt in attempts]

    def settle_callbacks(self, timeout: float = 30.0) -> None:
        """Wait until every delivery due at the clock's reading has been attempted (after an
        `advance`, the receiver has had what became due)."""
        if not self._call(self.runtime.settle_callbacks(timeout), timeout + 5):
            raise TimeoutError(f"callbacks due now were still being delivered after {timeout} s")

    def wait_for_callback(
        self, task_id: str, event: str | None = None, outcome: str | None = "delivered", timeout: float = 30.0
    ) -> dict[str, Any]:
        """The first attempt for the task (of `event`, with `outcome`; None: any) once it is made:
        deliveries due now are settled first. With a manual clock, one that is not due yet fails
        at once, saying when it will be (advance the clock); with a running clock it is waited
        for, up to `timeout` real seconds."""
        deadline = time.monotonic() + timeout
        while True:
            self.settle_callbacks(max(deadline - time.monotonic(), 0.1))
            attempts, pending = self._call(self.runtime.callback_attempts(task_id))
            for attempt in reversed(attempts):
                if (event is None or attempt.event == event) and (outcome is None or attempt.outcome == outcome):
                    return attempt.to_json()
            reading = self._call(self.runtime.clock())
            if reading.mode == "manual" or time.monotonic() > deadline:
                made = ", ".join(f"{a.event} #{a.attempt} {a.outcome}" for a in reversed(attempts)) or "none"
                due = ", ".join(f"{d.event} #{d.attempt} at +{d.due - reading.now:.3g} s" for d in pending) or "none"
                wanted = " ".join(filter(None, [event, outcome])) or "any"
                raise AssertionError(
                    f"no {wanted} callback for task {task_id}; attempts made: {made}; still to come: {due}"
                    + (" (the clock is manual: advance it)" if reading.mode == "manual" and pending else "")
                )
            time.sleep(0.02)

    def redeliver(self, task_id: str, event: str | None = None, url: str | None = None) -> None:
        """Deliver the task's callback again, now (as `POST /__admin/tasks/{id}/callback`)."""
        self._call(self.runtime.redeliver(task_id, event, url))

    # The journal.
    def requests(
        self,
        method: str | None = None,
        path: str | None = None,
        task_id: str | None = None,
        status: int | None = None,
        direction: str | None = None,
    ) -> list[Entry]:
        """Journal entries matching every filter given, most recent first (`path` may end in `*`;
        `direction`: `incoming`, or `outgoing` for the callbacks the fake sent)."""
        return self._call(self.runtime.requests(method, path, task_id, status, direction))

    def count(self, **filters: Any) -> int:
        return len(self.requests(**filters))

    def assert_requested(self, method: str, path: str, times: int | None = None, **filters: Any) -> list[Entry]:
        """Fail with the requests that came closest when no (or not `times`) request matched."""
        found = self.requests(method=method, path=path, **filters)
        if (times is None and found) or (times is not None and len(found) == times):
            return found
        wanted = f"{method.upper()} {path}" + (f" x{times}" if times is not None else "")
        near = self.requests(method=method) or self.requests()
        lines = [f"  {e.method} {e.path} -> {e.status}" for e in near[:10]] or ["  (no requests at all)"]
        raise AssertionError(f"expected {wanted}, found {len(found)}; closest requests:\n" + "\n".join(lines))

    def reset(self) -> None:
        self._call(self.runtime.reset())

    # Generated behaviours (with contracts.strategies.behaviours) and client properties.
    def play(self, behaviour: dict[str, Any]) -> None:
        """Reset, then play a generated (or hand-written) scenario for every new task."""
        self.reset()
        self.runtime.add_scenario(
            parse(behaviour, f"<{behaviour.get('name', 'generated')}>", vocabulary=self.runtime.vocabulary)
        )
        self.set_default(behaviour["name"])

    def judge(self, exit_code: int, output: str = "", properties: Properties | None = None) -> list[Broken]:
        """Judge the client run that just happened against the client properties. Waits are measured
        on the manual clock, so the client's sleep must be `mockserver.advance`."""
        entries = [entry.to_json() for entry in reversed(self.requests(direction="incoming"))]
        judge = Judge(self.runtime.contract, properties or Properties().without("time-limit"), timebase="time")
        return judge.judge(ClientRun(entries, exit_code, output))


@pytest.fixture(scope="session")
def mockserver_settings() -> Settings:
    """Settings of the session's fake. Override in a conftest.py to change them."""
    return Settings(clock="manual")


@pytest.fixture(scope="session")
def _mockserver_session(mockserver_settings: Settings) -> Iterator[LiveServer]:
    with LiveServer(mockserver_settings) as server:
        yield server


@contextmanager
def reset_for_a_test(server: LiveServer) -> Iterator[MockServer]:
    """A running fake, reset, as one test's handle; a failure inside the fake while it was held
    is raised when it is given back (for a fixture of your own over another LiveServer)."""
    handle = MockServer(server)
    handle.reset()
    yield handle
    errors = list(handle.runtime.errors)
    handle.runtime.errors.clear()
    if errors:
        raise errors[0]


@pytest.fixture
def mockserver(_mockserver_session: LiveServer) -> Iterator[MockServer]:
    """The fake, reset for this test. Server-side failures are raised here after the test."""
    with reset_for_a_test(_mockserver_session) as handle:
        yield handle
