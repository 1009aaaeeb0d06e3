"""The shared store: every replica and worker on one Redis acts as one fake, and a restart loses
nothing. (`pip install 'veo-mockserver[redis]'`)

Keys, all under `{prefix}:` (one hash slot):

    clock               mode, speed, anchor (scenario time) and real (Redis's TIME at the anchor)
    registry, added     scenario name -> what the scripts need of it (JSON); `added` holds those
                        added at run time (`added:src` their source, for the other replicas)
    t:<task id>         a task's facts (hash); expires with --task-retention
    tasks               task ids by expiry (sorted set): listing, eviction, reset
    pushed              scenarios pushed for the next submissions ("count<TAB>name", head next)
    default             the run-time default scenario
    submissions         submissions per (scenario, key id)
    created             tasks created (numbers them, for listing in order)
    journal, journal:seq  the request journal (a capped stream) and its numbering
    fingerprint, replicas  what the live replicas play (contract, scenarios...) and who they are
    evicted             tasks gone by their TTL

Every operation a request needs is one Lua script (scripts/*.lua, sent by SHA1 and loaded
again if Redis has forgotten them), so it is one round trip and atomic: a poll is counted once
whichever replica answers it, a pushed scenario is used exactly as often as it was pushed, a
per-key counter is exact. Time is Redis's own (TIME), so replicas on hosts whose clocks differ
still agree on scenario time. Changes the admin API makes to one task are read, computed in
Python (the lifecycle lives there) and written only if the task did not change meanwhile
(a version compare-and-set), else read again.

Journal entries go to Redis in batches, one command per turn of the event loop, and each answer
leaves only after its entry is written to the connection (not confirmed: a request costs one
round trip, its state's). Reads of the journal on the replica that answered always see the
entry (they wait for the confirmations); a read through another replica sees it once Redis has
read it, which happens before the client could have received the answer and asked.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import random
import socket
import time
from collections.abc import Mapping
from importlib.resources import files
from typing import Any

from redis.exceptions import NoScriptError, ResponseError

from mockserver.clock import LATEST, ClockError, ClockReading, Mode, check_advance, check_speed
from mockserver.journal import Entry
from mockserver.lifecycle import FORCED_STEP, State
from mockserver.scenarios import UNSET, Scenario, ScenarioError, parse
from mockserver.settings import mask_url
from mockserver.state import Change, Found, StoreUnavailable, Submission, Submitted
from mockserver.state.link import Link
from mockserver.state.memory import random_suffix
from mockserver.state.task import Task, lifetime

logger = logging.getLogger("mockserver")
HEARTBEAT = 15.0  # seconds a replica counts as alive after it last said so (it says so every third of it)
_SCRIPTS = ("submit", "poll", "update", "clock", "journal", "tasks", "counts", "reset", "init", "heartbeat")
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_DECODER = json.JSONDecoder()


class StoreMismatch(ValueError):
    """This replica's contract, scenarios or settings differ from those the live replicas play."""


def _load_scripts() -> dict[str, str]:
    folder = files("mockserver.state") / "scripts"
    common = (folder / "common.lua").read_text()
    return {name: common + "\n" + (folder / f"{name}.lua").read_text() for name in _SCRIPTS}


SCRIPTS = _load_scripts()
SHAS = {name: hashlib.sha1(text.encode()).hexdigest() for name, text in SCRIPTS.items()}


def registry_entry(scenario: Scenario) -> str:
    """What the scripts need to know of a scenario, as JSON: for a mix, its members; otherwise its
    submit plan (times, creates a task), held steps (index, at, polls), poll rules (every, first,
    numbers, answered normally), when it disappears and when it ends."""
    if scenario.mix:
        entry: dict[str, Any] = {"mix": [[name, weight] for name, weight in scenario.mix]}
    else:
        entry = {"plan": [[-1 if a.times is None else a.times, int(a.makes_task)] for a in scenario.submit]}
        if scenario.held_steps:
            entry["held"] = [[i, scenario.timeline[i].at, scenario.timeline[i].polls] for i in scenario.held_steps]
        if scenario.polls:
            entry["polls"] = [
                [int(rule.every), rule.first, {str(n): 1 for n in sorted(rule.numbers)}, int(rule.answer.status == 200)]
                for rule in scenario.polls
            ]
        if scenario.disappears_after is not None:
            entry["gone"] = scenario.disappears_after
        if scenario.ends_at is not None:
            entry["ends"] = scenario.ends_at
    return json.dumps(entry, sort_keys=True, separators=(",", ":"))


