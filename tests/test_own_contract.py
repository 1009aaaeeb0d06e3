"""Bring your own contract: the loaded document shapes every answer.

The two worked examples in examples/contracts/ (the upstream platform's dialect, and two models of
this provider in one contract) are served by real `mockserver serve` processes; the clients
written for them (examples/contracts/clients/) run unchanged and complete, and every answer they
got is checked against their contract by schemathesis. The rest runs in-process on a manual clock.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from contracts import Contract, ContractError
from mockserver import Settings, create_app
from tests.conftest import Fake, start_fake
from tests.examples import answers_conform, client_run, mockserver_cli
from tests.mp4 import read
from tests.processes import running

ROOT = Path(__file__).parents[1]
EXAMPLES = ROOT / "examples" / "contracts"
UPSTREAM = EXAMPLES / "upstream-dialect.yaml"
TWO_MODELS = EXAMPLES / "provider-two-models.yaml"
KEY = {"Authorization": "Bearer sk-test"}
IMAGE = "https://example.com/first-frame.png"


@pytest.mark.parametrize(
    ("contract", "client", "args"),
    [
        (UPSTREAM, "upstream_client.py", ["--model", "happyhorse-1.0-image-to-video", "--image", IMAGE]),
        (
            UPSTREAM,
            "upstream_client.py",
            ["--model", "happyhorse-1.0-video-edit", "--video", "https://example.com/in.mp4"],
        ),
        (TWO_MODELS, "two_models_client.py", ["--model", "veo-3.1-extend"]),
        (TWO_MODELS, "two_models_client.py", ["--model", "veo-3.1-fast", "--image", IMAGE]),
    ],
    ids=["upstream-image-to-video", "upstream-video-edit", "provider-extend", "provider-fast"],
)
def test_a_client_written_for_the_contract_completes_and_every_answer_conforms(
    contract: Path, client: str, args: list[str]
) -> None:
    with running(["--contract", str(contract), "--speed", "100", "--scenario", "completed-before-results"]) as (url, _):
        run = client_run(url, client, *args)
        assert run.returncode == 0, run.stdout + run.stderr
        assert run.stdout.strip().splitlines()[-1].startswith(f"{url}/files/task-unified-")
        assert answers_conform(url, contract) >= 3  # the submit and at least two polls


def test_the_upstream_client_reads_its_dialect_and_its_failures() -> None:
    """task_info and usage.billing_rule on queries; refusals and failed tasks in its own codes."""
    args = ["--model", "happyhorse-1.0-image-to-video", "--image", IMAGE]
    with running(["--contract", str(UPSTREAM), "--speed", "100", "--scenario", "fast"]) as (url, _):
        done = client_run(url, client := "upstream_client.py", *args)
        assert done.returncode == 0, done.stderr
        assert (
            "billing_rule: per_" in done.stdout and '"video_duration": 5' in done.stdout
        )  # the clip follows the request's duration (5 s)
        for scenario, status, said in [
            ("insufficient-quota", 2, "error.code: insufficient_quota"),
            ("content-policy", 1, "content_policy_violation"),
            ("rate-limited-then-ok", 0, "/files/task-unified-"),
        ]:
            httpx.put(f"{url}/__admin/scenarios/default", json={"scenario": scenario}).raise_for_status()
            run = client_run(url, client, *args)
            assert run.returncode == status, (scenario, run.stdout, run.stderr)
            assert said in run.stdout + run.stderr
        assert answers_conform(url, UPSTREAM) >= 6


@pytest.fixture(params=["memory", "redis"])
def upstream(request: pytest.FixtureRequest) -> Iterator[Fake]:
    """A fake serving the upstream dialect over real uvicorn, its state in memory or on a real
    Redis; every answer is checked against the dialect's contract."""
    store = request.getfixturevalue("redis_url") if request.param == "redis" else "memory"
    with ExitStack() as stack:
        yield start_fake(stack, Settings(clock="manual", contract=str(UPSTREAM), store=store, store_prefix="dialect"))


@pytest.fixture
def two_models() -> Iterator[Fake]:
    with ExitStack() as stack:
        yield start_fake(stack, Settings(clock="manual", contract=str(TWO_MODELS)))


