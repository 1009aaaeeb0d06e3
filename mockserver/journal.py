"""The request journal: what clients sent and what they got, most recent first, bounded in size.

`JournalMiddleware` records every request outside `/__admin` after its answer is sent, with the
answer's status, headers and (for JSON) the first 4 KiB of its body: what the client got.
Credentials never enter the journal: the Authorization header keeps only its scheme; cookies and
every header or query parameter whose name looks like a credential (key, token, secret, auth,
password, signature, session...) read `[redacted]`; and the
API key is identified by `key_id`, a short one-way fingerprint (`key-` + 8 hex digits of SHA-256).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import re
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mockserver.intake import split_authorization

REDACTED = "[redacted]"
SECRET_NAME = re.compile(r"(?i)key|token|secret|password|passwd|auth|signature|session|credential")
SECRET_HEADERS = frozenset({"cookie", "set-cookie"})  # besides any header whose name matches SECRET_NAME
BODY_PREVIEW = 4096
TASK_KEY = "mockserver.task_id"
SCENARIO_KEY = "mockserver.scenario"
FAULT_KEY = "mockserver.fault"
NOW_KEY = "mockserver.now"  # the scenario time the store read while answering
ERROR_CODE_KEY = "mockserver.error_code"  # the code of an error answer (the metrics count refused submits by it)


@functools.lru_cache(maxsize=1024)
def key_id(api_key: str) -> str:
    return "key-" + hashlib.sha256(api_key.encode()).hexdigest()[:8]


def _redact_header(name: str, value: str) -> str:
    if name == "authorization":
        scheme, _ = split_authorization(value)
        return f"{scheme} {REDACTED}" if scheme else REDACTED
    return REDACTED


def redact_url(url: str) -> str:
    """A URL with its user information and credential-looking query parameters replaced."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED
    netloc = parts.netloc
    if "@" in netloc:  # (a URL's user part holds no brackets: they would read as an IPv6 host)
        netloc = "redacted@" + netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, _redact_query(parts.query), parts.fragment))


_URL_USER = re.compile(rb"(?<=://)[^/?#@\s\"'\\]+@")
_URL_SECRET = re.compile(
    rb"(?i)([?&][^=&\s\"'#]*(?:key|token|secret|password|passwd|auth|signature|session|credential)[^=&\s\"'#]*=)"
    rb"[^&\s\"'#\\]*"
)


def redact_body(body: bytes) -> bytes:
    """A request body with the credentials of the URLs in it replaced (a callback URL's user and
    password, a `?token=` in it, a presigned URL's signature); a plain scan when there are none."""
    if b"@" in body:
        body = _URL_USER.sub(b"redacted@", body)
    if b"?" in body:
        body = _URL_SECRET.sub(rb"\1[redacted]", body)
    return body


def redact_path(path: str) -> str:
    """A path with query string, credential-looking parameters redacted (for access logs)."""
    base, mark, query = path.partition("?")
    return base + mark + _redact_query(query) if mark else path


def _redact_query(query: str) -> str:
    if not query or not SECRET_NAME.search(query):
        return query
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode([(k, REDACTED if SECRET_NAME.search(k) else v) for k, v in pairs])


_SECRET_NAMES: dict[bytes, bool] = {}  # header name -> holds a credential (a cache: names repeat)
_AUTHORIZATIONS: dict[bytes, tuple[str | None, bytes]] = {}  # header value -> (key_id, redacted value)


def _authorization(value: bytes) -> tuple[str | None, bytes]:
    """The key fingerprint and the redacted header for an Authorization value (cached: clients
    send the same one again and again; the cache lives only in memory, like the request)."""
    known = _AUTHORIZATIONS.get(value)
    if known is None:
        text = value.decode("latin-1")
        _, credentials = split_authorization(text)
        known = (key_id(credentials) if credentials else None, _redact_header("authorization", text).encode("latin-1"))
        if len(_AUTHORIZATIONS) >= 1024:
            _AUTHORIZATIONS.clear()
        _AUTHORIZATIONS[value] = known
    return known


