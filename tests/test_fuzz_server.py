"""Bad input never breaks the fake: over ten thousand generated requests, through real uvicorn.

schemathesis sends positive and negative cases for both contract versions; hypothesis sends raw
bytes no client library would: broken JSON, invalid UTF-8, deep nesting, huge numbers, wrong and
missing Content-Type, oversized bodies, odd methods and paths, path traversal on the file route,
malformed task ids, and requests that are not HTTP at all. Every answer must be below 500 and, when
it is an error, in the provider's shape; and the server must still answer afterwards.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import contracts.checks  # noqa: F401 - our lifecycle rules run too
from mockserver import Settings
from mockserver.testing import LiveServer

KEY = "sk-fuzz-0001"
TARGET = 10_000
# What each test below must get to the fake (answered and journaled) at the least: together over
# TARGET. Each test counts its own, so they may run in any order and in any worker process.
# (schemathesis: 1,250 cases for each of the two operations; raw: 3,300 per server, a few of which
# no client can send, such as an invalid URL)
FLOORS = {"schemathesis seed": 2_500, "schemathesis current": 2_500, "raw HTTP": 5_000}
assert sum(FLOORS.values()) >= TARGET
SETTINGS = settings(max_examples=1250, deadline=None, suppress_health_check=list(HealthCheck), database=None)
RAW_SETTINGS = settings(max_examples=3300, deadline=None, suppress_health_check=list(HealthCheck), database=None)


def is_provider_error(response: httpx.Response | Any) -> str | None:
    """None when an error answer has the provider's shape, else what is wrong with it."""
    try:
        body = json.loads(response.content)
    except ValueError:
        return f"HTTP {response.status_code} with a body that is not JSON: {response.content[:200]!r}"
    error = body.get("error") if isinstance(body, dict) else None
    if (
        not isinstance(error, dict)
        or not isinstance(error.get("message"), str)
        or not isinstance(error.get("type"), str)
    ):
        return f"HTTP {response.status_code} not in the provider's error shape: {body!r:.200}"
    return None


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, LiveServer]]:
    with (
        LiveServer(Settings(clock="manual", contract="seed")) as seed,
        LiveServer(Settings(clock="manual", contract="current")) as current,
    ):
        yield {"seed": seed, "current": current}


@contextmanager
def _counted(servers: list[LiveServer], what: str) -> Iterator[None]:
    """Requests that reached `servers` (answered and journaled) during the block: at least FLOORS[what].
    Then each server still answers: its health, and a submit that creates a task."""
    before = sum(server.runtime.state.journal.recorded for server in servers)
    yield
    reached = sum(server.runtime.state.journal.recorded for server in servers) - before
    print(f"\n{what}: {reached} requests answered and journaled")
    assert reached >= FLOORS[what], f"{what}: {reached} requests reached the fake, fewer than {FLOORS[what]}"
    for server in servers:
        assert httpx.get(f"{server.url}/__admin/health").status_code == 200
        created = httpx.post(
            f"{server.url}/v1/videos/generations",
            json={"model": "veo-3.1-extend", "prompt": "p", "video": "https://e.com/v.mp4", "video_url": "https://e.com/v.mp4"},
            headers={"Authorization": f"Bearer {KEY}"},
        )  # fmt: skip
        assert created.status_code == 200


def _schema(server: LiveServer) -> schemathesis.BaseSchema:
    schema = schemathesis.openapi.from_url(f"{server.url}/__admin/contract")
    schema.config.update(headers={"Authorization": f"Bearer {KEY}"})
    return schema


@pytest.mark.parametrize("contract", ["seed", "current"])
def test_schemathesis_positive_and_negative_cases(servers: dict[str, LiveServer], contract: str) -> None:
    server = servers[contract]
    schema = _schema(server)
    with _counted([server], f"schemathesis {contract}"):
        for operation in schema.get_all_operations():
            operation = operation.ok()

            @SETTINGS
            @given(case=st.one_of(*(operation.as_strategy(generation_mode=m) for m in schemathesis.GenerationMode)))
            def check(case: schemathesis.Case) -> None:
                response = case.call(base_url=server.url)
                assert response.status_code < 500, response.text
                if response.status_code >= 400:
                    assert is_provider_error(response) is None, is_provider_error(response)

            check()


