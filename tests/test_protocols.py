"""What a provider's contract says, the fake follows: status words and scripted words, results where
the task schema puts them, content/cancel/delete/list operations, forms, ids, required headers, the
server's path prefix, 202 with Location, echoed requests, and the refusals, in the provider's shape.

In-process and over real uvicorn, with the memory store and a real Redis, on a manual clock.
`tests/contracts/dream.yaml` is a contract written for these tests in the shape of Luma's Dream
Machine API (a fourth protocol: `state`, `assets.video`, `request`, 202, offsets)."""

from __future__ import annotations

import dataclasses
import io
import json
import re
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import av
import pytest
import yaml

from contracts import Contract
from mockserver import Settings, conformity, create_app
from mockserver.scenarios import ScenarioError
from tests.conftest import Fake, start_fake
from tests.examples import EXAMPLES, mockserver_cli
from tests.mp4 import read

HERE = Path(__file__).parent
DREAM = HERE / "contracts" / "dream.yaml"
RUNWAY = EXAMPLES / "runway.yaml"
REPLICATE = EXAMPLES / "replicate.yaml"
OPENAI = EXAMPLES / "openai-videos.yaml"
KEY = {"Authorization": "Bearer sk-test"}
RUNWAY_KEY = {**KEY, "X-Runway-Version": "2024-11-06"}


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue("redis_url") if request.param == "redis" else "memory"


def _fake(stack: ExitStack, contract: Path, store: str = "memory", **settings: Any) -> Fake:
    """A fake of `contract` over real uvicorn; every answer of its operations is checked against it."""
    fake = start_fake(
        stack, Settings(clock="manual", contract=str(contract), store=store, store_prefix="protocols", **settings)
    )
    return fake


@pytest.fixture
def dream(store: str) -> Iterator[Fake]:
    with ExitStack() as stack:
        yield _fake(stack, DREAM, store)


def _advance(fake: Fake, seconds: float) -> None:
    fake.advance(seconds)


# A dream-machine-like protocol: state words, assets.video, request echoed, 202 + Location, forms


