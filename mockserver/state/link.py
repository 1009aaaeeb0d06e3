"""One pipelined connection to Redis, shared by every request of this process.

redis-py sends one command and waits for its reply before the connection serves another, taking
a connection from a pool for each; at the fake's request rates that costs more than the fake's
own work. Here the commands that requests issue in one turn of the event loop go out together
in one write, without waiting for the replies to earlier writes, and one reader hands the
replies back in order (Redis answers in order). The connection itself (TLS, AUTH, SELECT) and
the reply parser (hiredis when installed) are redis-py's.

Failures never hang a request: when the oldest command has waited `timeout` seconds (Redis
stopped, network gone) the connection is dropped and every waiting request fails with
`StoreUnavailable`; after a failure, calls fail at once for `retry_after` seconds, then the next
one connects again. Errors Redis answers (a script error, NOSCRIPT) are raised in the one
request that caused them.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from typing import Any

from redis.asyncio import ConnectionPool
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ResponseError

from mockserver.state import StoreUnavailable

Waiting = tuple[asyncio.Future[Any], float]  # a request's future, and when its command was sent


def _bytes(arg: Any) -> bytes:
    if isinstance(arg, bytes):
        return arg
    if isinstance(arg, str):
        return arg.encode()
    return str(arg).encode()  # int, float (repr: exact)


def pack(args: tuple[Any, ...]) -> bytes:
    """One command in the Redis protocol (RESP), as redis-py's packer makes it, for the few
    argument types the store sends, at a fraction of its cost."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        raw = _bytes(arg)
        parts.append(b"$%d\r\n%b\r\n" % (len(raw), raw))
    return b"".join(parts)


class Link:
    def __init__(self, url: str, display: str, timeout: float = 1.5, retry_after: float = 0.25) -> None:
        self._pool = ConnectionPool.from_url(url, decode_responses=True, health_check_interval=0)
        self.display = display
        self.timeout = timeout
        self.retry_after = retry_after
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reset_loop_state()
        self._down_until = 0.0
        self._problem = ""

    def _reset_loop_state(self) -> None:
        self._connection: AbstractConnection | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self._outbox: list[tuple[tuple[Any, ...], asyncio.Future[Any]]] = []
        self._inflight: deque[Waiting] = deque()
        self._flushing = False

    def _unavailable(self) -> StoreUnavailable:
        return StoreUnavailable(f"Redis at {self.display} {self._problem}")

    async def call(self, *args: Any) -> Any:
        """Send one command (in one write with those of other requests) and return its reply."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new event loop (the server's, after a check at start-up)
            self._loop = loop
            self._reset_loop_state()
        if self._down_until and time.monotonic() < self._down_until:
            raise self._unavailable()
        future: asyncio.Future[Any] = loop.create_future()
        self._outbox.append((args, future))
        if not self._flushing:
            self._flushing = True
            loop.call_soon(self._flush)
        return await future

    def send(self, *args: Any) -> asyncio.Future[Any]:
        """Send one command now, in this turn of the event loop (with whatever else waits to go),
        and return the future of its reply without waiting for it."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop = loop
            self._reset_loop_state()
        future: asyncio.Future[Any] = loop.create_future()
        if self._down_until and time.monotonic() < self._down_until:
            future.set_exception(self._unavailable())
            return future
        self._outbox.append((args, future))
        self._flush()
        return future

    def _flush(self) -> None:
        self._flushing = False
        if not self._outbox:
            return
        connection = self._connection
        if connection is None:
            if self._connecting is None:
                self._connecting = asyncio.get_running_loop().create_task(self._connect())
            return  # sent once connected
        batch, self._outbox = self._outbox, []
        writer = connection._writer  # redis-py's StreamWriter: written without waiting, as a pipeline does
        if writer is None:
            self._broken(ConnectionError("the connection closed"), batch)
            return
        writer.write(b"".join([pack(args) for args, _ in batch]))
        sent = time.monotonic()
        self._inflight.extend((future, sent) for _, future in batch)
        if self._reader is None:
            self._reader = asyncio.get_running_loop().create_task(self._read(connection))
        if self._watchdog is None:
            self._watchdog = asyncio.get_running_loop().call_later(self.timeout / 4, self._watch)

    async def _connect(self) -> None:
        connection = self._pool.make_connection()
        try:
            await asyncio.wait_for(connection.connect(), self.timeout)
        except BaseException as exc:  # noqa: BLE001 - any failure to connect is the store being away
            self._connecting = None
            connection._close()  # type: ignore[attr-defined]
            self._broken(exc, [])
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        self._connecting = None
        self._connection = connection
        self._down_until = 0.0
        self._flush()

    async def _read(self, connection: AbstractConnection) -> None:
        inflight = self._inflight
        try:
            while inflight and connection is self._connection:
                try:
                    reply: Any = await connection.read_response(timeout=math.inf)  # the watchdog keeps time
                    failed = False
                except ResponseError as error:
                    reply, failed = error, True
                future, _ = inflight.popleft()
                if not future.done():
                    if failed:
                        future.set_exception(reply)
                    else:
                        future.set_result(reply)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a broken connection fails what waits on it
            if connection is self._connection:
                self._broken(exc, [])
        finally:
            if self._reader is asyncio.current_task():
                self._reader = None

    def _watch(self) -> None:
        self._watchdog = None
        if not self._inflight:
            return
        if time.monotonic() - self._inflight[0][1] > self.timeout:
            self._broken(asyncio.TimeoutError(), [])
        else:
            self._watchdog = asyncio.get_running_loop().call_later(self.timeout / 4, self._watch)

    def _broken(self, exc: BaseException, batch: list[tuple[tuple[Any, ...], asyncio.Future[Any]]]) -> None:
        """Drop the connection; fail every request that waits on it, or was about to be sent."""
        connection, self._connection = self._connection, None
        if connection is not None:
            connection._close()  # type: ignore[attr-defined] # abandon it: its replies are out of step
        reader, self._reader = self._reader, None
        if reader is not None and reader is not asyncio.current_task():
            reader.cancel()
        if isinstance(exc, (asyncio.TimeoutError, asyncio.CancelledError)):
            self._problem = f"did not answer within {self.timeout:g} s"
        else:
            self._problem = f"is unreachable ({str(exc).strip() or type(exc).__name__})"
        self._down_until = time.monotonic() + self.retry_after
        error = self._unavailable()
        waiting = [future for future, _ in self._inflight] + [future for _, future in [*batch, *self._outbox]]
        self._inflight.clear()
        self._outbox = []
        for future in waiting:
            if not future.done():
                future.set_exception(error)

    async def close(self) -> None:
        connection = self._connection
        if self._watchdog is not None:
            self._watchdog.cancel()
        if self._reader is not None:
            self._reader.cancel()
        self._reset_loop_state()
        if connection is not None and self._loop is asyncio.get_running_loop():
            try:
                await connection.disconnect()
            except Exception:  # noqa: BLE001, S110 - closing a connection that is already broken
                pass
        await self._pool.disconnect()
