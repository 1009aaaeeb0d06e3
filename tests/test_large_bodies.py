"""A body over the limit gets its 413, in the provider's shape, whatever the client does with the
rest of the body.

urllib (and so `requests`) sends the whole body before it reads a byte of the answer. The fake
answers 413 as soon as the headers say the body is too large; if it then closed the connection
with the body still arriving, the client's system would answer the unread data with a reset, and
the client would see "Connection reset by peer" or "Broken pipe" instead of the 413. The fake
closes lingeringly, as nginx does: it ends its side, reads and drops what the client still sends,
bounded in bytes and in time, and closes once the client has stopped.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator

import httpx
import pytest

from mockserver import Settings
from mockserver.protocol import MockHttpProtocol
from mockserver.settings import MAX_BODY_BYTES
from mockserver.testing import LiveServer
from tests.conftest import API_KEY, SUBMIT
from tests.processes import running
from tests.rawhttp import send_whole

MiB = 1024 * 1024
HEADERS = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
SIZES = {"2MiB": (2 * MiB, 10), "50MiB": (50 * MiB, 2)}  # body size, tries (each on a new connection)


def _body(size: int) -> bytes:
    """A JSON submission of exactly `size` bytes."""
    head, tail = b'{"model": "veo-3.1-extend", "prompt": "', b'"}'
    return head + b"a" * (size - len(head) - len(tail)) + tail


def _outcome(status: int | None, body: bytes, error: BaseException | None = None) -> object:
    """413 when the answer is a 413 in the provider's error shape, else what the client saw."""
    if error is not None:
        return f"{type(error).__name__}: {error}"
    try:
        payload = json.loads(body)
    except ValueError:
        return f"{status} with a body that is not JSON: {body[:80]!r}"
    error_object = payload.get("error") if isinstance(payload, dict) else None
    if (
        status != 413
        or list(payload) != ["error"]
        or not isinstance(error_object, dict)
        or not {"message", "type"} <= set(error_object) <= {"message", "type", "code", "param"}
        or error_object["type"] != "invalid_request_error"
        or f"the limit is {MAX_BODY_BYTES} bytes" not in error_object["message"]
    ):
        return f"{status} {payload!r}"
    return 413


def _urllib(url: str, body: bytes) -> object:
    request = urllib.request.Request(url + SUBMIT, data=body, headers=HEADERS, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return _outcome(answer.status, answer.read())
    except urllib.error.HTTPError as answer:
        return _outcome(answer.code, answer.read())
    except OSError as exc:  # URLError, ConnectionResetError, BrokenPipeError, a timeout
        return _outcome(None, b"", exc)


def _httpx(url: str, body: bytes) -> object:
    try:
        with httpx.Client(timeout=30) as client:
            answer = client.post(url + SUBMIT, content=body, headers=HEADERS)
    except httpx.TransportError as exc:
        return _outcome(None, b"", exc)
    return _outcome(answer.status_code, answer.content)


def _httpx_chunked(url: str, body: bytes) -> object:
    """No Content-Length: the fake finds the body too large while reading it."""
    pieces = (body[start : start + 65536] for start in range(0, len(body), 65536))
    try:
        with httpx.Client(timeout=30) as client:
            answer = client.post(url + SUBMIT, content=pieces, headers=HEADERS)
    except httpx.TransportError as exc:
        return _outcome(None, b"", exc)
    return _outcome(answer.status_code, answer.content)


def _raw(url: str, body: bytes, close: bool) -> object:
    exchange = send_whole(url, SUBMIT, HEADERS, body, close=close, timeout=30)
    if exchange.error is not None:  # a reset, or (keep-alive) a connection the fake never ends
        return _outcome(exchange.status, exchange.body, exchange.error)
    if b"connection: close" not in exchange.head.lower():
        return f"{exchange.status} without 'connection: close', though the rest of the body was never read"
    return _outcome(exchange.status, exchange.body)


CLIENTS: dict[str, Callable[[str, bytes], object]] = {
    "urllib": _urllib,
    "httpx": _httpx,
    "httpx-chunked": _httpx_chunked,
    "raw-close": lambda url, body: _raw(url, body, close=True),
    "raw-keep-alive": lambda url, body: _raw(url, body, close=False),
}


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    """`mockserver serve` as a user starts it (the default 1 MiB body limit)."""
    with running(["--log-level", "warning"]) as (url, _process):
        yield url


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("client", CLIENTS)
def test_a_body_over_the_limit_gets_its_413_whatever_the_client(served: str, client: str, size: str) -> None:
    length, tries = SIZES[size]
    body = _body(length)
    outcomes = [CLIENTS[client](served, body) for _ in range(tries)]
    assert outcomes == [413] * tries, f"{client}, {size}: {outcomes}"
    assert httpx.get(f"{served}/__admin/health").status_code == 200


# The drain is bounded: smaller bounds here, so that the tests are quick.


@pytest.fixture
def lingering(monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveServer]:
    monkeypatch.setattr(MockHttpProtocol, "linger_timeout", 0.5)
    monkeypatch.setattr(MockHttpProtocol, "linger_time", 2.0)
    monkeypatch.setattr(MockHttpProtocol, "linger_bytes", 1 * MiB)
    with LiveServer(Settings(clock="manual")) as server:
        yield server


def _start_oversized(server: LiveServer, declared: int) -> socket.socket:
    """A connection that has sent the head of a submission over the limit and a little of its body,
    and read the whole 413 (the fake has ended its side)."""
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    head = f"POST {SUBMIT} HTTP/1.1\r\nHost: a\r\nContent-Length: {declared}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in HEADERS.items())
    sock.sendall(head.encode() + b"\r\n" + b"{" * 4096)
    answer = b""
    while chunk := sock.recv(65536):
        answer += chunk
    assert answer.startswith(b"HTTP/1.1 413") and b"connection: close" in answer.lower()
    return sock


def _closed_by_the_server(sock: socket.socket) -> bool:
    """Whether the fake has closed the connection: once it has, what the client sends is answered
    with a reset, which the next send reports."""
    try:
        sock.send(b"x")
        time.sleep(0.2)
        sock.send(b"x")
    except (BrokenPipeError, ConnectionResetError):
        return True
    return False


def test_a_client_that_goes_quiet_after_the_answer_is_closed_after_the_idle_bound(lingering: LiveServer) -> None:
    with _start_oversized(lingering, 10 * MiB) as sock:
        assert not _closed_by_the_server(sock)  # lingering: what the client still sends is read
        time.sleep(1.5)  # three times linger_timeout without a byte
        assert _closed_by_the_server(sock)


def test_a_client_that_trickles_after_the_answer_is_closed_after_the_time_bound(lingering: LiveServer) -> None:
    with _start_oversized(lingering, 10 * MiB) as sock:
        started = time.monotonic()
        with pytest.raises((BrokenPipeError, ConnectionResetError)):
            while time.monotonic() - started < 10:
                sock.send(b"x")  # a byte every 0.1 s: never idle for linger_timeout
                time.sleep(0.1)
        assert 1.5 < time.monotonic() - started < 4.0  # linger_time is 2 s


def test_a_client_that_floods_after_the_answer_is_cut_off_after_the_byte_bound(lingering: LiveServer) -> None:
    declared = 256 * MiB
    with _start_oversized(lingering, declared) as sock:
        sent, block = 0, b"x" * (256 * 1024)
        with pytest.raises((BrokenPipeError, ConnectionResetError)):
            while sent < declared:
                sent += sock.send(block)
        # 1 MiB drained; the rest is what the two systems' socket buffers held when the fake closed.
        assert sent < 64 * MiB
