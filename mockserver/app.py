"""`create_app(settings)`: the ASGI application of one fake server.

Routes: the provider API (`mockserver.api`), the admin API under `/__admin` (`mockserver.admin`).
Every error, including unknown routes, wrong methods and anything unexpected, is answered in the
provider's error shape, never as HTML or a stack trace.
"""

from __future__ import annotations

import contextlib
import gc
import time
from bisect import bisect_left
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import Message, Receive, Scope, Send

from mockserver.accesslog import AccessLog
from mockserver.admin import AdminApi, AdminGuard
from mockserver.api import Handler, ProviderApi
from mockserver.errors import ApiError
from mockserver.faults import FaultyResponse
from mockserver.incoming import Incoming
from mockserver.journal import BODY_PREVIEW, ERROR_CODE_KEY, NOW_KEY, Capture, JournalMiddleware, exchange
from mockserver.metrics import RouteCounts
from mockserver.protocol import AnswerCycle
from mockserver.responses import JsonBytes
from mockserver.runtime import Runtime
from mockserver.settings import Settings
from mockserver.state import StoreUnavailable

if TYPE_CHECKING:
    from mockserver.tracing import Tracing


def routes_hint(runtime: Runtime) -> str:
    """What a 404 for an unknown route says: the routes the contract documents."""
    documented = ", ".join(f"{op.method} {op.route}" for op in runtime.contract.shapes.operations.values())
    return f"The API has {documented}; the admin API is under /__admin (see GET /__admin/health)."


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return exc.response()


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    where = f"{request.method} {request.url.path[:200]}"
    if exc.status_code == 404:
        error = ApiError(404, f"No route for {where}. {request.app.state.routes_hint}", code="unknown_route")
    elif exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        error = ApiError(
            405, f"Method not allowed: {where}. Allowed: {allowed}.", code="method_not_allowed", headers=exc.headers
        )
    else:
        error = ApiError(exc.status_code, str(exc.detail), headers=exc.headers)
    if request.url.path.startswith("/__admin"):
        return error.response()
    return request.app.state.runtime.render.any_error(error)


METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})  # others count as "other"


def route_templates(routes: list[BaseRoute], prefix: str = "") -> dict[Any, str]:
    """Each route's endpoint -> its path template (`/v1/tasks/{task_id}`), under its mounts: the
    metrics count requests by template, never by path (a bounded set)."""
    found: dict[Any, str] = {}
    for route in routes:
        if isinstance(route, Route):
            found.setdefault(route.endpoint, prefix + route.path)
        elif isinstance(route, Mount):
            found.update(route_templates(route.routes, prefix + route.path))
    return found


def store_unavailable(exc: StoreUnavailable) -> ApiError:
    return ApiError(503, f"The mock server's store is unavailable: {exc}. Retry shortly.", code="store_unavailable")


async def _store_unavailable(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StoreUnavailable)
    return store_unavailable(exc).response()


def _server_error() -> Response:
    return ApiError(500, "The mock server failed unexpectedly; its log has the details.").response()


async def _unexpected(request: Request, exc: Exception) -> Response:
    request.app.state.runtime.errors.append(exc)
    return _server_error()


@contextlib.asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[None]:
    """Start the store with the server (a shared store connects, and keeps this replica on its
    list of live ones) and the callbacks' delivery loop; stop both when the server stops."""
    runtime = app.state.runtime
    state = runtime.state
    tracing = getattr(app.state, "tracing", None)
    if tracing is not None:
        tracing.start()  # the exporter in the process that serves (not in a --workers supervisor)
    await state.start()
    runtime.callbacks.start()  # deliveries due from before a restart go out too
    runtime.start_counting()
    if runtime.settings.gc_freeze:
        # What start-up built (modules, the contract, compiled validators and renderers) lives as
        # long as the server: move it out of the cyclic collector's reach now, so that the first
        # freeze of tasks (state/memory.py) does not walk it all on the request path (~50 ms).
        gc.collect()
        gc.freeze()
    try:
        yield
    finally:
        await runtime.callbacks.close()
        await runtime.stop_counting()
        await state.close()
        access = app.state.access_log
        if access is not None:
            access.close()
        if tracing is not None:
            tracing.close()  # the last spans leave before the process does


