"""The provider API: submit and query, as a client sees them, over uvicorn and in-process."""

from __future__ import annotations

import json
import re

import pytest

from mockserver.state.task import Task
from tests.conftest import API_KEY, SUBMIT, Fake

ID = re.compile(r"^task-unified-(\d+)-[a-z0-9]{8}$")


def error_of(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}, body
    assert {"message", "type"} <= set(body["error"]), body
    return body["error"]


def test_submit_answers_200_with_a_pending_task(fake: Fake) -> None:
    response = fake.submit()
    assert response.status_code == 200
    task = response.json()
    match = ID.match(task["id"])
    assert match and int(match.group(1)) == task["created"]
    assert task["status"] == "pending" and task["progress"] == 0
    assert task["object"] == "video.generation.task" and task["type"] == "video"
    assert task["model"] == "veo-3.1-extend"
    assert task["task_info"] == {"can_cancel": True, "estimated_time": 90}


def test_created_is_the_clock_time(fake: Fake) -> None:
    now = fake.admin("GET", "/clock").json()["now"]
    assert fake.submit().json()["created"] == int(now)


def test_both_models_are_accepted(fake: Fake) -> None:
    for model in ("veo-3.1-extend", "veo-3.1-extend-fast"):
        response = fake.submit(model=model)
        assert response.status_code == 200
        assert response.json()["model"] == model


def test_query_returns_the_documented_task_shape(fake: Fake) -> None:
    task_id = fake.create()
    task = fake.task(task_id)
    assert task["id"] == task_id
    assert task["results"] is None and task["error"] is None
    assert task["usage"] == {"credits_reserved": 5, "user_group": "default"}
    assert fake.poll(task_id, sync_upstream="true").status_code == 200


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "sk-test"}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer"}],
    ids=["missing", "no-scheme", "basic", "empty-token"],
)
def test_submit_and_query_require_a_bearer_key(fake: Fake, headers: dict[str, str]) -> None:
    submit = fake.request("POST", SUBMIT, json=fake.body, headers=headers)
    assert submit.status_code == 401
    assert error_of(submit)["type"] == "authentication_error"
    task_id = fake.create()
    query = fake.request("GET", f"/v1/tasks/{task_id}", headers=headers)
    assert query.status_code == 401


def test_the_key_is_never_echoed(fake: Fake) -> None:
    secret = "sk-live-DO-NOT-LEAK-42"
    response = fake.request("POST", SUBMIT, json=fake.body, headers={"Authorization": f"Token {secret}"})
    assert response.status_code == 401
    assert secret not in response.text


