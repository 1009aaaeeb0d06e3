"""GET /__admin/metrics, scraped by a real Prometheus server (Debian's `prometheus`) from a real
`mockserver serve`, read back through Prometheus's own query API; the task counts across two
replicas on a real redis-server; the label caps.

One Prometheus and one fake serve the whole module (counters only grow, so each test uses keys and
scenarios of its own). Lifecycles move on the manual clock; the tests wait only for Prometheus to
scrape (polling its API, with a deadline)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mockserver.journal import key_id
from mockserver.metrics import KEYS_KEPT, MODELS_KEPT, OTHER, POLL_INTERVAL, Keyed, Metrics
from tests.conftest import BODIES, SUBMIT, Fake
from tests.processes import free_port, until_ready
from tests.services import Replica, replicas

TOKEN = "admin-tok-metrics-5Kq2"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
DEADLINE = 30.0  # real seconds Prometheus may take to scrape what a test did


class Prometheus:
    """A Prometheus server of the module's own, scraping one target every second."""

    def __init__(self, tmp: Path, target: str) -> None:
        binary = shutil.which("prometheus") or "/usr/bin/prometheus"
        if not Path(binary).exists():
            pytest.fail("these tests need Debian's prometheus: `make test` installs it (tools/system-deps.sh)")
        token_file = tmp / "admin-token"
        token_file.write_text(TOKEN)  # a file, not the command line: Prometheus reads the bearer token from it
        config = tmp / "prometheus.yml"
        config.write_text(
            # a scrape that times out marks every series stale until the next: a loaded machine may take more than
            # 1 s to answer one, and an instant query in between would find nothing
            "global: {scrape_interval: 2s, scrape_timeout: 2s, evaluation_interval: 2s}\n"
            "scrape_configs:\n"
            "  - job_name: mockserver\n"
            "    metrics_path: /__admin/metrics\n"
            f"    authorization: {{type: Bearer, credentials_file: {token_file}}}\n"
            f"    static_configs: [{{targets: ['{target}']}}]\n"
        )
        self.url = f"http://127.0.0.1:{free_port()}"
        self.process = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp / 'data'}",
             f"--web.listen-address={self.url.removeprefix('http://')}", "--log.level=warn"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        until_ready(self.process, f"{self.url}/-/ready", "prometheus", 30, every=0.1)

    def query(self, expr: str) -> list[dict[str, Any]]:
        answer = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10).json()
        assert answer["status"] == "success", answer
        return answer["data"]["result"]

    def value(self, expr: str) -> float | None:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None

    def until(self, expr: str, wanted: Callable[[list[dict[str, Any]]], bool]) -> list[dict[str, Any]]:
        """The result of `expr` once `wanted` holds (Prometheus scraped what the test did)."""
        deadline = time.monotonic() + DEADLINE
        while True:
            result = self.query(expr)
            if wanted(result):
                return result
            assert time.monotonic() < deadline, f"{expr} never got as wanted: {result}"
            time.sleep(0.2)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.communicate()


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Replica, Prometheus]]:
    """A `mockserver serve` with an admin token (on loopback, so the admin API needs it too), and a
    Prometheus scraping its /__admin/metrics with that token as bearer."""
    fake = Replica(
        ["--clock", "manual", "--log-level", "warning", "--no-access-log"], env={"MOCKSERVER_ADMIN_TOKEN": TOKEN}
    ).start()  # its health check needs no token
    prometheus = Prometheus(tmp_path_factory.mktemp("prometheus"), f"127.0.0.1:{fake.port}")
    try:
        yield fake, prometheus
    finally:
        prometheus.stop()
        fake.stop()


def submit(base: str, key: str, scenario: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}", "X-Mock-Scenario": scenario}
    return httpx.post(base + SUBMIT, json=BODIES["seed"], headers=headers, timeout=10)