def test_a_submit_answers_202_with_location_and_the_task_echoes_its_request(dream: Fake) -> None:
    created = dream.request("POST", "/dream-machine/v1/generations/video", json={"prompt": "a whale"}, headers=KEY)
    assert created.status_code == 202, created.text
    task = created.json()
    uuid.UUID(task["id"])  # an id shaped like the contract's (format: uuid)
    assert created.headers["location"].endswith(f"/dream-machine/v1/generations/{task['id']}")
    assert task["state"] == "queued" and task["assets"] is None and task["generation_type"] == "video"
    assert task["request"] == {
        "prompt": "a whale",
        "aspect_ratio": "16:9",
        "resolution": "720p",
        "duration": "5s",
        "loop": False,
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", task["created_at"])
    assert "failure_reason" not in task and "model" not in task  # optional, nothing to give: left out
    location = "/" + created.headers["location"].split("/", 3)[3]  # the Location's path, on this fake
    assert dream.request("GET", location, headers=KEY).json()["state"] == "queued"
    _advance(dream, 30)
    assert (
        dream.request("GET", f"/dream-machine/v1/generations/{task['id']}", headers=KEY).json()["state"] == "dreaming"
    )
    _advance(dream, 120)
    done = dream.request("GET", f"/dream-machine/v1/generations/{task['id']}", headers=KEY).json()
    assert done["state"] == "completed" and set(done["assets"]) == {"video"}
    movie = read(dream.request("GET", done["assets"]["video"]).content)
    assert max(movie.sizes) == (1280, 720) and round(movie.duration, 2) == 5.0


def test_a_form_body_is_read_and_validated_like_json(dream: Fake) -> None:
    form = {"prompt": "a fox", "aspect_ratio": "9:16", "resolution": "1080p", "duration": "9s", "loop": "true"}
    created = dream.request("POST", "/dream-machine/v1/generations/video", data=form, headers=KEY)
    assert created.status_code == 202, created.text
    assert created.json()["request"]["loop"] is True  # a form's text, read as the schema's boolean
    _advance(dream, 200)
    done = dream.request("GET", f"/dream-machine/v1/generations/{created.json()['id']}", headers=KEY).json()
    movie = read(dream.request("GET", done["assets"]["video"]).content)
    assert max(movie.sizes) == (1080, 1920) and round(movie.duration, 2) == 9.0
    bad = dream.request(
        "POST", "/dream-machine/v1/generations/video", data={**form, "aspect_ratio": "2:1"}, headers=KEY
    )
    assert bad.status_code == 422 and "aspect_ratio" in bad.json()["detail"]
    unknown = dream.request(
        "POST", "/dream-machine/v1/generations/video", json={"prompt": "p", "speed": 2}, headers=KEY
    )
    assert unknown.status_code == 422 and set(unknown.json()) == {"detail"}
    text = dream.request(
        "POST", "/dream-machine/v1/generations/video", content=b"prompt", headers={**KEY, "Content-Type": "text/plain"}
    )
    assert text.status_code == 400 and "application/json" in text.json()["detail"]


def test_the_routes_are_served_under_the_server_path_and_a_404_names_them(dream: Fake) -> None:
    missing = dream.request("POST", "/generations/video", json={"prompt": "p"}, headers=KEY, check_contract=False)
    assert missing.status_code == 404
    said = missing.json()["detail"]  # in the provider's error shape, not ours
    assert "POST /dream-machine/v1/generations/video" in said and "GET /dream-machine/v1/generations/{id}" in said


def test_delete_makes_a_task_gone_and_list_pages_the_key_s_own_tasks(dream: Fake) -> None:
    ids = [
        dream.request("POST", "/dream-machine/v1/generations/video", json={"prompt": f"p{i}"}, headers=KEY).json()["id"]
        for i in range(3)
    ]
    other = {"Authorization": "Bearer sk-someone-else"}
    dream.request("POST", "/dream-machine/v1/generations/video", json={"prompt": "theirs"}, headers=other)
    page = dream.request("GET", "/dream-machine/v1/generations", params={"limit": 2}, headers=KEY).json()
    assert [g["id"] for g in page["generations"]] == ids[::-1][:2]  # newest first, this key's only
    assert (page["has_more"], page["count"], page["limit"], page["offset"]) == (True, 3, 2, 0)
    rest = dream.request("GET", "/dream-machine/v1/generations", params={"limit": 2, "offset": 2}, headers=KEY).json()
    assert [g["id"] for g in rest["generations"]] == [ids[0]] and rest["has_more"] is False
    _advance(dream, 200)
    assert dream.request("DELETE", f"/dream-machine/v1/generations/{ids[1]}", headers=KEY).status_code == 204
    gone = dream.request("GET", f"/dream-machine/v1/generations/{ids[1]}", headers=KEY)
    assert gone.status_code == 404 and ids[1] in gone.json()["detail"]
    completed = dream.request("GET", "/dream-machine/v1/generations", params={"state": "completed"}, headers=KEY).json()
    assert sorted(g["id"] for g in completed["generations"]) == sorted([ids[0], ids[2]])
    assert dream.request("DELETE", f"/dream-machine/v1/generations/{ids[1]}", headers=KEY).status_code == 404


# Runway: a oneOf task by status, THROTTLED, progress 0..1, a required version header


THROTTLED = """\
name: throttled-then-done
description: Waits for a concurrency slot (THROTTLED), runs, succeeds.
timeline:
  - {at: 0, status: PENDING}
  - {at: 2, status: THROTTLED}
  - {at: 10, status: RUNNING, progress: 10}
  - {at: 20, status: SUCCEEDED}
"""


@pytest.fixture
def runway(tmp_path: Path, store: str) -> Iterator[Fake]:
    (tmp_path / "throttled.yaml").write_text(THROTTLED)
    with ExitStack() as stack:
        yield _fake(stack, RUNWAY, store, scenario_dirs=(tmp_path,))


def _runway_task(fake: Fake, scenario: str = "default") -> str:
    body = {"model": "gen4_turbo", "promptImage": "https://example.com/a.png", "ratio": "1280:720", "duration": 5}
    created = fake.request("POST", "/v1/image_to_video", json=body, headers={**RUNWAY_KEY, "X-Mock-Scenario": scenario})
    assert created.status_code == 200, created.text
    return str(created.json()["id"])


def test_a_scripted_provider_word_is_answered_as_written(runway: Fake) -> None:
    task_id = _runway_task(runway, "throttled-then-done")
    seen = []
    for step in (0, 3, 5, 4, 10):  # at 0, 3, 8, 12 and 22 s
        _advance(runway, step)
        task = runway.request("GET", f"/v1/tasks/{task_id}", headers=RUNWAY_KEY).json()
        seen.append((task["status"], task.get("progress")))
    assert [status for status, _ in seen] == ["PENDING", "THROTTLED", "THROTTLED", "RUNNING", "SUCCEEDED"]
    running = next(progress for status, progress in seen if status == "RUNNING")
    assert 0.1 <= running < 1  # Runway's progress runs from 0 to 1
    timeline = runway.admin("GET", "/scenarios/throttled-then-done").json()["timeline"]
    assert [(step["status"], step["phase"]) for step in timeline][:2] == [
        ("PENDING", "queued"),
        ("THROTTLED", "queued"),
    ]


def test_a_marker_in_the_provider_s_prompt_field_picks_a_failure_in_its_words(runway: Fake) -> None:
    """The failure catalogue under Runway: `[mock:content-policy]` in `promptText` (the prompt role)."""
    body = {"model": "gen4_turbo", "promptImage": "https://example.com/a.png", "ratio": "1280:720",
            "promptText": "a cat [mock:content-policy]"}  # fmt: skip
    task_id = runway.request("POST", "/v1/image_to_video", json=body, headers=RUNWAY_KEY).json()["id"]
    _advance(runway, 120)
    task = runway.request("GET", f"/v1/tasks/{task_id}", headers=RUNWAY_KEY).json()
    assert (task["status"], task["failureCode"]) == ("FAILED", "content_policy_violation")
    assert "content safety policy" in task["failure"] and "output" not in task
    assert runway.admin("GET", f"/tasks/{task_id}").json()["selected_by"] == "rule"


def test_the_required_version_header_is_enforced_with_the_documented_error(runway: Fake) -> None:
    body = {"model": "gen4_turbo", "promptImage": "https://example.com/a.png", "ratio": "1280:720"}
    missing = runway.request("POST", "/v1/image_to_video", json=body, headers=KEY)
    assert missing.status_code == 400 and missing.json() == {"error": "Missing required header 'X-Runway-Version'."}
    # (a GET documents no 400: the fake answers one in the shape its other errors have)
    wrong = runway.request(
        "GET", f"/v1/tasks/{uuid.uuid4()}", headers={**KEY, "X-Runway-Version": "2023-01-01"}, check_contract=False
    )
    assert wrong.status_code == 400 and "'2024-11-06'" in wrong.json()["error"]


def test_a_task_cancelled_from_the_admin_api_answers_the_provider_s_word(runway: Fake) -> None:
    task_id = _runway_task(runway)
    cancelled = runway.admin("POST", f"/tasks/{task_id}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["task"]["status"] == "CANCELLED"
    assert runway.request("GET", f"/v1/tasks/{task_id}", headers=RUNWAY_KEY).json()["status"] == "CANCELLED"
    again = runway.admin("POST", f"/tasks/{task_id}/cancel")
    assert again.status_code == 409 and "already CANCELLED" in again.json()["error"]["message"]


def test_the_dashboard_shows_the_provider_s_words(runway: Fake) -> None:
    task_id = _runway_task(runway, "throttled-then-done")
    _advance(runway, 3)
    listing = runway.request("GET", "/__admin/ui", check_contract=False).text
    assert "THROTTLED" in listing
    page = runway.request("GET", f"/__admin/ui/tasks/{task_id}", check_contract=False).text
    assert "THROTTLED" in page and "RUNNING" in page and "SUCCEEDED" in page  # its status, its timeline's steps


def test_a_scenario_word_the_contract_does_not_know_is_refused_with_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "dreamy.yaml").write_text(THROTTLED.replace("THROTTLED}", "dreaming}"))
    with (
        pytest.raises(ScenarioError, match=r"dreamy\.yaml:5: timeline\[1\]\.status: 'dreaming' is not one of"),
        ExitStack() as stack,
    ):
        _fake(stack, RUNWAY, scenario_dirs=(tmp_path,))


# Replicate: a cancel operation, a scenario whose tasks cannot be cancelled


def test_cancel_answers_the_task_and_refuses_a_finished_or_uncancellable_one(tmp_path: Path, store: str) -> None:
    (tmp_path / "stuck.yaml").write_text(
        "name: not-cancellable\ndescription: Its tasks cannot be cancelled.\ncancellable: false\n"
        "timeline:\n  - {at: 0, status: pending}\n  - {at: 5, status: processing, progress: 5}\n"
    )
    with ExitStack() as stack:
        fake = _fake(stack, REPLICATE, store, scenario_dirs=(tmp_path,))
        path = "/v1/models/lightricks/ltx-2.5-fast/predictions"
        created = fake.request("POST", path, json={"input": {"prompt": "p"}}, headers=KEY)
        assert created.status_code == 201 and created.json()["model"] == "lightricks/ltx-2.5-fast"  # from the path
        task_id = created.json()["id"]
        assert created.json()["urls"]["cancel"].endswith(f"/v1/predictions/{task_id}/cancel")
        cancel = fake.request("POST", f"/v1/predictions/{task_id}/cancel", headers=KEY)
        assert cancel.status_code == 200 and cancel.json()["status"] == "canceled"
        assert cancel.json()["input"] == {"prompt": "p"}  # echoed as sent
        page = fake.request("GET", f"/__admin/ui/tasks/{task_id}", check_contract=False)
        assert page.status_code == 200 and "canceled" in page.text  # the dashboard shows it, echo and all
        again = fake.request("POST", f"/v1/predictions/{task_id}/cancel", headers=KEY, check_contract=False)
        assert again.status_code == 409 and "already canceled" in again.json()["detail"]
        stuck = fake.request(
            "POST", path, json={"input": {"prompt": "p"}}, headers={**KEY, "X-Mock-Scenario": "not-cancellable"}
        )
        refused = fake.request(
            "POST", f"/v1/predictions/{stuck.json()['id']}/cancel", headers=KEY, check_contract=False
        )
        assert refused.status_code == 409 and "cannot be cancelled" in refused.json()["detail"]


# OpenAI: the video is not in the task; a content operation serves it


def test_the_content_operation_serves_the_video_and_refuses_it_before_completion(store: str) -> None:
    with ExitStack() as stack:
        fake = _fake(stack, OPENAI, store)
        form = {"prompt": (None, "p"), "seconds": (None, "12"), "size": (None, "1792x1024")}
        created = fake.request("POST", "/v1/videos", files=form, headers=KEY)  # multipart, as the SDK sends it
        video = created.json()
        assert created.status_code == 200 and video["seconds"] == "12" and video["size"] == "1792x1024"
        assert re.fullmatch(r"video_[0-9A-Za-z]+", video["id"])
        early = fake.request("GET", f"/v1/videos/{video['id']}/content", headers=KEY)
        assert early.status_code == 404 and early.json()["error"]["code"] == "not_ready"
        assert fake.request("GET", f"/v1/videos/{video['id']}/content").status_code == 401  # through the API: a key
        _advance(fake, 300)
        content = fake.request("GET", f"/v1/videos/{video['id']}/content", headers=KEY)
        assert content.status_code == 200 and content.headers["content-type"] == "video/mp4"
        movie = read(content.content)
        assert max(movie.sizes) == (1792, 1024) and round(movie.duration, 2) == 12.0
        # a player seeks with Range (OpenAI's reference documents no 206: HTTP's own answer)
        part = fake.request(
            "GET", f"/v1/videos/{video['id']}/content", headers={**KEY, "Range": "bytes=0-99"}, check_contract=False
        )
        assert part.status_code == 206 and part.content == content.content[:100]
        thumbnail = fake.request(
            "GET", f"/v1/videos/{video['id']}/content", params={"variant": "thumbnail"}, headers=KEY
        )
        assert thumbnail.status_code == 200 and thumbnail.headers["content-type"] == "image/webp"  # as documented
        assert thumbnail.content[:4] == b"RIFF" and thumbnail.content[8:12] == b"WEBP"
        sprites = fake.request(
            "GET", f"/v1/videos/{video['id']}/content", params={"variant": "spritesheet"}, headers=KEY
        )
        assert sprites.headers["content-type"] == "image/jpeg" and sprites.content[:2] == b"\xff\xd8"
        with av.open(io.BytesIO(thumbnail.content)) as picture:  # a real picture, of the video's size
            frame = next(picture.decode(video=0))
            assert (frame.width, frame.height) == (1792, 1024)
        _advance(fake, 25 * 3600)
        expired = fake.request("GET", f"/v1/videos/{video['id']}/content", headers=KEY)
        assert expired.status_code == 404 and expired.json()["error"]["code"] == "url_expired"


# Ids shaped like the contract's


@pytest.mark.parametrize(
    ("schema", "shape"),
    [
        ({"type": "string", "pattern": "^gen_[a-z0-9]{12}$"}, r"gen_[a-z0-9]{12}"),
        ({"type": "string", "example": "vid-8f2c61aa904d"}, r"vid-[0-9a-f]{12}"),
        ({"type": "string", "format": "uuid"}, r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"),
    ],
    ids=["pattern", "example-prefix", "uuid"],
)
def test_task_ids_follow_the_contract_s_id_schema(tmp_path: Path, schema: dict[str, Any], shape: str) -> None:
    document = yaml.safe_load(DREAM.read_text())
    document["components"]["schemas"]["Generation"]["properties"]["id"] = schema
    document["paths"]["/generations/{id}"]["parameters"][0]["schema"] = {"type": "string"}
    path = tmp_path / "ids.yaml"
    path.write_text(yaml.safe_dump(document))
    with ExitStack() as stack:
        fake = _fake(stack, path)
        ids = {
            fake.request("POST", "/dream-machine/v1/generations/video", json={"prompt": "p"}, headers=KEY).json()["id"]
            for _ in range(5)
        }
    assert len(ids) == 5 and all(re.fullmatch(shape, task_id) for task_id in ids), ids


def test_ids_from_a_loose_pattern_are_safe_in_a_url_and_running_out_of_them_is_a_503(
    tmp_path: Path, store: str
) -> None:
    loose = _broken(tmp_path, lambda d: d["components"]["schemas"]["Generation"]["properties"].__setitem__(
        "id", {"type": "string", "pattern": "^\\S{12}$"}), "loose.yaml")  # fmt: skip
    few = _broken(tmp_path, lambda d: d["components"]["schemas"]["Generation"]["properties"].__setitem__(
        "id", {"type": "string", "pattern": "^[0-9]$"}), "few.yaml")  # fmt: skip
    for path in (loose, few):
        document = yaml.safe_load(path.read_text())
        document["paths"]["/generations/{id}"]["parameters"][0]["schema"] = {"type": "string"}
        path.write_text(yaml.safe_dump(document))
    with ExitStack() as stack:
        fake = _fake(stack, loose, store)
        for _ in range(5):
            task_id = fake.request(
                "POST", "/dream-machine/v1/generations/video", json={"prompt": "p"}, headers=KEY
            ).json()["id"]
            assert re.fullmatch(r"[A-Za-z0-9._~-]{12}", task_id), task_id  # nothing a URL path would split or quote
            assert fake.request("GET", f"/dream-machine/v1/generations/{task_id}", headers=KEY).status_code == 200
    with ExitStack() as stack:
        fake = _fake(stack, few, store)
        answers = [
            fake.request(
                "POST", "/dream-machine/v1/generations/video", json={"prompt": "p"}, headers=KEY, check_contract=False
            )
            for _ in range(40)
        ]
        refused = [answer for answer in answers if answer.status_code == 503]
        assert {answer.status_code for answer in answers} == {202, 503} and len(answers) - len(refused) <= 10
        assert "free task id" in refused[0].text
        assert fake.request("GET", "/__admin/health", check_contract=False).status_code == 200  # still serving


def test_a_key_s_tasks_are_indexed_only_where_the_contract_lists_them(redis_url: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    with ExitStack() as stack:
        seed = start_fake(stack, Settings(clock="manual", store=redis_url, store_prefix="no-list"))
        seed.create()
        dream = _fake(stack, DREAM, redis_url)
        for _ in range(3):
            dream.request("POST", "/dream-machine/v1/generations/video", json={"prompt": "p"}, headers=KEY)
    assert client.keys("{no-list}:k:*") == []  # the shipped contract has no list: nothing kept for one
    (index,) = client.keys("{protocols}:k:*")
    assert client.zcard(index) == 3


# Bad contracts stop every command with the file, the pointer and what to change


def _broken(tmp_path: Path, change: Any, name: str = "broken.yaml") -> Path:
    document = yaml.safe_load(DREAM.read_text())
    change(document)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


BAD = {
    "unmappable-status": (
        lambda d: d["components"]["schemas"]["State"]["enum"].append("uploading"),
        (
            "at /components/schemas/State/enum/4: the status word 'uploading' has no phase: map it with "
            "'x-mockserver-status: {uploading: queued|running|succeeded|failed|cancelled}'"
        ),
    ),
    "content-without-task-id": (
        lambda d: d["paths"].__setitem__(
            "/download", {"get": {"x-mockserver-operation": "content", "responses": {"200": {"description": "bytes"}}}}
        ),
        "at /paths/~1download: the content operation's path has no {task id} parameter",
    ),
    "result-role-on-a-number": (
        lambda d: d["components"]["schemas"]["Generation"]["properties"].__setitem__(
            "frames", {"type": "integer", "x-mockserver-role": "result_url"}
        ),
        (
            "at /components/schemas/Generation/properties/frames: x-mockserver-role: result_url marks where the video's "
            "URL goes: the type ['integer'] cannot hold a URL"
        ),
    ),
}


@pytest.mark.parametrize("kind", sorted(BAD))
def test_a_bad_contract_stops_every_command_with_the_pointer(tmp_path: Path, kind: str) -> None:
    change, said = BAD[kind]
    path = _broken(tmp_path, change)
    for command in (
        ["serve", "--contract", str(path), "--port", "0"],
        ["scenarios", "validate", "--contract", str(path)],
        ["check", "--base-url", "http://127.0.0.1:9", "--contract", str(path), "--token", "sk-x"],
    ):
        run = mockserver_cli(*command)
        assert run.returncode != 0, (command, run.stdout)
        assert f"{path}: {said}" in run.stderr, (command, run.stderr)
        assert "Traceback" not in run.stderr


def test_every_example_contract_loads_with_its_protocol() -> None:
    """What the fake finds in each worked example, as its docs say."""
    found = {name: Contract.load(EXAMPLES / f"{name}.yaml").shapes for name in ("openai-videos", "runway", "replicate")}
    assert sorted(found["openai-videos"].operations) == ["content", "delete", "list", "query", "submit"]
    assert sorted(found["runway"].operations) == ["delete", "query", "submit"]
    assert sorted(found["replicate"].operations) == ["cancel", "list", "query", "submit"]
    assert found["runway"].vocabulary.words["THROTTLED"] == "queued"
    assert found["replicate"].vocabulary.canonical["cancelled"] == "canceled"
    assert found["openai-videos"].tasks[0].place is None  # the video is not in the task: content serves it


@pytest.mark.parametrize(
    "contract", ["seed", "current", OPENAI, RUNWAY, REPLICATE, DREAM, EXAMPLES / "upstream-dialect.yaml"], ids=str
)
def test_the_submit_answer_is_the_same_from_its_template_and_from_the_renderer(contract: Any) -> None:
    """Where the submit answer is a template filled in (the fast path), it says what rendering it
    whole says, for a cancellable task and for one that is not."""
    runtime = create_app(Settings(clock="manual", contract=str(contract))).state.runtime
    render = runtime.render
    for cancellable in (True, False):
        scenario = dataclasses.replace(runtime.scenarios["default"], cancellable=cancellable)
        task = conformity.sample_task(runtime.contract, render, scenario)
        assert json.loads(render.created_json(task, 45, "http://mock.test")) == render.created(
            task, 45, "http://mock.test"
        )
