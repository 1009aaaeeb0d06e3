"""What a submit costs as the store grows: the server's CPU time (user and system), page faults
and garbage collections per request, step by step from an empty store, for the fake and the
strict ceiling. A diagnosis of why requests per second fall behind the instruction counts
(bench/server_instructions.py counts a thousand requests on a small store), not a test.

    python bench/store_growth.py [--steps 10] [--step 10000] [--connections 32] [--only fake strict]
                                 [--wrk SECONDS]

Each server runs natively (no valgrind), started through a wrapper that counts the cyclic
garbage collector's passes and the time spent in them (`gc.callbacks`) and writes them, with
`resource.getrusage`, to a file on SIGUSR1. A client in this process (plain sockets, keep-alive,
one request in flight per connection, as wrk) sends `--step` submits per step. CPU time per
request is the server's own (user + system): on a busy machine it moves less than requests per
second do, but it still moves (caches and frequency are shared); compare the steps of one run.

With `--wrk SECONDS` each step is a wrk run of that length instead (the server pinned to CPU 0,
wrk to CPU 1, 32 connections, as bench/bench.py does), and the table adds requests per second,
the p99, and the server's CPU share (CPU seconds over wall seconds): requests per second are the
share divided by the CPU time per request, so two servers' ratio of requests per second departs
from their ratio of CPU time per request exactly as far as the machine gave them different shares.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from server_instructions import BODY, SUBMIT, drive, free_port, request, wait_ready

from bench import BODY as WRK_BODY
from bench import KEY, SERVER_CPU, parse_wrk, wrk, wrk_script

ROOT = Path(__file__).resolve().parents[1]

WRAPPER = r"""
import gc, json, resource, signal, sys, time
OUT = sys.argv.pop(1)
stats = {"collections": [0, 0, 0], "gc_s": [0.0, 0.0, 0.0], "longest_ms": 0.0}
started = [0.0]
def timing(phase, info):
    if phase == "start":
        started[0] = time.perf_counter()
    else:
        took = time.perf_counter() - started[0]
        g = info["generation"]
        stats["collections"][g] += 1
        stats["gc_s"][g] += took
        stats["longest_ms"] = max(stats["longest_ms"], took * 1000)
gc.callbacks.append(timing)
def report(signum, frame):
    usage = resource.getrusage(resource.RUSAGE_SELF)
    figures = dict(stats, user_s=usage.ru_utime, system_s=usage.ru_stime, minor_faults=usage.ru_minflt,
                   max_rss_kb=usage.ru_maxrss, objects=len(gc.get_objects()), frozen=gc.get_freeze_count())
    with open(OUT, "w") as out:
        json.dump(figures, out)
    stats["longest_ms"] = 0.0  # the longest pass since the last report
signal.signal(signal.SIGUSR1, report)
sys.argv[0] = TARGET[0]
sys.argv[1:] = TARGET[1:]
import runpy
runpy.run_path(TARGET[0], run_name="__main__") if TARGET[0].endswith(".py") else runpy.run_module(TARGET[0], run_name="__main__", alter_sys=True)
"""

SERVERS = {
    "strict": ["bench/bare_app.py", "PORT"],
    "fake": ["mockserver", "serve", "--port", "PORT", "--log-level", "warning"],
}


def snapshot(pid: int, out: Path) -> dict:
    out.unlink(missing_ok=True)
    os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            return json.loads(out.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            time.sleep(0.05)
    raise RuntimeError("the server did not report")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--step", type=int, default=10_000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--only", nargs="*", choices=list(SERVERS), default=list(SERVERS))
    parser.add_argument("--wrk", type=float, default=None, help="each step: a wrk run of this many seconds")
    args = parser.parse_args()
    script = wrk_script("POST", WRK_BODY, {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"})
    for name in args.only:
        port = free_port()
        target = [a.replace("PORT", str(port)) for a in SERVERS[name]]
        with tempfile.TemporaryDirectory() as scratch:
            out = Path(scratch) / "stats.json"
            code = f"TARGET = {target!r}\n" + WRAPPER
            pin = ["taskset", "-c", SERVER_CPU] if args.wrk else []
            process = subprocess.Popen(
                [*pin, sys.executable, "-c", code, str(out)], cwd=ROOT, stdout=subprocess.DEVNULL
            )
            try:
                wait_ready(port, process)
                drive(port, request("POST", SUBMIT, BODY), 1000, args.connections)  # warm-up
                before = snapshot(process.pid, out)
                each = f"wrk runs of {args.wrk:g} s" if args.wrk else f"{args.step:,} submits"
                print(f"\n{name}: per submit, step by step ({each} a step)")
                print("| tasks after | wall us | CPU us (user+sys) | sys us | minor faults | gc passes (0/1/2) | gc us | "
                      "longest gc ms | RSS MB | req/s | p99 ms | CPU share |")  # fmt: skip
                print("|---|---|---|---|---|---|---|---|---|---|---|---|")
                tasks = 1000
                for _ in range(args.steps):
                    t0 = time.perf_counter()
                    rps = p99 = 0.0
                    if args.wrk:
                        url = f"http://127.0.0.1:{port}{SUBMIT}"
                        rps, _, p99, bad = parse_wrk(wrk(url, script, args.wrk, args.connections))
                    else:
                        bad = drive(port, request("POST", SUBMIT, BODY), args.step, args.connections)
                    wall = time.perf_counter() - t0
                    if bad:
                        raise RuntimeError(f"{bad} answers were not 2xx")
                    after = snapshot(process.pid, out)
                    n = round(rps * wall) if args.wrk else args.step
                    tasks += n
                    share = (after["user_s"] + after["system_s"] - before["user_s"] - before["system_s"]) / wall
                    cpu = (after["user_s"] + after["system_s"] - before["user_s"] - before["system_s"]) / n * 1e6
                    sys_us = (after["system_s"] - before["system_s"]) / n * 1e6
                    faults = (after["minor_faults"] - before["minor_faults"]) / n
                    passes = "/".join(str(a - b) for a, b in zip(after["collections"], before["collections"]))
                    gc_us = (sum(after["gc_s"]) - sum(before["gc_s"])) / n * 1e6
                    print(
                        f"| {tasks:,} | {wall / n * 1e6:.1f} | {cpu:.1f} | {sys_us:.1f} | {faults:.2f} | "
                        f"{passes} | {gc_us:.1f} | {after['longest_ms']:.1f} | {after['max_rss_kb'] / 1024:.0f} | "
                        f"{rps:,.0f} | {p99:.2f} | {share:.2f} |",
                        flush=True,
                    )
                    before = after
            finally:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=60)
    script.unlink()


if __name__ == "__main__":
    main()
