"""What a request must carry before the contract is even consulted: a bearer key and a JSON body.

Each function raises `ApiError` in the provider's shape: 401 for a missing or malformed
Authorization header; 400 for a wrong Content-Type, a body that is not UTF-8 or not JSON; 413 for
a body over the limit (checked against Content-Length before reading, and while reading).
The key itself never appears in a message.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import ClientDisconnect, Request

from mockserver.errors import ApiError

BEARER_HINT = "Send 'Authorization: Bearer <API key>'."


def bearer_key(request: Request) -> str:
    header = request.headers.get("authorization")
    if not header:
        raise ApiError(401, f"Missing Authorization header. {BEARER_HINT}", code="missing_api_key")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise ApiError(
            401,
            f"The Authorization header is not a bearer token (scheme {scheme[:20]!r}). {BEARER_HINT}",
            code="invalid_api_key",
        )
    return key.strip()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _check_content_type(request: Request) -> None:
    content_type = request.headers.get("content-type")
    if content_type is None:
        raise ApiError(400, "Missing Content-Type header; send the body as JSON with 'Content-Type: application/json'.")
    media_type, _, parameters = content_type.partition(";")
    if media_type.strip().lower() != "application/json":
        raise ApiError(400, f"Unsupported Content-Type {content_type[:80]!r}; expected 'application/json'.")
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise ApiError(400, f"Unsupported charset {value.strip()[:40]!r}; the body must be UTF-8 JSON.")


def _too_large(size: str, limit: int) -> ApiError:
    return ApiError(413, f"The request body is {size} bytes; the limit is {limit} bytes.")


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refused with 413 once it is over `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise ApiError(400, f"Content-Length {declared[:40]!r} is not a number of bytes.")
        if int(declared) > limit:
            raise _too_large(declared, limit)
    raw = bytearray()
    try:
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > limit:
                raise _too_large(f"over {limit}", limit)
    except ClientDisconnect:
        raise ApiError(400, "The client went away before the request body was complete.") from None
    return bytes(raw)


def parse_json(raw: bytes) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(400, f"The request body is not valid UTF-8 (bad byte at offset {exc.start}).") from None
    if not text.strip():
        raise ApiError(400, "The request body is empty; expected a JSON object.")
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise ApiError(
            400, f"The request body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}."
        ) from None
    except ValueError as exc:
        raise ApiError(400, f"The request body is not valid JSON: {exc}.") from None
    except RecursionError:
        raise ApiError(400, "The request body is nested too deeply to be a request.") from None


async def read_json(request: Request, limit: int) -> Any:
    """The parsed JSON body of a request that must send one with `Content-Type: application/json`."""
    _check_content_type(request)
    return parse_json(await read_body(request, limit))
