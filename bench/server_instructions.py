"""Instructions per request of a whole server, socket to socket, counted by valgrind's callgrind:
the ceilings and the fake under the same uvicorn (httptools, uvloop), each driven over loopback.

    python bench/server_instructions.py [--requests 3000] [--connections 32] [--only NAME...]
                                        [--prefill N [--cache] [--keep DIR]] [--kinds submit query]

Each server runs under callgrind; a client outside it (this process, plain sockets) keeps
`--connections` keep-alive connections busy, one request in flight on each, as wrk does. A
server is counted twice, after a short and after a long run of requests (then stopped with
SIGTERM, which dumps its counts), and the figure is (Ir long - Ir short) / the difference in
requests: start-up, warm-up and shutdown fall out. The ratio of two servers' figures
approximates the ratio of their requests per second on one core, without the kernel's share
(system calls, the same for both), so it is a bound on the gap, and it does not move with the
machine's load as requests per second do. Needs valgrind. Not a test.

With `--prefill N` a server is counted in one run over a window instead: it starts with
callgrind's instrumentation off, is sent N submits (the store grows to N tasks) and a warm-up of
the kind measured, then `callgrind_control` turns the counting on, `--requests` requests are
sent, and a dump is taken: the figure is the dump's total over `--requests` (the idle loop between
them is in it, a few hundred instructions). `--keep DIR` keeps those dumps, for
`callgrind_annotate --inclusive=yes` (where the instructions went, the garbage collector's
`gc_collect_main` among them); `--cache` adds callgrind's cache simulation and prints the
simulated cache misses per request (a model of the caches, not the machine's).

Servers: the strict ceiling (prebuilt bytes), the JSON ceiling (a dict encoded per request), the
raw ASGI floor (no Starlette: uvicorn's share alone), the fake quiet (--log-level warning), and
the fake as a user starts it (the access log on, written to a file), and the fake quiet without
its metrics (--no-metrics: what the metrics cost, against the fake quiet).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KEY = "sk-bench-0000"
BODY = json.dumps(
    {"model": "veo-3.1-extend", "prompt": "The camera continues to pan", "video": "https://example.com/in.mp4"}
).encode()
SUBMIT = "/v1/videos/generations"
SHORT = 300


def request(method: str, path: str, body: bytes = b"") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {KEY}\r\n"
    head += "Content-Type: application/json\r\n"
    if method == "POST":
        head += f"Content-Length: {len(body)}\r\n"
    return (head + "\r\n").encode() + body


def answers(sock: socket.socket, buffer: bytearray) -> int | None:
    """Read one answer off a buffer (filled from `sock`); its status, or None if it is incomplete."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buffer[:end]).decode("latin-1")
    length = int(re.search(r"(?i)content-length: (\d+)", head).group(1))
    if len(buffer) < end + 4 + length:
        return None
    del buffer[: end + 4 + length]
    return int(head.split(" ", 2)[1])


def drive(port: int, payload: bytes, total: int, connections: int) -> int:
    """Send `total` requests over `connections` keep-alive connections, one in flight on each;
    the number of answers that were not 2xx."""
    selector = selectors.DefaultSelector()
    buffers = {}
    for _ in range(connections):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buffers[sock] = bytearray()
        selector.register(sock, selectors.EVENT_READ)
    sent = min(total, connections)
    for sock in list(buffers)[:sent]:
        sock.sendall(payload)
    done = bad = 0
    while done < total:
        for key, _ in selector.select(timeout=120):
            sock = key.fileobj
            data = sock.recv(65536)
            if not data:
                raise RuntimeError("the server closed a connection")
            buffers[sock] += data
            while (status := answers(sock, buffers[sock])) is not None:
                done += 1
                bad += not 200 <= status < 300
                if sent < total:
                    sock.sendall(payload)
                    sent += 1
    for sock in buffers:
        sock.close()
    return bad


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the server did not listen within 300 s")


