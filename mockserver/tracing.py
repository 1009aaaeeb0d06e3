"""Traces (the `otel` extra): OpenTelemetry spans of requests, task lifecycles and callbacks,
exported over OTLP/HTTP as the standard `OTEL_*` variables say.

`mockserver serve` imports this module only when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set: otherwise no module of OpenTelemetry is loaded, and
the request path is the one it always was (the app, the store and the dispatcher are not wrapped).

    request     a SERVER span per request (`app.TracedApp`): the route template, never the raw
                path; the method and the status; never a header's value but the user agent. An
                incoming W3C `traceparent` is continued.
    submit      the submit span's `traceparent` is kept with the task in the store (`Task.trace`,
                and each of its callback deliveries), so the replica that finishes the task or
                delivers its callbacks joins the submit's trace, whichever it is
    lifecycle   one span per task, from its creation to its terminal state, an event per phase it
                reached, in scenario time (`Tracing.task_finished`): with the metrics on, made
                where ended tasks are counted (`Runtime.count_finished`: once across replicas);
                with --no-metrics, where this replica first reads the task terminal (a poll, a
                download, a cancel, a forced state, a callback delivery): two replicas may each
                make one then.
    callbacks   a CLIENT span per delivery attempt, a child of the submit's span; its
                `traceparent` goes out in the callback's headers

Spans leave in batches from a thread of the SDK (`BatchSpanProcessor`); the server's shutdown
(SIGTERM, Ctrl-C) flushes what is left.
"""

from __future__ import annotations

import importlib.metadata
import os
import socket
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.types import Message, Receive, Scope, Send

from mockserver.callbacks.plan import reached
from mockserver.callbacks.sender import Outcome
from mockserver.journal import FAULT_KEY, SCENARIO_KEY, TASK_KEY, redact_url
from mockserver.lifecycle import State, ended_at, is_terminal, task_state
from mockserver.state.base import Change, Delivery, Found, Store, Submission, Submitted
from mockserver.state.task import Task

SERVICE = "veo-mockserver"  # the service name unless OTEL_SERVICE_NAME (or OTEL_RESOURCE_ATTRIBUTES) names one
SEEN = 100_000  # task ids a replica remembers having seen terminal (the oldest are forgotten)
_W3C = TraceContextTextMapPropagator()  # W3C Trace Context: traceparent and tracestate
_LATEST_NS = 2**63 - 1  # OTLP timestamps are 64-bit nanoseconds (a manual clock may be moved past 2262)
App = Callable[[Scope, Receive, Send], Awaitable[None]]


def _version() -> str:
    try:
        return importlib.metadata.version("veo-mockserver")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _ns(seconds: float) -> int:
    return max(0, min(int(seconds * 1e9), _LATEST_NS))


def _parent(traceparent: str | None) -> Context:
    """The context a `traceparent` names (an empty one, so a root span, without one)."""
    return _W3C.extract({"traceparent": traceparent}) if traceparent else Context()


