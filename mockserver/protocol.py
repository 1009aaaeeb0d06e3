"""The HTTP protocol the fake runs under uvicorn: uvicorn's httptools protocol, hardened.

- Each request's scope carries the connection's transport (`TRANSPORT_EXTENSION`), which the
  connection-level faults of `mockserver.faults` need (reset, empty, truncated).
- A request too broken to reach the application (an unknown method, a malformed request line, a
  Content-Length that does not match) still gets the provider's error shape, not plain text.
- A client must send a request's headers within `header_timeout` seconds (of connecting, or of
  starting the request) and its body within `body_timeout` seconds of the headers, or it gets 408
  and is disconnected (just disconnected, if its answer has already gone). uvicorn itself waits
  for ever, so one slow client per connection could hold all of the server's connections.
- Beyond `max_connections` open connections, a new one is answered 503 and closed.
- An answer that goes out while the client is still sending (a 413 decided on Content-Length, a
  408, a 400) ends the connection lingeringly, as nginx does: the answer says `connection: close`,
  the fake ends its side once the answer is written, then reads and drops what the client still
  sends until the client stops, and only then closes. Closing at once would make the client's
  system answer the unread bytes with a reset, and a client that sends its whole body before
  reading (urllib, `requests`) would see "Connection reset by peer" instead of the answer. The
  drain is bounded: `linger_bytes` at most, `linger_time` seconds in all, and `linger_timeout`
  seconds without a byte (nginx's lingering_time and lingering_timeout).

The timers cost nothing on the common path: one is set only when a read leaves a request's
headers or body incomplete. `protocol_class(settings)` makes the class uvicorn is given.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import (
    HEADER_VALUE_RE,
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)

from mockserver.errors import ApiError

TRANSPORT_EXTENSION = "mockserver.transport"


def _error_bytes(status: int, message: str) -> bytes:
    """A whole HTTP answer in the provider's error shape, for errors the application never sees."""
    body = json.dumps(ApiError(status, message).body()).encode()
    head = STATUS_LINE[status] + b"".join(
        [
            b"content-type: application/json\r\n",
            b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
            b"connection: close\r\n",
            b"\r\n",
        ]
    )
    return head + body


class AnswerCycle(RequestResponseCycle):
    """uvicorn's request cycle, with two changes. An answer that starts before the request's body
    has all arrived says `connection: close`: the rest of the body is drained, not parsed, so the
    connection cannot carry another request. And an answer's head goes out with its body, in one
    write (one system call) instead of two."""

    async def send(self, message: Any) -> None:
        if message["type"] == "http.response.start" and not self.response_started:
            if self.more_body:
                self.keep_alive = False
            self.transport.hold = True  # type: ignore[attr-defined]
        await super().send(message)
        if self.response_complete:
            self.transport.flush()  # type: ignore[attr-defined] # a head with no body to ride on (HEAD, 204)

    def answer(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes | memoryview) -> bool:
        """Send a whole answer (its `content-length` among `headers`, names in lowercase) in one
        write, as `send` would from its two messages without their per-header checks; False, and
        nothing sent, when it cannot (an answer started, a HEAD, a client gone or not reading):
        then the caller sends it the ASGI way. The fast path's answers come this way."""
        if self.response_started or self.disconnected or self.flow.write_paused or self.scope["method"] == "HEAD":
            return False
        for _, value in headers[2:]:  # the two first are the fake's own (content-length, -type)
            if HEADER_VALUE_RE.search(value):
                return False  # uvicorn's send refuses it, as it should
        self.response_started = True
        self.waiting_for_100_continue = False
        if self.more_body:  # the client is still sending: the rest is drained, not parsed
            self.keep_alive = False
        content: list[bytes | memoryview] = [STATUS_LINE[status]]
        for name, value in self.default_headers:
            content += (name, b": ", value, b"\r\n")
        for name, value in headers:
            content += (name, b": ", value, b"\r\n")
        if not self.keep_alive:
            content.append(b"connection: close\r\n")
        content += (b"\r\n", body)
        self.transport.write(b"".join(content))
        self.response_complete = True
        self.message_event.set()
        if not self.keep_alive:
            self.transport.close()
        self.on_response()
        return True


class _AnswerTransport:
    """The transport a request cycle writes its answer to: the connection's own, except that the
    head of an answer waits for the first piece of its body (or the end of the answer), and the
    cycle's close() closes lingeringly when the client may still be sending."""

    __slots__ = ("held", "hold", "protocol")

    def __init__(self, protocol: MockHttpProtocol) -> None:
        self.protocol = protocol
        self.hold = False  # the next write is an answer's head: keep it
        self.held: bytes | None = None

    def write(self, data: bytes) -> None:
        if self.hold:
            self.hold, self.held = False, data
            return
        if self.held is not None:
            data, self.held = self.held + data, None
        self.protocol.transport.write(data)

    def flush(self) -> None:
        if self.held is not None:
            data, self.held = self.held, None
            self.protocol.transport.write(data)

    def is_closing(self) -> bool:
        return self.protocol.transport.is_closing() or self.protocol._lingering

    def close(self) -> None:
        self.flush()
        self.protocol._close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.protocol.transport, name)