def _advance(client: Fake, seconds: float) -> None:
    client.advance(seconds)


def test_the_dialect_shapes_every_answer(upstream: Fake) -> None:
    body = {"model": "happyhorse-1.0-image-to-video", "image_urls": [IMAGE]}
    created = upstream.request("POST", "/v1/videos/generations", json=body, headers=KEY)
    assert created.status_code == 200
    task = created.json()
    assert task["usage"]["billing_rule"] in ("per_call", "per_token", "per_second")
    polled = upstream.request("GET", f"/v1/tasks/{task['id']}", headers=KEY).json()
    assert polled["status"] == "pending" and "results" not in polled and "error" not in polled
    assert set(polled["task_info"]) >= {"can_cancel"} and polled["usage"]["billing_rule"]
    _advance(upstream, 3600)
    done = upstream.request("GET", f"/v1/tasks/{task['id']}", headers=KEY).json()
    assert done["status"] == "completed"
    assert all(isinstance(url, str) and url.endswith(".mp4") for url in done["results"])  # plain URL strings
    assert done["task_info"]["can_cancel"] is False
    assert upstream.request("GET", done["results"][0]).status_code == 200


def test_the_submit_template_says_what_the_renderer_says(upstream: Fake, two_models: Fake) -> None:
    from mockserver.state.task import Task

    for client in (upstream, two_models):
        runtime = client.runtime
        scenario = runtime.scenarios["default"]
        task = Task(
            "task-unified-1757165031-abcd1234", 1757165031, 0.0, scenario, 'odd " model \u00e9', "9:16", False, "k"
        )
        assert json.loads(runtime.render.created_json(task, 42)) == runtime.render.created(task, 42)


def test_errors_take_the_contracts_status_and_codes(upstream: Fake) -> None:
    """No 422 in this dialect: a body that breaks it gets the documented 400 with its code."""
    broken = upstream.request(
        "POST", "/v1/videos/generations", json={"model": "happyhorse-1.0-image-to-video"}, headers=KEY
    )
    assert broken.status_code == 400
    assert broken.json()["error"] == {
        "code": "invalid_request",
        "message": "Missing required field 'image_urls'.",
        "type": "invalid_request_error",
        "param": "image_urls",
    }
    unknown = upstream.request("POST", "/v1/videos/generations", json={"model": "nope"}, headers=KEY)
    assert unknown.status_code == 400 and unknown.json()["error"]["param"] == "model"
    assert "happyhorse-1.0-video-edit" in unknown.json()["error"]["message"]
    assert upstream.request("POST", "/v1/videos/generations", json={}).json()["error"]["code"] == "unauthorized"
    gone = upstream.request("GET", "/v1/tasks/task-unified-1-abcdefgh", headers=KEY)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "task_not_found"
    # a scripted refusal keeps its message; the contract gives it its code and type
    limited = upstream.request(
        "POST",
        "/v1/videos/generations",
        json={"model": "happyhorse-1.0-image-to-video", "image_urls": [IMAGE]},
        headers={**KEY, "X-Mock-Scenario": "rate-limited"},
    )
    left_out = upstream.request(
        "POST",
        "/v1/videos/generations",
        json={"model": "happyhorse-1.0-image-to-video", "image_urls": [IMAGE]},
        headers={**KEY, "X-Mock-Scenario": "model-not-found"},
    )
    assert left_out.status_code == 400  # in the dialect's words (its 400 code), with the reason
    assert "is left out" in left_out.json()["error"]["message"]
    assert "HTTP 422 is not documented" in left_out.json()["error"]["message"]
    assert limited.status_code == 429
    assert (
        limited.json()["error"]["code"] == "rate_limit_exceeded" and "Rate limit" in limited.json()["error"]["message"]
    )


