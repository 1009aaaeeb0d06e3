"""Callbacks (webhooks), as a team testing its callback handler sees them: real receivers (HTTP,
and HTTPS with a certificate of their own) on loopback ports, real uvicorn servers (in-process
LiveServers, `mockserver serve` processes for start-up and Redis), the manual clock advanced by
the test, signatures checked by the reference Standard Webhooks library and Replicate's SDK."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from standardwebhooks import Webhook, WebhookVerificationError

from mockserver.callbacks.policy import Destinations
from mockserver.pytest_plugin import MockServer, reset_for_a_test
from mockserver.settings import Settings
from mockserver.testing import LiveServer
from tests.receivers import Receiver, certificates
from tests.services import RedisServer, Replica

ROOT = Path(__file__).resolve().parents[1]
REPLICATE = ROOT / "examples/contracts/replicate.yaml"
UPSTREAM = ROOT / "examples/contracts/upstream-dialect.yaml"
SECRET = "whsec_" + base64.b64encode(b"callbacks-test-secret-32-bytes!!").decode()
CREATE = "/v1/models/lightricks/ltx-2.5-fast/predictions"
KEY = "sk-callbacks-team"
DONE_AT = 90  # the default scenario's task succeeds at 90 s, as do the callback scenarios'


def _headers(key: str = KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def create(fake: MockServer | str, webhook: str | None, key: str = KEY, **more: Any) -> str:
    url = fake if isinstance(fake, str) else fake.url
    body: dict[str, Any] = {"input": {"prompt": "a lighthouse at dusk", "duration": 6}, **more}
    if webhook is not None:
        body["webhook"] = webhook
    answer = httpx.post(url + CREATE, json=body, headers=_headers(key), timeout=10)
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def poll(fake: MockServer | str, task_id: str, key: str = KEY) -> dict[str, Any]:
    url = fake if isinstance(fake, str) else fake.url
    answer = httpx.get(f"{url}/v1/predictions/{task_id}", headers=_headers(key), timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def verify(received: Any, secret: str = SECRET) -> dict[str, Any]:
    """The body, once the reference library has verified its signature (it raises otherwise)."""
    return Webhook(secret).verify(received.body, received.headers)


def advance(fake: MockServer, seconds: float) -> None:
    fake.advance(seconds)
    fake.settle_callbacks(15)


@pytest.fixture(scope="module")
def _replicate_server() -> Iterator[LiveServer]:
    with LiveServer(Settings(clock="manual", contract=REPLICATE, callback_secret=SECRET)) as server:
        yield server


@pytest.fixture
def fake(_replicate_server: LiveServer) -> Iterator[MockServer]:
    with reset_for_a_test(_replicate_server) as handle:
        yield handle


def test_the_body_is_the_poll_answer_signed_and_retried_after_1_2_4_scenario_seconds(fake: MockServer) -> None:
    from replicate.webhook import Webhooks, WebhookSigningSecret

    with Receiver(500) as receiver:
        start, task_id = fake.now(), create(fake, receiver.url)
        advance(fake, DONE_AT - 1)
        assert receiver.got == [] and fake.callbacks(task_id) == []  # nothing before the task succeeds
        advance(fake, 1)
        first = receiver.wait(1)[0]
        assert first.path == "/hooks/video" and first.headers["content-type"] == "application/json"
        assert verify(first) == poll(fake, task_id)  # the task, as a poll sees it, and the signature verifies
        assert first.json["status"] == "succeeded" and first.json["output"].endswith(".mp4")
        Webhooks.validate(  # Replicate's SDK agrees with the reference library
            headers=first.headers, body=first.body.decode(), secret=WebhookSigningSecret(key=SECRET)
        )
        for wait, attempts in [(0.9, 1), (0.1, 2), (1.9, 2), (0.1, 3), (3.9, 3), (0.1, 4), (3600, 4)]:
            advance(fake, wait)
            assert len(receiver.got) == attempts, (wait, len(receiver.got))
        made = list(reversed(fake.callbacks(task_id)))
        assert [(a["attempt"], round(a["time"] - start, 2), a["outcome"], a["status"]) for a in made] == [
            (1, 90.0, "retrying", 500),
            (2, 91.0, "retrying", 500),
            (3, 93.0, "retrying", 500),
            (4, 97.0, "failed", 500),
        ]
        assert {received.headers["webhook-id"] for received in receiver.got} == {made[0]["webhook_id"]}
        for received in receiver.got:
            assert verify(received) == first.json  # each attempt signed again, with its own wall-clock timestamp


def test_a_receiver_that_recovers_gets_it_on_the_next_retry_and_no_more(fake: MockServer) -> None:
    with Receiver(503, 502, 200) as receiver:
        task_id = create(fake, receiver.url)
        advance(fake, DONE_AT + 10)  # a late look: the first attempt is at 100
        for _ in range(3):
            advance(fake, 10)
        assert len(receiver.got) == 3
        assert [a["outcome"] for a in reversed(fake.callbacks(task_id))] == ["retrying", "retrying", "delivered"]
        assert fake.wait_for_callback(task_id, "succeeded")["attempt"] == 3


def test_callback_lost_never_reaches_the_receiver_and_the_task_still_succeeds(fake: MockServer) -> None:
    with Receiver(204) as receiver:
        task_id = create(fake, receiver.url, key="sk-qa-callback-lost")
        advance(fake, 3 * 3600)
        assert receiver.got == []
        [attempt] = fake.callbacks(task_id)
        assert (attempt["event"], attempt["outcome"]) == ("succeeded", "lost")
        assert poll(fake, task_id, "sk-qa-callback-lost")["status"] == "succeeded"


def test_callback_duplicate_arrives_twice_with_one_webhook_id(fake: MockServer) -> None:
    with Receiver(204) as receiver:
        task_id = create(fake, receiver.url, key="sk-qa-callback-duplicate")
        advance(fake, DONE_AT)
        one, two = receiver.wait(2)
        assert one.headers["webhook-id"] == two.headers["webhook-id"] and verify(one) == verify(two)
        made = sorted((a["copy"], a["outcome"]) for a in fake.callbacks(task_id))  # the copies go out at once
        assert made == [(1, "delivered"), (2, "delivered")]
        assert len(receiver.got) == 2
        [second] = [e for e in fake.requests(direction="outgoing") if e.fault == "duplicate"]
        assert second.task_id == task_id


def test_callback_late_arrives_an_hour_after_polls_say_succeeded(fake: MockServer) -> None:
    with Receiver(204) as receiver:
        start, task_id = fake.now(), create(fake, receiver.url, key="sk-qa-callback-late")
        advance(fake, DONE_AT)
        assert poll(fake, task_id, "sk-qa-callback-late")["status"] == "succeeded" and receiver.got == []
        advance(fake, 3599)
        assert receiver.got == []
        advance(fake, 1)
        assert verify(receiver.wait(1)[0])["status"] == "succeeded"
        assert round(fake.callbacks(task_id)[0]["time"] - start, 2) == DONE_AT + 3600


def test_callback_early_says_succeeded_while_polls_still_say_processing(fake: MockServer) -> None:
    with Receiver(204) as receiver:
        task_id = create(fake, receiver.url, key="sk-qa-callback-early")
        advance(fake, DONE_AT - 31)
        assert receiver.got == []
        advance(fake, 1)
        body = verify(receiver.wait(1)[0])
        assert body["status"] == "succeeded" and body["output"]
        assert poll(fake, task_id, "sk-qa-callback-early")["status"] == "processing"
        video = httpx.get(body["output"], timeout=10)  # the file is there, as the callback says: only polls lag
        assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
        advance(fake, 30)
        assert poll(fake, task_id, "sk-qa-callback-early") == body  # polls catch up with what the callback said


def test_callback_bad_signature_fails_the_reference_verifier_and_is_retried(fake: MockServer) -> None:
    with Receiver(401) as receiver:
        task_id = create(fake, receiver.url, key="sk-qa-callback-bad-signature")
        advance(fake, DONE_AT)
        received = receiver.wait(1)[0]
        assert received.headers["webhook-signature"].startswith("v1,")
        with pytest.raises(WebhookVerificationError):
            verify(received)
        advance(fake, 1)
        assert len(receiver.got) == 2
        with pytest.raises(WebhookVerificationError):
            verify(receiver.got[1])
        assert [a["status"] for a in fake.callbacks(task_id)] == [401, 401]


def test_the_events_filter_of_the_request_and_forced_states_shape_the_deliveries(fake: MockServer) -> None:
    with Receiver(204) as receiver:
        task_id = create(fake, receiver.url, webhook_events_filter=["start", "completed"])
        advance(fake, 5)
        [started] = receiver.wait(1)
        assert verify(started)["status"] == "processing"
        fake.fail(task_id, "content_policy_violation", "The prompt was refused.")
        fake.settle_callbacks()
        failed = verify(receiver.wait(2)[1])
        assert failed == poll(fake, task_id) and failed["status"] == "failed"
        assert [a["event"] for a in reversed(fake.callbacks(task_id))] == ["running", "failed"]

        stalled = create(fake, receiver.url)
        fake.stall(stalled)
        advance(fake, 3600)
        assert len(receiver.got) == 2  # a stalled task reaches nothing: no callback
        fake.resume(stalled)
        advance(fake, DONE_AT)
        assert verify(receiver.wait(3)[2])["status"] == "succeeded"

        cancelled = create(fake, receiver.url)
        answer = httpx.post(f"{fake.url}/v1/predictions/{cancelled}/cancel", headers=_headers(), timeout=10)
        assert answer.status_code == 200, answer.text
        fake.settle_callbacks()
        assert verify(receiver.wait(4)[3])["status"] == "canceled"


def test_redelivery_sends_again_now_with_the_same_webhook_id_and_says_what_is_wrong(fake: MockServer) -> None:
    with Receiver(204) as receiver, Receiver(204) as other:
        task_id = create(fake, receiver.url)
        advance(fake, DONE_AT)
        [first] = receiver.wait(1)
        answer = httpx.post(f"{fake.url}/__admin/tasks/{task_id}/callback", json={}, timeout=10)
        assert answer.status_code == 202 and answer.json()["status"] == "scheduled", answer.text
        fake.settle_callbacks()
        again = receiver.wait(2)[1]
        assert again.headers["webhook-id"] == first.headers["webhook-id"] and verify(again) == verify(first)
        answer = httpx.post(
            f"{fake.url}/__admin/tasks/{task_id}/callback", json={"event": "succeeded", "url": other.url}, timeout=10
        )
        assert answer.status_code == 202, answer.text
        fake.settle_callbacks()
        assert verify(other.wait(1)[0]) == verify(first)
        assert [e.fault for e in fake.requests(direction="outgoing")][:2] == ["redelivery", "redelivery"]

        for body, status, said in [
            ({"event": "dreaming"}, 422, "'event' is a phase"),
            ({}, 404, "No task"),
        ]:
            target = task_id if status != 404 else "no-such-task"
            answer = httpx.post(f"{fake.url}/__admin/tasks/{target}/callback", json=body, timeout=10)
            assert answer.status_code == status and said in answer.json()["error"]["message"], answer.text
        silent = create(fake, None)
        answer = httpx.post(f"{fake.url}/__admin/tasks/{silent}/callback", json={}, timeout=10)
        assert answer.status_code == 409 and answer.json()["error"]["code"] == "no_callback_url", answer.text


def test_the_admin_api_and_the_journal_show_every_attempt_with_secrets_replaced(fake: MockServer) -> None:
    with Receiver(500, 204) as receiver, Receiver(204) as second:
        hook = receiver.url.replace("://", "://hook-user:hook-password@") + "?token=s3cret-token"
        start, task_id = fake.now(), create(fake, hook)
        other = create(fake, second.url)
        advance(fake, DONE_AT)
        advance(fake, 1)
        seen = httpx.get(f"{fake.url}/__admin/callbacks", params={"task": task_id}, timeout=10).json()
        assert seen["documented"] is True and seen["count"] == 2
        newest, oldest = seen["attempts"]
        assert (oldest["attempt"], oldest["outcome"], oldest["status"], round(oldest["time"] - start, 2)) == (
            1,
            "retrying",
            500,
            90.0,
        )
        assert (newest["attempt"], newest["outcome"], newest["event"], newest["task_id"]) == (
            2,
            "delivered",
            "succeeded",
            task_id,
        )
        assert newest["webhook_id"] == oldest["webhook_id"] == receiver.got[0].headers["webhook-id"]
        everything = httpx.get(f"{fake.url}/__admin/callbacks", timeout=10).json()
        assert {a["task_id"] for a in everything["attempts"]} == {task_id, other}

        outgoing = httpx.get(f"{fake.url}/__admin/requests", params={"direction": "outgoing"}, timeout=10).json()
        assert outgoing["count"] == 3 and all(entry["method"] == "POST" for entry in outgoing["requests"])
        incoming = httpx.get(f"{fake.url}/__admin/requests", params={"direction": "incoming"}, timeout=10).json()
        assert all(entry.get("outgoing") is None for entry in incoming["requests"])
        shown = json.dumps([seen, everything, outgoing, incoming])
        for secret in ("hook-password", "s3cret-token", SECRET, receiver.got[0].headers["webhook-signature"]):
            assert secret not in shown
        assert receiver.got[0].path == "/hooks/video?token=s3cret-token"  # the receiver itself got its URL as given


def test_a_destination_off_loopback_is_refused_and_never_contacted(fake: MockServer) -> None:
    address = _own_address()
    with Receiver(204, host="0.0.0.0") as receiver:
        task_id = create(fake, f"http://{address}:{receiver.port}/hooks/video")
        advance(fake, DONE_AT + 10)
        [attempt] = fake.callbacks(task_id)
        assert attempt["outcome"] == "refused" and attempt["status"] is None
        assert f"{address} is not an allowed destination: callbacks go to loopback" in attempt["error"]
        assert "--callback-allow" in attempt["error"]
        assert receiver.got == []  # never contacted, and never retried


def test_callback_allow_takes_hosts_addresses_and_networks() -> None:
    allowed = Destinations(("10.0.0.0/8", "hooks.qa.example", "192.0.2.7"))

    def refusal(url: str) -> str | None:
        return asyncio.run(allowed.refusal(url))

    assert refusal("https://10.1.2.3/hook") is None
    assert refusal("https://hooks.qa.example/hook") is None
    assert refusal("http://192.0.2.7:8080/hook") is None
    assert "not an allowed destination" in (refusal("https://192.0.2.8/hook") or "")
    assert "only http and https" in (refusal("ftp://127.0.0.1/hook") or "")
    with pytest.raises(ValueError, match="is not a host name, an address or a network"):
        Destinations(("hooks qa!",))


def test_redirects_are_not_followed(fake: MockServer) -> None:
    with Receiver(204) as elsewhere, Receiver(("redirect", "http://127.0.0.1:%d/x")) as receiver:
        receiver.answers = [("redirect", f"{elsewhere.url}")]
        task_id = create(fake, receiver.url)
        advance(fake, DONE_AT)
        attempt = fake.callbacks(task_id)[0]
        assert (attempt["outcome"], attempt["status"]) == ("retrying", 307)
        assert elsewhere.got == []


def test_a_receiver_that_hangs_or_is_gone_is_retried_with_the_reason(tmp_path: Path) -> None:
    contract = yaml.safe_load(REPLICATE.read_text())
    contract["paths"]["/models/{model_owner}/{model_name}/predictions"]["post"]["x-mockserver-callbacks"] = {
        "timeout": 0.5, "retries": [60], "events": ["running", "succeeded"],
    }  # fmt: skip
    (tmp_path / "replicate.yaml").write_text(yaml.safe_dump(contract))
    gone = f"http://127.0.0.1:{_closed_port()}/hook"
    settings = Settings(clock="manual", contract=tmp_path / "replicate.yaml", callback_secret=SECRET)
    with LiveServer(settings) as server, Receiver(("hang", 3)) as receiver:
        fake = MockServer(server)
        hanging, refused = create(fake, receiver.url), create(fake, gone)
        advance(fake, 5)  # both reach processing: the contract's events include running
        by_task = {a["task_id"]: a for a in fake.callbacks()}
        assert by_task[hanging]["error"] == "no answer within 0.5 s" and by_task[hanging]["outcome"] == "retrying"
        assert by_task[refused]["error"].startswith("ConnectError") and by_task[refused]["outcome"] == "retrying"
        advance(fake, 60)
        assert {a["outcome"] for a in fake.callbacks() if a["attempt"] == 2} == {"failed"}  # one retry, then failed
        assert not server.runtime.errors


def _with_callbacks(tmp_path: Path, **options: Any) -> Path:
    contract = yaml.safe_load(REPLICATE.read_text())
    contract["paths"]["/models/{model_owner}/{model_name}/predictions"]["post"]["x-mockserver-callbacks"] = options
    path = tmp_path / "replicate.yaml"
    path.write_text(yaml.safe_dump(contract))
    return path


def test_a_running_clock_compresses_hours_of_retries_into_real_seconds(tmp_path: Path) -> None:
    speed = 10_000
    contract = _with_callbacks(tmp_path, retries=[3600, 7200, 10800])  # six hours, as providers retry
    with (
        LiveServer(Settings(speed=speed, contract=contract, callback_secret=SECRET)) as server,
        Receiver(500) as receiver,
    ):
        fake = MockServer(server)
        task_id = create(fake, receiver.url)
        fake.wait_for_callback(task_id, outcome="failed", timeout=20)  # about 2.2 real seconds at this speed
        times = [a["time"] for a in reversed(fake.callbacks(task_id))]
        gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
        for gap, wait in zip(gaps, (3600, 7200, 10800), strict=True):
            assert wait <= gap < wait + 0.5 * speed, gaps  # on time, give or take half a real second
        assert len(receiver.got) == 4


def test_attempts_in_flight_are_bounded_by_callback_concurrency() -> None:
    settings = Settings(clock="manual", contract=REPLICATE, callback_concurrency=2)
    with LiveServer(settings) as server, Receiver(("hang", 0.3)) as receiver:
        fake = MockServer(server)
        tasks = [create(fake, receiver.url) for _ in range(6)]
        advance(fake, DONE_AT)
        assert len(receiver.got) == 6 and receiver.most_busy == 2
        assert {a["task_id"] for a in fake.callbacks() if a["outcome"] == "delivered"} == set(tasks)


def test_an_https_receiver_is_trusted_through_callback_ca_and_http_is_refused_where_the_contract_says(
    tmp_path: Path,
) -> None:
    ca, leaf, key = certificates(tmp_path)
    body = {"model": "happyhorse-1.0-image-to-video", "prompt": "waves", "image_urls": ["https://example.com/a.png"]}
    for trusted in (True, False):
        settings = Settings(
            clock="manual", contract=UPSTREAM, callback_secret=SECRET, callback_ca=ca if trusted else None
        )
        with LiveServer(settings) as server, Receiver(204, tls=(leaf, key)) as receiver:
            fake = MockServer(server)
            answer = httpx.post(
                fake.url + "/v1/videos/generations", json={**body, "callback_url": receiver.url}, headers=_headers()
            )
            assert answer.status_code == 200, answer.text
            task_id = answer.json()["id"]
            advance(fake, 600)
            attempt = fake.callbacks(task_id)[-1]
            if trusted:
                delivered = verify(receiver.wait(1)[0])
                poll_answer = httpx.get(f"{fake.url}/v1/tasks/{task_id}", headers=_headers()).json()
                assert (
                    attempt["outcome"] == "delivered"
                    and delivered == poll_answer
                    and delivered["status"] == "completed"
                )
            else:
                assert attempt["outcome"] == "retrying" and attempt["error"].startswith("ConnectError")
                assert "CERTIFICATE_VERIFY_FAILED" in attempt["error"] and receiver.got == []
            if trusted:
                for url, said in [
                    ("http://127.0.0.1:9/hook", "callback_url"),
                    ("https://127.0.0.1/" + "x" * 2048, "callback_url"),
                ]:
                    answer = httpx.post(
                        fake.url + "/v1/videos/generations", json={**body, "callback_url": url}, headers=_headers()
                    )
                    assert answer.status_code == 400 and said in answer.text, answer.text
                    assert set(answer.json()["error"]) >= {"message", "type"}


def test_under_the_shipped_contract_nothing_is_delivered_and_the_console_says_so_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from tests.conftest import BODIES, SUBMIT

    with LiveServer(Settings(clock="manual")) as server, Receiver(204) as receiver:
        fake = MockServer(server)
        caplog.set_level("WARNING", logger="mockserver")
        for _ in range(2):
            answer = httpx.post(
                fake.url + SUBMIT, json={**BODIES["seed"], "callback_url": receiver.url}, headers=_headers()
            )
            assert answer.status_code == 200, answer.text
        advance(fake, 3600)
        assert receiver.got == [] and fake.callbacks() == []
        notes = [r.getMessage() for r in caplog.records if "documents no callbacks" in r.getMessage()]
        assert len(notes) == 1 and "'callback_url'" in notes[0]
        seen = httpx.get(f"{fake.url}/__admin/callbacks", timeout=10).json()
        assert seen["documented"] is False and seen["attempts"] == []


def _serve_fails(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "mockserver", "serve", "--port", "0", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0, done.stderr
    return done.stderr


def test_bad_callback_settings_stop_the_server_with_the_reason(tmp_path: Path) -> None:
    said = _serve_fails("--contract", str(REPLICATE), "--callback-secret", "not-a-secret")
    assert "--callback-secret must start with whsec_" in said and "not-a-secret" not in said
    assert "holds 6 bytes" in _serve_fails("--contract", str(REPLICATE), "--callback-secret", "whsec_c2hvcnRz")
    assert "is not a host name" in _serve_fails("--contract", str(REPLICATE), "--callback-allow", "hooks qa!")
    contract = yaml.safe_load(REPLICATE.read_text())
    operation = contract["paths"]["/models/{model_owner}/{model_name}/predictions"]["post"]
    operation["x-mockserver-callbacks"] = {"retries": "1,2,4"}
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(contract))
    said = _serve_fails("--contract", str(tmp_path / "bad.yaml"))
    assert "/x-mockserver-callbacks/retries" in said and "a list (at most 32) of scenario seconds" in said
    operation["x-mockserver-callbacks"] = {"signing": "standard-webhooks"}
    (tmp_path / "signed.yaml").write_text(yaml.safe_dump(contract))
    assert "give --callback-secret whsec_" in _serve_fails("--contract", str(tmp_path / "signed.yaml"))


def test_a_documented_callback_body_is_an_envelope_with_the_event_type(tmp_path: Path) -> None:
    contract = yaml.safe_load(REPLICATE.read_text())
    operation = contract["paths"]["/models/{model_owner}/{model_name}/predictions"]["post"]
    operation["callbacks"] = {
        "videoEvent": {
            "{$request.body#/webhook}": {
                "post": {
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["id", "type", "data"],
                                    "properties": {
                                        "id": {"type": "string"},
                                        "type": {
                                            "type": "string",
                                            "enum": ["video.started", "video.completed", "video.failed"],
                                        },
                                        "data": {"$ref": "#/components/schemas/Prediction"},
                                    },
                                }
                            }
                        },
                    },
                    "responses": {"200": {"description": "received"}},
                }
            }
        }
    }
    operation["x-mockserver-callbacks"] = {"events": "all"}
    (tmp_path / "enveloped.yaml").write_text(yaml.safe_dump(contract))
    settings = Settings(clock="manual", contract=tmp_path / "enveloped.yaml", callback_secret=SECRET)
    with LiveServer(settings) as server, Receiver(204) as receiver:
        fake = MockServer(server)
        task_id = create(fake, receiver.url)
        fake.settle_callbacks()
        receiver.wait(1)  # queued, at once
        advance(fake, 4)
        receiver.wait(2)  # running
        advance(fake, DONE_AT - 4)
        bodies = [verify(received) for received in receiver.wait(3)]
        assert [body["type"] for body in bodies] == ["video.started", "video.started", "video.completed"]
        assert [body["data"]["status"] for body in bodies] == ["starting", "processing", "succeeded"]
        assert bodies[-1]["data"] == poll(fake, task_id)
        assert [body["id"] for body in bodies] == [received.headers["webhook-id"] for received in receiver.got]


def test_the_pytest_plugin_waits_for_a_callback_and_says_what_is_still_to_come(fake: MockServer) -> None:
    with Receiver(204) as receiver:
        start, task_id = fake.now(), create(fake, receiver.url, key="sk-qa-callback-late")
        advance(fake, DONE_AT)
        with pytest.raises(AssertionError, match=r"still to come: succeeded #1 at \+3\.6e\+03 s .*advance it"):
            fake.wait_for_callback(task_id)
        fake.advance(3600)
        attempt = fake.wait_for_callback(task_id, "succeeded")
        assert attempt["outcome"] == "delivered" and round(attempt["time"] - start, 2) == DONE_AT + 3600
        assert len(receiver.got) == 1


# Shared state: replicas on one real redis-server.


def _replica_args(redis_url: str) -> list[str]:
    return ["--store", redis_url, "--clock", "manual", "--contract", str(REPLICATE), "--log-level", "warning",
            "--callback-secret", SECRET]  # fmt: skip


def _admin(base: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    answer = httpx.request(method, f"{base}/__admin{path}", timeout=30, **kwargs)
    assert answer.status_code < 300, answer.text
    return answer


def test_two_replicas_on_redis_make_each_attempt_once() -> None:
    with RedisServer() as redis_server, Receiver(500, 500, 204) as receiver:
        a = Replica(_replica_args(redis_server.url)).start()
        b = Replica(_replica_args(redis_server.url)).start()
        try:
            tasks = [create(replica.url, receiver.url) for replica in (a, b) for _ in range(5)]
            _admin(a.url, "POST", "/clock/advance", json={"seconds": DONE_AT})
            for replica in (a, b):
                _admin(replica.url, "POST", "/callbacks/settle", json={"timeout": 20})
            for _ in range(2):
                _admin(b.url, "POST", "/clock/advance", json={"seconds": 4})
                for replica in (a, b):
                    _admin(replica.url, "POST", "/callbacks/settle", json={"timeout": 20})
            assert len(receiver.got) == 10 + 2  # ten first attempts (the first two answered 500), two retries
            ids = [received.headers["webhook-id"] for received in receiver.got]
            assert len(set(ids)) == 10
            attempts = _admin(a.url, "GET", "/callbacks", params={"limit": 100}).json()["attempts"]
            assert len(attempts) == len(receiver.got)
            assert len({(x["webhook_id"], x["attempt"]) for x in attempts}) == len(attempts)  # each attempt once
            assert {x["task_id"] for x in attempts if x["outcome"] == "delivered"} == set(tasks)
        finally:
            a.stop()
            b.stop()


def test_a_delivery_due_when_its_replica_is_killed_still_arrives() -> None:
    with RedisServer() as redis_server, Receiver(204) as receiver:
        a = Replica(_replica_args(redis_server.url)).start()
        b = Replica(_replica_args(redis_server.url)).start()
        try:
            task_id = create(a.url, receiver.url)
            a.stop(signal.SIGKILL)  # the replica that scheduled it, gone without a word
            _admin(b.url, "POST", "/clock/advance", json={"seconds": DONE_AT})
            _admin(b.url, "POST", "/callbacks/settle", json={"timeout": 20})
            [received] = receiver.wait(1)
            assert verify(received)["id"] == task_id and verify(received)["status"] == "succeeded"
        finally:
            a.stop()
            b.stop()


def test_a_replica_killed_in_the_middle_of_an_attempt_has_it_made_again_with_the_same_webhook_id(
    tmp_path: Path,
) -> None:
    contract = _with_callbacks(tmp_path, timeout=1)  # an attempt's lease: its timeout and 5 s
    replica_args = [*_replica_args(""), "--contract", str(contract)]
    with RedisServer() as redis_server, Receiver(("hang", 30), 204) as receiver:
        replica_args[1] = redis_server.url
        a = Replica(replica_args).start()
        b: Replica | None = None
        try:
            task_id = create(a.url, receiver.url)
            _admin(a.url, "POST", "/clock/advance", json={"seconds": DONE_AT})
            receiver.wait(1)  # a is in the middle of the attempt
            a.stop(signal.SIGKILL)
            b = Replica(replica_args).start()
            first, again = receiver.wait(2, timeout=20)  # once the lease of a's attempt ends
            assert first.headers["webhook-id"] == again.headers["webhook-id"] and verify(again)["id"] == task_id
            attempts = _admin(b.url, "GET", "/callbacks").json()["attempts"]
            assert [(x["attempt"], x["outcome"]) for x in attempts] == [(1, "delivered")]
        finally:
            a.stop()
            if b is not None:
                b.stop()


def _own_address() -> str:
    """This machine's address off loopback (the one a route out would use; nothing is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))  # TEST-NET-1: a UDP connect sends nothing
        address = probe.getsockname()[0]
    assert not address.startswith("127."), "this machine has no address off loopback"
    return address


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
