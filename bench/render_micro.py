"""How long rendering one answer takes, apart from HTTP: the poll answer of a processing and of a
completed task and the encoded submit answer, with the shipped seed contract.

    .venv/bin/python bench/render_micro.py

Best of 5 repeats of 200,000 calls each, in microseconds per call. Not a test; numbers depend on
the machine (docs/benchmarks.md has the figures and the command that compares two commits).
"""

from __future__ import annotations

import timeit

from mockserver import Settings, create_app
from mockserver.lifecycle import State
from mockserver.scenarios import UNSET
from mockserver.state.task import Task

runtime = create_app(Settings(clock="manual")).state.runtime
task = Task(
    "task-unified-1757165031-abcd1234",
    1757165031,
    0.0,
    runtime.scenarios["default"],
    "veo-3.1-extend",
    "16:9",
    True,
    "k",
)
processing = State(1, "running", 40, UNSET, None)
completed = State(3, "succeeded", 100, UNSET, None)
render = runtime.render
CALLS = 200_000
for name, call in [
    ("poll answer, processing", lambda: render.task(task, processing, "")),
    ("poll answer, completed", lambda: render.task(task, completed, "http://x")),
    ("submit answer, encoded", lambda: render.created_json(task, 45)),
]:
    best = min(timeit.repeat(call, number=CALLS, repeat=5)) / CALLS * 1e6
    print(f"{name}: {best:.2f} us")