def test_the_model_picks_the_body_and_the_refusal_names_its_field(two_models: Fake) -> None:
    fast = two_models.request("POST", "/v1/videos/generations", json={"model": "veo-3.1-fast"}, headers=KEY)
    assert fast.status_code == 422
    assert fast.json()["error"]["param"] == "prompt", fast.json()
    extend = two_models.request(
        "POST", "/v1/videos/generations", json={"model": "veo-3.1-extend", "prompt": "p"}, headers=KEY
    )
    assert extend.status_code == 422 and extend.json()["error"]["param"] == "video_url"
    missing = two_models.request("POST", "/v1/videos/generations", json={"prompt": "p"}, headers=KEY)
    assert missing.status_code == 422 and missing.json()["error"]["param"] == "model"
    body = {"model": "veo-3.1-fast", "prompt": "a fox", "aspect_ratio": "9:16", "generate_audio": False}
    created = two_models.request("POST", "/v1/videos/generations", json=body, headers=KEY)
    assert created.status_code == 200, created.json()
    assert created.json()["model"] == "veo-3.1-fast"  # recorded on the task
    _advance(two_models, 3600)
    done = two_models.request("GET", f"/v1/tasks/{created.json()['id']}", headers=KEY).json()
    assert done["model"] == "veo-3.1-fast"
    (result,) = done["results"]
    # the aspect ratio picked a portrait clip, at the body's default resolution (1080p) and duration (8 s)
    assert (result["width"], result["height"]) == (1080, 1920)
    movie = read(two_models.request("GET", result["url"]).content)
    assert max(movie.sizes) == (1080, 1920) and round(movie.duration, 2) == 8.0


def _bad(tmp_path: Path, change: Any) -> Path:
    document = yaml.safe_load(UPSTREAM.read_text())
    change(document)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def _task_schema(document: dict[str, Any]) -> dict[str, Any]:
    return document["components"]["schemas"]["Task"]


def _drop(mapping: dict[str, Any], key: str) -> None:
    mapping.pop(key)


