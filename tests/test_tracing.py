"""Traces (the `otel` extra), as a team reading them in its collector sees them: a real OTLP/HTTP
receiver on a loopback port decodes what `mockserver serve` replicas on a real redis-server
export; a client sends a W3C traceparent; a real receiver gets the callbacks. And with no
endpoint set (or the extra missing), no module of OpenTelemetry in a real `mockserver serve`."""

from __future__ import annotations

import http.server
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span as SpanProto

from tests.processes import free_port
from tests.receivers import LoopbackServer, Receiver
from tests.services import Replica
from tests.test_callbacks import CREATE, DONE_AT, KEY, REPLICATE, SECRET, _admin, _headers

ROOT = Path(__file__).resolve().parents[1]
SERVER, CLIENT, INTERNAL = SpanProto.SPAN_KIND_SERVER, SpanProto.SPAN_KIND_CLIENT, SpanProto.SPAN_KIND_INTERNAL


def _value(any_value: Any) -> Any:
    return getattr(any_value, any_value.WhichOneof("value"))


@dataclass
class Span:
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent: str
    attributes: dict[str, Any]
    events: list[tuple[str, int]]
    error: bool
    start: int
    end: int
    service: str


class Collector(LoopbackServer):
    """An OTLP/HTTP receiver: `POST /v1/traces` with an ExportTraceServiceRequest (protobuf),
    decoded with opentelemetry-proto; every request body is kept as it came."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.bodies: list[bytes] = []
        self.arrived = threading.Condition()
        collector = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                if self.path != "/v1/traces" or self.headers.get("content-type") != "application/x-protobuf":
                    self.send_response(404)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                export = ExportTraceServiceRequest.FromString(body)
                with collector.arrived:
                    collector.bodies.append(body)
                    collector.spans += [
                        _span(span, {kv.key: _value(kv.value) for kv in resource.resource.attributes})
                        for resource in export.resource_spans
                        for scope in resource.scope_spans
                        for span in scope.spans
                    ]
                    collector.arrived.notify_all()
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(Handler)
        self.url = f"http://127.0.0.1:{self.port}"

    def named(self, name: str) -> list[Span]:
        with self.arrived:
            return [span for span in self.spans if span.name == name]

    def wait_for(self, done: Callable[[list[Span]], bool], timeout: float = 15.0) -> list[Span]:
        with self.arrived:
            assert self.arrived.wait_for(lambda: done(self.spans), timeout), [s.name for s in self.spans]
            return list(self.spans)


def _span(span: Any, resource: dict[str, Any]) -> Span:
    return Span(
        span.name, span.kind, span.trace_id.hex(), span.span_id.hex(), span.parent_span_id.hex(),
        {kv.key: _value(kv.value) for kv in span.attributes},
        [(event.name, event.time_unix_nano) for event in span.events],
        span.status.code == span.status.STATUS_CODE_ERROR, span.start_time_unix_nano, span.end_time_unix_nano,
        resource["service.name"],
    )  # fmt: skip


def test_a_submit_is_traced_into_its_lifecycle_and_its_callbacks_on_another_replica(redis_url: str) -> None:
    args = ["--store", redis_url, "--clock", "manual", "--contract", str(REPLICATE), "--callback-secret", SECRET]
    trace_id, client_span = secrets.token_hex(16), secrets.token_hex(8)
    with Collector() as collector, Receiver(204) as receiver:
        # a: its batches wait ten minutes, so its spans arrive only because SIGTERM flushes them
        a = Replica(args, {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.url, "OTEL_BSP_SCHEDULE_DELAY": "600000"}).start()
        try:
            answer = httpx.post(
                a.url + CREATE,
                json={"input": {"prompt": "a lighthouse at dusk"}, "webhook": receiver.url},
                headers={**_headers(), "traceparent": f"00-{trace_id}-{client_span}-01"},
                timeout=10,
            )
            assert answer.status_code == 201, answer.text
            task_id = answer.json()["id"]
            assert collector.spans == []
        finally:
            said = a.stop()
        assert f"traces over OTLP/HTTP to {collector.url}/v1/traces" in said
        [submit] = collector.named("POST /v1/models/{model_owner}/{model_name}/predictions")
        assert (submit.kind, submit.trace_id, submit.parent, submit.service) == (
            SERVER,
            trace_id,
            client_span,
            "veo-mockserver",
        )
        assert submit.attributes["http.route"] == "/v1/models/{model_owner}/{model_name}/predictions"
        assert submit.attributes["http.request.method"] == "POST"
        assert submit.attributes["http.response.status_code"] == 201
        assert submit.attributes["mockserver.task.id"] == task_id and not submit.error

        # b, another replica on the store, finishes the task and delivers its callback (a is gone)
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
            "OTEL_BSP_SCHEDULE_DELAY": "50",
            "OTEL_SERVICE_NAME": "qa-fake",
        }
        b = Replica(args, env).start()
        try:
            _admin(b.url, "POST", "/clock/advance", json={"seconds": DONE_AT})
            [received] = receiver.wait(1)
            polled = httpx.get(f"{b.url}/v1/predictions/{task_id}", headers=_headers(), timeout=10)
            assert polled.json()["status"] == "succeeded"
            collector.wait_for(lambda spans: {"task lifecycle", "callback succeeded"} <= {span.name for span in spans})
        finally:
            b.stop()

    [lifecycle] = collector.named("task lifecycle")  # b saw it terminal twice (its delivery, the poll): one span
    assert (lifecycle.kind, lifecycle.trace_id, lifecycle.parent, lifecycle.service) == (
        INTERNAL, trace_id, submit.span_id, "qa-fake"
    )  # fmt: skip
    assert lifecycle.attributes == {
        "mockserver.task.id": task_id, "mockserver.scenario": "default", "mockserver.model": "lightricks/ltx-2.5-fast",
        "mockserver.task.status": "succeeded", "mockserver.key_id": lifecycle.attributes["mockserver.key_id"],
    }  # fmt: skip
    assert KEY not in lifecycle.attributes["mockserver.key_id"]
    assert [name for name, _ in lifecycle.events] == ["queued", "running", "succeeded"]
    assert lifecycle.end - lifecycle.start == DONE_AT * 10**9  # scenario time: the manual clock moved 90 s
    assert lifecycle.events[0][1] == lifecycle.start and lifecycle.events[-1][1] == lifecycle.end

    [callback] = collector.named("callback succeeded")
    assert (callback.kind, callback.trace_id, callback.parent) == (CLIENT, trace_id, submit.span_id)
    assert callback.attributes["http.response.status_code"] == 204 and callback.attributes["url.full"] == receiver.url
    assert received.headers["traceparent"] == f"00-{trace_id}-{callback.span_id}-01"

    [poll] = collector.named("GET /v1/predictions/{prediction_id}")
    assert poll.kind == SERVER and poll.parent == "" and poll.trace_id != trace_id  # the client sent no traceparent
    assert poll.attributes["http.response.status_code"] == 200 and poll.attributes["mockserver.scenario"] == "default"
    [advance] = collector.named("POST /__admin/clock/advance")
    assert advance.attributes["http.route"] == "/__admin/clock/advance"
    for body in collector.bodies:  # no credential leaves in a span: the API key, the callback secret
        assert KEY.encode() not in body and SECRET.encode() not in body and b"uthorization" not in body
    assert all(task_id not in span.name for span in collector.spans)  # route templates, not paths


HARNESS = """
import json, os, signal, sys, threading, time
import httpx

