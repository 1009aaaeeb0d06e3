"""Scenario files: every shipped one loads; a broken one is refused naming file, line and field."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

import scenarios as shipped
from mockserver import ScenarioError, Settings, create_app
from mockserver.journal import key_id
from mockserver.scenarios import Scenario, load_directories, load_file
from mockserver.settings import SHIPPED_SCENARIOS

VALID = """\
name: sample
description: A sample.
timeline:
  - {at: 0, status: pending}
  - {at: 5, status: completed}
"""


def load_one(path: Path) -> Scenario:
    (scenario,) = load_file(path)
    return scenario


def write(tmp_path: Path, text: str, name: str = "broken.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_every_shipped_scenario_loads_with_a_description() -> None:
    loaded = load_directories([shipped.DIRECTORY])
    assert {
        "default",
        "fast",
        "content-policy",
        "generation-timeout",
        "completed-before-results",
        "never-finishes",
    } <= set(loaded)
    for scenario in loaded.values():
        assert len(scenario.description) > 40, scenario.name


def test_a_valid_file_loads(tmp_path: Path) -> None:
    scenario = load_one(write(tmp_path, VALID, "ok.yaml"))
    assert scenario.name == "sample"
    assert [s.status for s in scenario.timeline] == ["pending", "completed"]


@pytest.mark.parametrize(
    ("text", "line", "field", "problem"),
    [
        (VALID.replace("status: completed", "status: complete"), 5, "timeline[1].status", "is not one of"),
        (VALID.replace("description: A sample.\n", ""), 1, "(top level)", "missing required field 'description'"),
        (VALID + "colour: blue\n", 6, "colour", "unknown field 'colour'"),
        (
            VALID.replace("{at: 5, status: completed}", "{at: -1, status: completed}"),
            5,
            "timeline[1].at",
            "less than the minimum",
        ),
        (
            VALID.replace("{at: 5,", "{at: 0,").replace("{at: 0, status: pending}", "{at: 9, status: pending}"),
            5,
            "timeline[1].at",
            "earlier than the step before",
        ),
        (
            "name: s\ndescription: d\ntimeline:\n  - {at: 0, status: processing, progress: 50}\n  - {at: 5, status: processing, progress: 40}\n",
            5,
            "timeline[1].progress",
            "progress never falls",
        ),
        (
            "name: s\ndescription: d\ntimeline:\n  - {at: 0, status: processing}\n  - {at: 5, status: pending}\n",
            5,
            "timeline[1].status",
            "status never moves backward",
        ),
        (
            "name: s\ndescription: d\ntimeline:\n  - {at: 0, status: completed}\n  - {at: 5, status: failed, error: {code: x, message: y}}\n",
            5,
            "timeline[1].status",
            "terminal is final",
        ),
        (
            "name: s\ndescription: d\ntimeline:\n  - {at: 0, status: failed}\n",
            4,
            "timeline[0]",
            "missing required field 'error'",
        ),
        (
            "name: s\ndescription: d\ntimeline:\n  - {at: 0, status: pending, results: []}\n",
            4,
            "timeline[0].results",
            "only a 'completed' step",
        ),
        (
            "name: s\ndescription: d\nmatch:\n  - prompt_regex: '(unclosed'\ntimeline:\n  - {at: 0, status: pending}\n",
            4,
            "match[0].prompt_regex",
            "not a valid regular expression",
        ),
        (
            "name: s\ndescription: d\nsubmit:\n  status: 200\n  headers: {Retry-After: 3}\ntimeline:\n  - {at: 0, status: pending}\n",
            5,
            "submit.headers",
            "only meaningful with an error status",
        ),
        ("name: Bad Name\ndescription: d\ntimeline:\n  - {at: 0, status: pending}\n", 1, "name", "does not match"),
        ("name: s\ndescription: d\ntimeline: []\n", 3, "timeline", "[] has less than 1 item"),
        (
            "name: s\ndescription: d\ntimeline:\n  - {at: 0, status: pending}\ncallbacks:\n  late: 60\n  early: 5\n",
            7,
            "callbacks.early",
            "late or early, not both",
        ),
        (
            "name: s\ndescription: d\ntimeline:\n  - {at: 0, status: pending}\ncallbacks:\n  duplicate: 1\n",
            6,
            "callbacks.duplicate",
            "less than the minimum of 2",
        ),
    ],
    ids=[
        "bad-status",
        "missing-description",
        "unknown-field",
        "negative-time",
        "time-backwards",
        "progress-falls",
        "status-backwards",
        "after-terminal",
        "failed-without-error",
        "results-not-completed",
        "bad-regex",
        "headers-on-200",
        "bad-name",
        "empty-timeline",
        "callback-late-and-early",
        "callback-duplicate-once",
    ],
)
def test_a_broken_file_is_refused_with_file_line_and_field(
    tmp_path: Path, text: str, line: int, field: str, problem: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ScenarioError) as caught:
        load_one(path)
    error = caught.value
    assert (error.source, error.line, error.field) == (str(path), line, field), str(error)
    assert problem in error.problem
    assert str(error).startswith(f"{path}:{line}: {field}: ")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("name: [unclosed\n", "not valid YAML"),
        ("", "empty"),
        ("- just\n- a list\n", 'is not of type "object"'),
        ("name: !!python/object/apply:os.system ['true']\n", "not valid YAML"),
        (
            (
                "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
            ),
            "alias bomb",
        ),
    ],
    ids=["yaml-syntax", "empty", "not-a-mapping", "unsafe-tag", "alias-bomb"],
)
def test_unreadable_yaml_is_refused(tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(ScenarioError, match=problem):
        load_one(write(tmp_path, text))


def test_an_oversized_file_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, VALID + "#" * 300_000 + "\n")
    with pytest.raises(ScenarioError, match="limit is"):
        load_one(path)


def test_two_files_with_one_name_are_refused(tmp_path: Path) -> None:
    write(tmp_path, VALID, "a.yaml")
    write(tmp_path, VALID, "b.yaml")
    with pytest.raises(ScenarioError, match="already the name of"):
        load_directories([tmp_path])


def test_a_user_folder_replaces_a_shipped_scenario_of_the_same_name(tmp_path: Path) -> None:
    write(tmp_path, VALID.replace("name: sample", "name: fast"), "fast.yaml")
    loaded = load_directories([shipped.DIRECTORY, tmp_path])
    assert loaded["fast"].source == str(tmp_path / "fast.yaml")


def test_the_app_refuses_to_build_with_a_broken_scenario(tmp_path: Path) -> None:
    write(tmp_path, VALID.replace("status: completed", "status: done"))
    with pytest.raises(ScenarioError, match=r"broken\.yaml:5: timeline\[1\]\.status"):
        create_app(Settings(scenario_dirs=(tmp_path,)))


def test_the_app_refuses_an_unknown_default_scenario() -> None:
    with pytest.raises(ValueError, match="no scenario named 'nope'"):
        create_app(Settings(default_scenario="nope"))


def test_the_documented_example_is_a_valid_scenario(tmp_path: Path) -> None:
    reference = (Path(__file__).parents[1] / "docs" / "scenarios.md").read_text()
    example = reference.split("## Scenario format", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    scenario = load_one(write(tmp_path, example, "example.yaml"))
    assert scenario.name == "slow-then-fail"
    assert scenario.timeline[-1].error["code"] == "resource_exhausted"
    assert [rule.describe() for rule in scenario.rules] == [
        {"api_key": key_id("sk-qa-exhausted")},
        {"prompt_contains": "[exhausted]", "model": "veo-3.1-extend-fast"},
    ]


def test_a_scenario_cannot_make_the_fake_read_a_file(make_fake, tmp_path: Path) -> None:
    """Result URLs are text the fake returns; nothing in a scenario is a path it opens."""
    (tmp_path / "sneaky.yaml").write_text(
        "name: sneaky\ndescription: Tries to point at local files.\noff_contract: a relative result URL\n"
        "timeline:\n  - {at: 0, status: pending}\n"
        "  - {at: 1, status: completed, results: [{url: 'file:///etc/passwd'}, {url: '../../etc/passwd'}]}\n"
    )
    fake = make_fake(scenario_dirs=(tmp_path,))
    task_id = fake.create(scenario="sneaky")
    fake.advance(2)
    polled = fake.request(
        "GET", f"/v1/tasks/{task_id}", headers={"Authorization": "Bearer sk-test-1"}, check_contract=False
    )
    assert [r["url"] for r in polled.json()["results"]] == ["file:///etc/passwd", "../../etc/passwd"]
    assert "root:" not in polled.text
    assert fake.request("GET", f"/files/{task_id}.mp4").status_code == 404  # not the fake's own video: nothing served


SEQUENCE_FILE = """\
name: seq-a
description: First.
timeline:
  - {at: 0, status: pending}
  - {at: 10, status: completed}
