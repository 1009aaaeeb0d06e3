"""What a request must carry before the contract is even consulted: a bearer key and a JSON body.

Each function raises `ApiError` in the provider's shape: 401 for a missing or malformed
Authorization header; 400 for a wrong Content-Type, a body that is not UTF-8 or not JSON; 413 for
a body over the limit (checked against Content-Length before reading, and while reading).
The key itself never appears in a message.
"""

from __future__ import annotations

import json
import re
from typing import Any

from mockserver.errors import ApiError
from mockserver.incoming import Incoming

BEARER_HINT = "Send 'Authorization: Bearer <API key>'."
_SCHEMES = frozenset({"bearer", "basic", "token", "digest", "apikey", "api-key"})
_DIGITS = re.compile(r"[0-9]+")


def split_authorization(header: str) -> tuple[str | None, str]:
    """(scheme, credentials) of an Authorization header; scheme is None unless it is a known word,
    so that a bare key sent without a scheme is never mistaken for one (and echoed)."""
    parts = header.strip().split(None, 1)
    if len(parts) == 2 and parts[0].lower() in _SCHEMES:
        return parts[0], parts[1].strip()
    return None, header.strip()


_ACCEPTED: dict[tuple[bytes, re.Pattern[str] | None], str] = {}  # Authorization header -> its key, once accepted


def bearer_key(request: Incoming, accepted: re.Pattern[str] | None = None) -> str:
    """The API key of a request; 401 unless it is a bearer token that `accepted` matches whole.
    (Clients send the same header on every request: an accepted one is remembered, in memory.)"""
    raw = request._headers.get(b"authorization")
    if raw is not None:
        known = _ACCEPTED.get((raw, accepted))
        if known is not None:
            return known
    key = _check_bearer(request.header(b"authorization"), accepted)
    if len(_ACCEPTED) >= 1024:
        _ACCEPTED.clear()
    _ACCEPTED[(raw, accepted)] = key  # type: ignore[index]
    return key


def _check_bearer(header: str | None, accepted: re.Pattern[str] | None) -> str:
    if not header:
        raise ApiError(401, f"Missing Authorization header. {BEARER_HINT}", code="missing_api_key")
    scheme, key = split_authorization(header)
    if scheme is None or scheme.lower() != "bearer" or not key:
        found = f"a {scheme} credential" if scheme else "no 'Bearer' scheme"
        raise ApiError(401, f"The Authorization header has {found}. {BEARER_HINT}", code="invalid_api_key")
    if accepted is not None and accepted.fullmatch(key) is None:
        raise ApiError(
            401,
            f"Invalid API key. This fake accepts keys matching '{accepted.pattern}' (see --api-keys).",
            code="invalid_api_key",
        )
    return key


def whole_number(text: str) -> int | None:
    """The value of a string of up to 18 ASCII digits, else None (str.isdigit also accepts '²';
    int() refuses more than 4,300 digits with a ValueError)."""
    return int(text) if len(text) <= 18 and _DIGITS.fullmatch(text) else None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)  # built once: json.loads builds one per call


_JSON_TYPES: set[bytes] = set()  # Content-Type values already found to say JSON in UTF-8


def _check_content_type(request: Incoming) -> None:
    raw = request._headers.get(b"content-type")
    if raw in _JSON_TYPES:
        return
    _check_json_type(request.header(b"content-type"))
    if len(_JSON_TYPES) < 256:
        _JSON_TYPES.add(raw)  # type: ignore[arg-type]


def _check_json_type(content_type: str | None) -> None:
    if content_type is None:
        raise ApiError(400, "Missing Content-Type header; send the body as JSON with 'Content-Type: application/json'.")
    media_type, _, parameters = content_type.partition(";")
    if media_type.strip().lower() != "application/json":
        raise ApiError(400, f"Unsupported Content-Type {content_type[:80]!r}; expected 'application/json'.")
    for parameter in parameters.split(";") if parameters else ():
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise ApiError(400, f"Unsupported charset {value.strip()[:40]!r}; the body must be UTF-8 JSON.")


def _too_large(size: str, limit: int) -> ApiError:
    return ApiError(413, f"The request body is {size} bytes; the limit is {limit} bytes.")


async def read_body(request: Incoming, limit: int) -> bytes:
    """The raw body, refused with 413 once it is over `limit` bytes."""
    declared = request.header(b"content-length")
    if declared is not None:
        size = whole_number(declared)
        if size is None:
            raise ApiError(400, f"Content-Length {declared[:40]!r} is not a number of bytes.")
        if size > limit:
            raise _too_large(declared, limit)
    return await request.body(limit)


MAX_DEPTH = 64  # levels of objects and arrays in a request body; this API's bodies have 2


def parse_json(raw: bytes) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(400, f"The request body is not valid UTF-8 (bad byte at offset {exc.start}).") from None
    if not text.strip():
        raise ApiError(400, "The request body is empty; expected a JSON object.")
    if text.startswith("\ufeff"):
        raise ApiError(400, "The request body starts with a byte order mark (BOM); send JSON without one.")
    try:
        data = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise ApiError(
            400, f"The request body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}."
        ) from None
    except ValueError as exc:
        raise ApiError(400, f"The request body is not valid JSON: {exc}.") from None
    except RecursionError:
        raise ApiError(400, "The request body is nested too deeply to be a request.") from None
    if text.count("{") + text.count("[") > MAX_DEPTH and deeper_than(data, MAX_DEPTH):
        # Python's decoder takes ~1,000 levels; the schema validator gives up well before that.
        raise ApiError(400, "The request body is nested too deeply to be a request.")
    if ("\\ud" in text or "\\uD" in text) and not encodable(data):
        raise ApiError(
            400, "The request body escapes a lone UTF-16 surrogate (like \\ud800), which is not a character."
        )
    return data


def deeper_than(value: Any, limit: int) -> bool:
    """Whether objects and arrays nest more than `limit` levels deep in a parsed JSON value."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth >= limit:
                return True
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return False


def encodable(value: Any) -> bool:
    """Whether every string in a parsed JSON value is real Unicode (JSON escapes allow lone surrogates)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return False
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True


async def read_json(request: Incoming, limit: int) -> Any:
    """The parsed JSON body of a request that must send one with `Content-Type: application/json`."""
    _check_content_type(request)
    return parse_json(await read_body(request, limit))
