"""Benchmark the fake against two bare Starlette ceilings and its peers, Prism and WireMock.

    python bench/bench.py [--runs 3] [--duration 5] [--connections 32] [--sustained] [--redis]
                          [--peers] [--million] [--json FILE]

Servers run pinned to CPU 0 (taskset), the load generator (wrk, from Debian's packages) on CPU 1.
The ceilings are bare Starlette apps that do not read the request's body: the strict one answers
bytes built once (a fixed stub), the JSON one encodes a dict per request (the ceiling of the
first releases, kept for one release). The ceilings and the fakes run side by side:
all started at once, each warmed up, then their runs taken in turn (run 1 of each, run 2 of
each...), so that a slow spell of this shared machine falls on all of them alike; a ratio is the
median of the per-run ratios. The fakes: as the benchmark runs it (`--log-level warning`, a
thousand tasks in its store for the query figures), and as a user starts it (the access log on,
standard output to a file). The table shows the median requests per second with the spread
(min-max), p50 and p99 latency from the median run, idle memory, memory after the load, and the
start-up time to the first answered request; then the targets (submit at least 0.60x and query
at least 0.80x of the strict ceiling, p99 within 5 ms; the access log costing query at most 10%),
each passed or failed, and whether the day was fast enough for them to hold (the strict ceiling at
20,000 requests per second or more).

`--sustained` also measures the other way: 3 s of warm-up, then 3 runs of 10 s of submit, the
fake's store growing all the while (to half a million tasks), then of query, bare app and fake
side by side. `--redis` adds the fake with its state on Redis (Debian's redis-server,
persistence off, pinned to CPU 1 beside wrk: the fake keeps its one core) to the side-by-side
group, counts the scripts Redis runs per request, and fills it with live tasks to report Redis's
own memory per task. `--peers` also measures Prism and WireMock, each alone (installed with npm
into bench/.peers on first use; WireMock needs Java). `--million` fills the fake with one million
live tasks through its API and measures query throughput and memory there, against the same
figure with a thousand tasks.

This is not a test: nothing in `make test` runs it or depends on timing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
PEERS = ROOT / "bench" / ".peers"
SERVER_CPU, LOAD_CPU = "0", "1"
KEY = "sk-bench-0000"
BODY = {"model": "veo-3.1-extend", "prompt": "The camera continues to pan", "video": "https://example.com/in.mp4"}
SUBMIT_PATH = "/v1/videos/generations"


@dataclass
class Measure:
    rps: list[float] = field(default_factory=list)
    p50: list[float] = field(default_factory=list)  # milliseconds
    p99: list[float] = field(default_factory=list)
    errors: int = 0

    def median_run(self) -> int:
        ordered = sorted(range(len(self.rps)), key=lambda i: self.rps[i])
        return ordered[len(ordered) // 2]


@dataclass
class Result:
    server: str
    startup: float | None = None
    idle_mb: float | None = None
    loaded_mb: float | None = None
    measures: dict[str, Measure] = field(default_factory=dict)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (Prism and WireMock run under launchers)."""
    total = 0
    pids = [pid]
    while pids:
        current = pids.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
            pids += [int(child) for child in children]
        except (OSError, AttributeError):
            continue
    return total / 1024


def parse_wrk(output: str) -> tuple[float, float, float, int]:
    def to_ms(text: str) -> float:
        value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    p50 = to_ms(re.search(r"\s50%\s+(\S+)", output).group(1))
    p99 = to_ms(re.search(r"\s99%\s+(\S+)", output).group(1))
    errors = 0
    if match := re.search(r"Non-2xx or 3xx responses: (\d+)", output):
        errors += int(match.group(1))
    if match := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output):
        errors += sum(int(x) for x in match.groups())
    return rps, p50, p99, errors


def wrk_script(method: str, body: dict | None, headers: dict[str, str]) -> Path:
    lines = [f'wrk.method = "{method}"']
    if body is not None:
        lines.append(f"wrk.body = {json.dumps(json.dumps(body))}")
    for name, value in headers.items():
        lines.append(f'wrk.headers["{name}"] = "{value}"')
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write("\n".join(lines) + "\n")
    return Path(handle.name)