---
name: seq-refused
description: Refused.
submit: {status: 429, error: {message: Slow down.}, headers: {Retry-After: 3}}
---
name: seq-b
description: Third and after.
timeline:
  - {at: 0, status: pending}
  - at: 5
    status: failed
    error: {code: generation_failed, message: No.}
---
name: in-turn
description: The n-th submission of each key plays the n-th; after the last, the last again.
sequence: [seq-a, seq-refused, seq-b]
"""


@pytest.mark.parametrize("store", ["memory", "redis"])
def test_a_sequence_plays_its_scenarios_in_turn_per_key(
    tmp_path: Path, make_fake: Any, store: str, request: pytest.FixtureRequest
) -> None:
    (tmp_path / "seq.yaml").write_text(SEQUENCE_FILE)
    extra = {"store": request.getfixturevalue("redis_url")} if store == "redis" else {}
    fake = make_fake(scenario_dirs=(tmp_path,), default_scenario="in-turn", **extra)
    first = fake.submit(key="sk-one")
    assert first.status_code == 200
    refused = fake.submit(key="sk-one")
    assert refused.status_code == 429 and refused.headers["retry-after"] == "3"
    third, fourth = fake.submit(key="sk-one").json()["id"], fake.submit(key="sk-one").json()["id"]
    other_key = fake.submit(key="sk-two").json()["id"]  # another key starts from the first
    views = {
        task_id: fake.admin("GET", f"/tasks/{task_id}").json()
        for task_id in (first.json()["id"], third, fourth, other_key)
    }
    assert [v["scenario"] for v in views.values()] == ["seq-a", "seq-b", "seq-b", "seq-a"]
    assert all(v["mix"] == "in-turn" for v in views.values())
    assert fake.admin("GET", "/scenarios/in-turn").json()["sequence"] == ["seq-a", "seq-refused", "seq-b"]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("name: s\ndescription: d\nsequence: [nope]\n", "sequence[0]: 'nope' is not a loaded scenario"),
        (
            "name: s\ndescription: d\nsequence: [default]\ntimeline: [{at: 0, status: pending}]\n",
            "a sequence only names other scenarios",
        ),
        ("name: s\ndescription: d\nsequence: []\n", "sequence"),
    ],
)
def test_a_broken_sequence_names_its_file_and_field(tmp_path: Path, text: str, problem: str) -> None:
    (tmp_path / "bad.yaml").write_text(text)
    with pytest.raises(ScenarioError) as raised:
        load_directories([SHIPPED_SCENARIOS, tmp_path])
    assert "bad.yaml" in str(raised.value) and problem in str(raised.value)
