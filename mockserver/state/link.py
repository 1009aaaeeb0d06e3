"""One connection to Redis, shared by every request of this process, on which the commands that
arrive while the previous batch is in flight go out together (one write, one read loop).

redis-py sends one command per round trip and takes a connection from a pool for each; at the
fake's request rates that cost more than the fake's own work. Here the commands of concurrent
requests are packed with redis-py's own encoder into one write and their replies read back in
order with its parser (hiredis when installed): a request still waits for one round trip, but
the process pays for far fewer.

Failures never hang a request: a batch that takes longer than `timeout` (Redis stopped, network
gone) drops the connection and fails every request in it with `StoreUnavailable`; after a
failure, new calls fail at once for `retry_after` seconds, then the next one reconnects. Errors
Redis answers (a script error, NOSCRIPT) are raised in the one request that caused them.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from redis.asyncio import ConnectionPool
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ResponseError

from mockserver.state import StoreUnavailable


class Link:
    def __init__(self, url: str, display: str, timeout: float = 1.5, retry_after: float = 0.25) -> None:
        self._pool = ConnectionPool.from_url(url, decode_responses=True, health_check_interval=0)
        self.display = display
        self.timeout = timeout
        self.retry_after = retry_after
        self._connection: AbstractConnection | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: list[tuple[tuple[Any, ...], asyncio.Future[Any]]] = []
        self._draining = False
        self._down_until = 0.0
        self._problem = ""

    def _unavailable(self, reason: str) -> StoreUnavailable:
        return StoreUnavailable(f"Redis at {self.display} {reason}")

    async def call(self, *args: Any) -> Any:
        """Send one command (with those of other requests) and return its reply."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new event loop (the server's, after a check at start-up)
            self._loop, self._connection, self._pending, self._draining = loop, None, [], False
        if self._down_until and time.monotonic() < self._down_until:
            raise self._unavailable(self._problem)
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((args, future))
        if not self._draining:
            self._draining = True
            loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                if self._down_until and time.monotonic() < self._down_until:
                    self._fail(batch, None)  # they came while Redis failed the batch before: fail them now
                    continue
                try:
                    await asyncio.wait_for(self._round_trip(batch), self.timeout)
                except (TimeoutError, OSError, ConnectionError) as exc:
                    self._fail(batch, exc)
                except Exception as exc:  # noqa: BLE001 - redis-py's ConnectionError and the like
                    self._fail(batch, exc)
        finally:
            self._draining = False

    async def _round_trip(self, batch: list[tuple[tuple[Any, ...], asyncio.Future[Any]]]) -> None:
        connection = self._connection
        if connection is None:
            connection = self._pool.make_connection()
            await connection.connect()
            self._connection = connection
        await connection.send_packed_command(connection.pack_commands([args for args, _ in batch]), check_health=False)
        for _, future in batch:
            try:
                reply = await connection.read_response()
            except ResponseError as error:
                if not future.done():
                    future.set_exception(error)
                continue
            if not future.done():
                future.set_result(reply)
        self._down_until = 0.0

    def _fail(self, batch: list[tuple[tuple[Any, ...], asyncio.Future[Any]]], exc: BaseException | None) -> None:
        if exc is not None:
            connection, self._connection = self._connection, None
            if connection is not None:
                connection._close()  # type: ignore[attr-defined] # abandon it: its replies are out of step
            if isinstance(exc, asyncio.TimeoutError):
                self._problem = f"did not answer within {self.timeout:g} s"
            else:
                reason = str(exc).strip() or type(exc).__name__
                self._problem = f"is unreachable ({reason})"
            self._down_until = time.monotonic() + self.retry_after
        error = self._unavailable(self._problem)
        for _, future in batch:
            if not future.done():
                future.set_exception(error)

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and self._loop is asyncio.get_running_loop():
            try:
                await connection.disconnect()
            except Exception:  # noqa: BLE001 - closing a broken connection
                pass
        await self._pool.disconnect()
