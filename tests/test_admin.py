"""The admin API under /__admin and the request journal."""

from __future__ import annotations

import json

import pytest

from tests.conftest import API_KEY, Fake


def test_health(fake: Fake) -> None:
    health = fake.admin("GET", "/health")
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "ok"
    assert body["contract"]["version"] == "seed"
    assert body["contract"]["path"] == str(fake.runtime.contract.path)  # loopback, no token: everything
    assert body["default_scenario"] == "default"
    assert body["clock"]["mode"] == "manual"


def test_contract_is_served_as_loaded(fake: Fake) -> None:
    document = fake.admin("GET", "/contract").json()
    assert document["paths"] == fake.runtime.contract.document["paths"]


def test_scenarios_list_and_detail(fake: Fake) -> None:
    listed = fake.admin("GET", "/scenarios").json()["scenarios"]
    names = [s["name"] for s in listed]
    assert "default" in names and "content-policy" in names
    assert next(s for s in listed if s["name"] == "default")["default"] is True
    detail = fake.admin("GET", "/scenarios/content-policy").json()
    assert detail["timeline"][-1]["error"]["code"] == "content_policy_violation"
    missing = fake.admin("GET", "/scenarios/nope")
    assert missing.status_code == 404 and "content-policy" in missing.json()["error"]["message"]


def test_tasks_list_and_detail_show_scenario_and_state(fake: Fake) -> None:
    slow = fake.create()
    failing = fake.create(scenario="content-policy")
    fake.advance(20)
    listed = fake.admin("GET", "/tasks").json()
    assert listed["count"] == 2
    by_id = {t["id"]: t for t in listed["tasks"]}
    assert by_id[slow]["scenario"] == "default" and by_id[slow]["task"]["status"] == "processing"
    assert by_id[failing]["task"]["status"] == "failed"
    assert fake.admin("GET", "/tasks?status=failed").json()["count"] == 1
    assert fake.admin("GET", "/tasks?scenario=default").json()["tasks"][0]["id"] == slow
    detail = fake.admin("GET", f"/tasks/{slow}").json()
    assert detail["elapsed"] == 20.0 and detail["next_step"]["status"] == "processing"
    assert detail["polls"] == 0
    assert fake.admin("GET", "/tasks/task-unified-1-aaaaaaaa").status_code == 404


def test_clock_read_advance_and_configure(fake: Fake) -> None:
    before = fake.admin("GET", "/clock").json()["now"]
    assert fake.admin("POST", "/clock/advance", json={"seconds": 90}).json()["now"] == pytest.approx(before + 90)
    assert fake.admin("POST", "/clock/advance?seconds=10").json()["now"] == pytest.approx(before + 100)
    for bad in (b'{"seconds": -5}', b'{"seconds": "soon"}', b'{"seconds": true}', b"{}", b'{"seconds": 1e400}'):
        refused = fake.admin("POST", "/clock/advance", content=bad)
        assert refused.status_code == 422, bad
        assert refused.json()["error"]["param"] == "seconds"
    assert fake.admin("POST", "/clock/advance", content=b"{oops").status_code == 400
    assert fake.admin("PUT", "/clock", json={"mode": "sideways"}).status_code == 422
    assert fake.admin("PUT", "/clock", json={"speed": 0}).status_code == 422
    configured = fake.admin("PUT", "/clock", json={"speed": 30}).json()
    assert configured["speed"] == 30 and configured["mode"] == "manual"
    assert fake.admin("PUT", "/clock", json={"speed": 1}).status_code == 200


def test_reset_forgets_tasks_and_journal(fake: Fake) -> None:
    task_id = fake.create()
    assert fake.admin("POST", "/reset").json()["status"] == "reset"
    assert fake.admin("GET", "/tasks").json()["count"] == 0
    assert fake.admin("GET", "/requests").json()["count"] == 0
    assert fake.poll(task_id).status_code == 404


def test_journal_records_requests_most_recent_first(fake: Fake) -> None:
    task_id = fake.create()
    fake.poll(task_id)
    fake.poll("task-unified-1-zzzzzzzz")
    entries = fake.admin("GET", "/requests").json()["requests"]
    assert [(e["method"], e["status"]) for e in entries] == [("GET", 404), ("GET", 200), ("POST", 200)]
    assert entries[1]["task_id"] == task_id and entries[1]["scenario"] == "default"
    assert json.loads(entries[2]["body"])["prompt"] == fake.body["prompt"]
    assert entries[0]["path"] == "/v1/tasks/task-unified-1-zzzzzzzz"