def poll(base: str, key: str, task_id: str) -> httpx.Response:
    return httpx.get(f"{base}/v1/tasks/{task_id}", headers={"Authorization": f"Bearer {key}"}, timeout=10)


def advance(base: str, seconds: float, headers: dict[str, str] | None = None) -> None:
    answer = httpx.post(f"{base}/__admin/clock/advance", json={"seconds": seconds}, headers=headers, timeout=10)
    assert answer.status_code == 200, answer.text


def test_prometheus_reads_back_successes_failures_and_429s(scraped: tuple[Replica, Prometheus]) -> None:
    fake, prometheus = scraped
    key = "sk-metrics-client-1"
    assert httpx.get(f"{fake.url}/__admin/metrics", timeout=10).status_code == 401  # guarded like the admin API
    done = [submit(fake.url, key, "default").json()["id"] for _ in range(2)]
    failed = submit(fake.url, key, "generation-failed").json()["id"]
    for task_id in [*done, failed]:
        for _ in range(2):
            assert poll(fake.url, key, task_id).status_code == 200
    running = submit(fake.url, key, "never-finishes").json()["id"]
    refused = submit(fake.url, key, "rate-limited")
    assert refused.status_code == 429
    advance(fake.url, 100, AUTH)
    assert poll(fake.url, key, failed).json()["status"] == "failed"
    assert poll(fake.url, key, running).json()["status"] == "processing"

    finished = prometheus.until("mockserver_tasks_finished_total", lambda r: len(r) == 2)
    assert {(r["metric"]["scenario"], r["metric"]["status"]): r["value"][1] for r in finished} == {
        ("default", "succeeded"): "2",
        ("generation-failed", "failed"): "1",
    }
    created = prometheus.query("mockserver_tasks_created_total")
    assert {(r["metric"]["scenario"], r["metric"]["model"]): r["value"][1] for r in created} == {
        ("default", "veo-3.1-extend"): "2",
        ("generation-failed", "veo-3.1-extend"): "1",
        ("never-finishes", "veo-3.1-extend"): "1",
    }
    assert prometheus.value("mockserver_tasks_live") == 1  # never-finishes runs on
    # two polls each when they ended (the poll after the advance came later)
    assert prometheus.value('mockserver_polls_per_task_sum{scenario="default"}') == 4
    assert prometheus.value('mockserver_polls_per_task_count{scenario="generation-failed"}') == 1
    refusals = prometheus.query("mockserver_submits_refused_total")
    assert [(r["metric"]["status"], r["metric"]["code"], r["value"][1]) for r in refusals] == [
        ("429", "rate_limit_exceeded", "1")
    ]
    answered = 'mockserver_requests_total{route="/v1/videos/generations",method="POST",status="%s"}'
    assert prometheus.value(answered % "200") == 4 and prometheus.value(answered % "429") == 1
    assert prometheus.value('mockserver_requests_total{route="/v1/tasks/{task_id}",status="200"}') == 8
    assert prometheus.value('sum(mockserver_request_duration_seconds_count{route="/v1/tasks/{task_id}"})') == 8
    assert prometheus.value("mockserver_store_up") == 1
    assert prometheus.value("mockserver_journal_dropped_total") == 0
    assert prometheus.value('up{job="mockserver"}') == 1