def _latin(raw: bytes) -> str:
    return raw.decode("latin-1")


def encode_entry(fields: tuple[Any, ...]) -> str:
    """A journal entry (the `Entry` fields after `id`) as JSON; bytes travel as latin-1 text."""
    (
        now,
        wall,
        method,
        path,
        query,
        headers,
        key,
        body,
        status,
        duration,
        task_id,
        scenario,
        fault,
        answer_headers,
        answer,
    ) = fields
    return _ENCODER.encode(
        [
            now,
            wall,
            method,
            path,
            query,
            [[_latin(n), _latin(v)] for n, v in headers],
            key,
            _latin(body),
            status,
            duration,
            task_id,
            scenario,
            fault,
            [[_latin(n), _latin(v)] for n, v in answer_headers],
            _latin(answer),
        ]  # fmt: skip
    )


def decode_entry(number: int, text: str) -> Entry:
    f = _DECODER.decode(text)

    def raw(pairs: list[list[str]]) -> tuple[tuple[bytes, bytes], ...]:
        return tuple((n.encode("latin-1"), v.encode("latin-1")) for n, v in pairs)

    return Entry(
        number, f[0], f[1], f[2], f[3], f[4], raw(f[5]), f[6], f[7].encode("latin-1"), f[8], f[9], f[10], f[11], f[12],
        raw(f[13]), f[14].encode("latin-1"),
    )  # fmt: skip


def _forced_json(state: State | None) -> str:
    if state is None:
        return ""
    results = "unset" if state.results is UNSET else state.results
    return json.dumps({"status": state.status, "progress": state.progress, "results": results, "error": state.error})


def _forced(text: str | None) -> State | None:
    if not text:
        return None
    data = json.loads(text)
    results = UNSET if data["results"] == "unset" else data["results"]
    return State(FORCED_STEP, data["status"], data["progress"], results, data["error"])


def _number(text: str | None) -> float | None:
    return None if text is None or text == "" else float(text)


def _text(value: float | None) -> str:
    return "" if value is None else repr(value)