def test_journal_filters_and_limit(fake: Fake) -> None:
    task_id = fake.create()
    for _ in range(3):
        fake.poll(task_id)
    fake.submit(key=None)
    journal = lambda query: fake.admin("GET", f"/requests?{query}").json()
    assert journal("method=get")["count"] == 3
    assert journal(f"task_id={task_id}")["count"] == 4
    assert journal("status=401")["count"] == 1
    assert journal("path=/v1/videos/generations")["count"] == 2
    limited = journal("limit=2")
    assert limited["count"] == 5 and len(limited["requests"]) == 2
    assert fake.admin("GET", "/requests?limit=lots").status_code == 422
    assert fake.admin("DELETE", "/requests").json()["count"] == 0
    assert journal("")["count"] == 0


def test_journal_is_bounded(make_fake) -> None:
    fake = make_fake(journal_size=5)
    for _ in range(12):
        fake.poll("task-unified-1-zzzzzzzz")
    entries = fake.admin("GET", "/requests").json()["requests"]
    assert len(entries) == 5
    assert entries[0]["id"] == 12


def test_secrets_never_reach_the_journal(fake: Fake) -> None:
    secret = "sk-live-9f8e7d6c5b4a"
    task_id = fake.create(key=secret)
    fake.poll(task_id, key=secret)
    fake.request(
        "GET",
        f"/v1/tasks/{task_id}",
        params={"api_key": secret},
        headers={"X-Api-Key": secret, "Cookie": f"s={secret}"},
    )
    fake.request("POST", "/v1/videos/generations", json=fake.body, headers={"Authorization": secret})
    dump = fake.admin("GET", "/requests").text
    assert secret not in dump
    entries = fake.admin("GET", "/requests").json()["requests"]
    assert entries[-1]["headers"]["authorization"] == "Bearer [redacted]"
    assert entries[1]["headers"]["x-api-key"] == "[redacted]"
    assert "api_key=%5Bredacted%5D" in entries[1]["query"]
    assert entries[-1]["key_id"] == entries[-2]["key_id"] != None
    assert fake.admin("GET", "/tasks").text.count(secret) == 0


def test_admin_requests_are_not_journaled(fake: Fake) -> None:
    fake.admin("GET", "/health")
    fake.admin("GET", "/tasks")
    assert fake.admin("GET", "/requests").json()["count"] == 0


def test_key_id_is_stable_and_distinct(fake: Fake) -> None:
    fake.create(key=API_KEY)
    fake.create(key="sk-someone-else")
    ids = {t["key_id"] for t in fake.admin("GET", "/tasks").json()["tasks"]}
    assert len(ids) == 2 and all(i.startswith("key-") for i in ids)


def test_the_clock_refuses_readings_it_could_not_show(fake: Fake) -> None:
    assert fake.admin("POST", "/clock/advance", json={"seconds": 1e20}).status_code == 422
    assert fake.admin("PUT", "/clock", json={"speed": 1e308}).status_code == 422
    assert fake.admin("GET", "/health").status_code == 200


def test_odd_digits_are_not_numbers(fake: Fake) -> None:
    response = fake.admin("GET", "/requests?limit=\u00b2")
    assert response.status_code == 422 and response.json()["error"]["param"] == "limit"


def test_reset_restores_the_configured_clock_but_keeps_its_reading(fake: Fake) -> None:
    fake.admin("PUT", "/clock", json={"mode": "real", "speed": 1000})
    before = fake.admin("GET", "/clock").json()["now"]
    fake.admin("POST", "/reset")
    clock = fake.admin("GET", "/clock").json()
    assert (clock["mode"], clock["speed"]) == ("manual", 1.0)
    assert clock["now"] >= before


def test_reset_makes_seeded_ids_repeat(make_fake) -> None:
    fake = make_fake(seed=9, clock_start=1_800_000_000)
    first = fake.create()
    fake.admin("POST", "/reset")
    assert fake.create() == first


def test_the_served_contract_points_at_the_fake(live: Fake) -> None:
    document = live.admin("GET", "/contract").json()
    assert document["servers"][0]["url"] == str(live.client.base_url).rstrip("/")


def test_a_public_url_must_be_a_url() -> None:
    from mockserver import Settings, create_app

    with pytest.raises(ValueError, match="absolute http"):
        create_app(Settings(public_url="notaurl"))
