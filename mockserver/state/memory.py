"""The embedded store: everything in this process, nothing to install. The default.

Tasks live in a dict in the order they were created. A task is kept until `retention` scenario
seconds after its lifecycle ends (or after it was created, for one that never ends); then it is
gone, as the provider forgets tasks, and the memory it held is freed by later submissions.
Every method finishes without waiting, so the request path costs what it cost before the store
had an interface.
"""

from __future__ import annotations

import gc
import heapq
import itertools
import logging
import random
import string
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from mockserver.clock import Clock, ClockReading, Mode, check_advance
from mockserver.journal import Entry, Journal
from mockserver.scenarios import Scenario
from mockserver.state.base import (
    Attempt,
    Change,
    Delivery,
    Ending,
    Found,
    StoreUnavailable,
    Submission,
    Submitted,
)
from mockserver.state.task import Task, due_to_end, expired, gone, lifetime

_ID_ALPHABET = string.ascii_lowercase + string.digits
_PAIRS = [a + b for a in _ID_ALPHABET for b in _ID_ALPHABET]  # 1296 two-character pieces
_FREEZE_EVERY = 10_000
MAX_COUNTERS = 100_000  # (scenario, key) submission counters kept; any key is accepted, so bound them
LIST_WINDOW = 1000  # a key's newest tasks its index keeps (a client's list pages through those)
logger = logging.getLogger("mockserver")
MAX_DELIVERIES = 100_000  # callbacks waiting to be delivered; more are dropped (and counted)


