"""Soak: hold a mixed submit/poll load on the fake for a while and report what held.

    python bench/soak.py [--seconds 60] [--connections 32] [--speed 3600] [--redis]

The fake runs pinned to CPU 0 with `--speed 3600`, so the 24 hours of task retention pass in 24
seconds and eviction is part of the run; wrk (CPU 1) alternates submissions and polls of recently
created tasks. The report: errors (non-2xx answers and socket errors: must be 0), latency
percentiles, and the fake's memory at the start, every few seconds, and at the end, with the
tasks it held and had evicted. With `--redis` the fake keeps its state on a Redis of its own
(persistence off, on CPU 1 beside wrk), whose memory is sampled too: task keys expire with the
retention, so it must level off. Not part of `make test`.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from bench import RedisProcess, Server, free_port, rss_mb, wrk_command

LUA = r"""
local ids, n, kept = {}, 0, 0
local body = '{"model": "veo-3.1-extend", "prompt": "soak", "video": "https://example.com/in.mp4"}'
local auth = {["Authorization"] = "Bearer sk-soak-0001", ["Content-Type"] = "application/json"}
request = function()
  n = n + 1
  if n % 2 == 1 or kept == 0 then
    return wrk.format("POST", "/v1/videos/generations", auth, body)
  end
  return wrk.format("GET", "/v1/tasks/" .. ids[math.random(kept)], {["Authorization"] = auth["Authorization"]})
end
response = function(status, headers, body)
  local id = body:match('"id":"(task%-unified%-[%w%-]+)"')
  if id and kept < 500 then kept = kept + 1; ids[kept] = id elseif id then ids[math.random(kept)] = id end
end
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--speed", type=float, default=3600)
    parser.add_argument("--redis", action="store_true", help="keep the fake's state on a Redis of its own")
    args = parser.parse_args()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    redis_server = RedisProcess() if args.redis else None
    store = ["--store", redis_server.url] if redis_server else []
    server = Server(
        "mockserver",
        [
            sys.executable,
            "-m",
            "mockserver",
            "serve",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--speed",
            str(args.speed),
            *store,
        ],
        f"{base}/__admin/health",
    )
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    script.write_text(LUA)
    samples: list[tuple[float, float, int, int, float]] = []

    def redis_mb() -> float:
        return int(redis_server.client.info("memory")["used_memory"]) / 2**20 if redis_server else 0.0

    try:
        server.start()
        time.sleep(0.5)
        before = rss_mb(server.process.pid)
        load = subprocess.Popen(
            wrk_command(base, script, args.seconds, args.connections), stdout=subprocess.PIPE, text=True
        )
        started = time.perf_counter()

        def sample() -> None:
            while load.poll() is None:
                time.sleep(5)
                health = httpx.get(f"{base}/__admin/health", timeout=5).json()
                samples.append(
                    (
                        time.perf_counter() - started,
                        rss_mb(server.process.pid),
                        health["tasks"],
                        health["evicted"],
                        redis_mb(),
                    )
                )

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        output, _ = load.communicate()
        sampler.join(timeout=10)
        after = rss_mb(server.process.pid)
        health = httpx.get(f"{base}/__admin/health").json()
    finally:
        server.stop()
        script.unlink()
        if redis_server:
            redis_server.stop()
    requests = int(re.search(r"(\d+) requests in", output).group(1))
    non2xx = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", output)) else 0
    sockets = (
        sum(int(x) for x in m.groups())
        if (m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output))
        else 0
    )
    latency = {p: re.search(rf"\s{p}%\s+(\S+)", output).group(1) for p in ("50", "75", "90", "99")}
    maximum = re.search(r"Latency\s+\S+\s+\S+\s+(\S+)", output).group(1)
    print(f"{args.seconds} s of mixed submit/poll load, {args.connections} connections, scenario clock x{args.speed:g}")
    print(f"requests: {requests} ({requests / args.seconds:,.0f}/s); errors: {non2xx} non-2xx, {sockets} socket errors")
    print("latency: " + ", ".join(f"p{p} {v}" for p, v in latency.items()) + f", max {maximum}")
    print(
        f"memory: {before:.0f} MB before, {after:.0f} MB after; tasks held at the end {health['tasks']}, evicted {health['evicted']}"
    )
    for at, mb, tasks, evicted, in_redis in samples:
        shared = f", Redis {in_redis:6.1f} MB" if redis_server else ""
        print(f"  at {at:5.1f} s: {mb:6.0f} MB, {tasks:7d} tasks held, {evicted:8d} evicted{shared}")
    sys.exit(0 if non2xx == 0 and sockets == 0 else 1)


if __name__ == "__main__":
    main()
