"""The shared store: every replica and worker on one Redis acts as one fake, and a restart loses
nothing. (`pip install 'veo-mockserver[redis]'`)

Keys, all under `{prefix}:` (one hash slot):

    clock               mode, speed, anchor (scenario time) and real (Redis's TIME at the anchor)
    registry, added     scenario name -> what the scripts need of it (JSON); `added` holds those
                        added at run time (`added:src` their source, for the other replicas)
    gen                 the tasks' generation: reset moves it on, so it forgets them in one write
    t:<gen>:<task id>   a task's facts (hash); expires with --task-retention
    tasks:<gen>         task ids by expiry (sorted set): eviction, stretching TTLs, the count
    made:<gen>          the same ids by creation number (sorted set): the newest, listing in order;
                        ids leave it with those of tasks:<gen> (expired) or when read without a key
    k:<gen>:<key id>    one API key's task ids by creation (sorted set): a client's list operation
    cb:<gen>:...        callbacks: deliveries (dl), due by scenario time (due), claimed by lease end
                        (lease), a task's deliveries (t:<task>) and attempted events (s:<task>)
    cb:attempts         delivery attempts (a capped stream), for the admin API
    pushed              scenarios pushed for the next submissions ("count<TAB>name", head next)
    default             the run-time default scenario
    submissions         submissions per (scenario, key id)
    created             tasks created (numbers them, for listing in order)
    journal, journal:seq  the request journal (a capped stream) and its numbering
    fin:<gen>           (with the metrics on) tasks whose end no replica has counted yet, by when
                        they are due to be looked at: a replica takes each out once (`finish`)
    fingerprint, replicas  what the live replicas play (contract, scenarios...) and who they are
    evicted             tasks gone by their TTL
    changes             (pub/sub) "reset", "added NAME": what other replicas must hear

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
from collections.abc import Callable, Mapping
from importlib.resources import files
from typing import Any

from redis.exceptions import NoScriptError, ResponseError

from contracts._vocabulary import Vocabulary
from mockserver.clock import LATEST, ClockError, ClockReading, Mode, check_advance, check_speed
from mockserver.journal import Entry
from mockserver.lifecycle import FORCED_STEP, State
from mockserver.metrics import Histogram
from mockserver.scenarios import UNSET, Scenario, ScenarioError, parse
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
from mockserver.state.link import Link
from mockserver.state.memory import random_suffix
from mockserver.state.task import Task, expired, lifetime

logger = logging.getLogger("mockserver")
HEARTBEAT = 15.0  # seconds a replica counts as alive after it last said so (it says so every third of it)
_SCRIPTS = (
    "submit", "poll", "update", "clock", "journal", "tasks", "keytasks", "counts", "reset", "init", "heartbeat", "sweep",
    "cbschedule", "cbclaim", "cbsettle", "finish",
)  # fmt: skip
_OURS = ("IDTAKEN", "NOSCENARIO", "LATEST")  # errors the scripts raise on purpose; the callers handle them
PAGE = 500  # tasks per script call when listing, sweeping or stretching: Redis never blocks long
LIST_WINDOW = 1000  # a key's newest tasks its index keeps (a client's list pages through those)
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_CREATED = "\x00created\x00"  # where a task id holds its created time, which the submit script writes
_DECODER = json.JSONDecoder()


class StoreMismatch(ValueError):
    """This replica's contract, scenarios or settings differ from those the live replicas play."""


def _load_scripts() -> dict[str, str]:
    folder = files("mockserver.state") / "scripts"
    common = (folder / "common.lua").read_text()
    return {name: common + "\n" + (folder / f"{name}.lua").read_text() for name in _SCRIPTS}


SCRIPTS = _load_scripts()
SHAS = {name: hashlib.sha1(text.encode()).hexdigest() for name, text in SCRIPTS.items()}
# The keys and scripts this version keeps, as a digest of the scripts: replicas on one store run one layout
STORE_LAYOUT = hashlib.sha1("".join(SHAS[name] for name in sorted(SHAS)).encode()).hexdigest()[:12]


def registry_entry(scenario: Scenario) -> str:
    """What the scripts need to know of a scenario, as JSON: for a mix, its members; otherwise its
    submit plan (times, creates a task), held steps (index, at, polls), poll rules (every, first,
    numbers, answered normally), when it disappears and when it ends."""
    if scenario.mix:
        entry: dict[str, Any] = {"mix": [[name, weight] for name, weight in scenario.mix]}
    elif scenario.sequence:
        entry = {"seq": list(scenario.sequence)}
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
        *outgoing,
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
            *outgoing,  # a callback's receiver URL
        ]
    )