def random_suffix(bits: Any) -> str:
    """8 lowercase letters or digits, uniformly, from `bits` (a `getrandbits`)."""
    while True:
        n = bits(42)
        if n < 2_821_109_907_456:  # 36**8: draw again rather than favour some suffixes
            return _PAIRS[n % 1296] + _PAIRS[n // 1296 % 1296] + _PAIRS[n // 1679616 % 1296] + _PAIRS[n // 2176782336]


class TaskStore:
    """Tasks by id, in the order they were created."""

    def __init__(self, seed: int | None = None, retention: float = 24 * 3600.0, gc_freeze: bool = False) -> None:
        self._tasks: dict[str, Task] = {}
        self._by_key: dict[str, deque[str]] = {}  # key id -> its newest task ids, oldest first
        self.lists = False  # whether the contract lists tasks: then each key's tasks are indexed
        self._random = random.Random(seed)
        self.retention = retention
        self.evicted = 0
        self._next_expiry = 0.0  # scenario time before which the oldest task cannot have expired
        self._gc_freeze = gc_freeze
        self._frozen_at = 0  # the store size at the last freeze

    def expired(self, task: Task, now: float) -> bool:
        return expired(task, now, self.retention)

    def evict(self, now: float, most: int = 64) -> int:
        """Forget up to `most` of the oldest tasks that have expired; cheap enough for every submit."""
        if now < self._next_expiry:
            return 0  # the oldest task cannot have expired yet (an admin change only makes it later)
        gone_ids: list[str] = []
        for task_id, task in self._tasks.items():
            if len(gone_ids) >= most or not self.expired(task, now):
                # the oldest live task holds the line: it is enough to look at the front
                self._next_expiry = task.created_at + lifetime(task) + self.retention if len(gone_ids) < most else now
                break
            gone_ids.append(task_id)
        else:
            self._next_expiry = 0.0
        for task_id in gone_ids:
            task = self._tasks.pop(task_id)
            ids = self._by_key.get(task.key_id)
            if ids and ids[0] == task_id:  # a key's tasks are evicted oldest first, like the store's
                ids.popleft()
                if not ids:
                    del self._by_key[task.key_id]
        self.evicted += len(gone_ids)
        return len(gone_ids)

    def __len__(self) -> int:
        return len(self._tasks)

    def __iter__(self) -> Iterator[Task]:
        return iter(list(self._tasks.values()))

    def newest(self, limit: int) -> list[Task]:
        """Up to `limit` tasks, the newest first (without copying the whole store)."""
        return list(itertools.islice(reversed(self._tasks.values()), limit))

    def of_key(self, key_id: str, limit: int) -> list[Task]:
        """Up to `limit` of one key's tasks, the newest first."""
        ids = self._by_key.get(key_id, ())
        found = (self._tasks.get(task_id) for task_id in reversed(ids))
        return list(itertools.islice((task for task in found if task is not None), limit))

    def get(self, task_id: str) -> Task | None:
        return self._tasks.get(task_id)

    def new_id(self, created: int, ids: Any = None) -> str:
        """A task id unique in this store: shaped by `ids` (a `contracts.ids.IdMaker`), else
        `task-unified-{created}-{8 lowercase letters or digits}`. After 8 draws that are all
        taken (a contract whose id pattern allows few ids), StoreUnavailable, as the shared store."""
        for _ in range(8):
            if ids is None:
                task_id = f"task-unified-{created}-{random_suffix(self._random.getrandbits)}"
            else:
                task_id = ids.make(created, self._random.getrandbits)
            if task_id not in self._tasks:
                return task_id
        raise StoreUnavailable(
            f"could not find a free task id in 8 draws: the {len(self._tasks):,} live tasks hold most of the ids the "
            "contract's id schema allows (widen its pattern, or lower --task-retention)"
        )

    def add(self, task: Task) -> Task:
        self._tasks[task.id] = task
        if self.lists:
            ids = self._by_key.get(task.key_id)
            if ids is None:
                ids = self._by_key[task.key_id] = deque(maxlen=LIST_WINDOW)
            ids.append(task.id)
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
        self._by_key.clear()


class MemoryStore:
    kind = "memory"

    def __init__(self, settings: Any, scenarios: Mapping[str, Scenario]) -> None:
        self.settings = settings
        self.scenarios = scenarios
        self.clock = Clock(settings.clock, settings.speed, settings.clock_start)
        self.journal = Journal(settings.journal_size)
        self.on_reset: Callable[[], None] | None = None  # this process's reset is the only one: the runtime handles it
        self.vocabulary = None  # scenarios are the runtime's own: it reads them with its vocabulary
        self._lists = False
        self.metered = False  # set by the runtime when the metrics are on
        self._fresh()

    @property
    def lists(self) -> bool:
        """Whether the contract lists tasks: then each key's newest tasks are indexed."""
        return self._lists

    @lists.setter
    def lists(self, value: bool) -> None:
        self._lists = self.tasks.lists = value

    def _fresh(self) -> None:
        settings = self.settings
        self.tasks = TaskStore(settings.seed, settings.task_retention, settings.gc_freeze)
        self.tasks.lists = self._lists
        self.submissions: Counter[tuple[str, str]] = Counter()  # (scenario, key_id) -> submits
        self._pushed: deque[list[Any]] = deque()  # [scenario, submissions left]
        self._default: Scenario | None = None  # None: the configured one
        self.random = random.Random(settings.seed)  # mix draws
        # Callbacks: deliveries by id (those waiting), a heap of (due, order, id) with stale entries
        # skipped, those claimed and not settled, each task's attempted events, the attempts made.
        self._deliveries: dict[str, Delivery] = {}
        self._due: list[tuple[float, int, str]] = []
        self._order = itertools.count()
        self._leased: dict[str, Delivery] = {}
        self._started: dict[str, dict[str, str]] = {}
        self._attempts: deque[Attempt] = deque(maxlen=settings.journal_size)
        self.dropped_deliveries = 0
        # The ledger (metered only): tasks whose end is not counted yet, per scenario in the order
        # they were created (so in the order they are due to end: a scenario's tasks end at the
        # same age), and those to look at again at a time (changed by the admin API, or not ended
        # when due). A task's `counted` is the claim.
        self._ending: dict[str, deque[Task]] = {}
        self._again: list[tuple[float, Task]] = []
        self._open = 0

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def status(self) -> dict[str, Any]:
        return {"kind": self.kind, "status": "up"}

    def estimate_now(self) -> float:
        return self.clock.now()

    # The clock.

    async def clock_reading(self) -> ClockReading:
        return self.clock.reading()

    async def advance(self, seconds: float) -> ClockReading:
        check_advance(self.clock.now(), seconds)
        self.clock.advance(seconds)
        return self.clock.reading()

    async def configure_clock(self, mode: Mode | None, speed: float | None) -> ClockReading:
        self.clock.configure(mode, speed)
        return self.clock.reading()

    # Submissions and tasks.

    def _choose(self, submission: Submission) -> tuple[Scenario, str]:
        if submission.header is not None:
            return submission.header, "header"
        if self._pushed:
            entry = self._pushed[0]
            entry[1] -= 1
            if entry[1] <= 0:
                self._pushed.popleft()
            return entry[0], "pushed"
        if submission.fallback is not None:
            return submission.fallback, submission.fallback_by
        return self._default or self.scenarios[self.settings.default_scenario], "default"

    async def submit(self, submission: Submission) -> Submitted:
        scenario, selected_by = self._choose(submission)
        via = None
        if len(self.submissions) >= MAX_COUNTERS:
            self.submissions.clear()
        if scenario.mix:
            via = scenario.name
            names = [name for name, _ in scenario.mix]
            scenario = self.scenarios[self.random.choices(names, [weight for _, weight in scenario.mix])[0]]
        elif scenario.sequence:
            via = scenario.name
            played = (scenario.name, submission.key_id)
            self.submissions[played] += 1
            scenario = self.scenarios[scenario.sequence[min(self.submissions[played], len(scenario.sequence)) - 1]]
        counter = (scenario.name, submission.key_id)
        self.submissions[counter] += 1
        count = self.submissions[counter]
        now = self.clock.now()
        task = None
        if scenario.submit_answer(count).makes_task:
            created = int(now)
            self.tasks.evict(now)
            task = self.tasks.add(
                # positional (the fields' order: state/task.py): keywords cost more on this path
                Task(
                    self.tasks.new_id(created, submission.ids),
                    created,
                    now,
                    scenario,
                    submission.model,
                    submission.aspect_ratio,
                    submission.generate_audio,
                    submission.key_id,
                    submission.seconds,
                    submission.width,
                    submission.height,
                    submission.request,
                    submission.callback_url,
                    submission.callback_events,
                    submission.trace,
                    via,
                    selected_by,
                )
            )
            if self.metered:
                queue = self._ending.get(scenario.name)
                if queue is None:
                    queue = self._ending[scenario.name] = deque()
                queue.append(task)
                self._open += 1
        return Submitted(scenario, selected_by, via, count, task, now)

    async def poll(self, task_id: str, *, count: bool, retained: bool = True) -> Found | None:
        task = self.tasks.get(task_id)
        if task is None:
            return None
        now = self.clock.now()
        if gone(task, now, self.tasks.retention if retained else None):
            return Found(task, now, True)
        if count:
            task.polls += 1
            task.version += 1
            if self.metered:
                previous, task.polled_at = task.polled_at, time.monotonic()
                if previous:
                    return Found(task, now, False, task.polled_at - previous)
        return Found(task, now, False)

    async def update(self, task_id: str, change: Change) -> Found | None:
        task = self.tasks.get(task_id)
        if task is None:
            return None
        now = self.clock.now()
        change(task, now)
        task.version += 1
        if self.metered and not task.counted:
            self._again.append((now, task))  # it may have ended now: looked at on the next count
        return Found(task, now, False)

    async def tasks_now(self) -> tuple[list[Task], float]:
        now = self.clock.now()
        return [task for task in self.tasks if not self.tasks.expired(task, now)], now

    async def newest_tasks(self, limit: int) -> tuple[list[Task], int, float]:
        now = self.clock.now()
        return [task for task in self.tasks.newest(limit) if not self.tasks.expired(task, now)], len(self.tasks), now

    async def tasks_of(self, key_id: str, limit: int) -> tuple[list[Task], float]:
        now = self.clock.now()
        return [task for task in self.tasks.of_key(key_id, limit) if not self.tasks.expired(task, now)], now

    async def counts(self) -> dict[str, int]:
        return {"tasks": len(self.tasks), "evicted": self.tasks.evicted, "journal": len(self.journal)}

    # Tasks that ended.

    async def ending(self, limit: int) -> tuple[list[Ending], int, float]:
        now = self.clock.now()
        retention = self.tasks.retention
        found: list[Ending] = []
        for queue in self._ending.values():
            while queue and len(found) < limit:
                task = queue[0]
                due = task.created_at + due_to_end(task.scenario, retention)
                if not task.counted and due > now:
                    break  # the others of this scenario are due later
                queue.popleft()
                if not task.counted:
                    found.append(Ending(task.id, task.scenario.name, due, task))
        again, self._again = self._again, []
        for at, task in again:
            if task.counted:
                continue
            if at <= now and len(found) < limit:
                found.append(Ending(task.id, task.scenario.name, at, task))
            else:
                self._again.append((at, task))
        return found, self._open, now

    async def ended(self, done: list[Ending], later: list[tuple[Ending, float]]) -> list[Ending]:
        taken = []
        for ending in done:
            task = ending.task
            if task is not None and not task.counted:
                task.counted = True
                taken.append(ending)
        self._open -= len(taken)
        self._again += [(at, ending.task) for ending, at in later if ending.task is not None]
        return taken

    def journal_dropped(self) -> int:
        return self.journal.dropped

    # Callbacks.

    async def schedule(self, task_id: str, deliveries: list[Delivery], *, replan: bool = False) -> None:
        if replan:
            for delivery in [
                d for d in self._deliveries.values() if d.task_id == task_id and d.attempt == 1 and not d.redelivery
            ]:
                del self._deliveries[delivery.id]  # its heap entry is skipped when it comes up
        for delivery in deliveries:
            if len(self._deliveries) >= MAX_DELIVERIES and delivery.attempt == 1:  # a retry keeps its place
                if self.dropped_deliveries % 10_000 == 0:
                    logger.warning(
                        "callbacks: %d deliveries are waiting, the most kept; new ones are dropped (%d so far), "
                        "starting with task %s's", MAX_DELIVERIES, self.dropped_deliveries + 1, delivery.task_id,
                    )  # fmt: skip
                self.dropped_deliveries += 1  # bounded: a flood of tasks cannot hold memory for ever
                continue
            self._deliveries[delivery.id] = delivery
            heapq.heappush(self._due, (delivery.due, next(self._order), delivery.id))
        if len(self._due) > 2 * len(self._deliveries) + 1024:  # too many stale entries: rebuild
            self._due = [(d.due, next(self._order), d.id) for d in self._deliveries.values()]
            heapq.heapify(self._due)

    def _next(self) -> float | None:
        while self._due:
            due, _, delivery_id = self._due[0]
            delivery = self._deliveries.get(delivery_id)
            if delivery is not None and delivery.due == due:
                return due
            heapq.heappop(self._due)
        return None

    async def claim(self, limit: int, lease: float) -> tuple[list[Delivery], float, float | None]:
        now = self.clock.now()
        claimed: list[Delivery] = []
        while len(claimed) < limit and (due := self._next()) is not None and due <= now:
            _, _, delivery_id = heapq.heappop(self._due)
            delivery = self._deliveries.pop(delivery_id)
            self._leased[delivery.id] = delivery
            claimed.append(delivery)
        return claimed, now, self._next()

    async def settle(self, delivery: Delivery, attempt: Attempt, retry_at: float | None) -> None:
        if self._leased.pop(delivery.id, None) is None:
            return  # the store was reset while it was being attempted
        self._attempts.appendleft(attempt)
        self._started.setdefault(delivery.task_id, {})[delivery.event] = delivery.webhook_id
        if len(self._started) > MAX_DELIVERIES:
            del self._started[next(iter(self._started))]  # the oldest task's: bounded like the rest
        if retry_at is not None:
            delivery.due, delivery.attempt = retry_at, delivery.attempt + 1
            await self.schedule(delivery.task_id, [delivery])

    async def attempts(self, task_id: str | None = None, limit: int | None = None) -> list[Attempt]:
        found = (attempt for attempt in self._attempts if task_id is None or attempt.task_id == task_id)
        return list(itertools.islice(found, limit))

    async def pending(self, task_id: str | None = None) -> list[Delivery]:
        waiting = [*self._leased.values(), *self._deliveries.values()]
        return sorted((d for d in waiting if task_id is None or d.task_id == task_id), key=lambda d: d.due)

    async def started(self, task_id: str) -> dict[str, str]:
        return dict(self._started.get(task_id, {}))

    # Run-time choices.

    async def register(self, scenario: Scenario) -> None:
        pass  # this process's scenarios are the runtime's own dict

    async def push(self, scenario: Scenario, count: int) -> None:
        self._pushed.append([scenario, count])

    async def pushed(self) -> list[tuple[Scenario, int]]:
        return [(scenario, left) for scenario, left in self._pushed]

    async def clear_pushed(self) -> None:
        self._pushed.clear()

    async def set_default(self, scenario: Scenario) -> None:
        self._default = scenario

    async def default(self) -> Scenario:
        return self._default or self.scenarios[self.settings.default_scenario]

    # The journal.

    def record(self, *fields: Any) -> None:
        self.journal.record(*fields)

    def sent(self) -> None:
        return None  # recorded already

    async def flush(self) -> None:
        pass

    async def journal_entries(self, limit: int | None = None) -> list[Entry]:
        return self.journal.entries(limit)

    async def clear_journal(self) -> None:
        self.journal.clear()

    async def reset(self) -> None:
        """Forget every task, journal entry, counter and run-time choice. The clock goes back to its
        configured mode and speed but keeps its reading: scenario time never runs backward."""
        self._fresh()
        self.journal.clear()
        self.clock.configure(mode=self.settings.clock, speed=self.settings.speed)
