"""Where a request's instructions go, stage by stage, inside the fake's application: each stage
replaced in turn by a stub that returns what it returned (a precomputed result), and the
instructions per request counted with valgrind's callgrind, all in one process.

    python bench/stages.py [--requests 1000]

One valgrind run per kind of request (submit, query). The loop calls `os.getppid()` (whose C
function callgrind is told to dump before) between phases: each phase is a warm-up of 100
requests, a dump, then `--requests` requests and a dump, so each measured phase has a dump file
of its own. A stage's cost is the full figure minus the figure with that stage stubbed out; a
stub's own call costs a few hundred instructions, so each cost is a slight underestimate. The
"harness" phase replaces the whole application by one that sends prebuilt messages: the loop's
own share, not the fake's. What the ASGI application does not see (uvicorn, httptools, the event
loop, the sockets) is counted by bench/server_instructions.py. Needs valgrind. Not a test.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

LOOP = r'''
import asyncio, json, os, sys, time
from mockserver import Settings, create_app
import mockserver.api as api_module
import mockserver.app as app_module
import mockserver.lifecycle as lifecycle

KIND, N, ACCESS = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "log"
SUBMIT, QUERY = "/v1/videos/generations", "/v1/tasks/"
BODY = json.dumps({"model": "veo-3.1-extend", "prompt": "The camera continues to pan", "video": "https://example.com/in.mp4"}).encode()
HEADERS = [(b"host", b"127.0.0.1:8000"), (b"authorization", b"Bearer sk-bench-0000"), (b"content-type", b"application/json")]


async def call(app, method, path, body=b""):
    sent = []

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
        sent.append(message)

    headers = HEADERS + [(b"content-length", str(len(body)).encode())]
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "path": path,
             "raw_path": path.encode(), "query_string": b"", "headers": headers, "scheme": "http",
             "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 5000), "root_path": ""}
    await app(scope, receive, send)
    return sent


def remembered(function, is_async=False):
    """A stub of `function` that returns what its first call returned."""
    kept = []

    def stub(*args, **kwargs):
        if not kept:
            kept.append(function(*args, **kwargs))
        return kept[0]

    async def astub(*args, **kwargs):
        if not kept:
            kept.append(await function(*args, **kwargs))
        return kept[0]

    return astub if is_async else stub


async def main():
    mock = create_app(Settings(clock="manual", log_level="info" if ACCESS else "warning", access_log=ACCESS))
    if mock.access is not None:
        mock.access._stream = open(os.devnull, "w")
    rt = mock.app.state.runtime
    api = mock.api
    task = json.loads((await call(mock, "POST", SUBMIT, BODY))[1]["body"])["id"]
    await rt.advance(30)
    request = ("POST", SUBMIT, BODY) if KIND == "submit" else ("GET", QUERY + task)

    async def run(n, app=mock):
        for _ in range(n):
            await call(app, *request)

    async def phase(undo=None):
        await run(100)
        os.getppid()  # dump: the warm-up
        await run(N)
        os.getppid()  # dump: the phase
        if undo:
            undo()

    def patch(owner, name, value):
        old = owner.__dict__.get(name, None) if isinstance(owner, type) else getattr(owner, name)
        setattr(owner, name, value)
        return lambda: setattr(owner, name, old)

    async def harness(scope, receive, send):
        await send(start)
        await send(body)

    global STUBS
    STUBS = stubs(mock)
    sent = await call(mock, *request)
    start, body = sent
    print("PHASES: full, harness, " + ", ".join(STAGES[KIND]), flush=True)
    await phase()
    await run(100, harness); os.getppid(); await run(N, harness); os.getppid()
    for stage in STAGES[KIND]:
        await phase(STUBS[stage]())


STUBS_HERE

STAGES = {
    "submit": ["auth", "body", "validation", "matching", "state", "render", "journal", "access"],
    "query": ["auth", "state", "lifecycle", "render", "journal", "access"],
}
asyncio.run(main())
'''

STUBS = r"""
def stubs(mock):
    rt, api = mock.app.state.runtime, mock.api
    op = api.submit_operation

    def attr(owner, name, value):
        had = name in vars(owner)
        old = vars(owner).get(name)
        setattr(owner, name, value)
        return lambda: setattr(owner, name, old) if had else delattr(owner, name)

    def module(mod, name, value):
        old = getattr(mod, name)
        setattr(mod, name, value)
        return lambda: setattr(mod, name, old)

    def both(*undos):
        return lambda: [u() for u in undos]

    def record_access_only(self, request, counts, status, started, arrived, headers, answer):
        if self.access is not None:
            self.access(request.scope, status)

    def record_journal_only(self, request, counts, status, started, arrived, headers, answer):
        scope = request.scope
        now = scope.get(app_module.NOW_KEY)
        self.store.record(*app_module.exchange(self.store.estimate_now() if now is None else now, scope,
            request.raw_body[:app_module.BODY_PREVIEW], status, time.perf_counter() - started, arrived, headers,
            bytes(answer)))

    async def read_json(request, limit):
        request.raw_body = BODY
        return dict(json.loads(BODY))

    return {
        "auth": lambda: module(api_module, "bearer_key", remembered(api_module.bearer_key)),
        "body": lambda: module(api_module, "read_json", read_json),
        "validation": lambda: attr(op, "check_body", lambda body: None),
        "matching": lambda: attr(rt.selector, "fallback", remembered(rt.selector.fallback)),
        "state": lambda: both(
            attr(rt.state, "submit", remembered(rt.state.submit, True)),
            attr(rt.state, "poll", remembered(rt.state.poll, True)),
        ),
        "lifecycle": lambda: module(lifecycle, "task_state", remembered(lifecycle.task_state)),
        "render": lambda: both(
            attr(api.render, "created_json", remembered(api.render.created_json)),
            attr(api.render, "task", remembered(api.render.task)),
        ),
        "journal": lambda: attr(app_module.MockApp, "_record", record_access_only),
        "access": lambda: attr(app_module.MockApp, "_record", record_journal_only),
    }
