"""A request as the provider API reads it, taken from the ASGI scope in one pass.

The provider routes are the hot path of the fake: they read a few headers, the query string and
the body, and nothing else. `Incoming` gives them exactly that, without building Starlette's
Request, Headers and URL objects on every request. It serves both the Starlette routes and the
fast path in front of them (`mockserver.app`).
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.types import Receive, Scope

from mockserver.errors import ApiError


class Incoming:
    __slots__ = ("_headers", "method", "path", "raw_body", "receive", "scope", "task_id")

    def __init__(self, scope: Scope, receive: Receive, task_id: str | None = None) -> None:
        self.scope = scope
        self.receive = receive
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.task_id = task_id
        self.raw_body = b""  # what body() read, for the journal
        self._headers: dict[bytes, bytes] = dict(scope["headers"])  # ASGI names are lowercase

    def header(self, name: bytes) -> str | None:
        value = self._headers.get(name)
        return value.decode("latin-1") if value is not None else None

    @property
    def query_string(self) -> bytes:
        return self.scope.get("query_string", b"")

    def query_params(self) -> dict[str, str]:
        return dict(parse_qsl(self.query_string.decode("latin-1"), keep_blank_values=True))

    @property
    def base_url(self) -> str:
        """Scheme, host and root path the client used, as Starlette's `request.base_url` reads them."""
        host = self.header(b"host")
        if host is None:
            server = self.scope.get("server") or ("localhost", None)
            host = server[0] if server[1] in (None, 80, 443) else f"{server[0]}:{server[1]}"
        return f"{self.scope.get('scheme', 'http')}://{host}{self.scope.get('root_path', '')}"

    async def body(self, limit: int) -> bytes:
        """The whole body, refused with 413 once it is over `limit` bytes. (A body that comes too
        slowly is cut off by the protocol: `mockserver.protocol`.)"""
        chunks = bytearray()
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise ApiError(400, "The client went away before the request body was complete.")
            chunks += message.get("body", b"")
            if len(chunks) > limit:
                self.raw_body = bytes(chunks[:4096])
                raise ApiError(413, f"The request body is over {limit} bytes; the limit is {limit} bytes.")
            if not message.get("more_body", False):
                self.raw_body = bytes(chunks)
                return self.raw_body
