"""Task lifecycles played on the manual clock: every shipped scenario to its end, and the
lifecycle invariants under a hypothesis state machine. No test sleeps."""

from __future__ import annotations

import itertools
from typing import Any

import httpx
import pytest
from hypothesis import given as hypothesis_given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, rule

import scenarios as shipped
from contracts._vocabulary import OUR_WORDS, PHASE_RANK
from contracts.strategies import timelines
from mockserver import Settings
from mockserver.lifecycle import observe
from mockserver.scenarios import load_directories, parse
from mockserver.testing import LiveServer
from tests.conftest import API_KEY, BODIES, Fake, validator_for

RANK = {word: PHASE_RANK[phase] for phase, word in OUR_WORDS.items()}  # the shipped contract's words
SHIPPED = load_directories([shipped.DIRECTORY])
# Scenarios whose submit answers 200 at once, with no latency, faults or off-contract answers:
# the state machine plays these.
PLAYABLE = sorted(
    name
    for name, s in SHIPPED.items()
    if not s.mix and not s.latency and not s.polls and s.off_contract is None
    and s.submit[0].status == 200 and s.submit[0].fault is None
)  # fmt: skip


def play(fake: Fake, task_id: str, until: float, step: float) -> list[dict[str, Any]]:
    seen = []
    elapsed = 0.0
    while elapsed <= until:
        seen.append({**fake.task(task_id), "elapsed": elapsed})
        fake.advance(step)
        elapsed += step
    return seen


@pytest.mark.parametrize("name", ["default", "fast"])
def test_the_successful_scenarios_play_to_a_downloadable_video(fake: Fake, name: str) -> None:
    ends_at = {"default": 90, "fast": 5}[name]
    task_id = fake.create(scenario=name)
    seen = play(fake, task_id, ends_at + 4, step=2.0)
    assert seen[0]["status"] == "pending"
    assert any(s["status"] == "processing" for s in seen)
    for before, after in itertools.pairwise(seen):
        assert RANK[after["status"]] >= RANK[before["status"]] and after["progress"] >= before["progress"]
    done = next(s for s in seen if s["status"] == "completed")
    assert ends_at <= done["elapsed"] < ends_at + 2.01
    assert done["progress"] == 100 and done["error"] is None
    assert fake.request("GET", done["results"][0]["url"]).status_code == 200


def test_progress_rises_while_processing(fake: Fake) -> None:
    task_id = fake.create()
    progress = [s["progress"] for s in play(fake, task_id, 88, 2.0) if s["status"] == "processing"]
    assert progress[0] < 10 and progress[-1] > 90
    assert len(set(progress)) > 20  # it moves, not just jumps between steps


def test_completed_before_results_is_filled_in_on_the_next_poll(fake: Fake) -> None:
    task_id = fake.create(scenario="completed-before-results")
    fake.advance(65)
    quirk = fake.task(task_id)
    assert (quirk["status"], quirk["progress"], quirk["results"]) == ("completed", 50, None)
    filled = fake.task(task_id)  # no clock movement: the next poll fills it in
    assert filled["status"] == "completed" and filled["progress"] == 100
    assert filled["results"][0]["url"].endswith(".mp4")


def test_the_quirk_is_seen_even_by_a_slow_poller(fake: Fake) -> None:
    task_id = fake.create(scenario="completed-before-results")
    fake.advance(3600)
    assert fake.task(task_id)["results"] is None
    assert fake.task(task_id)["results"] is not None


def test_admin_views_do_not_count_as_polls(fake: Fake) -> None:
    task_id = fake.create(scenario="completed-before-results")
    fake.advance(65)
    for _ in range(3):
        assert fake.admin("GET", f"/tasks/{task_id}").json()["task"]["results"] is None
    assert fake.task(task_id)["results"] is None


def _scenario(timeline: list[dict[str, Any]]) -> Any:
    return parse({"name": "t", "description": "test", "timeline": timeline}, "test")


def test_ramp_is_linear_and_stops_below_the_next_step() -> None:
    scenario = _scenario(
        [{"at": 0, "status": "processing", "progress": 0}, {"at": 100, "status": "processing", "progress": 100}]
    )
    assert [observe(scenario, t, {}).progress for t in (0, 25, 50, 99.9, 100)] == [0, 25, 50, 99, 100]


def test_ramp_false_holds_progress_flat() -> None:
    scenario = _scenario(
        [
            {"at": 0, "status": "processing", "progress": 40, "ramp": False},
            {"at": 100, "status": "processing", "progress": 90},
        ]
    )
    assert observe(scenario, 99, {}).progress == 40


def test_a_state_before_the_first_step_is_pending_zero() -> None:
    scenario = _scenario([{"at": 5, "status": "processing", "progress": 10}])
    assert (observe(scenario, 1, {}).phase, observe(scenario, 1, {}).progress) == ("queued", 0)


