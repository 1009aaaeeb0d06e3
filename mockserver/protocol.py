"""The HTTP protocol the fake runs under uvicorn: uvicorn's httptools protocol, with two changes.

- Each request's scope carries the connection's transport (`TRANSPORT_EXTENSION`), which the
  connection-level faults of `mockserver.faults` need (reset, empty, truncated).
- A request too broken to reach the application (an unknown method, a malformed request line, a
  Content-Length that does not match) still gets the provider's error shape, not plain text.
"""

from __future__ import annotations

import json

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

TRANSPORT_EXTENSION = "mockserver.transport"


class MockHttpProtocol(HttpToolsProtocol):
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.scope["extensions"] = {TRANSPORT_EXTENSION: self.transport}  # type: ignore[typeddict-unknown-key]

    def send_400_response(self, msg: str) -> None:
        body = json.dumps(
            {"error": {"message": f"{msg.rstrip('.')}: the request is not valid HTTP/1.1.", "type": "invalid_request_error"}}
        ).encode()
        head = [STATUS_LINE[400]]
        for name, value in self.server_state.default_headers:
            head.extend([name, b": ", value, b"\r\n"])
        head.extend(
            [
                b"content-type: application/json\r\n",
                b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
                b"connection: close\r\n",
                b"\r\n",
                body,
            ]
        )
        self.transport.write(b"".join(head))
        self.transport.close()
