"""The HTTP protocol the fake runs under uvicorn: uvicorn's httptools protocol, hardened.

- Each request's scope carries the connection's transport (`TRANSPORT_EXTENSION`), which the
  connection-level faults of `mockserver.faults` need (reset, empty, truncated).
- A request too broken to reach the application (an unknown method, a malformed request line, a
  Content-Length that does not match) still gets the provider's error shape, not plain text.
- A client must send a request's headers within `header_timeout` seconds of connecting or of
  starting the request, or it gets 408 and is disconnected (uvicorn itself waits for ever, so one
  slow client per connection could hold the server's connections: "slowloris").
- Beyond `max_connections` open connections, a new one is answered 503 and closed.
- A connection whose request body is still arriving when the answer has been sent is closed if
  the rest does not come within `header_timeout` seconds.

`protocol_class(settings)` makes the class uvicorn is given, with those limits.
"""

from __future__ import annotations

import asyncio
import json

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

TRANSPORT_EXTENSION = "mockserver.transport"


def _error_bytes(status: int, kind: str, message: str) -> bytes:
    body = json.dumps({"error": {"message": message, "type": kind}}).encode()
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
    max_connections: int = 1000
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            transport.write(
                _error_bytes(503, "service_unavailable_error", f"Too many open connections (the limit is {self.max_connections}); try again.")
            )
            transport.close()
            return
        self._start_header_timer()

    def _start_header_timer(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _stop_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            message = f"The request's headers did not arrive within {self.header_timeout:g} s."
            self.transport.write(_error_bytes(408, "invalid_request_error", message))
            self.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.scope["extensions"] = {TRANSPORT_EXTENSION: self.transport}  # type: ignore[typeddict-unknown-key]
        self._start_header_timer()

    def on_headers_complete(self) -> None:
        self._stop_header_timer()
        super().on_headers_complete()

    _drain_timer: asyncio.TimerHandle | None = None

    def on_response_complete(self) -> None:
        # A request whose body is still coming when its answer has gone (a route that does not
        # read bodies, or an error answer): a slow sender could trickle that body for ever, each
        # byte resetting the keep-alive timer. Give the rest of the body `header_timeout` seconds
        # to arrive (a body in flight does), then close the connection.
        if self.cycle is not None and self.cycle.more_body and self._drain_timer is None:
            self._drain_timer = self.loop.call_later(self.header_timeout, self._body_too_slow)
        super().on_response_complete()

    def _body_too_slow(self) -> None:
        self._drain_timer = None
        if self.cycle is not None and self.cycle.more_body:
            self.transport.close()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        if self._drain_timer is not None:
            self._drain_timer.cancel()
            self._drain_timer = None

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_timer()
        if self._drain_timer is not None:
            self._drain_timer.cancel()
            self._drain_timer = None
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        self._stop_header_timer()
        self.transport.write(_error_bytes(400, "invalid_request_error", f"{msg.rstrip('.')}: the request is not valid HTTP/1.1."))
        self.transport.close()


def protocol_class(header_timeout: float, max_connections: int) -> type[MockHttpProtocol]:
    return type("MockHttpProtocol", (MockHttpProtocol,), {"header_timeout": header_timeout, "max_connections": max_connections})