class LifecycleMachine(RuleBasedStateMachine):
    """Random submits, clock moves and polls over every shipped scenario, through real HTTP."""

    tasks = Bundle("tasks")
    server: LiveServer | None = None

    def __init__(self) -> None:
        super().__init__()
        assert self.server is not None
        self.client = httpx.Client(base_url=self.server.url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10)
        self.client.post("/__admin/reset")
        self.last: dict[str, dict[str, Any]] = {}
        self.scenario_of: dict[str, Any] = {}
        self.age: dict[str, float] = {}
        self.gone: set[str] = set()
        self.validator = validator_for("seed")

    def teardown(self) -> None:
        self.client.close()

    def _checked(self, response: httpx.Response) -> httpx.Response:
        self.validator.validate(response)
        return response

    @initialize()
    def start(self) -> None:
        self.names = PLAYABLE

    @rule(target=tasks, index=st.integers(0, len(PLAYABLE) - 1), portrait=st.booleans(), audio=st.booleans())
    def submit(self, index: int, portrait: bool, audio: bool) -> str:
        body = {**BODIES["seed"], "aspect_ratio": "9:16" if portrait else "16:9", "generate_audio": audio}
        response = self._checked(
            self.client.post("/v1/videos/generations", json=body, headers={"X-Mock-Scenario": self.names[index]})
        )
        assert response.status_code == 200
        self.scenario_of[response.json()["id"]] = SHIPPED[self.names[index]]
        self.age[response.json()["id"]] = 0.0
        return response.json()["id"]

    @rule(seconds=st.one_of(st.floats(0, 30), st.sampled_from([0.0, 59.9, 60.0, 600.0, 86_400.0])))
    def advance(self, seconds: float) -> None:
        assert self.client.post("/__admin/clock/advance", json={"seconds": seconds}).status_code == 200
        for task_id in self.age:
            self.age[task_id] += seconds

    @rule(task_id=tasks)
    def poll(self, task_id: str) -> None:
        response = self._checked(self.client.get(f"/v1/tasks/{task_id}"))
        if response.status_code == 404:  # only a scenario that says so, or 24 h, may lose a task, for good
            assert self.scenario_of[task_id].disappears_after is not None or self.age[task_id] > 24 * 3600
            self.gone.add(task_id)
            return
        assert task_id not in self.gone and response.status_code == 200
        task = response.json()
        status = task["status"]
        if task["results"] is not None:
            assert status == "completed"
        if status == "failed":
            assert task["error"]["type"] == "task_error" and task["results"] is None
        else:
            assert task["error"] is None
        before = self.last.get(task_id)
        if before is not None:
            assert RANK[status] >= RANK[before["status"]], (before, task)
            assert task["progress"] >= before["progress"], (before, task)
            if before["status"] in ("completed", "failed"):
                assert status == before["status"]
            if before["results"] is not None:
                assert task["results"] == before["results"] and task["progress"] == 100
        self.last[task_id] = task


@pytest.fixture(scope="module")
def machine_server() -> Any:
    with LiveServer(Settings(clock="manual", seed=11)) as server:
        LifecycleMachine.server = server
        yield server
        LifecycleMachine.server = None


def test_lifecycle_invariants_hold_under_random_play(machine_server: LiveServer) -> None:
    test_case = LifecycleMachine.TestCase
    test_case.settings = hypothesis_settings(max_examples=60, stateful_step_count=40, deadline=None)
    test_case().runTest()


@hypothesis_given(
    timeline=timelines(),
    reads=st.lists(st.tuples(st.floats(0, 200), st.booleans()), min_size=1, max_size=40),
)
def test_observe_keeps_the_lifecycle_rules_for_any_timeline(timeline: list[dict[str, Any]], reads: list) -> None:
    """For any valid timeline and any mix of clock moves, polls and peeks: status never moves
    backward, progress never falls, terminal is final, results come only with completed, and the
    lifecycle never moves past a held step before that step was returned to as many polls as it
    asks for."""
    scenario = _scenario(timeline)
    counts: dict[int, int] = {}
    elapsed, before = 0.0, None
    polls_of_held: dict[int, int] = {}
    for step, poll in reads:
        elapsed += step
        state = observe(scenario, elapsed, counts, poll=poll)
        if poll and state.step >= 0 and scenario.timeline[state.step].polls:
            polls_of_held[state.step] = polls_of_held.get(state.step, 0) + 1
        if poll:
            for held in scenario.held_steps:
                if held < state.step:
                    assert polls_of_held.get(held, 0) >= scenario.timeline[held].polls
        if state.results is not None and state.phase == "succeeded":
            assert scenario.timeline[state.step].phase == "succeeded"
        if before is not None and poll:
            assert PHASE_RANK[state.phase] >= PHASE_RANK[before.phase]
            assert state.progress >= before.progress
            if before.phase in ("succeeded", "failed"):
                assert state.phase == before.phase
        if poll:
            before = state
