"""One pipelined connection to Redis, shared by every request of this process.

redis-py sends one command and waits for its reply before the connection serves another, taking
a connection from a pool for each; at the fake's request rates that costs more than the fake's
own work. Here the commands that requests issue in one turn of the event loop go out together
in one write, without waiting for the replies to earlier writes, and one reader, always
listening, hands the replies back in order (Redis answers in order). The connection itself
(TLS, AUTH, SELECT) and the reply parser (hiredis when installed) are redis-py's.

Failures never hang a request: when commands wait and nothing has come back for `timeout`
seconds (Redis stopped, network gone) the connection is dropped and every waiting request fails
with `StoreUnavailable`. A connection closed while idle (Redis's `timeout`, a proxy) is simply
opened again by the next command. When connecting fails, calls fail at once for `retry_after`
seconds, then the next one tries again. Errors Redis answers are raised, as redis-py's
`ResponseError`, in the one request that caused them.
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

from mockserver.state.base import StoreUnavailable

Outgoing = tuple[tuple[Any, ...], "asyncio.Future[Any]"]


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
        try:
            self._pool = ConnectionPool.from_url(
                url, decode_responses=True, health_check_interval=0, socket_keepalive=True
            )
        except ValueError:  # its message may quote the URL, password included
            raise ValueError(
                f"--store {display} is not a Redis URL redis-py can read (redis://[:PASSWORD@]HOST:PORT/DB)"
            ) from None
        self.display = display
        self.timeout = timeout
        self.retry_after = retry_after
        self._loop: asyncio.AbstractEventLoop | None = None
        self._down_until = 0.0
        self._problem = ""
        self._fresh()

    def _fresh(self) -> None:
        self._connection: AbstractConnection | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self._outbox: list[Outgoing] = []
        self._inflight: deque[asyncio.Future[Any]] = deque()
        self._progress = 0.0  # when a reply last came back, or the oldest waiting command went out
        self._flushing = False

    def _enqueue(self, args: tuple[Any, ...]) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new event loop (the server's, after a check at start-up)
            self._loop = loop
            self._fresh()
        future: asyncio.Future[Any] = loop.create_future()
        if self._down_until and time.monotonic() < self._down_until:
            future.set_exception(self._unavailable())
        else:
            self._outbox.append((args, future))
        return future

    def _unavailable(self) -> StoreUnavailable:
        return StoreUnavailable(f"Redis at {self.display} {self._problem}")

    async def call(self, *args: Any) -> Any:
        """Send one command (in one write with those of other requests) and return its reply."""
        future = self._enqueue(args)
        if not self._flushing and not future.done():
            self._flushing = True
            asyncio.get_running_loop().call_soon(self._flush)
        return await future

    def send(self, *args: Any) -> asyncio.Future[Any]:
        """Send one command now, in this turn of the event loop (with whatever else waits to go),
        and return the future of its reply without waiting for it."""
        future = self._enqueue(args)
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
        try:
            writer = connection._writer  # redis-py's StreamWriter, written without waiting, as a pipeline does
            if writer is None or writer.is_closing():
                raise ConnectionError("the connection closed")
            writer.write(b"".join([pack(args) for args, _ in batch]))
        except Exception as exc:  # noqa: BLE001 - nothing in this batch may be left waiting
            self._outbox = batch + self._outbox
            self._drop(connection, exc)
            return
        if not self._inflight:
            self._progress = time.monotonic()
        self._inflight.extend(future for _, future in batch)
        if self._watchdog is None:
            self._watchdog = asyncio.get_running_loop().call_later(self.timeout / 4, self._watch)

    async def _connect(self) -> None:
        connection = self._pool.make_connection()
        try:
            await asyncio.wait_for(connection.connect(), self.timeout)
        except Exception as exc:  # noqa: BLE001 - any failure to connect is the store being away
            self._connecting = None
            connection._close()
            self._fail(exc)
            self._down_until = time.monotonic() + self.retry_after  # do not hammer a Redis that is away
            return
        self._connecting = None
        self._connection = connection
        self._down_until = 0.0
        self._reader = asyncio.get_running_loop().create_task(self._read(connection))
        self._flush()

    async def _read(self, connection: AbstractConnection) -> None:
        """Hand each reply to the request that waits for it, for as long as the connection lives."""
        inflight = self._inflight
        try:
            while connection is self._connection:
                try:
                    reply: Any = await connection.read_response(timeout=math.inf)  # the watchdog keeps time
                    failed = False
                except ResponseError as error:
                    reply, failed = error, True
                self._progress = time.monotonic()
                if not inflight:
                    continue  # nothing asked for it (RESP3 push data): ignore
                future = inflight.popleft()
                if not future.done():
                    if failed:
                        future.set_exception(reply)
                    else:
                        future.set_result(reply)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - closed by Redis, or broken
            if connection is self._connection:
                self._drop(connection, exc)

    def _watch(self) -> None:
        self._watchdog = None
        if not self._inflight:
            return
        if time.monotonic() - self._progress > self.timeout and self._connection is not None:
            self._drop(self._connection, TimeoutError())
        else:
            self._watchdog = asyncio.get_running_loop().call_later(self.timeout / 4, self._watch)

    def _drop(self, connection: AbstractConnection, exc: BaseException) -> None:
        """Abandon the connection. What waited on it fails; what was not sent yet goes out on the
        next connection (a connection closed while idle fails nothing)."""
        if connection is self._connection:
            self._connection = None
        connection._close()  # its replies are out of step now
        reader, self._reader = self._reader, None
        if reader is not None and reader is not asyncio.current_task():
            reader.cancel()
        if self._inflight:
            self._fail(exc, outbox=False)
            if isinstance(exc, asyncio.TimeoutError):
                self._down_until = time.monotonic() + self.retry_after
        if self._outbox and not self._flushing:
            self._flushing = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _fail(self, exc: BaseException, outbox: bool = True) -> None:
        """Fail every request that waits for a reply (and, with `outbox`, those not sent yet)."""
        if isinstance(exc, asyncio.TimeoutError):
            self._problem = f"did not answer within {self.timeout:g} s"
        else:
            self._problem = f"is unreachable ({str(exc).strip() or type(exc).__name__})"
        error = self._unavailable()
        waiting = list(self._inflight)
        self._inflight.clear()
        if outbox:
            waiting += [future for _, future in self._outbox]
            self._outbox = []
        for future in waiting:
            if not future.done():
                future.set_exception(error)

    async def close(self) -> None:
        connection, reader, watchdog = self._connection, self._reader, self._watchdog
        self._fresh()
        if watchdog is not None:
            watchdog.cancel()
        if reader is not None:
            reader.cancel()
        if connection is not None and self._loop is asyncio.get_running_loop():
            try:
                await connection.disconnect()
            except Exception:  # noqa: BLE001, S110 - closing a connection that is already broken
                pass
        await self._pool.disconnect()
