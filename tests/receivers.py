"""Callback receivers for the tests: real HTTP (and HTTPS) servers on a loopback port, each
answering as scripted, keeping every request they got; and the certificates an HTTPS one needs,
made by `openssl` (a CA of its own, and a leaf for 127.0.0.1 signed by it)."""

from __future__ import annotations

import http.server
import json
import shutil
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self


@dataclass
class Received:
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class LoopbackServer:
    """A threaded HTTP server of the tests' own, on a free port of `host`, served from `__enter__`
    to `__exit__` in a thread of its own."""

    def __init__(self, handler: type[http.server.BaseHTTPRequestHandler], host: str = "127.0.0.1") -> None:
        self.server = http.server.ThreadingHTTPServer((host, 0), handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class Receiver(LoopbackServer):
    """`answers`: what to answer each request in turn, the last one for ever after: a status
    (204, 500...), ("hang", seconds) to answer nothing for that long, or ("redirect", url)."""

    def __init__(self, *answers: Any, host: str = "127.0.0.1", tls: tuple[Path, Path] | None = None) -> None:
        self.answers = list(answers) or [204]
        self.got: list[Received] = []
        self.busy = 0  # requests being answered now
        self.most_busy = 0  # the most answered at once
        self.lock = threading.Lock()
        self.arrived = threading.Condition(self.lock)
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with receiver.arrived:
                    index = len(receiver.got)
                    receiver.got.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                    receiver.busy += 1
                    receiver.most_busy = max(receiver.most_busy, receiver.busy)
                    receiver.arrived.notify_all()
                try:
                    self._answer(receiver.answers[min(index, len(receiver.answers) - 1)])
                finally:
                    with receiver.arrived:
                        receiver.busy -= 1

            def _answer(self, answer: Any) -> None:
                if isinstance(answer, tuple) and answer[0] == "hang":
                    time.sleep(answer[1])
                    answer = 204
                if isinstance(answer, tuple) and answer[0] == "redirect":
                    self.send_response(307)
                    self.send_header("location", answer[1])
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                payload = b"ok" if 200 <= answer < 300 and answer != 204 else b"" if answer == 204 else b"nope"
                self.send_response(answer)
                if answer != 204:
                    self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload if answer != 204 else b"")

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(Handler, host)
        self.scheme = "http"
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(tls[0]), str(tls[1]))
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            self.scheme = "https"
        self.url = f"{self.scheme}://127.0.0.1:{self.port}/hooks/video"

    def wait(self, count: int, timeout: float = 10.0) -> list[Received]:
        """The requests once `count` have arrived (an AssertionError after `timeout` real seconds)."""
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.got) >= count, timeout), (
                f"the receiver got {len(self.got)} requests, not {count}"
            )
            return list(self.got)


def certificates(folder: Path) -> tuple[Path, Path, Path]:
    """(ca.pem, leaf.pem, leaf.key): a CA of our own, and a certificate for 127.0.0.1 it signed."""
    openssl = shutil.which("openssl")
    assert openssl is not None, "openssl is not installed: `make test` installs it (apt-get install openssl)"
    ca_key, ca, key, csr, leaf = (folder / name for name in ("ca.key", "ca.pem", "leaf.key", "leaf.csr", "leaf.pem"))
    extensions = folder / "leaf.ext"
    extensions.write_text("subjectAltName = IP:127.0.0.1\nbasicConstraints = CA:FALSE\nextendedKeyUsage = serverAuth\n")

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca), "-days", "2",
        "-subj", "/CN=mockserver test CA", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", "/CN=127.0.0.1")
    run("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial", "-out", str(leaf),
        "-days", "2", "-extfile", str(extensions))  # fmt: skip
    return ca, leaf, key