def test_a_client_polling_every_10_ms_stands_out(scraped: tuple[Replica, Prometheus]) -> None:
    fake, prometheus = scraped
    eager, polite = "sk-metrics-eager", "sk-metrics-polite"
    hammered = submit(fake.url, eager, "never-finishes").json()["id"]
    for _ in range(30):  # the client's own pace, in real time: what the metric is about
        assert poll(fake.url, eager, hammered).status_code == 200
        time.sleep(0.01)
    calm = submit(fake.url, polite, "never-finishes").json()["id"]
    for at in range(3):
        if at:
            time.sleep(1.0)
        assert poll(fake.url, polite, calm).status_code == 200

    ours = f"key=~'{key_id(eager)}|{key_id(polite)}'"  # (the other tests' clients poll fast too)
    prometheus.until(
        f"mockserver_poll_interval_seconds_count{{{ours}}}",
        lambda r: sorted(float(x["value"][1]) for x in r) == [2, 29],
    )
    # docs/metrics.md's query, the keys whose polls mostly come soon after the one before (here within
    # 500 ms rather than 100: a loaded machine may take that long to answer; the polite client waits 1 s)
    too_hard = prometheus.query(
        f"sum by (key) (mockserver_poll_interval_seconds_bucket{{le='0.5',{ours}}})"
        f" / sum by (key) (mockserver_poll_interval_seconds_count{{{ours}}}) > 0.5"
    )
    assert [r["metric"]["key"] for r in too_hard] == [key_id(eager)]
    assert prometheus.value(f"mockserver_poll_interval_seconds_bucket{{le='0.5',key='{key_id(polite)}'}}") == 0
    median = "histogram_quantile(0.5, sum by (le) (mockserver_poll_interval_seconds_bucket{key='%s'}))"
    eager_median, polite_median = (prometheus.value(median.replace("%s", key_id(k))) for k in (eager, polite))
    assert eager_median is not None and polite_median is not None
    assert eager_median <= 0.5 and polite_median >= 1.0
    for key in (eager, polite):
        assert key not in httpx.get(f"{fake.url}/__admin/metrics", headers=AUTH, timeout=10).text  # ids, never keys