def _is_secret(raw_name: bytes) -> bool:
    secret = _SECRET_NAMES.get(raw_name)
    if secret is None:
        name = raw_name.decode("latin-1").lower()
        secret = name == "authorization" or name in SECRET_HEADERS or SECRET_NAME.search(name) is not None
        if len(_SECRET_NAMES) < 4096:
            _SECRET_NAMES[raw_name] = secret
    return secret


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


def _header_dict(raw: tuple[tuple[bytes, bytes], ...]) -> dict[str, str]:
    return {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in raw}


class Entry(NamedTuple):
    """One request. Recorded as the bytes that came and went (credentials already replaced), and
    decoded only when read, to keep the request path cheap."""

    id: int
    time: float
    wall_time: float  # when the request arrived (Unix seconds, real time)
    method: str
    path: str
    query: str
    raw_headers: tuple[tuple[bytes, bytes], ...]
    key_id: str | None
    raw_body: bytes
    status: int
    duration_ms: float
    task_id: str | None
    scenario: str | None
    fault: str | None
    raw_response_headers: tuple[tuple[bytes, bytes], ...]
    raw_response: bytes  # the first BODY_PREVIEW bytes of a JSON answer (b"" for other answers)
    outgoing: str | None = None  # a callback the fake sent: the receiver's URL (credentials replaced)

    @property
    def headers(self) -> dict[str, str]:
        return _header_dict(self.raw_headers)

    @property
    def body(self) -> str:
        return _text(self.raw_body)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "time": self.time,
            "wall_time": self.wall_time,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": self.headers,
            "key_id": self.key_id,
            "body": self.body,
            "status": self.status,
            "duration_ms": self.duration_ms,
            "task_id": self.task_id,
            "scenario": self.scenario,
            "fault": self.fault,
            "response_headers": _header_dict(self.raw_response_headers),
            "response": _text(self.raw_response),
            "outgoing": self.outgoing,
        }


def exchange(
    now: float,
    scope: Scope,
    body: bytes,
    status: int,
    elapsed: float,
    arrived: float,
    answer_headers: tuple[tuple[bytes, bytes], ...],
    answer: bytes,
) -> tuple[Any, ...]:
    """The journal fields (those of `Entry` after `id`) of one request and its answer (`elapsed`:
    seconds it took), with credentials replaced on the way in."""
    key = None
    headers = []
    secret_names = _SECRET_NAMES
    for name, value in scope["headers"]:
        secret = secret_names.get(name)
        if secret is None:
            secret = _is_secret(name)
        if secret:
            if name == b"authorization":
                key, value = _authorization(value)
            else:
                value = REDACTED.encode()
        headers.append((name, value))
    query = scope.get("query_string", b"")
    return (
        now,
        arrived,
        scope["method"],
        scope["path"],
        _redact_query(query.decode("latin-1")) if query else "",
        tuple(headers),
        key,
        redact_body(body) if body else body,
        status,
        round(elapsed * 1000, 3),
        scope.get(TASK_KEY),
        scope.get(SCENARIO_KEY),
        scope.get(FAULT_KEY),
        answer_headers,
        answer,
    )


def select(
    entries: Iterable[Entry],
    method: str | None = None,
    path: str | None = None,
    task_id: str | None = None,
    status: int | None = None,
    direction: str | None = None,
) -> list[Entry]:
    """Entries matching every filter given, in the order given. `path` matches exactly, or as a
    prefix when it ends with `*` (`/v1/tasks/*`); `direction` is `incoming` (requests clients
    sent) or `outgoing` (callbacks the fake sent)."""
    method = method.upper() if method else None
    outgoing = None if direction is None else direction == "outgoing"
    prefix = path[:-1] if path and path.endswith("*") else None
    return [
        entry
        for entry in entries
        if (method is None or entry.method == method)
        and (path is None or (entry.path.startswith(prefix) if prefix is not None else entry.path == path))
        and (task_id is None or entry.task_id == task_id)
        and (status is None or entry.status == status)
        and (outgoing is None or (entry.outgoing is not None) == outgoing)
    ]