METHODS = st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "PROPFIND", "BREW"])
PATHS = st.one_of(
    st.sampled_from(
        [
            "/v1/videos/generations",
            "/v1/tasks/task-unified-1757165031-uyujaw3d",
            "/v1/tasks/",
            "/v1/tasks",
            "/files/../../etc/passwd.mp4",
            "/files/%2e%2e%2f%2e%2e%2fetc%2fpasswd.mp4",
            "/files/..%2f..%2fscenarios.mp4",
            "/__admin/../v1/tasks/x",
            "/v1/tasks/%00",
            "/v1/tasks/" + "a" * 3000,
            "/v1//tasks//x",
            "/%ff%fe",
            "/v1/videos/generations/",
            "/__admin/tasks/%2e%2e",
            "/files/x.mp4",
            "/__admin/scenarios/..%2f..",
        ]
    ),
    st.text(alphabet="/abcdefv1tasks%._-~0123456789", max_size=60).map(lambda p: "/" + p),
)
HUGE_NUMBERS = st.sampled_from(["1e999999", "-1e400", "123456789" * 200, "0." + "0" * 5000 + "1", "NaN", "Infinity"])


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["random", "broken-json", "deep", "huge-number", "utf8", "valid", "big", "empty"]))
    if kind == "random":
        return draw(st.binary(max_size=400))
    if kind == "broken-json":
        valid = json.dumps(
            {"model": "veo-3.1-extend", "prompt": draw(st.text(max_size=30)), "video": "https://e.com/v.mp4"}
        )
        cut = draw(st.integers(0, len(valid)))
        return valid[:cut].encode() + draw(st.sampled_from([b"", b"}", b",,", b"\x00", b"]"]))
    if kind == "deep":
        depth = draw(st.sampled_from([100, 1000, 50_000]))
        return b"[" * depth + b"]" * depth if draw(st.booleans()) else b'{"a":' * depth + b"1" + b"}" * depth
    if kind == "huge-number":
        return ('{"model": "veo-3.1-extend", "prompt": "p", "video": "https://e.com/v.mp4", "generate_audio": '
                + draw(HUGE_NUMBERS) + "}").encode()  # fmt: skip
    if kind == "utf8":
        return b'{"prompt": "' + draw(st.sampled_from([b"\xff\xfe", b"\xc3\x28", b"\xed\xa0\x80", b"\xe2\x82"])) + b'"}'
    if kind == "valid":
        return json.dumps(
            {"model": "veo-3.1-extend", "prompt": draw(st.text(max_size=200)), "video": draw(st.text(max_size=50)),
             "aspect_ratio": draw(st.sampled_from(["16:9", "9:16", "1:1", ""])), "generate_audio": draw(st.booleans())}
        ).encode()  # fmt: skip
    if kind == "big":
        return b'{"prompt": "' + b"x" * draw(st.sampled_from([1024 * 1024, 2 * 1024 * 1024])) + b'"}'
    return b""


CONTENT_TYPES = st.sampled_from(
    [None, "application/json", "application/json; charset=utf-8", "application/json; charset=latin-1", "text/plain",
     "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/JSON", "", "application/json;;"]
)  # fmt: skip


@RAW_SETTINGS
@given(
    method=METHODS,
    path=PATHS,
    body=bodies(),
    content_type=CONTENT_TYPES,
    key=st.sampled_from([KEY, None, "bad key", ""]),
)
def _well_formed_http(
    server: LiveServer,
    client: httpx.Client,
    method: str,
    path: str,
    body: bytes,
    content_type: str | None,
    key: str | None,
) -> None:
    headers = {}
    if content_type is not None:
        headers["Content-Type"] = content_type
    if key is not None:
        headers["Authorization"] = f"Bearer {key}" if key else "Bearer"
    try:
        response = client.request(
            method, server.url + path, content=body if method not in ("GET", "HEAD") else None, headers=headers
        )
    except httpx.InvalidURL:
        return
    assert response.status_code < 500, (method, path, response.status_code, response.text[:300])
    if response.status_code >= 400 and method != "HEAD":
        assert is_provider_error(response) is None, (method, path, is_provider_error(response))


def test_raw_requests_through_an_http_client(servers: dict[str, LiveServer]) -> None:
    with httpx.Client(timeout=10) as client, _counted(list(servers.values()), "raw HTTP"):
        for server in servers.values():
            _well_formed_http(server, client)


REQUEST_LINES = st.one_of(
    st.binary(min_size=1, max_size=200),
    st.sampled_from(
        [
            b"GET / HTTP/1.1\r\n\r\n",
            b"GET /v1/tasks/x HTTP/9.9\r\nHost: a\r\n\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
            b"POST /v1/videos/generations HTTP/1.1\r\nHost: a\r\nContent-Length: -5\r\n\r\n",
            b"POST /v1/videos/generations HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            b"GET /v1/tasks/x HTTP/1.1\r\nHost: a\r\nX: " + b"y" * 70_000 + b"\r\n\r\n",
            b"GET /v1/tasks/x HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n",
            b"BREW /pot HTCPCP/1.0\r\n\r\n",
        ]
    ),
)


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(raw=REQUEST_LINES)
def _not_http(server: LiveServer, raw: bytes) -> None:
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(raw)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except (ConnectionResetError, TimeoutError):
            return
    if not answer:
        return  # nothing complete enough to answer
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert status < 500, answer[:300]
    if status >= 400:
        assert is_provider_error(httpx.Response(status, content=body)) is None, answer[:300]


def test_requests_that_are_not_http(servers: dict[str, LiveServer]) -> None:
    """400 sends that are not HTTP at all: most never reach the application (so no floor), and the
    server still answers afterwards."""
    _not_http(servers["seed"])
    assert httpx.get(f"{servers['seed'].url}/__admin/health").status_code == 200
