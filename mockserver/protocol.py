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

The timers cost nothing on the common path: one is set only when a read leaves a request's
headers or body incomplete. `protocol_class(settings)` makes the class uvicorn is given.
"""

from __future__ import annotations

import asyncio
import json

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

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


class MockHttpProtocol(HttpToolsProtocol):
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_connections: int = 1000
    _timer: asyncio.TimerHandle | None = None
    _waiting: str | None = None  # what the timer waits for: "headers" or "body"
    _in_headers = False
    _in_body = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            message = f"Too many open connections (the limit is {self.max_connections}); try again."
            transport.write(_error_bytes(503, message))
            transport.close()
            return
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
        self.transport.close()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._in_headers:
            self._arm("headers")
        elif self._in_body:
            self._arm("body")
        else:
            self._disarm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.scope["extensions"] = {TRANSPORT_EXTENSION: self.transport}  # type: ignore[typeddict-unknown-key]
        self._in_headers = True

    def on_headers_complete(self) -> None:
        self._in_headers, self._in_body = False, True
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_body = False
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        self._disarm()
        self.transport.write(_error_bytes(400, f"{msg.rstrip('.')}: the request is not valid HTTP/1.1."))
        self.transport.close()


def protocol_class(header_timeout: float, body_timeout: float, max_connections: int) -> type[MockHttpProtocol]:
    limits = {"header_timeout": header_timeout, "body_timeout": body_timeout, "max_connections": max_connections}
    return type("MockHttpProtocol", (MockHttpProtocol,), limits)