def wrk_command(url: str, script: Path, seconds: float, connections: int) -> list[str]:
    """wrk on the load generator's core: one thread, `connections` connections, latency percentiles."""
    duration = f"-d{max(1, round(seconds))}s"
    return ["taskset", "-c", LOAD_CPU, "wrk", "-t1", f"-c{connections}", duration, "--latency", "-s", str(script), url]


def wrk(url: str, script: Path, seconds: float, connections: int) -> str:
    command = wrk_command(url, script, seconds, connections)
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


class Server:
    def __init__(
        self, name: str, command: list[str], ready_url: str, env: dict[str, str] | None = None, stdout: Path | None = None,
        cwd: Path | None = None,
    ) -> None:  # fmt: skip
        self.name, self.command, self.ready_url, self.cwd = name, command, ready_url, cwd
        self.env = {**os.environ, **(env or {})}
        self.stdout = stdout  # where its standard output goes (a file, as a container runtime takes it)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        started = time.perf_counter()
        self.process = subprocess.Popen(
            ["taskset", "-c", SERVER_CPU, *self.command],
            env=self.env,
            stdout=self.stdout.open("ab") if self.stdout else subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            cwd=self.cwd,
        )
        deadline = started + 120
        while time.perf_counter() < deadline:
            try:
                if httpx.get(self.ready_url, headers={"Authorization": f"Bearer {KEY}"}, timeout=1).status_code < 500:
                    return time.perf_counter() - started
            except httpx.TransportError:
                pass
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}")
            time.sleep(0.002)
        raise RuntimeError(f"{self.name} did not answer within 120 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def measure(
    base: str,
    path: str,
    method: str,
    body: dict | None,
    args: argparse.Namespace,
    warm: float,
    duration: float | None = None,
) -> Measure:
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    script = wrk_script(method, body, headers)
    try:
        wrk(base + path, script, warm, args.connections)
        result = Measure()
        for _ in range(args.runs):
            rps, p50, p99, errors = parse_wrk(wrk(base + path, script, duration or args.duration, args.connections))
            result.rps.append(rps)
            result.p50.append(p50)
            result.p99.append(p99)
            result.errors += errors
        return result
    finally:
        script.unlink()


def python_server(name: str, argv: list[str], port: int, ready_path: str) -> Server:
    return Server(name, [sys.executable, *argv], f"http://127.0.0.1:{port}{ready_path}")


@dataclass
class Entrant:
    """A server in a side-by-side measurement, and what is measured of it."""

    server: Server
    base: str
    query_path: str | None  # None: the fake, whose query path is a task made through its API
    watch: tuple[str, ...] = ()  # live feeds (server-sent events) kept open the whole time, as a dashboard does
    result: Result = field(init=False)

    def __post_init__(self) -> None:
        self.result = Result(self.server.name)


