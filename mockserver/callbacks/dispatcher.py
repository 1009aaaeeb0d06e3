"""The loop that delivers callbacks, one per server process, off the request path.

It claims the deliveries due at the clock's reading from the store (a shared store leases each
to one replica), attempts each in a task of its own (at most `--callback-concurrency` in
flight), and settles it: delivered (any 2xx), retrying (on the contract's schedule, in scenario
seconds, while the receiver answers otherwise, times out or cannot be reached), failed (no
retry left), refused (not an allowed destination: never contacted) or lost (a scenario said
so). Every attempt is recorded in the store (`GET /__admin/callbacks`) and in the journal, as an
outgoing entry with its secrets replaced.

It sleeps until the next delivery is due on a running clock, until it is woken (a submit, an
advance of the manual clock, a task changed) and, on a shared store, never longer than
`SHARED_POLL` (other replicas move the clock and add deliveries too).
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from contracts._callbacks import Callbacks
from contracts._vocabulary import PHASES
from mockserver.callbacks.plan import events, plan, state_of
from mockserver.callbacks.policy import Destinations
from mockserver.callbacks.sender import Sender
from mockserver.errors import ApiError
from mockserver.journal import BODY_PREVIEW, REDACTED, SECRET_NAME, redact_url
from mockserver.lifecycle import task_state
from mockserver.state.base import Attempt, Delivery, StoreUnavailable
from mockserver.state.task import Task

if TYPE_CHECKING:
    from mockserver.metrics import Metrics
    from mockserver.render import Renderer
    from mockserver.settings import Settings
    from mockserver.state.base import Store
    from mockserver.tracing import Tracing

logger = logging.getLogger("mockserver")
SHARED_POLL = 0.25  # real seconds between looks at a shared store
LONGEST_NAP = 1.0  # real seconds the loop sleeps at most on its own clock (a reconfigured clock wakes it)
_ENCODE = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode


class Dispatcher:
    def __init__(
        self,
        settings: Settings,
        spec: Callbacks | None,
        store: Store,
        render: Renderer,
        errors: list[BaseException],
        metrics: Metrics | None = None,
    ) -> None:
        self.spec = spec  # None: the contract documents no callbacks, and nothing is delivered
        self.metrics = metrics  # counts each attempt by its outcome
        self.store = store
        self.render = render
        self.errors = errors  # unexpected failures, for the pytest plugin
        self.destinations = Destinations(settings.callback_allow)
        secret = settings.callback_secret
        if spec is not None and spec.signing == "standard-webhooks" and secret is None:
            raise ValueError(
                "the contract signs its callbacks (x-mockserver-callbacks signing: standard-webhooks): give "
                "--callback-secret whsec_... (or MOCKSERVER_CALLBACK_SECRET)"
            )
        self.signed = secret is not None and (spec is None or spec.signing != "none")
        self.sender = Sender(secret, settings.callback_ca, settings.callback_concurrency, signed=self.signed)
        self.slots = settings.callback_concurrency
        self.public_url = settings.public_url.rstrip("/") if settings.public_url else None
        self.base = self.public_url or ""  # where result URLs in bodies point: the last submit's base URL
        self.shared = store.kind != "memory"
        self.lease = spec.timeout + 5.0 if spec is not None else 15.0  # an attempt's bound, and some
        self._loop: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self._following: float | None = None  # the soonest delivery the loop knows of, not yet claimed
        self.noted = False  # the console said once that this contract documents no callbacks
        self.tracing: Tracing | None = None  # a span per attempt, its traceparent sent (the `otel` extra)

    # Starting, waking, stopping

    def start(self) -> None:
        """Run the loop in this event loop, if it is not running already."""
        if self.spec is None or (self._loop is not None and not self._loop.done()):
            return
        self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop().create_task(self._run(), name="mockserver-callbacks")

    def wake(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def close(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            for task in [self._loop, *self._inflight]:
                task.cancel()
            await asyncio.gather(self._loop, *self._inflight, return_exceptions=True)
            self._loop = None
        await self.sender.close()

    # What the runtime tells it

    async def submitted(self, task: Task, base_url: str) -> None:
        """A new task whose client asked for callbacks: its deliveries, on their way."""
        assert self.spec is not None
        if self.public_url is None and base_url:
            self.base = base_url
        deliveries = plan(task, self.spec, base_url or self.base)
        await self.store.schedule(task.id, deliveries)
        self.start()
        if deliveries and self._needs_wake(min(delivery.due for delivery in deliveries)):
            self.wake()

    def _needs_wake(self, due: float) -> bool:
        """Whether the loop must look again for a new delivery due at `due`: not when every slot
        is taken (a slot set free wakes it) nor when it will look by then anyway (it naps until
        the soonest delivery it knows of, and an advance of a manual clock wakes it). A submit
        then costs the loop nothing."""
        if len(self._inflight) >= self.slots:
            return False
        return self._following is None or due < self._following

    async def changed(self, task: Task) -> None:
        """A task forced into another state (failed, completed, cancelled, stalled, resumed,
        deleted): the deliveries not yet attempted are planned again from its new facts."""
        if self.spec is None or task.callback_url is None:
            return
        started = await self.store.started(task.id)
        await self.store.schedule(task.id, plan(task, self.spec, self.base, started), replan=True)
        self.start()
        self.wake()

    async def redeliver(self, task: Task, now: float, event: str | None = None, url: str | None = None) -> Delivery:
        """Deliver a task's callback once more, now: the event given, else the last one attempted,
        else the one of its state now (ApiError when there is nothing to deliver)."""
        if self.spec is None:
            raise ApiError(
                409, "The contract documents no callbacks: there is nothing to redeliver.", code="no_callbacks"
            )
        target = url or task.callback_url
        if target is None:
            raise ApiError(
                409, f"Task {task.id} was submitted without a callback URL; give one: {{\"url\": \"http://127.0.0.1:9000/hook\"}}.",
                code="no_callback_url",
            )  # fmt: skip
        if event is not None and event not in PHASES:
            phases = {word: phase for phase, word in self.render.words.items()}
            if event not in phases:
                raise ApiError(
                    422, f"'event' is a phase ({', '.join(PHASES)}) or the contract's word for one, not {event[:40]!r}.",
                    param="event",
                )  # fmt: skip
            event = phases[event]
        started = await self.store.started(task.id)
        if event is None:
            wanted = events(task, self.spec)
            attempted = [phase for phase in PHASES if phase in started]
            phase = task_state(task, now, poll=False).phase
            event = attempted[-1] if attempted else phase if phase in wanted else None
            if event is None:
                raise ApiError(
                    409, f"Task {task.id} has had no callback yet, and its state ({phase}) is not one its callbacks tell of "
                    f"({', '.join(sorted(wanted))}); name one: {{\"event\": \"succeeded\"}}.", code="nothing_to_redeliver",
                )  # fmt: skip
        webhook_id = started.get(event) or "msg_" + secrets.token_hex(12)
        delivery = Delivery(
            secrets.token_hex(8), task.id, event, webhook_id, target, now, now, 1, 1, None, True, self.base, task.trace
        )  # fmt: skip
        await self.store.schedule(task.id, [delivery])
        self.start()
        self.wake()
        return delivery

    async def settle(self, timeout: float = 30.0) -> bool:
        """Wait until no delivery is due at the clock's reading and none is being attempted here;
        False if that takes longer than `timeout` real seconds."""
        if self.spec is None:
            return True
        self.start()
        deadline = time.monotonic() + timeout
        while True:
            self.wake()
            now = (await self.store.clock_reading()).now
            due = [delivery for delivery in await self.store.pending() if delivery.due <= now]
            if not due and not self._inflight:
                return True
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.01)

    # The loop

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            self._wake.clear()
            nap: float | None = SHARED_POLL if self.shared else None
            try:
                free = self.slots - len(self._inflight)
                if free > 0:
                    claimed, now, following = await self.store.claim(free, self.lease)
                    self._following = following
                    for delivery in claimed:
                        attempt = asyncio.get_running_loop().create_task(self._attempt(delivery))
                        self._inflight.add(attempt)
                        attempt.add_done_callback(self._done)
                    if following is not None and len(claimed) < free:
                        nap = self._until(following - now, await self.store.clock_reading(), nap)
            except StoreUnavailable as exc:
                logger.warning("callbacks: the store is unavailable (%s); trying again in a second", exc)
                nap = 1.0
            except Exception as exc:
                self.errors.append(exc)
                logger.exception("callbacks: the delivery loop failed")
                nap = 1.0
            try:
                await asyncio.wait_for(self._wake.wait(), nap)
            except TimeoutError:
                pass

    @staticmethod
    def _until(scenario_seconds: float, reading: Any, nap: float | None) -> float | None:
        """Real seconds until the next delivery is due, on a running clock (None: only a wake)."""
        if reading.mode == "manual":
            return nap
        real = max(scenario_seconds / reading.speed, 0.001)
        return min(real, LONGEST_NAP, nap if nap is not None else LONGEST_NAP)

    def _done(self, attempt: asyncio.Task[None]) -> None:
        self._inflight.discard(attempt)
        self.wake()  # a slot is free

    async def _attempt(self, delivery: Delivery) -> None:
        try:
            await self._deliver(delivery)
        except asyncio.CancelledError:
            raise
        except StoreUnavailable as exc:  # a shared store gives the delivery back when its lease ends
            logger.warning("callbacks: could not record the attempt of %s (%s)", delivery.task_id, exc)
        except Exception as exc:
            self.errors.append(exc)
            logger.exception("callbacks: delivering for task %s failed", delivery.task_id)

    async def _deliver(self, delivery: Delivery) -> None:
        spec = self.spec
        assert spec is not None
        found = await self.store.poll(delivery.task_id, count=False, retained=False)
        reading = await self.store.clock_reading()
        wall = time.time()
        if found is None:
            await self._settle(
                delivery, reading.now, wall, "failed", error="the task is no longer kept (past --task-retention)"
            )
            return
        task = found.task
        body = _ENCODE(
            self.render.callback(task, state_of(task, delivery.event), delivery.base, delivery.webhook_id)
        ).encode()
        if delivery.fault == "lost":
            await self._settle(
                delivery, reading.now, wall, "lost", task=task, body=body, error="lost, as the scenario says"
            )
            return
        refusal = await self.destinations.refusal(delivery.url)
        if refusal is not None:
            logger.warning("callbacks: not delivering to %s: %s", redact_url(delivery.url), refusal)
            await self._settle(delivery, reading.now, wall, "refused", task=task, body=body, error=refusal)
            return
        headers = self.sender.headers(delivery.webhook_id, body, spec.media, bad=delivery.fault == "bad_signature")
        if self.tracing is not None:
            outcome = await self.tracing.attempt(
                delivery, headers, lambda: self.sender.send(delivery.url, body, headers, spec.timeout)
            )
        else:
            outcome = await self.sender.send(delivery.url, body, headers, spec.timeout)
        after = await self.store.clock_reading()
        if outcome.delivered:
            verdict, retry_at = "delivered", None
        elif not delivery.redelivery and delivery.attempt <= len(spec.retries):
            verdict, retry_at = "retrying", after.now + spec.retries[delivery.attempt - 1]
        else:
            verdict, retry_at = "failed", None
        if verdict != "delivered":
            logger.info(
                "callbacks: task %s %s attempt %d to %s: %s (%s)", task.id, delivery.event, delivery.attempt,
                redact_url(delivery.url), verdict, outcome.error or f"HTTP {outcome.status}",
            )  # fmt: skip
        await self._settle(
            delivery, reading.now, wall, verdict, task=task, body=body, headers=headers, status=outcome.status,
            error=outcome.error, answer=outcome.answer, duration=outcome.duration_ms, retry_at=retry_at,
        )  # fmt: skip

    async def _settle(
        self,
        delivery: Delivery,
        now: float,
        wall: float,
        verdict: str,
        *,
        task: Task | None = None,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        status: int | None = None,
        error: str | None = None,
        answer: bytes = b"",
        duration: float = 0.0,
        retry_at: float | None = None,
    ) -> None:
        url = redact_url(delivery.url)
        attempt = Attempt(
            delivery.task_id, delivery.event, delivery.attempt, round(now, 3), round(wall, 3), delivery.webhook_id, url,
            verdict, status, error, duration, delivery.copy,
        )  # fmt: skip
        await self.store.settle(delivery, attempt, retry_at)
        if self.metrics is not None:
            self.metrics.callback_attempt(verdict)
        parts = urlsplit(url)
        sent = tuple(
            (name.encode(), (REDACTED if SECRET_NAME.search(name) else value).encode("latin-1", "replace"))
            for name, value in (headers or {}).items()
        )
        fault = delivery.fault or ("duplicate" if delivery.copy > 1 else "redelivery" if delivery.redelivery else None)
        self.store.record(
            now, wall, "POST", parts.path or "/", parts.query, sent, None, body[:BODY_PREVIEW], status or 0, duration,
            delivery.task_id, task.scenario.name if task is not None else None, fault, (), answer[:BODY_PREVIEW], url,
        )  # fmt: skip
