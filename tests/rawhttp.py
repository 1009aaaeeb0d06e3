"""A raw HTTP/1.1 client over a socket, to see connection faults exactly as they happen."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class Exchange:
    raw: bytes = b""
    chunks: list[bytes] = field(default_factory=list)
    error: BaseException | None = None

    @property
    def head(self) -> bytes:
        return self.raw.split(b"\r\n\r\n", 1)[0]

    @property
    def status(self) -> int | None:
        return int(self.head.split(b" ", 2)[1]) if self.raw.startswith(b"HTTP/") else None

    @property
    def body(self) -> bytes:
        return self.raw.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in self.raw else b""

    @property
    def content_length(self) -> int | None:
        for line in self.head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                return int(value)
        return None


def exchange(base_url: str, method: str, path: str, headers: dict[str, str], body: object | None = None) -> Exchange:
    """Send one request on a fresh connection (Connection: close) and read until the server closes."""
    url = urlsplit(base_url)
    payload = json.dumps(body).encode() if body is not None else b""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {url.netloc}", "Connection: close", f"Content-Length: {len(payload)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body is not None:
        lines.append("Content-Type: application/json")
    result = Exchange()
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + payload)
        try:
            while chunk := sock.recv(65536):
                result.chunks.append(chunk)
                result.raw += chunk
        except OSError as exc:
            result.error = exc
    return result


def send_whole(
    base_url: str, path: str, headers: dict[str, str], payload: bytes, *, close: bool = True, timeout: float = 30.0
) -> Exchange:
    """POST a head and its whole body before reading a byte, as urllib (and so `requests`) does, then
    read until the server ends the connection. A failure to send or to read (a reset, a broken
    pipe, a timeout because the server never ends the connection) is kept in `error`, with what
    arrived before it."""
    url = urlsplit(base_url)
    lines = [f"POST {path} HTTP/1.1", f"Host: {url.netloc}", f"Content-Length: {len(payload)}"]
    lines += ["Connection: close"] if close else []
    lines += [f"{name}: {value}" for name, value in headers.items()]
    result = Exchange()
    with socket.create_connection((url.hostname, url.port), timeout=timeout) as sock:
        try:
            sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
            sock.sendall(payload)
        except OSError as exc:
            result.error = exc
        try:
            while chunk := sock.recv(65536):
                result.chunks.append(chunk)
                result.raw += chunk
        except OSError as exc:
            result.error = result.error or exc
    return result