def side_by_side(entrants: list[Entrant], plan: list[tuple[str, float, float]], args: argparse.Namespace) -> None:
    """Start every server (each pinned to the server CPU, idle until its turn), then for each
    (endpoint, warm-up seconds, run seconds) of the plan: warm each up, then take the runs in
    turn, run 1 of each server, then run 2 of each..., so that a slow spell of the machine falls
    on all of them alike and each ratio compares runs taken moments apart."""
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    watching = threading.Event()
    watchers: list[threading.Thread] = []
    try:
        for entrant in entrants:
            entrant.result.startup = entrant.server.start()
            for path in entrant.watch:
                watchers.append(threading.Thread(target=watch, args=(entrant.base + path, watching), daemon=True))
                watchers[-1].start()
        time.sleep(0.5)
        for entrant in entrants:
            entrant.result.idle_mb = rss_mb(entrant.server.process.pid)
        paths: dict[str, str] = {}
        for endpoint, warm, duration in plan:
            for entrant in entrants:
                if endpoint == "query" and entrant.base not in paths:
                    paths[entrant.base] = entrant.query_path or fake_tasks(entrant.base, 1000)
            scripts = {"query": wrk_script("GET", None, headers), "submit": wrk_script("POST", BODY, headers)}
            try:
                target = {e.base: e.base + (paths[e.base] if endpoint == "query" else SUBMIT_PATH) for e in entrants}
                for entrant in entrants:
                    wrk(target[entrant.base], scripts[endpoint], warm, args.connections)
                    entrant.result.measures[endpoint] = Measure()
                for _ in range(args.runs):
                    for entrant in entrants:
                        rps, p50, p99, errors = parse_wrk(
                            wrk(target[entrant.base], scripts[endpoint], duration, args.connections)
                        )
                        measure_ = entrant.result.measures[endpoint]
                        measure_.rps.append(rps)
                        measure_.p50.append(p50)
                        measure_.p99.append(p99)
                        measure_.errors += errors
            finally:
                for script in scripts.values():
                    script.unlink()
        for entrant in entrants:
            entrant.result.loaded_mb = rss_mb(entrant.server.process.pid)
    finally:
        watching.set()
        for entrant in entrants:
            entrant.server.stop()
        for watcher in watchers:
            watcher.join(timeout=5)


def watch(url: str, stop: threading.Event) -> None:
    """Read a live feed, as an open dashboard does, until `stop` (or the server goes away)."""
    received = 0
    try:
        with httpx.stream("GET", url, timeout=httpx.Timeout(5, read=None)) as answer:
            if answer.status_code != 200:
                raise RuntimeError(f"{url}: {answer.status_code}")
            for chunk in answer.iter_bytes():
                received += len(chunk)
                if stop.is_set():
                    return
    except httpx.TransportError:
        pass
    finally:
        if received == 0 and not stop.is_set():
            print(f"bench: the live feed {url} sent nothing", file=sys.stderr)


def run_server(server: Server, base: str, query_path: str | None, args: argparse.Namespace, warm: float) -> Result:
    """One server alone (the peers): query, then submit."""
    entrant = Entrant(server, base, query_path)
    side_by_side([entrant], [("query", warm, args.duration), ("submit", warm, args.duration)], args)
    return entrant.result


def fake_tasks(base: str, count: int) -> str:
    """Create `count` tasks through the API and return the query path of the last one."""
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {KEY}"}) as client:
        for _ in range(count):
            task_id = client.post(SUBMIT_PATH, json=BODY).json()["id"]
    return f"/v1/tasks/{task_id}"


def install_peers() -> Path:
    binaries = PEERS / "node_modules" / ".bin"
    if not (binaries / "prism").exists() or not (binaries / "wiremock").exists():
        PEERS.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                "npm",
                "install",
                "--no-audit",
                "--no-fund",
                "--prefix",
                str(PEERS),
                "@stoplight/prism-cli@5",
                "wiremock@3",
            ],
            check=True,
            capture_output=True,
        )
    return binaries


def wiremock_root() -> Path:
    root = Path(tempfile.mkdtemp(prefix="wiremock-"))
    (root / "mappings").mkdir()
    created = {"created": 1757165031, "id": "task-unified-1757165031-uyujaw3d", "model": "veo-3.1-extend",
               "object": "video.generation.task", "progress": 0, "status": "pending",
               "task_info": {"can_cancel": True, "estimated_time": 90}, "type": "video"}  # fmt: skip
    task = {**created, "results": None, "error": None, "usage": {"credits_reserved": 5, "user_group": "default"}}
    del task["task_info"]
    mappings = [
        {"request": {"method": "POST", "url": SUBMIT_PATH}, "response": {"status": 200, "jsonBody": created}},
        {"request": {"method": "GET", "urlPathPattern": "/v1/tasks/.*"}, "response": {"status": 200, "jsonBody": task}},
    ]
    (root / "mappings" / "api.json").write_text(json.dumps({"mappings": mappings}))
    return root