class MockApp:
    """The fake's ASGI application: a fast path for the two provider routes every client hits on
    every poll, in front of the Starlette application that serves everything else (HEAD,
    downloads, the admin API, unknown routes) and that holds `state.runtime`.

    The fast path reads the request straight from the ASGI scope: no router walk, no Request
    object, no middleware layers. It calls the same handlers as the Starlette routes, answers
    errors in the same shape, and records its own journal entries."""

    def __init__(self, app: Starlette, api: ProviderApi) -> None:
        self.app = app
        self.state = app.state
        self.api = api
        self.errors = api.rt.errors
        self.store = api.rt.state
        self.shared = api.rt.state.kind != "memory"
        self.access = AccessLog() if api.rt.settings.access_log else None
        self.metrics = api.rt.metrics  # None: off
        submit = api.submit_operation
        self.submit_path = submit.route
        self.submit_pattern = submit.path_regex if submit.path_parameters else None  # a model in the path
        self.submit_method = submit.method
        self.query_method = api.query_operation.method
        self.prefix, _, self.suffix = api.query_operation.route.rpartition("{" + api.task_parameter + "}")
        self.submit_counts: RouteCounts | None = None
        self.query_counts: RouteCounts | None = None
        self.templates: dict[Any, str] = {}
        if self.metrics is not None:
            self.submit_counts = self.metrics.route(submit.route, submit.method)
            self.query_counts = self.metrics.route(api.query_operation.route, self.query_method)
            self.templates = route_templates(app.routes)
            if self.access is not None:
                self.metrics.access_log_dropped = lambda: self.access.dropped if self.access is not None else 0

    def _task_id(self, path: str) -> str | None:
        if not path.startswith(self.prefix) or not path.endswith(self.suffix):
            return None
        task_id = path[len(self.prefix) : len(path) - len(self.suffix)]
        return task_id if task_id and "/" not in task_id else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            method, path = scope["method"], scope["path"]
            handler = None
            if method == self.submit_method and (
                path == self.submit_path or (self.submit_pattern is not None and self.submit_pattern.match(path))
            ):
                handler, task_id, counts = self.api.submit, None, self.submit_counts
            elif method == self.query_method and (task_id := self._task_id(path)) is not None:
                handler, counts = self.api.query, self.query_counts
            if handler is not None:
                await self._serve(handler, counts, Incoming(scope, receive, task_id), send)
                return
            if self.access is not None or self.metrics is not None:
                await self._logged(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _logged(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve a request off the fast path; log it once its answer started, and count it."""
        status = 0
        started = time.perf_counter()

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            if self.access is not None:
                self.access(scope, status)
            if self.metrics is not None:
                self._count(scope, status, time.perf_counter() - started)

    def _count(self, scope: Scope, status: int, seconds: float) -> None:
        """Count a request off the fast path under its route's template (one of a bounded set)."""
        assert self.metrics is not None
        endpoint = scope.get("endpoint")
        template = self.templates.get(endpoint) if endpoint is not None else None
        if template is None:  # no route: a mount's files (the dashboard's), the admin guard's refusal, or a 404
            root = scope.get("root_path", "")
            if root.startswith("/__admin"):
                template = root + "/{path}"
            else:
                template = "/__admin/{path}" if scope["path"].startswith("/__admin") else "unmatched"
        method = scope["method"]
        self.metrics.route(template, method if method in METHODS else "other").answered(status, seconds)

    async def _serve(self, handler: Handler, counts: RouteCounts | None, request: Incoming, send: Send) -> None:
        """Answer, and record the exchange in the journal (before the answer goes out: a shared
        store sends the entry on its way first)."""
        started, arrived = time.perf_counter(), time.time()
        scope = request.scope
        try:
            response = await handler(request)
        except ApiError as error:
            response = self.api.error(handler, error)
            scope[ERROR_CODE_KEY] = error.code
        except StoreUnavailable as exc:
            response = self.api.error(handler, store_unavailable(exc))
            scope[ERROR_CODE_KEY] = "store_unavailable"
        except Exception as exc:  # as ServerErrorMiddleware does for the Starlette routes
            self.errors.append(exc)
            response = _server_error()
            await response(scope, request.receive, send)
            self._record(request, counts, 500, started, arrived, tuple(response.raw_headers), response.body)
            raise
        if isinstance(response, FaultyResponse):  # what goes out is not what was rendered: watch it
            capture = Capture(send)
            try:
                await response(scope, request.receive, capture)
            finally:
                self._record(request, counts, capture.status, started, arrived, capture.headers, bytes(capture.answer))
            return
        self._record(
            request, counts, response.status_code, started, arrived, tuple(response.raw_headers),
            response.body[:BODY_PREVIEW],
        )  # fmt: skip
        if self.shared and (sent := self.store.sent()) is not None:
            await sent  # the entry is on its way to the shared journal: the answer cannot overtake it
        cycle = getattr(send, "__self__", None)  # uvicorn's request cycle, when nothing wraps the app
        if (
            type(cycle) is not AnswerCycle
            or type(response) is not JsonBytes
            or not cycle.answer(response.status_code, response.raw_headers, response.body)
        ):
            await response(scope, request.receive, send)

    def _record(
        self,
        request: Incoming,
        counts: RouteCounts | None,
        status: int,
        started: float,
        arrived: float,
        headers: tuple,
        answer: bytes | memoryview,
    ) -> None:
        scope = request.scope
        elapsed = time.perf_counter() - started
        if self.access is not None:
            self.access(scope, status)
        if counts is not None:  # counts.answered(status, elapsed), in place: the request path
            counts.statuses[status] += 1  # a status of the fast path: below 600
            duration = counts.duration
            duration.counts[bisect_left(duration.bounds, elapsed)] += 1
            duration.sum += elapsed
            if status >= 400 and counts is self.submit_counts:
                self.metrics.submit_refused(status, scope.get(ERROR_CODE_KEY))  # type: ignore[union-attr]
        now = scope.get(NOW_KEY)
        self.store.record(
            *exchange(
                self.store.estimate_now() if now is None else now,
                scope,
                request.raw_body[:BODY_PREVIEW],
                status,
                elapsed,
                arrived,
                headers,
                bytes(answer),
            )
        )


class TracedApp(MockApp):
    """The app with a span per request (`mockserver.tracing`, when an OTLP endpoint is set). MockApp
    stays as it is: with tracing off, the request path costs what it did."""

    def __init__(self, app: Starlette, api: ProviderApi, tracing: Tracing) -> None:
        super().__init__(app, api)
        self.tracing = tracing
        self.query_route = api.query_operation.route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        await self.tracing.request(scope, receive, send, super().__call__, self.route)

    def route(self, scope: Scope) -> str | None:
        """The route template a request matched: the fast path's, else the router's (None: none)."""
        method, path = scope["method"], scope["path"]
        if method == self.submit_method and (
            path == self.submit_path or (self.submit_pattern is not None and self.submit_pattern.match(path))
        ):
            return self.submit_path
        if method == self.query_method and self._task_id(path) is not None:
            return self.query_route
        route = scope.get("route")  # set by Starlette's router, from the outside in
        if route is None:
            return None
        if isinstance(route, Mount):  # a mount matched, and nothing in it (or its guard answered first)
            return scope.get("root_path", "") + "/{path}"
        return scope.get("root_path", "") + route.path


def _traced(app: Starlette, api: ProviderApi) -> MockApp:
    from mockserver.tracing import Tracing

    tracing = Tracing(api.rt.state, looks=api.rt.metrics is None)  # with metrics: the count of ended tasks
    api.rt.callbacks.tracing = tracing
    api.rt.tracing = tracing
    app.state.tracing = tracing
    return TracedApp(app, api, tracing)


def _dashboard(runtime: Runtime) -> list[BaseRoute]:
    """The dashboard's routes, or, without the `ui` extra (Jinja2), one that says how to get it."""
    try:
        from mockserver.ui.dashboard import Dashboard
    except ModuleNotFoundError as exc:
        if exc.name != "jinja2":
            raise
        missing = ApiError(
            404,
            "The dashboard needs the 'ui' extra: pip install 'veo-mockserver[ui]'. The admin API works without it.",
            code="dashboard_not_installed",
        )

        async def not_installed(request: Request) -> Response:
            return missing.response()

        return [Route("/ui{rest:path}", not_installed)]
    dashboard = Dashboard(runtime)
    return [Route("/ui", dashboard.tasks_page, methods=["GET"]), Mount("/ui", routes=dashboard.routes())]


def create_app(settings: Settings | None = None) -> MockApp:
    runtime = Runtime(settings or Settings())
    api = ProviderApi(runtime)
    admin = [*AdminApi(runtime).routes(), *_dashboard(runtime)]
    app = Starlette(
        routes=[
            *api.routes(),
            Mount(
                "/__admin",
                routes=admin,
                middleware=[Middleware(AdminGuard, settings=runtime.settings, wrong_tokens=runtime.wrong_tokens)],
            ),
        ],
        middleware=[Middleware(JournalMiddleware, record=runtime.state.record, now=runtime.state.estimate_now)],
        exception_handlers={
            ApiError: _api_error,
            StoreUnavailable: _store_unavailable,
            HTTPException: _http_error,
            Exception: _unexpected,
        },
        lifespan=_lifespan,
    )
    app.router.redirect_slashes = False  # a redirect would make a client re-send a billable submit
    app.state.runtime = runtime
    app.state.routes_hint = routes_hint(runtime)
    mock = _traced(app, api) if runtime.settings.tracing else MockApp(app, api)
    app.state.access_log = mock.access
    return mock