"""


def run(kind: str, requests: int, access: bool) -> dict[str, float]:
    loop = LOOP.replace("STUBS_HERE", STUBS)
    with tempfile.TemporaryDirectory(prefix="mockserver-stages-") as where:
        script = Path(where) / "loop.py"
        script.write_text(loop)
        out = Path(where) / "callgrind.out"
        result = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--dump-before=os_getppid",
             sys.executable, str(script), kind, str(requests), "log" if access else "quiet"],
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, check=True,
        )  # fmt: skip
        phases = re.search(r"PHASES: (.*)", result.stdout).group(1).split(", ")
        dumps = sorted(glob.glob(f"{out}.*"), key=lambda name: int(name.rsplit(".", 1)[1]))
        totals = []
        for name in dumps:
            text = Path(name).read_text(errors="replace")
            totals.append(int(re.search(r"^(?:summary|totals): (\d+)", text, re.MULTILINE).group(1)))
        if os.environ.get("STAGES_DEBUG"):
            print(dumps, totals, file=sys.stderr)
    # dump 1: start-up and the first warm-up; then each measured phase, each next warm-up, alternately
    measured = totals[1::2]
    return {phase: total / requests for phase, total in zip(phases, measured)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--quiet", action="store_true", help="the access log off (--log-level warning)")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("bench/stages.py needs valgrind (apt-get install valgrind)")
    for kind in ("submit", "query"):
        figures = run(kind, args.requests, not args.quiet)
        full = figures.pop("full")
        harness = figures.pop("harness")
        print(f"\n{kind}: {full:,.0f} instructions per request in the application and the loop "
              f"(the loop's own share: {harness:,.0f})\n")  # fmt: skip
        print("| stage | instructions per request | share of the application's |\n|---|---|---|")
        rest = full - harness
        for stage, figure in figures.items():
            cost = full - figure
            rest -= cost
            print(f"| {stage} | {cost:,.0f} | {cost / (full - harness):.0%} |")
        print(f"| the rest (routing, Incoming, handler, answer sent) | {rest:,.0f} | {rest / (full - harness):.0%} |")


if __name__ == "__main__":
    main()
