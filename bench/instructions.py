"""Instructions per submit and per poll, counted by valgrind's callgrind: a figure that does not
move with the machine's load, to compare two commits where requests per second are too noisy.

    python bench/instructions.py [--baseline REF] [--requests 2000] [--webhook] [--metrics]

Each count runs the fake's ASGI application in one process, with no sockets (the path every
request takes, from the fast path to the encoded answer and the journal), `--requests` more
times than a first run, so that start-up and warm-up fall out: (Ir of the long run - Ir of the
short run) / the difference in requests. With `--baseline REF`, the same for a worktree of that
commit, and the ratio. `--webhook`: under Replicate's contract (examples/contracts/replicate.yaml),
each submit giving a `webhook` (its deliveries planned and stored: the request path's share of
callbacks; a commit before callbacks ignores the field). `--metrics`: this checkout also with the
metrics off (`Settings(metrics=False)`, as `serve --no-metrics`), and the cost of having them on.
Needs valgrind (apt-get install valgrind). Not a test.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHORT = 500

LOOP = """
import asyncio, json, os, sys
from mockserver import Settings, create_app

KIND, N = sys.argv[1], int(sys.argv[2])
WEBHOOK = bool(os.environ.get("BENCH_WEBHOOK"))
if WEBHOOK:
    CONTRACT, QUERY = "examples/contracts/replicate.yaml", "/v1/predictions/"
    SUBMIT = "/v1/models/lightricks/ltx-2.5-fast/predictions"
    BODY = json.dumps({"input": {"prompt": "The camera continues to pan"}, "webhook": "http://127.0.0.1:9/hook"}).encode()
else:
    CONTRACT, SUBMIT, QUERY = "seed", "/v1/videos/generations", "/v1/tasks/"
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


async def main():
    off = {"metrics": False} if os.environ.get("BENCH_NO_METRICS") else {}  # (an older commit has no such setting)
    app = create_app(Settings(clock="manual", log_level="warning", contract=CONTRACT, **off))
    task = json.loads((await call(app, "POST", SUBMIT, BODY))[1]["body"])["id"]
    await app.app.state.runtime.advance(30)  # processing: progress ramps (deliveries are due at 90 s)
    for _ in range(N):
        if KIND == "submit":
            await call(app, "POST", SUBMIT, BODY)
        else:
            await call(app, "GET", QUERY + task)


asyncio.run(main())
"""


def count(tree: Path, kind: str, requests: int, loop: Path, webhook: bool = False, metrics: bool = True) -> float:
    """Instructions per request of `kind` for the fake in `tree` (with its metrics on or off)."""
    totals = []
    for n in (SHORT, SHORT + requests):
        with tempfile.NamedTemporaryFile(suffix=".out") as out:
            env = {**os.environ, "PYTHONPATH": str(tree), "BENCH_WEBHOOK": "1" if webhook else "",
                   "BENCH_NO_METRICS": "" if metrics else "1"}  # fmt: skip
            result = subprocess.run(
                ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out.name}", sys.executable, str(loop), kind, str(n)],
                cwd=tree, env=env, capture_output=True, text=True, check=True,
            )  # fmt: skip
        totals.append(int(re.search(r"Collected : (\d+)", result.stderr).group(1)))
    return (totals[1] - totals[0]) / requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", metavar="REF", help="also count a worktree of this commit, and compare")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--webhook", action="store_true", help="Replicate's contract, every submit giving a webhook")
    parser.add_argument("--metrics", action="store_true", help="this checkout with its metrics off too, and the ratio")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("bench/instructions.py needs valgrind (apt-get install valgrind)")
    loop = Path(tempfile.mkstemp(suffix=".py", prefix="mockserver-loop-")[1])
    loop.write_text(LOOP)
    trees = {"this checkout": ROOT}
    earlier = None
    try:
        if args.baseline:
            earlier = Path(tempfile.mkdtemp(prefix="mockserver-baseline-"))
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(earlier), args.baseline],
                           check=True, capture_output=True)  # fmt: skip
            trees[args.baseline] = earlier
        figures = {
            name: {kind: count(tree, kind, args.requests, loop, args.webhook) for kind in ("submit", "query")}
            for name, tree in trees.items()
        }
        if args.metrics:
            figures["this checkout, --no-metrics"] = {
                kind: count(ROOT, kind, args.requests, loop, args.webhook, metrics=False)
                for kind in ("submit", "query")
            }
    finally:
        loop.unlink()
        if earlier is not None:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(earlier)],
                check=False,
                capture_output=True,
            )
    for name, kinds in figures.items():
        print(f"{name}: submit {kinds['submit']:,.0f}, query {kinds['query']:,.0f} instructions per request")
    if args.baseline:
        mine, theirs = figures["this checkout"], figures[args.baseline]
        print(
            f"this checkout vs {args.baseline}: submit {mine['submit'] / theirs['submit']:.1%}, "
            f"query {mine['query'] / theirs['query']:.1%} of its instructions"
        )
    if args.metrics:
        on, off = figures["this checkout"], figures["this checkout, --no-metrics"]
        print(
            f"metrics on vs off: submit {on['submit'] / off['submit']:.1%}, query {on['query'] / off['query']:.1%} "
            "of the instructions without them"
        )


if __name__ == "__main__":
    main()