class Journal:
    """The journal of one process (the memory store's): a bounded deque of plain tuples."""

    def __init__(self, size: int) -> None:
        self._entries: deque[tuple[Any, ...]] = deque(maxlen=size)  # Entry fields, as plain tuples
        self._ids = itertools.count(1)
        self.size = size
        self.recorded = 0  # every request ever recorded, including those the bound has dropped
        self.cleared = 0  # entries emptied by clear()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def dropped(self) -> int:
        """Entries the bound pushed out."""
        return self.recorded - self.cleared - len(self._entries)

    def record(self, *fields: Any) -> None:
        """Append an entry; `fields` are those of `Entry` after `id`, in order."""
        self._entries.append((next(self._ids), *fields))  # a plain tuple: the cheapest record to make
        self.recorded += 1

    def entries(self, limit: int | None = None) -> list[Entry]:
        """Most recent first (the newest `limit` only, if given)."""
        snapshot = list(self._entries)  # one step: another thread may be appending meanwhile
        newest = reversed(snapshot) if limit is None else reversed(snapshot[-limit:] if limit else [])
        return [Entry(*fields) for fields in newest]  # a callback's entry has one field more

    def select(
        self, method: str | None = None, path: str | None = None, task_id: str | None = None, status: int | None = None
    ) -> list[Entry]:
        """Entries matching every filter given, most recent first."""
        return select(self.entries(), method, path, task_id, status)

    def clear(self) -> None:
        self.cleared += len(self._entries)
        self._entries.clear()


class Capture:
    """Wraps an ASGI `send`, keeping what the journal records of the answer."""

    __slots__ = ("answer", "headers", "keep", "send", "status")

    def __init__(self, send: Send) -> None:
        self.send = send
        self.status = 0  # stays 0 when no answer was sent (a connection fault)
        self.headers: tuple[tuple[bytes, bytes], ...] = ()
        self.answer = bytearray()
        self.keep = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = tuple(message.get("headers", ()))
            self.keep = any(n == b"content-type" and v.startswith(b"application/json") for n, v in self.headers)
        elif self.keep and message["type"] == "http.response.body" and len(self.answer) < BODY_PREVIEW:
            self.answer.extend(message.get("body", b"")[: BODY_PREVIEW - len(self.answer)])
        await self.send(message)


class JournalMiddleware:
    """Record each non-admin request in the journal once its answer has been sent (the provider's
    hot routes record themselves: see `mockserver.app.MockApp`). `record` takes the `Entry`
    fields after `id`; `now` gives the scenario time to stamp them with."""

    def __init__(
        self, app: ASGIApp, record: Callable[..., None], now: Callable[[], float], prefix: str = "/__admin"
    ) -> None:
        self.app, self.record, self.now, self.prefix = app, record, now, prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        arrived = time.time()
        body = bytearray()
        capture = Capture(send)

        async def receive_and_keep() -> Message:
            message = await receive()
            if message["type"] == "http.request" and len(body) < BODY_PREVIEW:
                body.extend(message.get("body", b"")[: BODY_PREVIEW - len(body)])
            return message

        try:
            await self.app(scope, receive_and_keep, capture)
        except BaseException:
            capture.status = capture.status or 500
            raise
        finally:
            now = scope.get(NOW_KEY)
            self.record(
                *exchange(
                    self.now() if now is None else now,
                    scope,
                    bytes(body),
                    capture.status,
                    time.perf_counter() - started,
                    arrived,
                    capture.headers,
                    bytes(capture.answer),
                )
            )