BAD = {
    "no-submit": (
        lambda d: _drop(d["paths"], "/v1/videos/generations"),
        "at /paths: no submit operation found",
    ),
    "task-without-status": (
        lambda d: (_drop(_task_schema(d)["properties"], "status"), _task_schema(d)["required"].remove("status")),
        "at /components/schemas/Task: the task schema of the query operation has no 'status' property",
    ),
    "unresolved-ref": (
        lambda d: _task_schema(d)["properties"].__setitem__("usage", {"$ref": "#/components/schemas/Nowhere"}),
        "at /components/schemas/Task/properties/usage: the reference '#/components/schemas/Nowhere' does not resolve",
    ),
    "unfillable-results": (
        lambda d: _task_schema(d)["properties"].__setitem__("results", {"type": "array", "items": {"type": "integer"}}),
        "at /components/schemas/Task/properties/results/items: the fake cannot fill these results",
    ),
    "allof-loop": (
        lambda d: (
            d["components"]["schemas"].update(
                {
                    "A": {"allOf": [{"$ref": "#/components/schemas/B"}]},
                    "B": {"allOf": [{"$ref": "#/components/schemas/A"}]},
                }
            )
            or _task_schema(d)["properties"].__setitem__("loop", {"$ref": "#/components/schemas/A"})
        ),
        "allOf and $ref refer to each other in a loop",
    ),
    "list-extension": (
        lambda d: _task_schema(d)["properties"]["status"].__setitem__("x-mockserver-value", ["status"]),
        "at /components/schemas/Task/properties/status: x-mockserver-value is ['status']",
    ),
    "null-path-item": (
        lambda d: d["paths"].__setitem__("/v1/other", None),
        "at /paths/~1v1~1other: a path item must be a mapping",
    ),
    "extension-of-the-wrong-type": (
        lambda d: _task_schema(d)["properties"]["progress"].__setitem__("x-mockserver-value", "model"),
        "x-mockserver-value: model gives a string, which type ['integer'] cannot hold",
    ),
    "bad-extension": (
        lambda d: _task_schema(d)["properties"]["progress"].__setitem__("x-mockserver-value", "percent"),
        "at /components/schemas/Task/properties/progress: x-mockserver-value is 'percent'",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_contract_stops_the_server_naming_file_pointer_and_problem(tmp_path: Path, case: str) -> None:
    change, expected = BAD[case]
    path = _bad(tmp_path, change)
    with pytest.raises(ContractError) as caught:
        Contract.load(path)
    assert str(caught.value).startswith(f"{path}: ") and expected in str(caught.value)
    run = mockserver_cli("serve", "--contract", str(path), "--port", "1")
    assert run.returncode != 0 and expected in run.stderr and "Traceback" not in run.stderr


def test_validate_says_which_shipped_scenarios_a_contract_cannot_play(tmp_path: Path) -> None:
    run = mockserver_cli("scenarios", "validate", "--contract", str(UPSTREAM))
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert "plays    default" in lines and "plays    content-policy" in lines
    assert any(
        line.startswith("left out  model-not-found (submit-errors.yaml): submit: HTTP 422 is not documented")
        for line in lines
    )
    assert any(line.startswith("left out  expired-key") and '"unauthorized" was expected' in line for line in lines)
    assert lines[-1].startswith("35 of 42 shipped scenarios play under")
    # the server leaves exactly those out, and says so
    runtime = create_app(Settings(clock="manual", contract=str(UPSTREAM))).state.runtime
    left = {line.split()[2] for line in lines if line.startswith("left out")}
    assert set(runtime.left_out_reasons) == left and not left & set(runtime.scenarios)
    # a contract the shipped default scenario cannot play: validate fails, saying serve would not start
    # (a contract with no word for a running task answers its waiting word then: it has no word for done here)
    no_completed = _bad(
        tmp_path,
        lambda d: d["components"]["schemas"]["TaskStatus"].__setitem__("enum", ["pending", "processing", "failed"]),
    )
    run = mockserver_cli("scenarios", "validate", "--contract", str(no_completed))
    assert run.returncode == 1 and any(line.startswith("left out  default") for line in run.stdout.splitlines())
    assert "serve cannot start with this contract and the shipped default scenario" in run.stderr


def test_check_and_fuzz_client_judge_by_the_same_contract(tmp_path: Path) -> None:
    with running(["--contract", str(UPSTREAM), "--speed", "100"]) as (url, _):
        check = mockserver_cli("check", "--base-url", url, "--contract", str(UPSTREAM), "--token", "sk-check")
        assert check.returncode == 0, check.stdout + check.stderr
    fuzz = mockserver_cli(
        "fuzz-client", "--contract", str(UPSTREAM), "--examples", "7", "--seed", "3", "--speed", "200",
        "--time-limit", "6", "--out", str(tmp_path), "--env", "BASE_URL={base_url}", "--env", "API_KEY={api_key}",
        "--env", "POLL_INTERVAL=0.05", "--env", "MAX_WAIT=4", "--",
        sys.executable, str(EXAMPLES / "clients" / "upstream_client.py"), "--image", IMAGE,
    )  # fmt: skip
    assert fuzz.returncode == 0, fuzz.stdout[-3000:] + fuzz.stderr[-3000:]


def test_scripted_results_play_only_where_the_contract_takes_their_form(tmp_path: Path) -> None:
    """A scenario of the user's own that scripts URL strings plays under the upstream dialect and
    stops the server, naming the file, line and field, under our contract (objects with a url)."""
    from mockserver.scenarios import ScenarioError

    (tmp_path / "cdn.yaml").write_text(
        "name: cdn\n"
        "description: Completes with a URL on our own CDN.\n"
        "timeline:\n"
        "  - {at: 0, status: pending}\n"
        '  - {at: 5, status: completed, progress: 100, results: ["https://cdn.example/video.mp4"]}\n'
    )
    with ExitStack() as stack:
        fake = start_fake(stack, Settings(clock="manual", contract=str(UPSTREAM), scenario_dirs=(tmp_path,)))
        body = {"model": "happyhorse-1.0-image-to-video", "image_urls": [IMAGE]}
        task_id = fake.request(
            "POST", "/v1/videos/generations", json=body, headers={**KEY, "X-Mock-Scenario": "cdn"}
        ).json()["id"]
        fake.advance(5)
        assert fake.task(task_id)["results"] == ["https://cdn.example/video.mp4"]
    with pytest.raises(ScenarioError) as refused:
        create_app(Settings(clock="manual", scenario_dirs=(tmp_path,)))
    assert str(refused.value).startswith(f"{tmp_path / 'cdn.yaml'}:5") and "timeline[1]" in str(refused.value)


def _odd_contract() -> dict[str, Any]:
    """A contract written nothing like ours, but that the fake can serve: a discriminator mapping to
    bare schema names over branches whose `model` is any string, a flat error body whose `code` is
    the HTTP status, the task id under `{id}`, a 201 with a pinned status, `created` as a date-time
    string, a task that refers to itself, a JSON media type with a charset."""
    json_ = "application/json; charset=utf-8"

    def answer(schema: str) -> dict[str, Any]:
        return {"description": schema, "content": {json_: {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}

    flat = {
        "type": "object",
        "required": ["code", "message"],
        "properties": {"code": {"type": "integer"}, "message": {"type": "string"}},
    }
    branch = {
        "type": "object",
        "required": ["model", "prompt"],
        "properties": {"model": {"type": "string"}, "prompt": {"type": "string"}},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "odd", "version": "1"},
        "paths": {
            "/v2/jobs": {
                "post": {
                    "operationId": "startJob",
                    "x-mockserver-operation": "submit",
                    "requestBody": {"content": {json_: {"schema": {
                        "oneOf": [{"$ref": "#/components/schemas/Alpha"}, {"$ref": "#/components/schemas/Beta"}],
                        "discriminator": {"propertyName": "model", "mapping": {"alpha": "Alpha", "beta": "Beta"}},
                    }}}},
                    "responses": {"201": answer("Created"), "400": answer("Flat"), "401": answer("Flat")},
                }
            },
            "/v2/jobs/{id}": {
                "get": {
                    "operationId": "readJob",
                    "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
                    "responses": {"200": answer("Job"), "401": answer("Flat"), "404": answer("Flat")},
                }
            },
        },
        "components": {"schemas": {
            "Alpha": branch,
            "Beta": {**branch, "required": ["model", "prompt", "image_url"], "properties": {**branch["properties"], "image_url": {"type": "string"}}},
            "Flat": flat,
            "Created": {"type": "object", "required": ["id", "status", "created"], "properties": {
                "id": {"type": "string"}, "status": {"const": "queued"}, "created": {"type": "string", "format": "date-time"}}},
            "Job": {"type": "object", "required": ["id", "status"], "properties": {
                "id": {"type": "string"},
                "model": {"enum": ["alpha", "beta"]},
                "status": {"enum": ["pending", "processing", "completed", "failed"]},
                "results": {"type": ["array", "null"], "items": {"type": "string"}},
                "parent": {"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/Job"}]}}},
        }},
    }  # fmt: skip


def test_a_contract_written_nothing_like_ours_is_served_within_it(tmp_path: Path) -> None:
    path = tmp_path / "odd.json"
    path.write_text(json.dumps(_odd_contract()))
    with ExitStack() as stack:
        fake = start_fake(stack, Settings(clock="manual", contract=str(path)))  # every answer checked against it
        post = lambda body, **kw: fake.request("POST", "/v2/jobs", json=body, **kw)
        # the model picks the branch: a body that fits alpha's but says beta is refused for beta's field
        refused = post({"model": "beta", "prompt": "x"}, headers=KEY)
        assert refused.status_code == 400 and refused.json() == {
            "code": 400,
            "message": "Missing required field 'image_url'.",
        }
        both = post({"model": "alpha", "prompt": "x", "image_url": "y"}, headers=KEY)  # fits both branches
        assert both.status_code == 201 and both.json()["status"] == "queued"  # the document pins it
        assert post({"model": "alpha", "prompt": "x"}).json()["code"] == 401
        job = both.json()["id"]
        assert fake.request("GET", f"/v2/jobs/{job}", headers=KEY).json()["status"] == "pending"
        fake.advance(3600)
        done = fake.request("GET", f"/v2/jobs/{job}", headers=KEY).json()
        assert done["model"] == "alpha"
        assert "content-policy" in fake.runtime.scenarios  # failures play, though the task's model is an enum
        assert (
            done["status"] == "completed" and done["results"][0].endswith(f"/files/{job}.mp4") and "parent" not in done
        )  # optional, null: left out
        assert fake.request("GET", "/v2/jobs/task-unified-1-abcdefgh", headers=KEY).json()["code"] == 404


def test_a_mix_of_the_users_own_that_needs_a_left_out_scenario_stops_the_server(tmp_path: Path) -> None:
    from mockserver.scenarios import ScenarioError

    (tmp_path / "mix.yaml").write_text(
        "name: my-mix\ndescription: mine\nmix:\n  - {scenario: default, weight: 1}\n  - {scenario: model-not-found, weight: 1}\n"
    )
    with pytest.raises(ScenarioError) as refused:
        create_app(Settings(clock="manual", contract=str(UPSTREAM), scenario_dirs=(tmp_path,)))
    assert str(refused.value).startswith(
        f"{tmp_path / 'mix.yaml'}:5: mix[1].scenario: 'model-not-found' is a shipped scenario"
    )
    assert "HTTP 422 is not documented" in str(refused.value)


def test_a_recording_of_the_dialect_replays_under_the_same_contract(tmp_path: Path) -> None:
    """The recorder holds the target to the dialect and keeps its results as URL strings; the
    recording plays under that contract and the dialect's client completes against it."""
    from tests.test_record import Recorder

    out = tmp_path / "recording"
    args = ["--model", "happyhorse-1.0-image-to-video", "--image", IMAGE]
    with running(["--contract", str(UPSTREAM), "--speed", "100", "--scenario", "completed-before-results"]) as (
        target,
        _,
    ):
        recorder = Recorder(target, out, "--contract", str(UPSTREAM), "--keep-result-urls")
        try:
            recorded = client_run(recorder.url, "upstream_client.py", *args)
        finally:
            code, output = recorder.stop()
        assert recorded.returncode == 0 and code == 0, recorded.stderr + output
        (written,) = list(out.glob("rec-*.yaml"))
        steps = yaml.safe_load(written.read_text().split("\n", 1)[1])["timeline"]
        kept = [step["results"] for step in steps if step.get("results")]
        assert kept and all(isinstance(url, str) and url.startswith(f"{target}/files/") for url in kept[-1])
        with running(["--contract", str(UPSTREAM), "--scenarios", str(out), "--scenario", "recorded"]) as (url, _):
            replayed = client_run(url, "upstream_client.py", *args)  # downloads from the recorded URL
            assert replayed.returncode == 0, replayed.stdout + replayed.stderr
            assert replayed.stdout.strip().splitlines()[-1] == kept[-1][0]
            assert answers_conform(url, UPSTREAM) >= 3


def test_a_problem_in_a_shared_file_names_that_file(tmp_path: Path) -> None:
    """A contract started from a copy of ours (current.yaml with common.yaml): a mistake in the
    shared file is reported in that file, at the pointer, and a bad reference where it is written."""
    shipped = ROOT / "contracts" / "openapi"
    (tmp_path / "mine.yaml").write_text((shipped / "current.yaml").read_text())
    common = yaml.safe_load((shipped / "common.yaml").read_text())
    del common["components"]["schemas"]["Task"]["properties"]["status"]
    common["components"]["schemas"]["Task"]["required"].remove("status")
    (tmp_path / "common.yaml").write_text(yaml.safe_dump(common, sort_keys=False))
    with pytest.raises(ContractError) as caught:
        Contract.load(tmp_path / "mine.yaml")
    assert str(caught.value) == (
        f"{(tmp_path / 'common.yaml').resolve()}: at /components/schemas/Task: "
        "the task schema of the query operation has no 'status' property"
    )
    common["components"]["schemas"]["Task"]["properties"]["results"]["items"] = {
        "$ref": "#/components/schemas/TaskResults"
    }
    (tmp_path / "common.yaml").write_text(yaml.safe_dump(common, sort_keys=False))
    with pytest.raises(ContractError) as caught:
        Contract.load(tmp_path / "mine.yaml")
    assert f"{(tmp_path / 'common.yaml').resolve()}: at /components/schemas/Task/properties/results/items: " in str(
        caught.value
    )
    assert "'#/components/schemas/TaskResults'" in str(caught.value)
    common["components"]["schemas"]["Task"]["properties"]["results"]["items"] = {
        "$ref": "#/components/schemas/TaskResult",
        "x-mockserver-vaule": "url",
    }
    (tmp_path / "common.yaml").write_text(yaml.safe_dump(common, sort_keys=False))
    with pytest.raises(ContractError, match="unknown extension 'x-mockserver-vaule'"):
        Contract.load(tmp_path / "mine.yaml")