def _scrape(base: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return _scrape_with(lambda: httpx.get(f"{base}/__admin/metrics", timeout=10))


def _scrape_with(get: Callable[[], httpx.Response]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    answer = get()
    assert answer.status_code == 200, answer.text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def _total(scrapes: list[dict[tuple[str, tuple[tuple[str, str], ...]], float]], name: str, **labels: str) -> float:
    return sum(
        value
        for scrape in scrapes
        for (sample, found), value in scrape.items()
        if sample == name and all((k, v) in found for k, v in labels.items())
    )


def test_across_two_replicas_every_task_is_counted_once(redis_url: str) -> None:
    """Tasks created on one replica, polled and failed through the other, and ended on the clock:
    summed over the replicas, each is created once and finished once, however the replicas race to
    count them (both scraped at once, again and again)."""
    key = "sk-metrics-shared"
    with replicas(2, ["--store", redis_url, "--clock", "manual", "--log-level", "warning"]) as (a, b):
        with ThreadPoolExecutor(max_workers=16) as pool:
            made = list(pool.map(lambda i: submit(a.url if i % 2 else b.url, key, "default").json()["id"], range(60)))
            list(pool.map(lambda task_id: poll(b.url, key, task_id), made))
            list(pool.map(lambda task_id: poll(a.url, key, task_id), made))
            failed = made[:6]
            for task_id in failed:
                assert httpx.post(f"{b.url}/__admin/tasks/{task_id}/fail", json={}, timeout=10).status_code == 200
            advance(a.url, 100)
            scrapes: list[Any] = []
            for _ in range(3):  # both replicas count at once: each task must be taken by one
                scrapes = list(pool.map(_scrape, [a.url, b.url, a.url, b.url]))
        final = [_scrape(a.url), _scrape(b.url)]
    assert _total(final, "mockserver_tasks_created_total", scenario="default") == 60
    assert _total(final, "mockserver_tasks_finished_total", status="succeeded") == 54
    assert _total(final, "mockserver_tasks_finished_total", status="failed") == 6
    assert _total(final, "mockserver_polls_per_task_count") == 60
    assert _total(final, "mockserver_polls_per_task_sum") == 120  # two polls each, on either replica
    assert _total(final, "mockserver_poll_interval_seconds_count", key=key_id(key)) == 60  # each task's second poll
    assert all(_total([scrape], "mockserver_tasks_live") == 0 for scrape in final)
    assert all(_total([s], "mockserver_store_up") == 1 for s in scrapes)
    assert _total(final, "mockserver_store_call_duration_seconds_count", operation="submit") == 60


def test_label_sets_stay_bounded() -> None:
    keyed = Keyed(POLL_INTERVAL, idle=3600)
    for number in range(KEYS_KEPT + 20):
        keyed.observe(f"key-{number:08x}", 0.5)
    names = dict(keyed.items())  # every kept key is busy: the 20 newest count under `other`
    assert len(names) == KEYS_KEPT + 1 and names[OTHER].count == 20
    assert "key-00000000" in names and f"key-{KEYS_KEPT:08x}" not in names
    assert sum(h.count for h in names.values()) == KEYS_KEPT + 20  # nothing is lost
    quiet = Keyed(POLL_INTERVAL, idle=0)  # every kept key quiet long enough: a new key takes the oldest's place
    for number in range(KEYS_KEPT + 20):
        quiet.observe(f"key-{number:08x}", 0.5)
    quiet.observe("key-00000014", 0.02)  # seen again: kept among the most recent
    names = dict(quiet.items())
    assert len(names) == KEYS_KEPT and OTHER not in names  # a key pushed out takes its series away, moved nowhere
    assert "key-00000000" not in names and "key-00000014" in names and "key-00000077" in names
    assert names["key-00000014"].count == 2 and sum(h.count for h in names.values()) == KEYS_KEPT + 1
    metrics = Metrics()
    for number in range(MODELS_KEPT + 5):
        metrics.task_created("default", f"model-{number}")
    assert len(metrics.created["default"]) == MODELS_KEPT + 1 and metrics.created["default"][OTHER] == 5
    assert metrics.tasks_created() == MODELS_KEPT + 5


def test_without_metrics_or_the_library_the_endpoint_says_why() -> None:
    program = (
        "import sys; sys.modules['prometheus_client'] = None\n"
        "from starlette.testclient import TestClient\n"
        "from mockserver import Settings, create_app\n"
        "for on in (True, False):\n"
        "    with TestClient(create_app(Settings(clock='manual', metrics=on))) as client:\n"
        "        r = client.get('/__admin/metrics')\n"
        "        print(r.status_code, r.json()['error']['code'], r.json()['error']['message'])\n"
    )
    out = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    missing, off = out.stdout.splitlines()
    assert missing.startswith("501 metrics_not_installed") and "pip install 'veo-mockserver[metrics]'" in missing
    assert off.startswith("404 metrics_off") and "--no-metrics" in off


def test_a_stalled_task_ends_when_resumed_and_a_vanished_one_counts_as_expired(fake: Fake) -> None:
    """On each store: a task stalled past its scenario's end is not counted until it runs on and
    ends; one whose scenario makes it disappear before it ends counts as expired, with its polls."""

    def finished() -> dict[tuple[str, str], float]:
        scrape = _scrape_with(lambda: fake.admin("GET", "/metrics"))
        return {
            (dict(labels)["scenario"], dict(labels)["status"]): value
            for (name, labels), value in scrape.items()
            if name == "mockserver_tasks_finished_total"
        }

    before = finished()
    stalled = fake.create("fast")
    assert fake.admin("POST", f"/tasks/{stalled}/stall").status_code == 200
    vanishing = fake.create("task-disappears")
    fake.poll(vanishing)
    fake.advance(60)
    assert fake.poll(vanishing).status_code == 404
    after = finished()
    assert after.get(("fast", "succeeded"), 0) == before.get(("fast", "succeeded"), 0)  # stalled: not ended
    assert after[("task-disappears", "expired")] == before.get(("task-disappears", "expired"), 0) + 1
    assert fake.admin("POST", f"/tasks/{stalled}/resume").status_code == 200
    fake.advance(60)
    assert finished()[("fast", "succeeded")] == before.get(("fast", "succeeded"), 0) + 1
