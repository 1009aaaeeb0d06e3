"""JSON answers, encoded with one encoder built once (Starlette's JSONResponse builds a new
`json.JSONEncoder` for every answer)."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


class JsonResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return _ENCODER.encode(content).encode("utf-8")


class JsonBytes(Response):
    """JSON already encoded (a 200 unless told otherwise), with its two headers made directly."""

    media_type = "application/json"

    def __init__(self, body: bytes, status_code: int = 200) -> None:
        self.status_code = status_code
        self.body = body
        self.background = None
        self.raw_headers = [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]

    @classmethod
    def of(cls, content: Any) -> JsonBytes:
        """`content` encoded, as `JsonResponse` would, without Starlette's header building."""
        return cls(_ENCODER.encode(content).encode("utf-8"))
