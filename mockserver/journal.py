"""The request journal: what clients sent and what they got, most recent first, bounded in size.

`JournalMiddleware` records every request outside `/__admin` after its answer is sent, with the
answer's status, headers and (for JSON) the first 4 KiB of its body: what the client got.
Credentials never enter the journal: the Authorization header keeps only its scheme; cookies and
every header or query parameter whose name looks like a credential (key, token, secret, auth,
password, signature, session...) read `[redacted]`; and the
API key is identified by `key_id`, a short one-way fingerprint (`key-` + 8 hex digits of SHA-256).
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import re
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mockserver.intake import split_authorization

REDACTED = "[redacted]"
SECRET_NAME = re.compile(r"(?i)key|token|secret|password|passwd|auth|signature|session|credential")
SECRET_HEADERS = frozenset({"cookie", "set-cookie"})  # besides any header whose name matches SECRET_NAME
BODY_PREVIEW = 4096
TASK_KEY = "mockserver.task_id"
SCENARIO_KEY = "mockserver.scenario"
FAULT_KEY = "mockserver.fault"


def key_id(api_key: str) -> str:
    return "key-" + hashlib.sha256(api_key.encode()).hexdigest()[:8]


def _redact_header(name: str, value: str) -> str:
    if name == "authorization":
        scheme, _ = split_authorization(value)
        return f"{scheme} {REDACTED}" if scheme else REDACTED
    return REDACTED


def redact_path(path: str) -> str:
    """A path with query string, credential-looking parameters redacted (for access logs)."""
    base, mark, query = path.partition("?")
    return base + mark + _redact_query(query) if mark else path


def _redact_query(query: str) -> str:
    if not query or not SECRET_NAME.search(query):
        return query
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode([(k, REDACTED if SECRET_NAME.search(k) else v) for k, v in pairs])


@dataclass(frozen=True, slots=True)
class Entry:
    id: int
    time: float
    wall_time: float  # when the request arrived (Unix seconds, real time)
    method: str
    path: str
    query: str
    headers: dict[str, str]
    key_id: str | None
    body: str
    status: int
    duration_ms: float
    task_id: str | None
    scenario: str | None
    fault: str | None
    response_headers: dict[str, str]
    response: str  # the first BODY_PREVIEW bytes of a JSON answer ("" for other answers)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Journal:
    def __init__(self, size: int) -> None:
        self._entries: deque[Entry] = deque(maxlen=size)
        self._ids = itertools.count(1)
        self.size = size

    def __len__(self) -> int:
        return len(self._entries)

    def record(self, **fields: Any) -> None:
        self._entries.append(Entry(id=next(self._ids), **fields))

    def entries(self) -> Iterable[Entry]:
        """Most recent first."""
        return reversed(list(self._entries))

    def select(
        self, method: str | None = None, path: str | None = None, task_id: str | None = None, status: int | None = None
    ) -> list[Entry]:
        """Entries matching every filter given, most recent first. `path` matches exactly, or as a
        prefix when it ends with `*` (`/v1/tasks/*`)."""
        method = method.upper() if method else None
        prefix = path[:-1] if path and path.endswith("*") else None
        return [
            entry
            for entry in self.entries()
            if (method is None or entry.method == method)
            and (path is None or (entry.path.startswith(prefix) if prefix is not None else entry.path == path))
            and (task_id is None or entry.task_id == task_id)
            and (status is None or entry.status == status)
        ]

    def clear(self) -> None:
        self._entries.clear()


class RedactAccessLog(logging.Filter):
    """uvicorn's access log prints the query string: redact credentials there as the journal does."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redact_path(args[2]), *args[3:])
        return True


class JournalMiddleware:
    """Record each non-admin request in the journal once its answer has been sent."""

    def __init__(self, app: ASGIApp, journal: Journal, now: Callable[[], float], prefix: str = "/__admin") -> None:
        self.app, self.journal, self.now, self.prefix = app, journal, now, prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        arrived = time.time()
        body = bytearray()
        answer = bytearray()
        status = 0  # stays 0 when no answer was sent (a connection fault)
        answer_headers: dict[str, str] = {}

        async def receive_and_keep() -> Message:
            message = await receive()
            if message["type"] == "http.request" and len(body) < BODY_PREVIEW:
                body.extend(message.get("body", b"")[: BODY_PREVIEW - len(body)])
            return message

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                for raw_name, raw_value in message.get("headers", []):
                    answer_headers[raw_name.decode("latin-1").lower()] = raw_value.decode("latin-1")
            elif message["type"] == "http.response.body" and len(answer) < BODY_PREVIEW:
                if answer_headers.get("content-type", "").startswith("application/json"):
                    answer.extend(message.get("body", b"")[: BODY_PREVIEW - len(answer)])
            await send(message)

        try:
            await self.app(scope, receive_and_keep, send_and_note)
        except BaseException:
            status = status or 500
            raise
        finally:
            self._record(scope, bytes(body), status, started, arrived, answer_headers, bytes(answer))

    def _record(
        self,
        scope: Scope,
        body: bytes,
        status: int,
        started: float,
        arrived: float,
        answer_headers: dict[str, str],
        answer: bytes,
    ) -> None:
        headers: dict[str, str] = {}
        key = None
        for raw_name, raw_value in scope["headers"]:
            name = raw_name.decode("latin-1").lower()
            value = raw_value.decode("latin-1")
            if name == "authorization":
                _, credentials = split_authorization(value)
                key = key_id(credentials) if credentials else None
            secret = name in SECRET_HEADERS or SECRET_NAME.search(name) is not None
            headers[name] = _redact_header(name, value) if secret else value
        self.journal.record(
            time=self.now(),
            wall_time=arrived,
            method=scope["method"],
            path=scope["path"],
            query=_redact_query(scope.get("query_string", b"").decode("latin-1")),
            headers=headers,
            key_id=key,
            body=body.decode("utf-8", errors="replace"),
            status=status,
            duration_ms=round((time.perf_counter() - started) * 1000, 3),
            task_id=scope.get(TASK_KEY),
            scenario=scope.get(SCENARIO_KEY),
            fault=scope.get(FAULT_KEY),
            response_headers=answer_headers,
            response=answer.decode("utf-8", errors="replace"),
        )