def million(args: argparse.Namespace) -> dict[str, float]:
    """Query throughput and memory with 1,000 live tasks, then with 1,000,000."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = python_server(
        "fake", ["-m", "mockserver", "serve", "--port", str(port), "--log-level", "warning"], port, "/__admin/health"
    )
    out: dict[str, float] = {}
    try:
        server.start()
        path = fake_tasks(base, 1000)
        out["query_1k"] = statistics.median(measure(base, path, "GET", None, args, 2).rps)
        out["rss_1k_mb"] = rss_mb(server.process.pid)
        script = wrk_script("POST", BODY, {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"})
        started = time.perf_counter()
        while (tasks := httpx.get(f"{base}/__admin/health").json()["tasks"]) < 1_000_000:
            remaining = 1_000_000 - tasks
            wrk(base + SUBMIT_PATH, script, max(1, min(20, remaining // 8000)), 64)
        out["fill_s"] = time.perf_counter() - started
        script.unlink()
        out["tasks"] = httpx.get(f"{base}/__admin/health").json()["tasks"]
        out["rss_1m_mb"] = rss_mb(server.process.pid)
        out["query_1m"] = statistics.median(measure(base, path, "GET", None, args, 2).rps)
    finally:
        server.stop()
    return out


class RedisProcess:
    """redis-server on a free port, persistence off, on the load generator's CPU."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            ["taskset", "-c", LOAD_CPU, "redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        import redis

        self.client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.client.ping()
                break
            except redis.exceptions.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def commands(self) -> int:
        """Commands sent to Redis (its own commandstats; a script's inner calls are counted apart,
        under their own names, so EVALSHA counts round trips' worth of scripts)."""
        stats = self.client.info("commandstats")
        return sum(int(stats[name]["calls"]) for name in stats if name in ("cmdstat_evalsha", "cmdstat_eval"))

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def redis_figures(args: argparse.Namespace, redis_server: RedisProcess) -> dict[str, float]:
    """Scripts run on Redis per request, and Redis's memory per live task."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = ["-m", "mockserver", "serve", "--port", str(port), "--log-level", "warning", "--store", redis_server.url]
    server = python_server("mockserver (Redis)", command, port, "/__admin/health")
    extra: dict[str, float] = {}
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    redis_server.client.flushall()
    try:
        server.start()
        path = fake_tasks(base, 10)
        for endpoint, (method, target, body) in {
            "query": ("GET", path, None),
            "submit": ("POST", SUBMIT_PATH, BODY),
        }.items():
            script = wrk_script(method, body, headers)
            try:
                before = redis_server.commands()
                output = wrk(base + target, script, 3, args.connections)
                total = int(re.search(r"(\d+) requests in", output).group(1))
                extra[f"{endpoint}_commands_per_request"] = (redis_server.commands() - before) / total
            finally:
                script.unlink()
        server.stop()
        redis_server.client.flushall()
        server.start()
        used = int(redis_server.client.info("memory")["used_memory"])
        script = wrk_script("POST", BODY, headers)
        try:
            wrk(base + SUBMIT_PATH, script, 5, args.connections)
        finally:
            script.unlink()
        tasks = httpx.get(f"{base}/__admin/health").json()["tasks"]
        extra["tasks"] = tasks
        extra["bytes_per_task"] = (int(redis_server.client.info("memory")["used_memory"]) - used) / tasks
    finally:
        server.stop()
    return extra


def ratio(measure_: Measure, ceiling: Measure) -> float:
    """The median of the per-run ratios when the runs were taken in turn (side by side), else the
    ratio of the medians."""
    if len(measure_.rps) == len(ceiling.rps):
        return statistics.median(a / b for a, b in zip(measure_.rps, ceiling.rps))
    return statistics.median(measure_.rps) / statistics.median(ceiling.rps)


def table(results: list[Result], strict: Result, encoded: Result) -> str:
    head = "| server | endpoint | req/s median (min-max) | vs strict | vs JSON ceiling | p50 ms | p99 ms | non-2xx "
    rows = [head + "| idle MB | MB after | start-up s |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for result in results:
        for endpoint, m in result.measures.items():
            i = m.median_run()
            rows.append(
                f"| {result.server} | {endpoint} | {statistics.median(m.rps):,.0f} ({min(m.rps):,.0f}-{max(m.rps):,.0f}) "
                f"| {ratio(m, strict.measures[endpoint]):.2f}x | {ratio(m, encoded.measures[endpoint]):.2f}x "
                f"| {m.p50[i]:.2f} | {m.p99[i]:.2f} | {m.errors} "
                f"| {result.idle_mb:.0f} | {result.loaded_mb:.0f} | {result.startup:.2f} |"
            )
    return "\n".join(rows)


TARGETS = {"submit": 0.60, "query": 0.80}  # of the strict ceiling's requests per second
P99_MS = 5.0
FAST_DAY = 20_000  # the strict ceiling's req/s on a day the targets hold


def targets(fake_: Result, strict: Result, way: str) -> tuple[str, dict]:
    """The targets against the strict ceiling, passed or failed, and whether the day counts."""
    lines, figures = [], {}
    for endpoint, least in TARGETS.items():
        m = fake_.measures[endpoint]
        got = ratio(m, strict.measures[endpoint])
        p99 = m.p99[m.median_run()]
        figures[endpoint] = {"ratio": got, "p99_ms": p99, "ratio_met": got >= least, "p99_met": p99 <= P99_MS}
        lines.append(
            f"| {way} | {endpoint} | {got:.2f}x (target >= {least:.2f}x) | {'pass' if got >= least else 'FAIL'} "
            f"| {p99:.2f} ms (target <= {P99_MS:g}) | {'pass' if p99 <= P99_MS else 'FAIL'} |"
        )
    ceiling = min(statistics.median(m.rps) for m in strict.measures.values())
    figures["strict_ceiling_rps"] = ceiling
    figures["day_counts"] = ceiling >= FAST_DAY
    day = "counts" if ceiling >= FAST_DAY else f"does not count (under {FAST_DAY:,}: the targets are not judged on it)"
    lines.append(f"| {way} | the day | strict ceiling {ceiling:,.0f} req/s | {day} | | |")
    return "\n".join(lines), figures


def fake(name: str, *options: str, stdout: Path | None = None, tree: Path | None = None) -> Entrant:
    """The fake of this checkout, or (`tree`) of another one: a worktree at an earlier commit."""
    port = free_port()
    command = [sys.executable, "-m", "mockserver", "serve", "--port", str(port), *options]
    env = {"PYTHONPATH": str(tree)} if tree is not None else None
    server = Server(name, command, f"http://127.0.0.1:{port}/__admin/health", env=env, stdout=stdout, cwd=tree)
    return Entrant(server, f"http://127.0.0.1:{port}", None)


def baseline_tree(ref: str) -> Path:
    """A detached worktree of this repository at `ref` (removed with `drop_tree`)."""
    where = Path(tempfile.mkdtemp(prefix="mockserver-baseline-"))
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(where), ref], check=True, capture_output=True
    )
    return where


def drop_tree(where: Path) -> None:
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(where)], check=False, capture_output=True
    )


def bare_app(encoded: bool = False) -> Entrant:
    """The strict ceiling (prebuilt bytes), or with `encoded` the JSON one (a dict encoded per request)."""
    port = free_port()
    name = "bare Starlette, JSON per request" if encoded else "bare Starlette, prebuilt bytes (strict)"
    argv = [str(ROOT / "bench" / "bare_app.py"), str(port), *(["--json"] if encoded else [])]
    server = python_server(name, argv, port, "/")
    return Entrant(server, f"http://127.0.0.1:{port}", "/v1/tasks/any")


def rows(group: list[Result]) -> list[dict]:
    return [{"server": r.server, "startup_s": r.startup, "idle_mb": r.idle_mb, "loaded_mb": r.loaded_mb,
             "measures": {k: vars(v) for k, v in r.measures.items()}} for r in group]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--peers", action="store_true", help="also measure Prism and WireMock")
    parser.add_argument("--million", action="store_true", help="also measure the fake with a million live tasks")
    parser.add_argument("--redis", action="store_true", help="also measure the fake with its state on Redis")
    parser.add_argument(
        "--sustained",
        action="store_true",
        help="also measure the other way: 10 s runs, submit first, the store growing",
    )
    parser.add_argument("--json", type=Path, help="write the figures here too")
    parser.add_argument(
        "--baseline", metavar="REF", help="also run the fake of an earlier commit side by side (a git ref), and compare"
    )
    args = parser.parse_args()
    for tool in ("wrk", "taskset", *(["redis-server"] if args.redis else [])):
        if shutil.which(tool) is None:
            sys.exit(f"bench: {tool} is missing (apt-get install wrk util-linux redis-server)")
    figures: dict = {}

    # Side by side: the two ceilings, the fake as the benchmark runs it, the fake as a user starts
    # it (access log on, standard output to a file), and the fake on Redis.
    log = Path(tempfile.mkstemp(prefix="mockserver-access-", suffix=".log")[1])
    entrants = [
        bare_app(),
        bare_app(encoded=True),
        fake("mockserver", "--log-level", "warning"),
        fake("mockserver (access log to a file)", stdout=log),
    ]
    dashboard = fake("mockserver (a dashboard open)", "--log-level", "warning")
    dashboard.watch = ("/__admin/ui/events?view=tasks", "/__admin/ui/events?view=journal")
    entrants.append(dashboard)
    unmetered = fake("mockserver (--no-metrics)", "--log-level", "warning", "--no-metrics")
    entrants.append(unmetered)  # the metrics are on by default: their cost, side by side
    redis_server = RedisProcess() if args.redis else None
    redis_fake = (
        fake("mockserver (Redis)", "--log-level", "warning", "--store", redis_server.url) if redis_server else None
    )
    if redis_fake is not None:
        entrants.append(redis_fake)
    tree = baseline_tree(args.baseline) if args.baseline else None
    earlier = fake(f"mockserver at {args.baseline}", "--log-level", "warning", tree=tree) if tree is not None else None
    if earlier is not None:
        entrants.append(earlier)
    try:
        side_by_side(entrants, [("query", 2, args.duration), ("submit", 2, args.duration)], args)
        if redis_server is not None:
            figures["redis"] = redis_figures(args, redis_server)
    finally:
        if redis_server is not None:
            redis_server.stop()
        if tree is not None:
            drop_tree(tree)
    logged_lines = sum(1 for _ in log.open("rb"))
    log.unlink()
    results = [entrant.result for entrant in entrants]
    strict, encoded, memory, with_log, watched = results[:5]

    other: list[Result] = []
    if args.sustained:
        pair = [bare_app(), bare_app(encoded=True), fake("mockserver", "--log-level", "warning")]
        side_by_side(pair, [("submit", 3, 10), ("query", 3, 10)], args)
        other = [entrant.result for entrant in pair]

    if args.peers:
        binaries = install_peers()
        sys.path.insert(0, str(ROOT))
        from contracts import Contract

        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as document:
            json.dump(Contract.load("seed").document, document)
        port = free_port()
        prism = Server("Prism 5", [str(binaries / "prism"), "mock", "-h", "127.0.0.1", "-p", str(port), "-v", "warn", document.name],
                       f"http://127.0.0.1:{port}/v1/tasks/task-unified-1757165031-uyujaw3d")  # fmt: skip
        results.append(
            run_server(prism, f"http://127.0.0.1:{port}", "/v1/tasks/task-unified-1757165031-uyujaw3d", args, warm=3)
        )
        port = free_port()
        root = wiremock_root()
        wiremock = Server("WireMock 3", [str(binaries / "wiremock"), "--port", str(port), "--root-dir", str(root),
                          "--max-request-journal-entries", "1000", "--disable-banner"],
                          f"http://127.0.0.1:{port}/__admin/health")  # fmt: skip
        results.append(
            run_server(
                wiremock, f"http://127.0.0.1:{port}", "/v1/tasks/task-unified-1757165031-uyujaw3d", args, warm=15
            )
        )

    print(
        f"\n{args.runs} runs of {args.duration:g} s, {args.connections} connections, server on CPU {SERVER_CPU}, wrk on CPU {LOAD_CPU};"
    )
    print("the ceilings and the fakes side by side (their runs taken in turn), the peers alone\n")
    print(table(results, strict, encoded))
    access = {e: ratio(with_log.measures[e], memory.measures[e]) for e in ("query", "submit")}
    figures.update({"access_log_vs_warning": access, "access_log_lines": logged_lines})
    print(
        f"\nWith the access log on, written to a file: query {access['query']:.0%}, submit {access['submit']:.0%} of the "
        f"figure with --log-level warning ({logged_lines:,} lines written)."
    )
    open_ = {e: ratio(watched.measures[e], memory.measures[e]) for e in ("query", "submit")}
    figures["dashboard_open_vs_closed"] = open_
    print(
        f"With a dashboard open (its task list and journal live feeds read the whole time): query {open_['query']:.0%}, "
        f"submit {open_['submit']:.0%} of the figure without one."
    )
    metered = {e: ratio(memory.measures[e], unmetered.result.measures[e]) for e in ("query", "submit")}
    figures["metrics_on_vs_off"] = metered
    print(
        f"With the metrics on (the default) vs --no-metrics: query {metered['query']:.1%}, submit "
        f"{metered['submit']:.1%} of the figure without them (target: within 5%)."
    )
    if earlier is not None:
        before = earlier.result
        versus = {e: ratio(memory.measures[e], before.measures[e]) for e in ("query", "submit")}
        figures["vs_baseline"] = {"ref": args.baseline, **versus}
        print(
            f"This checkout vs {args.baseline}, side by side: query {versus['query']:.1%}, submit {versus['submit']:.1%} "
            "of the earlier commit's figure."
        )
    if other:
        print(
            "\nSustained: 3 s warm-up, then 3 runs of 10 s of submit (the store growing), then of query, side by side\n"
        )
        print(table(other, other[0], other[1]))
    if redis_server is not None:
        shared = figures["redis"]
        assert redis_fake is not None
        shared.update(
            {f"{e}_vs_memory": ratio(redis_fake.result.measures[e], memory.measures[e]) for e in ("query", "submit")}
        )
        print(
            f"\nRedis store vs memory store: query {shared['query_vs_memory']:.0%}, submit {shared['submit_vs_memory']:.0%}; "
            f"scripts run on Redis per request: query {shared['query_commands_per_request']:.2f}, submit "
            f"{shared['submit_commands_per_request']:.2f}; Redis memory per live task: {shared['bytes_per_task']:,.0f} bytes "
            f"({shared['tasks']:,.0f} tasks)."
        )
    judged = [targets(memory, strict, "5 s runs")]
    if other:
        judged.append(targets(other[2], other[0], "sustained"))
    print("\nTargets against the strict ceiling (the fake as the benchmark runs it; p99 of its median run)\n")
    print("| runs | endpoint | vs strict ceiling | | p99 | |\n|---|---|---|---|---|---|")
    print("\n".join(text for text, _ in judged))
    logged = access["query"] >= 0.90
    print(
        f"| 5 s runs | query, access log on | {access['query']:.2f}x of the figure without it (target >= 0.90x) "
        f"| {'pass' if logged else 'FAIL'} | | |"
    )
    figures["targets"] = {"5s": judged[0][1], **({"sustained": judged[1][1]} if other else {})}
    figures["targets"]["access_log_met"] = logged
    figures["results"] = rows(results)
    if other:
        figures["sustained"] = rows(other)
    if args.million:
        big = million(args)
        figures["million"] = big
        print(
            f"\nOne million live tasks: {big['tasks']:,.0f} tasks made through the API in {big['fill_s']:.0f} s; "
            f"query {big['query_1m']:,.0f} req/s vs {big['query_1k']:,.0f} with 1,000 tasks "
            f"({big['query_1m'] / big['query_1k'] - 1:+.1%}); memory {big['rss_1m_mb']:,.0f} MB "
            f"(vs {big['rss_1k_mb']:,.0f} MB)."
        )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