if os.environ.get("HIDE_OTEL"):
    sys.modules["opentelemetry"] = None  # as where the otel extra is not installed
from mockserver.cli import main

PORT = int(sys.argv[1])
BASE = f"http://127.0.0.1:{PORT}"
KEY = {"Authorization": "Bearer sk-harness"}


def drive():
    for _ in range(400):
        try:
            if httpx.get(BASE + "/__admin/health").status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.05)
    body = {"model": "veo-3.1-extend", "prompt": "a pan", "video": "https://example.com/in.mp4"}
    task = httpx.post(BASE + "/v1/videos/generations", json=body, headers=KEY).json()["id"]
    statuses = [httpx.get(f"{BASE}/v1/tasks/{task}", headers=KEY).json()["status"]]
    httpx.post(BASE + "/__admin/clock/advance", json={"seconds": 100})
    statuses.append(httpx.get(f"{BASE}/v1/tasks/{task}", headers=KEY).json()["status"])
    loaded = sorted(name for name, module in sys.modules.items() if name.split(".")[0] == "opentelemetry" and module)
    print(json.dumps({"statuses": statuses, "opentelemetry": loaded}), flush=True)
    os.kill(os.getpid(), signal.SIGTERM)


threading.Thread(target=drive, daemon=True).start()
main(["serve", "--port", str(PORT), "--clock", "manual", "--log-level", "warning"], prog_name="mockserver")
"""


def test_without_an_endpoint_or_the_extra_no_module_of_opentelemetry_is_loaded(tmp_path: Path) -> None:
    """`mockserver serve` run in a process of its own, which looks at its own modules once it has
    served a submit and polls (the otel extra is installed in the test environment)."""
    harness = tmp_path / "harness.py"
    harness.write_text(HARNESS)
    for env in ({}, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "HIDE_OTEL": "1"}):
        base = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        done = subprocess.run(
            [sys.executable, str(harness), str(free_port())], check=False, cwd=ROOT,
            env={**base, **env, "PYTHONPATH": str(ROOT)},
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode in (0, -signal.SIGTERM), done.stderr  # uvicorn raises the signal again once stopped
        assert json.loads(done.stdout) == {"statuses": ["pending", "completed"], "opentelemetry": []}
        warning = (
            "mockserver: OTEL_EXPORTER_OTLP_ENDPOINT is set, but traces need the 'otel' extra "
            "(pip install 'veo-mockserver[otel]'): serving without traces"
        )
        assert done.stderr.count(warning) == (1 if env else 0), done.stderr
        assert "traces over OTLP/HTTP" not in done.stderr
