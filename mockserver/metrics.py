"""What the fake counts, for Prometheus (`GET /__admin/metrics`) and the dashboard's overview.

The request path only adds to plain numbers: an int in a dict, a slot of a list, on objects
resolved once (a route's counters when the app is built, a key's histogram when the key is
first seen). Nothing here allocates per request, formats text or takes a lock. The numbers
become Prometheus metric families only when scraped (`exposition`), and only then is the
official client library imported (the `metrics` extra: `pip install 'veo-mockserver[metrics]'`).

Label sets stay bounded: routes are the contract's templates, scenario names and statuses are
finite, models are the first `MODELS_KEPT` seen (the rest `other`), and key ids (as the journal
shows them, never the key) are the `KEYS_KEPT` most recently seen: a key pushed out has its
counts added to `other`, so a sum over keys never goes down.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from time import monotonic
from typing import Any

OTHER = "other"
KEYS_KEPT = 100  # key ids with series of their own: the most recently seen
KEY_IDLE = 300.0  # real seconds a kept key must have been quiet before a new key takes its place
MODELS_KEPT = 50  # models with series of their own: the first seen
INSTALL_HINT = "pip install 'veo-mockserver[metrics]'"
# Bucket bounds (upper, inclusive), in the unit of the metric.
DURATION = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
STORE_DURATION = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
POLL_INTERVAL = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
POLLS_PER_TASK = (0.0, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0)


class Histogram:
    """Counts per bucket (not cumulative: Prometheus's cumulative counts are made when scraped)."""

    __slots__ = ("bounds", "counts", "seen", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one: above every bound (+Inf)
        self.sum = 0.0
        self.seen = 0.0  # when it was last observed (`Keyed`: time.monotonic())

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    @property
    def count(self) -> int:
        return sum(self.counts)

    def add(self, other: Histogram) -> None:
        for index, count in enumerate(other.counts):
            self.counts[index] += count
        self.sum += other.sum

    def buckets(self) -> list[tuple[str, int]]:
        """Cumulative counts by upper bound, as Prometheus's text format gives them."""
        out, total = [], 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts):
            total += count
            out.append(("+Inf" if bound == float("inf") else repr(float(bound)), total))
        return out

    def quantile(self, q: float) -> float | None:
        """The upper bound of the bucket holding the q-th quantile (None: nothing observed, or
        above the last bound). A coarse figure, for the dashboard."""
        total = self.count
        if not total:
            return None
        wanted, seen = q * total, 0
        for bound, count in zip(self.bounds, self.counts):
            seen += count
            if seen >= wanted:
                return bound
        return None


class Keyed:
    """A histogram per key id, for at most `cap` keys, and `other`. A new key takes the place of the
    least recently seen one if that one has been quiet for `idle` real seconds; its series is
    dropped, not moved (moving its history would make `other` jump, a false burst in `rate()`).
    While every kept key is busy, a new key's observations count under `other`."""

    __slots__ = ("bounds", "cap", "children", "full_until", "idle", "other")

    def __init__(self, bounds: tuple[float, ...], cap: int = KEYS_KEPT, idle: float = KEY_IDLE) -> None:
        self.bounds = bounds
        self.cap = cap
        self.idle = idle
        self.children: dict[str, Histogram] = {}
        self.other = Histogram(bounds)
        self.full_until = 0.0  # no kept key can give way before then (monotonic): a new key is `other`

    def observe(self, key: str, value: float) -> None:
        """(`api.ProviderApi.query` does the same in place: the request path.)"""
        child = self.children.get(key) or self.add(key)
        child.seen = monotonic()
        child.observe(value)

    def add(self, key: str) -> Histogram:
        """The histogram a key not kept observes into: its own, or `other` while all are busy."""
        if len(self.children) >= self.cap:
            now = monotonic()
            if now < self.full_until:
                return self.other
            oldest = min(self.children, key=lambda name: self.children[name].seen)  # a scan of `cap`
            quiet_since = self.children[oldest].seen
            if now - quiet_since < self.idle:
                self.full_until = quiet_since + self.idle
                return self.other
            del self.children[oldest]
        child = self.children[key] = Histogram(self.bounds)
        return child

    def items(self) -> Iterator[tuple[str, Histogram]]:
        yield from self.children.items()
        if self.other.count:
            yield OTHER, self.other


STATUSES = 600  # HTTP statuses are below 600 (0: no answer was sent)


class RouteCounts:
    """One route and method: answers by status (a list indexed by status: the fast path adds to
    it in place, `app.MockApp._record`), and their durations."""

    __slots__ = ("duration", "method", "statuses", "template")

    def __init__(self, template: str, method: str) -> None:
        self.template = template
        self.method = method
        self.statuses = [0] * STATUSES
        self.duration = Histogram(DURATION)

    def answered(self, status: int, seconds: float) -> None:
        self.statuses[status if 0 <= status < STATUSES else 0] += 1
        self.duration.observe(seconds)

    def by_status(self) -> list[tuple[int, int]]:
        return [(status, count) for status, count in enumerate(self.statuses) if count]


class Metrics:
    """Every number the fake exports, kept in this process (each replica its own).

    Task counts are the shared truth summed over replicas: a task's creation is counted by the
    replica that created it, its end by the replica that claimed it in the store (`Runtime.
    count_finished`), so a task is counted once whichever replicas served it."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], RouteCounts] = {}
        self.created: dict[str, dict[str, int]] = {}  # scenario -> model -> tasks
        self.models: set[str] = set()
        self.finished: dict[tuple[str, str], int] = {}  # (scenario, status) -> tasks
        self.polls_per_task: dict[str, Histogram] = {}  # scenario -> polls a task had when it ended
        self.poll_intervals = Keyed(POLL_INTERVAL)
        self.refused: dict[tuple[int, str], int] = {}  # (status, code) -> submits
        self.callbacks: dict[str, int] = {}  # outcome -> attempts
        self.live: int | None = None  # tasks not ended, as the store last said (None: not looked yet)
        # Read when scraped: the store's calls (Redis) and what was dropped, by whoever keeps them.
        self.store_calls: dict[str, Histogram] = {}
        self.journal_dropped: Callable[[], int] = lambda: 0
        self.access_log_dropped: Callable[[], int] = lambda: 0

    def route(self, template: str, method: str) -> RouteCounts:
        """The counters of one route and method (made once; the fast path keeps them)."""
        counts = self.routes.get((template, method))
        if counts is None:
            counts = self.routes[(template, method)] = RouteCounts(template, method)
        return counts

    def task_created(self, scenario: str, model: str) -> None:
        by_model = self.created.get(scenario)
        if by_model is None:
            by_model = self.created[scenario] = {}
        count = by_model.get(model)
        if count is None:
            if model not in self.models:
                if len(self.models) >= MODELS_KEPT:
                    model = OTHER
                else:
                    self.models.add(model)
            count = by_model.get(model, 0)
        by_model[model] = count + 1

    def task_finished(self, scenario: str, status: str, polls: int | None) -> None:
        """A task ended (`status`: its terminal phase, or `expired` when it was forgotten first);
        `polls`: the client polls it had then (None: unknown, its facts were gone)."""
        self.finished[(scenario, status)] = self.finished.get((scenario, status), 0) + 1
        if polls is not None:
            histogram = self.polls_per_task.get(scenario)
            if histogram is None:
                histogram = self.polls_per_task[scenario] = Histogram(POLLS_PER_TASK)
            histogram.observe(polls)

    def submit_refused(self, status: int, code: str | None) -> None:
        refusal = (status, code or "none")
        self.refused[refusal] = self.refused.get(refusal, 0) + 1

    def callback_attempt(self, outcome: str) -> None:
        self.callbacks[outcome] = self.callbacks.get(outcome, 0) + 1

    def store_call(self, operation: str) -> Histogram:
        """The duration histogram of one kind of store call (made once per kind)."""
        histogram = self.store_calls.get(operation)
        if histogram is None:
            histogram = self.store_calls[operation] = Histogram(STORE_DURATION)
        return histogram

    # Read by the dashboard.

    def tasks_by_state(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for (_, status), count in self.finished.items():
            out[status] = out.get(status, 0) + count
        return out

    def tasks_created(self) -> int:
        return sum(sum(models.values()) for models in self.created.values())

    def pollers(self, limit: int = 10) -> list[dict[str, Any]]:
        """The key ids that polled the most, with how often (a median interval, by bucket)."""
        ranked = sorted(self.poll_intervals.items(), key=lambda item: item[1].count, reverse=True)
        return [
            {"key_id": key, "polls": histogram.count, "median": histogram.quantile(0.5)}
            for key, histogram in ranked[:limit]
        ]


def families(metrics: Metrics, info: dict[str, str], store_up: bool) -> list[Any]:
    """The Prometheus metric families of these numbers (imports prometheus_client)."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

    def histogram(name: str, doc: str, labels: list[str], rows: Iterable[tuple[list[str], Histogram]]) -> Any:
        family = HistogramMetricFamily(name, doc, labels=labels)
        for values, data in rows:
            family.add_metric(values, data.buckets(), data.sum)
        return family

    def counter(name: str, doc: str, labels: list[str], rows: Iterable[tuple[list[str], float]]) -> Any:
        family = CounterMetricFamily(name, doc, labels=labels)
        for values, value in rows:
            family.add_metric(values, value)
        return family

    info_family = GaugeMetricFamily("mockserver_info", "The fake's version, contract and store.", labels=list(info))
    info_family.add_metric(list(info.values()), 1)
    routes = list(metrics.routes.values())
    out = [
        info_family,
        counter(
            "mockserver_requests", "Requests answered, by route template, method and status (0: no answer was sent).",
            ["route", "method", "status"],
            [([r.template, r.method, str(status)], n) for r in routes for status, n in r.by_status()],
        ),
        histogram(
            "mockserver_request_duration_seconds", "Time from a request's arrival to its answer, in the application.",
            ["route", "method"], (([r.template, r.method], r.duration) for r in routes if r.duration.count),
        ),
        counter(
            "mockserver_tasks_created", "Tasks created, by scenario and model (models past the first 50: other).",
            ["scenario", "model"],
            [([scenario, model], n) for scenario, models in sorted(metrics.created.items())
             for model, n in sorted(models.items())],
        ),
        counter(
            "mockserver_tasks_finished", "Tasks ended, by scenario and terminal phase (expired: forgotten before it).",
            ["scenario", "status"], [([s, status], n) for (s, status), n in sorted(metrics.finished.items())],
        ),
        histogram(
            "mockserver_polls_per_task", "Client polls a task had when it ended, by scenario.", ["scenario"],
            (([scenario], h) for scenario, h in sorted(metrics.polls_per_task.items())),
        ),
        histogram(
            "mockserver_poll_interval_seconds",
            "Real seconds between two polls of one task, by the task's key id (the 100 most recent; the rest: other).",
            ["key"], (([key], h) for key, h in metrics.poll_intervals.items()),
        ),
        counter(
            "mockserver_submits_refused", "Submits answered with an error, by status and error code.",
            ["status", "code"], [([str(status), code], n) for (status, code), n in sorted(metrics.refused.items())],
        ),
        counter(
            "mockserver_callback_attempts", "Callback delivery attempts, by outcome.", ["outcome"],
            [([outcome], n) for outcome, n in sorted(metrics.callbacks.items())],
        ),
        histogram(
            "mockserver_store_call_duration_seconds", "Round trips to the shared store, by script or command.",
            ["operation"], (([operation], h) for operation, h in sorted(metrics.store_calls.items())),
        ),
        counter("mockserver_journal_dropped", "Journal entries pushed out by its bound (or lost on the way).", [],
                [([], metrics.journal_dropped())]),
        counter("mockserver_access_log_dropped", "Access log lines dropped because their reader fell behind.", [],
                [([], metrics.access_log_dropped())]),
    ]  # fmt: skip
    up = GaugeMetricFamily("mockserver_store_up", "Whether the store answers (1) or not (0).")
    up.add_metric([], 1 if store_up else 0)
    out.append(up)
    if metrics.live is not None:
        live = GaugeMetricFamily(
            "mockserver_tasks_live",
            "Tasks not ended yet, as the store holds them (the same on every replica of a store).",
        )
        live.add_metric([], metrics.live)
        out.append(live)
    return out


def exposition(found: list[Any], accept: str | None = None) -> tuple[bytes, str]:
    """The families in the format the scraper accepts (Prometheus's text format, or OpenMetrics
    when asked for), as the official library writes it; and its media type."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.exposition import choose_encoder

    class Collected:
        def collect(self) -> list[Any]:
            return found

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Collected())
    encode, media_type = choose_encoder(accept or "")
    return encode(registry), media_type


def available() -> bool:
    """Whether prometheus_client (the `metrics` extra) is installed."""
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        return False
    return True
