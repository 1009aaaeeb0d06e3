"""The container image, as teams outside Python run it: built from the repository's Dockerfile by
`make image-test`, run by podman on the host's network, and used with real requests: health, a task
to `completed` and its MP4, a failure by key, the dashboard, not root, a clean stop on SIGTERM, the
HEALTHCHECK, two replicas on one Redis, callbacks to a receiver on the host, the metrics. And compose.yaml, read."""

from __future__ import annotations

import re
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from standardwebhooks import Webhook

from tests.conftest import BODIES, validator_for
from tests.image.containers import ROOT, Container, podman, running
from tests.mp4 import read
from tests.receivers import Receiver
from tests.services import RedisServer

KEY = "sk-image-test"
SUBMIT = "/v1/videos/generations"
SCENARIO_FILES = sorted(path for path in (ROOT / "scenarios").glob("*.yaml") if path.name != "keys.yaml")


def headers(key: str = KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def submit(url: str, key: str = KEY, **overrides: Any) -> dict[str, Any]:
    answer = httpx.post(url + SUBMIT, json={**BODIES["seed"], **overrides}, headers=headers(key), timeout=10)
    validator_for("seed").validate(answer)
    assert answer.status_code == 200, answer.text
    return answer.json()


def poll(url: str, task_id: str) -> dict[str, Any]:
    answer = httpx.get(f"{url}/v1/tasks/{task_id}", headers=headers(), timeout=10)
    validator_for("seed").validate(answer)
    assert answer.status_code == 200, answer.text
    return answer.json()


def admin(url: str, method: str, path: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.request(method, f"{url}/__admin{path}", headers=auth, timeout=30, **kwargs)


def advance(url: str, seconds: float, token: str | None = None) -> None:
    answer = admin(url, "POST", "/clock/advance", token, json={"seconds": seconds})
    assert answer.status_code == 200, answer.text


@pytest.fixture(scope="module")
def _served(image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    with running(image, tmp_path_factory.mktemp("served"), ["--clock", "manual"]) as container:
        yield container


@pytest.fixture
def served(_served: Container) -> Container:
    """The image with its defaults (memory store, the shipped contract and scenarios) and a manual
    clock, reset for this test."""
    assert admin(_served.url, "POST", "/reset").status_code == 200
    return _served


def test_health_says_what_the_image_carries(served: Container) -> None:
    health = httpx.get(f"{served.url}/__admin/health", timeout=10).json()
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert (health["status"], health["version"], health["contract"]["version"]) == ("ok", version, "seed")
    assert health["store"] == {"kind": "memory", "status": "up"} and health["clock"]["mode"] == "manual"
    shipped = {document["name"] for path in SCENARIO_FILES for document in yaml.safe_load_all(path.read_text())}
    loaded = admin(served.url, "GET", "/scenarios").json()["scenarios"]
    assert {scenario["name"] for scenario in loaded} == shipped  # package data: the scenarios folder


def test_a_task_runs_to_completed_and_its_mp4_plays(served: Container) -> None:
    created = submit(served.url, aspect_ratio="9:16")
    assert created["status"] == "pending"
    advance(served.url, 30)
    assert poll(served.url, created["id"])["status"] == "processing"
    advance(served.url, 60)
    task = poll(served.url, created["id"])
    assert (task["status"], task["progress"]) == ("completed", 100)
    result = task["results"][0]
    assert result["url"] == f"{served.url}/files/{created['id']}.mp4"
    video = httpx.get(result["url"], timeout=10)
    assert (video.status_code, video.headers["content-type"]) == (200, "video/mp4")
    movie = read(video.content)
    assert 6.5 <= movie.duration <= 7.5 and max(movie.sizes) == (720, 1280) == (result["width"], result["height"])
    assert {"vide", "soun"} <= set(movie.handlers)


def test_a_key_makes_the_task_fail_as_its_scenario_says(served: Container) -> None:
    created = submit(served.url, key="sk-qa-content-policy")
    advance(served.url, 60)
    task = poll(served.url, created["id"])
    assert (task["status"], task["results"], task["error"]["code"]) == ("failed", None, "content_policy_violation")


def test_the_dashboard_page_and_its_files(served: Container) -> None:
    task_id = submit(served.url)["id"]
    page = httpx.get(f"{served.url}/__admin/ui", timeout=10, follow_redirects=True)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html"), page.text
    assert task_id in page.text and "mockserver dashboard" in page.text
    assets = re.findall(r'(?:href|src)="([^"]*/static/[^"]+)"', page.text)
    assert assets, page.text  # the stylesheet, htmx and its SSE extension: package data
    for asset in assets:
        answer = httpx.get(httpx.URL(served.url).join(asset), timeout=10)
        assert answer.status_code == 200 and len(answer.content) > 1000, asset


def test_the_server_runs_as_uid_10001_and_the_image_is_lean(served: Container) -> None:
    assert served.inspect("{{.Config.User}}") == "10001"
    status = served.exec("cat", "/proc/1/status")
    assert re.search(r"^Uid:\s+10001\s+10001\s+10001\s+10001$", status, flags=re.MULTILINE), status
    command = served.exec("cat", "/proc/1/cmdline").split("\0")
    assert [Path(command[1]).name, command[2]] == ["mockserver", "serve"], command  # python .../bin/mockserver serve
    # Nothing but the sources the build installed: no build leftovers, no pip cache, no compiler.
    sources = {"README.md", "pyproject.toml", "contracts", "mockserver", "scenarios"}
    assert set(served.exec("ls", "-A", "/app").split()) == sources
    caches = served.exec(
        "find", "/", "-xdev", "(", "-path", "*/.cache/pip", "-o", "-path", "/app/*.egg-info", ")", user="0"
    )
    assert caches == ""
    tools = served.exec("sh", "-c", "for tool in gcc cc c++ make; do command -v $tool || true; done")
    assert tools == ""


def test_the_healthcheck_is_in_the_image_and_passes(served: Container) -> None:
    assert "/__admin/health" in served.inspect("{{json .Config.Healthcheck}}")  # kept: a docker-format image
    podman("healthcheck", "run", served.name)  # runs the image's check in the container, as its timer would
    assert served.inspect("{{.State.Health.Status}}") == "healthy"


def test_metrics_count_what_the_container_served(served: Container) -> None:
    """`GET /__admin/metrics` from the image (its `metrics` extra): the Prometheus text with this
    test's submit, its task's end and the failed one by key."""

    def samples() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        answer = admin(served.url, "GET", "/metrics")
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain"), answer.text
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(answer.text)
            for sample in family.samples
        }

    def value(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
        return sum(v for (n, ls), v in found.items() if n == name and set(labels.items()) <= set(ls))

    before = samples()
    ok = submit(served.url)["id"]
    failed = submit(served.url, key="sk-qa-content-policy")["id"]
    advance(served.url, 120)
    assert poll(served.url, ok)["status"] == "completed" and poll(served.url, failed)["status"] == "failed"
    after = samples()  # a scrape counts the tasks that ended first
    for name, labels, more in [
        ("mockserver_requests_total", {"route": SUBMIT, "method": "POST", "status": "200"}, 2),
        ("mockserver_tasks_created_total", {}, 2),
        ("mockserver_tasks_finished_total", {"status": "succeeded"}, 1),
        ("mockserver_tasks_finished_total", {"status": "failed"}, 1),
    ]:
        assert value(after, name, **labels) - value(before, name, **labels) >= more, (name, labels)
    assert KEY not in admin(served.url, "GET", "/metrics").text  # key ids, never the key


def test_sigterm_stops_it_at_once_with_exit_code_0(image: str, tmp_path: Path) -> None:
    with running(image, tmp_path) as container:
        submit(container.url)
        assert container.stop() == 0  # within `podman stop`'s 10 s: a SIGKILL after them would be 137
        assert container.inspect("{{.State.Status}}") == "exited"
        assert "Finished server process" in container.logs()


def test_two_containers_on_one_redis_act_as_one_fake(image: str, tmp_path: Path) -> None:
    password, token = "image-test-redis-password-3f9c", "image-test-admin-token-8d21"
    with RedisServer(password=password) as redis_server:
        env = {"MOCKSERVER_STORE": redis_server.url, "MOCKSERVER_ADMIN_TOKEN": token}
        with (
            running(image, tmp_path, ["--clock", "manual"], env) as one,
            running(image, tmp_path, ["--clock", "manual"], env) as two,
        ):
            health = admin(two.url, "GET", "/health", token).json()
            assert health["store"]["kind"] == "redis" and health["store"]["status"] == "up"
            assert password not in str(health)
            created = submit(one.url)
            assert poll(two.url, created["id"])["status"] == "pending"  # made through one, seen through two
            assert admin(two.url, "POST", "/clock/advance", json={"seconds": 90}).status_code == 401  # token wanted
            advance(two.url, 90, token)
            task = poll(one.url, created["id"])
            assert task["status"] == "completed"
            video = httpx.get(f"{two.url}/files/{created['id']}.mp4", timeout=10)
            assert (video.status_code, video.headers["content-type"]) == (200, "video/mp4")
            tasks = admin(one.url, "GET", "/tasks", token).json()
            assert [listed["id"] for listed in tasks["tasks"]] == [created["id"]]
            podman("healthcheck", "run", one.name)
            redis_server.stop()  # the store goes away: health says 503, and the HEALTHCHECK fails
            deadline = time.monotonic() + 15
            while httpx.get(f"{one.url}/__admin/health", timeout=5).status_code != 503:
                assert time.monotonic() < deadline, "health still 200 15 s after Redis stopped"
                time.sleep(0.1)
            failed = podman("healthcheck", "run", one.name, check=False)
            assert (failed.returncode, failed.stdout.strip()) == (1, "unhealthy"), failed
            for container in (one, two):
                output = container.logs()
                assert "Uvicorn running" in output and password not in output and token not in output


REPLICATE = ROOT / "examples" / "contracts" / "replicate.yaml"
SECRET = "whsec_aW1hZ2UtdGVzdC1jYWxsYmFjay1zZWNyZXQtMzI="


def test_callbacks_reach_a_receiver_on_the_host(image: str, tmp_path: Path) -> None:
    env = {"MOCKSERVER_CONTRACT": "/contracts/replicate.yaml", "MOCKSERVER_CALLBACK_SECRET": SECRET}
    mounts = [(REPLICATE, "/contracts/replicate.yaml")]
    with Receiver(204) as receiver, running(image, tmp_path, ["--clock", "manual"], env, mounts) as container:
        body = {"input": {"prompt": "a lighthouse at dusk"}, "webhook": receiver.url}
        created = httpx.post(
            f"{container.url}/v1/models/lightricks/ltx-2.5-fast/predictions", json=body, headers=headers(), timeout=10
        )
        assert created.status_code == 201, created.text
        task_id = created.json()["id"]
        advance(container.url, 90)
        assert admin(container.url, "POST", "/callbacks/settle", json={"timeout": 15}).json()["settled"] is True
        delivered = receiver.wait(1)[0]
        payload = Webhook(SECRET).verify(delivered.body, delivered.headers)
        assert (payload["id"], payload["status"]) == (task_id, "succeeded")
        polled = httpx.get(f"{container.url}/v1/predictions/{task_id}", headers=headers(), timeout=10).json()
        assert payload == polled
        attempts = admin(container.url, "GET", "/callbacks", params={"task": task_id}).json()["attempts"]
        assert [(a["outcome"], a["status"]) for a in attempts] == [("delivered", 204)]
        assert SECRET not in container.logs()


def test_compose_yaml_sets_up_redis_and_two_replicas_with_healthchecks() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"redis", "mockserver-1", "mockserver-2"}
    assert all(service["healthcheck"]["test"] for service in services.values())
    for name in ("mockserver-1", "mockserver-2"):
        replica = services[name]
        assert replica["build"] == "." and (ROOT / "Dockerfile").exists()
        assert replica["depends_on"] == {"redis": {"condition": "service_healthy"}}
        env = replica["environment"]
        assert env["MOCKSERVER_ADMIN_TOKEN"].startswith("${MOCKSERVER_ADMIN_TOKEN")  # from the environment
        assert re.fullmatch(r"redis://:\$\{REDIS_PASSWORD[^}]*\}@redis:6379/0", env["MOCKSERVER_STORE"])
        assert "__admin/health" in str(replica["healthcheck"]["test"])
    assert "REDIS_PASSWORD" in str(services["redis"]["environment"])
