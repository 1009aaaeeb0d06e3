"""Submit and query with callbacks in play, against the commit before callbacks, side by side.

    python bench/callbacks.py [--baseline f05af71] [--runs 5] [--duration 5] [--connections 32]

Four fakes run pinned to CPU 0, wrk and a receiver that never answers on CPU 1 (bench/bench.py
explains the side-by-side method): the shipped contract, now and at the baseline commit; and
Replicate's contract (examples/contracts/replicate.yaml) at `--speed 1000`, every submit giving a
`webhook` to the hanging receiver, now and at the baseline (which ignores it). Now, each task
succeeds 90 ms after its submit and its callback is attempted: 64 attempts hang for the
contract's 10 s timeout while the rest wait their turn in the store, all through the runs. The
figures are requests per second (median of the runs) and the median of the per-run ratios
now / baseline.

This is not a test: nothing in `make test` runs it or depends on timing.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import (  # the benchmark's own helpers
    BODY,
    KEY,
    LOAD_CPU,
    SUBMIT_PATH,
    Entrant,
    baseline_tree,
    drop_tree,
    fake,
    fake_tasks,
    free_port,
    parse_wrk,
    wrk,
    wrk_script,
)

ROOT = Path(__file__).resolve().parents[1]
REPLICATE = ROOT / "examples/contracts/replicate.yaml"
CREATE = "/v1/models/lightricks/ltx-2.5-fast/predictions"
HEADERS = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}


def hang(port: int) -> None:
    """A receiver that takes connections and requests and never answers."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(65536):
            pass
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handler, "127.0.0.1", port, backlog=4096)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def replicate_tasks(base: str, body: dict, count: int) -> str:
    task_id = ""
    with httpx.Client(base_url=base, headers=HEADERS, timeout=30) as client:
        for _ in range(count):
            answer = client.post(CREATE, json=body)
            answer.raise_for_status()
            task_id = answer.json()["id"]
    return f"/v1/predictions/{task_id}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", default="f05af71", help="the commit before callbacks")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--duration", type=float, default=5)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    port = free_port()
    receiver = subprocess.Popen(
        ["taskset", "-c", LOAD_CPU, sys.executable, __file__, "--hang-port", str(port)], start_new_session=True
    )
    hook = {"input": {"prompt": "The camera continues to pan"}, "webhook": f"http://127.0.0.1:{port}/hook"}
    tree = baseline_tree(args.baseline)
    quiet = ("--log-level", "warning")
    replicate = ("--contract", str(REPLICATE), "--speed", "1000", *quiet)
    groups = {
        "shipped contract": (SUBMIT_PATH, BODY, fake("now", *quiet), fake("baseline", *quiet, tree=tree)),
        "replicate + hanging receiver": (
            CREATE, hook, fake("now", *replicate), fake("baseline", *replicate, tree=tree),
        ),
    }  # fmt: skip
    try:
        for title, (path, body, now, before) in groups.items():
            entrants: list[Entrant] = [now, before]
            for entrant in entrants:
                entrant.server.start()
            try:
                rps: dict[str, dict[str, list[float]]] = {"submit": {}, "query": {}}
                for endpoint in ("submit", "query"):
                    targets = {}
                    for entrant in entrants:
                        if endpoint == "submit":
                            targets[entrant.server.name] = entrant.base + path
                        elif path == SUBMIT_PATH:
                            targets[entrant.server.name] = entrant.base + fake_tasks(entrant.base, 1000)
                        else:
                            targets[entrant.server.name] = entrant.base + replicate_tasks(entrant.base, body, 1000)
                    script = wrk_script(
                        "POST" if endpoint == "submit" else "GET", body if endpoint == "submit" else None, HEADERS
                    )
                    try:
                        for entrant in entrants:
                            wrk(targets[entrant.server.name], script, 2, args.connections)
                        for _ in range(args.runs):
                            for entrant in entrants:
                                got, _p50, _p99, errors = parse_wrk(
                                    wrk(targets[entrant.server.name], script, args.duration, args.connections)
                                )
                                assert errors == 0, f"{title} {entrant.server.name} {endpoint}: {errors} errors"
                                rps[endpoint].setdefault(entrant.server.name, []).append(got)
                    finally:
                        script.unlink()
                if "replicate" in title:
                    seen = httpx.get(now.base + "/__admin/callbacks", params={"limit": 1}, timeout=30).json()
                    print(f"  (now: {seen['count']} attempts made, {len(seen['pending'])} deliveries waiting)")
                for endpoint, figures in rps.items():
                    ratios = [a / b for a, b in zip(figures["now"], figures["baseline"], strict=True)]
                    print(
                        f"{title:30} {endpoint:6} now {statistics.median(figures['now']):8.0f} req/s, "
                        f"baseline {statistics.median(figures['baseline']):8.0f} req/s, "
                        f"now/baseline {statistics.median(ratios):.3f} (runs {min(ratios):.3f}-{max(ratios):.3f})",
                        flush=True,
                    )
            finally:
                for entrant in entrants:
                    entrant.server.stop()
    finally:
        receiver.kill()
        drop_tree(tree)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--hang-port":
        hang(int(sys.argv[2]))
    else:
        main()
