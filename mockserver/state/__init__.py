"""Everything the fake remembers, behind one interface with two implementations.

    Store (protocol)      tasks with their polls, held-step reads and what the admin API forced;
                          per-key submission counters; scenarios pushed for the next submissions;
                          the run-time default scenario; the clock; the request journal; reset
      MemoryStore         in this process: the embedded default, needs nothing (`memory.py`)
      RedisStore          on a Redis server: every replica and worker on it acts as one fake
                          (`redis.py`, Lua scripts in `scripts/`)

    StoreUnavailable      the store cannot be reached; the API answers 503 `store_unavailable`

A store keeps facts, never a computed status: `mockserver.lifecycle` computes a task's state
from its scenario, its facts and the clock's reading on every read. Every operation a request
needs is one call (one round trip to Redis), and every change that must be exact under
concurrency (counting a poll, using up a pushed scenario, a per-key counter) happens inside the
store, atomically.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mockserver.scenarios import Scenario
from mockserver.state.base import Change, Ending, Found, Store, StoreUnavailable, Submission, Submitted
from mockserver.state.task import Task


def open_store(url: str, settings: Any, scenarios: dict[str, Scenario], fingerprint: Mapping[str, str]) -> Store:
    """The store a URL names: `memory` or `redis://` / `rediss://` (which needs the `redis` extra).
    `fingerprint` is what replicas on a shared store must have in common."""
    if url == "memory":
        from mockserver.state.memory import MemoryStore

        return MemoryStore(settings, scenarios)
    if url.startswith(("redis://", "rediss://", "unix://")):
        try:
            from mockserver.state.redis import RedisStore
        except ImportError as exc:
            raise ValueError(f"a Redis store needs redis-py: pip install 'veo-mockserver[redis]' ({exc})") from None
        return RedisStore(url, settings, scenarios, fingerprint)
    raise ValueError(f"--store must be 'memory' or a redis:// or rediss:// URL, got {url.split('://')[0]!r}://...")


__all__ = [
    "Change",
    "ClockReading",
    "Ending",
    "Found",
    "Store",
    "StoreUnavailable",
    "Submission",
    "Submitted",
    "Task",
    "open_store",
]