@pytest.mark.parametrize(
    ("content", "content_type", "fragment"),
    [
        (b'{"model": "veo-3.1-extend",', "application/json", "not valid JSON"),
        (b"", "application/json", "empty"),
        (b'{"prompt": "\xff\xfe"}', "application/json", "not valid UTF-8"),
        (b'{"prompt": NaN}', "application/json", "not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "application/json", "nested too deeply"),
        (b'{"a":' * 500 + b"1" + b"}" * 500, "application/json", "nested too deeply"),  # too deep for the validator
        (b'{"prompt": "x"}', "text/plain", "Content-Type"),
        (b"model=veo", "application/x-www-form-urlencoded", "Content-Type"),
        (b'{"prompt": "x"}', "application/json; charset=latin-1", "charset"),
        (b'{"prompt": "x"}', None, "Content-Type"),
    ],
    ids=[
        "truncated",
        "empty",
        "bad-utf8",
        "nan",
        "deep",
        "deep-objects",
        "text-plain",
        "form",
        "charset",
        "no-content-type",
    ],
)
def test_malformed_bodies_get_400(fake: Fake, content: bytes, content_type: str | None, fragment: str) -> None:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    response = fake.request("POST", SUBMIT, content=content, headers=headers)
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert error["type"] == "invalid_request_error"
    assert fragment in error["message"]


def test_json_with_charset_utf8_is_fine(fake: Fake) -> None:
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json; charset=UTF-8"}
    response = fake.request(
        "POST",
        SUBMIT,
        content=b'{"model":"veo-3.1-extend","prompt":"p","video":"https://e.com/v.mp4"}',
        headers=headers,
    )
    assert response.status_code == 200


def test_a_body_over_one_mebibyte_gets_413(fake: Fake) -> None:
    response = fake.submit(prompt="x" * (1024 * 1024))
    assert response.status_code == 413
    assert "limit is 1048576 bytes" in error_of(response)["message"]


def test_a_chunked_body_over_the_limit_gets_413(live: Fake) -> None:
    def chunks():
        yield b'{"prompt": "'
        for _ in range(130):
            yield b"x" * 8192
        yield b'"}'

    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
    response = live.request("POST", SUBMIT, content=chunks(), headers=headers)
    assert response.status_code == 413


@pytest.mark.parametrize(
    ("change", "param", "fragment"),
    [
        ({"prompt": None}, "prompt", "null is not of type"),
        ({"prompt": 42}, "prompt", 'not of type "string"'),
        ({"model": "veo-9"}, "model", "is not one of"),
        ({"aspect_ratio": "1:1"}, "aspect_ratio", "is not one of"),
        ({"generate_audio": "yes"}, "generate_audio", 'not of type "boolean"'),
        ({"video": "not a url"}, "video", 'is not a "uri"'),
        ({"advanced": []}, "advanced", 'not of type "object"'),
    ],
)
def test_invalid_fields_get_422_naming_the_field(fake: Fake, change: dict, param: str, fragment: str) -> None:
    response = fake.submit(**change)
    assert response.status_code == 422
    error = error_of(response)
    assert error["param"] == param
    assert fragment in error["message"]


@pytest.mark.parametrize("missing", ["model", "prompt", "video"])
def test_missing_required_fields_get_422(fake: Fake, missing: str) -> None:
    body = {k: v for k, v in fake.body.items() if k != missing}
    response = fake.submit(body)
    assert response.status_code == 422
    assert error_of(response)["param"] == missing
    assert f"Missing required field '{missing}'" in error_of(response)["message"]


def test_a_body_that_is_not_an_object_gets_422(fake: Fake) -> None:
    response = fake.submit(["prompt"])
    assert response.status_code == 422
    assert 'is not of type "object"' in error_of(response)["message"]


def test_unknown_task_gets_404_in_provider_shape(fake: Fake) -> None:
    for task_id in ("task-unified-1757165031-uyujaw3d", "../../etc/passwd", "%00", "x" * 5000):
        response = fake.poll(task_id)
        assert response.status_code == 404
        assert error_of(response)["type"] == "not_found"


def test_invalid_query_parameter_gets_422(fake: Fake) -> None:
    task_id = fake.create()
    response = fake.poll(task_id, sync_upstream="maybe")
    assert response.status_code == 422
    assert error_of(response)["param"] == "sync_upstream"


def test_unknown_routes_and_methods_answer_in_provider_shape(fake: Fake) -> None:
    missing = fake.request("GET", "/v2/anything")
    assert missing.status_code == 404 and error_of(missing)["type"] == "not_found"
    wrong = fake.request("DELETE", SUBMIT)
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == "POST"
    assert "Allowed: POST" in error_of(wrong)["message"]


def test_x_mock_scenario_picks_the_scenario(fake: Fake) -> None:
    task_id = fake.create(scenario="content-policy")
    fake.advance(30)
    task = fake.task(task_id)
    assert task["status"] == "failed"
    assert task["error"]["code"] == "content_policy_violation"
    assert task["error"]["type"] == "task_error"
    assert task["results"] is None


def test_an_unknown_scenario_name_gets_400_listing_the_names(fake: Fake) -> None:
    response = fake.submit(scenario="no-such-thing")
    assert response.status_code == 400
    error = error_of(response)
    assert error["param"] == "x-mock-scenario"
    for name in ("default", "fast", "content-policy", "never-finishes"):
        assert name in error["message"]


def test_ids_are_reproducible_with_a_seed(make_fake) -> None:
    first = [make_fake(seed=3, clock_start=1_800_000_000).create() for _ in range(1)]
    second = [make_fake(seed=3, clock_start=1_800_000_000).create() for _ in range(1)]
    assert first == second
    assert first[0].startswith("task-unified-1800000000-")


def test_current_contract_accepts_video_url_and_refuses_video(make_fake) -> None:
    fake = make_fake(contract="current")
    accepted = fake.submit()
    assert accepted.status_code == 200
    assert accepted.json()["model"] == "veo-3.1-extend"
    seed_style = {"model": "veo-3.1-extend", "prompt": "p", "video": "https://example.com/in.mp4"}
    refused = fake.submit(seed_style)
    assert refused.status_code == 422
    error = error_of(refused)
    assert error["param"] == "video_url"
    assert "'video'" in error["message"]


def test_current_contract_checks_the_flat_options(make_fake) -> None:
    fake = make_fake(contract="current")
    assert fake.submit(safety_tolerance=3, seed=42, negative_prompt="blurry", auto_fix=None).status_code == 200
    response = fake.submit(safety_tolerance=9)
    assert response.status_code == 422 and error_of(response)["param"] == "safety_tolerance"


def test_current_contract_defaults_the_model(make_fake) -> None:
    fake = make_fake(contract="current")
    body = {"prompt": "p", "video_url": "https://example.com/in.mp4"}
    response = fake.submit(body)
    assert response.status_code == 200
    assert response.json()["model"] == "veo-3.1-extend"


def test_seed_contract_refuses_video_url(fake: Fake) -> None:
    response = fake.submit({"model": "veo-3.1-extend", "prompt": "p", "video_url": "https://example.com/in.mp4"})
    assert response.status_code == 422
    assert error_of(response)["param"] == "video"


@pytest.mark.parametrize("header", ["sk-live-SECRET-1234", "sk-abc SECRET-1234", "Bearer\tSECRET-1234x"])
def test_a_key_sent_without_a_known_scheme_is_never_echoed(fake: Fake, header: str) -> None:
    response = fake.request("POST", SUBMIT, json=fake.body, headers={"Authorization": header})
    assert response.status_code in (200, 401)
    assert "SECRET" not in response.text
    entry = fake.admin("GET", "/requests").json()["requests"][0]
    assert "SECRET" not in json.dumps(entry)


def test_path_tricks_on_the_task_route_are_unknown_tasks(fake: Fake) -> None:
    for task_id in ("..%2F..%2Fetc%2Fpasswd", "task-unified-1-aaaaaaaa%00", "%2e%2e"):
        response = fake.request("GET", f"/v1/tasks/{task_id}", headers={"Authorization": f"Bearer {API_KEY}"})
        assert response.status_code == 404
        assert response.json()["error"]["code"] in ("task_not_found", "unknown_route")


def test_a_trailing_slash_is_not_redirected(fake: Fake) -> None:
    response = fake.request("POST", SUBMIT + "/", json=fake.body, headers={"Authorization": f"Bearer {API_KEY}"})
    assert response.status_code == 404 and response.json()["error"]["code"] == "unknown_route"
    assert fake.admin("GET", "/tasks").json()["count"] == 0


@pytest.mark.parametrize(
    ("content", "fragment"),
    [(b'{"prompt": "\\ud800"}', "lone UTF-16 surrogate"), (b'\xef\xbb\xbf{"prompt": "x"}', "byte order mark")],
)
def test_json_that_is_not_quite_text_gets_400(fake: Fake, content: bytes, fragment: str) -> None:
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
    response = fake.request("POST", SUBMIT, content=content, headers=headers)
    assert response.status_code == 400 and fragment in response.json()["error"]["message"]


def test_paired_surrogate_escapes_are_fine(fake: Fake) -> None:
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
    body = json.dumps({**fake.body, "prompt": "a cat \U0001f408"}, ensure_ascii=True).encode()
    assert b"\\ud83d" in body
    assert fake.request("POST", SUBMIT, content=body, headers=headers).status_code == 200


def test_a_huge_wrong_value_is_not_echoed_back_whole(fake: Fake) -> None:
    response = fake.submit(aspect_ratio="x" * 100_000)
    assert response.status_code == 422 and len(response.text) < 1000


def test_head_on_a_task_does_not_count_as_a_poll(fake: Fake) -> None:
    task_id = fake.create(scenario="completed-before-results")
    fake.advance(65)
    head = fake.request(
        "HEAD", f"/v1/tasks/{task_id}", headers={"Authorization": f"Bearer {API_KEY}"}, check_contract=False
    )
    assert head.status_code == 200
    assert fake.admin("GET", f"/tasks/{task_id}").json()["polls"] == 0
    assert fake.task(task_id)["results"] is None  # the quirk is still there for the first real poll


def test_any_model_string_renders_under_the_current_contract(make_fake) -> None:
    fake = make_fake(contract="current")
    response = fake.submit(model="veo-3.1-extend[audio] \u00e9\u4e2d")
    assert response.status_code == 200
    assert fake.task(response.json()["id"])["model"] == "veo-3.1-extend[audio] \u00e9\u4e2d"


def test_keys_that_do_not_look_like_keys_are_refused(fake: Fake) -> None:
    response = fake.submit(key="test")
    assert response.status_code == 401
    assert "keys matching 'sk-\\S+'" in response.json()["error"]["message"]
    assert fake.poll("task-unified-1-aaaaaaaa", key="test").status_code == 401


def test_the_accepted_keys_are_configurable(make_fake) -> None:
    fake = make_fake(api_keys=r"team-[a-z]+")
    assert fake.submit(key="team-qa").status_code == 200
    assert fake.submit(key="sk-anything").status_code == 401


def test_an_invalid_key_pattern_or_an_unusable_key_map_stops_the_server(tmp_path) -> None:
    from mockserver import Settings, create_app

    with pytest.raises(ValueError, match="not a regular expression"):
        create_app(Settings(api_keys="(unclosed"))
    keys = tmp_path / "keys.yaml"
    keys.write_text("sk-qa-mine: fast\n")
    with pytest.raises(ValueError, match=r"keys\.yaml: some keys do not match --api-keys"):
        create_app(Settings(api_keys=r"team-\S+", keys=(keys,)))


def test_the_fast_submit_answer_is_the_rendered_one(fake: Fake) -> None:
    """The submit path fills a template for speed; it must say exactly what `created()` says."""
    import json as _json

    answer = fake.submit(model="veo-3.1-extend-fast").json()
    scenario = fake.runtime.scenarios["default"]
    task = Task(answer["id"], answer["created"], 0.0, scenario, answer["model"], "16:9", True, "key-test")
    assert (
        _json.loads(fake.runtime.render.created_json(task, 90))
        == fake.runtime.render.created(task, 90)
        == {**answer, "task_info": {**answer["task_info"], "estimated_time": 90}}
    )
    task.model = 'quote " back\\\\slash \u00e9 \U0001f408 \x01'
    assert _json.loads(fake.runtime.render.created_json(task, 7)) == fake.runtime.render.created(task, 7)
