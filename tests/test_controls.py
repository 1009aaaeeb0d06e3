"""Control without touching the client: key maps, the runtime default, pushed scenarios and forced
task states, through the admin API."""

from __future__ import annotations

from pathlib import Path

import pytest

from mockserver.journal import key_id
from tests.conftest import Fake


def test_a_qa_key_selects_its_scenario(fake: Fake) -> None:
    response = fake.submit(key="sk-qa-expired-key")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "expired_api_key"
    assert fake.submit(key="sk-someone-else").status_code == 200


def test_the_key_map_never_shows_keys(fake: Fake) -> None:
    listed = fake.admin("GET", "/keys").json()
    assert listed["count"] == len(listed["keys"]) > 10
    assert {"key_id": key_id("sk-qa-content-policy"), "scenario": "content-policy"} in listed["keys"]
    assert "sk-qa-" not in fake.admin("GET", "/keys").text


def test_a_key_map_file_of_your_own(make_fake, tmp_path: Path) -> None:
    keys = tmp_path / "qa-keys.yaml"
    keys.write_text("sk-staging-ratelimit: rate-limited\nsk-qa-content-policy: fast\n")
    fake = make_fake(keys=(keys,))
    assert fake.submit(key="sk-staging-ratelimit").status_code == 429
    task_id = fake.create(key="sk-qa-content-policy")  # a later file maps a shipped key again
    assert fake.admin("GET", f"/tasks/{task_id}").json()["scenario"] == "fast"


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("sk-a: fast\nsk-b: no-such-scenario\n", 2, "'no-such-scenario' is not a loaded scenario"),
        ("- sk-a\n", None, "one YAML mapping"),
        ("sk-a: fast\nsk-a: default\n", 2, "appears twice"),
    ],
)
def test_a_broken_key_map_stops_the_server(tmp_path: Path, text: str, line: int | None, problem: str) -> None:
    from mockserver import Settings, create_app
    from mockserver.keymap import KeyMapError

    keys = tmp_path / "keys.yaml"
    keys.write_text(text)
    with pytest.raises(KeyMapError) as caught:
        create_app(Settings(keys=(keys,)))
    assert caught.value.source == str(keys) and caught.value.line == line
    assert problem in str(caught.value)
    assert "sk-a" not in str(caught.value) and "sk-b" not in str(caught.value)  # keys are credentials


def test_the_default_scenario_can_change_at_run_time(fake: Fake) -> None:
    changed = fake.admin("PUT", "/scenarios/default", json={"scenario": "content-policy"})
    assert changed.json() == {"scenario": "content-policy", "configured": "default"}
    task_id = fake.create()
    assert fake.admin("GET", f"/tasks/{task_id}").json()["selected_by"] == "default"
    fake.advance(12)
    assert fake.task(task_id)["status"] == "failed"
    missing = fake.admin("PUT", "/scenarios/default", json={"scenario": "nope"})
    assert missing.status_code == 404 and "content-policy" in missing.json()["error"]["message"]
    assert fake.admin("PUT", "/scenarios/default", json={}).status_code == 422
    fake.admin("POST", "/reset")
    assert fake.admin("GET", "/scenarios/default").json()["scenario"] == "default"


def test_a_scenario_can_be_pushed_for_the_next_submissions(fake: Fake) -> None:
    pushed = fake.admin("POST", "/scenarios/next", json={"scenario": "insufficient-quota", "count": 2})
    assert pushed.json() == {"next": [{"scenario": "insufficient-quota", "count": 2}]}
    fake.admin("POST", "/scenarios/next", json={"scenario": "fast"})
    statuses = [fake.submit().status_code for _ in range(4)]
    assert statuses == [402, 402, 200, 200]
    scenarios = [t["scenario"] for t in fake.admin("GET", "/tasks").json()["tasks"]]
    assert scenarios == ["fast", "default"]
    assert fake.admin("GET", "/scenarios/next").json() == {"next": []}
    for bad in ({"scenario": "fast", "count": 0}, {"scenario": "fast", "count": "two"}, {"count": 1}):
        assert fake.admin("POST", "/scenarios/next", json=bad).status_code == 422
    fake.admin("POST", "/scenarios/next", json={"scenario": "fast", "count": 5})
    assert fake.admin("DELETE", "/scenarios/next").json() == {"next": []}