class Tracing:
    """The spans of one server process. Built with the app (it wraps the store's `submit`, `poll`
    and `update` of this process: the store's own code does not change); `start()` and `close()`
    run with the server's lifespan, so the exporter and its thread live in the serving process."""

    def __init__(self, store: Store, *, looks: bool = True) -> None:
        """`looks`: make a task's lifecycle span when this process first reads it terminal. With the
        metrics on, the runtime's count of ended tasks calls `task_finished` instead, once per task
        across replicas (the store's ledger), so no look is needed."""
        self.tracer: trace.Tracer = trace.NoOpTracer()  # until start()
        self.provider: TracerProvider | None = None
        self._seen: dict[str, None] = {}  # tasks this process has seen terminal, oldest first
        submit, poll, update = store.submit, store.poll, store.update

        async def traced_submit(submission: Submission) -> Submitted:
            submission.trace = self.traceparent()  # the request's span: the task keeps it
            return await submit(submission)

        async def traced_poll(task_id: str, *, count: bool, retained: bool = True) -> Found | None:
            return self._look(await poll(task_id, count=count, retained=retained))

        async def traced_update(task_id: str, change: Change) -> Found | None:
            return self._look(await update(task_id, change))

        # on this store object only: with tracing off nothing is wrapped, and nothing costs more
        setattr(store, "submit", traced_submit)  # noqa: B010
        if looks:
            setattr(store, "poll", traced_poll)  # noqa: B010
            setattr(store, "update", traced_update)  # noqa: B010

    # The server's lifespan

    def start(self) -> None:
        """The provider and its exporter, configured by the standard OTEL_* variables."""
        version = _version()
        detected = Resource.create()  # OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES
        ours: dict[str, Any] = {
            "service.version": version,
            "service.instance.id": f"{socket.gethostname()}:{os.getpid()}",
        }
        resource = Resource(ours).merge(detected)
        if str(detected.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
            resource = resource.merge(Resource({SERVICE_NAME: SERVICE}))
        provider = TracerProvider(resource=resource)
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        self.provider = provider
        self.tracer = provider.get_tracer("mockserver", version)

    def close(self) -> None:
        """Export what is left (the server is stopping), then stop the exporter."""
        if self.provider is not None:
            self.provider.shutdown()
            self.provider = None
            self.tracer = trace.NoOpTracer()

    # Requests

    def traceparent(self) -> str | None:
        """The W3C `traceparent` of the current span (None outside any)."""
        carrier: dict[str, str] = {}
        _W3C.inject(carrier)
        return carrier.get("traceparent")

    async def request(
        self, scope: Scope, receive: Receive, send: Send, app: App, route: Callable[[Scope], str | None]
    ) -> None:
        """Serve one HTTP request in a SERVER span of its own (a child of the client's `traceparent`)."""
        carrier: dict[str, str] = {}
        for name, value in scope["headers"]:
            if name == b"traceparent" or name == b"tracestate":
                carrier[name.decode()] = value.decode("latin-1")
        method = scope["method"]
        status = 0

        async def noting(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        with self.tracer.start_as_current_span(method, context=_W3C.extract(carrier), kind=SpanKind.SERVER) as span:
            try:
                await app(scope, receive, noting)
            finally:
                template = route(scope)
                if template is not None:
                    span.update_name(f"{method} {template}")
                    span.set_attribute("http.route", template)
                span.set_attributes(_request_attributes(scope, method, status))
                if status >= 500 or status == 0:
                    span.set_status(Status(StatusCode.ERROR, f"HTTP {status}" if status else "no answer"))

    # Tasks

    def _look(self, found: Found | None) -> Found | None:
        """A task this process read: its lifecycle span, the first time it is seen terminal."""
        if found is not None and found.task.id not in self._seen:
            state = task_state(found.task, found.now, poll=False)
            if is_terminal(state):
                self.task_finished(found.task, state, found.now)
        return found

    def task_finished(self, task: Task, state: State, now: float) -> None:
        """The task's lifecycle span, once per task in this process: from its creation to its
        terminal `state`, an event per phase it reached, in scenario time (on the Unix scale: the
        wall clock on a real clock at speed 1), a child of its submit's span."""
        if task.id in self._seen:
            return
        self._seen[task.id] = None
        if len(self._seen) > SEEN:
            del self._seen[next(iter(self._seen))]
        attributes: dict[str, Any] = {
            "mockserver.task.id": task.id,
            "mockserver.scenario": task.scenario.name,
            "mockserver.model": task.model,
            "mockserver.task.status": state.phase,
            "mockserver.key_id": task.key_id,
        }
        error = (state.error or {}).get("code")
        if error:
            attributes["mockserver.task.error"] = str(error)
        ended = ended_at(task, state)
        end = task.created_at + ended if ended is not None else now
        span = self.tracer.start_span(
            "task lifecycle", context=_parent(task.trace), kind=SpanKind.INTERNAL,
            attributes=attributes, start_time=_ns(task.created_at),
        )  # fmt: skip
        phases = reached(task)
        phases.setdefault(state.phase, end)  # a stalled task forced to an end reached only that
        for phase, at in sorted(phases.items(), key=lambda item: item[1]):
            span.add_event(phase, {"mockserver.task.phase": phase}, timestamp=_ns(at))
        if state.phase == "failed":
            span.set_status(Status(StatusCode.ERROR, f"the task failed: {error or 'no code'}"))
        span.end(end_time=_ns(max(end, task.created_at)))

    # Callbacks

    async def attempt(
        self, delivery: Delivery, headers: dict[str, str], send: Callable[[], Awaitable[Outcome]]
    ) -> Outcome:
        """One delivery attempt in a CLIENT span, a child of the submit's span; `headers` get its
        `traceparent` before `send()` sends them."""
        url = redact_url(delivery.url)
        parts = urlsplit(url)
        attributes: dict[str, Any] = {
            "http.request.method": "POST",
            "url.full": url,
            "server.address": parts.hostname or "",
            "mockserver.task.id": delivery.task_id,
            "mockserver.callback.event": delivery.event,
            "mockserver.callback.attempt": delivery.attempt,
            "mockserver.callback.webhook_id": delivery.webhook_id,
        }
        with self.tracer.start_as_current_span(
            f"callback {delivery.event}", context=_parent(delivery.trace), kind=SpanKind.CLIENT, attributes=attributes
        ) as span:
            _W3C.inject(headers)
            outcome = await send()
            if outcome.status is not None:
                span.set_attribute("http.response.status_code", outcome.status)
            if not outcome.delivered:
                span.set_status(Status(StatusCode.ERROR, outcome.error or f"HTTP {outcome.status}"))
            return outcome


def _request_attributes(scope: Scope, method: str, status: int) -> dict[str, Any]:
    """What a request span tells of its request: no header's value but the user agent's, no query."""
    attributes: dict[str, Any] = {
        "http.request.method": method,
        "url.scheme": scope.get("scheme", "http"),
        "network.protocol.version": scope.get("http_version", "1.1"),
    }
    if status:
        attributes["http.response.status_code"] = status
    server, client = scope.get("server"), scope.get("client")
    if server:
        attributes["server.address"], attributes["server.port"] = server[0], server[1] or 0
    if client:
        attributes["client.address"] = client[0]
    for name, value in scope["headers"]:
        if name == b"user-agent":
            attributes["user_agent.original"] = value.decode("latin-1")[:256]
    for key, attribute in (
        (TASK_KEY, "mockserver.task.id"),
        (SCENARIO_KEY, "mockserver.scenario"),
        (FAULT_KEY, "mockserver.fault"),
    ):
        value = scope.get(key)
        if value:
            attributes[attribute] = str(value)
    return attributes
