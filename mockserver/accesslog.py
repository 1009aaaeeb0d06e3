"""The access log: one line per request, as uvicorn writes it, at a fraction of its cost.

uvicorn's access log goes through `logging` for every request (a record, a formatter copying
it, a lock) and flushes its stream after every line: one write per request, which halved the
fake's throughput. Here a line is one `%` on a prebuilt format, appended to a list, and every
50 ms (or every 512 lines) the lines are written to standard output in a few large writes, from
the event loop, without ever blocking it: a write goes out only when the descriptor can take it
whole (poll), and what a slow reader (a container runtime's pipe) cannot take yet waits for the
next turn. Writes to a pipe are cut at line ends into pieces of at most 4 KiB, which a pipe takes
whole, so the lines of several workers never interleave. Query strings are redacted as in the
journal.

    INFO:     127.0.0.1:57274 - "POST /v1/videos/generations HTTP/1.1" 200 OK

If the reader falls behind by more than `BACKLOG` bytes, lines are dropped and counted; the count
is written as soon as the reader catches up.
"""

from __future__ import annotations

import asyncio
import http
import os
import re
import select
import stat
import sys
import time
from typing import IO, Any
from urllib.parse import quote

from mockserver.journal import redact_path

FLUSH_SECONDS = 0.05
FLUSH_LINES = 512
PIPE_PIECE = 4096  # bytes a pipe writes whole (PIPE_BUF)
FILE_PIECE = 65536
BACKLOG = 4 * 1024 * 1024  # bytes waiting for a slow reader before lines are dropped
_PLAIN = re.compile(r"[A-Za-z0-9_.~/-]*").fullmatch  # a path that quote() would leave as it is
_TAILS = {status.value: f'" {status.value} {status.phrase}\n' for status in http.HTTPStatus}  # a line's end, by status
_VERSIONS = {version: f" HTTP/{version}" for version in ("1.0", "1.1")}


class AccessLog:
    def __init__(self, stream: IO[str] | None = None) -> None:
        self._stream = stream or sys.stdout
        self._fd: int | None = None
        self._piece = PIPE_PIECE
        self._lines: list[str] = []
        self._waiting: list[bytes] = []  # pieces the reader could not take yet
        self._waiting_bytes = 0
        self._timer: asyncio.TimerHandle | None = None
        self._dropped = 0  # dropped since the last warning
        self.dropped = 0  # dropped in all (the metrics)
        self._heads: dict[Any, str] = {}

    def __call__(self, scope: Any, status: int) -> None:
        """Log one answered request (status 0: nothing was answered, nothing is logged)."""
        if not status:
            return
        client = scope.get("client")
        head = self._heads.get(client)
        if head is None:
            head = self._head(client)
        path = scope["path"]
        if not _PLAIN(path):
            path = quote(path)
        query = scope.get("query_string")
        if query:
            path = redact_path(f"{path}?{query.decode('latin-1')}")
        tail = _TAILS.get(status) or f'" {status}\n'
        lines = self._lines
        lines.append(head + scope["method"] + " " + path + _VERSIONS.get(scope.get("http_version"), " HTTP/1.1") + tail)
        if len(lines) >= FLUSH_LINES:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(FLUSH_SECONDS, self.flush)

    def _head(self, client: Any) -> str:
        """The start of a line for one client address (cached: a connection sends many requests)."""
        head = f'INFO:     {f"{client[0]}:{client[1]}" if client else "-"} - "'
        if len(self._heads) >= 4096:
            self._heads.clear()
        self._heads[client] = head
        return head

    def _descriptor(self) -> int | None:
        if self._fd is None:
            try:
                self._stream.flush()
                self._fd = self._stream.fileno()
                self._piece = PIPE_PIECE if stat.S_ISFIFO(os.fstat(self._fd).st_mode) else FILE_PIECE
            except (OSError, ValueError, AttributeError):
                return None
        return self._fd

    def flush(self) -> None:
        """Write what the reader can take now; keep the rest for the next turn."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        fd = self._descriptor()
        lines, self._lines = self._lines, []
        if self._dropped and self._waiting_bytes == 0:
            lines.insert(0, f"WARNING:  {self._dropped} access log lines were dropped: the log's reader fell behind\n")
            self._dropped = 0
        if lines:
            if self._waiting_bytes > BACKLOG:
                self._dropped += len(lines)
                self.dropped += len(lines)
            else:
                self._queue(lines)
        if fd is None:
            self._waiting.clear()
            self._waiting_bytes = 0
            return
        try:
            while self._waiting and select.select([], [fd], [], 0)[1]:
                piece = self._waiting.pop(0)
                written = os.write(fd, piece)
                self._waiting_bytes -= written
                if written < len(piece):  # a file or terminal took part of it: the rest goes next
                    self._waiting.insert(0, piece[written:])
                    break
        except OSError:  # the reader went away: nothing to log to
            self._waiting.clear()
            self._waiting_bytes = 0
            return
        if self._waiting and self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(FLUSH_SECONDS, self.flush)

    def _queue(self, lines: list[str]) -> None:
        piece: list[str] = []
        size = 0
        for line in lines:
            if size + len(line) > self._piece and piece:
                self._add("".join(piece))
                piece, size = [], 0
            piece.append(line)
            size += len(line)
        self._add("".join(piece))

    def _add(self, text: str) -> None:
        data = text.encode("utf-8", "replace")
        self._waiting.append(data)
        self._waiting_bytes += len(data)

    def close(self) -> None:
        """Write what is left, waiting for the reader for at most a second."""
        self.flush()
        fd = self._descriptor()
        if fd is None:
            return
        deadline = time.monotonic() + 1.0
        try:
            for piece in self._waiting:
                if not select.select([], [fd], [], max(0.0, deadline - time.monotonic()))[1]:
                    break
                os.write(fd, piece)
        except OSError:
            pass
        self._waiting.clear()