def decode_entry(number: int, text: str) -> Entry:
    f = _DECODER.decode(text)

    def raw(pairs: list[list[str]]) -> tuple[tuple[bytes, bytes], ...]:
        return tuple((n.encode("latin-1"), v.encode("latin-1")) for n, v in pairs)

    return Entry(
        number, f[0], f[1], f[2], f[3], f[4], raw(f[5]), f[6], f[7].encode("latin-1"), f[8], f[9], f[10], f[11], f[12],
        raw(f[13]), f[14].encode("latin-1"), f[15] if len(f) > 15 else None,
    )  # fmt: skip


def _forced_json(state: State | None) -> str:
    if state is None:
        return ""
    results = "unset" if state.results is UNSET else state.results
    return json.dumps({"phase": state.phase, "progress": state.progress, "results": results, "error": state.error})


def _forced(text: str | None) -> State | None:
    if not text:
        return None
    data = json.loads(text)
    results = UNSET if data["results"] == "unset" else data["results"]
    return State(FORCED_STEP, data["phase"], data["progress"], results, data["error"])


def _delivery_json(delivery: Delivery) -> dict[str, Any]:
    return {name: getattr(delivery, name) for name in Delivery.__slots__}


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
        self.display = settings.store_display
        self.prefix = "{" + prefix + "}:"
        self.settings = settings
        self.scenarios = scenarios
        self._loaded = dict(scenarios)
        # the keys and scripts this version keeps: a replica of another layout cannot join live ones
        self._fingerprint = json.dumps({**fingerprint, "store layout": STORE_LAYOUT}, sort_keys=True)
        self._link = Link(url, self.display)
        self._ids = random.Random(settings.seed)  # task id suffixes
        self._draws = random.Random(settings.seed)  # mix draws: the same blend for the same seed
        self._replica = f"{socket.gethostname()}:{os.getpid()}:{random.getrandbits(32):08x}"
        self._background: set[asyncio.Task[Any]] = set()  # heartbeat, listener, sweeps
        self._journal_retries: set[asyncio.Task[Any]] = set()
        self._loading: asyncio.Lock | None = None
        self._mismatch: str | None = None  # set when another set took the store over
        self._journal: list[str] = []
        self._journal_sent: asyncio.Future[None] | None = None
        self._journal_writes: set[asyncio.Future[Any]] = set()
        # The clock as this process last read it, for journal stamps between reads.
        self._seen: tuple[float, float, str, float] = (time.time(), time.monotonic(), settings.clock, settings.speed)
        self._started: asyncio.AbstractEventLoop | None = None
        self.took_over = False
        self.on_reset: Callable[[], None] | None = None  # told when another replica resets the store
        self.vocabulary: Vocabulary | None = None  # the contract's status words, for scenarios added at run time
        self.lists = False  # whether the contract lists tasks: then each key's tasks are indexed
        self.metered = False  # whether the metrics are on (set by the runtime)
        # With the metrics on, how long each kind of call took (script name or command): `timed`
        self.calls: Callable[[str], Histogram] | None = None
        self.dropped = 0  # journal entries pushed out by its bound, or lost, from this replica's writes

    # Talking to Redis.

    async def _call(self, *args: Any) -> Any:
        """A plain command; a refusal by Redis (out of memory, read-only, loading...) is the store
        being unavailable."""
        started = time.perf_counter()
        try:
            return await self._link.call(*args)
        except ResponseError as error:
            raise self._refused(error) from None
        finally:
            if self.calls is not None:
                self.calls(str(args[0]).upper()).observe(time.perf_counter() - started)

    def _refused(self, error: ResponseError) -> StoreUnavailable:
        return StoreUnavailable(f"Redis at {self.display} refused the command: {str(error)[:200]}")

    async def _load_scripts(self) -> None:
        if self._loading is None or self._loading._loop is not asyncio.get_running_loop():  # type: ignore[attr-defined]
            self._loading = asyncio.Lock()
        async with self._loading:  # one replica-wide reload, however many requests met NOSCRIPT
            exists = await self._call("SCRIPT", "EXISTS", *SHAS.values())
            for name, present in zip(SHAS, exists):
                if not present:
                    await self._call("SCRIPT", "LOAD", SCRIPTS[name])

    async def _eval(self, name: str, *args: Any, check: bool = True) -> Any:
        if self.calls is None:
            return await self._run(name, args, check)
        started = time.perf_counter()
        try:
            return await self._run(name, args, check)
        finally:
            self.calls(name).observe(time.perf_counter() - started)

    async def _run(self, name: str, args: tuple[Any, ...], check: bool) -> Any:
        if check and self._mismatch is not None:
            raise StoreUnavailable(self._mismatch)
        for _ in range(3):
            try:
                return await self._link.call("EVALSHA", SHAS[name], 0, self.prefix, *args)
            except NoScriptError:  # a restarted (or flushed) Redis: load the scripts and try again
                await self._load_scripts()
            except ResponseError as error:
                text = str(error)
                if text.startswith(_OURS):
                    raise
                if not text.startswith("NOINIT"):
                    raise self._refused(error) from None
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

    def _in_background(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # Start-up, health and what other replicas say.

    async def _join(self, register: bool) -> bool:
        """Join the store (or join it again); whether this replica took it over from another set."""
        settings = self.settings
        pairs = [item for name, scenario in self._loaded.items() for item in (name, registry_entry(scenario))]
        replica = self._replica if register else ""
        answer = await self._eval("init", replica, HEARTBEAT, self._fingerprint, *pairs, check=False)
        if answer[0] == "differs":
            raise StoreMismatch(self._differences(answer[1], int(answer[2])))
        self._mismatch = None
        self.took_over = self.took_over or answer[1] == 1
        start = "" if settings.clock_start is None else repr(float(settings.clock_start))
        await self._clock("init", settings.clock, repr(float(settings.speed)), start)
        return bool(answer[1] == 1)

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
                shown = f" (here {mine[part]}, there {stored[part]})" if part in ("contract", "store layout") else ""
                found.append(f"{part} differs{shown}")
        return (
            f"this replica does not play what the {live} live replica(s) on {self.display} (prefix "
            f"{self.settings.store_prefix!r}) play: {'; '.join(found)}. Start it with the same version, contract, "
            "scenario folders, key maps and settings, or under another --store-prefix (or stop the others first)"
        )

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self._started is loop:
            return
        self._started = loop
        await self._join(register=True)
        self._in_background(self._beat())
        self._in_background(self._listen())

    async def _alive(self) -> None:
        """Say this replica is alive, if the store still plays what it plays."""
        if await self._eval("heartbeat", self._replica, HEARTBEAT, self._fingerprint, check=False) == 1:
            self._mismatch = None
            return
        stopped = self._mismatch is not None
        try:  # another set took the store over while this replica could not say it was alive
            took_over = await self._join(register=True)
        except StoreMismatch as exc:
            self._mismatch = f"{exc}. This replica stopped serving"
            raise StoreUnavailable(self._mismatch) from None
        if took_over:
            logger.warning(
                "mockserver: no live replica plays another set on the store any more: this replica took it over "
                "again and serves (its tasks stay; the clock, pushed scenarios and default are this replica's)"
            )
        elif stopped:
            logger.warning("mockserver: the store plays what this replica plays again: it serves again")

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT / 3)
            try:
                await self._alive()
            except StoreUnavailable as exc:
                logger.warning("mockserver: %s", exc)

    async def _listen(self) -> None:
        """Hear what other replicas did that this one must follow: a reset (forget the scenarios
        added at run time), a scenario added at run time (take the new one)."""
        from redis.asyncio import Redis

        channel = self._key("changes")
        while True:
            client = Redis.from_url(self.url, decode_responses=True, socket_keepalive=True)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(channel)
                async for message in pubsub.listen():
                    await self._heard(str(message.get("data", "")))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - Redis away: listen again when it is back
                logger.debug("mockserver: listening for changes: %s", exc)
            finally:
                try:
                    await pubsub.aclose()
                    await client.aclose()
                except Exception:  # noqa: BLE001, S110 - closing what is already broken
                    pass
            await asyncio.sleep(0.5)

    async def _heard(self, message: str) -> None:
        kind, _, rest = message.partition(" ")
        name, _, replica = rest.rpartition(" ") if kind == "added" else ("", "", rest)
        if replica == self._replica:
            return  # this replica's own doing: done already
        if kind == "reset":
            self._forget_added()
        elif kind == "added" and name:
            source = await self._call("HGET", self._key("added:src"), name)
            if source is not None:
                scenario = self._parse(name, source)
                if scenario is not None:
                    self.scenarios[name] = scenario

    def _forget_added(self) -> None:
        if self.on_reset is not None:
            self.on_reset()  # the runtime goes back to the scenarios loaded at start-up
        else:
            for name in [name for name in self.scenarios if name not in self._loaded]:
                del self.scenarios[name]
            self.scenarios.update(self._loaded)

    async def close(self) -> None:
        for task in list(self._background):
            task.cancel()
        self._background.clear()
        if self._started is not None:
            try:
                await self._eval("heartbeat", self._replica, 0, "", check=False)
            except (StoreUnavailable, ResponseError):
                pass
        self._started = None
        await self._link.close()

    async def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "url": self.display, "prefix": self.settings.store_prefix}
        try:
            await self._alive()  # a write: a Redis that is up but refuses writes is down for us
        except StoreUnavailable as exc:
            return {**out, "status": "down", "problem": str(exc)}
        return {**out, "status": "up"}

    async def counts(self) -> dict[str, int]:
        tasks, evicted, journal, replicas = await self._eval("counts", self.settings.journal_size)
        return {"tasks": tasks, "evicted": evicted, "journal": journal, "replicas": replicas}

    # Tasks that ended.

    async def ending(self, limit: int) -> tuple[list[Ending], int, float]:
        now_text, held, found = await self._eval("finish", "look", limit)
        now = float(now_text)
        self._see(now)
        out = []
        for member, due, flat in found:
            _, _, name = member.partition("\t")
            task = await self._task(dict(zip(flat[::2], flat[1::2])), False) if flat else None
            out.append(Ending(member, name, float(due), task, "", due))
        return out, int(held), now

    async def ended(self, done: list[Ending], later: list[tuple[Ending, float]]) -> list[Ending]:
        if not done and not later:
            return []
        again = [part for e, at in later for part in (e.member, e.due_text, repr(at))]
        taken = set(await self._eval("finish", "claim", len(done), *(e.member for e in done), *again))
        out = []
        for ending in done:
            if ending.member in taken:
                taken.discard(ending.member)  # each once, should it be listed twice
                out.append(ending)
        return out

    def journal_dropped(self) -> int:
        return self.dropped

    # The clock.

    async def _clock(self, *args: Any) -> ClockReading:
        try:
            mode, speed, now, slower = await self._eval("clock", *args, check=args[0] != "init")
        except ResponseError as error:
            if str(error).startswith("LATEST"):
                raise ClockError(str(error).split(" ", 1)[1]) from None
            raise
        self._see(float(now), mode, float(speed))
        if float(slower) > 1:
            await self._stretch(float(slower))
        return ClockReading(mode, float(speed), float(now))

    async def _stretch(self, factor: float) -> None:
        """The clock slowed down: the tasks' retention lasts longer in real time; so must their keys."""
        first = 0
        while (done := await self._eval("sweep", "", PAGE, first, repr(factor))) > 0:
            first += done

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

    def _parse(self, name: str, source: str) -> Scenario | None:
        try:
            return parse(json.loads(source), f"<{name}, added at run time>", vocabulary=self.vocabulary)
        except (ValueError, ScenarioError):
            return None

    async def _scenario(self, name: str) -> Scenario | None:
        """A scenario by name: loaded here, or added at run time by another replica."""
        scenario = self.scenarios.get(name)
        if scenario is None:
            source = await self._call("HGET", self._key("added:src"), name)
            if source is not None and (scenario := self._parse(name, source)) is not None:
                self.scenarios[name] = scenario
        return scenario

    async def _named(self, name: str) -> Scenario:
        scenario = await self._scenario(name)
        if scenario is None:
            raise StoreUnavailable(f"the scenario {name!r} in Redis at {self.display} is not loaded on this replica")
        return scenario

    async def register(self, scenario: Scenario) -> None:
        await self._call("HSET", self._key("added"), scenario.name, registry_entry(scenario))
        await self._call("HSET", self._key("added:src"), scenario.name, json.dumps(scenario.data, default=str))
        await self._call("PUBLISH", self._key("changes"), f"added {scenario.name} {self._replica}")

    # Submissions and tasks.

    async def submit(self, submission: Submission) -> Submitted:
        settings = self.settings
        header = submission.header.name if submission.header is not None else ""
        fallback = submission.fallback.name if submission.fallback is not None else ""
        draw = repr(self._draws.random())
        request = "" if submission.request is None else _ENCODER.encode(submission.request)
        for _ in range(8):
            before, after = "", ""
            if submission.ids is not None:  # an id shaped like the contract's; its created time is Redis's
                made = submission.ids.make(_CREATED, self._ids.getrandbits)
                before, _, after = made.partition(_CREATED) if _CREATED in made else (made, "", "-")
            try:
                name, how, via, count, task_id, now_text = await self._eval(
                    "submit",
                    header, fallback, submission.fallback_by, settings.default_scenario, submission.key_id, draw,
                    random_suffix(self._ids.getrandbits), submission.model, submission.aspect_ratio,
                    "1" if submission.generate_audio else "0", repr(float(settings.task_retention)),
                    before, after, repr(float(submission.seconds)), str(submission.width), str(submission.height),
                    request, LIST_WINDOW if self.lists else 0, submission.callback_url or "",
                    "+" + ",".join(sorted(submission.callback_events)) if submission.callback_events is not None else "-",
                    submission.trace or "",
                    "1" if self.metered else "0",
                )  # fmt: skip
                break
            except ResponseError as error:
                if str(error).startswith("NOSCENARIO"):
                    raise StoreUnavailable(f"{error} (in Redis at {self.display})") from None
                if not str(error).startswith("IDTAKEN"):
                    raise
        else:
            raise StoreUnavailable(
                "could not find a free task id in 8 draws: the live tasks hold most of the ids the contract's id "
                "schema allows (widen its pattern, or lower --task-retention)"
            )
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
                seconds=submission.seconds,
                width=submission.width,
                height=submission.height,
                request=submission.request,
                callback_url=submission.callback_url,
                callback_events=submission.callback_events,
                trace=submission.trace,
                via=via or None,
                selected_by=how,
            )
        return Submitted(scenario, how, via or None, int(count), task, now)

    async def _task(self, h: dict[str, str], counted: bool) -> Task | None:
        scenario = await self._scenario(h["s"])
        if scenario is None:
            return None
        reads = {int(k[1:]): int(v) for k, v in h.items() if k[0] == "r" and k[1:].isdigit()}
        return Task(
            id=h["id"],
            created=int(h["c"]),
            created_at=float(h["ca"]),
            scenario=scenario,
            model=h.get("m", ""),
            aspect_ratio=h.get("ar", "16:9"),
            generate_audio=h.get("ga") == "1",
            key_id=h.get("k", ""),
            seconds=float(h.get("du") or 7.0),
            width=int(h.get("w") or 1280),
            height=int(h.get("h") or 720),
            request=_DECODER.decode(h["rq"]) if h.get("rq") else None,
            callback_url=h.get("cu") or None,
            callback_events=frozenset(filter(None, h["ce"][1:].split(","))) if h.get("ce") else None,
            trace=h.get("tp") or None,
            via=h.get("v") or None,
            selected_by=h.get("sb", "default"),
            polls=int(h.get("p", 0)) + counted,
            reads=reads or None,
            forced=_forced(h.get("f")),
            completed_at=_number(h.get("cat")),
            frozen=_number(h.get("fz")),
            version=int(h.get("ver", 0)) + counted,
            deleted=h.get("del") == "1",
        )

    async def poll(self, task_id: str, *, count: bool, retained: bool = True) -> Found | None:
        answer = await self._eval(
            "poll", task_id, "1" if count else "0", "1" if retained else "0", repr(float(self.settings.task_retention)),
            "1" if self.metered else "0",
        )  # fmt: skip
        if answer is None:
            return None
        verdict, now_text, flat, real = answer
        now = float(now_text)
        self._see(now)
        h = dict(zip(flat[::2], flat[1::2]))
        counted = count and verdict == "ok"
        task = await self._task(h, counted)
        if task is None:
            return None
        previous = h.get("lp") if counted else None
        if previous:
            return Found(task, now, False, float(real) - float(previous))
        return Found(task, now, verdict == "gone")

    async def update(self, task_id: str, change: Change) -> Found | None:
        for _ in range(50):
            found = await self.poll(task_id, count=False, retained=False)
            if found is None:
                return None
            task, now = found.task, found.now
            change(task, now)
            left = task.created_at + lifetime(task) + self.settings.task_retention - now  # scenario seconds
            written = await self._eval(
                "update", task_id, str(task.version), repr(left),
                "f", _forced_json(task.forced), "cat", _text(task.completed_at), "fz", _text(task.frozen),
                "ca", repr(task.created_at), "del", "1" if task.deleted else "",
            )  # fmt: skip
            if written == 1:
                task.version += 1
                return Found(task, now, False)
            if written == -1:
                return None
        raise StoreUnavailable(f"task {task_id} kept changing while the admin API tried to change it")

    async def tasks_now(self) -> tuple[list[Task], float]:
        hashes: list[dict[str, str]] = []
        after, now = "0", 0.0
        while after:  # page by page (by creation number: a page never skips or repeats a task), never long
            now_text, page, _, after = await self._eval("tasks", after, PAGE)
            now = float(now_text)
            hashes += [dict(zip(flat[::2], flat[1::2])) for flat in page]
        self._see(now)
        return await self._live(hashes, now), now  # oldest first

    async def _live(self, hashes: list[dict[str, str]], now: float) -> list[Task]:
        """The tasks of these hashes, in their order, without those past their retention (a key may
        outlive its task: a manual clock)."""
        tasks = []
        for h in hashes:
            task = await self._task(h, False)
            if task is not None and not expired(task, now, self.settings.task_retention):
                tasks.append(task)
        return tasks

    # Callbacks.

    async def schedule(self, task_id: str, deliveries: list[Delivery], *, replan: bool = False) -> None:
        flat = [part for d in deliveries for part in (d.id, repr(d.due), _ENCODER.encode(_delivery_json(d)))]
        await self._eval(
            "cbschedule", task_id, "1" if replan else "0", repr(float(self.settings.task_retention)), *flat
        )

    async def claim(self, limit: int, lease: float) -> tuple[list[Delivery], float, float | None]:
        now_text, following, *found = await self._eval("cbclaim", limit, repr(lease))
        now = float(now_text)
        self._see(now)
        return [Delivery(**_DECODER.decode(text)) for text in found], now, float(following) if following else None

    async def settle(self, delivery: Delivery, attempt: Attempt, retry_at: float | None) -> None:
        if retry_at is not None:
            delivery.due, delivery.attempt = retry_at, delivery.attempt + 1
        await self._eval(
            "cbsettle", delivery.id, delivery.task_id, delivery.event, delivery.webhook_id,
            _ENCODER.encode(attempt.to_json()), self.settings.journal_size, "" if retry_at is None else repr(retry_at),
            _ENCODER.encode(_delivery_json(delivery)), repr(float(self.settings.task_retention)),
        )  # fmt: skip

    async def attempts(self, task_id: str | None = None, limit: int | None = None) -> list[Attempt]:
        items = await self._call("XREVRANGE", self._key("cb:attempts"), "+", "-", "COUNT", self.settings.journal_size)
        found = [Attempt(**_DECODER.decode(dict(zip(flat[::2], flat[1::2]))["a"])) for _, flat in items]
        found = [attempt for attempt in found if task_id is None or attempt.task_id == task_id]
        return found[:limit] if limit is not None else found

    async def pending(self, task_id: str | None = None) -> list[Delivery]:
        generation = await self._call("GET", self._key("gen")) or "0"
        base = f"cb:{generation}:"
        if task_id is not None:
            ids = list(await self._call("SMEMBERS", self._key(base + "t:" + task_id)))
            texts = await self._call("HMGET", self._key(base + "dl"), *ids) if ids else []
        else:
            texts = await self._call("HVALS", self._key(base + "dl"))
        found = [Delivery(**_DECODER.decode(text)) for text in texts if text]
        return sorted(found, key=lambda delivery: delivery.due)

    async def started(self, task_id: str) -> dict[str, str]:
        generation = await self._call("GET", self._key("gen")) or "0"
        return dict(await self._call("HGETALL", self._key(f"cb:{generation}:s:{task_id}")))

    async def tasks_of(self, key_id: str, limit: int) -> tuple[list[Task], float]:
        now_text, page = await self._eval("keytasks", key_id, limit)
        now = float(now_text)
        self._see(now)
        return await self._live([dict(zip(flat[::2], flat[1::2])) for flat in page], now), now  # newest first

    async def newest_tasks(self, limit: int) -> tuple[list[Task], int, float]:
        now_text, page, total, _ = await self._eval("tasks", "newest", limit)
        now = float(now_text)
        self._see(now)
        hashes = [dict(zip(flat[::2], flat[1::2])) for flat in page]
        return await self._live(hashes, now), int(total), now  # newest first, by creation

    # Run-time choices.

    async def push(self, scenario: Scenario, count: int) -> None:
        await self._call("RPUSH", self._key("pushed"), f"{count}\t{scenario.name}")

    async def pushed(self) -> list[tuple[Scenario, int]]:
        out = []
        for item in await self._call("LRANGE", self._key("pushed"), 0, -1):
            left, _, name = item.partition("\t")
            scenario = await self._scenario(name)
            if scenario is not None:
                out.append((scenario, int(left)))
        return out

    async def clear_pushed(self) -> None:
        await self._call("DEL", self._key("pushed"))

    async def set_default(self, scenario: Scenario) -> None:
        await self._call("SET", self._key("default"), scenario.name)

    async def default(self) -> Scenario:
        name = await self._call("GET", self._key("default"))
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
        try:
            future = self._link.send(
                "EVALSHA", SHAS["journal"], 0, self.prefix, self.settings.journal_size, *entries
            )  # fmt: skip
            self._journal_writes.add(future)
            future.add_done_callback(lambda done: self._journal_written(done, entries))
        finally:
            if sent is not None and not sent.done():
                sent.set_result(None)

    def sent(self) -> asyncio.Future[None] | None:
        """A future that is done once the entries recorded so far are on their way to Redis
        (written to its connection): an answer sent after it cannot overtake its entry."""
        return self._journal_sent

    def _journal_written(self, future: asyncio.Future[Any], entries: list[str]) -> None:
        self._journal_writes.discard(future)
        if future.cancelled():
            self.dropped += len(entries)
            return
        error = future.exception()
        if isinstance(error, NoScriptError) or (isinstance(error, ResponseError) and str(error).startswith("NOINIT")):
            task = asyncio.get_running_loop().create_task(self._eval("journal", self.settings.journal_size, *entries))
            self._journal_retries.add(task)  # the slow way
            task.add_done_callback(self._journal_retries.discard)
            task.add_done_callback(lambda done: self._journal_retried(done, len(entries)))
        elif error is not None:
            self.dropped += len(entries)
            logger.debug("mockserver: %d journal entries were lost: %s", len(entries), error)
        else:
            self.dropped += int(future.result()[1])

    def _journal_retried(self, task: asyncio.Task[Any], entries: int) -> None:
        if task.cancelled() or task.exception() is not None:
            self.dropped += entries
        else:
            self.dropped += int(task.result()[1])

    async def flush(self) -> None:
        """Wait until every entry this replica recorded is in Redis (or could not be written)."""
        if self._journal_sent is not None:
            await asyncio.shield(self._journal_sent)
        pending = [*self._journal_writes, *self._journal_retries]
        if pending:
            await asyncio.wait(pending, timeout=self._link.timeout * 2)

    async def journal_entries(self, limit: int | None = None) -> list[Entry]:
        await self.flush()
        count = self.settings.journal_size if limit is None else min(limit, self.settings.journal_size)
        items = await self._call("XREVRANGE", self._key("journal"), "+", "-", "COUNT", count)
        entries = []
        for _, flat in items:
            fields = dict(zip(flat[::2], flat[1::2]))
            entries.append(decode_entry(int(fields["i"]), fields["e"]))
        return entries

    async def clear_journal(self) -> None:
        await self.flush()
        await self._call("DEL", self._key("journal"))

    async def reset(self) -> None:
        await self.flush()
        old, slower = await self._eval("reset", self.settings.clock, repr(float(self.settings.speed)), self._replica)
        self._ids = random.Random(self.settings.seed)
        self._draws = random.Random(self.settings.seed)
        self._forget_added()
        self._in_background(self._sweep(old))
        if float(slower) > 1:
            await self._stretch(float(slower))

    async def _sweep(self, generation: str) -> None:
        """Delete the tasks of the generation a reset left behind, a page at a time."""
        while await self._eval("sweep", generation, PAGE, 0, "1") > 0:
            pass