def one_count(
    argv: list[str],
    kind: str,
    n: int,
    connections: int,
    stdout: Path | None,
    prefill: int | None = None,
    keep: Path | None = None,
    cache: bool = False,
) -> int:
    """The instructions the server ran: in all (start-up to SIGTERM), or with `prefill`, over
    `n` requests sent after `prefill` submits and a warm-up, none of which are counted."""
    port = free_port()
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "server.callgrind"
        window = ["--instr-atstart=no"] if prefill is not None else []
        if cache:
            window.append("--cache-sim=yes")
        command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *window, sys.executable,
                   *[a.replace("PORT", str(port)) for a in argv]]  # fmt: skip
        sink = stdout.open("ab") if stdout is not None else subprocess.DEVNULL
        process = subprocess.Popen(command, cwd=ROOT, stdout=sink, stderr=subprocess.PIPE, text=True)
        try:
            wait_ready(port, process)
            if prefill:
                bad = drive(port, request("POST", SUBMIT, BODY), prefill, connections)
                if bad:
                    raise RuntimeError(f"{bad} prefill answers were not 2xx")
            if kind == "query":
                with socket.create_connection(("127.0.0.1", port)) as sock:
                    sock.sendall(request("POST", SUBMIT, BODY))
                    buffer = bytearray()
                    while answers(sock, bytearray(buffer)) is None:
                        buffer += sock.recv(65536)
                    _, _, body = bytes(buffer).partition(b"\r\n\r\n")
                    task = json.loads(body)["id"]
                payload = request("GET", f"/v1/tasks/{task}")
            else:
                payload = request("POST", SUBMIT, BODY)
            if prefill is not None:
                drive(port, payload, SHORT, connections)
                control(process.pid, "--instr=on")
            bad = drive(port, payload, n, connections)
            if bad:
                raise RuntimeError(f"{bad} answers were not 2xx")
            if prefill is not None:
                control(process.pid, "--dump")
                dump = Path(f"{out}.1")
                if keep is not None:
                    keep.mkdir(parents=True, exist_ok=True)
                    name = Path(argv[0]).stem if argv[0] != "-m" else "fake"
                    shutil.copy(dump, keep / f"{name}-{kind}-prefill{prefill}.callgrind")
                text = dump.read_text()
                if cache:  # Ir I1mr ILmr Dr D1mr DLmr Dw D1mw DLmw: say the misses per request
                    totals = [int(x) for x in re.search(r"^totals: ([\d ]+)", text, re.MULTILINE).group(1).split()]
                    events = re.search(r"^events: (.+)", text, re.MULTILINE).group(1).split()
                    misses = dict(zip(events, totals))
                    print(
                        f"  cache (simulated) per request: L1 instruction misses {misses['I1mr'] / n:,.0f}, "
                        f"L1 data misses {(misses['D1mr'] + misses['D1mw']) / n:,.0f}, last-level misses "
                        f"{(misses['ILmr'] + misses['DLmr'] + misses['DLmw']) / n:,.0f}",
                        flush=True,
                    )
                return int(re.search(r"^totals: (\d+)", text, re.MULTILINE).group(1))
        finally:
            process.send_signal(signal.SIGTERM)
            _, err = process.communicate(timeout=600)
        return int(re.search(r"Collected : (\d+)", err).group(1))


def control(pid: int, option: str) -> None:
    """Send callgrind (running as `pid`) one command through callgrind_control."""
    done = subprocess.run(
        ["callgrind_control", option, str(pid)], check=False, capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0 or "OK" not in done.stdout:
        raise RuntimeError(f"callgrind_control {option} failed: {done.stdout} {done.stderr}")


SERVERS = {
    "floor": ["bench/bare_app.py", "PORT", "--asgi"],
    "strict": ["bench/bare_app.py", "PORT"],
    "json": ["bench/bare_app.py", "PORT", "--json"],
    "fake": ["-m", "mockserver", "serve", "--port", "PORT", "--log-level", "warning"],
    "fake+log": ["-m", "mockserver", "serve", "--port", "PORT"],
    "fake-no-metrics": ["-m", "mockserver", "serve", "--port", "PORT", "--log-level", "warning", "--no-metrics"],
}
NAMES = {
    "floor": "raw ASGI floor (no Starlette)",
    "strict": "strict ceiling (prebuilt bytes)",
    "json": "JSON ceiling (encoded per request)",
    "fake": "fake, --log-level warning",
    "fake+log": "fake, access log on (to a file)",
    "fake-no-metrics": "fake, --log-level warning --no-metrics",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--only", nargs="*", choices=list(SERVERS), default=list(SERVERS))
    parser.add_argument("--prefill", type=int, default=None, help="count one window after this many submits")
    parser.add_argument("--kinds", nargs="*", choices=["submit", "query"], default=["submit", "query"])
    parser.add_argument("--cache", action="store_true", help="with --prefill: simulate the caches, say misses")
    parser.add_argument("--keep", type=Path, default=None, help="keep the window's callgrind dumps here")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("bench/server_instructions.py needs valgrind (apt-get install valgrind)")
    log = Path(tempfile.mkstemp(prefix="mockserver-access-", suffix=".log")[1])
    figures: dict[str, dict[str, float]] = {}
    try:
        for name in args.only:
            figures[name] = {}
            for kind in args.kinds:
                stdout = log if name == "fake+log" else None
                if args.prefill is not None:
                    window = one_count(
                        SERVERS[name],
                        kind,
                        args.requests,
                        args.connections,
                        stdout,
                        args.prefill,
                        args.keep,
                        args.cache,
                    )
                    figures[name][kind] = window / args.requests
                else:
                    short = one_count(SERVERS[name], kind, SHORT, args.connections, stdout)
                    long = one_count(SERVERS[name], kind, SHORT + args.requests, args.connections, stdout)
                    figures[name][kind] = (long - short) / args.requests
                print(f"{NAMES[name]}: {kind} {figures[name][kind]:,.0f} instructions per request", flush=True)
    finally:
        lines = sum(1 for _ in log.open("rb"))
        log.unlink()
    print(f"\n({lines:,} access log lines written)\n")
    print("| server | submit Ir/request | query Ir/request | strict / this, submit | strict / this, query |")
    print("|---|---|---|---|---|")
    strict = figures.get("strict")
    for name, kinds in figures.items():
        cells = [f"{kinds[k]:,.0f}" if k in kinds else "-" for k in ("submit", "query")]
        ratios = [f"{strict[k] / kinds[k]:.2f}x" if strict and k in kinds else "-" for k in ("submit", "query")]
        print(f"| {NAMES[name]} | {' | '.join(cells)} | {' | '.join(ratios)} |")
    if os.environ.get("BENCH_JSON"):
        Path(os.environ["BENCH_JSON"]).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