CONNECTION = "mockserver.connection"  # the scope key of the connection a request came on


class MockHttpProtocol(HttpToolsProtocol):
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_connections: int = 1000
    linger_bytes: int = 64 * 1024 * 1024  # drained at most after an answer, then the connection is cut
    linger_time: float = 30.0  # seconds the drain may take in all
    linger_timeout: float = 5.0  # seconds the drain waits for the client's next byte
    _timer: asyncio.TimerHandle | None = None
    _waiting: str | None = None  # what the timer waits for: "headers" or "body"
    _in_headers = False
    _in_body = False
    _lingering = False
    _answer_transport: _AnswerTransport

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            message = f"Too many open connections (the limit is {self.max_connections}); try again."
            transport.write(_error_bytes(503, message))
            transport.close()
            return
        self._answer_transport = _AnswerTransport(self)
        self._arm("headers")  # a client that connects and says nothing

    def _arm(self, waiting: str) -> None:
        if self._waiting != waiting:
            self._disarm()
            seconds = self.header_timeout if waiting == "headers" else self.body_timeout
            self._timer = self.loop.call_later(seconds, self._too_slow)
            self._waiting = waiting

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._waiting = None

    def _too_slow(self) -> None:
        waiting, self._timer, self._waiting = self._waiting, None, None
        if self.transport.is_closing():
            return
        if self.cycle is None or not self.cycle.response_started:
            seconds = self.header_timeout if waiting == "headers" else self.body_timeout
            message = f"The request's {waiting} did not arrive within {seconds:g} s."
            self.transport.write(_error_bytes(408, message))
        self._close()

    # The lingering close.

    def _close(self) -> None:
        """Close after an answer: at once if the client has sent all it meant to, else lingeringly."""
        if self._lingering or self.transport.is_closing():
            return
        if not (self._in_headers or self._in_body or self.flow.read_paused) or not self.transport.can_write_eof():
            self.transport.close()
            return
        self._disarm()
        self._unset_keepalive_if_required()
        self._lingering = True
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:  # a 408 while the app waits for the body:
            cycle.disconnected = True  # it hears that the client went away, and may answer no more
            cycle.message_event.set()
        self.pipeline.clear()  # requests queued behind this one are not answered on a closing connection
        self.transport.write_eof()  # the answer goes out first, then the end of our side
        self.flow.resume_reading()
        now = self.loop.time()
        self._linger_left = self.linger_bytes
        self._linger_end = now + self.linger_time
        self._linger_last = now
        self._timer = self.loop.call_later(min(self.linger_timeout, self.linger_time), self._linger_check)
        # The client's end (eof_received) closes the transport as usual: the drain ends there.

    def _linger_check(self) -> None:
        """Close once the drain is over its time, or the client has been quiet for linger_timeout."""
        self._timer = None
        now = self.loop.time()
        wake = min(self._linger_end, self._linger_last + self.linger_timeout)
        if now >= wake:
            self.transport.close()
        else:
            self._timer = self.loop.call_later(wake - now, self._linger_check)

    def _drain(self, data: bytes) -> None:
        self._linger_left -= len(data)
        if self._linger_left < 0:
            self._disarm()
            self.transport.close()  # over the bound: what is left is answered with a reset
        else:
            self._linger_last = self.loop.time()

    def on_response_complete(self) -> None:
        if self._lingering:
            self.server_state.total_requests += 1
            return
        super().on_response_complete()

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            self._drain(data)
            return
        super().data_received(data)
        if self._lingering:  # the data ended the exchange (a 400)
            return
        if self._in_headers:
            self._arm("headers")
        elif self._in_body:
            self._arm("body")
        else:
            self._disarm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.scope["extensions"] = {TRANSPORT_EXTENSION: self.transport}  # type: ignore[dict-item]  # ours
        self._in_headers = True

    def on_headers_complete(self) -> None:
        self._in_headers, self._in_body = False, True
        cycle = self.cycle
        super().on_headers_complete()
        if self.cycle is not cycle:  # a new request cycle (not a WebSocket upgrade)
            self.cycle.__class__ = AnswerCycle
            self.cycle.transport = self._answer_transport  # type: ignore[assignment]
            self.cycle.scope[CONNECTION] = self  # type: ignore[literal-required]  # a stream asks it: closing?

    def on_message_complete(self) -> None:
        self._in_body = False
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    closing = False  # the server is shutting down: an endless answer (the dashboard's live feed) ends

    def shutdown(self) -> None:
        self.closing = True
        super().shutdown()

    def send_400_response(self, msg: str) -> None:
        self._disarm()
        self.transport.write(_error_bytes(400, f"{msg.rstrip('.')}: the request is not valid HTTP/1.1."))
        self._close()


def protocol_class(header_timeout: float, body_timeout: float, max_connections: int) -> type[MockHttpProtocol]:
    limits = {"header_timeout": header_timeout, "body_timeout": body_timeout, "max_connections": max_connections}
    return type("MockHttpProtocol", (MockHttpProtocol,), limits)