def test_selection_precedence(fake: Fake) -> None:
    """Header, then pushed, then key map, then rules, then the default."""
    fake.admin("PUT", "/scenarios/default", json={"scenario": "never-finishes"})
    fake.admin("POST", "/scenarios/next", json={"scenario": "fast", "count": 2})
    by_header = fake.create(scenario="content-policy", key="sk-qa-stalled-progress")
    by_push = fake.create(key="sk-qa-stalled-progress")
    by_push_over_rule = fake.create(prompt="[mock:task-disappears]")
    by_key = fake.create(key="sk-qa-stalled-progress", prompt="[mock:task-disappears]")
    by_rule = fake.create(prompt="please [mock:task-disappears]")
    by_default = fake.create()
    views = {t["id"]: (t["scenario"], t["selected_by"]) for t in fake.admin("GET", "/tasks").json()["tasks"]}
    assert views[by_header] == ("content-policy", "header")
    assert views[by_push] == ("fast", "pushed")
    assert views[by_push_over_rule] == ("fast", "pushed")
    assert views[by_key] == ("stalled-progress", "key")
    assert views[by_rule] == ("task-disappears", "rule")
    assert views[by_default] == ("never-finishes", "default")


def test_rules_match_on_model_and_aspect_ratio_with_contract_defaults(make_fake, tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(
        "name: portrait-fails\ndescription: Portrait requests fail.\nmatch:\n  - {aspect_ratio: '9:16', model: veo-3.1-extend-fast}\n"
        "timeline:\n  - {at: 0, status: failed, error: {code: invalid_parameters, message: no}}\n---\n"
        "name: landscape-by-default\ndescription: Requests that leave aspect_ratio out are 16:9.\n"
        "match:\n  - {aspect_ratio: '16:9', prompt_regex: '^default'}\ntimeline:\n  - {at: 0, status: pending}\n"
    )
    fake = make_fake(scenario_dirs=(tmp_path,))
    portrait = fake.create(aspect_ratio="9:16", model="veo-3.1-extend-fast")
    landscape = fake.create(aspect_ratio="9:16")  # right ratio, wrong model: no match
    defaulted = fake.create(prompt="default ratio please")  # aspect_ratio omitted: the contract's 16:9
    views = {t["id"]: t["scenario"] for t in fake.admin("GET", "/tasks").json()["tasks"]}
    assert views == {portrait: "portrait-fails", landscape: "default", defaulted: "landscape-by-default"}


def test_force_a_live_task_to_fail_with_a_code(fake: Fake) -> None:
    task_id = fake.create()
    fake.advance(30)
    progress = fake.task(task_id)["progress"]
    forced = fake.admin(
        "POST", f"/tasks/{task_id}/fail", json={"code": "resource_exhausted", "message": "Out of GPUs."}
    )
    assert forced.json()["forced"] is True
    task = fake.task(task_id)
    assert task["status"] == "failed" and task["progress"] == progress
    assert task["error"] == {"type": "task_error", "code": "resource_exhausted", "message": "Out of GPUs."}
    fake.advance(3600)
    assert fake.task(task_id)["status"] == "failed"
    again = fake.admin("POST", f"/tasks/{task_id}/complete")
    assert again.status_code == 409 and "terminal is final" in again.json()["error"]["message"]


def test_force_a_live_task_to_complete(fake: Fake) -> None:
    task_id = fake.create(scenario="never-finishes")
    fake.advance(200)
    fake.admin("POST", f"/tasks/{task_id}/complete")
    task = fake.task(task_id)
    assert task["status"] == "completed" and task["progress"] == 100
    url = task["results"][0]["url"]
    assert fake.request("GET", url).status_code == 200
    fake.advance(24 * 3600)
    assert fake.request("GET", url).status_code == 403  # 24 h after the forced completion


def test_stall_and_resume_a_live_task(fake: Fake) -> None:
    task_id = fake.create()
    fake.advance(30)
    before = fake.task(task_id)
    fake.admin("POST", f"/tasks/{task_id}/stall")
    fake.advance(600)
    stalled = fake.task(task_id)
    assert (stalled["status"], stalled["progress"]) == (before["status"], before["progress"])
    assert fake.admin("GET", f"/tasks/{task_id}").json()["stalled"] is True
    fake.admin("POST", f"/tasks/{task_id}/resume")
    fake.advance(59)
    assert fake.task(task_id)["status"] == "processing"  # 89 s of its own time so far
    fake.advance(1)
    assert fake.task(task_id)["status"] == "completed"


def test_task_actions_refuse_unknown_tasks_and_actions(fake: Fake) -> None:
    assert fake.admin("POST", "/tasks/task-unified-1-aaaaaaaa/fail").status_code == 404
    task_id = fake.create()
    unknown = fake.admin("POST", f"/tasks/{task_id}/explode")
    assert unknown.status_code == 404 and "fail, complete, stall or resume" in unknown.json()["error"]["message"]
    assert fake.admin("POST", f"/tasks/{task_id}/fail", json={"code": 7}).status_code == 422
