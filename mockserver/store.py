"""The tasks the fake has accepted, by id.

A task keeps only what its lifecycle needs: the scenario, when it was created, the request
fields that shape its result, how many polls it has had and how many polls have seen each held
step, and what the admin API forced on it. Its state is never stored;
`mockserver.lifecycle.task_state` computes it on every read.
"""

from __future__ import annotations

import gc
import random
import string
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from mockserver.scenarios import Scenario

_ID_ALPHABET = string.ascii_lowercase + string.digits
_PAIRS = [a + b for a in _ID_ALPHABET for b in _ID_ALPHABET]  # 1296 two-character pieces
_FREEZE_EVERY = 10_000


@dataclass(slots=True, eq=False)
class Task:
    id: str
    created: int
    created_at: float
    scenario: Scenario
    model: str
    aspect_ratio: str
    generate_audio: bool
    key_id: str
    via: str | None = None  # the mix the scenario was drawn from, if any
    selected_by: str = "default"
    polls: int = 0
    reads: dict[int, int] | None = None  # polls per held step; made on the first one
    forced: Any = None  # a lifecycle State the admin API fixed for good
    completed_at: float | None = None  # elapsed seconds at a forced completion
    frozen: float | None = None  # elapsed seconds at which the admin API stalled it


class TaskStore:
    """Tasks by id, in the order they were created. A task is kept until `retention` scenario
    seconds after its lifecycle ends (or after it was created, for one that never ends); then it
    is gone, as the provider forgets tasks, and the memory it held is freed."""

    def __init__(self, seed: int | None = None, retention: float = 24 * 3600.0, gc_freeze: bool = False) -> None:
        self._tasks: dict[str, Task] = {}
        self._random = random.Random(seed)
        self.retention = retention
        self.evicted = 0
        self._gc_freeze = gc_freeze
        self._frozen_at = 0  # the store size at the last freeze

    def expired(self, task: Task, now: float) -> bool:
        ends = task.scenario.ends_at or 0.0
        if task.forced is not None or task.frozen is not None:
            ends = max(ends, task.completed_at or 0.0, task.frozen or 0.0)
        return now - task.created_at - ends > self.retention

    def evict(self, now: float, most: int = 64) -> int:
        """Forget up to `most` of the oldest tasks that have expired; cheap enough for every submit."""
        gone = []
        for task_id, task in self._tasks.items():
            if len(gone) >= most or not self.expired(task, now):
                break  # the oldest live task holds the line: it is enough to look at the front
            gone.append(task_id)
        for task_id in gone:
            del self._tasks[task_id]
        self.evicted += len(gone)
        return len(gone)

    def __len__(self) -> int:
        return len(self._tasks)

    def __iter__(self) -> Iterator[Task]:
        return iter(list(self._tasks.values()))

    def get(self, task_id: str) -> Task | None:
        return self._tasks.get(task_id)

    def new_id(self, created: int) -> str:
        """`task-unified-{created}-{8 lowercase letters or digits}`, unique in this store."""
        bits = self._random.getrandbits
        while True:
            n = bits(42)
            if n >= 2_821_109_907_456:  # 36**8: draw again rather than favour some suffixes
                continue
            suffix = _PAIRS[n % 1296] + _PAIRS[n // 1296 % 1296] + _PAIRS[n // 1679616 % 1296] + _PAIRS[n // 2176782336]
            task_id = f"task-unified-{created}-{suffix}"
            if task_id not in self._tasks:
                return task_id

    def add(self, task: Task) -> Task:
        self._tasks[task.id] = task
        if self._gc_freeze and len(self._tasks) >= self._frozen_at + _FREEZE_EVERY:
            # Tasks live long and hold no reference cycles: move them out of the cyclic garbage
            # collector's reach, so that a million of them do not make each full collection (and
            # the requests it pauses) slower. Reference counting still frees them when removed.
            # Collect first, so that no cyclic garbage is frozen with them; freeze again only once
            # the store has grown by another _FREEZE_EVERY.
            gc.collect()
            gc.freeze()
            self._frozen_at = len(self._tasks)
        return task

    def clear(self) -> None:
        self._tasks.clear()
