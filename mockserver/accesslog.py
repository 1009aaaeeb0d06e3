"""The access log: one line per request, as uvicorn writes it, at a fraction of its cost.

uvicorn's access log goes through `logging` for every request (a record, a formatter copying
it, a lock) and flushes its stream after every line: one write per request, which halved the
fake's throughput. Here a line is one `%` on a prebuilt format, appended to a list; every 50 ms
(or every 512 lines) the lines go to a writer thread in one piece, and the thread writes them to
standard output, so a slow reader (a container runtime's pipe) never blocks the event loop.
Writes are cut at line ends into pieces of at most 4 KiB, which a pipe takes whole, so the lines
of several workers never interleave. Query strings are redacted as in the journal.

    INFO:     127.0.0.1:57274 - "POST /v1/videos/generations HTTP/1.1" 200 OK

If the writer falls behind by more than `BACKLOG` pieces, lines are dropped and counted; the
count is written as soon as the writer catches up.
"""

from __future__ import annotations

import asyncio
import http
import queue
import re
import sys
import threading
from typing import IO, Any
from urllib.parse import quote

from mockserver.journal import redact_path

FLUSH_SECONDS = 0.05
FLUSH_LINES = 512
PIECE = 4096  # bytes a pipe writes whole (PIPE_BUF)
BACKLOG = 1000  # pieces waiting for the writer before lines are dropped
_PHRASES = {status.value: status.phrase for status in http.HTTPStatus}
_PLAIN = re.compile(r"[A-Za-z0-9_.~/-]*").fullmatch  # a path that quote() would leave as it is


class AccessLog:
    def __init__(self, stream: IO[str] | None = None) -> None:
        self._stream = stream or sys.stdout
        self._lines: list[str] = []
        self._timer: asyncio.TimerHandle | None = None
        self._queue: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._dropped = 0
        self._format = 'INFO:     %s - "%s %s HTTP/%s" %d %s\n'

    def __call__(self, scope: Any, status: int) -> None:
        """Log one answered request (status 0: nothing was answered, nothing is logged)."""
        if not status:
            return
        client = scope.get("client")
        path = scope["path"]
        if not _PLAIN(path):
            path = quote(path)
        query = scope.get("query_string")
        if query:
            path = redact_path(f"{path}?{query.decode('latin-1')}")
        self._lines.append(
            self._format
            % (
                "%s:%d" % client if client else "-",
                scope["method"],
                path,
                scope.get("http_version", "1.1"),
                status,
                _PHRASES.get(status, ""),
            )
        )
        if len(self._lines) >= FLUSH_LINES:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(FLUSH_SECONDS, self.flush)

    def flush(self) -> None:
        """Hand the lines gathered so far to the writer thread."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._lines:
            return
        lines, self._lines = self._lines, []
        if self._thread is None:
            self._thread = threading.Thread(target=self._write, name="mockserver-access-log", daemon=True)
            self._thread.start()
        if self._queue.qsize() >= BACKLOG:
            self._dropped += len(lines)
            return
        if self._dropped:
            lines.insert(0, f"WARNING:  {self._dropped} access log lines were dropped: the log's reader fell behind\n")
            self._dropped = 0
        piece: list[str] = []
        size = 0
        for line in lines:
            if size + len(line) > PIECE and piece:
                self._queue.put("".join(piece))
                piece, size = [], 0
            piece.append(line)
            size += len(line)
        self._queue.put("".join(piece))

    def _write(self) -> None:
        while (text := self._queue.get()) is not None:
            try:
                self._stream.write(text)
                self._stream.flush()
            except (OSError, ValueError):  # the reader went away: nothing to log to
                pass

    def close(self) -> None:
        """Write what is left and stop the writer thread."""
        self.flush()
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=5)
            self._thread = None
