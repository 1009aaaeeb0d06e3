"""Latency and connection-level faults, as a scenario scripts them.

    Delay   fixed seconds, uniform between two bounds, or a long tail (log-normal fitted to a
            median and a p99); sampled from the server's seeded random source.
    Fault   what happens to an answer on the wire:
              reset      TCP reset before any byte (SO_LINGER 0, then abort)
              empty      connection closed before any byte
              malformed  the status and headers, then a body that is not JSON
              truncated  Content-Length promises the whole body; half of it comes, then close
              slow       the answer dribbles out, `chunk_bytes` every `interval` seconds

`reset`, `empty` and `truncated` need the connection itself: the fake runs uvicorn with
`mockserver.protocol.MockHttpProtocol`, which puts the transport into the request scope. Without
it (in-process ASGI tests) they raise `FaultUnavailable` into the client instead.
"""

from __future__ import annotations

import asyncio
import math
import random
import socket
import struct
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from mockserver.protocol import TRANSPORT_EXTENSION

MAX_DELAY = 300.0
_Z99 = 2.3263478740408408  # standard normal quantile of 0.99


class FaultUnavailable(RuntimeError):
    """A connection fault was asked for where there is no connection (in-process ASGI)."""


@dataclass(frozen=True)
class Delay:
    fixed: float = 0.0
    uniform: tuple[float, float] | None = None
    lognormal: tuple[float, float] | None = None  # (mu, sigma)
    problem: str | None = None

    @classmethod
    def parse(cls, raw: Any) -> Delay:
        if isinstance(raw, (int, float)):
            return cls(fixed=float(raw))
        if "uniform" in raw:
            low, high = (float(x) for x in raw["uniform"])
            if low > high:
                return cls(problem=f"uniform bounds go low to high, got [{low}, {high}]")
            return cls(uniform=(low, high))
        median, p99 = float(raw["median"]), float(raw["p99"])
        if p99 < median:
            return cls(problem=f"p99 ({p99}) must not be below the median ({median})")
        return cls(lognormal=(math.log(median), (math.log(p99) - math.log(median)) / _Z99))

    def sample(self, rng: random.Random) -> float:
        if self.uniform is not None:
            return rng.uniform(*self.uniform)
        if self.lognormal is not None:
            return min(rng.lognormvariate(*self.lognormal), MAX_DELAY)
        return self.fixed


@dataclass(frozen=True)
class Fault:
    kind: str
    chunk_bytes: int = 16
    interval: float = 0.5

    @classmethod
    def parse(cls, raw: Any) -> Fault:
        if isinstance(raw, str):
            return cls(raw)
        return cls(raw["kind"], raw.get("chunk_bytes", 16), float(raw.get("interval", 0.5)))

    def describe(self) -> Any:
        return (
            {"kind": self.kind, "chunk_bytes": self.chunk_bytes, "interval": self.interval}
            if self.kind == "slow"
            else self.kind
        )


def _transport(scope: Scope) -> asyncio.Transport:
    transport = scope.get("extensions", {}).get(TRANSPORT_EXTENSION)
    if transport is None:
        raise FaultUnavailable("connection faults need the fake served by uvicorn (mockserver serve or LiveServer)")
    return transport


async def _until_disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


class FaultyResponse(Response):
    """Deliver `inner` (an answer already rendered) with a fault."""

    def __init__(self, inner: Response, fault: Fault) -> None:
        self.inner = inner
        self.fault = fault
        self.status_code = inner.status_code
        self.body = inner.body
        self.raw_headers = inner.raw_headers
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = self.fault.kind
        if kind in ("reset", "empty"):
            transport = _transport(scope)
            if kind == "reset":
                sock = transport.get_extra_info("socket")
                if sock is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                transport.abort()
            else:
                transport.close()
            await _until_disconnected(receive)
            return
        body = bytes(self.body)
        headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        if kind == "malformed":
            body = body[: max(len(body) // 2, 1)] + b"<!-- upstream proxy error -->"
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": self.status_code, "headers": headers})
        if kind == "truncated":
            transport = _transport(scope)
            await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
            transport.close()
            await _until_disconnected(receive)
            return
        if kind == "slow":
            step = self.fault.chunk_bytes
            for start in range(0, len(body), step):
                if start:
                    await asyncio.sleep(self.fault.interval)
                more = start + step < len(body)
                await send({"type": "http.response.body", "body": body[start : start + step], "more_body": more})
            return
        await send({"type": "http.response.body", "body": body})
