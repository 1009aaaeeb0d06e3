"""Every shipped scenario, played end to end on the manual clock, does what its description says.

Tasks are created with the scenario's QA key from the shipped key map (`sk-qa-<name>`), so these
tests also show that handing a client a different key is all it takes.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from typing import Any

import pytest

from contracts.conformance import ContractViolation
from mockserver.scenarios import load_directories
from mockserver.settings import SHIPPED_SCENARIOS, Settings
from mockserver.state import Submission
from mockserver.state.memory import MemoryStore
from tests.conftest import SUBMIT, Fake
from tests.rawhttp import exchange

SHIPPED = load_directories([SHIPPED_SCENARIOS])

# name: (error.code, scenario second it fails at, status just before)
TASK_FAILURES = {
    "content-policy": ("content_policy_violation", 12, "processing"),
    "generation-timeout": ("generation_timeout", 610, "processing"),
    "invalid-parameters": ("invalid_parameters", 2, "pending"),
    "resource-exhausted": ("resource_exhausted", 30, "pending"),
    "quota-exceeded": ("quota_exceeded", 3, "pending"),
    "request-cancelled": ("request_cancelled", 20, "processing"),
    "upstream-unavailable": ("service_unavailable", 8, "pending"),
    "service-error": ("service_error", 45, "processing"),
    "no-content": ("generation_failed_no_content", 88, "processing"),
    "resource-not-found": ("resource_not_found", 4, "pending"),
    "unknown-error": ("unknown_error", 30, "processing"),
    "generation-failed": ("generation_failed", 40, "processing"),
}
# name: (HTTP status, error.type, error.code, Retry-After)
SUBMIT_ERRORS = {
    "expired-key": (401, "authentication_error", "expired_api_key", None),
    "insufficient-quota": (402, "insufficient_quota", "insufficient_quota", None),
    "unsupported-advanced-options": (422, "invalid_request_error", "unsupported_advanced_options", None),
    "model-not-found": (422, "invalid_request_error", "model_not_found", None),
    "no-compatible-channel": (422, "invalid_request_error", "no_compatible_channel", None),
    "invalid-file-type": (422, "invalid_request_error", "invalid_file_type", None),
    "rate-limited": (429, "rate_limit_error", "rate_limit_exceeded", "30"),
    "server-error": (500, "server_error", None, None),
    "service-unavailable": (503, "service_unavailable_error", "no_available_channel", None),
}
# Scenarios with a test of their own below.
SPECIAL = {
    "default", "fast", "rate-limited-then-ok", "rate-limited-no-retry-after", "server-error-task-created",
    "completed-before-results", "never-finishes", "stalled-progress", "cancelled-status", "task-disappears",
    "result-url-expires", "flaky-polls", "slow-answers", "submit-connection-reset", "poll-connection-faults",
    "realistic-mix",
}  # fmt: skip


def qa_key(name: str) -> str:
    return f"sk-qa-{name}"


def snapshots(fake: Fake, task_id: str, key: str, until: float, step: float = 1.0) -> list[dict[str, Any]]:
    """Poll every `step` scenario seconds from now until `until` seconds have passed."""
    seen, elapsed = [], 0.0
    while elapsed <= until:
        response = fake.poll(task_id, key=key)
        assert response.status_code == 200, response.text
        seen.append({**response.json(), "elapsed": elapsed})
        fake.advance(step)
        elapsed += step
    return seen


# Callback faults: played under a contract that documents callbacks, in tests/test_callbacks.py.
CALLBACKS = {"callback-lost", "callback-duplicate", "callback-late", "callback-early", "callback-bad-signature"}


def test_every_shipped_scenario_is_exercised_here() -> None:
    assert set(SHIPPED) == set(TASK_FAILURES) | set(SUBMIT_ERRORS) | SPECIAL | CALLBACKS


def test_every_shipped_scenario_but_default_has_a_qa_key(fake: Fake) -> None:
    mapped = {entry["scenario"] for entry in fake.admin("GET", "/keys").json()["keys"]}
    assert mapped == set(SHIPPED) - {"default"}


@pytest.mark.parametrize("name", sorted(TASK_FAILURES))
def test_task_failures(fake: Fake, name: str) -> None:
    code, fails_at, before = TASK_FAILURES[name]
    key = qa_key(name)
    task_id = fake.create(key=key)
    assert fake.admin("GET", f"/tasks/{task_id}").json()["selected_by"] == "key"
    seen = snapshots(fake, task_id, key, fails_at + 3)
    first_failed = next(s for s in seen if s["status"] == "failed")
    assert first_failed["elapsed"] == fails_at
    assert seen[seen.index(first_failed) - 1]["status"] == before
    assert first_failed["error"]["code"] == code
    assert first_failed["error"]["type"] == "task_error" and first_failed["error"]["message"]
    assert all(s["results"] is None for s in seen)
    assert all(
        s["status"] == "failed" and s["error"] == first_failed["error"] for s in seen[seen.index(first_failed) :]
    )


def test_no_content_reaches_100_percent_and_still_fails(fake: Fake) -> None:
    key = qa_key("no-content")
    seen = snapshots(fake, fake.create(key=key), key, 90)
    assert any(s["status"] == "processing" and s["progress"] == 100 for s in seen)
    assert seen[-1]["status"] == "failed"


@pytest.mark.parametrize("name", sorted(SUBMIT_ERRORS))
def test_submit_errors(fake: Fake, name: str) -> None:
    status, error_type, code, retry_after = SUBMIT_ERRORS[name]
    for _ in range(3):
        response = fake.submit(key=qa_key(name))
        assert response.status_code == status
        error = response.json()["error"]
        assert (error["type"], error.get("code")) == (error_type, code)
        assert response.headers.get("retry-after") == retry_after
    assert fake.admin("GET", "/tasks").json()["count"] == 0


@pytest.mark.parametrize(
    ("name", "retry_after"), [("rate-limited-then-ok", "2"), ("rate-limited-no-retry-after", None)]
)
def test_a_passing_rate_limit_is_counted_per_key(fake: Fake, name: str, retry_after: str | None) -> None:
    for key in ("sk-client-one", "sk-client-two"):
        for _ in range(2):
            limited = fake.submit(key=key, scenario=name)
            assert limited.status_code == 429
            assert limited.headers.get("retry-after") == retry_after
        accepted = fake.submit(key=key, scenario=name)
        assert accepted.status_code == 200
        assert accepted.json()["task_info"]["estimated_time"] == 20
    tasks = fake.admin("GET", "/tasks").json()["tasks"]
    assert len(tasks) == 2
    fake.advance(20)
    assert {fake.task(t["id"])["status"] for t in tasks} == {"completed"}


def test_a_500_on_submit_can_still_create_the_task(fake: Fake) -> None:
    key = qa_key("server-error-task-created")
    failed = fake.submit(key=key)
    assert failed.status_code == 500 and "id" not in failed.json()
    hidden = fake.admin("GET", "/tasks").json()["tasks"]
    assert len(hidden) == 1  # created and billed, though the client never saw its id
    retried = fake.submit(key=key)
    assert retried.status_code == 200
    assert fake.admin("GET", "/tasks").json()["count"] == 2  # a blind retry made a second task
    fake.advance(20)
    assert fake.task(hidden[0]["id"])["status"] == "completed"
    assert fake.task(retried.json()["id"])["status"] == "completed"


def test_never_finishes_stays_at_99(fake: Fake) -> None:
    key = qa_key("never-finishes")
    task_id = fake.create(key=key)
    fake.advance(120)
    assert (fake.task(task_id)["status"], fake.task(task_id)["progress"]) == ("processing", 99)
    fake.advance(23 * 3600)
    assert (fake.task(task_id)["status"], fake.task(task_id)["progress"]) == ("processing", 99)
    fake.advance(3600)  # 24 hours after it was created, the fake forgets it (--task-retention)
    assert fake.poll(task_id, key=key).status_code == 404


def test_stalled_progress_holds_for_four_minutes_then_completes(fake: Fake) -> None:
    key = qa_key("stalled-progress")
    seen = snapshots(fake, fake.create(key=key), key, 335, step=5.0)
    stalled = [s["progress"] for s in seen if 30 <= s["elapsed"] <= 270]
    assert set(stalled) == {40} and len(stalled) == 49
    assert next(s for s in seen if s["status"] == "completed")["elapsed"] == 330


def test_cancelled_status_is_off_contract_on_purpose(fake: Fake) -> None:
    key = qa_key("cancelled-status")
    task_id = fake.create(key=key)
    fake.advance(20)
    response = fake.request(
        "GET", f"/v1/tasks/{task_id}", headers={"Authorization": f"Bearer {key}"}, check_contract=False
    )
    task = response.json()
    assert task["status"] == "cancelled" and task["error"]["code"] == "request_cancelled"
    with pytest.raises(ContractViolation, match="cancelled"):
        fake.validator.validate(response)
    assert fake.admin("GET", "/scenarios/cancelled-status").status_code == 200


def test_a_task_disappears_after_45_seconds(fake: Fake) -> None:
    key = qa_key("task-disappears")
    task_id = fake.create(key=key)
    fake.advance(44)
    assert fake.task(task_id)["status"] == "processing"
    fake.advance(1)
    gone = fake.poll(task_id, key=key)
    assert gone.status_code == 404 and gone.json()["error"]["type"] == "not_found"


def test_the_result_url_expires_after_60_seconds(fake: Fake) -> None:
    key = qa_key("result-url-expires")
    task_id = fake.create(key=key)
    fake.advance(10)
    url = fake.task(task_id)["results"][0]["url"]
    fake.advance(59)
    assert fake.request("GET", url).status_code == 200
    fake.advance(1)
    assert fake.request("GET", url).status_code == 403


def test_flaky_polls_fail_on_polls_3_4_and_6_only(fake: Fake) -> None:
    key = qa_key("flaky-polls")
    task_id = fake.create(key=key)
    answers = []
    for _ in range(8):
        response = fake.poll(task_id, key=key)
        answers.append((response.status_code, response.headers.get("retry-after")))
        fake.advance(5)
    assert answers == [
        (200, None),
        (200, None),
        (500, None),
        (429, "2"),
        (200, None),
        (503, None),
        (200, None),
        (200, None),
    ]
    assert fake.task(task_id)["status"] == "completed"


def test_slow_answers_ask_for_the_scripted_delays(fake: Fake) -> None:
    asked: list[float] = []

    async def record(seconds: float) -> None:
        asked.append(seconds)

    fake.runtime.sleep = record
    try:
        key = qa_key("slow-answers")
        task_id = fake.create(key=key)
        assert asked == [1.5]
        for _ in range(400):
            fake.poll(task_id, key=key)
        polls = sorted(asked[1:])
        assert 0.15 < polls[200] < 0.27  # median 0.2
        assert 1.5 < polls[396] < 6.0  # p99 around 3 s: a long tail
        fake.advance(5)
        asked.clear()
        fake.request("GET", fake.task(task_id)["results"][0]["url"])
        assert len(asked) == 2 and 0.5 <= asked[1] <= 2.0  # the poll, then the download
    finally:
        fake.runtime.sleep = asyncio.sleep


def test_latency_really_delays_the_answer(live: Fake) -> None:
    started = time.perf_counter()
    live.submit(key=qa_key("slow-answers"))
    assert time.perf_counter() - started >= 1.5


def test_submit_connection_reset_leaves_a_task_behind(live: Fake) -> None:
    key = qa_key("submit-connection-reset")
    reset = exchange(str(live.client.base_url), "POST", SUBMIT, {"Authorization": f"Bearer {key}"}, live.body)
    assert reset.raw == b"" and isinstance(reset.error, ConnectionResetError)
    assert live.admin("GET", "/tasks").json()["count"] == 1
    entry = live.admin("GET", "/requests?method=POST").json()["requests"][0]
    assert entry["fault"] == "reset" and entry["status"] == 0
    assert live.submit(key=key).status_code == 200


def test_poll_connection_faults_one_per_poll(live: Fake) -> None:
    key = qa_key("poll-connection-faults")
    task_id = live.create(key=key)
    base, path, headers = str(live.client.base_url), f"/v1/tasks/{task_id}", {"Authorization": f"Bearer {key}"}
    first = exchange(base, "GET", path, headers)
    assert first.status == 200 and json.loads(first.body)["id"] == task_id
    reset = exchange(base, "GET", path, headers)
    assert reset.raw == b"" and isinstance(reset.error, ConnectionResetError)
    empty = exchange(base, "GET", path, headers)
    assert empty.raw == b"" and empty.error is None
    malformed = exchange(base, "GET", path, headers)
    assert malformed.status == 200 and malformed.content_length == len(malformed.body)
    with pytest.raises(json.JSONDecodeError):
        json.loads(malformed.body)
    truncated = exchange(base, "GET", path, headers)
    assert truncated.status == 200 and len(truncated.body) < truncated.content_length
    slow = exchange(base, "GET", path, headers)
    assert slow.status == 200 and json.loads(slow.body)["id"] == task_id
    assert len(slow.chunks) > 10  # it dribbled out in pieces
    assert exchange(base, "GET", path, headers).status == 200
    faults = [e["fault"] for e in reversed(live.admin("GET", f"/requests?task_id={task_id}").json()["requests"])]
    assert faults == [None, None, "reset", "empty", "malformed", "truncated", "slow", None]
    live.advance(30)
    assert live.task(task_id)["status"] == "completed"


def test_realistic_mix_blends_by_weight_and_repeats_with_a_seed() -> None:
    def draws(seed: int, n: int) -> list[str]:
        store = MemoryStore(Settings(seed=seed, clock="manual"), SHIPPED)
        submission = Submission("key-test", "veo-3.1-extend", "16:9", True, header=SHIPPED["realistic-mix"])

        async def submit_all() -> list[str]:
            return [(await store.submit(submission)).scenario.name for _ in range(n)]

        return asyncio.run(submit_all())

    blend = Counter(draws(42, 10_000))
    assert 8800 <= blend["default"] <= 9200
    assert 600 <= blend["content-policy"] <= 800
    assert 220 <= blend["generation-timeout"] <= 380
    assert draws(42, 500) == draws(42, 500)
    assert draws(42, 500) != draws(43, 500)


def test_realistic_mix_over_http_records_the_mix(make_fake) -> None:
    fake = make_fake(seed=5)
    for _ in range(30):
        fake.create(key=qa_key("realistic-mix"))
    tasks = fake.admin("GET", "/tasks").json()["tasks"]
    assert {t["mix"] for t in tasks} == {"realistic-mix"}
    assert {t["scenario"] for t in tasks} <= {"default", "content-policy", "generation-timeout"}
    again = make_fake(seed=5)
    for _ in range(30):
        again.create(key=qa_key("realistic-mix"))
    assert [t["scenario"] for t in again.admin("GET", "/tasks").json()["tasks"]] == [t["scenario"] for t in tasks]