class RedisStore:
    kind = "redis"

    def __init__(self, url: str, settings: Any, scenarios: dict[str, Scenario], fingerprint: Mapping[str, str]) -> None:
        prefix = settings.store_prefix
        if not prefix or any(c in prefix for c in "{}\r\n\t ") or len(prefix) > 100:
            raise ValueError(f"--store-prefix must be 1 to 100 characters without braces or spaces, got {prefix!r}")
        self.url = url
        self.display = mask_url(url)
        self.prefix = "{" + prefix + "}:"
        self.settings = settings
        self.scenarios = scenarios
        self._loaded = dict(scenarios)
        self._fingerprint = json.dumps(dict(fingerprint), sort_keys=True)
        self._link = Link(url, self.display)
        self._random = random.Random(settings.seed)
        self._replica = f"{socket.gethostname()}:{os.getpid()}:{random.getrandbits(32):08x}"
        self._heartbeat: asyncio.Task[None] | None = None
        self._journal: list[str] = []
        self._journal_sent: asyncio.Future[None] | None = None
        self._journal_writes: set[asyncio.Future[Any]] = set()
        self._journal_retries: set[asyncio.Task[Any]] = set()
        # The clock as this process last read it, for journal stamps between reads.
        self._seen: tuple[float, float, str, float] = (time.time(), time.monotonic(), settings.clock, settings.speed)
        self._started: asyncio.AbstractEventLoop | None = None
        self.took_over = False

    # Scripts.

    async def _eval(self, name: str, keys: tuple[str, ...], *args: Any) -> Any:
        for _ in range(3):
            try:
                return await self._link.call("EVALSHA", SHAS[name], len(keys), *keys, self.prefix, *args)
            except NoScriptError:  # a restarted (or flushed) Redis: load the scripts and try again
                for script in _SCRIPTS:
                    await self._link.call("SCRIPT", "LOAD", SCRIPTS[script])
            except ResponseError as error:
                if not str(error).startswith("NOINIT"):
                    raise
                try:  # Redis lost its data: this replica brings back what it knows
                    await self._join(register=True)
                except StoreMismatch as exc:  # ...unless a replica of another set got there first
                    raise StoreUnavailable(str(exc)) from None
        raise StoreUnavailable(f"Redis at {self.display} keeps losing its scripts or data")

    def _key(self, name: str) -> str:
        return self.prefix + name

    def _see(self, now: float, mode: str | None = None, speed: float | None = None) -> None:
        _, _, old_mode, old_speed = self._seen
        self._seen = (now, time.monotonic(), mode or old_mode, old_speed if speed is None else speed)

    def estimate_now(self) -> float:
        now, at, mode, speed = self._seen
        return now if mode == "manual" else now + (time.monotonic() - at) * speed

    # Start-up and health.

    async def _join(self, register: bool) -> None:
        settings = self.settings
        pairs = [item for name, scenario in self._loaded.items() for item in (name, registry_entry(scenario))]
        replica = self._replica if register else ""
        answer = await self._eval("init", (), replica, HEARTBEAT, self._fingerprint, *pairs)
        if answer[0] == "differs":
            raise StoreMismatch(self._differences(answer[1], int(answer[2])))
        self.took_over = self.took_over or answer[1] == 1
        start = "" if settings.clock_start is None else repr(float(settings.clock_start))
        await self._clock("init", settings.clock, repr(float(settings.speed)), start)

    def _differences(self, stored_text: str, live: int) -> str:
        stored = json.loads(stored_text)
        mine = json.loads(self._fingerprint)
        found = []
        for part in sorted(set(stored) | set(mine)):
            if part not in stored:
                found.append(f"{part} only on this replica")
            elif part not in mine:
                found.append(f"{part} only on the others")
            elif stored[part] != mine[part]:
                shown = f" (here {mine[part]}, there {stored[part]})" if part == "contract" else ""
                found.append(f"{part} differs{shown}")
        return (
            f"this replica does not play what the {live} live replica(s) on {self.display} (prefix "
            f"{self.prefix[1:-2]!r}) play: {'; '.join(found)}. Start it with the same contract, scenario "
            "folders, key maps and settings, or under another --store-prefix (or stop the others first)"
        )

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self._started is loop:
            return
        self._started = loop
        await self._join(register=True)
        self._heartbeat = loop.create_task(self._beat())

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT / 3)
            try:
                await self._eval("heartbeat", (), self._replica, HEARTBEAT)
            except (StoreUnavailable, ResponseError) as exc:
                logger.warning("mockserver: %s", exc)

    async def close(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            self._heartbeat = None
            try:
                await self._eval("heartbeat", (), self._replica, 0)
            except (StoreUnavailable, ResponseError):
                pass
        self._started = None
        await self._link.close()

    async def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "url": self.display, "prefix": self.settings.store_prefix}
        try:
            await self._link.call("PING")
        except StoreUnavailable as exc:
            return {**out, "status": "down", "problem": str(exc)}
        return {**out, "status": "up"}

    async def counts(self) -> dict[str, int]:
        tasks, evicted, journal, replicas = await self._eval("counts", (), self.settings.journal_size)
        return {"tasks": tasks, "evicted": evicted, "journal": journal, "replicas": replicas}

    # The clock.

    async def _clock(self, *args: Any) -> ClockReading:
        try:
            mode, speed, now = await self._eval("clock", (), *args)
        except ResponseError as error:
            if str(error).startswith("LATEST"):
                raise ClockError(str(error).split(" ", 1)[1]) from None
            raise
        self._see(float(now), mode, float(speed))
        return ClockReading(mode, float(speed), float(now))

    async def clock_reading(self) -> ClockReading:
        return await self._clock("read")

    async def advance(self, seconds: float) -> ClockReading:
        check_advance(0.0, seconds)
        return await self._clock("advance", repr(float(seconds)), repr(LATEST))

    async def configure_clock(self, mode: Mode | None, speed: float | None) -> ClockReading:
        if speed is not None:
            check_speed(speed)
        return await self._clock("configure", mode or "", "" if speed is None else repr(float(speed)))

    # Scenarios by name.

    async def _scenario(self, name: str) -> Scenario | None:
        """A scenario by name: loaded here, or added at run time by another replica."""
        scenario = self.scenarios.get(name)
        if scenario is None:
            source = await self._link.call("HGET", self._key("added:src"), name)
            if source is not None:
                try:
                    scenario = parse(json.loads(source), f"<{name}, added at run time>")
                except (ValueError, ScenarioError):
                    return None
                self.scenarios[name] = scenario
        return scenario

    async def _named(self, name: str) -> Scenario:
        scenario = await self._scenario(name)
        if scenario is None:
            raise StoreUnavailable(f"the scenario {name!r} in Redis at {self.display} is not loaded on this replica")
        return scenario

    async def register(self, scenario: Scenario) -> None:
        entry = registry_entry(scenario)
        source = json.dumps(scenario.data, default=str)
        await self._link.call("HSET", self._key("added"), scenario.name, entry)
        await self._link.call("HSET", self._key("added:src"), scenario.name, source)

    # Submissions and tasks.

    async def submit(self, submission: Submission) -> Submitted:
        settings = self.settings
        header = submission.header.name if submission.header is not None else ""
        fallback = submission.fallback.name if submission.fallback is not None else ""
        for _ in range(8):
            try:
                name, how, via, count, _, task_id, now_text = await self._eval(
                    "submit", (),
                    header, fallback, submission.fallback_by, settings.default_scenario, submission.key_id,
                    repr(self._random.random()), random_suffix(self._random.getrandbits), submission.model,
                    submission.aspect_ratio, "1" if submission.generate_audio else "0", repr(float(settings.task_retention)),
                )  # fmt: skip
                break
            except ResponseError as error:
                if not str(error).startswith("IDTAKEN"):
                    if str(error).startswith("NOSCENARIO"):
                        raise StoreUnavailable(f"{error} (in Redis at {self.display})") from None
                    raise
        else:
            raise StoreUnavailable("could not find a free task id")
        now = float(now_text)
        self._see(now)
        scenario = await self._named(name)
        task = None
        if task_id:
            task = Task(
                id=task_id,
                created=int(now),
                created_at=now,
                scenario=scenario,
                model=submission.model,
                aspect_ratio=submission.aspect_ratio,
                generate_audio=submission.generate_audio,
                key_id=submission.key_id,
                via=via or None,
                selected_by=how,
            )
        return Submitted(scenario, how, via or None, int(count), task, now)

    async def _task(self, task_id: str, flat: list[str], counted: bool) -> Task | None:
        h = dict(zip(flat[::2], flat[1::2]))
        scenario = await self._scenario(h["s"])
        if scenario is None:
            return None
        reads = {int(k[1:]): int(v) for k, v in h.items() if k[0] == "r" and k[1:].isdigit()}
        return Task(
            id=task_id,
            created=int(h["c"]),
            created_at=float(h["ca"]),
            scenario=scenario,
            model=h.get("m", ""),
            aspect_ratio=h.get("ar", "16:9"),
            generate_audio=h.get("ga") == "1",
            key_id=h.get("k", ""),
            via=h.get("v") or None,
            selected_by=h.get("sb", "default"),
            polls=int(h.get("p", 0)) + counted,
            reads=reads or None,
            forced=_forced(h.get("f")),
            completed_at=_number(h.get("cat")),
            frozen=_number(h.get("fz")),
            version=int(h.get("ver", 0)) + counted,
        )

    async def poll(self, task_id: str, *, count: bool, retained: bool = True) -> Found | None:
        answer = await self._eval(
            "poll", (self._key("t:" + task_id),), "1" if count else "0", "1" if retained else "0",
            repr(float(self.settings.task_retention)),
        )  # fmt: skip
        if answer is None:
            return None
        verdict, now_text, flat = answer
        now = float(now_text)
        self._see(now)
        counted = count and verdict == "ok"
        task = await self._task(task_id, flat, counted)
        if task is None:
            return None
        return Found(task, now, verdict == "gone")

    async def update(self, task_id: str, change: Change) -> Found | None:
        for _ in range(50):
            found = await self.poll(task_id, count=False, retained=False)
            if found is None:
                return None
            task, now = found.task, found.now
            change(task, now)
            _, _, mode, speed = self._seen
            left = task.created_at + lifetime(task) + self.settings.task_retention - now
            ttl_ms = max(1000, int(left / (1.0 if mode == "manual" else speed) * 1000) + 1000)
            written = await self._eval(
                "update", (self._key("t:" + task_id),),
                task_id, str(task.version), ttl_ms,
                "f", _forced_json(task.forced), "cat", _text(task.completed_at), "fz", _text(task.frozen),
                "ca", repr(task.created_at),
            )  # fmt: skip
            if written == 1:
                task.version += 1
                return Found(task, now, False)
            if written == -1:
                return None
        raise StoreUnavailable(f"task {task_id} kept changing while the admin API tried to change it")

    async def tasks_now(self) -> tuple[list[Task], float]:
        now_text, hashes = await self._eval("tasks", ())
        now = float(now_text)
        self._see(now)
        found = sorted(((dict(zip(flat[::2], flat[1::2])), flat) for flat in hashes), key=lambda pair: int(pair[0]["n"]))
        tasks = []
        for h, flat in found:  # in the order they were created
            task = await self._task(h["id"], flat, False)
            if task is not None:
                tasks.append(task)
        return tasks, now

    # Run-time choices.

    async def push(self, scenario: Scenario, count: int) -> None:
        await self._link.call("RPUSH", self._key("pushed"), f"{count}\t{scenario.name}")

    async def pushed(self) -> list[tuple[Scenario, int]]:
        out = []
        for item in await self._link.call("LRANGE", self._key("pushed"), 0, -1):
            left, _, name = item.partition("\t")
            scenario = await self._scenario(name)
            if scenario is not None:
                out.append((scenario, int(left)))
        return out

    async def clear_pushed(self) -> None:
        await self._link.call("DEL", self._key("pushed"))

    async def set_default(self, scenario: Scenario) -> None:
        await self._link.call("SET", self._key("default"), scenario.name)

    async def default(self) -> Scenario:
        name = await self._link.call("GET", self._key("default"))
        scenario = await self._scenario(name) if name else None
        return scenario or self.scenarios[self.settings.default_scenario]

    # The journal.

    def record(self, *fields: Any) -> None:
        """Queue the entry; the entries recorded in one turn of the event loop go to Redis in one
        command at the start of the next (`sent()` waits for that), and nobody waits for Redis to
        confirm them: a request costs one round trip, its state's."""
        self._journal.append(encode_entry(fields))
        if self._journal_sent is None:
            loop = asyncio.get_running_loop()
            self._journal_sent = loop.create_future()
            loop.call_soon(self._send_journal)

    def _send_journal(self) -> None:
        entries, sent = self._journal, self._journal_sent
        self._journal, self._journal_sent = [], None
        future = self._link.send("EVALSHA", SHAS["journal"], 0, self.prefix, self.settings.journal_size, *entries)
        self._journal_writes.add(future)
        future.add_done_callback(lambda done: self._journal_written(done, entries))
        if sent is not None and not sent.done():
            sent.set_result(None)

    def sent(self) -> asyncio.Future[None] | None:
        """A future that is done once the entries recorded so far are on their way to Redis
        (written to its connection): an answer sent after it cannot overtake its entry."""
        return self._journal_sent

    def _journal_written(self, future: asyncio.Future[Any], entries: list[str]) -> None:
        self._journal_writes.discard(future)
        if future.cancelled():
            return
        error = future.exception()
        if isinstance(error, ResponseError):  # Redis forgot the script or its data: write it the slow way
            task = asyncio.get_running_loop().create_task(self._eval("journal", (), self.settings.journal_size, *entries))
            self._journal_retries.add(task)
            task.add_done_callback(self._journal_retries.discard)
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
        elif error is not None:
            logger.debug("mockserver: a journal entry was lost: %s", error)

    async def flush(self) -> None:
        """Wait until every entry this replica recorded is in Redis (or could not be written)."""
        if self._journal_sent is not None:
            await asyncio.shield(self._journal_sent)
        pending = [*self._journal_writes, *self._journal_retries]
        if pending:
            await asyncio.wait(pending)

    async def journal_entries(self) -> list[Entry]:
        await self.flush()
        items = await self._link.call("XREVRANGE", self._key("journal"), "+", "-", "COUNT", self.settings.journal_size)
        entries = []
        for _, flat in items:
            fields = dict(zip(flat[::2], flat[1::2]))
            entries.append(decode_entry(int(fields["i"]), fields["e"]))
        return entries

    async def clear_journal(self) -> None:
        await self.flush()
        await self._link.call("DEL", self._key("journal"))

    async def reset(self) -> None:
        await self.flush()
        await self._eval("reset", (), self.settings.clock, repr(float(self.settings.speed)))
        for name in [name for name in self.scenarios if name not in self._loaded]:
            del self.scenarios[name]
